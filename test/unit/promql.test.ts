import { expect } from 'chai';
import { familyOf, parseExposition, selectorsOf } from '../tools/promql.ts';

describe('promql: the metrics and labels an expression reads', () => {
  for (const [expr, metrics, labels] of [
    ['sts_pilot_leader', ['sts_pilot_leader'], []],
    ['(sum(sts_pilot_leader) or vector(0)) < 1', ['sts_pilot_leader'], []],
    ['max by (statefulset) (sts_pilot_step_wait_seconds) > 1800', ['sts_pilot_step_wait_seconds'], ['statefulset']],
    ['sum by (hook) (increase(sts_pilot_hook_calls_total{outcome="error"}[15m])) > 3', ['sts_pilot_hook_calls_total'], ['hook', 'outcome']],
    ['histogram_quantile(0.99, sum by (le, hook) (rate(sts_pilot_hook_call_duration_seconds_bucket[$__rate_interval])))', ['sts_pilot_hook_call_duration_seconds_bucket'], ['hook', 'le']],
    ['time() - max by (pilot, statefulset) (sts_pilot_pilot_heartbeat_timestamp_seconds) > 120', ['sts_pilot_pilot_heartbeat_timestamp_seconds'], ['pilot', 'statefulset']],
    ['rate(process_cpu_seconds_total{job=~"$job"}[5m]) offset 1h', ['process_cpu_seconds_total'], ['job']],
    ['a{x="{not a brace}"} and on (y) b unless ignoring(z) c', ['a', 'b', 'c'], ['x', 'y', 'z']],
    ['count(x > 1e3) or vector(0)', ['x'], []],
    ['sum(rate(x[5m])) by (a, b)', ['x'], ['a', 'b']],
  ] as const) {
    it(expr, () => expect(selectorsOf(expr)).to.deep.equal({ metrics: [...metrics], labels: [...labels] }));
  }

  it('reads an exposition: families, samples and their labels; histogram parts belong to their family', () => {
    const e = parseExposition(
      ['# HELP a_total x', '# TYPE a_total counter', 'a_total{hook="http",outcome="held"} 3', '# TYPE h histogram', 'h_bucket{le="1"} 1', 'h_sum 2', 'h_count 1', '# TYPE g gauge', 'g 0'].join('\n'),
    );
    expect([...e.families.keys()]).to.deep.equal(['a_total', 'h', 'g']);
    expect([...(e.samples.get('a_total') ?? [])]).to.deep.equal(['hook', 'outcome']);
    expect(familyOf('h_bucket', e.families)).to.equal('h');
    expect(familyOf('a_total_count', e.families)).to.equal(undefined);
    expect(familyOf('nope', e.families)).to.equal(undefined);
  });
});
