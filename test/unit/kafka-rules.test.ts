import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { brokerRefOf, processOf } from '../../hooks/kafka/broker-ref.ts';
import { type BrokerRef, decide, type StepPolicy } from '../../hooks/kafka/decide.ts';
import { notRejoined } from '../../hooks/kafka/health.ts';
import { minIsrCheck } from '../../hooks/kafka/min-isr.ts';
import { type OrderPod, updateOrder } from '../../hooks/kafka/order.ts';
import { quorumCheck } from '../../hooks/kafka/quorum.ts';
import type { ProcessState } from '../../hooks/kafka/refs.ts';
import { REGISTER_GRACE_MS, stillStarting } from '../../hooks/kafka/starting.ts';
import { kafkaHook, orderOf, type ReadView, rejoined } from '../../hooks/kafka/index.ts';
import type { Options } from '../../hooks/kafka/options.ts';
import { checkUpdateOrder, HookNotReady, type OrderContext, parseHookOptions } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import type { Pilot } from '../../lib/pilot/schema.ts';
import { type Spec, view } from './kafka-fixtures.ts';
import { loopbackEgress } from '../egress.ts';

// The rules the kafka hook takes from Strimzi's KafkaRoller (docs/kafka.md,
// "Where it rolls, and why"), each a named pure check: topics that can never
// keep min.insync.replicas, quorums of one or two voters, the active
// controller's turn, a broker still starting (log recovery), the OnDelete order.

const NOW = 1_900_000_000_000;
const running = (ageMs?: number): ProcessState => ({ running: true, source: 'its Pilot reports phase Running', ...(ageMs === undefined ? {} : { since: NOW - ageMs }) });
const ref = (id: number, o: Partial<BrokerRef> = {}): BrokerRef => ({ pod: `kafka-${id}`, id, ready: true, last: id === 0, ...o });
const policy: StepPolicy = { activeController: 'in-turn', strictMinIsr: false, strategy: 'RollingUpdate', now: NOW };
const answer = (s: Spec, next: BrokerRef, p: Partial<StepPolicy> = {}, prev: BrokerRef | null = null): string => {
  const d = decide(view(s), prev, next, { ...policy, ...p });
  return d.kind === 'hold' ? d.reason : `approved: ${d.note}${d.warnings ? ` | warn: ${d.warnings.join(' | warn: ')}` : ''}`;
};

describe('kafka hook: topics whose replication factor is at most min.insync.replicas (Strimzi skips them)', () => {
  const withSingle: Spec = { topics: { orders: ['0,1,2/0,1,2', '1,2,0/1,2,0'], single: ['2/2'], pairs: ['2,1/2,1', '1,2/1,2'] }, minIsr: { single: 1, pairs: 2 } };

  it('rolls by default, and the approval says which topics and what they lose', () => {
    expect(answer(withSingle, ref(2))).to.equal(
      'approved: broker 2 may restart: every partition it hosts with more replicas than min.insync.replicas keeps it, the quorum keeps a caught-up majority' +
        ' | warn: restarting broker 2 (pod kafka-2) takes topics whose replication factor is at most min.insync.replicas below it, as any restart of their replicas would: ' +
        'single (replication factor 1, min.insync.replicas 1, 1 partition on broker 2: offline while it restarts), ' +
        'pairs (replication factor 2, min.insync.replicas 2, 2 partitions on broker 2: acks=all producers fail while it restarts); ' +
        'rolled anyway, as Strimzi does: give them more replicas than min.insync.replicas, or set kafka.sts-pilot.io/strict-min-isr: "true" to hold on them',
    );
  });

  it('holds on them with strict-min-isr, as before, and says what the option does', () => {
    const r = minIsrCheck(view(withSingle), ref(2), true);
    expect(r.ok).to.equal(false);
    expect(!r.ok && r.reason).to.match(/^restarting broker 2 \(pod kafka-2\) would take 3 partitions below min\.insync\.replicas \(1 partition would go offline\): single-0 \(replicas 2, in sync 2, min\.insync\.replicas 1: its only replica\), pairs-0 .*, pairs-1 .*; kafka\.sts-pilot\.io\/strict-min-isr is "true"/);
  });

  it('says nothing when the broker hosts none of them, and a topic with more replicas is never skipped', () => {
    expect(minIsrCheck(view(withSingle), ref(0), false)).to.deep.equal({ ok: true });
    // RF 3, min.insync.replicas 2, broker 1 already out of sync (not the next one): the cluster holds first, and never warns.
    expect(answer({ topics: { orders: ['0,1,2/0,2'] } }, ref(2))).to.match(/^1 partition under-replicated: orders-0/);
  });
});

