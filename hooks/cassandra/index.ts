import type { V1Pod } from '@kubernetes/client-node';
import { defineHook, HookNotReady, type OrderContext, type RemovalContext } from '../../lib/hook.ts';
import { decide } from './decide.ts';
import { DECOMMISSION_ACTION, DECOMMISSION_ID, decideRemoval, pilotSideOf, withdrawnWarning } from './removal.ts';
import { Options } from './options.ts';
import { orderPodOf, updateOrder } from './order.ts';
import { type PilotTiming, nodeRefOf as pilotRefOf, ringReports } from './pilots.ts';
import { type ReadContext, readCluster, withClient } from './read.ts';
import type { CassandraView, NodeRef } from './view.ts';

type PilotContext = Partial<Pick<OrderContext<Options>, 'pilots'>> & Pick<ReadContext, 'options'>;

const timing = (ctx: Pick<ReadContext, 'options'>, now: number): PilotTiming => ({ maxAgeMs: ctx.options.pilotMaxAgeMs, readLagMs: ctx.options.pilotReadLagMs, now });

/** A pod as the rules know it: its IP, and the host id its own fresh Pilot reports (the node is found by it, else by the IP). */
export function nodeRefOf(pod: V1Pod | null, ready: boolean | null, ctx?: PilotContext, now = Date.now()): NodeRef | null {
  return pilotRefOf(pod, ready, ctx?.pilots, ctx ? timing(ctx, now) : { maxAgeMs: 0, readLagMs: 0, now });
}

/** The ring as read, with what the fresh Pilots of its nodes say (none when no pilot runs, or the reader cannot list). */
export function withPilots(view: CassandraView, ctx: PilotContext, now: number): CassandraView {
  const all = ctx.pilots?.list?.() ?? [];
  return all.length === 0 || !ctx.pilots ? view : { ...view, pilots: ringReports(view, all, ctx.pilots, timing(ctx, now)) };
}

export type ReadRing = (ctx: ReadContext) => Promise<CassandraView>;

/** podUpdateTransition with the ring read by `read` (the tests give a ring written by hand). */
export async function transition(prev: V1Pod | null, next: V1Pod | null, ctx: ReadContext & PilotContext & { nextReady: boolean | null }, read: ReadRing = readCluster) {
  const now = Date.now();
  const view = withPilots(await read(ctx), ctx, now);
  const p = nodeRefOf(prev, null, ctx, now);
  const n = nodeRefOf(next, ctx.nextReady, ctx, now);
  const d = decide(view, p, n, { ...ctx.options, now });
  if (d.kind === 'hold') throw new HookNotReady(`[${d.check}] ${d.reason}`, { routine: d.routine === true });
  return { view, note: d.note };
}

/** podRejoined with the ring read by `read`: the pod's node back UN under its pod IP, its hints delivered. */
export async function rejoinedCheck(pod: V1Pod, ctx: ReadContext & PilotContext, read: ReadRing = readCluster): Promise<void> {
  const now = Date.now();
  const view = withPilots(await read(ctx), ctx, now);
  const d = decide(view, nodeRefOf(pod, null, ctx, now), null, { ...ctx.options, now, skip: new Set([...ctx.options.skip, 'up-normal', 'schema-agreement']) });
  if (d.kind === 'hold') throw new HookNotReady(`[${d.check}] ${d.reason}`, { routine: d.routine === true });
}

