import type { V1Pod } from '@kubernetes/client-node';
import { describeError } from '../../lib/errors.ts';
import { defineHook, type HookContext, HookNotReady, type OrderContext, type RemovalContext, type UpdateOrder } from '../../lib/hook.ts';
import type { KafkaUsage } from '../../lib/kafka/admin.ts';
import { brokerRefOf, type PilotSays, podOrdinal } from './broker-ref.ts';
import { closeConnections, type ConnectContext, onAny } from './client.ts';
import { type BrokerRef, decide } from './decide.ts';
import { notRejoined } from './health.ts';
import { Options } from './options.ts';
import { updateOrder } from './order.ts';
import type { Strategy } from './quorum.ts';
import { readCluster, readReassignments } from './read.ts';
import { decideRemoval, decideUnregister } from './removal.ts';
import type { KafkaView } from './view.ts';

type RefContext = Pick<HookContext<Options>, 'statefulSet' | 'options' | 'pilots'>;

async function brokerRef(pod: V1Pod | null, ctx: RefContext): Promise<{ ref: BrokerRef; pilot?: PilotSays } | null> {
  if (!pod) return null;
  const name = pod.metadata?.name ?? '';
  let pilot: unknown;
  try {
    pilot = ctx.pilots.get(name);
  } catch (err) {
    throw new HookNotReady(`cannot read the Pilot of ${name}: ${describeError(err, 200)}`);
  }
  const r = brokerRefOf(pod, ctx.statefulSet, ctx.options.nodeIdOffset, pilot);
  if (!r.ok) throw new HookNotReady(r.error);
  return r;
}

/** The cluster read afresh over the shared connection; min.insync.replicas of the topics on `moving` only. */
async function readAny(ctx: ConnectContext, moving: number | null = null): Promise<{ view: KafkaView; via: string; usage: KafkaUsage }> {
  const { value, via, usage } = await onAny(ctx, (admin) => readCluster(admin, moving));
  return { view: value, via, usage };
}

/** Why the pod's Pilot and the bootstrap servers disagree on the cluster, or undefined. */
function otherCluster(view: KafkaView, x: { ref: BrokerRef; pilot?: PilotSays } | null): string | undefined {
  if (x?.pilot?.clusterId && x.pilot.clusterId !== view.clusterId) {
    return `the Pilot of ${x.ref.pod} reports Kafka cluster ${x.pilot.clusterId}, but the bootstrap servers reach cluster ${view.clusterId}`;
  }
  return undefined;
}

function sameCluster(view: KafkaView, x: { ref: BrokerRef; pilot?: PilotSays } | null): void {
  const why = otherCluster(view, x);
  if (why) throw new HookNotReady(why);
}

/** The leaving pod's broker; its Pilot, when it reports the node id, confirms the mapping. */
async function leavingRef(pod: V1Pod, ctx: RemovalContext<Options>) {
  const r = (await brokerRef(pod, ctx)) as { ref: BrokerRef; pilot?: PilotSays };
  return { ...r, leaving: { pod: r.ref.pod, id: r.ref.id, ready: ctx.podReady, confirmed: r.pilot?.brokerId === r.ref.id } };
}

/** Reads the cluster for a call: the hook reads it live (readAny); unit tests give a view. */
export type ReadView = (ctx: ConnectContext) => Promise<{ view: KafkaView; via: string }>;

/** podUpdateOrder, with the cluster read by `read`. */
export async function orderOf(stale: V1Pod[], ctx: OrderContext<Options>, read: ReadView): Promise<UpdateOrder> {
  const refs = await Promise.all(stale.map((pod) => brokerRef(pod, ctx)));
  const { view } = await read(ctx);
  for (const x of refs) sameCluster(view, x);
  const stsName = ctx.statefulSet.metadata?.name ?? '';
  return updateOrder(
    view,
    refs.map((x) => {
      const r = (x as { ref: BrokerRef }).ref;
      return { pod: r.pod, id: r.id, ready: r.ready, ordinal: podOrdinal(r.pod, stsName) ?? 0 };
    }),
  );
}

/** podRejoined, with the cluster read by `read`: the pod's broker is back (notRejoined), in the cluster its Pilot names. */
export async function rejoined(pod: V1Pod, ctx: OrderContext<Options>, read: ReadView): Promise<void> {
  const r = await brokerRef(pod, ctx);
  const { view } = await read(ctx);
  sameCluster(view, r);
  const why = r && notRejoined(view, r.ref);
  if (why) throw new HookNotReady(why);
}

const strategyOf = (ctx: RefContext): Strategy => (ctx.statefulSet.spec?.updateStrategy?.type === 'OnDelete' ? 'OnDelete' : 'RollingUpdate');

/**
 * Kafka in KRaft mode, rolled where Strimzi's KafkaRoller rolls: a broker
 * restarts only when no partition it hosts falls below min.insync.replicas
 * (topics that never can: a warning), nothing else is under-replicated, it is
 * not still starting (log recovery), and the controller quorum keeps a
 * caught-up majority (1 or 2 voters: a warning); under OnDelete the active
 * controller goes after the other controllers; the next one waits until it is
 * back and caught up. See docs/kafka.md.
 */
