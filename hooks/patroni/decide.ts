import type { UpdateOrder } from '../../lib/hook.ts';
import { bytes, canTakeSyncRole, leadingState, notCaughtUp, switchoverTarget } from './rules.ts';
import { type ClusterView, isLeaderRole, type MemberView } from './view.ts';

export { bytes, notCaughtUp } from './rules.ts';

// The decisions of the hook, as pure functions of what it read. One call is
// read -> decide -> (switchover -> read -> decide)? -> approve or hold. What
// the hook did before is in the cluster itself (who leads), so a restarted
// controller decides the same.

export type Decision =
  | { kind: 'approve'; note: string }
  /** routine: a wait that ends by itself (lib/hook.ts HookNotReady): a Normal Event, not a Warning. */
  | { kind: 'hold'; reason: string; routine?: true }
  /** POST /switchover to the leader's REST API, then read again. */
  | { kind: 'switchover'; leader: string; candidate: string; leaderUrl: string; note: string };

/** A pod of the rollout, as the decisions see it: its member has the pod's name. */
export interface PodRef {
  pod: string;
  ready: boolean;
}

export interface DecideOptions {
  maxLag: number;
  switchoverTo: 'updated-replica' | 'any-replica';
}

export const hold = (reason: string): Decision => ({ kind: 'hold', reason });
/** A hold that ends by itself: a member coming back, replicas catching up, a switchover under way. */
export const wait = (reason: string): Decision => ({ kind: 'hold', reason, routine: true });

export const list = (xs: readonly string[]): string => (xs.length === 0 ? 'none' : xs.join(', '));
const describe = (m: MemberView): string => `${m.name} ${isLeaderRole(m.role) ? 'leader' : m.role} ${m.state}${m.lag !== undefined ? ` lag ${bytes(m.lag)}` : ''}`;
export const membersText = (v: ClusterView): string => list(v.members.map(describe));

/**
 * The leader (a standby cluster's standby leader too), leading in its state
 * (rule "leading"), or a reason there is none (a failover or switchover under way).
 */
export function leaderOf(v: ClusterView): { leader: MemberView } | { reason: string } {
  const leaders = v.members.filter((m) => isLeaderRole(m.role));
  const leading = leaders.filter((m) => leadingState(m) === undefined);
  if (leading.length === 1) return { leader: leading[0] as MemberView };
  if (leaders.length === 0) return { reason: `Patroni cluster ${v.scope} has no leader (members: ${membersText(v)}): a failover or switchover is in progress` };
  if (leading.length === 0) {
    return { reason: `${leadingState(leaders[0] as MemberView)} (Patroni cluster ${v.scope}, members: ${membersText(v)}): a failover or switchover is in progress` };
  }
  return { reason: `Patroni cluster ${v.scope} lists ${leading.length} leaders (${list(leading.map((m) => m.name))}): waiting for it to settle` };
}

/**
 * The members the leadership may go to, among `members` (rule "switchover
 * target"), least lag first, and the reasons of the others.
 */
export function switchoverTargets(members: readonly MemberView[], maxLag: number): { eligible: MemberView[]; refused: string[] } {
  const eligible: MemberView[] = [];
  const refused: string[] = [];
  for (const x of members) {
    const why = switchoverTarget(x, maxLag);
    if (why) refused.push(why);
    else eligible.push(x);
  }
  return { eligible: eligible.sort(byLag), refused };
}

