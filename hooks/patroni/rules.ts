import { isLeaderRole, type MemberView } from './view.ts';

// The member rules the decisions are made of (docs/patroni.md, "Member rules"):
// each a small pure check that answers undefined when the member passes, or the
// reason it does not, for people. Each is anchored in docs/patroni.md to what
// Patroni itself, the Zalando operator or CloudNativePG do.

/** "1.5 MiB": sizes in reasons people read. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** "3.0.4" -> [3, 0, 4]; "4.1.0rc1" -> [4, 1, 0]; undefined when it is not a version. */
export function versionOf(s: string | undefined): [number, number, number] | undefined {
  const m = /^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(s ?? '');
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

/** a >= b, by major, minor, patch. */
export function atLeast(a: readonly [number, number, number], b: readonly [number, number, number]): boolean {
  for (let i = 0; i < 3; i++) if ((a[i] as number) !== (b[i] as number)) return (a[i] as number) > (b[i] as number);
  return true;
}

/**
 * The first Patroni release that reports a replica's replication state
 * (`streaming`, `in archive recovery`) in /cluster; before it every running
 * replica is `running` (Patroni's release notes, 3.0.4).
 */
export const REPLICATION_STATE_SINCE = [3, 0, 4] as const;

/** The states in which a standby leader leads: it replicates from the remote primary (Patroni's cluster_as_json reports its replication state). */
const STANDBY_LEADER_STATES = ['running', 'streaming', 'in archive recovery'];

/**
 * Rule "leading": the member with the leader role leads in a state Patroni
 * reports for a working leader. A leader is `running`. A standby leader (a
 * standby cluster, replicating from elsewhere) is reported in its replication
 * state: `streaming` or `in archive recovery` (Patroni >= 3.0.4), `running`
 * before, or when it has neither a replication connection nor a restore_command.
 */
export function leadingState(m: Pick<MemberView, 'name' | 'role' | 'state'>): string | undefined {
  if (!isLeaderRole(m.role)) return `member ${m.name} is a ${m.role}, not the leader`;
  if (m.role === 'standby_leader') {
    return STANDBY_LEADER_STATES.includes(m.state) ? undefined : `the standby leader ${m.name} is ${m.state}, not replicating from the remote primary`;
  }
  return m.state === 'running' ? undefined : `the leader ${m.name} is ${m.state}, not running`;
}

/**
 * Rule "replicating": the replica's reported state is one in which it follows
 * the leader. `streaming`: WAL from the leader. `in archive recovery`: no
 * replication connection, WAL from the archive (restore_command; a member
 * tagged nostream never streams), held to max-lag like any other. `running`:
 * Patroni before 3.0.4 reports every running replica so (the member's own
 * /patroni says which Patroni it runs); from 3.0.4 on, `running` is a replica
 * with neither a WAL receiver nor a restore_command: it replicates nothing.
 * The Zalando operator reads `running` the same way (streaming required only
 * from Patroni 3.0.4 on, majorversionupgrade.go).
 */
export function replicatingState(m: MemberView): string | undefined {
  if (m.state === 'streaming' || m.state === 'in archive recovery') return undefined;
  if (m.state !== 'running') return `member ${m.name} is ${m.state}, not replicating from the leader`;
  const version = m.self.ok ? m.self.patroniVersion : undefined;
  const v = versionOf(version);
  if (!v) return `member ${m.name} is running, and its Patroni version is unknown (its /patroni has no patroni.version): whether it streams cannot be told`;
  if (atLeast(v, REPLICATION_STATE_SINCE)) {
    return `member ${m.name} is running but not replicating: Patroni ${version} reports a replica that streams as streaming, one that restores from the archive as in archive recovery, and neither is the case`;
  }
  return undefined;
}

/** Rule "same data": the member's database system identifier is the leader's (a copy of this cluster's data, not of another). */
export function sameData(m: MemberView, leader: MemberView): string | undefined {
  if (!m.self.ok || !leader.self.ok || !leader.self.systemId) return undefined;
  if (m.self.systemId === leader.self.systemId) return undefined;
  return `member ${m.name} runs database system ${m.self.systemId ?? '(unknown)'}, the leader ${leader.name} ${leader.self.systemId}: it is not a copy of this cluster's data`;
}

/**
 * Rule "within max-lag": the WAL the member holds is at most max-lag behind the
 * leader, measured as Patroni measures maximum_lag_on_failover (/cluster
 * `lag`: the leader's last LSN minus the larger of the member's received and
 * replayed LSN, ha.py `is_lagging`). A member that receives in time but
 * replays late (recovery_min_apply_delay, a paused or slow replay) holds the
 * WAL, so it passes; it is never a switchover target (rule "switchover
 * target"). A member Patroni never promotes (nofailover) is not held to
 * max-lag: its lag decides no failover.
 */
export function withinMaxLag(m: MemberView, leader: MemberView, maxLag: number): string | undefined {
  if (m.nofailover) return undefined;
  if (m.lag === undefined) return `the replication lag of member ${m.name} is unknown`;
  if (m.lag > maxLag) return `member ${m.name} is ${bytes(m.lag)} behind the leader ${leader.name} (max-lag ${bytes(maxLag)})${m.self.ok && m.self.replayPaused ? '; its WAL replay is paused' : ''}`;
  return undefined;
}

/**
 * Rule "switchover target": a member the leadership may go to. Not one Patroni
 * never promotes (tag nofailover, or failover_priority 0: Patroni refuses such
 * a candidate, api.py `is_failover_possible` / `failover_limitation`). Not one
 * that replays late: its replay more than max-lag behind (a
 * recovery_min_apply_delay, a paused or slow replay), since a promotion first
 * replays that backlog, and the database takes no writes meanwhile.
 */
export function switchoverTarget(m: MemberView, maxLag: number): string | undefined {
  if (m.nofailover) return `${m.name} is tagged nofailover (or failover_priority 0): Patroni never promotes it`;
  if (m.self.ok && m.self.replayPaused) return `${m.name}'s WAL replay is paused: a promotion would first replay its backlog`;
  if (m.replayLag === undefined) return `how far ${m.name} has replayed is unknown`;
  if (m.replayLag > maxLag) {
    return `${m.name} replays ${bytes(m.replayLag)} behind the leader (max-lag ${bytes(maxLag)}; a recovery_min_apply_delay, or a slow replay): a promotion would first replay that backlog`;
  }
  return undefined;
}

/**
 * A replica can carry the load: it answers its own REST API, runs the same
 * data, replicates from the leader (rule "replicating"), within max-lag.
 */
export function notCaughtUp(m: MemberView, leader: MemberView, maxLag: number): string | undefined {
  if (!m.self.ok) return `member ${m.name} does not answer: ${m.self.error}`;
  return sameData(m, leader) ?? replicatingState(m) ?? withinMaxLag(m, leader, maxLag);
}

/**
 * Rule "synchronous standby": a member that could take the synchronous role
 * when the synchronous standby goes. Not tagged nosync (or sync_priority 0:
 * Patroni never makes it synchronous, postgresql/sync.py), and caught up,
 * within max-lag even if it is nofailover: Patroni makes a nofailover member
 * synchronous when it must, and commits wait for it then.
 */
export function canTakeSyncRole(m: MemberView, leader: MemberView, maxLag: number): boolean {
  if (m.nosync || !m.self.ok) return false;
  if (sameData(m, leader) ?? replicatingState(m)) return false;
  return m.lag !== undefined && m.lag <= maxLag;
}