/** podRemoval with the ring read by `read` (the tests give a ring written by hand). */
export async function removal(pod: V1Pod, ctx: ReadContext & Pick<RemovalContext<Options>, 'pilots' | 'pilotActions' | 'podReady' | 'statefulSet' | 'log'>, read: ReadRing = readCluster): Promise<void> {
  const now = Date.now();
  // The Pilots of the ring's nodes: space-to-absorb reads their free space and the leaving node's load.
  const view = withPilots(await read(ctx), ctx, now);
  const name = pod.metadata?.name ?? '';
  const side = pilotSideOf(ctx.pilots.get(name), pod.metadata?.uid, now);
  const d = decideRemoval(view, nodeRefOf(pod, ctx.podReady, ctx, now) as NodeRef, (ctx.statefulSet.spec?.replicas ?? 1) - 1, side, ctx.options.skip);
  const log = ctx.log.child({ hook: 'cassandra', removal: name });
  if (d.kind === 'hold') throw new HookNotReady(`[${d.rule}] ${d.reason}`, { routine: d.routine === true });
  if (d.kind === 'decommission') {
    const manual = `run "kubectl exec ${name} -- nodetool decommission" yourself; the removal goes on once the node has left the ring`;
    if (!ctx.pilotActions) throw new HookNotReady(`[no-pilot] the ring can spare the node of ${name}, but this caller cannot write requests to pilots: ${manual}`);
    let answer: string;
    try {
      answer = await ctx.pilotActions.request(name, { id: DECOMMISSION_ID, action: DECOMMISSION_ACTION, reason: `scale-down of ${ctx.statefulSet.metadata?.name ?? ''}: ${name} leaves` });
    } catch (err) {
      throw new HookNotReady(`[decommission-requested] could not ask the pilot of ${name} to decommission its node (${(err as Error).message}); asked again on the next call, or ${manual}`);
    }
    log.info({ note: d.note, answer }, 'decommission requested');
    throw new HookNotReady(`[decommission-requested] ${d.note}`, { routine: true });
  }
  log.info({ note: d.note }, 'removal approved');
}

/**
 * Cassandra, rolled as cass-operator rolls a rack: a node restarts only when
 * every node is UN (but an unready `next`), the live nodes agree on the
 * schema, no stream runs on it, and every keyspace keeps the declared
 * consistency level in every token range without it; the node moved last must
 * be back UN with its hints delivered first. See docs/cassandra.md.
 */
export const cassandraHook = defineHook({
  name: 'cassandra',
  description:
    'a node restarts only when every node is UN, one schema, no streams on it, and every keyspace keeps the consistency level (default LOCAL_QUORUM) in every token range without it; ' +
    "the node moved last must be back UN with its hints delivered; the nodes' own views read through their Pilots when pilots run; OnDelete: unready pods first, seed nodes last",
  options: Options,
  async podUpdateTransition(prev, next, ctx) {
    const { note } = await transition(prev, next, ctx);
    ctx.log.child({ hook: 'cassandra', prev: prev?.metadata?.name ?? null, next: next?.metadata?.name ?? null }).info({ note }, 'approved');
  },

  /**
   * Scale-down: the pod leaves once its node has left the ring. While it is in
   * it, and the ring can spare it, its pilot is asked to decommission it
   * (spec.actions of its Pilot); then the hook holds, routinely, while the node
   * streams its ranges away. A pod without a pilot holds, naming the command (removal.ts).
   */
  async podRemoval(pod: V1Pod, ctx) {
    await removal(pod, ctx);
  },

  /** A withdrawn scale-down whose decommission was already requested: say so (it cannot be called back). Nothing to undo otherwise. */
  async podRemoved(pod: V1Pod, outcome, ctx) {
    if (outcome !== 'withdrawn') return;
    const name = pod.metadata?.name ?? '';
    const w = withdrawnWarning(name, pilotSideOf(ctx.pilots.get(name), pod.metadata?.uid, Date.now()));
    if (w) ctx.warn?.(w);
  },

  /** The StatefulSets of one ring (one per rack, as cass-operator makes them) share one disruption budget: the ring is its cluster_name. */
  async applicationCluster(ctx) {
    const name = await withClient(ctx, async (c) => {
      const r = await c.execute('SELECT cluster_name FROM system.local');
      return String(r.rows[0]?.get('cluster_name') ?? '');
    });
    if (!name) throw new HookNotReady('the contact points report no Cassandra cluster_name');
    return name;
  },

  /** A moved pod holds its slot of the budget until its node is back UN under its pod IP and no node holds hints for it. */
  async podRejoined(pod: V1Pod, ctx) {
    await rejoinedCheck(pod, ctx);
  },

  /** OnDelete: unready pods first, seed nodes last, otherwise the highest ordinal first (order.ts). Needs no read of the ring. */
  async podUpdateOrder(stale: V1Pod[], ctx) {
    const sts = ctx.statefulSet.metadata?.name ?? '';
    return updateOrder(stale.map((p) => orderPodOf(p, sts, ctx.options.seeds)));
  },
});
