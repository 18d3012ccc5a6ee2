import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { cassandraHook, removal } from '../../hooks/cassandra/index.ts';
import type { Options } from '../../hooks/cassandra/options.ts';
import { DECOMMISSION_ID, decideRemoval, noStreamingInRing, nodeUp, othersUp, type PilotSide, pilotSideOf, rangesOn, replicationFits, withdrawnWarning } from '../../hooks/cassandra/removal.ts';
import { bytes, spaceToAbsorb } from '../../hooks/cassandra/space.ts';
import type { CassandraView, KeyspaceView, NodeRef, NodeView, PilotReport } from '../../hooks/cassandra/view.ts';
import { HookNotReady, type PilotActions } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { Pilot, type PilotActionStatus } from '../../lib/pilot/schema.ts';
import { loopbackEgress } from '../egress.ts';
import { ks, node } from './cassandra-fixtures.ts';

// Scale-down of a Cassandra StatefulSet (docs/cassandra.md, "Scale-down"): the
// leaving node is decommissioned through its pod's pilot once the ring can
// spare it, and the pod goes once the ring no longer lists it. Rings and
// Pilots written by hand: four nodes in dc1 (the fourth leaves).

const rf3 = ks('app', { dc1: 3 }, [['h1', 'h2', 'h3'], ['h2', 'h3', 'h4'], ['h3', 'h4', 'h1'], ['h4', 'h1', 'h2']]);
const four = (): NodeView[] => [node(1), node(2), node(3), node(4)];
const GiB = 1024 ** 3;
/** A fresh Pilot report of node i (pod cass-<i-1>) with its data directory: 100 GiB, `free` free, `load` of data. */
const report = (i: number, disk: PilotReport['disk'] | null = { size: 100 * GiB, free: 50 * GiB, load: 10 * GiB }): PilotReport => ({
  pod: `cass-${i - 1}`,
  hostId: `h${i}`,
  clusterName: 'ring',
  status: 'NORMAL',
  peers: [],
  readAfter: 0,
  ...(disk ? { disk } : {}),
});
const roomy = (): PilotReport[] => [report(1), report(2), report(3), report(4)];
const ring = (o: Partial<CassandraView> = {}): CassandraView => ({ clusterName: 'ring', nodes: four(), keyspaces: [rf3], streams: [], hints: [], unread: [], pilots: roomy(), ...o });
const leaving: NodeRef = { pod: 'cass-3', address: '10.0.0.4', ready: true };
const live: PilotSide = { live: true };
const status = (state: PilotActionStatus['state'], o: Partial<PilotActionStatus> = {}): PilotActionStatus => ({ id: DECOMMISSION_ID, action: 'decommission', state, startTime: '2026-12-07T18:00:00Z', ...o });
const request = { id: DECOMMISSION_ID, action: 'decommission', requestTime: '2026-12-07T18:00:00Z' };

