import { type Decision, hold, isSyncRole, list, membersText, othersNotReady, type PodRef, precheck, switchoverTargets, syncRoleOf } from './decide.ts';
import { canTakeSyncRole, switchoverTarget } from './rules.ts';
import { type ClusterView, isLeaderRole, type MemberView } from './view.ts';

// The scale-down decisions (docs/patroni.md, "Scale-down"), pure functions of
// what the hook read, like decide.ts's for a step. podRemoval: may this pod
// leave for good? A leaving leader is switched over first, to a replica that
// stays; then its member is a replica, and a replica leaves while the members
// that stay carry the load. podRemoved: is its member gone from /cluster, so
// that the next removal starts from a cluster that knows its size?

/** What a removal is decided with, besides the cluster: the scale-down's shape. */
export interface RemovalFacts {
  /**
   * The pods this scale-down removes (index at or above the requested size),
   * the one asked about included: never a switchover candidate, whatever it is.
   */
  leaving: readonly string[];
  /** The size requested, for reasons. */
  requested: number;
  maxLag: number;
}

/**
 * The pods a scale-down to `requested` removes, highest first: the StatefulSet's
 * pods at index requested .. replicas-1 (ordinals from spec.ordinals.start).
 */
export function leavingPods(sts: { name: string; replicas: number; start: number }, requested: number): string[] {
  const out: string[] = [];
  for (let i = sts.replicas - 1; i >= Math.max(0, requested); i--) out.push(`${sts.name}-${sts.start + i}`);
  return out;
}

/** The index of a StatefulSet's pod from its name (`<sts>-<ordinal>`), or undefined when it is not one of its names. */
export function podIndex(sts: { name: string; start: number }, pod: string): number | undefined {
  const prefix = `${sts.name}-`;
  if (!pod.startsWith(prefix)) return undefined;
  const ord = pod.slice(prefix.length);
  if (!/^(0|[1-9][0-9]{0,8})$/.test(ord)) return undefined;
  const i = Number(ord) - sts.start;
  return i >= 0 ? i : undefined;
}

/** Why a leaving member's synchronous role would stop commits, or undefined when it may go. */
function syncRoleBlocks(v: ClusterView, m: MemberView, leader: MemberView, maxLag: number): { hold: string } | { note: string } | undefined {
  if (!isSyncRole(m.role)) return undefined;
  const takers = v.members.filter((x) => x !== leader && x !== m && canTakeSyncRole(x, leader, maxLag));
  if (takers.length > 0) return undefined;
  const cfg = v.config;
  if (!cfg || !cfg.ok) {
    return {
      hold:
        `${m.name} is the synchronous standby and no other member could take its place (none streams within max-lag without nosync), ` +
        `and whether synchronous_mode_strict is on is unknown: ${cfg && !cfg.ok ? cfg.error : '/config was not read'}`,
    };
  }
  if (cfg.strict) {
    return {
      hold:
        `${m.name} is the synchronous standby, synchronous_mode_strict is on, and no other member could take its place ` +
        `(none streams within max-lag without nosync; members: ${membersText(v)}): without it every commit would block. ` +
        'Keep this member (cancel the scale-down), add a replica that can be synchronous first, or turn strict mode off (patronictl edit-config --set synchronous_mode_strict=false)',
    };
  }
  return { note: `${m.name} is the synchronous standby and no other member can take its place: Patroni goes on with asynchronous replication (synchronous_mode_strict is off)` };
}

/**
 * May `pod` leave for good? Its member's name is the pod's name. Approve, hold,
 * or switch over first (a leaving leader), then decide again.
 */
