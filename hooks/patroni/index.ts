import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineHook, type HookContext, HookNotReady, type OrderContext, type RemovalContext } from '../../lib/hook.ts';
import type { Logger } from '../../lib/log.ts';
import { connect, type PatroniClient } from './client.ts';
import { type Decision, decideOrder, decideTransition, type PodRef } from './decide.ts';
import { Options } from './options.ts';
import { firstCluster, readCluster } from './read.ts';
import { identityFromPilots, identityFromView, notRejoined, type PilotIdentity } from './identity.ts';
import { decideRemoval, decideRemoved, leavingPods, podIndex } from './removal.ts';
import { leadingState } from './rules.ts';
import type { ClusterView } from './view.ts';

/** After its own switchover a call waits this long for the cluster to settle before it holds. */
const SETTLE_MS = 20_000;
/** A Pilot older than this says nothing about which revision its pod runs. */
const PILOT_MAX_AGE_MS = 120_000;

type Ctx = HookContext<Options> | OrderContext<Options>;
type RemovalCtx = RemovalContext<Options>;

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

/** Name, size and first ordinal of the StatefulSet: what the scale-down decisions count with. */
const stsShape = (sts: V1StatefulSet) => ({ name: sts.metadata?.name ?? '', replicas: sts.spec?.replicas ?? 0, start: sts.spec?.ordinals?.start ?? 0 });

/**
 * Per StatefulSet (uid): the REST API addresses of the members the hook read
 * last during a scale-down, for the calls whose pod is gone or does not answer.
 * In memory only: after a restart the pods' DNS names are the fallback.
 */
const remembered = new Map<string, { member: string; root: string }[]>();
const REMEMBERED_MAX = 500;

/** Reads with the DCS configuration, and remembers where the members answer. */
async function readRemembered(client: PatroniClient, seeds: string[], sts: V1StatefulSet): Promise<ClusterView> {
  const view = await readCluster(client, seeds, { config: true });
  const uid = sts.metadata?.uid;
  if (uid) {
    const roots = view.members.flatMap((m) => {
      try {
        return m.apiUrl ? [{ member: m.name, root: new URL('/', m.apiUrl).toString().replace(/\/$/, '') }] : [];
      } catch {
        return [];
      }
    });
    remembered.delete(uid);
    remembered.set(uid, roots);
    if (remembered.size > REMEMBERED_MAX) remembered.delete(remembered.keys().next().value as string);
  }
  return view;
}

/** The REST API of the StatefulSet's pods by their DNS names under its governing Service (<pod>.<service>.<namespace>.svc), the first five. */
function dnsSeeds(sts: V1StatefulSet, port: number, except?: string): string[] {
  const { name, replicas, start } = stsShape(sts);
  const service = sts.spec?.serviceName;
  const ns = sts.metadata?.namespace;
  if (!service || !ns) return [];
  const out: string[] = [];
  for (let i = 0; i < Math.min(replicas, 5); i++) {
    const p = `${name}-${start + i}`;
    if (p !== except) out.push(`http://${p}.${service}.${ns}.svc:${port}`);
  }
  return out;
}

/** What the fresh Pilots of the StatefulSet's pods report of their members: scope and system identifier. */
function pilotIdentities(ctx: Ctx): PilotIdentity[] {
  const { name, replicas, start } = stsShape(ctx.statefulSet);
  const out: PilotIdentity[] = [];
  for (let i = 0; i < replicas; i++) {
    const pod = `${name}-${start + i}`;
    const pilot = ctx.pilots.get(pod);
    const app = pilot?.status?.application;
    if (!pilot || app?.probe !== 'patroni' || !ctx.pilots.isFresh(pilot, PILOT_MAX_AGE_MS)) continue;
    out.push({ pod, scope: app.clusterName, systemId: app.systemIdentifier });
  }
  return out;
}

/**
 * Where a scale-down call reads /cluster: the url option; else the leaving pod
 * (while it exists), the members read last (without the leaving one, whose
 * address may no longer answer at all), then the DNS names of the other pods
 * under the StatefulSet's governing Service (<pod>.<service>.<namespace>.svc).
 */
