import { CoordinationV1Api, type V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NodeAgent } from '../cluster/node-agent.ts';
import { AwayWatch } from '../es/away-watch.ts';
import { esDistribution } from '../es/es-cluster.ts';
import { EsPodRuntime } from '../es/pod-runtime.ts';
import { es, HealthWatch, type Service, tcpService, Writer } from '../es/workload.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { cluster, type Cluster, ControllerProcess, eventsFor, mergePatch, namespace, partitionOf, podsOf, readSts, rolloutFinished, statefulSet, waitUntil } from './harness.ts';

// Issue 22's proof on a real application: ONE OpenSearch cluster spread over TWO
// StatefulSets (zones es-a and es-b, two pods each), every node master-eligible
// and holding data, run as real pods through the real controller. Both
// StatefulSets are subscribed with the elasticsearch hook and nothing else: the
// hook names the application cluster by its UUID, so they share one disruption
// budget (default 1) without configuration.
//
// Why 2 + 2, all master-eligible: four voters make a voting configuration of
// three (quorum 2), so two nodes away at once can lose the master; and with one
// replica per shard, two data nodes away at once can take both copies of a
// shard. One node away at a time is the only safe schedule, whichever
// StatefulSet it is in.
//
// The two zones roll with the two strategies at once (es-a drains, es-b
// restarts with replica allocation held to primaries), so one rollout of four
// node restarts covers both and how they meet: a drain's exclusion and a
// restart's allocation setting in one cluster.
//
// An independent watcher (test/es/away-watch.ts: StatefulSets, pods and
// `_cat/nodes`, plain calls) counts the nodes away at once.

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const SETS = ['es-a', 'es-b'];
const NAMES = ['es-a-0', 'es-a-1', 'es-b-0', 'es-b-1'];
const INDICES = ['zone-1', 'zone-2'];
const EXCLUDE = 'cluster.routing.allocation.exclude._name';
const BUDGET_NS = 'sts-pilot-system';
const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;