/** The checks every call makes first: maintenance mode, a leader, and prev back in the cluster. */
export function precheck(v: ClusterView, prev: PodRef | null, maxLag: number): { leader: MemberView } | { hold: Decision } {
  if (v.paused) {
    return {
      hold: hold(
        `Patroni cluster ${v.scope} is paused (maintenance mode): Patroni neither fails over nor switches over while paused; ` +
          'resume it (patronictl resume) for the rollout to go on',
      ),
    };
  }
  const l = leaderOf(v);
  if ('reason' in l) return { hold: hold(l.reason) };
  const { leader } = l;
  if (!leader.self.ok) return { hold: hold(`the leader ${leader.name} does not answer: ${leader.self.error}`) };
  // /cluster shows the DCS's view, a loop behind: a leader demoting for a switchover
  // (perhaps one this hook asked for in a call the controller then cancelled) still
  // leads there, but says itself that its PostgreSQL is stopping.
  if (leader.self.state !== 'running') {
    return { hold: wait(`the leader ${leader.name} says its PostgreSQL is ${leader.self.state}: a switchover, failover or restart is in progress`) };
  }
  if (prev && prev.pod !== leader.name) {
    const m = v.members.find((x) => x.name === prev.pod);
    if (!m) return { hold: wait(`waiting for ${prev.pod} to rejoin Patroni cluster ${v.scope}: it is not among its members (${membersText(v)})`) };
    const why = notCaughtUp(m, leader, maxLag);
    if (why) return { hold: wait(`waiting for ${prev.pod}, updated last, to rejoin as a replica: ${why}`) };
  }
  return { leader };
}

/** Every member but these streams within max-lag and answers: the others can carry the load. */
export function othersNotReady(v: ClusterView, leader: MemberView, except: readonly string[], maxLag: number): string | undefined {
  for (const m of v.members) {
    if (m === leader || except.includes(m.name)) continue;
    const why = notCaughtUp(m, leader, maxLag);
    if (why) return why;
  }
  return undefined;
}

/**
 * The synchronous role among these members, when the cluster runs in synchronous
 * mode: Patroni switches over only to a synchronous standby (quorum mode: to a
 * quorum member).
 */
export function syncRoleOf(members: readonly MemberView[]): 'sync_standby' | 'quorum_standby' | undefined {
  if (members.some((x) => x.role === 'sync_standby')) return 'sync_standby';
  if (members.some((x) => x.role === 'quorum_standby')) return 'quorum_standby';
  return undefined;
}

export const isSyncRole = (role: string): boolean => role === 'sync_standby' || role === 'quorum_standby';

/** Least WAL lag first, then least replay lag, then by name. */
export const byLag = (a: MemberView, b: MemberView): number =>
  (a.lag ?? 0) - (b.lag ?? 0) || (a.replayLag ?? a.lag ?? 0) - (b.replayLag ?? b.lag ?? 0) || a.name.localeCompare(b.name);

/**
 * The decision before `next` moves (after `prev` moved), or at the end (next
 * null). `updated(member)`: that member's pod already runs the update revision.
 */
