// npm run demo -- --bad-release: metric checks halting a bad release. A real
// Prometheus scrapes one exporter per pod; pods at the image example/app:bad
// answer 5 % of their requests with 500. The first pod that moves fails its
// bake, the rollout halts, and no other pod moves.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { PodExporter, PrometheusServer } from './checks/prometheus-server.ts';
import { type Cluster, createAndSettle, eventsFor, partitionOf, podsOf, readSts, setImage, statefulSet } from './integration/harness.ts';

export async function badReleaseDemo(c: Cluster, say: (s: string) => void): Promise<void> {
  const ns = 'demo';
  const replicas = 3;
  const bake = 15;
  await c.core.createNamespace({ body: { metadata: { name: ns } } });
  const exporters = new Map<string, PodExporter>();
  for (let i = 0; i < replicas; i++) exporters.set(`web-${i}`, await new PodExporter().start());
  say('building or finding Prometheus (the first run builds it from the Go module proxy: minutes)');
  const prom = await new PrometheusServer().start([...exporters].map(([pod, e]) => ({ address: `127.0.0.1:${e.port}`, labels: { namespace: ns, pod } })));
  const follow = setInterval(() => {
    void c.core.listNamespacedPod({ namespace: ns }).then((l) => {
      for (const p of l.items) {
        const e = exporters.get(p.metadata?.name ?? '');
        if (e) e.errorRate = p.spec?.containers[0]?.image?.endsWith(':bad') ? 0.05 : 0;
      }
    }, () => {});
  }, 250);
  try {
    say(`Prometheus at ${prom.url} scrapes one exporter per pod every second`);
    const query = 'sum(rate(app_requests_total{namespace="{{namespace}}",pod="{{pod}}",code="500"}[5s])) / sum(rate(app_requests_total{namespace="{{namespace}}",pod="{{pod}}"}[5s]))';
    await c.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'sts-pilot.io',
      version: 'v1alpha1',
      namespace: ns,
      plural: 'metricchecks',
      body: { apiVersion: 'sts-pilot.io/v1alpha1', kind: 'MetricCheck', metadata: { name: 'error-rate' }, spec: { prometheus: { address: prom.url }, query, successCondition: { operator: '<', threshold: 0.01 }, interval: '1s' } },
    });
    say('MetricCheck demo/error-rate: the share of 500s of the pod must stay < 1 %');
    await createAndSettle(c, ns, statefulSet('web', { replicas, hook: 'noop', annotations: { 'sts-pilot.io/metric-checks': 'error-rate', 'sts-pilot.io/bake': `${bake}s` } }));
    say(`StatefulSet demo/web: ${replicas} pods, hook noop, metric-checks error-rate, bake ${bake}s, on-check-failure halt (the default)`);
    await sleep(3000);
    say('releasing example/app:bad');
    await setImage(c, ns, 'web', 'example/app:bad');
    let last = '';
    const t0 = Date.now();
    for (;;) {
      const pods = await podsOf(c, ns, 'web');
      const sts = await readSts(c, ns, 'web');
      const rates = new Map((await prom.query(query.replaceAll('{{namespace}}', ns).replace('pod="{{pod}}"', 'pod=~"web-.*"').replace('pod="{{pod}}"', 'pod=~"web-.*"').replace(/sum\(/g, 'sum by (pod) ('))).map((r) => [r.metric.pod ?? '', Number(r.value[1])]));
      const cells = pods.map((p) => {
        const name = p.metadata?.name ?? '';
        const image = p.spec?.containers[0]?.image?.split(':')[1] ?? '?';
        const rate = rates.get(name);
        return `${name} ${image.padEnd(3)} ${rate === undefined || Number.isNaN(rate) ? '  -  ' : `${(rate * 100).toFixed(1)}%`.padStart(5)}`;
      });
      const status = JSON.parse(sts.metadata?.annotations?.['sts-pilot.io/status'] ?? '{}') as { state?: string; message?: string };
      const line = `partition ${partitionOf(sts)} | ${cells.join(' | ')} | ${status.state ?? ''}`;
      if (line !== last) say(line);
      last = line;
      if (sts.metadata?.annotations?.['sts-pilot.io/paused'] === 'true') {
        say(`halted: ${status.message ?? ''}`);
        break;
      }
      if (Date.now() - t0 > 180_000) throw new Error('the bad release was not halted within 3 minutes');
      await sleep(500);
    }
    say('Events on demo/web:');
    for (const e of (await eventsFor(c, ns, 'web')).filter((x) => !x.reason.startsWith('Successful'))) console.log(`         ${e.type.padEnd(7)} ${e.reason.padEnd(18)} ${e.message.slice(0, 300)}`);
    say('only web-2 moved; "sts-pilot undo web -n demo" would take it back through the hook, or on-check-failure: rollback does that by itself');
  } finally {
    clearInterval(follow);
    await prom.stop();
    await Promise.all([...exporters.values()].map((e) => e.stop()));
  }
}