describe('kafka hook: controller quorums of one or two voters (Strimzi rolls them with a warning)', () => {
  it('a single voter restarts, with a warning that the quorum is down meanwhile', () => {
    expect(answer({ voters: [0], leader: 0, brokers: '0' , topics: { t: ['0/0'] }, minIsr: { t: 1 } }, ref(0))).to.match(
      /^approved: broker 0 \(the active controller, last\) may restart: .*, the quorum is too small to keep a majority without it \| warn: restarting broker 0 .* \| warn: controller 0 \(pod kafka-0\) is the only voter of the controller quorum: while it restarts the cluster has no active controller .* rolled anyway, as Strimzi does; run three \(or five\) controllers/,
    );
  });

  it('one of two voters restarts when the other is caught up (either is the leader), with a warning', () => {
    const two: Spec = { voters: [0, 1], leader: 0 };
    for (const id of [0, 1]) {
      const r = quorumCheck(view(two), ref(id));
      expect(r.ok, `voter ${id}`).to.equal(true);
      expect(r.ok && r.warning).to.match(new RegExp(`^the controller quorum has 2 voters \\(0,1\\): while controller ${id} \\(pod kafka-${id}\\) restarts, voter ${1 - id} alone is no majority`));
    }
    expect(answer(two, ref(1))).to.match(/^approved: .* \| warn: the controller quorum has 2 voters/);
  });

  it('one of two voters holds while the other is behind', () => {
    const r = quorumCheck(view({ voters: [0, 1], leader: 0, behind: { 1: 5000 } }), ref(0));
    expect(r).to.deep.equal({
      ok: false,
      reason: 'restarting controller 0 (pod kafka-0) would leave voter 1 of a 2-voter quorum, which is not caught up with the active controller 0 (more than 2000 ms behind): waiting for it to catch up',
    });
  });

  it('three voters keep the majority rule, five too', () => {
    expect(quorumCheck(view({}), ref(2))).to.deep.equal({ ok: true });
    expect(quorumCheck(view({ voters: [0, 1, 2, 3, 4], behind: { 3: 9000 } }), ref(4))).to.deep.equal({ ok: true });
    expect(quorumCheck(view({ voters: [0, 1, 2, 3, 4], behind: { 3: 9000, 1: -1 } }), ref(4)).ok).to.equal(false);
    expect(quorumCheck(view({ voters: [100, 101, 102] }), ref(7))).to.deep.equal({ ok: true }); // not a voter
  });
});

