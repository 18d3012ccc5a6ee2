import type { V1Pod } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineHook, type HookContext, HookNotReady, type OrderContext } from '../../lib/hook.ts';
import { connect, type PatroniClient } from './client.ts';
import { type Decision, decideOrder, decideTransition, type PodRef } from './decide.ts';
import { Options } from './options.ts';
import { readCluster } from './read.ts';
import { type ClusterView, isLeaderRole } from './view.ts';

/** After its own switchover a call waits this long for the cluster to settle before it holds. */
const SETTLE_MS = 20_000;
/** A Pilot older than this says nothing about which revision its pod runs. */
const PILOT_MAX_AGE_MS = 120_000;

type Ctx = HookContext<Options> | OrderContext<Options>;

const ready = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const refOf = (pod: V1Pod | null): PodRef | null => (pod ? { pod: pod.metadata?.name ?? '', ready: ready(pod) } : null);

/** Where to read /cluster: the url option, else the REST API of the pods the call is about. */
function seedsOf(o: Options, pods: readonly (V1Pod | null)[]): string[] {
  if (o.url) return [o.url];
  const out: string[] = [];
  for (const p of pods) {
    const ip = p?.status?.podIP;
    if (!ip) continue;
    const seed = `http://${ip.includes(':') ? `[${ip}]` : ip}:${o.port}`;
    if (!out.includes(seed)) out.push(seed);
  }
  return out;
}

/** Whether a member's pod runs the update revision: its Pilot says so (fresh, owned by that pod), or it is `prev`. */
function updatedBy(ctx: Ctx, prev: V1Pod | null): (member: string) => boolean {
  const upd = ctx.statefulSet.status?.updateRevision;
  return (member) => {
    if (!upd) return false;
    if (prev?.metadata?.name === member) return prev.metadata?.labels?.['controller-revision-hash'] === upd;
    const pilot = ctx.pilots.get(member);
    return pilot !== undefined && pilot.status?.revision === upd && ctx.pilots.isFresh(pilot, PILOT_MAX_AGE_MS);
  };
}

/** Wait until /cluster shows `candidate` as the running leader. */
async function confirmSwitchover(client: PatroniClient, seeds: string[], d: Extract<Decision, { kind: 'switchover' }>, ctx: Ctx): Promise<ClusterView> {
  const deadline = Date.now() + ctx.options.switchoverTimeoutSeconds * 1000;
  let last = '';
  while (Date.now() < deadline && !ctx.signal.aborted) {
    try {
      const v = await readCluster(client, seeds);
      const leader = v.members.find((m) => isLeaderRole(m.role) && m.state === 'running');
      if (leader?.name === d.candidate) return v;
      last = `leader ${leader?.name ?? 'none'}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(500, undefined, { signal: ctx.signal }).catch(() => undefined);
  }
  throw new HookNotReady(`switched over from ${d.leader} to ${d.candidate}, but /cluster does not show ${d.candidate} leading within ${ctx.options.switchoverTimeoutSeconds}s (last: ${last})`);
}

/**
 * PostgreSQL under Patroni: replicas first, then a switchover to an updated
 * replica, then the old leader; a member restarts only while the others stream
 * within max-lag. See docs/patroni.md.
 */
export const patroniHook = defineHook({
  name: 'patroni',
  description: 'PostgreSQL under Patroni: replicas first, a switchover before the leader restarts, and only while the others stream within max-lag',
  options: Options,

  async podUpdateOrder(stalePods, ctx) {
    const client = await connect(ctx);
    const view = await readCluster(client, seedsOf(ctx.options, stalePods));
    // The controller lists them highest ordinal first: replicas keep that order.
    const names = stalePods.map((p) => p.metadata?.name ?? '');
    const r = decideOrder(view, names);
    if (!r.ok) throw new HookNotReady(r.reason);
    return r.order;
  },

  async podUpdateTransition(prev, next, ctx) {
    const o = ctx.options;
    const log = ctx.log.child({ hook: 'patroni', prev: prev?.metadata?.name ?? null, next: next?.metadata?.name ?? null });
    const client = await connect(ctx);
    let seeds = seedsOf(o, [next, prev]);
    const updated = updatedBy(ctx, prev);
    let switched: { at: number; to: string } | undefined;
    for (;;) {
      const view = await readCluster(client, seeds);
      const d = decideTransition(view, refOf(prev), refOf(next), { maxLag: o.maxLag, switchoverTo: o.switchoverTo }, updated);
      if (d.kind === 'approve') {
        log.info({ note: d.note, switchedTo: switched?.to }, 'approved');
        return;
      }
      if (d.kind === 'hold') {
        // Right after our own switchover the replicas re-attach to the new leader: give them a moment.
        if (switched && Date.now() - switched.at < SETTLE_MS && !ctx.signal.aborted) {
          await sleep(1000, undefined, { signal: ctx.signal }).catch(() => undefined);
          continue;
        }
        throw new HookNotReady(switched ? `switched over to ${switched.to}; ${d.reason}` : d.reason);
      }
      if (switched) throw new HookNotReady(`switched over to ${switched.to}, and the leader is still ${d.leader}'s pod's member: waiting`);
      log.info({ from: d.leader, to: d.candidate, note: d.note }, 'switching over');
      const started = Date.now();
      const answer = await client.post(new URL('/switchover', d.leaderUrl).toString(), { leader: d.leader, candidate: d.candidate }, o.switchoverTimeoutSeconds * 1000);
      const confirmed = await confirmSwitchover(client, [new URL('/', view.members.find((m) => m.name === d.candidate)?.apiUrl ?? d.leaderUrl).toString().replace(/\/$/, ''), ...seeds], d, ctx);
      log.info({ from: d.leader, to: d.candidate, answer, ms: Date.now() - started, members: confirmed.members.map((m) => `${m.name}:${m.role}:${m.state}`) }, 'switchover confirmed by /cluster');
      switched = { at: Date.now(), to: d.candidate };
      // The old leader restarts as a replica: read the cluster through the new one first.
      const candidateUrl = view.members.find((m) => m.name === d.candidate)?.apiUrl;
      if (candidateUrl && !o.url) seeds = [new URL('/', candidateUrl).toString().replace(/\/$/, ''), ...seeds];
    }
  },
});
