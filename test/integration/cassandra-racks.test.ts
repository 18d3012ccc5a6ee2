// Issue 27: one Cassandra ring of three real CassandraDaemon JVMs (Maven
// Central), one StatefulSet per rack (cass-r1, cass-r2, cass-r3, one pod each,
// as cass-operator lays a ring out), each pod backed by its node at
// 127.0.0.<n> (test/cassandra/pod-runtime.ts: its pod IP) and run by the
// in-pod pilot, which drains it before it stops the JVM when the pod goes.
// The three templates change in the same second; the real controller rolls
// them with the cassandra hook, whose StatefulSets share one disruption budget
// (the ring's cluster_name). A writer and a reader
// at QUORUM run throughout on an RF 3 keyspace. What must hold: never two
// pods away at once (an independent watch of the pods), every pod approved
// once before its deletion, 0 failed QUORUM operations, 0 acknowledged
// writes lost, every drain done and no commit log replayed at the restart.

import cassandra from 'cassandra-driver';
import { expect } from 'chai';
import * as fs from 'node:fs';
import { allUpNormal, prepareCassandraNodes, type PreparedNodes, schemaAgreed, waitFor } from '../cassandra/cluster.ts';
import { CassandraPodRuntime } from '../cassandra/pod-runtime.ts';
import { NodeAgent } from '../cluster/node-agent.ts';
import { readPilotStatus } from '../pilot/harness.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { cluster, type Cluster, ControllerProcess, Fatal, mergePatch, namespace, podsOf, readSts, rolloutFinished, statefulSet, waitUntil } from './harness.ts';

// About 4 minutes on a 2-core machine (3 nodes up ~25 s, the rollout ~3 min):
// not in `npm test`; `npm run test:cassandra` sets STS_PILOT_CASSANDRA_EXTENDED=1.
const describeExtended = process.env.STS_PILOT_CASSANDRA_EXTENDED === '1' ? describe : ((() => {}) as unknown as typeof describe);

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const STS = ['cass-r1', 'cass-r2', 'cass-r3'];
const PODS = STS.map((s) => `${s}-0`);
const isReady = (p: { status?: { conditions?: { type: string; status: string }[] } }): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;

/** Writes (k, k) and reads back acknowledged keys at QUORUM, one of each every `everyMs`. */
class QuorumLoop {
  readonly acked = new Set<number>();
  writes = 0;
  reads = 0;
  readonly failures: string[] = [];
  private next = 0;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  private readonly client: cassandra.Client;

  constructor(client: cassandra.Client) {
    this.client = client;
  }