describe('kafka hook: a broker still starting is not restarted again (Strimzi: not in log recovery)', () => {
  const fenced: Spec = { brokers: '0 1 2f', topics: { orders: ['0,1,2/0,1', '1,2,0/1,0'] } };
  const starting = (s: Spec, p: ProcessState | undefined, ready = false) => stillStarting(view(s), ref(2, { ready, ...(p ? { process: p } : {}) }), NOW);

  it('holds a registered, fenced broker whose process runs: log recovery or metadata catch-up', () => {
    expect(answer(fenced, ref(2, { ready: false, process: running(3_600_000) }))).to.equal(
      'broker 2 (pod kafka-2, not Ready; its Pilot reports phase Running) is registered but fenced: it is recovering its logs or catching up with the metadata log, ' +
        'and a restart would start that over (Strimzi does not restart a broker in log recovery); waiting until it is unfenced; ' +
        'if it will never get there (a broken release), replace it with: sts-pilot approve <statefulset> --override --reason "…" --pod kafka-2',
    );
  });

  it('holds a broker not registered yet for a while after its start, then takes it as broken', () => {
    const gone: Spec = { brokers: '0 1', topics: { orders: ['0,1,2/0,1'] } };
    expect(starting(gone, running(60_000))).to.match(/^broker 2 \(pod kafka-2, not Ready; .*\) has run for 60 s and has not registered with the controller yet: .* waiting up to 5 min/);
    expect(starting(gone, { running: true, source: 'its containers run' })).to.match(/has run since an unknown time/);
    expect(starting(gone, running(REGISTER_GRACE_MS))).to.equal(undefined);
    expect(answer(gone, ref(2, { ready: false, process: running(REGISTER_GRACE_MS + 1) }))).to.match(/^approved: broker 2 may restart/);
  });

  it('replaces a pod whose process does not run, or of which nothing is known (a broken release stays replaceable)', () => {
    expect(starting(fenced, { running: false, source: 'container kafka is CrashLoopBackOff' })).to.equal(undefined);
    expect(starting(fenced, { running: undefined, source: 'nothing says' })).to.equal(undefined);
    expect(starting(fenced, undefined)).to.equal(undefined);
    expect(answer(fenced, ref(2, { ready: false }))).to.match(/^approved: broker 2 may restart/);
  });

  it('does not apply to a Ready pod, an unfenced broker, or a dedicated controller (never registered as a broker)', () => {
    expect(starting(fenced, running(1000), true)).to.equal(undefined);
    expect(starting({}, running(1000))).to.equal(undefined);
    expect(stillStarting(view({ voters: [100, 101, 102], leader: 100 }), ref(102, { ready: false, process: running(1000) }), NOW)).to.equal(undefined);
  });
});

describe('kafka hook: is the Kafka process of a pod running', () => {
  const pod = (status: V1Pod['status']): V1Pod => ({ metadata: { name: 'kafka-2', uid: 'u2' }, status });
  const t1 = new Date('2026-12-01T10:00:00Z');
  const t2 = new Date('2026-12-01T10:05:00Z');

  it('reads the containers first, then the Pilot, then the containers again', () => {
    expect(processOf(pod({ containerStatuses: [{ name: 'kafka', image: 'k', imageID: '', ready: false, restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } } }] }), 'Running')).to.deep.equal({
      running: false,
      source: 'container kafka is CrashLoopBackOff',
    });
    const up = pod({
      containerStatuses: [
        { name: 'kafka', image: 'k', imageID: '', ready: false, restartCount: 0, state: { running: { startedAt: t1 } } },
        { name: 'sidecar', image: 's', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: t2 } } },
      ],
    });
    expect(processOf(up, 'Running')).to.deep.equal({ running: true, source: 'its Pilot reports phase Running', since: t2.getTime() });
    expect(processOf(up, 'Failed')).to.deep.include({ running: false, source: 'its Pilot reports phase Failed' });
    expect(processOf(up, undefined)).to.deep.equal({ running: true, source: 'its containers run', since: t2.getTime() });
    expect(processOf(pod({ phase: 'Pending' }), undefined)).to.deep.equal({ running: false, source: 'the pod is Pending' });
    expect(processOf(pod(undefined), undefined).running).to.equal(undefined);
  });

  it("takes the phase from the pod's own Pilot only", () => {
    const sts: V1StatefulSet = { metadata: { name: 'kafka' } };
    const p = pod({ conditions: [{ type: 'Ready', status: 'False' }] });
    const pilot = (owner: string) => ({ metadata: { ownerReferences: [{ uid: owner }] }, status: { phase: 'Running', application: { kafka: { brokerId: 2 } } } });
    const mine = brokerRefOf(p, sts, 0, pilot('u2'));
    expect(mine.ok && mine.ref.process).to.deep.equal({ running: true, source: 'its Pilot reports phase Running' });
    const old = brokerRefOf(p, sts, 0, pilot('u-old'));
    expect(old.ok && old.ref.process?.running).to.equal(undefined);
  });
});

