import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { cassandraHook, transition } from '../../hooks/cassandra/index.ts';
import type { Options } from '../../hooks/cassandra/options.ts';
import { HookNotReady, parseHookOptions } from '../../lib/hook.ts';
import { loopbackEgress } from '../egress.ts';
import { decide, hintsDelivered, needed, noStreaming, nodeKnown, rejoined, replicas, schemaAgreement, upNormal } from '../../hooks/cassandra/decide.ts';
import type { CassandraView } from '../../hooks/cassandra/view.ts';
import { ks, node, NOW, policy, ref, ring as baseRing } from './cassandra-fixtures.ts';

// The rules of the cassandra hook (docs/cassandra.md, "Rules"), each a named
// pure check, on rings written by hand: three nodes in three racks of dc1.
// Scale-down: test/unit/cassandra-removal.test.ts.

/** A keyspace on the three nodes: NTS rf per dc; `owners` lists, per range, the replica host ids. */

const rf3 = ks('app', { dc1: 3 }, [['h1', 'h2', 'h3'], ['h2', 'h3', 'h1'], ['h3', 'h1', 'h2']]);
const rf1 = ks('scratch', { dc1: 1 }, [['h1'], ['h2'], ['h3']]);

const ring = (o: Partial<CassandraView> = {}): CassandraView => baseRing({ keyspaces: [rf3], ...o });
const pod = ref;

