import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { metricCheckCrdYaml } from '../../lib/checks/crd.ts';
import { bakeVerdict, countBake, judgeInstant, renderQuery } from '../../lib/checks/evaluate.ts';
import { runStepChecks } from '../../lib/checks/run.ts';
import { parseMetricCheck, readCheckConfig } from '../../lib/checks/schema.ts';
import { HookNotReady } from '../../lib/hook.ts';
import { loopbackEgress } from '../egress.ts';

const root = new URL('../../', import.meta.url).pathname;
const below = { operator: '<' as const, threshold: 0.01 };

describe('metric checks: judging an instant answer', () => {
  it('passes when every sample meets the condition, and says the closest value', () => {
    const j = judgeInstant([{ labels: { pod: 'web-1' }, value: 0.002 }, { labels: { pod: 'web-2' }, value: 0.008 }], below);
    expect(j).to.deep.include({ result: 'pass', value: 0.008 });
  });
  it('fails on any sample that does not, naming its series', () => {
    const j = judgeInstant([{ labels: { pod: 'web-1' }, value: 0.002 }, { labels: { pod: 'web-2' }, value: 0.05 }], below);
    expect(j.result).to.equal('fail');
    expect(j.text).to.equal('0.05{pod="web-2"}, not < 0.01');
  });
  it('is inconclusive, never passing, on no data or NaN', () => {
    expect(judgeInstant([], below).result).to.equal('inconclusive');
    expect(judgeInstant([{ labels: {}, value: Number.NaN }], below).result).to.equal('inconclusive');
    // A failing sample beside a NaN still fails: the release misbehaves somewhere.
    expect(judgeInstant([{ labels: {}, value: Number.NaN }, { labels: {}, value: 1 }], below).result).to.equal('fail');
  });
  it('compares with each operator', () => {
    for (const [operator, v, ok] of [['<=', 1, true], ['>', 1, false], ['>=', 1, true], ['==', 1, true], ['!=', 1, false]] as const) {
      expect(judgeInstant([{ labels: {}, value: v }], { operator, threshold: 1 }).result, operator).to.equal(ok ? 'pass' : 'fail');
    }
  });
});

describe('metric checks: a bake', () => {
  const series = (points: [number, number][]) => [{ labels: { pod: 'web-2' }, points }];
  it('counts sample times: failed, passed, without data', () => {
    const c = countBake(series([[100, 0], [110, 0.5], [130, Number.NaN]]), below, 100, 130, 10);
    expect(c).to.deep.include({ passed: 1, failed: 1, inconclusive: 2 });
    expect(c.firstFailure).to.deep.include({ at: 110, value: 0.5 });
  });
  const base = { pod: 'web-2', failureLimit: 0, readyAt: 100_000, bakeSeconds: 60, intervalSeconds: 10, condition: below };
  it('holds while baking, with the time left, and fails as soon as the limit is passed', () => {
    const v = bakeVerdict({ ...base, count: { passed: 3, failed: 0, inconclusive: 0 }, now: 130_000 });
    expect(v.says).to.equal('hold');
    expect(v.text).to.match(/is baking: 30s left of 1m00s; 3 passed, 0 failed \(limit 0\)/);
    const f = bakeVerdict({ ...base, count: { passed: 3, failed: 1, inconclusive: 0, firstFailure: { at: 120, value: 0.05, labels: {} } }, now: 130_000 });
    expect(f.says).to.equal('fail');
    expect(f.text).to.match(/^pod web-2 failed its bake: 0\.05 at .*, not < 0\.01/);
  });
  it('passes a full bake within the failure limit', () => {
    expect(bakeVerdict({ ...base, failureLimit: 1, count: { passed: 6, failed: 1, inconclusive: 0 }, now: 161_000 }).says).to.equal('pass');
  });
  it('after the bake, samples without data pass only if the value now passes', () => {
    const count = { passed: 4, failed: 0, inconclusive: 3 };
    expect(bakeVerdict({ ...base, count, now: 161_000, latest: { result: 'pass', text: '0.001 < 0.01' } }).says).to.equal('pass');
    expect(bakeVerdict({ ...base, count, now: 161_000, latest: { result: 'inconclusive', text: 'no data' } }).says).to.equal('hold');
    expect(bakeVerdict({ ...base, count, now: 161_000, latest: { result: 'fail', text: '0.5' } }).says).to.equal('fail');
  });
});