describe('kafka hook: the OnDelete order (podUpdateOrder: Strimzi KRaft order)', () => {
  const pods = (...xs: [number, boolean?][]): OrderPod[] => xs.map(([i, ready = true]) => ({ pod: `kafka-${i}`, id: i, ordinal: i, ready }));

  it('combined nodes: the followers, highest ordinal first, then the active controller', () => {
    const o = updateOrder(view({ leader: 1 }), pods([0], [1], [2]));
    expect(o).to.deep.equal({
      pods: ['kafka-2', 'kafka-0', 'kafka-1'],
      reason: "controllers first (kafka-2, kafka-0), then the active controller kafka-1 (node 1) after the other controllers: Strimzi's KRaft order",
    });
    expect(checkUpdateOrder(o, ['kafka-0', 'kafka-1', 'kafka-2']).ok).to.equal(true);
  });

  it('controllers (combined) before broker-only nodes, the active controller between; unready first in each group', () => {
    const s: Spec = { brokers: '0 1 2 3 4', voters: [0, 1, 2], leader: 2 };
    expect(updateOrder(view(s), pods([0], [1], [2], [3], [4])).pods).to.deep.equal(['kafka-1', 'kafka-0', 'kafka-2', 'kafka-4', 'kafka-3']);
    const o = updateOrder(view(s), pods([0, false], [1], [2], [3, false], [4]));
    expect(o.pods).to.deep.equal(['kafka-0', 'kafka-1', 'kafka-2', 'kafka-3', 'kafka-4']);
    expect(o.reason).to.equal(
      "controllers first (kafka-0, not Ready, kafka-1), then the active controller kafka-2 (node 2) after the other controllers, then broker-only nodes (kafka-3, not Ready, kafka-4): Strimzi's KRaft order, unready ones first in each group",
    );
  });

  it('a StatefulSet of brokers only: highest ordinal first; of dedicated controllers: the active one last', () => {
    expect(updateOrder(view({ voters: [100, 101, 102], leader: 100, brokers: '0 1 2' }), pods([0], [1], [2]))).to.deep.equal({
      pods: ['kafka-2', 'kafka-1', 'kafka-0'],
      reason: "broker-only nodes (kafka-2, kafka-1, kafka-0): Strimzi's KRaft order",
    });
    const ctl = [0, 1, 2].map((i) => ({ pod: `ctl-${i}`, id: 100 + i, ordinal: i, ready: true }));
    expect(updateOrder(view({ voters: [100, 101, 102], leader: 102 }), ctl).pods).to.deep.equal(['ctl-1', 'ctl-0', 'ctl-2']);
  });
});

describe('kafka hook: back in the cluster (podRejoined, and prev before a step)', () => {
  it('registered, unfenced, in every ISR it belongs to, and caught up as a voter', () => {
    expect(notRejoined(view({}), ref(2))).to.equal(undefined);
    expect(notRejoined(view({ brokers: '0 1' }), ref(2))).to.equal('waiting for broker 2 (pod kafka-2) to register with the controller');
    expect(notRejoined(view({ brokers: '0 1 2f' }), ref(2))).to.match(/^waiting for broker 2 \(pod kafka-2\) to be unfenced/);
    expect(notRejoined(view({ topics: { orders: ['0,1,2/0,1'] } }), ref(2))).to.equal('waiting for broker 2 (pod kafka-2) to catch up: 1 partition not back in sync: orders-0');
    expect(notRejoined(view({ behind: { 2: 5000 } }), ref(2))).to.match(/^waiting for controller 2 \(pod kafka-2\) to catch up with the metadata log/);
  });
});

