import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { decide, HINTS_READ_DELAY_MS, hintsDelivered, nodeKnown, rejoined, upNormal } from '../../hooks/cassandra/decide.ts';
import { cassandraHook, rejoinedCheck, transition, withPilots } from '../../hooks/cassandra/index.ts';
import type { Options } from '../../hooks/cassandra/options.ts';
import { orderPodOf, updateOrder } from '../../hooks/cassandra/order.ts';
import { nodeRefOf, ringReports } from '../../hooks/cassandra/pilots.ts';
import type { PilotReport } from '../../hooks/cassandra/view.ts';
import { checkUpdateOrder, HookNotReady, parseHookOptions } from '../../lib/hook.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import type { CassandraStatus, Pilot } from '../../lib/pilot/schema.ts';
import { loopbackEgress } from '../egress.ts';
import { node, NOW, policy, ref, ring } from './cassandra-fixtures.ts';

// The cassandra hook reading each node's own view through its Pilot
// (docs/cassandra.md, "Pilot or fallback"): the pod → node mapping by host id,
// the nodes' own failure detectors in up-normal, hints read from the holders'
// hints directories, and the OnDelete order. Pilots and rings written by hand.

/** The others of node i as its gossip has them: alive and NORMAL unless told. */
const peersOf = (i: number, o: Record<number, { alive?: boolean; status?: string }> = {}) =>
  [1, 2, 3].filter((j) => j !== i).map((j) => ({ hostId: `h${j}`, address: `10.0.0.${j}`, status: 'NORMAL', alive: true, ...o[j] }));

/** A report as pilots.ts makes it, for the pure rules. */
const report = (i: number, o: Partial<PilotReport> = {}): PilotReport => ({
  pod: `cass-r${i}-0`,
  hostId: `h${i}`,
  clusterName: 'ring',
  status: 'NORMAL',
  peers: peersOf(i),
  hints: [],
  readAfter: NOW - 20_000,
  ...o,
});

