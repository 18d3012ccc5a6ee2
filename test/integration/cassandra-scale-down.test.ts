// Issue 27, scale-down on a real ring: four CassandraDaemon JVMs as one
// StatefulSet `cass` (pods cass-0..3, nodes 127.0.0.1-4, racks r1-r4), each
// run by the in-pod pilot with its node's own `nodetool decommission` as its
// `decommission` action (each node has its own JMX port). A writer and a
// reader at QUORUM run on an RF 3 keyspace throughout. First an RF 4 keyspace
// makes the scale-down 4 -> 3 hold on `replication-fits`, naming it; once it
// is ALTERed to RF 3, the hook asks cass-3's pilot to decommission its node
// (decommission-1), and the pod goes only after the ring no longer lists it.
// What must hold: the request is run once and reports Succeeded, exit code 0;
// the pod is deleted after `nodetool status` on a node that stays stops
// listing it; 3 UN nodes remain; 0 failed QUORUM operations; 0 acknowledged
// writes missing at ALL. Afterwards every node's gossip still lists the node
// that left (LEFT, kept for days), and a rollout step is not held by it.

import cassandra from 'cassandra-driver';
import { expect } from 'chai';
import * as fs from 'node:fs';
import { allUpNormal, nodetoolCommand, parseStatus, prepareCassandraNodes, type PreparedNodes, schemaAgreed, shellLine, waitFor } from '../cassandra/cluster.ts';
import { transition } from '../../hooks/cassandra/index.ts';
import { readCluster } from '../../hooks/cassandra/read.ts';
import { cassandraHookContext } from '../cassandra/hook-context.ts';
import { CassandraPodRuntime } from '../cassandra/pod-runtime.ts';
import { QuorumLoop } from '../cassandra/quorum-loop.ts';
import { NodeAgent } from '../cluster/node-agent.ts';
import { readPilotStatus } from '../pilot/harness.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { cluster, type Cluster, ControllerProcess, mergePatch, namespace, PodWatcher, podsOf, readSts, statefulSet, waitUntil } from './harness.ts';

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const PODS = ['cass-0', 'cass-1', 'cass-2', 'cass-3'];
const LEAVING = 'cass-3';
const REQUESTED = 'sts-pilot.io/requested-replicas';
const isReady = (p: { status?: { conditions?: { type: string; status: string }[] } }): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;

