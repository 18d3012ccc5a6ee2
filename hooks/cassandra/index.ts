import type { V1Pod } from '@kubernetes/client-node';
import { defineHook, HookNotReady, type OrderContext } from '../../lib/hook.ts';
import { decide } from './decide.ts';
import { decideRemoval } from './removal.ts';
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

  /** Scale-down: the pod leaves once its node has left the ring (decommissioned); until then it holds, naming the command (removal.ts). */
  async podRemoval(pod: V1Pod, ctx) {
    const view = await readCluster(ctx);
    const d = decideRemoval(view, nodeRefOf(pod, ctx.podReady, ctx) as NodeRef, (ctx.statefulSet.spec?.replicas ?? 1) - 1);
    if (d.kind === 'hold') throw new HookNotReady(`[decommissioned] ${d.reason}`, { routine: d.routine === true });
    ctx.log.child({ hook: 'cassandra', removal: pod.metadata?.name ?? '' }).info({ note: d.note }, 'removal approved');
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