export function decideTransition(v: ClusterView, prev: PodRef | null, next: PodRef | null, o: DecideOptions, updated: (member: string) => boolean): Decision {
  const pre = precheck(v, prev, o.maxLag);
  if ('hold' in pre) return pre.hold;
  const { leader } = pre;

  if (!next) {
    const why = othersNotReady(v, leader, [], o.maxLag);
    if (why) return wait(`waiting for every member to stream within max-lag: ${why}`);
    return { kind: 'approve', note: `every member streams from the leader ${leader.name} within max-lag` };
  }

  const m = v.members.find((x) => x.name === next.pod);
  if (!m) {
    if (next.ready) {
      return hold(
        `pod ${next.pod} is Ready, but Patroni cluster ${v.scope} has no member named ${next.pod} (members: ${list(v.members.map((x) => x.name))}): ` +
          "the hook cannot make safe a member it cannot find; Patroni's name must be the pod's name",
      );
    }
    const why = othersNotReady(v, leader, [next.pod], o.maxLag);
    if (why) return hold(`${next.pod} is not a member (its pod is not Ready), but the others cannot carry the load: ${why}`);
    return { kind: 'approve', note: `${next.pod} is not a member of the cluster (pod not Ready): replacing it takes nothing away` };
  }

  if (m === leader) {
    const others = v.members.filter((x) => x !== leader);
    if (others.length === 0) return { kind: 'approve', note: `${m.name} is the only member: no replica to switch over to, PostgreSQL is down while it restarts` };
    const why = othersNotReady(v, leader, [], o.maxLag);
    if (why) return hold(`${m.name} is the leader; before switching over, every replica must stream within max-lag: ${why}`);
    const targets = switchoverTargets(others, o.maxLag);
    let eligible = targets.eligible;
    if (eligible.length === 0) return hold(`${m.name} is the leader, and no replica can take over: ${targets.refused.join('; ')}`);
    const syncRole = syncRoleOf(others);
    if (syncRole) {
      eligible = eligible.filter((x) => x.role === syncRole);
      if (eligible.length === 0) {
        const syncs = others.filter((x) => x.role === syncRole);
        const why = syncs.map((x) => switchoverTarget(x, o.maxLag)).filter((x) => x !== undefined);
        return hold(
          `${m.name} is the leader, and no ${syncRole.replace('_', ' ')} can take over (synchronous mode: Patroni switches over only to it)${why.length ? `: ${why.join('; ')}` : ''}`,
        );
      }
    }
    const fresh = eligible.filter((x) => updated(x.name));
    let candidate = fresh[0];
    let note = `switching over from ${m.name} to ${candidate?.name}, which runs the update revision, before ${m.name}'s pod restarts`;
    if (!candidate) {
      candidate = eligible[0] as MemberView;
      note =
        o.switchoverTo === 'any-replica'
          ? `switching over from ${m.name} to ${candidate.name}, the most caught-up replica, before ${m.name}'s pod restarts`
          : `switching over from ${m.name} to ${candidate.name}, the most caught-up replica: no replica runs the update revision yet ` +
            `(the leader's pod moves first), so ${candidate.name}'s own restart will need another switchover`;
    } else if (o.switchoverTo === 'any-replica' && eligible[0] !== candidate) {
      candidate = eligible[0] as MemberView;
      note = `switching over from ${m.name} to ${candidate.name}, the most caught-up replica, before ${m.name}'s pod restarts`;
    }
    if (!leader.apiUrl) return hold(`the leader ${leader.name} lists no REST API address (api_url) to ask for a switchover`);
    return { kind: 'switchover', leader: m.name, candidate: candidate.name, leaderUrl: leader.apiUrl, note };
  }

  // A replica: the others must carry the load while it restarts.
  const why = othersNotReady(v, leader, [m.name], o.maxLag);
  if (why) return hold(`before ${m.name} restarts, the other members must stream within max-lag: ${why}`);
  if (isSyncRole(m.role)) {
    const takers = v.members.filter((x) => x !== leader && x !== m && canTakeSyncRole(x, leader, o.maxLag));
    if (takers.length === 0) {
      return hold(`${m.name} is the synchronous standby, and no other replica can take that role (none streams within max-lag without nosync): restarting it would stop commits or lose the guarantee`);
    }
  }
  return { kind: 'approve', note: `${m.name} is a ${m.role}; the leader ${leader.name} and the other members carry the load` };
}

/**
 * The order of the stale pods: replicas first (in the order given, highest
 * ordinal first), the leader last, so that a rollout needs one switchover.
 */
export function decideOrder(v: ClusterView, stale: readonly string[]): { ok: true; order: UpdateOrder } | { ok: false; reason: string } {
  const l = leaderOf(v);
  if ('reason' in l) return { ok: false, reason: l.reason };
  const leader = l.leader.name;
  const replicas = stale.filter((p) => p !== leader);
  const last = stale.includes(leader) ? [leader] : [];
  const reason = last.length
    ? `replicas first${replicas.length ? ` (${replicas.join(', ')})` : ''}; ${leader} is the leader and goes last, after one switchover`
    : `the leader ${leader} already runs the update revision; replicas in ordinal order`;
  return { ok: true, order: { pods: [...replicas, ...last], reason } };
}