describe('cassandra scale-down: 4 nodes to 3, the leaving node decommissioned through its pilot before its pod goes', function () {
  this.timeout(15 * 60_000);

  let tFile = 0;
  let c: Cluster;
  let ns: string;
  let prepared: PreparedNodes | undefined;
  let runtime: CassandraPodRuntime | undefined;
  let agent: NodeAgent | undefined;
  let ctrl: ControllerProcess | undefined;
  let watcher: PodWatcher | undefined;
  let cql: cassandra.Client | undefined;
  let loop: QuorumLoop | undefined;

  before(async function () {
    tFile = Date.now();
    this.timeout(10 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'cassandra-scale-down');
    c.agent.ignoreNamespace(ns);
    prepared = await prepareCassandraNodes({ nodes: 4, clusterName: 'sts-pilot-scale-down' });
    runtime = new CassandraPodRuntime(c, prepared, PODS, say);
    for (const [i, pod] of PODS.entries()) {
      const n = prepared.nodes[i];
      if (!n) throw new Error(`no node for ${pod}`);
      // Its own JMX port, as --pre-stop; a 2 s heartbeat, so that a request is taken within 2 s.
      runtime.extraFlags.set(pod, ['--heartbeat', '2', '--action', `decommission=${shellLine(nodetoolCommand(prepared.dist, n.spec.jmxPort, ['decommission']))}`]);
    }
    agent = new NodeAgent({ kc: c.kc, nodeName: `cassandra-scale-down-node-${process.pid}`, namespaces: [ns], runtime, readyDelayMs: 0, terminationDelayMs: 0, workers: 4 });
    await agent.start();
    watcher = await new PodWatcher().start(c, ns);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await loop?.stop().catch(() => {});
    await cql?.shutdown().catch(() => {});
    await ctrl?.kill('SIGTERM').catch(() => {});
    await watcher?.stop().catch(() => {});
    await c?.apps.deleteNamespacedStatefulSet({ name: 'cass', namespace: ns }).catch(() => {});
    await agent?.stop().catch(() => {});
    await runtime?.stopAll().catch(() => {});
    if (prepared && !process.env.STS_PILOT_KEEP_CASSANDRA) fs.rmSync(prepared.dir, { recursive: true, force: true });
  });

  it('holds on an RF 4 keyspace (naming it), then decommissions cass-3 once and deletes it only after the ring dropped its node; 0 failed QUORUM operations', async () => {
    const rt = runtime as CassandraPodRuntime;
    const p = prepared as PreparedNodes;
    const t0 = Date.now();
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, '--no-leader-elect']);
    const sts = statefulSet('cass', { replicas: 4, hook: 'cassandra', annotations: { 'cassandra.sts-pilot.io/contact-points': '127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4' } });
    // OrderedReady (the default): the first seed first, each node joins a ring that is up.
    await c.apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
    await waitUntil('4 Cassandra pods ready', 6 * 60_000, async () => {
      const pods = await podsOf(c, ns, 'cass');
      return pods.length === 4 && pods.every(isReady);
    });
    await waitFor(() => allUpNormal(p.nodes), 120_000, "every node UN in every node's view");
    const upMs = Date.now() - t0;

    cql = new cassandra.Client({ contactPoints: ['127.0.0.1', '127.0.0.2', '127.0.0.3'], localDataCenter: 'dc1' });
    await cql.connect();
    const ddl = async (q: string): Promise<void> => {
      await (cql as cassandra.Client).execute(q);
      await waitFor(() => schemaAgreed(cql as cassandra.Client), 60_000, `schema agreement after ${q}`);
    };
    await ddl("ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}");
    await ddl("CREATE KEYSPACE app WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}");
    await ddl('CREATE TABLE app.kv (k int PRIMARY KEY, v int)');
    // The refusal: a keyspace on every node, which 3 nodes cannot hold.
    await ddl("CREATE KEYSPACE wide WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 4}");
    loop = new QuorumLoop(cql).start(20);
    await sleep(2000);

    // The node that leaves, seen from a node that stays: the first time its status no longer lists 127.0.0.4.
    const leaving = (p.nodes[3] as { address: string }).address;
    let leftAt = 0;
    let lastListedAt = 0;
    let leavingSeenAt = 0;
    let watching = true;
    const ringWatch = (async () => {
      while (watching && !leftAt) {
        // A call's start time: what it shows was so at its start or later (one nodetool call is a JVM, ~1 s).
        const started = Date.now();
        try {
          const st = parseStatus(await (p.nodes[0] as NonNullable<PreparedNodes['nodes'][0]>).nodetool(['status']));
          const mine = st.find((x) => x.address === leaving);
          if (mine?.state === 'L' && !leavingSeenAt) leavingSeenAt = started;
          if (mine) lastListedAt = started;
          else leftAt = started;
        } catch (err) {
          say(`nodetool status: ${(err as Error).message.slice(0, 200)}`);
        }
        await sleep(250);
      }
    })();

    const logs = (): Record<string, unknown>[] => (ctrl as ControllerProcess).logs;
    const holdsOf = (): string[] => logs().filter((r) => r.removal === LEAVING && r.msg === 'hook holds the rollout').map((r) => String(r.reason));
    const at = (r: Record<string, unknown>): number => new Date(String(r.time ?? 0)).getTime();

    // 1. The request 4 -> 3 holds on the RF 4 keyspace, naming it; no decommission is asked for.
    const tReq = Date.now();
    await mergePatch(c, ns, 'cass', { metadata: { annotations: { [REQUESTED]: '3' } } });
    const refusal = await waitUntil('a [replication-fits] hold naming keyspace wide', 90_000, async () => holdsOf().find((h) => h.includes('[replication-fits]')));
    const refusalMs = Date.now() - tReq;
    say(`held: ${refusal}`);
    expect(refusal).to.match(/keyspace wide has replication factor 4 in dc1, and only 3 node\(s\) in dc1 would stay/);
    expect((await readPilotStatus(c, ns, LEAVING))?.actions ?? [], 'no decommission asked while it would be refused').to.deep.equal([]);

    // 2. The way out: RF 3. The hook asks the pilot; the node leaves; the pod goes.
    const tFix = Date.now();
    // The Pilot of cass-3 goes with its pod (owner reference): its status.actions is read while it is there.
    let actionSeen: { state: string; exitCode?: number; at: number } | undefined;
    await ddl("ALTER KEYSPACE wide WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}");
    await waitUntil('cass-3 deleted and replicas 3', 6 * 60_000, async () => {
      await ctrl?.keepAlive();
      const a = (await readPilotStatus(c, ns, LEAVING).catch(() => undefined))?.actions?.find((x) => x.id === 'decommission-1');
      if (a && actionSeen?.state !== a.state) actionSeen = { state: a.state, ...(a.exitCode !== undefined ? { exitCode: a.exitCode } : {}), at: Date.now() };
      const s = await readSts(c, ns, 'cass');
      return s.spec?.replicas === 3 && (watcher as PodWatcher).deletions.some((d) => d.name === LEAVING);
    });
    const deletedAt = (watcher as PodWatcher).deletions.find((d) => d.name === LEAVING)?.at ?? 0;
    await waitUntil('cass-3 gone', 3 * 60_000, async () => (await podsOf(c, ns, 'cass')).every((x) => x.metadata?.name !== LEAVING));
    watching = false;
    await ringWatch;
    await sleep(2000);
    await loop.stop();
    const missing = await loop.missingAtAll();

    // What the pilot of cass-3 did, in its own log and its Pilot's status.
    const pilot = rt.pilot(LEAVING);
    if (!pilot) throw new Error('no pilot for cass-3');
    const runs = pilot.logs.filter((r) => r.msg === 'running a requested action' && r.action === 'decommission');
    const ends = pilot.logs.filter((r) => /^requested action (succeeded|failed)$/.test(String(r.msg)) && r.action === 'decommission');
    const requested = logs().find((r) => r.msg === 'decommission requested' && at(r) >= tFix);
    const runAt = runs[0] ? at(runs[0]) : 0;
    const decomMs = Number(ends[0]?.durationMs ?? 0);
    const holds = holdsOf().filter((h) => !h.includes('[replication-fits]'));
    const kinds = [...new Set(holds.map((h) => /^\[([a-z-]+)\]/.exec(h)?.[1] ?? h.slice(0, 40)))];
    // The figures space-to-absorb passed on (the nodes that stay have room), from the hook's note.
    const room = /have room: ([^)]*\)[^)]*\))/.exec(String(requested?.note ?? ''))?.[1];
    const final = parseStatus(await (p.nodes[0] as NonNullable<PreparedNodes['nodes'][0]>).nodetool(['status']));
    console.log(
      `      [figures] cassandra scale-down: 4 pods up in ${secs(upMs)}; [replication-fits] hold ${secs(refusalMs)} after the request; ` +
        `ALTER -> decommission requested ${requested ? secs(at(requested) - tFix) : '?'}, request -> Running ${requested && runAt ? secs(runAt - at(requested)) : '?'}, ` +
        `decommission ${secs(decomMs)} (returned +${ends[0] ? secs(at(ends[0]) - tFix) : '?'}), node UL seen ${leavingSeenAt ? `+${secs(leavingSeenAt - tFix)}` : 'never'}, last listed by nodetool status +${secs(lastListedAt - tFix)}, first not +${secs(leftAt - tFix)}, ` +
        `pod deleted +${secs(deletedAt - tFix)} (request -> pod deleted ${requested ? secs(deletedAt - at(requested)) : '?'}); holds ${kinds.join(', ')}; ` +
        `space-to-absorb saw: ${room ?? '?'}; ` +
        `QUORUM writes ${loop.writes}, reads ${loop.reads}, failed ${loop.failures.length}; acknowledged ${loop.acked.size}, missing ${missing.length}; ` +
        `drain of the decommissioned node ${rt.drains.find((d) => d.pod === LEAVING)?.ms ?? '?'} ms; suite ${secs(Date.now() - tFile)}`,
    );
    if (loop.failures.length > 0) say(`failures: ${loop.failures.slice(0, 5).join(' | ')}`);

    expect(requested, "the hook's 'decommission requested'").to.not.equal(undefined);
    expect(String(requested?.note), 'space-to-absorb read the disks of the Pilots').to.match(/the nodes that stay in dc1 have room: needs \d.* \(load [1-9]\d* B\); least free \d.* \(127\.0\.0\.[123]\)/);
    // The ALTER's own schema change may still be spreading at the hook's first look (seen on 4.1.10): a schema-agreement hold then comes first.
    expect(kinds.filter((k) => k !== 'schema-agreement')[0], 'the first hold after the fix, but the schema').to.equal('decommission-requested');
    expect(kinds.every((k) => ['schema-agreement', 'decommission-requested', 'decommissioning'].includes(k)), `holds: ${JSON.stringify(kinds)}`).to.equal(true);
    expect(runs, "the pilot's runs of the decommission").to.have.length(1);
    expect(ends.map((r) => [r.msg, r.code]), 'its end').to.deep.equal([['requested action succeeded', 0]]);
    expect(actionSeen && [actionSeen.state, actionSeen.exitCode], "the Pilot's status.actions decommission-1, last seen").to.deep.equal(['Succeeded', 0]);
    expect(leftAt, 'the ring dropped the node').to.be.greaterThan(0);
    // And after the command returned: a pod stopped before cuts the decommission short (exit 143).
    expect(deletedAt, "the pod deleted after the pilot's decommission returned").to.be.at.least(ends[0] ? at(ends[0]) : Infinity);
    // No `nodetool status` that listed the node started after the deletion (the first call without it may start just after it).
    expect(deletedAt, 'the pod deleted after the last nodetool status that listed its node').to.be.greaterThan(lastListedAt);
    expect(final.map((x) => `${x.address} ${x.status}${x.state}`).sort()).to.deep.equal(['127.0.0.1 UN', '127.0.0.2 UN', '127.0.0.3 UN']);
    expect((watcher as PodWatcher).deletions.map((d) => d.name), 'pods deleted').to.deep.equal([LEAVING]);
    expect(loop.failures, 'failed QUORUM operations').to.deep.equal([]);
    expect(missing, 'acknowledged writes not read back at ALL').to.deep.equal([]);
    expect(loop.acked.size).to.be.greaterThan(100);
  });

  it("after it: every node's gossip still lists the node that left (LEFT, for days), and the next rollout step is not held by it", async () => {
    const client = cql as cassandra.Client;
    const leaving = ((prepared as PreparedNodes).nodes[3] as { address: string }).address;
    // Asked of each node that stays: its own gossip, as the hook reads it.
    const seen: string[] = [];
    for (const h of client.getState().getConnectedHosts()) {
      const rows = (await client.execute('SELECT address, status_with_port FROM system_views.gossip_info', [], { host: h } as cassandra.QueryOptions)).rows;
      const left = rows.find((r) => String(r.get('address')) === leaving);
      seen.push(`${String(h.address).split(':')[0]}: ${left ? String(left.get('status_with_port')).split(',')[0] : '(not listed)'}`);
    }
    say(`the node that left, in each node's gossip: ${seen.join('; ')}`);
    expect(seen.some((x) => x.endsWith(': LEFT')), `gossip of the nodes that stay: ${seen.join('; ')}`).to.equal(true);

    const view = await readCluster(cassandraHookContext({ contactPoints: '127.0.0.1,127.0.0.2,127.0.0.3' }));
    expect(view.nodes.map((n) => n.address).sort(), 'the ring as the hook reads it').to.deep.equal(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
    // A rollout step on cass-2, as the controller would ask it: approved, not held on the node that left.
    const next = { metadata: { name: 'cass-2', namespace: ns }, status: { podIP: '127.0.0.3', conditions: [{ type: 'Ready', status: 'True' }] } };
    await transition(null, next, cassandraHookContext({ contactPoints: '127.0.0.1,127.0.0.2,127.0.0.3' }));
  });
});
