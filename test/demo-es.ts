// npm run demo -- --hook elasticsearch: a real 3-node cluster (OpenSearch by
// default, STS_PILOT_ES_DIST=elasticsearch) under pilots, a writer, and the
// rollout drawn live: which node is drained, the shards left on it, health,
// documents acknowledged and missing, and the node rejoining.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../lib/log.ts';
import { NodeAgent } from './cluster/node-agent.ts';
import { esCall, esDistribution } from './es/es-cluster.ts';
import { EsPodRuntime } from './es/pod-runtime.ts';
import { es, type Service, tcpService, Writer } from './es/workload.ts';
import { type Cluster, converged, eventsFor, mergePatch, partitionOf, podsOf, readSts, statefulSet } from './integration/harness.ts';

const NAMES = ['es-0', 'es-1', 'es-2'];
const EXCLUDE = 'cluster.routing.allocation.exclude._name';

export async function esDemo(c: Cluster, agent: NodeAgent, say: (s: string) => void): Promise<void> {
  const ns = 'demo';
  await c.core.createNamespace({ body: { metadata: { name: ns } } });
  // The demo's own node agent runs these pods as real search nodes; the plain one leaves them alone.
  agent.ignoreNamespace(ns);
  const dist = await esDistribution();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-demo-es-'));
  const runtime = await EsPodRuntime.create({ c, dist, workDir, names: NAMES, heap: '256m', clusterName: 'demo' });
  // Its retries while a node stops are routine here: only errors are shown.
  const log = createLogger({ level: 'error', name: 'node-agent' });
  const esAgent = new NodeAgent({ kc: c.kc, nodeName: 'demo-es-node', namespaces: [ns], runtime, readyDelayMs: 0, terminationDelayMs: 0, workers: 4, log });
  let svc: Service | undefined;
  let writer: Writer | undefined;
  try {
    await esAgent.start();
    svc = await tcpService(() => runtime.runningPorts());
    const url = svc.url;
    say(`creating StatefulSet demo/es: 3 pods, each a real ${dist.flavor} ${dist.version} node under its pilot; hook elasticsearch (strategy auto: drain here)`);
    await c.apps.createNamespacedStatefulSet({
      namespace: ns,
      body: statefulSet('es', { replicas: 3, hook: 'elasticsearch', annotations: { 'elasticsearch.sts-pilot.io/url': url } }),
    });
    for (;;) {
      const pods = await podsOf(c, ns, 'es');
      const ready = pods.filter((p) => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'));
      if (ready.length === 3 && partitionOf(await readSts(c, ns, 'es')) === 3) break;
      await sleep(1000);
    }
    await es(url, 'GET', '/_cluster/health?wait_for_nodes=3&wait_for_status=green&timeout=120s');
    say('3 nodes joined, cluster green; loading 4 indices (2 with a replica, 2 without: their only copy must move before a node restarts)');
    for (const [index, replicas] of [['logs', 1], ['orders', 1], ['cache', 0], ['tmp', 0]] as const) {
      await es(url, 'PUT', `/${index}`, { settings: { number_of_shards: 2, number_of_replicas: replicas } });
      let nd = '';
      for (let i = 0; i < 2000; i++) nd += `{"index":{"_id":"seed-${i}"}}\n${JSON.stringify({ i, pad: 'x'.repeat(300) })}\n`;
      await es(url, 'POST', `/${index}/_bulk?refresh=true`, nd);
    }
    await es(url, 'GET', '/_cluster/health?wait_for_status=green&timeout=120s');
    writer = new Writer(['logs', 'cache']).start(url, 50);
    say('a writer indexes 20 documents every ~50 ms and remembers each one the cluster acknowledged');
    const before = await readSts(c, ns, 'es');
    const from = before.status?.updateRevision ?? '';
    say('changing the pod template: the controller holds the partition and asks the hook before each pod');
    await mergePatch(c, ns, 'es', { spec: { template: { metadata: { annotations: { 'demo.sts-pilot.io/rev': '2' } } } } });

    let last = '';
    let lastHold = '';
    for (;;) {
      const pods = await podsOf(c, ns, 'es');
      const sts = await readSts(c, ns, 'es');
      const cells = pods.map((p) => {
        const rev = p.metadata?.labels?.['controller-revision-hash'] === from ? 'v1' : 'v2';
        const ready = p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
        return `${p.metadata?.name} ${rev} ${p.metadata?.deletionTimestamp ? 'stopping' : ready ? 'ready' : 'starting'}`;
      });
      let cluster = 'cluster unreachable';
      try {
        const [h, s, a] = await Promise.all([
          esCall<{ status: string; relocating_shards: number }>(url, 'GET', '/_cluster/health', undefined, 3000),
          esCall<{ persistent: Record<string, string> }>(url, 'GET', '/_cluster/settings?flat_settings=true', undefined, 3000),
          esCall<{ node: string; shards: string }[]>(url, 'GET', '/_cat/allocation?format=json&h=node,shards', undefined, 3000),
        ]);
        const ex = s.body.persistent?.[EXCLUDE] ?? '';
        const shards = Array.isArray(a.body) ? a.body.filter((r) => NAMES.includes(r.node)).map((r) => `${r.node}:${r.shards}`).sort().join(' ') : '?';
        cluster = `${h.body.status}${h.body.relocating_shards ? ` (${h.body.relocating_shards} moving)` : ''} | excluded: ${ex || '-'} | shards ${shards}`;
      } catch {
        /* a node restarting behind the Service */
      }
      const line = `partition ${partitionOf(sts)} | ${cells.join(' | ')} | ${cluster}`;
      if (line !== last) say(`${line} | docs acknowledged ${writer.acked.size}`);
      last = line;
      const status = sts.metadata?.annotations?.['sts-pilot.io/status'];
      const hold = status ? (JSON.parse(status) as { message?: string }).message ?? '' : '';
      if (hold && hold !== lastHold && /holds/.test(hold)) say(`   controller: ${hold.replace(/\d+ shards? left/, (m) => m)}`);
      lastHold = hold;
      const done = await converged(c, ns, 'es');
      if (done && done.status?.updateRevision !== from && partitionOf(done) === 3) break;
      await sleep(1000);
    }
    await writer.stop();
    const missing = await writer.missing(url);
    say(`rollout finished; partition restored to 3. Documents acknowledged during the rollout: ${writer.acked.size}, missing: ${missing.length}`);
    const events = await eventsFor(c, ns, 'es');
    say('Events on demo/es:');
    for (const e of events.filter((x) => !x.reason.startsWith('Successful'))) console.log(`         ${e.type.padEnd(7)} ${e.reason.padEnd(16)} ${e.message.slice(0, 160)}`);
  } finally {
    await writer?.stop().catch(() => {});
    await c.apps.deleteNamespacedStatefulSet({ name: 'es', namespace: ns }).catch(() => {});
    await esAgent.stop().catch(() => {});
    await runtime.stopAll().catch(() => {});
    await svc?.close().catch(() => {});
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}