describe('kafka hook: podRejoined and podUpdateOrder on a given view (the budget and the OnDelete order)', () => {
  const sts: V1StatefulSet = { metadata: { name: 'kafka', namespace: 'ns' }, spec: { updateStrategy: { type: 'OnDelete' } } as V1StatefulSet['spec'] };
  const pod = (i: number, ready = true): V1Pod => ({ metadata: { name: `kafka-${i}`, uid: `u${i}` }, status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } });
  const pilot = (i: number, clusterUUID: string): Pilot => ({
    metadata: { name: `kafka-${i}`, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: `kafka-${i}`, uid: `u${i}` }] },
    spec: { application: 'kafka' },
    status: { phase: 'Running', heartbeatTime: '2026-12-01T10:00:00Z', application: { probe: 'kafka', clusterUUID, kafka: { brokerId: i } } },
  });
  const ctx = (pilots: Pilot[] = [], annotations: Record<string, string> = {}): OrderContext<Options> => {
    const parsed = parseHookOptions(kafkaHook, { 'kafka.sts-pilot.io/bootstrap': 'k:9092', ...annotations });
    if (!parsed.ok) throw new Error(parsed.error);
    return { statefulSet: sts, options: parsed.options as Options, signal: AbortSignal.timeout(5000), log: createLogger({ level: 'silent' }), secrets: async () => ({}), egress: loopbackEgress, pilots: staticPilotReader(pilots) };
  };
  const reads = (s: Spec): ReadView => async () => ({ view: view(s), via: 'k:9092' });
  const why = (p: Promise<unknown>): Promise<string> => p.then(() => 'rejoined', (e: unknown) => (e instanceof HookNotReady ? e.message : Promise.reject(e)));

  it('podRejoined: once the broker is registered, unfenced and in every ISR; the Pilot must name the same cluster', async () => {
    expect(await why(rejoined(pod(2), ctx(), reads({})))).to.equal('rejoined');
    expect(await why(rejoined(pod(2), ctx(), reads({ topics: { orders: ['0,1,2/0,1'] } })))).to.equal('waiting for broker 2 (pod kafka-2) to catch up: 1 partition not back in sync: orders-0');
    expect(await why(rejoined(pod(2), ctx(), reads({ brokers: '0 1 2f' })))).to.match(/^waiting for broker 2 \(pod kafka-2\) to be unfenced/);
    expect(await why(rejoined(pod(2), ctx([pilot(2, 'other')]), reads({})))).to.equal('the Pilot of kafka-2 reports Kafka cluster other, but the bootstrap servers reach cluster c1');
    // node-id-offset maps the pod to its node: kafka-2 is node 102, a dedicated controller behind the leader.
    expect(await why(rejoined(pod(2), ctx([], { 'kafka.sts-pilot.io/node-id-offset': '100' }), reads({ voters: [100, 101, 102], behind: { 102: 9000 } })))).to.match(/^waiting for controller 102 \(pod kafka-2\)/);
  });

  it('podUpdateOrder: names every stale pod once, the active controller after the other controllers', async () => {
    const stale = [pod(0), pod(1), pod(2)];
    const o = await orderOf(stale, ctx([pilot(0, 'c1'), pilot(1, 'c1'), pilot(2, 'c1')]), reads({ leader: 2 }));
    expect(o.pods).to.deep.equal(['kafka-1', 'kafka-0', 'kafka-2']);
    expect(checkUpdateOrder(o, ['kafka-2', 'kafka-0', 'kafka-1']).ok).to.equal(true);
    expect(await why(orderOf(stale, ctx([pilot(1, 'other')]), reads({})))).to.match(/^the Pilot of kafka-1 reports Kafka cluster other/);
  });
});