describe('elasticsearch zones: one OpenSearch cluster in two StatefulSets rolls one node at a time through the shared disruption budget', function () {
  this.timeout(40 * 60_000);

  let c: Cluster;
  let ns: string;
  let workDir: string;
  let runtime: EsPodRuntime | undefined;
  let agent: NodeAgent | undefined;
  let svc: Service | undefined;
  let ctrl: ControllerProcess | undefined;
  let writer: Writer | undefined;
  let away: AwayWatch | undefined;
  let url: string;
  let uuid: string;
  const tFile = Date.now();

  /** The budget Leases' holders of this namespace (spec.holderIdentity: namespace/statefulset/pod). */
  async function holders(): Promise<string[]> {
    const leases = c.kc.makeApiClient(CoordinationV1Api);
    const l = (await leases.listNamespacedLease({ namespace: BUDGET_NS, labelSelector: 'sts-pilot.io/budget' })).items;
    return l.flatMap((x) => (x.spec?.holderIdentity ?? '').split(',')).filter((h) => h.startsWith(`${ns}/`));
  }

  /** Both templates changed in the same second (with `extra` annotations on the StatefulSets); resolves with the revisions rolled from. */
  async function changeBoth(rev: string, extra: Record<string, string>): Promise<string[]> {
    const from = await Promise.all(SETS.map(async (n) => (await readSts(c, ns, n)).status?.updateRevision ?? ''));
    await Promise.all(SETS.map((n) => mergePatch(c, ns, n, { metadata: { annotations: extra }, spec: { template: { metadata: { annotations: { 'zones.sts-pilot.io/rev': rev } } } } })));
    return from;
  }

  /** Hold reasons naming the budget, as the status annotations said them during the current rollout. */
  const budgetHolds = new Set<string>();

  async function noteHolds(): Promise<void> {
    for (const n of SETS) {
      const raw = (await readSts(c, ns, n)).metadata?.annotations?.['sts-pilot.io/status'];
      const message = raw ? (JSON.parse(raw) as { message?: string }).message : undefined;
      if (message?.includes('waiting for the disruption budget')) budgetHolds.add(`${n}: ${message}`);
    }
  }

  async function bothFinished(from: string[], what: string): Promise<void> {
    await waitUntil(what, 25 * 60_000, async () => {
      await ctrl?.keepAlive();
      await noteHolds();
      const done = await Promise.all(SETS.map((n, i) => rolloutFinished(c, ns, n, from[i] ?? '')));
      return done.every((d) => d !== undefined);
    });
  }

  /** The assertions every rollout makes, and its [figures] line. */
  async function judge(label: string, ms: number, w: AwayWatch, h: HealthWatch): Promise<void> {
    const missing = await (writer as Writer).missing(url);
    // Events last the whole file; the status annotations were read during this rollout.
    const events = [...(await eventsFor(c, ns, 'es-a')), ...(await eventsFor(c, ns, 'es-b'))].map((e) => e.message);
    const waits = [...budgetHolds].filter((m) => m.includes(`waiting for the disruption budget: application cluster ${uuid}: `));
    say(`budget holds seen in the status annotations: ${JSON.stringify(waits.slice(0, 5))}`);
    console.log(
      `      [figures] ${label}: at most ${w.most} node${w.most === 1 ? '' : 's'} away at once (${w.samples} samples, ${w.blindSamples} without _cat/nodes; ever away: ${[...w.everAway].sort().join(', ')}); ` +
        `rollout ${secs(ms)}; health ${JSON.stringify(h.seen)}; writer ${(writer as Writer).acked.size} acknowledged, ${missing.length} missing; distinct budget holds in the status annotations ${waits.length}, budget Events so far ${events.filter((m) => m.includes('waiting for the disruption budget')).length}`,
    );
    expect(w.overlaps, 'samples with two nodes away at once').to.deep.equal([]);
    expect(w.most, 'largest number of nodes away at once').to.equal(1);
    // The watcher saw every node go (so a 1 is a count, not blindness).
    expect([...w.everAway].sort(), 'nodes seen away').to.deep.equal(NAMES);
    expect(h.reds, 'red health samples').to.deep.equal([]);
    expect(missing, 'acknowledged documents missing').to.deep.equal([]);
    // The StatefulSet that waited said who it waited for: a pod of the other zone (or of its own, for the first step).
    expect(waits.some((m) => /: es-[ab]-[01] of [^ ]+\/es-[ab] \(restarting since [^)]+\) holds the disruption budget \(1\)/.test(m)), `a budget hold naming the holder, in ${JSON.stringify(waits.slice(0, 3))}`).to.equal(true);
    const settings = await es<{ persistent: Record<string, string> }>(url, 'GET', '/_cluster/settings?flat_settings=true');
    expect((settings.persistent[EXCLUDE] ?? '').split(',').filter(Boolean), 'exclusions left').to.deep.equal([]);
    expect((await es<{ status: string }>(url, 'GET', '/_cluster/health')).status).to.equal('green');
  }

  before(async function () {
    this.timeout(20 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'es-zones');
    // the shared agent must not bind, run or finish the deletion of these pods
    c.agent.ignoreNamespace(ns);
    const dist = await esDistribution();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-es-zones-'));
    runtime = await EsPodRuntime.create({ c, dist, workDir, names: NAMES, clusterName: 'sts-pilot-zones', heap: '256m', log: say });
    const rt = runtime;
    agent = new NodeAgent({ kc: c.kc, nodeName: `es-zones-node-${process.pid}`, namespaces: [ns], runtime: rt, readyDelayMs: 0, terminationDelayMs: 0, workers: 4 });
    await agent.start();
    svc = await tcpService(() => rt.runningPorts());
    url = svc.url;
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    const t0 = Date.now();
    for (const name of SETS) {
      const strategy = name === 'es-a' ? 'drain' : 'restart';
      const sts = statefulSet(name, { replicas: 2, hook: 'elasticsearch', annotations: { 'elasticsearch.sts-pilot.io/url': url, 'elasticsearch.sts-pilot.io/strategy': strategy } });
      await c.apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
    }
    await waitUntil('4 OpenSearch pods ready and both partitions held at 2', 15 * 60_000, async () => {
      for (const name of SETS) {
        const s = await readSts(c, ns, name);
        const pods = await podsOf(c, ns, name);
        if (pods.length !== 2 || !pods.every(isReady) || partitionOf(s) !== 2) return false;
      }
      return true;
    });
    await es(url, 'GET', '/_cluster/health?wait_for_nodes=4&wait_for_status=green&timeout=120s');
    uuid = (await es<{ cluster_uuid: string }>(url, 'GET', '/')).cluster_uuid;
    for (const index of INDICES) {
      await es(url, 'PUT', `/${index}`, { settings: { number_of_shards: 2, number_of_replicas: 1 } });
      let nd = '';
      for (let i = 0; i < 500; i++) nd += `{"index":{"_id":"seed-${i}"}}\n${JSON.stringify({ i, pad: 'x'.repeat(100) })}\n`;
      await es(url, 'POST', `/${index}/_bulk?refresh=true`, nd);
    }
    await es(url, 'GET', '/_cluster/health?wait_for_status=green&wait_for_no_relocating_shards=true&timeout=120s');
    const voters = await es<{ metadata: { cluster_coordination: { last_committed_config: string[] } } }>(url, 'GET', '/_cluster/state/metadata?filter_path=metadata.cluster_coordination.last_committed_config');
    console.log(`      [figures] ${dist.flavor} ${dist.version}: 4 pods in 2 StatefulSets up and green in ${secs(Date.now() - t0)}; ${voters.metadata.cluster_coordination.last_committed_config.length} voters`);
    writer = new Writer(INDICES).start(url, 50);
    away = new AwayWatch({ core: c.core, apps: c.apps, namespace: ns, statefulSets: SETS, url, intervalMs: 200 }).start();
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await away?.stop().catch(() => {});
    await writer?.stop().catch(() => {});
    await ctrl?.kill('SIGTERM').catch(() => {});
    for (const name of SETS) await c?.apps.deleteNamespacedStatefulSet({ name, namespace: ns }).catch(() => {});
    await agent?.stop().catch(() => {});
    await runtime?.stopAll().catch(() => {});
    await svc?.close().catch(() => {});
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    console.log(`      [figures] elasticsearch-zones: whole file ${secs(Date.now() - tFile)}`);
  });

  it('es-a drains and es-b restarts, both templates changed at once, the controller SIGKILLed while a slot is held: one node away at a time, the new controller keeps the holder, never red, nothing lost', async () => {
    const w = away as AwayWatch;
    const h = new HealthWatch().start(url, 250);
    w.reset();
    budgetHolds.clear();
    const t0 = Date.now();
    const from = await changeBoth('2', {});

    // A slot is held and its node is away: kill the controller there.
    const held = await waitUntil('a budget holder whose node is away', 10 * 60_000, async () => {
      await noteHolds();
      const hs = await holders();
      const pod = hs[0]?.split('/')[2];
      return hs.length === 1 && pod && w.now.has(pod) ? { holder: hs[0] as string, pod } : undefined;
    });
    await (ctrl as ControllerProcess).kill('SIGKILL');
    const before = await holders();
    const tKill = Date.now();
    await (ctrl as ControllerProcess).spawn();
    await (ctrl as ControllerProcess).reconciled(`${ns}/es-a`, tKill, /./, 120_000);
    await (ctrl as ControllerProcess).reconciled(`${ns}/es-b`, tKill, /./, 120_000);
    const afterRestart = await holders();
    // Judged on a sample taken after that read: a pod still away then was away at the read, so its slot cannot have been freed.
    const n = w.samples;
    await waitUntil('a fresh sample of the watcher', 60_000, async () => w.samples >= n + 2);
    const stillAway = w.now.has(held.pod);
    console.log(`      [figures] SIGKILL while ${held.holder} held the budget: holders before ${JSON.stringify(before)}, after the restart ${JSON.stringify(afterRestart)} (${held.pod} ${stillAway ? 'still away' : 'back by then'})`);
    expect(before, 'the Lease before the restart').to.deep.equal([held.holder]);
    if (stillAway) expect(afterRestart, 'the Lease after the restart: the same holder').to.deep.equal([held.holder]);

    await bothFinished(from, 'both rollouts to finish after the restart');
    const ms = Date.now() - t0;
    await h.stop();
    await judge('es-a drain + es-b restart (controller SIGKILLed mid-rollout)', ms, w, h);
    expect(await holders(), 'no holder left').to.deep.equal([]);
    const settings = await es<{ persistent: Record<string, string>; transient: Record<string, string> }>(url, 'GET', '/_cluster/settings?flat_settings=true');
    expect(settings.persistent['cluster.routing.allocation.enable'] ?? settings.transient['cluster.routing.allocation.enable'] ?? 'all', 'replica allocation re-enabled').to.equal('all');
  });
});