export function decideRemoval(v: ClusterView, pod: PodRef, f: RemovalFacts): Decision {
  const m = v.members.find((x) => x.name === pod.pod);
  if (!m) {
    if (pod.ready) {
      return hold(
        `pod ${pod.pod} is Ready, but Patroni cluster ${v.scope} has no member named ${pod.pod} (members: ${list(v.members.map((x) => x.name))}): ` +
          "the hook cannot make safe a member it cannot find; Patroni's name must be the pod's name",
      );
    }
    return { kind: 'approve', note: `${pod.pod} is not a member of Patroni cluster ${v.scope} (already gone; its pod is not Ready): removing its pod takes nothing away` };
  }
  if (v.paused) {
    return hold(
      `Patroni cluster ${v.scope} is paused (maintenance mode): Patroni neither fails over nor switches over while paused; ` +
        'resume it (patronictl resume) for the scale-down to go on',
    );
  }
  const pre = precheck(v, null, f.maxLag);
  if ('hold' in pre) return pre.hold;
  const { leader } = pre;
  const to = `scale-down to ${f.requested}`;

  if (m === leader) {
    const others = v.members.filter((x) => x !== leader);
    if (others.length === 0) return hold(`${m.name} is the only member of Patroni cluster ${v.scope}: removing its pod removes the database`);
    const why = othersNotReady(v, leader, [], f.maxLag);
    if (why) return hold(`${m.name} is the leader and leaves (${to}); before switching over, every replica must stream within max-lag: ${why}`);
    const staying = others.filter((x) => !f.leaving.includes(x.name));
    if (staying.length === 0) return hold(`${m.name} is the leader, and every other member leaves too (${to}; members: ${membersText(v)}): no member stays to take over`);
    const targets = switchoverTargets(staying, f.maxLag);
    let eligible = targets.eligible;
    if (eligible.length === 0) return hold(`${m.name} is the leader and leaves (${to}), and no replica that stays can take over: ${targets.refused.join('; ')}`);
    const syncRole = syncRoleOf(others);
    if (syncRole) {
      eligible = eligible.filter((x) => x.role === syncRole);
      if (eligible.length === 0) {
        const syncs = others.filter((x) => x.role === syncRole).map((x) => x.name);
        const replicas = f.requested + f.leaving.length;
        return hold(
          syncs.some((s) => f.leaving.includes(s))
            ? `${m.name} is the leader and leaves (${to}); in synchronous mode Patroni switches over only to the ${syncRole.replace('_', ' ')} (${list(syncs)}), ` +
                `which leaves too: lower the request one pod at a time (sts-pilot.io/requested-replicas: ${replicas - 1}), so that a member that stays can take over`
            : `${m.name} is the leader and leaves (${to}), and no ${syncRole.replace('_', ' ')} that stays can take over (synchronous mode; members: ${membersText(v)})` +
                (() => {
                  const why = others.filter((x) => x.role === syncRole).map((x) => switchoverTarget(x, f.maxLag)).filter((x) => x !== undefined);
                  return why.length ? `: ${why.join('; ')}` : '';
                })(),
        );
      }
    }
    const candidate = eligible[0] as MemberView;
    if (!leader.apiUrl) return hold(`the leader ${leader.name} lists no REST API address (api_url) to ask for a switchover`);
    return {
      kind: 'switchover',
      leader: m.name,
      candidate: candidate.name,
      leaderUrl: leader.apiUrl,
      note: `switching over from ${m.name} to ${candidate.name}, ${syncRole ? `the ${syncRole.replace('_', ' ')}` : 'the most caught-up replica'} that stays, before ${m.name}'s pod leaves for good (${to})`,
    };
  }

  // A replica (the leader's own member after our switchover, too): the members that stay carry the load.
  const why = othersNotReady(v, leader, [m.name], f.maxLag);
  if (why) return hold(`before ${m.name} leaves (${to}), the members that stay must stream within max-lag: ${why}`);
  const sync = syncRoleBlocks(v, m, leader, f.maxLag);
  if (sync && 'hold' in sync) return hold(sync.hold);
  const role = isLeaderRole(m.role) ? 'leader' : m.role;
  return { kind: 'approve', note: sync ? sync.note : `${m.name} is a ${role} (${m.state}); the leader ${leader.name} and the members that stay stream within max-lag` };
}

/**
 * After the pod is gone: wait for its member to leave /cluster. Patroni writes
 * a stopped member's key once more when it shuts down, and the DCS drops it
 * when its ttl expires; until then the cluster still counts it. `back`: the
 * pod's index is below spec.replicas again (scaled back up), so a member of
 * that name is its successor, not a leftover.
 */
export function decideRemoved(v: ClusterView, pod: string, back: boolean): Decision {
  const m = v.members.find((x) => x.name === pod);
  if (!m) return { kind: 'approve', note: `member ${pod} is gone from Patroni cluster ${v.scope} (${v.members.length} left: ${list(v.members.map((x) => x.name))})` };
  if (back) return { kind: 'approve', note: `${pod} is in the StatefulSet again (scaled back up): its member stays, nothing to wait for` };
  const ttl = v.config?.ok ? `${v.config.ttlSeconds} s` : 'Patroni\'s ttl';
  return hold(
    `waiting for member ${pod} to leave Patroni cluster ${v.scope}: its pod is gone, but /cluster still lists it (${m.state}); ` +
      `the DCS drops a member's key when its ttl (${ttl}) expires after its last update` +
      (m.state === 'stopped' ? '' : `; if ${pod}'s Patroni still runs somewhere, stop it`),
  );
}