export const kafkaHook = defineHook({
  name: 'kafka',
  description:
    'KRaft: a broker restarts only if every partition it hosts keeps min.insync.replicas and the quorum a caught-up majority; OnDelete: controllers, then the active one, then brokers; ' +
    'it leaves (scale-down) only when it hosts no replica and is no voter',
  options: Options,
  async podUpdateTransition(prev, next, ctx) {
    const [p, n] = await Promise.all([brokerRef(prev, ctx), brokerRef(next, ctx)]);
    const { view, via, usage } = await readAny(ctx, n?.ref.id ?? null);
    for (const x of [p, n]) sameCluster(view, x);
    const o = ctx.options;
    const d = decide(view, p?.ref ?? null, n?.ref ?? null, { activeController: o.activeController, strictMinIsr: o.strictMinIsr, strategy: strategyOf(ctx), now: Date.now() });
    if (d.kind === 'hold') throw new HookNotReady(d.reason, { routine: d.routine === true });
    const log = ctx.log.child({ hook: 'kafka', prev: p?.ref.id ?? null, next: n?.ref.id ?? null });
    // Approved, but people should know: each warning becomes a Warning Event (HookWarning) through the controller.
    for (const w of d.warnings ?? []) ctx.warn?.(w);
    log.info({ note: d.note, via, kafka: usage, ...(d.warnings ? { warnings: d.warnings } : {}) }, 'approved');
  },

  /**
   * OnDelete: Strimzi's KRaft order (order.ts): controller voters, the active
   * controller after them, then broker-only nodes; unready ones first in each
   * group, then the highest ordinal. Asked again before every step.
   */
  podUpdateOrder: (stale, ctx) => orderOf(stale, ctx, (c) => readAny(c)),

  /** StatefulSets of one Kafka cluster (pools of brokers, controllers) share one disruption budget: the cluster is its cluster.id. */
  async applicationCluster(ctx) {
    const { value } = await onAny(ctx, (admin) => admin.cluster());
    if (!value.clusterId) throw new HookNotReady('the bootstrap brokers report no Kafka cluster id');
    return value.clusterId;
  },

  /**
   * A moved pod holds its slot of the budget until its broker is registered,
   * unfenced and back in the ISR of every partition it hosts, and, for a voter,
   * caught up with the metadata log: what a step asks of `prev`.
   */
  podRejoined: (pod, ctx) => rejoined(pod, ctx, (c) => readAny(c)),

  /**
   * A scale-down's pod may go once its broker hosts no partition replica, no
   * reassignment involves it, it is not a controller-quorum voter, and the
   * cluster is healthy (removal.ts). Reads only: nothing to undo if withdrawn.
   */
  async podRemoval(pod, ctx) {
    const r = await leavingRef(pod, ctx);
    const { value, via } = await onAny(ctx, async (admin) => ({ view: await readCluster(admin, null), reassignments: await readReassignments(admin) }));
    sameCluster(value.view, r);
    const d = decideRemoval(value.view, value.reassignments, r.leaving);
    if (d.kind === 'hold') throw new HookNotReady(d.reason);
    const log = ctx.log.child({ broker: r.leaving.id });
    // A node the cluster does not know is approved: said louder, since the hook had nothing to check.
    if (value.view.brokers.has(r.leaving.id)) log.info({ note: d.note, via }, 'approved');
    else log.warn({ note: d.note, via }, 'approved');
  },
  /**
   * 'removed': unregister the gone broker from the KRaft cluster (UnregisterBroker),
   * so that the controller forgets it (a registration left behind blocks
   * metadata.version upgrades); already unregistered is done. 'withdrawn':
   * nothing to undo, podRemoval only read the cluster and prepared nothing.
   */
  async podRemoved(pod, outcome, ctx) {
    if (outcome === 'withdrawn') return;
    const r = await leavingRef(pod, ctx);
    const log = ctx.log.child({ broker: r.leaving.id });
    const { value, via } = await onAny(ctx, async (admin) => {
      const view = await readCluster(admin, null);
      // Said, not thrown: a HookNotReady thrown here would send onAny to the next broker.
      const other = otherCluster(view, r);
      if (other) return { kind: 'hold' as const, reason: other };
      const c = decideUnregister(view, r.leaving);
      if (c.kind !== 'unregister') return c;
      try {
        return { ...c, result: await admin.unregisterBroker(r.leaving.id) };
      } catch (err) {
        throw new HookNotReady(`cannot unregister broker ${r.leaving.id}: ${describeError(err, 300)}; UnregisterBroker needs Alter on the cluster`);
      }
    });
    if (value.kind === 'hold') throw new HookNotReady(value.reason);
    for (const w of value.warnings) ctx.warn?.(w);
    const result = 'result' in value ? value.result : 'not-registered';
    log.info({ note: value.note, result, via }, result === 'unregistered' ? 'unregistered the broker' : 'broker already unregistered');
  },

  /** Process stop: close the Kafka connections kept between calls. */
  close: closeConnections,
});