  start(everyMs: number): this {
    const q = { prepare: true, isIdempotent: true, consistency: cassandra.types.consistencies.quorum };
    this.done = (async () => {
      while (!this.stopped) {
        const k = this.next++;
        this.writes++;
        try {
          await this.client.execute('INSERT INTO app.kv (k, v) VALUES (?, ?)', [k, k], q);
          this.acked.add(k);
        } catch (err) {
          this.failures.push(`write ${k} at ${new Date().toISOString()}: ${err instanceof Error ? err.message : String(err)}`);
        }
        if (this.acked.size > 0) {
          const r = [...this.acked][Math.floor(Math.random() * this.acked.size)] as number;
          this.reads++;
          try {
            const rs = await this.client.execute('SELECT v FROM app.kv WHERE k = ?', [r], q);
            if (rs.rows[0]?.get('v') !== r) this.failures.push(`read ${r}: ${rs.rows.length} rows`);
          } catch (err) {
            this.failures.push(`read ${r} at ${new Date().toISOString()}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
        await sleep(everyMs);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

describeExtended('cassandra racks: one ring in three StatefulSets (one per rack) rolls one node at a time', function () {
  this.timeout(30 * 60_000);

  let c: Cluster;
  let ns: string;
  let prepared: PreparedNodes | undefined;
  let runtime: CassandraPodRuntime | undefined;
  let agent: NodeAgent | undefined;
  let ctrl: ControllerProcess | undefined;
  let cql: cassandra.Client | undefined;
  let loop: QuorumLoop | undefined;
  let watching = false;
  let watch: Promise<void> = Promise.resolve();

  before(async function () {
    this.timeout(15 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'cassandra-racks');
    c.agent.ignoreNamespace(ns);
    prepared = await prepareCassandraNodes({ clusterName: 'sts-pilot-racks' });
    runtime = new CassandraPodRuntime(c, prepared, PODS, say);
    agent = new NodeAgent({ kc: c.kc, nodeName: `cassandra-racks-node-${process.pid}`, namespaces: [ns], runtime, readyDelayMs: 0, terminationDelayMs: 0, workers: 4 });
    await agent.start();
  });

  after(async function () {
    this.timeout(5 * 60_000);
    watching = false;
    await watch.catch(() => {});
    await loop?.stop().catch(() => {});
    await cql?.shutdown().catch(() => {});
    await ctrl?.kill('SIGTERM').catch(() => {});
    for (const name of STS) await c?.apps.deleteNamespacedStatefulSet({ name, namespace: ns }).catch(() => {});
    await agent?.stop().catch(() => {});
    await runtime?.stopAll().catch(() => {});
    if (prepared && !process.env.STS_PILOT_KEEP_CASSANDRA) fs.rmSync(prepared.dir, { recursive: true, force: true });
  });

  it('three templates changed at once: never two nodes away, 0 failed QUORUM operations, 0 acknowledged writes lost, every node drained', async () => {
    const rt = runtime as CassandraPodRuntime;
    const t0 = Date.now();
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, '--no-leader-elect']);
    const annotations = {
      'cassandra.sts-pilot.io/contact-points': '127.0.0.1,127.0.0.2,127.0.0.3',
      // The moved node's hints show once delivery starts, within 10 s of it being up: 30 s from its start is room enough here.
      'cassandra.sts-pilot.io/hints-settle': '30',
    };
    // The first seed first: the others join its gossip.
    for (const [i, name] of STS.entries()) {
      await c.apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSet(name, { replicas: 1, hook: 'cassandra', annotations }) });
      if (i === 0) await waitUntil('cass-r1-0 ready', 4 * 60_000, async () => (await podsOf(c, ns, name)).some(isReady));
    }
    await waitUntil('3 Cassandra pods ready', 6 * 60_000, async () => {
      for (const name of STS) if (!(await podsOf(c, ns, name)).some(isReady)) return undefined;
      return true;
    });
    const upMs = Date.now() - t0;
    await waitFor(() => allUpNormal((prepared as PreparedNodes).nodes), 120_000, 'every node UN in every node\'s view');
    // Each pod's pilot reports its node: the cassandra block of its Pilot.
    const blocks = await waitUntil('every Pilot with its node NORMAL and two live peers', 60_000, async () => {
      const all = await Promise.all(PODS.map(async (p) => (await readPilotStatus(c, ns, p))?.application?.cassandra));
      return all.every((b) => b?.status === 'NORMAL' && b.peers?.length === 2 && b.peers.every((x) => x.alive === true)) ? all : undefined;
    });
    expect(new Set(blocks.map((b) => b?.hostId)).size, 'three host ids').to.equal(3);

    cql = new cassandra.Client({ contactPoints: ['127.0.0.1', '127.0.0.2', '127.0.0.3'], localDataCenter: 'dc1' });
    await cql.connect();
    await cql.execute("ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}");
    await cql.execute("CREATE KEYSPACE app WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}");
    await waitFor(() => schemaAgreed(cql as cassandra.Client), 60_000, 'schema agreement after CREATE KEYSPACE');
    await cql.execute('CREATE TABLE app.kv (k int PRIMARY KEY, v int)');
    await waitFor(() => schemaAgreed(cql as cassandra.Client), 60_000, 'schema agreement after CREATE TABLE');
    loop = new QuorumLoop(cql).start(20);

    // The witness: its own reads of the pods, every 250 ms.
    const samples: { at: number; away: string[] }[] = [];
    watching = true;
    watch = (async () => {
      while (watching) {
        try {
          const pods = (await Promise.all(STS.map((s) => podsOf(c, ns, s)))).flat();
          const here = new Map(pods.map((p) => [p.metadata?.name ?? '', p]));
          const away = PODS.filter((n) => {
            const p = here.get(n);
            return !p || !!p.metadata?.deletionTimestamp || !isReady(p);
          });
          samples.push({ at: Date.now(), away });
        } catch {
          /* a failed read is no sample */
        }
        await sleep(250);
      }
    })();
    await sleep(2000);

    const from = new Map<string, string>();
    for (const name of STS) from.set(name, (await readSts(c, ns, name)).status?.updateRevision ?? '');
    const uids = new Map((await Promise.all(STS.map((s) => podsOf(c, ns, s)))).flat().map((p) => [p.metadata?.name ?? '', p.metadata?.uid ?? '']));
    const deletedAt = new Map<string, number>();
    const tRoll = Date.now();
    await Promise.all(STS.map((name) => mergePatch(c, ns, name, { spec: { template: { metadata: { annotations: { 'racks.sts-pilot.io/rev': '2' } } } } })));
    await waitUntil('the three rollouts to finish', 15 * 60_000, async () => {
      for (const p of (await Promise.all(STS.map((s) => podsOf(c, ns, s)))).flat()) {
        const name = p.metadata?.name ?? '';
        if ((p.metadata?.deletionTimestamp || p.metadata?.uid !== uids.get(name)) && !deletedAt.has(name)) deletedAt.set(name, Date.now());
      }
      if (ctrl && !ctrl.alive) throw new Fatal(`the controller exited: ${JSON.stringify(ctrl.logs.slice(-3))}`);
      for (const name of STS) if (!(await rolloutFinished(c, ns, name, from.get(name) ?? ''))) return undefined;
      return true;
    });
    const rolloutMs = Date.now() - tRoll;
    await sleep(2000);
    watching = false;
    await watch;
    await loop.stop();

    // Every acknowledged write, read back at ALL after the rollout.
    const missing: number[] = [];
    for (const k of loop.acked) {
      const rs = await cql.execute('SELECT v FROM app.kv WHERE k = ?', [k], { prepare: true, consistency: cassandra.types.consistencies.all });
      if (rs.rows.length !== 1) missing.push(k);
    }

    // What the controller did.
    const logs = (ctrl as ControllerProcess).logs;
    const at = (r: Record<string, unknown>): number => new Date(String(r.time ?? 0)).getTime();
    const approvals = logs
      .filter((r) => at(r) >= tRoll && /^hook approved pod \S+; partition/.test(String(r.msg)))
      .map((r) => ({ pod: (/^hook approved pod (\S+);/.exec(String(r.msg)) as RegExpExecArray)[1] as string, at: at(r) }));
    const holds = logs.filter((r) => r.msg === 'hook holds the rollout' && at(r) >= tRoll).map((r) => String(r.reason));
    const kinds = new Map<string, number>();
    for (const h of holds) {
      const k = /^\[([a-z-]+)\]/.exec(h)?.[1] ?? (h.startsWith('waiting for the disruption budget') ? 'budget' : h.slice(0, 40));
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    // Each restart (a start after the first; each start logs its "Node configuration"): no mutation replayed from
    // the commit log, as after a drain. A start that replays files logs "Log replay complete, N replayed
    // mutations"; one with no files logs no "Replaying" line at all.
    const replays = PODS.map((p) => {
      const starts = fs.readFileSync(rt.node(p).log, 'utf8').split(/Node configuration:/).slice(2);
      return { pod: p, replayed: starts.map((t) => Number(/Log replay complete, (\d+) replayed mutations/.exec(t)?.[1] ?? (/Replaying /.test(t) ? -1 : 0))) };
    });
    const most = Math.max(0, ...samples.map((s) => s.away.length));
    const worst = samples.find((s) => s.away.length === most);
    console.log(
      `      [figures] cassandra racks: 3 pods up in ${secs(upMs)}; rollout ${secs(rolloutMs)} (${secs(rolloutMs / 3)} per node); ` +
        `most pods away at once ${most} (${samples.length} samples); steps ${approvals.map((a) => `${a.pod} +${secs(a.at - tRoll)}`).join(', ')}; ` +
        `holds ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}; QUORUM writes ${loop.writes}, reads ${loop.reads}, failed ${loop.failures.length}; ` +
        `acknowledged ${loop.acked.size}, missing ${missing.length}; drains ${rt.drains.map((d) => `${d.pod} ${d.ms} ms${d.error ? ` (${d.error.slice(0, 80)})` : ''}`).join(', ')}; ` +
        `mutations replayed at restart ${replays.map((r) => `${r.pod} ${JSON.stringify(r.replayed)}`).join(', ')}`,
    );
    if (loop.failures.length > 0) say(`failures: ${loop.failures.slice(0, 5).join(' | ')}`);

    expect(most, `pods away at once (worst: ${JSON.stringify(worst)})`).to.equal(1);
    expect([...approvals.map((a) => a.pod)].sort()).to.deep.equal([...PODS].sort());
    for (const a of approvals) expect(a.at, `${a.pod}: approval before its deletion`).to.be.at.most(deletedAt.get(a.pod) ?? 0);
    expect(kinds.get('budget') ?? 0, 'holds on the shared disruption budget').to.be.greaterThan(0);
    expect(missing, 'acknowledged writes not read back').to.deep.equal([]);
    expect(loop.failures, 'failed QUORUM operations').to.deep.equal([]);
    expect(loop.acked.size).to.be.greaterThan(100);
    expect(rt.drains.map((d) => d.pod).sort(), "drains by the pilots' pre-stop").to.deep.equal([...PODS].sort());
    expect(rt.drains.filter((d) => d.error), 'drains that failed').to.deep.equal([]);
    for (const r of replays) expect(r.replayed, `${r.pod}: mutations replayed at each restart after a drained stop`).to.deep.equal([0]);
  });
});