/** A Pilot as the pilot writes it. */
function pilot(i: number, c: Partial<CassandraStatus> = {}, o: { beatAgoMs?: number; cluster?: string; uid?: string; now?: number; pod?: string } = {}): Pilot {
  const pod = o.pod ?? `cass-r${i}-0`;
  return {
    metadata: { name: pod, ...(o.uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod, uid: o.uid }] } : {}) },
    spec: { application: 'cassandra' },
    status: {
      phase: 'Running',
      heartbeatTime: new Date((o.now ?? NOW) - (o.beatAgoMs ?? 2_000)).toISOString(),
      application: { probe: 'cassandra', clusterName: o.cluster ?? 'ring', cassandra: { hostId: `h${i}`, status: 'NORMAL', peers: peersOf(i), hints: [], ...c } },
    },
  };
}
const timing = { maxAgeMs: 30_000, readLagMs: 20_000, now: NOW };
const at = (pilots: Pilot[]) => staticPilotReader(pilots, () => NOW);
const pod = (i: number, o: { ip?: string; ready?: boolean; uid?: string; name?: string; labels?: Record<string, string> } = {}): V1Pod => ({
  metadata: { name: o.name ?? `cass-r${i}-0`, ...(o.uid ? { uid: o.uid } : {}), ...(o.labels ? { labels: o.labels } : {}) },
  status: { podIP: o.ip ?? `10.0.0.${i}`, conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
});

describe('cassandra through the Pilots: node-known (pod → node by host id)', () => {
  it('a fresh Pilot of the pod gives the node by its host id; a stale one, or one owned by another pod, leaves the IP', () => {
    expect(nodeRefOf(pod(2), null, at([pilot(2)]), timing)).to.deep.include({ hostId: 'h2', pilotCluster: 'ring' });
    expect(nodeRefOf(pod(2), null, at([pilot(2, {}, { beatAgoMs: 31_000 })]), timing)?.hostId).to.equal(undefined);
    expect(nodeRefOf(pod(2, { uid: 'new' }), null, at([pilot(2, {}, { uid: 'old' })]), timing)?.hostId).to.equal(undefined);
    expect(nodeRefOf(pod(2, { uid: 'new' }), null, at([pilot(2, {}, { uid: 'new' })]), timing)?.hostId).to.equal('h2');
    expect(nodeRefOf(pod(2), null, at([]), timing)).to.deep.equal({ pod: 'cass-r2-0', address: '10.0.0.2', ready: true });
  });
  it('passes when the Pilot and the ring agree', () => {
    expect(nodeKnown(ring(), ref(2, { hostId: 'h2', pilotCluster: 'ring' }))).to.equal(undefined);
  });
  it("holds when the pod's IP and its Pilot disagree, naming both", () => {
    const h = nodeKnown(ring(), ref(1, { hostId: 'h2' }));
    expect(h?.reason).to.match(/pod cass-r1-0 has IP 10\.0\.0\.1, but its Pilot reports host id h2, which cluster ring has at 10\.0\.0\.2 \(10\.0\.0\.1 is host id h1\)/);
    expect(h?.reason).to.include('broadcast');
    expect(h?.routine).to.equal(undefined);
  });
  it("holds on another ring's node: another cluster_name, or a host id the ring lacks, naming both", () => {
    expect(nodeKnown(ring(), ref(1, { hostId: 'h1', pilotCluster: 'Test Cluster' }))?.reason).to.match(/reports Cassandra cluster "Test Cluster", but the contact points reach cluster "ring"/);
    const h = nodeKnown(ring(), ref(1, { hostId: 'x9' }));
    expect(h?.reason).to.match(/reports host id x9, which is no node of cluster ring \(10\.0\.0\.1 h1, 10\.0\.0\.2 h2, 10\.0\.0\.3 h3\)/);
    // Unready, too: a contradiction is no broken release, and the exemptions would be about the wrong node.
    expect(nodeKnown(ring(), ref(1, { hostId: 'x9', ready: false }))?.reason).to.include('x9');
  });
  it('decide: the step holds on node-known before anything else about next', () => {
    expect(decide(ring(), null, ref(1, { hostId: 'h2' }), policy)).to.deep.include({ kind: 'hold', check: 'node-known' });
    expect(decide(ring(), null, ref(1, { hostId: 'h2' }), { ...policy, skip: new Set(['node-known']) }).kind).to.equal('approve');
  });
  it('rejoined: prev found by its host id, back at its new pod IP; a Pilot of another ring holds', () => {
    const v = ring({ nodes: [node(1, { address: '10.0.0.7' }), node(2), node(3)] });
    expect(rejoined(ring(), ref(1, { address: '10.0.0.7', hostId: 'h1' }))).to.deep.include({ routine: true });
    expect(rejoined(ring(), ref(1, { address: '10.0.0.7', hostId: 'h1' }))?.reason).to.include('still has the node of pod cass-r1-0 (host id h1) at 10.0.0.1, not yet at its pod IP 10.0.0.7');
    expect(rejoined(v, ref(1, { address: '10.0.0.7', hostId: 'h1' }))).to.equal(undefined);
    const other = rejoined(ring(), ref(1, { hostId: 'h1', pilotCluster: 'other' }));
    expect(other?.routine).to.equal(undefined);
    expect(other?.reason).to.include('"other"');
  });
});

describe('cassandra through the Pilots: up-normal by the nodes\' own failure detectors', () => {
  it("holds when a fresh Pilot sees a peer down that the controller's driver reaches (a partition), naming who sees whom", () => {
    const v = ring({ pilots: [report(1, { peers: peersOf(1, { 3: { alive: false } }) }), report(2), report(3)] });
    const h = upNormal(v, ref(2));
    expect(h?.reason).to.match(/10\.0\.0\.1 \(dc1\/r1\) \(Pilot of cass-r1-0\) sees 10\.0\.0\.3 \(dc1\/r3\) down \(its failure detector/);
    expect(h?.reason).to.include('check the network between the nodes');
    expect(upNormal(ring({ pilots: [report(1), report(2), report(3)] }), ref(2))).to.equal(undefined);
  });
  it('holds on a peer not NORMAL in a node\'s gossip, and on a node not NORMAL in its own', () => {
    expect(upNormal(ring({ pilots: [report(1, { peers: peersOf(1, { 2: { status: 'LEAVING' } }) })] }), ref(3))?.reason).to.include('sees 10.0.0.2 (dc1/r2) as LEAVING');
    expect(upNormal(ring({ pilots: [report(1, { status: 'BOOT' })] }), ref(3))?.reason).to.include('(Pilot of cass-r1-0) reports itself BOOT');
    expect(upNormal(ring({ pilots: [report(1, { peers: peersOf(1, { 2: { status: 'shutdown', alive: false } }) })] }), ref(3))?.reason).to.include('sees 10.0.0.2 (dc1/r2) down');
  });
  it('a peer not judged yet (alive absent) or gone (LEFT) does not hold; a peer the view lacks is named by host id', () => {
    const unjudged = peersOf(1).map((p) => ({ hostId: p.hostId, address: p.address, status: p.status }));
    expect(upNormal(ring({ pilots: [report(1, { peers: unjudged })] }), ref(3))).to.equal(undefined);
    const left = [...peersOf(1), { hostId: 'h9', address: '10.0.0.9', status: 'LEFT', alive: false }];
    expect(upNormal(ring({ pilots: [report(1, { peers: left })] }), ref(3))).to.equal(undefined);
    const unknown = [...peersOf(1), { hostId: 'h9', address: '10.0.0.9', status: 'NORMAL', alive: false }];
    expect(upNormal(ring({ pilots: [report(1, { peers: unknown })] }), ref(3))?.reason).to.include('sees 10.0.0.9 (host id h9) down');
  });
  it('the node moved last, back UN for the controller but not yet for its peers: a routine wait; anything else is not', () => {
    const v = ring({ pilots: [report(2, { peers: peersOf(2, { 1: { alive: false } }) }), report(3)] });
    expect(upNormal(v, ref(3), ref(1))).to.deep.include({ routine: true });
    expect(upNormal(v, ref(3), null)?.routine).to.equal(undefined);
    expect(upNormal(v, ref(3), ref(2))?.routine).to.equal(undefined);
    expect(decide(v, ref(1), ref(3), policy)).to.deep.include({ check: 'up-normal', routine: true });
  });
  it("an unready next: its node seen down, and its own Pilot's view, do not hold; a Ready one's do", () => {
    const v = ring({ nodes: [node(1, { up: false }), node(2), node(3)], pilots: [report(1, { peers: peersOf(1, { 2: { alive: false }, 3: { alive: false } }) }), report(2, { peers: peersOf(2, { 1: { alive: false } }) }), report(3, { peers: peersOf(3, { 1: { alive: false } }) })] });
    expect(upNormal(v, ref(1, { ready: false, hostId: 'h1' }))).to.equal(undefined);
    expect(upNormal(v, ref(1, { ready: false }))).to.equal(undefined);
    expect(upNormal(v, ref(1, { hostId: 'h1' }))?.reason).to.include('10.0.0.1 (dc1/r1) is DN');
  });
  it('ringReports: only fresh Pilots of this ring count (not stale, not another ring of the namespace, not without a host id)', () => {
    const pilots = [
      pilot(1, { peers: peersOf(1, { 3: { alive: false } }) }, { beatAgoMs: 31_000 }),
      pilot(2, { hostId: 'z2', peers: [{ hostId: 'z1', status: 'shutdown', alive: false }] }, { cluster: 'ring', pod: 'other-0' }),
      pilot(3, { hostId: 'h3' }, { cluster: 'Test Cluster', pod: 'cass-r3-0' }),
      pilot(2, { hostId: undefined }, { pod: 'cass-r2-0' }),
    ];
    expect(ringReports(ring(), pilots, at(pilots), timing)).to.deep.equal([]);
    const fresh = ringReports(ring(), [pilot(1, {}, { beatAgoMs: 5_000 })], at([]), timing);
    expect(fresh).to.have.length(1);
    // Read no later than its heartbeat minus the read lag; a heartbeat ahead of the clock counts as now.
    expect(fresh[0]?.readAfter).to.equal(NOW - 5_000 - 20_000);
    expect(ringReports(ring(), [pilot(1, {}, { beatAgoMs: -10_000 })], at([]), timing)[0]?.readAfter).to.equal(NOW - 20_000);
  });
});

describe('cassandra through the Pilots: hints-delivered by reading the hints directories', () => {
  // Node 1 moved last: started 40 s ago, so that hints-settle (60 s) alone would still wait.
  const started = NOW - 40_000;
  const moved = (pilots: PilotReport[]) => ring({ nodes: [node(1, { startedAt: started }), node(2), node(3)], pilots });
  const lateEnough = started + HINTS_READ_DELAY_MS;

  it('passes without the hints-settle wait when every other node has a fresh Pilot read late enough, seeing it alive, with no file for it', () => {
    const v = moved([report(2, { readAfter: lateEnough }), report(3, { readAfter: lateEnough })]);
    expect(hintsDelivered(v, ref(1), 60_000, NOW)).to.equal(undefined);
    expect(decide(v, ref(1), ref(2), policy).kind).to.equal('approve');
  });
  it('holds while a Pilot lists hint files for it, naming the holder (also a file still being written)', () => {
    const v = moved([report(2, { readAfter: lateEnough, hints: [{ hostId: 'h1', files: 2 }] }), report(3, { readAfter: lateEnough })]);
    const h = hintsDelivered(v, ref(1), 60_000, NOW);
    expect(h).to.deep.include({ routine: true });
    expect(h?.reason).to.match(/^10\.0\.0\.2 \(dc1\/r2\) \(Pilot of cass-r2-0\) holds 2 hint file\(s\) for 10\.0\.0\.1 \(dc1\/r1\)/);
    // Even past hints-settle: a file read is a file there.
    expect(hintsDelivered(v, ref(1), 0, NOW)?.reason).to.include('holds 2 hint file(s)');
  });
  it('falls back to hints-settle, saying why, when the read does not settle it', () => {
    const cases: [PilotReport[], string][] = [
      [[report(2, { readAfter: lateEnough })], 'no fresh Pilot reports 10.0.0.3 (dc1/r3)'],
      [[report(2, { readAfter: lateEnough }), report(3, { readAfter: lateEnough - 1 })], 'the Pilot of cass-r3-0 may have read its hints less than 30 s after 10.0.0.1 (dc1/r1) started'],
      [[report(2, { readAfter: lateEnough }), report(3, { readAfter: lateEnough, peers: peersOf(3, { 1: { alive: false } }) })], '10.0.0.3 (dc1/r3) (Pilot of cass-r3-0) does not see 10.0.0.1 (dc1/r1) alive and NORMAL yet'],
      [[report(2, { readAfter: lateEnough }), report(3, { readAfter: lateEnough, peers: peersOf(3, { 1: { alive: undefined as unknown as boolean } }).map(({ alive: _, ...p }) => p) })], '10.0.0.3 (dc1/r3) (Pilot of cass-r3-0) does not see 10.0.0.1 (dc1/r1) alive and NORMAL yet'],
      [[report(2, { readAfter: lateEnough }), report(3, { readAfter: lateEnough, hints: undefined })], 'the Pilot of cass-r3-0 does not know its hints directory'],
      [[report(2, { readAfter: lateEnough }), report(3, { readAfter: lateEnough }), report(3, { pod: 'dup-0', readAfter: lateEnough - 1 })], 'the Pilot of dup-0 may have read'],
    ];
    for (const [pilots, why] of cases) {
      const h = hintsDelivered(moved(pilots), ref(1), 60_000, NOW);
      expect(h?.reason, why).to.match(/started 40 s ago: .* waits 20 s more/);
      expect(h?.reason, why).to.include(`not read from the Pilots: ${why}`);
    }
    // hints-settle over: the fallback lets it go, as without pilots.
    expect(hintsDelivered(moved([report(2, { readAfter: lateEnough })]), ref(1), 60_000, NOW + 20_000)).to.equal(undefined);
  });
  it('a node that left the ring (still in gossip) is not asked for a Pilot', () => {
    const v = ring({ nodes: [node(1, { startedAt: started }), node(2), node(3), node(4, { status: 'LEFT,-1,1700000000', up: false })], pilots: [report(2, { readAfter: lateEnough }), report(3, { readAfter: lateEnough })] });
    expect(hintsDelivered(v, ref(1), 60_000, NOW)).to.equal(undefined);
  });
  it("an unknown start (no gossip generation) is no read: the driver's answer only, as before", () => {
    const v = ring({ pilots: [report(2), report(3)] });
    expect(hintsDelivered(v, ref(1), 60_000, NOW)).to.equal(undefined);
  });
  it('the driver still has its say: pending_hints listed holds whatever the Pilots read', () => {
    const v = { ...moved([report(2, { readAfter: lateEnough }), report(3, { readAfter: lateEnough })]), hints: [{ on: '10.0.0.3', forHostId: 'h1', files: 1 }] };
    expect(hintsDelivered(v, ref(1), 60_000, NOW)?.reason).to.include('10.0.0.3 holds 1 hint file(s)');
  });
});

describe('cassandra through the Pilots: the hook call', () => {
  const options = (extra: Record<string, string> = {}): Options => {
    const r = parseHookOptions(cassandraHook, Object.fromEntries(Object.entries({ 'contact-points': 'a', ...extra }).map(([k, v]) => [`cassandra.sts-pilot.io/${k}`, v])));
    if (!r.ok) throw new Error(r.error);
    return r.options as Options;
  };
  const base = { signal: new AbortController().signal, secrets: async () => ({}), egress: loopbackEgress, nextReady: true };
  const answer = (p: Promise<unknown>) => p.then(() => 'approved', (e: unknown) => (e instanceof HookNotReady ? e.message : Promise.reject(e)));

  it('with no Pilot, or a reader that cannot list, the rules are as before (the fallback)', async () => {
    const now = Date.now();
    const v = ring({ nodes: [node(1, { startedAt: now - 40_000 }), node(2), node(3)] });
    for (const pilots of [staticPilotReader([]), { get: () => undefined, isFresh: () => true }, undefined]) {
      expect(await answer(transition(pod(1), pod(2), { ...base, options: options(), ...(pilots ? { pilots } : {}) }, async () => v))).to.match(/^\[hints-delivered\] .* waits (19|20) s more/);
    }
  });

  it('reads the Pilots end to end: a partition seen by one node holds; hints read let the step go before hints-settle', async () => {
    const now = Date.now();
    const v = ring({ nodes: [node(1, { startedAt: now - 60_000 }), node(2), node(3)] });
    const cut = [pilot(1, {}, { now }), pilot(2, { peers: peersOf(2, { 3: { alive: false } }) }, { now }), pilot(3, {}, { now })];
    expect(await answer(transition(pod(1), pod(2), { ...base, options: options({ 'hints-settle': '600' }), pilots: staticPilotReader(cut) }, async () => v))).to.match(
      /^\[up-normal\] .*\(Pilot of cass-r2-0\) sees 10\.0\.0\.3 \(dc1\/r3\) down/,
    );
    const healthy = [pilot(1, {}, { now }), pilot(2, {}, { now }), pilot(3, {}, { now })];
    expect(await answer(transition(pod(1), pod(2), { ...base, options: options({ 'hints-settle': '600' }), pilots: staticPilotReader(healthy) }, async () => v))).to.equal('approved');
    expect(await answer(rejoinedCheck(pod(1), { ...base, options: options({ 'hints-settle': '600' }), pilots: staticPilotReader(healthy) }, async () => v))).to.equal('approved');
    // A read lag larger than the node has been up: the read cannot settle it, hints-settle waits.
    expect(await answer(transition(pod(1), pod(2), { ...base, options: options({ 'hints-settle': '600', 'pilot-read-lag': '40' }), pilots: staticPilotReader(healthy) }, async () => v))).to.match(
      /^\[hints-delivered\] .*not read from the Pilots: the Pilot of cass-r2-0 may have read/,
    );
  });

  it("a pod whose Pilot names another ring's node holds node-known, naming both", async () => {
    const v = ring();
    const pilots = staticPilotReader([pilot(2, { hostId: 'h3' }, { now: Date.now() })]);
    expect(await answer(transition(null, pod(2), { ...base, options: options(), pilots }, async () => v))).to.match(/^\[node-known\] pod cass-r2-0 has IP 10\.0\.0\.2, but its Pilot reports host id h3/);
  });

  it('withPilots leaves the view as read when no Pilot is listed', () => {
    const v = ring();
    expect(withPilots(v, { options: options(), pilots: staticPilotReader([]) }, NOW)).to.equal(v);
  });
});

describe('cassandra podUpdateOrder (OnDelete)', () => {
  const o = (name: string, ordinal: number, ready = true, seed = false) => ({ pod: name, ordinal, ready, seed });

  it('unready first, seeds last, otherwise the highest ordinal first', () => {
    const r = updateOrder([o('c-0', 0, true, true), o('c-1', 1), o('c-2', 2), o('c-3', 3, false), o('c-4', 4, true, true), o('c-5', 5, false, true)]);
    expect(r.pods).to.deep.equal(['c-5', 'c-3', 'c-2', 'c-1', 'c-4', 'c-0']);
    expect(r.reason).to.equal('unready pods first, a broken node is replaced first (c-5, c-3), then the highest ordinal first (c-2, c-1), then seed nodes last, so that restarting nodes find their seeds up (c-4, c-0)');
    expect(checkUpdateOrder(r, ['c-0', 'c-1', 'c-2', 'c-3', 'c-4', 'c-5']).ok).to.equal(true);
  });

  it("a seed is labelled as cass-operator labels it, or named (pod or IP) in the seeds option", () => {
    const seeds = new Set(['c-1', '10.0.0.3']);
    expect(orderPodOf(pod(0, { name: 'c-0', labels: { 'cassandra.datastax.com/seed-node': 'true' } }), 'c', new Set()).seed).to.equal(true);
    expect(orderPodOf(pod(0, { name: 'c-0', labels: { 'cassandra.datastax.com/seed-node': 'false' } }), 'c', new Set()).seed).to.equal(false);
    expect(orderPodOf(pod(1, { name: 'c-1' }), 'c', seeds)).to.deep.equal({ pod: 'c-1', ordinal: 1, ready: true, seed: true });
    expect(orderPodOf(pod(3, { name: 'c-3' }), 'c', seeds).seed).to.equal(true);
    expect(orderPodOf(pod(2, { name: 'c-2', ready: false }), 'c', seeds)).to.deep.equal({ pod: 'c-2', ordinal: 2, ready: false, seed: false });
  });

  it('the hook answers with every stale pod, and the seeds option is checked before the first step', async () => {
    const parsed = parseHookOptions(cassandraHook, { 'cassandra.sts-pilot.io/contact-points': 'a', 'cassandra.sts-pilot.io/seeds': 'c-0' });
    if (!parsed.ok) throw new Error(parsed.error);
    const stale = [0, 1, 2].map((i) => pod(i, { name: `c-${i}` }));
    const ctx = { statefulSet: { metadata: { name: 'c' } }, options: parsed.options, signal: new AbortController().signal, log: undefined as never, secrets: async () => ({}), egress: loopbackEgress, pilots: staticPilotReader([]) };
    const r = await cassandraHook.podUpdateOrder!(stale, ctx);
    expect(r.pods).to.deep.equal(['c-2', 'c-1', 'c-0']);
    const bad = parseHookOptions(cassandraHook, { 'cassandra.sts-pilot.io/contact-points': 'a', 'cassandra.sts-pilot.io/seeds': 'C_0' });
    expect(bad.ok === false && bad.error).to.include('cassandra.sts-pilot.io/seeds');
  });
});