describe('cassandra scale-down: decommission through the pilot', () => {
  describe('decideRemoval', () => {
    it('asks for the decommission when the ring can spare the node and a pilot runs in the pod', () => {
      const d = decideRemoval(ring(), leaving, 3, live);
      expect(d.kind).to.equal('decommission');
      expect(d.kind === 'decommission' && d.note).to.match(/the ring can spare 10\.0\.0\.4 \(dc1\/r4\) of cass-3 .*decommission requested through its Pilot \(decommission-1\); 3 range\(s\) to stream away/);
      expect(d.kind === 'decommission' && d.note).to.match(/the nodes that stay in dc1 have room: needs 10\.0 GiB \(load 10737418240 B\); least free 50\.0 GiB \(10\.0\.0\.1\)/);
    });

    it('without a pilot in the pod: holds (not routine), naming the command, as before', () => {
      const d = decideRemoval(ring(), leaving, 3, { live: false, why: 'its Pilot has no status: no pilot runs in the pod' });
      expect(d).to.deep.include({ kind: 'hold', rule: 'no-pilot' });
      expect(d).to.not.have.property('routine');
      expect(d.kind === 'hold' && d.reason).to.match(/in the ring \(UN\).*no pilot runs in the pod.*kubectl exec cass-3 -- nodetool decommission/);
    });

    it('while the node is leaving (UL): a routine hold, streaming N ranges away', () => {
      const v = ring({ nodes: [node(1), node(2), node(3), node(4, { status: 'LEAVING,123' })], streams: [{ on: '10.0.0.4', operation: 'Unbootstrap', peers: ['10.0.0.1'], status: 'start' }] });
      const d = decideRemoval(v, leaving, 3, { live: true, request, status: status('Running') });
      expect(d).to.deep.include({ kind: 'hold', rule: 'decommissioning', routine: true });
      expect(d.kind === 'hold' && d.reason).to.equal('decommissioning 10.0.0.4 (dc1/r4) of cass-3: streaming 3 range(s) away (1 stream session(s)); the pod goes once the node has left the ring');
    });

    it('once the ring no longer lists the node (or lists it LEFT): approved', () => {
      expect(decideRemoval(ring({ nodes: [node(1), node(2), node(3)] }), leaving, 3, { live: true, request, status: status('Succeeded') })).to.deep.include({ kind: 'approve', rule: 'left-ring' });
      expect(decideRemoval(ring({ nodes: [...four().slice(0, 3), node(4, { status: 'LEFT,99,1700000000', up: false })] }), leaving, 3, live).kind).to.equal('approve');
    });

    it('left the ring while its live pilot still runs the decommission: a routine hold until the command returns (measured: the peers drop the node first)', () => {
      const left = ring({ nodes: [node(1), node(2), node(3)] });
      const d = decideRemoval(left, leaving, 3, { live: true, request, status: status('Running') });
      expect(d).to.deep.include({ kind: 'hold', rule: 'decommissioning', routine: true });
      expect(d.kind === 'hold' && d.reason).to.match(/^cass-3 \(10\.0\.0\.4\) has left the ring, and its pilot still runs the decommission \(decommission-1, since 2026-12-07T18:00:00Z\)/);
      // A command that hangs after its node left would hold for ever: the reason names the way out, which the next two lines take.
      expect(d.kind === 'hold' && d.reason).to.match(/stop it in the pod \(or restart the pod's pilot, which reports it interrupted\) and the removal goes on$/);
      // A pilot that no longer runs will not finish it: the node has left, the pod goes.
      expect(decideRemoval(left, leaving, 3, { live: false, why: 'its pilot is PreStop', request, status: status('Running') })).to.deep.include({ kind: 'approve', rule: 'left-ring' });
      expect(decideRemoval(left, leaving, 3, { live: true, request, status: status('Failed', { exitCode: 143 }) })).to.deep.include({ kind: 'approve', rule: 'left-ring' });
    });

    it('requested, not yet taken: routine while the pilot runs; not routine when no pilot would take it', () => {
      const waiting = decideRemoval(ring(), leaving, 3, { live: true, request });
      expect(waiting).to.deep.include({ kind: 'hold', rule: 'decommission-requested', routine: true });
      expect(waiting.kind === 'hold' && waiting.reason).to.match(/waiting for the pilot of cass-3 to take it/);
      const orphan = decideRemoval(ring(), leaving, 3, { live: false, why: "its pilot's last heartbeat is 300 s old", request });
      expect(orphan).to.deep.include({ kind: 'hold', rule: 'decommission-requested' });
      expect(orphan).to.not.have.property('routine');
      expect(orphan.kind === 'hold' && orphan.reason).to.match(/300 s old.*kubectl exec cass-3 -- nodetool decommission/);
    });

    it('running in the pilot, node not leaving yet; or done and the ring not yet updated: routine', () => {
      expect(decideRemoval(ring(), leaving, 3, { live: true, request, status: status('Running') })).to.deep.include({ kind: 'hold', rule: 'decommission-requested', routine: true });
      expect(decideRemoval(ring(), leaving, 3, { live: true, request, status: status('Succeeded', { exitCode: 0 }) })).to.deep.include({ kind: 'hold', rule: 'decommission-requested', routine: true });
    });

    it('failed in the pilot: holds (not routine) with the node\'s message and the way out', () => {
      const out = 'error: Not enough live nodes to maintain replication factor in keyspace app (RF = 3, N = 3). Perform a forceful decommission to ignore.\n-- StackTrace --';
      const d = decideRemoval(ring(), leaving, 3, { live: true, request, status: status('Failed', { exitCode: 2, message: 'exited with code 2', output: out }) });
      expect(d).to.deep.include({ kind: 'hold', rule: 'decommission-failed' });
      expect(d).to.not.have.property('routine');
      expect(d.kind === 'hold' && d.reason).to.match(/the decommission of 10\.0\.0\.4 \(dc1\/r4\) \(request decommission-1 to the pilot of cass-3\) failed: exited with code 2; its output ends: error: Not enough live nodes.*Way out: fix the cause, then run "kubectl exec cass-3 -- nodetool decommission" yourself/);
      const interrupted = decideRemoval(ring(), leaving, 3, { live: true, request, status: status('Failed', { message: 'interrupted: the pilot restarted while it ran; not run again' }) });
      expect(interrupted.kind === 'hold' && interrupted.reason).to.match(/failed: interrupted: the pilot restarted/);
    });

    it('refused by a pilot without a decommission command: holds, saying how to give it one', () => {
      const d = decideRemoval(ring(), leaving, 3, { live: true, request, status: status('Refused', { message: 'this pilot has no command for the action decommission (it was given none): not run' }) });
      expect(d).to.deep.include({ kind: 'hold', rule: 'decommission-failed' });
      expect(d.kind === 'hold' && d.reason).to.match(/was refused: this pilot has no command.*--app cassandra \(or --action decommission=/);
    });

    it('the ring cannot spare it: each rule holds with its name, and nothing is requested', () => {
      const cases: [string, CassandraView, RegExp, boolean][] = [
        ['node-up', ring({ nodes: [...four().slice(0, 3), node(4, { up: false })] }), /10\.0\.0\.4 \(dc1\/r4\) of cass-3 is DN: .*nodetool removenode h4/, false],
        ['others-up', ring({ nodes: [node(1), node(2, { up: false }), node(3), node(4)] }), /10\.0\.0\.2 \(dc1\/r2\) is DN.*bring the down nodes back first/, false],
        ['others-up', ring({ nodes: [node(1), node(2), node(3, { status: 'BOOT' }), node(4)] }), /10\.0\.0\.3 \(dc1\/r3\) is UJ.*wait for them to finish/, true],
        ['schema-agreement', ring({ nodes: [node(1), node(2, { schema: 's2' }), node(3), node(4)] }), /disagree on the schema/, true],
        ['no-streaming', ring({ streams: [{ on: '10.0.0.1', operation: 'Repair', peers: ['10.0.0.2'], status: 'start' }] }), /1 stream session\(s\) run in the ring \(Repair on 10\.0\.0\.1 with 10\.0\.0\.2/, true],
        ['no-streaming', ring({ unread: ['10.0.0.2'] }), /stream sessions of 10\.0\.0\.2 could not be read/, false],
        ['replication-fits', ring({ nodes: [node(1), node(2), node(4)] }), /keyspace app has replication factor 3 in dc1, and only 2 node\(s\) in dc1 would stay.*Lower its replication factor \(ALTER KEYSPACE app.*or add nodes first/, false],
      ];
      for (const [rule, v, reason, routine] of cases) {
        const d = decideRemoval(v, leaving, 3, live);
        expect(d, rule).to.deep.include({ kind: 'hold', rule });
        expect(d.kind === 'hold' && d.reason, rule).to.match(reason);
        expect(d.kind === 'hold' && d.routine === true, `${rule} routine`).to.equal(routine);
      }
    });

    it('a pod without an IP: approved only when the ring is all up and no larger than the pods that stay', () => {
      expect(decideRemoval(ring({ nodes: [node(1), node(2), node(3)] }), { ...leaving, address: '' }, 3, live).kind).to.equal('approve');
      const down = decideRemoval(ring({ nodes: [node(1), node(2), node(3), node(4, { up: false })] }), { ...leaving, address: '' }, 3, live);
      expect(down).to.deep.include({ kind: 'hold', rule: 'no-ip' });
      expect(down.kind === 'hold' && down.reason).to.match(/has no IP.*down: 10\.0\.0\.4 \(dc1\/r4\) host id h4.*nodetool removenode/);
    });
  });

  it('a scale-down withdrawn after the request: a warning (a decommission cannot be called back); nothing when none was asked', () => {
    expect(withdrawnWarning('cass-3', live)).to.equal(undefined);
    expect(withdrawnWarning('cass-3', { live: true, request })).to.match(/withdrawn after its node's decommission was requested \(decommission-1: not yet taken by the pilot\); a decommission cannot be called back.*delete the pod together with its PersistentVolumeClaim/);
    expect(withdrawnWarning('cass-3', { live: true, request, status: status('Running') })).to.match(/\(decommission-1: Running\)/);
    expect(withdrawnWarning('cass-3', { live: true, request, status: status('Failed', { message: 'exited with code 2' }) })).to.match(/Failed: exited with code 2\); check with nodetool status/);
  });

  describe('the rules', () => {
    it('replication-fits: NTS counts the leaving node\'s DC only; SimpleStrategy the whole ring; LocalStrategy and RF 0 are skipped', () => {
      const twoDc = [node(1), node(2), node(3, { dc: 'dc2' }), node(4)];
      const v = (k: KeyspaceView) => ring({ nodes: twoDc, keyspaces: [k] });
      // dc1 keeps h1, h2: RF 2 there fits, RF 3 does not; dc2's RF does not matter to a dc1 node.
      expect(replicationFits(v(ks('a', { dc1: 2, dc2: 1 }, [])), twoDc[3] as NodeView)).to.equal(undefined);
      expect(replicationFits(v(ks('a', { dc1: 3 }, [])), twoDc[3] as NodeView)?.reason).to.match(/replication factor 3 in dc1, and only 2 node\(s\) in dc1/);
      expect(replicationFits(v(ks('a', { dc2: 2 }, [])), twoDc[3] as NodeView)).to.equal(undefined);
      expect(replicationFits(v(ks('s', { '*': 3 }, [], 'SimpleStrategy')), twoDc[3] as NodeView)).to.equal(undefined);
      expect(replicationFits(v(ks('s', { '*': 4 }, [], 'SimpleStrategy')), twoDc[3] as NodeView)?.reason).to.match(/replication factor 4 in the ring, and only 3 node\(s\) in the ring/);
      expect(replicationFits(v(ks('system', { '*': 9 }, [], 'LocalStrategy')), twoDc[3] as NodeView)).to.equal(undefined);
      // A node already LEFT does not count as one that stays.
      const withLeft = ring({ nodes: [node(1), node(2), node(3, { status: 'LEFT,1,2' }), node(4)] });
      expect(replicationFits(withLeft, node(4))?.reason).to.match(/only 2 node/);
    });
    it('others-up ignores nodes that have left; node-up wants UN; no-streaming wants every node read', () => {
      expect(othersUp(ring({ nodes: [node(1), node(2), node(3, { status: 'LEFT,1,2', up: false }), node(4)] }), node(4))).to.equal(undefined);
      expect(nodeUp(node(4), 'cass-3')).to.equal(undefined);
      expect(nodeUp(node(4, { status: 'MOVING' }), 'cass-3')?.reason).to.match(/is UM/);
      expect(noStreamingInRing(ring())).to.equal(undefined);
    });
    it('rangesOn counts the ranges a decommission moves (LocalStrategy does not stream)', () => {
      expect(rangesOn(ring({ keyspaces: [rf3, ks('local', { '*': 1 }, [['h4']], 'LocalStrategy')] }), 'h4')).to.equal(3);
    });
  });

  describe('space-to-absorb: the nodes that stay can take the leaving node\'s load', () => {
    const n4 = node(4);
    it('enough space on every node that stays: passes, and so the decommission is asked for', () => {
      expect(spaceToAbsorb(ring(), n4)).to.equal(undefined);
      // Free exactly the load: enough (cass-operator holds only when free < needed).
      const exact = [report(1, { size: 20 * GiB, free: 10 * GiB, load: 1 }), report(2), report(3), report(4)];
      expect(spaceToAbsorb(ring({ pilots: exact }), n4)).to.equal(undefined);
    });

    it('one node short: holds before any request (not routine), naming the node with free vs needed and the ways out', () => {
      const short = [report(1), report(2, { size: 20 * GiB, free: 3.5 * GiB, load: 15 * GiB }), report(3), report(4)];
      const d = decideRemoval(ring({ pilots: short }), leaving, 3, live);
      expect(d).to.deep.include({ kind: 'hold', rule: 'space-to-absorb' });
      expect(d).to.not.have.property('routine');
      expect(d.kind === 'hold' && d.reason).to.equal(
        'cass-3 is not decommissioned yet: the nodes that stay in dc1 may not absorb the 10.0 GiB of 10.0.0.4 (dc1/r4): 10.0.0.2 (dc1/r2) (cass-1) has 3.5 GiB free of 20.0 GiB, less than 10.0 GiB needed. ' +
          'Give them room first (add nodes, expand their PersistentVolumeClaims, or free space: "nodetool clearsnapshot --all" drops snapshots), or scale down less; ' +
          'or switch the rule off (cassandra.sts-pilot.io/skip-checks: space-to-absorb) once you have checked the disks yourself',
      );
    });

    it('unknown figures hold, never approve: the leaving node\'s load, a staying node without a fresh Pilot, or one too old to report disk', () => {
      const noLoad = spaceToAbsorb(ring({ pilots: [report(1), report(2), report(3), report(4, null)] }), n4);
      expect(noLoad?.reason).to.match(/^the load of 10\.0\.0\.4 \(dc1\/r4\) is unknown \(10\.0\.0\.4 \(dc1\/r4\): its Pilot \(cass-3\) reports no data directory/);
      expect(noLoad?.reason).to.match(/--app-data-dir/);
      const noPilot = spaceToAbsorb(ring({ pilots: [report(1), report(3), report(4)] }), n4);
      expect(noPilot?.reason).to.match(/^the free space of nodes that stay in dc1 is unknown \(10\.0\.0\.2 \(dc1\/r2\): no fresh Pilot\), and 10\.0\.0\.4 \(dc1\/r4\) holds 10\.0 GiB/);
      const old = spaceToAbsorb(ring({ pilots: [report(1), report(2), report(3, null), report(4)] }), n4);
      expect(old?.reason).to.match(/10\.0\.0\.3 \(dc1\/r3\): its Pilot \(cass-2\) reports no data directory/);
      expect(spaceToAbsorb(ring({ pilots: undefined }), n4)?.reason).to.match(/is unknown/);
      for (const v of [ring({ pilots: [report(1), report(3), report(4)] }), ring({ pilots: undefined })]) expect(decideRemoval(v, leaving, 3, live)).to.deep.include({ kind: 'hold', rule: 'space-to-absorb' });
    });

    it('only the leaving node\'s datacenter counts: a full node in another DC, or one that left, does not hold', () => {
      const nodes = [...four(), node(5, { dc: 'dc2' }), node(6, { status: 'LEFT,1,2', up: false })];
      const full = { size: 10 * GiB, free: 1 * GiB, load: 9 * GiB };
      const pilots = [...roomy(), report(5, full), report(6, full)];
      expect(spaceToAbsorb(ring({ nodes, pilots }), n4)).to.equal(undefined);
      // ... and a node of dc2 with no Pilot is not asked either; the same node in dc1 would hold.
      expect(spaceToAbsorb(ring({ nodes, pilots: roomy() }), n4)).to.equal(undefined);
      expect(spaceToAbsorb(ring({ nodes: [...four(), node(5)], pilots: [...roomy(), report(5, full)] }), n4)?.reason).to.match(/10\.0\.0\.5 \(dc1\/r5\) \(cass-4\) has 1\.0 GiB free/);
    });

    it('switched off by name (skip-checks: space-to-absorb): the decommission is asked for, and the note says the rule was off', () => {
      const d = decideRemoval(ring({ pilots: undefined }), leaving, 3, live, new Set(['space-to-absorb']));
      expect(d.kind).to.equal('decommission');
      expect(d.kind === 'decommission' && d.note).to.match(/space-to-absorb switched off/);
      // A step's rules of the same name do not switch off the decommission's.
      const streaming = ring({ streams: [{ on: '10.0.0.1', operation: 'Repair', peers: ['10.0.0.2'], status: 'start' }] });
      expect(decideRemoval(streaming, leaving, 3, live, new Set(['no-streaming', 'schema-agreement']))).to.deep.include({ kind: 'hold', rule: 'no-streaming' });
    });

    it('bytes in human units', () => {
      expect([bytes(0), bytes(1023), bytes(1536), bytes(3.5 * GiB), bytes(2 * 1024 * GiB)]).to.deep.equal(['0 B', '1023 B', '1.5 KiB', '3.5 GiB', '2.0 TiB']);
    });
  });

  describe('pilotSideOf: the leaving pod\'s pilot, from its Pilot', () => {
    const NOW = Date.parse('2026-12-07T18:01:00Z');
    const mk = (o: { owner?: string; status?: Record<string, unknown>; actions?: unknown[] } = {}): Pilot =>
      Pilot.parse({
        metadata: { name: 'cass-3', uid: 'p-1', ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'cass-3', uid: o.owner ?? 'pod-1' }] },
        spec: { application: 'cassandra', ...(o.actions ? { actions: o.actions } : {}) },
        ...(o.status ? { status: o.status } : {}),
      });
    const running = { phase: 'Running', heartbeatTime: '2026-12-07T18:00:50Z' };
    it('live: its own Pilot, Running, fresh; with the request and its status', () => {
      expect(pilotSideOf(mk({ status: running }), 'pod-1', NOW)).to.deep.equal({ live: true });
      const p = mk({ status: { ...running, actions: [status('Running')] }, actions: [request] });
      expect(pilotSideOf(p, 'pod-1', NOW)).to.deep.equal({ live: true, request, status: status('Running') });
    });
    it('not live: no Pilot, an earlier pod\'s, no status, stale, or not Running — each says why', () => {
      expect(pilotSideOf(undefined, 'pod-1', NOW)).to.deep.equal({ live: false, why: 'the pod has no Pilot' });
      expect(pilotSideOf(mk({ owner: 'pod-0', status: running }), 'pod-1', NOW).why).to.match(/earlier pod/);
      expect(pilotSideOf(mk(), 'pod-1', NOW).why).to.match(/no status: no pilot runs in the pod/);
      expect(pilotSideOf(mk({ status: { ...running, heartbeatTime: '2026-12-07T17:50:00Z' } }), 'pod-1', NOW).why).to.equal("its pilot's last heartbeat is 660 s old");
      const stopping = pilotSideOf(mk({ status: { ...running, phase: 'PreStop' }, actions: [request] }), 'pod-1', NOW);
      expect(stopping).to.deep.equal({ live: false, why: 'its pilot is PreStop', request });
    });
  });

  describe('podRemoval (removal): the request goes through ctx.pilotActions, once', () => {
    const sts: V1StatefulSet = { metadata: { name: 'cass', namespace: 'db' }, spec: { replicas: 3, selector: {}, serviceName: 'cass', template: {} } };
    const pod: V1Pod = { metadata: { name: 'cass-3', uid: 'pod-1' }, status: { podIP: '10.0.0.4' } };
    const options = { contactPoints: [{ host: '127.0.0.1', port: 9042 }], skip: new Set(), pilotMaxAgeMs: 30_000, pilotReadLagMs: 20_000 } as unknown as Options;
    const pilotOf = (i: number): Pilot =>
      Pilot.parse({
        metadata: { name: `cass-${i - 1}`, uid: `p-${i}`, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: `cass-${i - 1}`, uid: `pod-${i - 3}` }] },
        spec: { application: 'cassandra' },
        status: {
          phase: 'Running',
          heartbeatTime: new Date().toISOString(),
          application: { probe: 'cassandra', clusterName: 'ring', cassandra: { hostId: `h${i}`, disk: { dataDir: '/var/lib/cassandra/data', size: 100 * GiB, free: 50 * GiB, load: GiB } } },
        },
      });
    // The leaving pod's Pilot, and (unless left out) those of the three nodes that stay: the disk figures space-to-absorb reads.
    const fresh = (): Pilot => pilotOf(4);
    const stayers = (): Pilot[] => [pilotOf(1), pilotOf(2), pilotOf(3)];
    const ctx = (mine: Pilot[], actions?: PilotActions, others = mine.length > 0 ? stayers() : []) => ({
      ...ctxOf([...mine, ...others], actions),
    });
    const ctxOf = (pilots: Pilot[], actions?: PilotActions) => ({
      statefulSet: sts,
      options,
      signal: AbortSignal.timeout(5000),
      log: createLogger({ level: 'silent' }),
      secrets: async () => ({}),
      egress: loopbackEgress,
      pilots: staticPilotReader(pilots),
      podReady: true,
      ...(actions ? { pilotActions: actions } : {}),
    });
    const held = async (p: Promise<unknown>): Promise<HookNotReady> => {
      const err = await p.then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(HookNotReady);
      return err as HookNotReady;
    };

    it('writes the request, then holds routinely; a failing write holds, to be asked again', async () => {
      const asked: unknown[] = [];
      const ok: PilotActions = { request: async (p, r) => (asked.push([p, r]), 'requested') };
      const e = await held(removal(pod, ctx([fresh()], ok), async () => ring()));
      expect(e.routine).to.equal(true);
      expect(e.message).to.match(/^\[decommission-requested\] the ring can spare 10\.0\.0\.4/);
      expect(asked).to.deep.equal([['cass-3', { id: DECOMMISSION_ID, action: 'decommission', reason: 'scale-down of cass: cass-3 leaves' }]]);
      expect(e.message).to.match(/the nodes that stay in dc1 have room: needs 1\.0 GiB \(load 1073741824 B\); least free 50\.0 GiB/);
      const failing: PilotActions = { request: async () => Promise.reject(new Error('403 forbidden')) };
      const f = await held(removal(pod, ctx([fresh()], failing), async () => ring()));
      expect(f.routine).to.equal(false);
      expect(f.message).to.match(/could not ask the pilot of cass-3 to decommission its node \(403 forbidden\); asked again on the next call/);
    });

    it('asks nothing when the ring cannot spare the node, or the pod has no pilot; approves once the node has left', async () => {
      const asked: unknown[] = [];
      const spy: PilotActions = { request: async (p, r) => (asked.push([p, r]), 'requested') };
      const e = await held(removal(pod, ctx([fresh()], spy), async () => ring({ nodes: [node(1), node(2, { up: false }), node(3), node(4)] })));
      expect(e.message).to.match(/^\[others-up\]/);
      const n = await held(removal(pod, ctx([], spy), async () => ring()));
      expect(n.message).to.match(/^\[no-pilot\] .*the pod has no Pilot/);
      // The Pilots of the nodes that stay are read: without them, no request.
      const s = await held(removal(pod, ctx([fresh()], spy, []), async () => ring()));
      expect(s.message).to.match(/^\[space-to-absorb\] cass-3 is not decommissioned yet: the free space of nodes that stay in dc1 is unknown/);
      expect(asked).to.deep.equal([]);
      await removal(pod, ctx([fresh()], spy), async () => ring({ nodes: [node(1), node(2), node(3)] }));
    });

    it('podRemoved(withdrawn) warns when a decommission was requested, and says nothing otherwise', async () => {
      const warned: string[] = [];
      const asked = Pilot.parse({ ...fresh(), spec: { application: 'cassandra', actions: [request] } });
      const rctx = (pilots: Pilot[]) => ({ ...ctx(pilots), warn: (w: string) => warned.push(w), volumes: 'kept' as const, requestedReplicas: 4 });
      await cassandraHook.podRemoved?.(pod, 'withdrawn', rctx([asked]) as never);
      await cassandraHook.podRemoved?.(pod, 'withdrawn', rctx([fresh()]) as never);
      await cassandraHook.podRemoved?.(pod, 'removed', rctx([asked]) as never);
      expect(warned).to.have.length(1);
      expect(warned[0]).to.match(/^the scale-down of cass-3 was withdrawn after its node's decommission was requested/);
    });

    it('a caller without pilotActions holds, naming the manual command', async () => {
      const e = await held(removal(pod, ctx([fresh()]), async () => ring()));
      expect(e.message).to.match(/^\[no-pilot\] the ring can spare the node of cass-3, but this caller cannot write requests to pilots: run "kubectl exec cass-3 -- nodetool decommission"/);
    });
  });
});
