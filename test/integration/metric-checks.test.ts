import { expect } from 'chai';
import { CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { PodExporter, PrometheusServer } from '../checks/prometheus-server.ts';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  eventsFor,
  mergePatch,
  namespace,
  PodWatcher,
  podsOf,
  readSts,
  rolloutFinished,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

const BAKE_S = 8;
const readyAt = (p: V1Pod | undefined): number => new Date(p?.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')?.lastTransitionTime ?? 0).getTime();
const imageOf = (p: V1Pod): string => p.spec?.containers[0]?.image ?? '';

/**
 * Metric checks (issue "Metric checks") against a real Prometheus scraping one
 * prom-client exporter per pod, whose error rate follows the image the pod runs
 * (`:bad` answers 5 % of its requests with 500). The hook is noop: everything
 * held or halted here is the checks' doing.
 */
describe('metric checks: a real Prometheus decides whether a release behaves', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let ns: string;
  let prom: PrometheusServer;
  let ctrl: ControllerProcess;
  let watcher: PodWatcher;
  let poller: NodeJS.Timeout | undefined;
  let custom: CustomObjectsApi;
  const exporters = new Map<string, PodExporter>();
  const sets = ['good', 'halt', 'back', 'holds'];

  const check = (name: string, spec: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({ group: 'sts-pilot.io', version: 'v1alpha1', namespace: ns, plural: 'metricchecks', body: { apiVersion: 'sts-pilot.io/v1alpha1', kind: 'MetricCheck', metadata: { name }, spec } });
  const errorRate = 'sum(rate(app_requests_total{namespace="{{namespace}}",pod="{{pod}}",code="500"}[5s])) / sum(rate(app_requests_total{namespace="{{namespace}}",pod="{{pod}}"}[5s]))';
  const queries = async (): Promise<number> => {
    const text = await (await fetch(`${prom.url}/metrics`)).text();
    return [...text.matchAll(/^prometheus_http_requests_total\{[^}]*handler="\/api\/v1\/query(?:_range)?"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };
  const deletions = (prefix: string) => watcher.deletions.filter((d) => d.name.startsWith(`${prefix}-`));

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    custom = c.kc.makeApiClient(CustomObjectsApi);
    ns = await namespace(c, 'checks');
    for (const s of sets) for (let i = 0; i < 3; i++) exporters.set(`${s}-${i}`, await new PodExporter().start());
    prom = await new PrometheusServer().start([...exporters].map(([pod, e]) => ({ address: `127.0.0.1:${e.port}`, labels: { namespace: ns, pod } })));
    // Each pod's exporter serves the error rate of the image the pod runs now.
    const follow = async (): Promise<void> => {
      const pods = await c.core.listNamespacedPod({ namespace: ns }).catch(() => undefined);
      for (const p of pods?.items ?? []) {
        const e = exporters.get(p.metadata?.name ?? '');
        if (e) e.errorRate = imageOf(p).endsWith(':bad') ? 0.05 : 0;
      }
    };
    poller = setInterval(() => void follow(), 250);
    await check('error-rate', { prometheus: { address: prom.url, timeoutSeconds: 5 }, query: errorRate, successCondition: { operator: '<', threshold: 0.01 }, interval: '1s' });
    await check('no-data', { prometheus: { address: prom.url }, query: 'app_requests_total{pod="{{pod}}",code="999"}', successCondition: { operator: '<', threshold: 1 } });
    await check('bad-promql', { prometheus: { address: prom.url }, query: 'sum(rate(app_requests_total{pod="{{pod}}"}[5s]', successCondition: { operator: '<', threshold: 1 } });
    await check('prometheus-down', { prometheus: { address: 'http://127.0.0.1:1', timeoutSeconds: 2 }, query: 'up', successCondition: { operator: '==', threshold: 1 } });
    watcher = await new PodWatcher().start(c, ns);
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    const annotations = (on: string) => ({ 'sts-pilot.io/metric-checks': 'error-rate', 'sts-pilot.io/bake': `${BAKE_S}s`, 'sts-pilot.io/on-check-failure': on });
    await Promise.all([
      createAndSettle(c, ns, statefulSet('good', { replicas: 3, hook: 'noop', annotations: annotations('halt') })),
      createAndSettle(c, ns, statefulSet('halt', { replicas: 3, hook: 'noop', annotations: annotations('halt') })),
      createAndSettle(c, ns, statefulSet('back', { replicas: 3, hook: 'noop', annotations: annotations('rollback') })),
      createAndSettle(c, ns, statefulSet('holds', { replicas: 2, hook: 'noop', annotations: { 'sts-pilot.io/metric-checks': 'no-data' } })),
    ]);
    // Two scrapes of every exporter: rate() has data for every pod before the first step.
    await waitUntil('Prometheus to have a rate for every pod', 30_000, async () => (await prom.query('rate(app_requests_total{code="200"}[5s]) > 0')).length === exporters.size);
  });
  after(async () => {
    if (poller) clearInterval(poller);
    await ctrl?.kill('SIGTERM');
    await watcher?.stop();
    await prom?.stop();
    await Promise.all([...exporters.values()].map((e) => e.stop()));
  });

  it('a good release: each step waits the bake of the pod moved before it, from its Ready, across a controller restart', async () => {
    const from = (await readSts(c, ns, 'good')).status?.updateRevision ?? '';
    const q0 = await queries();
    await setImage(c, ns, 'good', 'example/app:2');
    // Kill the controller a few seconds into good-2's bake, and start it again.
    const moved = await waitUntil('good-2 Ready at the new image', 60_000, async () => (await podsOf(c, ns, 'good')).find((p) => p.metadata?.name === 'good-2' && imageOf(p) === 'example/app:2' && readyAt(p) > 0));
    await sleep(Math.max(0, readyAt(moved) + 3500 - Date.now()));
    await ctrl.kill('SIGKILL');
    const restartedAt = Date.now();
    await ctrl.spawn();
    const done = await waitUntil('the rollout to finish', 120_000, () => rolloutFinished(c, ns, 'good', from));
    const finishedAt = Date.now();
    const q1 = await queries();
    const pods = new Map((await podsOf(c, ns, 'good')).map((p) => [p.metadata?.name ?? '', p]));
    const del = (n: string): number => deletions('good').find((d) => d.name === n)?.at ?? 0;
    expect(deletions('good').map((d) => d.name)).to.deep.equal(['good-2', 'good-1', 'good-0']);
    // Bake from the pod's Ready (second resolution in the API): never shorter; restarted it would end 3.5 s later.
    const overheads: number[] = [];
    for (const [prev, next] of [['good-2', 'good-1'], ['good-1', 'good-0']] as const) {
      const end = readyAt(pods.get(prev)) + BAKE_S * 1000;
      expect(del(next), `${next} moved before ${prev} baked ${BAKE_S}s`).to.be.at.least(end - 1000);
      overheads.push(del(next) - end);
    }
    expect(del('good-1'), 'the bake of good-2 was not started again by the restart').to.be.below(restartedAt + BAKE_S * 1000);
    expect(finishedAt, 'the final call waited the bake of good-0').to.be.at.least(readyAt(pods.get('good-0')) + BAKE_S * 1000 - 1000);
    expect(done.spec?.template?.spec?.containers[0]?.image).to.equal('example/app:2');
    expect(await ctrl.metrics()).to.match(/^sts_pilot_metric_check_results_total\{check="error-rate",phase="bake",result="pass"\} [1-9]/m);
    console.log(`      [figures] bake ${BAKE_S}s: next step ${overheads.map((o) => `${(o / 1000).toFixed(1)}s`).join(', ')} after the bake's end; ${q1 - q0} Prometheus queries for 3 steps and the final call (${((q1 - q0) / 4).toFixed(1)} per call)`);
  });

  it('a release with 5 % errors: the first moved pod fails its bake, the rollout halts naming query, value and threshold, nothing else moves', async () => {
    await setImage(c, ns, 'halt', 'example/app:bad');
    const paused = await waitUntil('the rollout to be paused', 90_000, async () => {
      const s = await readSts(c, ns, 'halt');
      return s.metadata?.annotations?.['sts-pilot.io/paused'] === 'true' && s;
    });
    const status = JSON.parse(paused.metadata?.annotations?.['sts-pilot.io/status'] ?? '{}') as { message?: string; state?: string };
    expect(status.state).to.equal('Paused');
    // A halt by the controller, as wait, Argo CD and Flux tell it from a person's pause (Degraded).
    expect(status.message).to.match(/^policy metric-checks: MetricCheck error-rate /);
    expect(status.message).to.include('MetricCheck error-rate').and.to.include('app_requests_total{namespace="').and.to.match(/failed its bake: 0\.0\d+.* not < 0\.01/);
    const ev = (await eventsFor(c, ns, 'halt')).find((e) => e.reason === 'MetricCheckFailed');
    expect(ev?.type).to.equal('Warning');
    expect(ev?.message).to.match(/pod halt-2 failed its bake/);
    await sleep(5000);
    expect(deletions('halt').map((d) => d.name), 'only halt-2 moved').to.deep.equal(['halt-2']);
    const images = (await podsOf(c, ns, 'halt')).map((p) => `${p.metadata?.name}=${imageOf(p)}`).sort();
    expect(images).to.deep.equal(['halt-0=example/app:1', 'halt-1=example/app:1', 'halt-2=example/app:bad']);
  });

  it('on-check-failure rollback: the template goes back, the moved pod returns through the hook, no second pod moved', async () => {
    const before = (await readSts(c, ns, 'back')).status?.updateRevision ?? '';
    await setImage(c, ns, 'back', 'example/app:bad');
    await waitUntil('the template rolled back', 90_000, async () => (await readSts(c, ns, 'back')).spec?.template?.spec?.containers[0]?.image === 'example/app:1');
    await waitUntil('every pod back at the old image and the rollout done', 90_000, async () => {
      const s = await readSts(c, ns, 'back');
      const pods = await podsOf(c, ns, 'back');
      return s.status?.currentRevision === before && s.status?.updateRevision === before && pods.length === 3 && pods.every((p) => imageOf(p) === 'example/app:1' && readyAt(p) > 0) && s.spec?.updateStrategy?.rollingUpdate?.partition === 3;
    });
    const s = await readSts(c, ns, 'back');
    expect(JSON.parse(s.metadata?.annotations?.['sts-pilot.io/check-rollback'] ?? '{}')).to.deep.include({ to: before });
    expect((await eventsFor(c, ns, 'back')).map((e) => e.reason)).to.include('MetricCheckRollback');
    expect(deletions('back').map((d) => d.name), 'back-2 moved forward and back; no other pod').to.deep.equal(['back-2', 'back-2']);
  });

  it('no data, a query error, Prometheus down, a missing check: each holds with its own reason, and nothing moves', async () => {
    await setImage(c, ns, 'holds', 'example/app:2');
    const held = async (re: RegExp): Promise<void> => {
      await waitUntil(`a MetricCheckHeld Event matching ${re}`, 60_000, async () => (await eventsFor(c, ns, 'holds')).some((e) => e.reason === 'MetricCheckHeld' && re.test(e.message)));
    };
    await held(/MetricCheck no-data before holds-1 moves .*inconclusive: no data/);
    await mergePatch(c, ns, 'holds', { metadata: { annotations: { 'sts-pilot.io/metric-checks': 'bad-promql' } } });
    await held(/MetricCheck bad-promql: Prometheus at http:\/\/127\.0\.0\.1:\d+ refused the query \(400 bad_data\)/);
    await mergePatch(c, ns, 'holds', { metadata: { annotations: { 'sts-pilot.io/metric-checks': 'prometheus-down' } } });
    await held(/MetricCheck prometheus-down: Prometheus at http:\/\/127\.0\.0\.1:1 did not answer/);
    await mergePatch(c, ns, 'holds', { metadata: { annotations: { 'sts-pilot.io/metric-checks': 'nowhere' } } });
    await held(/MetricCheck nowhere does not exist in namespace/);
    await mergePatch(c, ns, 'holds', { metadata: { annotations: { 'sts-pilot.io/bake': 'a while' } } });
    await held(/annotation sts-pilot\.io\/bake .*is not a duration/);
    expect(deletions('holds'), 'nothing moved').to.deep.equal([]);
  });

  it('bad definitions are refused by the API server: a missing threshold, an unknown operator, an unknown field', async () => {
    const base = { prometheus: { address: prom.url }, query: 'up', successCondition: { operator: '<', threshold: 1 } };
    const refused = async (name: string, spec: Record<string, unknown>, re: RegExp): Promise<void> => {
      const err = await custom
        .createNamespacedCustomObject({ group: 'sts-pilot.io', version: 'v1alpha1', namespace: ns, plural: 'metricchecks', body: { apiVersion: 'sts-pilot.io/v1alpha1', kind: 'MetricCheck', metadata: { name }, spec }, fieldValidation: 'Strict' })
        .then(() => undefined, (e: unknown) => e);
      expect(err, `${name} was accepted`).to.not.equal(undefined);
      const body = (err as { body?: unknown }).body;
      expect(typeof body === 'string' ? body : JSON.stringify(body ?? String(err))).to.match(re);
    };
    await refused('no-threshold', { ...base, successCondition: { operator: '<' } }, /threshold: Required value/);
    await refused('bad-operator', { ...base, successCondition: { operator: '=~', threshold: 1 } }, /operator: Unsupported value/);
    await refused('unknown-field', { ...base, thresold: 1 }, /unknown field \\?"spec\.thresold\\?"/);
  });
});
