// The cassandra hook's reads and decisions against a real ring: three
// CassandraDaemon JVMs from Maven Central (test/cassandra/cluster.ts) on
// 127.0.0.1-3, one rack each. No Kubernetes here: the pods are written by hand
// with the node's address as their IP, and the hook is called as the
// controller calls it. What it proves: a healthy ring approves; a node stopped
// by hand holds with that node named; an unready next that is down may go; an
// RF 1 keyspace holds with its name and the way out; the node moved last holds
// its step until it is back UN; the application cluster is the ring's name.

import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import cassandra from 'cassandra-driver';
import { cassandraHook, transition } from '../../hooks/cassandra/index.ts';
import { readCluster } from '../../hooks/cassandra/read.ts';
import { HookNotReady } from '../../lib/hook.ts';
import { type CassandraCluster, parseStatus, startCassandraCluster, waitFor } from '../cassandra/cluster.ts';
import { cassandraHookContext } from '../cassandra/hook-context.ts';

const pod = (name: string, ip: string, ready = true): V1Pod => ({
  metadata: { name, namespace: 'default' },
  status: { podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

const ctxOf = (annotations: Record<string, string> = {}, nextReady: boolean | null = true) =>
  cassandraHookContext({ contactPoints: '127.0.0.1,127.0.0.2,127.0.0.3', annotations, nextReady });

/** The hold's message, or 'approved'. */
async function answer(prev: V1Pod | null, next: V1Pod | null, annotations: Record<string, string> = {}, nextReady: boolean | null = true): Promise<string> {
  try {
    await transition(prev, next, ctxOf(annotations, nextReady));
    return 'approved';
  } catch (err) {
    if (err instanceof HookNotReady) return `${err.routine ? 'routine ' : ''}hold: ${err.message}`;
    throw err;
  }
}

describe('cassandra hook on a real 3-node ring (one rack per node)', function () {
  this.timeout(300_000);
  let c: CassandraCluster;
  let cql: cassandra.Client;
  const p1 = pod('cass-r1-0', '127.0.0.1');
  const p2 = pod('cass-r2-0', '127.0.0.2');
  const p3 = pod('cass-r3-0', '127.0.0.3');

  before(async () => {
    c = await startCassandraCluster({ clusterName: 'sts-pilot-ring' });
    console.log(`      (Cassandra ${c.dist.version}: 3 nodes UN in ${(c.startMs / 1000).toFixed(1)} s)`);
    cql = new cassandra.Client({ contactPoints: ['127.0.0.1'], localDataCenter: 'dc1' });
    await cql.connect();
    // system_auth is created with SimpleStrategy RF 1: raised, as a ring with authentication needs (docs/cassandra.md, replicas).
    await cql.execute("ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}");
    await cql.execute("CREATE KEYSPACE app WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}");
    await cql.execute('CREATE TABLE app.kv (k int PRIMARY KEY, v int)');
  });

  after(async () => {
    await cql?.shutdown().catch(() => {});
    await c?.stop();
  });

  it('approves a step on a healthy ring, and reads it as nodetool does', async () => {
    const t = Date.now();
    expect(await answer(null, p3)).to.equal('approved');
    const ms = Date.now() - t;
    console.log(`      (one hook call: ${ms} ms)`);
    const view = await readCluster(ctxOf());
    const status = parseStatus(await c.nodes[0]!.nodetool(['status']));
    expect(view.clusterName).to.equal('sts-pilot-ring');
    expect(view.nodes.map((n) => [n.address, n.hostId, n.rack]).sort()).to.deep.equal(status.map((s) => [s.address, s.hostId, s.rack]).sort());
    const app = view.keyspaces.find((k) => k.name === 'app');
    expect(app?.rf).to.deep.equal({ dc1: 3 });
    // One replica per rack in every range: three racks, RF 3.
    for (const r of app?.ranges ?? []) expect(new Set(r.replicas)).to.have.length(3);
    expect(await cassandraHook.applicationCluster!(ctxOf())).to.equal('sts-pilot-ring');
  });

  it('an RF 1 keyspace holds, naming it and the way out; ignoring it lets the step go', async () => {
    await cql.execute("CREATE KEYSPACE scratch WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1}");
    try {
      const a = await answer(null, p2);
      expect(a).to.match(/^hold: \[replicas\] taking cass-r2-0 \(127\.0\.0\.2\) down leaves keyspace scratch \(NetworkTopologyStrategy, dc1:1\) below LOCAL_QUORUM: range/);
      expect(a).to.include('ALTER KEYSPACE scratch');
      expect(a).to.include('ignore-keyspaces');
      expect(await answer(null, p2, { 'cassandra.sts-pilot.io/ignore-keyspaces': 'system_traces,scratch' })).to.equal('approved');
    } finally {
      await cql.execute('DROP KEYSPACE scratch');
    }
  });

  it('a node stopped by hand holds the rollout with that node named; the node moved last holds until it is back UN', async () => {
    const n2 = c.nodes[1]!;
    await n2.stop();
    // The others' view: 127.0.0.2 down.
    await waitFor(async () => parseStatus(await c.nodes[0]!.nodetool(['status'])).some((s) => s.address === '127.0.0.2' && s.status === 'D'), 60_000, '127.0.0.2 DN');
    // Writes while it is away: hints for it on the others.
    for (let i = 0; i < 200; i++) await cql.execute('INSERT INTO app.kv (k, v) VALUES (?, ?)', [i, i], { prepare: true, consistency: cassandra.types.consistencies.localQuorum });

    const held = await answer(null, p3);
    expect(held).to.match(/^hold: \[up-normal\] not every node of Cassandra cluster sts-pilot-ring is UN: 127\.0\.0\.2 \(dc1\/r2\) is DN/);
    // Its own pod, unready (a broken release): it may be replaced.
    expect(await answer(null, p2, {}, false)).to.equal('approved');
    // As the pod updated last: a routine wait.
    expect(await answer(p2, p1)).to.match(/^routine hold: \[rejoined\] the node of pod cass-r2-0, 127\.0\.0\.2 \(dc1\/r2\), is D/);

    await n2.start();
    const t = Date.now();
    const holds = new Set<string>();
    await waitFor(
      async () => {
        const a = await answer(p2, p1, { 'cassandra.sts-pilot.io/hints-settle': '30' });
        if (a !== 'approved') holds.add(/\[([a-z-]+)\]/.exec(a)?.[1] ?? a);
        return a === 'approved';
      },
      120_000,
      'the step after cass-r2-0',
    );
    // Right after its start the step waits for its hints to show (hints-settle), whatever else it sees.
    expect([...holds]).to.include('hints-delivered');
    console.log(`      (node back UN with its hints delivered ${((Date.now() - t) / 1000).toFixed(1)} s after its JVM listened; holds seen meanwhile: ${[...holds].join(', ') || 'none'})`);
    const rows = await cql.execute('SELECT count(*) FROM app.kv', [], { consistency: cassandra.types.consistencies.all });
    expect(Number(rows.rows[0]?.get(0))).to.equal(200);
  });
});