describe('metric checks: definitions', () => {
  const good = { prometheus: { address: 'http://prometheus.monitoring:9090' }, query: 'up{pod="{{pod}}"}', successCondition: { operator: '==', threshold: 1 } };
  it('fills the defaults', () => {
    const p = parseMetricCheck('up', { spec: good });
    expect(p.ok && p.spec).to.deep.include({ phases: ['before', 'bake'], interval: 30, failureLimit: 0 });
    expect(p.ok && p.spec.prometheus.timeoutSeconds).to.equal(10);
  });
  for (const [what, spec, re] of [
    ['a missing threshold', { ...good, successCondition: { operator: '<' } }, /threshold/],
    ['an unknown field', { ...good, thresold: 1 }, /thresold/],
    ['an unknown operator', { ...good, successCondition: { operator: '=~', threshold: 1 } }, /operator/],
    ['credentials in the address', { ...good, prometheus: { address: 'http://u:p@prom:9090' } }, /credentials/],
    ['a bad interval', { ...good, interval: 'soon' }, /interval/],
  ] as const) {
    it(`refuses ${what} with a reason naming it`, () => {
      const p = parseMetricCheck('bad', { spec });
      expect(p.ok).to.equal(false);
      expect(!p.ok && p.error).to.match(/^MetricCheck bad is invalid: /).and.to.match(re);
    });
  }
  it('reads the StatefulSet annotations, and refuses bad ones with the annotation named', () => {
    expect(readCheckConfig({})).to.deep.equal({ ok: true, config: undefined });
    const r = readCheckConfig({ 'sts-pilot.io/metric-checks': 'error-rate, p99', 'sts-pilot.io/bake': '2m', 'sts-pilot.io/on-check-failure': 'rollback' });
    expect(r.ok && r.config).to.deep.include({ names: ['error-rate', 'p99'], bakeSeconds: 120, onFailure: 'rollback' });
    expect(readCheckConfig({ 'sts-pilot.io/metric-checks': 'a', 'sts-pilot.io/bake': 'long' })).to.deep.include({ ok: false });
    expect(readCheckConfig({ 'sts-pilot.io/metric-checks': 'a', 'sts-pilot.io/on-check-failure': 'ignore' })).to.deep.include({ ok: false });
    expect(readCheckConfig({ 'sts-pilot.io/metric-checks': 'A_b' })).to.deep.include({ ok: false });
  });
  it('renders the query variables as PromQL string contents, and names an unknown one', () => {
    expect(renderQuery('x{namespace="{{namespace}}",pod="{{ pod }}",o="{{ordinal}}"}', { namespace: 'ns', statefulset: 'web', pod: 'web-2', ordinal: '2', revision: 'r' })).to.deep.equal({
      ok: true,
      query: 'x{namespace="ns",pod="web-2",o="2"}',
    });
    expect(renderQuery('{{node}}', { namespace: '', statefulset: '', pod: '', ordinal: '', revision: '' }).ok).to.equal(false);
    expect(renderQuery('"{{pod}}"', { namespace: '', statefulset: '', pod: 'a"b\\', ordinal: '', revision: '' })).to.deep.equal({ ok: true, query: '"a\\"b\\\\"' });
  });
  it('charts/sts-pilot/files/crd-metriccheck.yaml is what lib/checks/crd.ts generates (npm run manifests)', () => {
    expect(readFileSync(join(root, 'charts/sts-pilot/files/crd-metriccheck.yaml'), 'utf8')).to.equal(metricCheckCrdYaml());
  });
});

describe('metric checks: credentials reach Prometheus, and nothing else does', () => {
  let server: Server;
  let url = '';
  const seen: { auth: string | undefined; path: string }[] = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ auth: req.headers.authorization, path: req.url ?? '' });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: { pod: 'web-2' }, value: [1, '0.001'] }] } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const sts = { metadata: { name: 'web', namespace: 'ns' }, status: { replicas: 3, updateRevision: 'r2' } };
  const next = { metadata: { name: 'web-2', labels: { 'controller-revision-hash': 'r1' } } };
  const run = (credentialsSecret: string, secrets: Record<string, Record<string, string>>) =>
    runStepChecks({ names: ['c'], bakeSeconds: 0, onFailure: 'halt' }, sts, null, next, true, {
      readCheck: async () => ({ spec: { prometheus: { address: url, credentialsSecret }, query: 'x{pod="{{pod}}"}', successCondition: { operator: '<', threshold: 0.01 }, phases: ['before'] } }),
      secrets: async (name) => {
        const s = secrets[name];
        if (!s) throw new HookNotReady(`Secret ${name} is not labelled sts-pilot.io/credentials: "true"`);
        return s;
      },
      egress: loopbackEgress,
      signal: new AbortController().signal,
      now: Date.now,
    });

  it('a token is sent as Bearer, username and password as Basic, with the query rendered', async () => {
    expect((await run('tok', { tok: { token: 's3cret\n' } })).says).to.equal('pass');
    expect(seen.at(-1)?.auth).to.equal('Bearer s3cret');
    expect(decodeURIComponent(seen.at(-1)?.path ?? '')).to.include('query=x{pod="web-2"}');
    expect((await run('basic', { basic: { username: 'u', password: 'p' } })).says).to.equal('pass');
    expect(seen.at(-1)?.auth).to.equal(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });
  it('a Secret without either, or one that may not be read, holds with the reason and sends nothing', async () => {
    const before = seen.length;
    const empty = await run('empty', { empty: { other: 'x' } });
    expect(empty).to.deep.include({ says: 'hold' });
    expect(empty.text).to.match(/MetricCheck c: Secret empty has neither token, nor username and password/);
    const refused = await run('hidden', {});
    expect(refused.text).to.match(/Secret hidden is not labelled/);
    expect(seen.length, 'no query without the credentials').to.equal(before);
  });
});