describe('cassandra rules', () => {
  describe('up-normal', () => {
    it('passes when every node is UN', () => {
      expect(upNormal(ring(), pod(1))).to.equal(undefined);
    });
    it('holds, naming the node, when another node is down', () => {
      const h = upNormal(ring({ nodes: [node(1), node(2, { up: false }), node(3)] }), pod(1));
      expect(h?.reason).to.match(/10\.0\.0\.2 \(dc1\/r2\) is DN/);
    });
    it('holds on a joining, leaving or moving node', () => {
      for (const [status, l] of [['BOOT', 'UJ'], ['LEAVING', 'UL'], ['MOVING', 'UM']] as const) {
        expect(upNormal(ring({ nodes: [node(1), node(2), node(3, { status })]}), pod(1))?.reason).to.include(`10.0.0.3 (dc1/r3) is ${l}`);
      }
    });
    it('lets an unready next be down (a broken release is replaceable), but not a Ready one', () => {
      const v = ring({ nodes: [node(1, { up: false }), node(2), node(3)] });
      expect(upNormal(v, pod(1, { ready: false }))).to.equal(undefined);
      expect(upNormal(v, pod(1))?.reason).to.include('10.0.0.1');
    });
  });

  it('node-known: a Ready pod whose IP is no node holds; an unready one is not asked', () => {
    expect(nodeKnown(ring(), pod(9))?.reason).to.match(/10\.0\.0\.9 is no node of Cassandra cluster ring/);
    expect(nodeKnown(ring(), pod(9, { ready: false }))).to.equal(undefined);
    expect(nodeKnown(ring(), pod(1))).to.equal(undefined);
  });

  it('schema-agreement: two versions among live nodes hold, a down node does not count', () => {
    expect(schemaAgreement(ring({ nodes: [node(1), node(2, { schema: 's2' }), node(3)] }))?.reason).to.match(/s1: 10\.0\.0\.1, 10\.0\.0\.3; s2: 10\.0\.0\.2/);
    expect(schemaAgreement(ring({ nodes: [node(1), node(2, { schema: 's2', up: false }), node(3)] }))).to.equal(undefined);
  });

  it('no-streaming: a session to or from next holds, one elsewhere does not', () => {
    const s = { on: '10.0.0.2', operation: 'Repair', peers: ['10.0.0.1'], status: 'start' };
    expect(noStreaming(ring({ streams: [s] }), pod(1))?.reason).to.match(/Repair on 10\.0\.0\.2 with 10\.0\.0\.1/);
    expect(noStreaming(ring({ streams: [s] }), pod(3))).to.equal(undefined);
  });

  describe('replicas', () => {
    it('needed: LOCAL_QUORUM per DC, QUORUM over all, ONE, ALL', () => {
      expect(needed('LOCAL_QUORUM', { dc1: 3, dc2: 5 })).to.deep.equal({ dc1: 2, dc2: 3 });
      expect(needed('QUORUM', { dc1: 3, dc2: 3 })).to.deep.equal({ '*': 4 });
      expect(needed('ONE', { dc1: 1 })).to.deep.equal({ '*': 1 });
      expect(needed('ALL', { dc1: 3 })).to.deep.equal({ '*': 3 });
    });
    it('RF 3 at LOCAL_QUORUM survives one node away', () => {
      expect(replicas(ring(), pod(2), policy)).to.equal(undefined);
    });
    it('RF 3 at LOCAL_QUORUM with another replica down: holds, naming keyspace and range', () => {
      const v = ring({ nodes: [node(1), node(2), node(3, { up: false })] });
      const h = replicas(v, pod(1), policy);
      expect(h?.reason).to.match(/keyspace app \(NetworkTopologyStrategy, dc1:3\) below LOCAL_QUORUM: range \(0, 100\] would have 1 live replica\(s\) in dc1, 2 needed \(and 2 more range/);
      expect(h?.reason).to.include('bring the missing replicas back');
    });
    it('RF 3 at ALL holds: no node may go', () => {
      expect(replicas(ring(), pod(1), { ...policy, consistency: 'ALL' })?.reason).to.include('below ALL');
    });
    it('RF 1 holds, names the keyspace and the ways out (raise RF and repair, or ignore it)', () => {
      const h = replicas(ring({ keyspaces: [rf3, rf1] }), pod(2), policy);
      expect(h?.reason).to.match(/keyspace scratch \(NetworkTopologyStrategy, dc1:1\) below LOCAL_QUORUM: range \(100, 200\] would have 0 live replica\(s\) in dc1, 1 needed/);
      expect(h?.reason).to.include("ALTER KEYSPACE scratch WITH replication = {'class': 'NetworkTopologyStrategy', '<dc>': 3}");
      expect(h?.reason).to.include('nodetool repair -full scratch');
      expect(h?.reason).to.include('cassandra.sts-pilot.io/ignore-keyspaces');
    });
    it('an ignored keyspace, LocalStrategy and EverywhereStrategy are not counted', () => {
      expect(replicas(ring({ keyspaces: [rf3, rf1] }), pod(2), { ...policy, ignoreKeyspaces: new Set(['scratch']) })).to.equal(undefined);
      const local = ks('system', {}, [['h1']], 'LocalStrategy');
      expect(replicas(ring({ keyspaces: [local] }), pod(1), policy)).to.equal(undefined);
    });
    it('two replicas of a range in one rack: the count per range says, whatever the racks', () => {
      // Racks r1, r1, r3: RF 2 ranges on h1 and h2 both in rack r1.
      const v = ring({ nodes: [node(1), node(2, { rack: 'r1' }), node(3)], keyspaces: [ks('two', { dc1: 2 }, [['h1', 'h2']])] });
      expect(replicas(v, pod(1), { ...policy, consistency: 'ONE' })).to.equal(undefined);
      expect(replicas(v, pod(1), policy)?.reason).to.include('keyspace two');
    });
    it('SimpleStrategy: the whole ring is one', () => {
      const simple = ks('old', { '*': 2 }, [['h1', 'h2'], ['h2', 'h3'], ['h3', 'h1']], 'SimpleStrategy');
      expect(replicas(ring({ keyspaces: [simple] }), pod(1), { ...policy, consistency: 'ONE' })).to.equal(undefined);
      expect(replicas(ring({ keyspaces: [simple] }), pod(1), policy)?.reason).to.include('keyspace old (SimpleStrategy, RF 2)');
    });
    it('lists every keyspace that fails', () => {
      const other = ks('scratch2', { dc1: 1 }, [['h2']]);
      expect(replicas(ring({ keyspaces: [rf1, other] }), pod(2), policy)?.reason).to.match(/Keyspaces that fail: scratch, scratch2$/);
    });
  });

  describe('after the move', () => {
    it('rejoined: prev must be UN under its pod IP', () => {
      expect(rejoined(ring({ nodes: [node(1, { up: false }), node(2), node(3)] }), pod(1))).to.deep.include({ routine: true });
      expect(rejoined(ring(), pod(1, { address: '10.0.0.7' }))?.reason).to.include('not in the ring yet');
      expect(rejoined(ring(), pod(1))).to.equal(undefined);
    });
    it('hints-delivered: hints held for prev hold the step', () => {
      const v = ring({ hints: [{ on: '10.0.0.2', forHostId: 'h1', files: 2 }] });
      expect(hintsDelivered(v, pod(1))?.reason).to.match(/10\.0\.0\.2 holds 2 hint file\(s\) for 10\.0\.0\.1/);
      expect(hintsDelivered(v, pod(3))).to.equal(undefined);
    });
    it('hints-delivered: a node started less than the settle time ago holds (its holders list hints only once delivering)', () => {
      const v = ring({ nodes: [node(1, { startedAt: NOW - 20_000 }), node(2), node(3)] });
      expect(hintsDelivered(v, pod(1), 60_000, NOW)?.reason).to.match(/started 20 s ago: .* waits 40 s more/);
      expect(hintsDelivered(v, pod(1), 60_000, NOW + 40_000)).to.equal(undefined);
      expect(decide(v, pod(1), pod(2), policy)).to.deep.include({ check: 'hints-delivered', routine: true });
    });
  });

  describe('decide', () => {
    it('approves a step on a healthy ring', () => {
      expect(decide(ring(), pod(3), pod(2), policy)).to.deep.include({ kind: 'approve' });
    });
    it('checks prev first (routine), then the ring, then next', () => {
      const v = ring({ nodes: [node(1), node(2), node(3, { up: false })], keyspaces: [rf1] });
      expect(decide(v, pod(3), pod(2), policy)).to.deep.include({ kind: 'hold', check: 'rejoined', routine: true });
      expect(decide(v, null, pod(2), policy)).to.deep.include({ kind: 'hold', check: 'up-normal' });
    });
    it('a check switched off by name is skipped, and the approval says so', () => {
      const v = ring({ keyspaces: [rf1] });
      expect(decide(v, null, pod(2), policy)).to.deep.include({ kind: 'hold', check: 'replicas' });
      const d = decide(v, null, pod(2), { ...policy, skip: new Set(['replicas']) });
      expect(d.kind).to.equal('approve');
      expect(d.kind === 'approve' && d.note).to.include('checks skipped: replicas');
    });
    it('at the end (next null): prev back and the ring UN', () => {
      expect(decide(ring(), pod(1), null, policy)).to.deep.include({ kind: 'approve' });
      expect(decide(ring({ hints: [{ on: '10.0.0.2', forHostId: 'h1', files: 1 }] }), pod(1), null, policy)).to.deep.include({ check: 'hints-delivered' });
    });
  });
});

describe('cassandra hook options and call', () => {
  const parse = (a: Record<string, string>) => parseHookOptions(cassandraHook, Object.fromEntries(Object.entries(a).map(([k, v]) => [`cassandra.sts-pilot.io/${k}`, v])));

  it('parses contact points (port 9042 by default), the consistency level, ignored keyspaces and skipped checks', () => {
    const r = parse({ 'contact-points': 'cass-0.cass:9142, 10.0.0.2', consistency: 'QUORUM', 'skip-checks': 'hints-delivered' });
    expect(r.ok).to.equal(true);
    const o = (r as { options: Options }).options;
    expect(o.contactPoints).to.deep.equal([{ host: 'cass-0.cass', port: 9142 }, { host: '10.0.0.2', port: 9042 }]);
    expect(o.consistency).to.equal('QUORUM');
    expect([...o.ignoreKeyspaces]).to.deep.equal(['system_traces']);
    expect([...o.skip]).to.deep.equal(['hints-delivered']);
    // The scale-down rule that may be switched off, by the same annotation.
    const s = parse({ 'contact-points': 'a', 'skip-checks': 'space-to-absorb,up-normal' });
    expect([...(s as { options: Options }).options.skip]).to.deep.equal(['space-to-absorb', 'up-normal']);
    expect((parse({ 'contact-points': 'a', 'skip-checks': 'replication-fits' }) as { error: string }).error).to.include('space-to-absorb');
  });

  it('refuses a typo before the first step, naming the annotation', () => {
    expect(parse({})).to.deep.include({ ok: false });
    expect((parse({ 'contact-points': 'a', consistency: 'LOCAL_QUORM' }) as { error: string }).error).to.include('cassandra.sts-pilot.io/consistency');
    expect((parse({ 'contact-points': 'a', 'skip-checks': 'replica' }) as { error: string }).error).to.include('cassandra.sts-pilot.io/skip-checks');
    expect((parse({ 'contact-points': 'http://a' }) as { error: string }).error).to.include('contact-points');
  });

  it('maps pods to nodes by their IP and holds with the check named', async () => {
    const o = (parse({ 'contact-points': 'a' }) as { options: Options }).options;
    const p = (i: number, ready = true): V1Pod => ({ metadata: { name: `cass-r${i}-0` }, status: { podIP: `10.0.0.${i}`, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } });
    const ctx = { options: o, signal: new AbortController().signal, secrets: async () => ({}), egress: loopbackEgress, nextReady: true };
    const down = ring({ nodes: [node(1), node(2, { up: false }), node(3)] });
    const err = await transition(null, p(3), ctx, async () => down).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(HookNotReady);
    expect((err as HookNotReady).message).to.match(/^\[up-normal\] .*10\.0\.0\.2 \(dc1\/r2\) is DN/);
    expect((await transition(null, p(2, false), { ...ctx, nextReady: false }, async () => down)).note).to.include('cass-r2-0 may restart');
  });
});