function removalSeeds(ctx: RemovalCtx, leaving: string, pod: V1Pod | null): string[] {
  const o = ctx.options;
  if (o.url) return [o.url];
  const sts = ctx.statefulSet;
  const out = seedsOf(o, [pod]);
  for (const { member, root } of remembered.get(sts.metadata?.uid ?? '') ?? []) if (member !== leaving && !out.includes(root)) out.push(root);
  for (const seed of dnsSeeds(sts, o.port, leaving)) if (!out.includes(seed)) out.push(seed);
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

/**
 * Polls while confirming a switchover and settling after it back off from
 * POLL_FIRST_MS to POLL_MAX_MS: within the default 60 s that is ~30 reads, not
 * 120, and each confirmation read is one GET /cluster, not one per member.
 */
const POLL_FIRST_MS = 250;
const POLL_MAX_MS = 2000;
export const pollDelayMs = (attempt: number): number => Math.min(POLL_MAX_MS, POLL_FIRST_MS * 2 ** Math.min(attempt, 16));

/** Wait until /cluster (one GET, first seed that answers) shows `candidate` as the running leader. */
async function confirmSwitchover(client: PatroniClient, seeds: string[], d: Extract<Decision, { kind: 'switchover' }>, ctx: Ctx): Promise<void> {
  const deadline = Date.now() + ctx.options.switchoverTimeoutSeconds * 1000;
  let last = '';
  for (let attempt = 0; Date.now() < deadline && !ctx.signal.aborted; attempt++) {
    last = await leaderIn(client, seeds).then((leader) => (leader === d.candidate ? '' : `leader ${leader ?? 'none'}`), (err: unknown) => (err instanceof Error ? err.message : String(err)));
    if (last === '') return;
    await sleep(Math.min(pollDelayMs(attempt), Math.max(0, deadline - Date.now())), undefined, { signal: ctx.signal }).catch(() => undefined);
  }
  throw new HookNotReady(`switched over from ${d.leader} to ${d.candidate}, but /cluster does not show ${d.candidate} leading within ${ctx.options.switchoverTimeoutSeconds}s (last: ${last})`);
}

/** The running leader's name in the first /cluster that answers. */
async function leaderIn(client: PatroniClient, seeds: string[]): Promise<string | undefined> {
  const { cluster } = await firstCluster(client, seeds);
  return cluster.members.find((m) => leadingState(m) === undefined)?.name;
}

/**
 * One call: read -> decide -> (switch over -> read -> decide)? -> approve or
 * hold. Resolves on an approval, throws HookNotReady on a hold. A switchover is
 * made at most once per call and confirmed in /cluster; then the others get
 * SETTLE_MS to re-attach to the new leader before a hold is final.
 */
async function decideAndAct(
  ctx: Ctx,
  log: Logger,
  client: PatroniClient,
  initialSeeds: string[],
  read: (seeds: string[]) => Promise<ClusterView>,
  decide: (view: ClusterView) => Decision,
): Promise<void> {
  const o = ctx.options;
  let seeds = initialSeeds;
  let switched: { at: number; to: string } | undefined;
  for (let settling = 0; ; settling++) {
    const view = await read(seeds);
    const d = decide(view);
    if (d.kind === 'approve') {
      log.info({ note: d.note, switchedTo: switched?.to }, 'approved');
      return;
    }
    if (d.kind === 'hold') {
      // Right after our own switchover the replicas re-attach to the new leader: give them a moment.
      if (switched && Date.now() - switched.at < SETTLE_MS && !ctx.signal.aborted) {
        await sleep(pollDelayMs(settling + 2), undefined, { signal: ctx.signal }).catch(() => undefined);
        continue;
      }
      throw new HookNotReady(switched ? `switched over to ${switched.to}; ${d.reason}` : d.reason, { routine: d.routine === true });
    }
    if (switched) throw new HookNotReady(`switched over to ${switched.to}, and the leader is still ${d.leader}'s pod's member: waiting`, { routine: true });
    log.info({ from: d.leader, to: d.candidate, note: d.note }, 'switching over');
    const started = Date.now();
    const answer = await client.post(new URL('/switchover', d.leaderUrl).toString(), { leader: d.leader, candidate: d.candidate }, o.switchoverTimeoutSeconds * 1000);
    await confirmSwitchover(client, [new URL('/', view.members.find((m) => m.name === d.candidate)?.apiUrl ?? d.leaderUrl).toString().replace(/\/$/, ''), ...seeds], d, ctx);
    log.info({ from: d.leader, to: d.candidate, answer, ms: Date.now() - started }, 'switchover confirmed by /cluster');
    switched = { at: Date.now(), to: d.candidate };
    // The old leader restarts as a replica: read the cluster through the new one first.
    const candidateUrl = view.members.find((m) => m.name === d.candidate)?.apiUrl;
    if (candidateUrl && !o.url) seeds = [new URL('/', candidateUrl).toString().replace(/\/$/, ''), ...seeds];
  }
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
    const updated = updatedBy(ctx, prev);
    await decideAndAct(ctx, log, client, seedsOf(o, [next, prev]), (seeds) => readCluster(client, seeds), (view) =>
      decideTransition(view, refOf(prev), refOf(next), { maxLag: o.maxLag, switchoverTo: o.switchoverTo }, updated),
    );
  },

  /**
   * The application cluster, for the disruption budget: the Patroni scope and
   * the database system identifier (docs/patroni.md, "The disruption budget").
   * From the url option's REST API when set; else from the fresh Pilots of the
   * StatefulSet's pods (each the member's own /patroni, read by the pilot in
   * the pod: no request, and no address needed); with neither, from the pods'
   * REST API by their DNS names. Throws (HookNotReady) when it cannot tell.
   */
  async applicationCluster(ctx) {
    const o = ctx.options;
    if (!o.url) {
      const fromPilots = identityFromPilots(pilotIdentities(ctx));
      if (fromPilots && 'id' in fromPilots) return fromPilots.id;
      if (fromPilots) throw new HookNotReady(fromPilots.reason);
    }
    const seeds = o.url ? [o.url] : dnsSeeds(ctx.statefulSet, o.port);
    if (seeds.length === 0) throw new HookNotReady("no Pilot reports its member's scope and system identifier, and there is no url option nor governing Service to reach Patroni's REST API");
    const client = await connect(ctx);
    const r = identityFromView(await readCluster(client, seeds));
    if ('reason' in r) throw new HookNotReady(r.reason);
    return r.id;
  },

  /**
   * The moved pod's member is back in Patroni's terms: in /cluster, leading, or
   * replicating (streaming; running on Patroni before 3.0.4; in archive
   * recovery) the leader's database system within max-lag. Its slot of the
   * disruption budget is held until then.
   */
  async podRejoined(pod, ctx) {
    const client = await connect(ctx);
    const view = await readCluster(client, seedsOf(ctx.options, [pod]));
    const why = notRejoined(view, pod.metadata?.name ?? '', ctx.options.maxLag);
    if (why) throw new HookNotReady(why);
  },

  /**
   * Scale-down: a leaving leader is switched over first (to a replica that
   * stays), then the member leaves as a replica while the members that stay
   * stream within max-lag. Idempotent: what was done is in the cluster (who leads).
   */
  async podRemoval(pod, ctx) {
    const o = ctx.options;
    const name = pod.metadata?.name ?? '';
    const log = ctx.log.child({ hook: 'patroni', removal: name });
    const client = await connect(ctx);
    const shape = stsShape(ctx.statefulSet);
    const facts = { leaving: leavingPods(shape, ctx.requestedReplicas), requested: ctx.requestedReplicas, maxLag: o.maxLag };
    const seeds = removalSeeds(ctx, name, pod);
    await decideAndAct(ctx, log, client, seeds, (s) => readRemembered(client, s, ctx.statefulSet), (view) => decideRemoval(view, { pod: name, ready: ctx.podReady }, facts));
  },

  /**
   * 'removed': hold until the member is gone from /cluster (its DCS key expires
   * after Patroni's ttl), so that the next removal starts from a cluster that
   * knows its size. 'withdrawn': nothing to undo. podRemoval changes nothing but
   * the leadership, and a switchover is not undone: the new leader is as good a
   * leader, and moving it back would be one more disruption for nothing.
   */
  async podRemoved(pod, outcome, ctx) {
    if (outcome === 'withdrawn') return;
    const name = pod.metadata?.name ?? '';
    const log = ctx.log.child({ hook: 'patroni', removed: name });
    const client = await connect(ctx);
    const shape = stsShape(ctx.statefulSet);
    const index = podIndex(shape, name);
    const back = index !== undefined && index < shape.replicas;
    const view = await readRemembered(client, removalSeeds(ctx, name, null), ctx.statefulSet);
    const d = decideRemoved(view, name, back);
    if (d.kind !== 'approve') throw new HookNotReady(d.kind === 'hold' ? d.reason : `unexpected decision ${d.kind}`);
    log.info({ note: d.note }, 'approved');
  },
});
