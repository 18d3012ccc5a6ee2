import type { ClusterAnswer, ClusterMember, ConfigAnswer, MemberAnswer } from './answers.ts';

/** What a member itself says (GET /patroni on it), or why it could not be asked. */
export type MemberSelf =
  | {
      ok: true;
      state: string;
      role: string;
      systemId?: string;
      replayPaused: boolean;
      serverVersion?: number;
      /** The member's own Patroni release (`patroni.version`), e.g. "4.1.5". */
      patroniVersion?: string;
      /** Its scope (`patroni.scope`). */
      scope?: string;
      /** Bytes of WAL received but not replayed yet (a replica's received_location - replayed_location). */
      replayBacklog?: number;
    }
  | { ok: false; error: string };

/** One member, as the DCS lists it (GET /cluster) and as it answers itself. */
export interface MemberView {
  name: string;
  role: string;
  state: string;
  apiUrl?: string;
  timeline?: number;
  /**
   * Bytes of WAL behind the leader, as Patroni measures it for failover (/cluster `lag`:
   * the leader's last LSN minus the larger of the member's received and replayed LSN).
   * Undefined when unknown, and for the leader.
   */
  lag?: number;
  /**
   * Bytes of WAL not yet replayed, behind the leader (/cluster `replay_lag` since Patroni
   * 4.0; before, `lag` plus what the member says it received but did not replay).
   * Undefined when unknown, and for the leader.
   */
  replayLag?: number;
  /** Patroni never promotes it: tag nofailover, or failover_priority <= 0 (Patroni's tags.py). */
  nofailover: boolean;
  /** Patroni never makes it synchronous: tag nosync, or sync_priority <= 0. */
  nosync: boolean;
  self: MemberSelf;
}

/** Everything a decision looks at, read afresh on every call. */
export interface ClusterView {
  scope: string;
  /** Maintenance mode: Patroni neither fails over nor switches over. */
  paused: boolean;
  members: MemberView[];
  /** The DCS's dynamic configuration (GET /config), when the call read it (a scale-down's do), or why it could not. */
  config?: DcsConfig;
}

/** What the scale-down decisions need of the dynamic configuration. */
export type DcsConfig =
  | { ok: true; synchronousMode: 'off' | 'on' | 'quorum'; strict: boolean; ttlSeconds: number }
  | { ok: false; error: string };

/** Patroni's parse_bool: on, true, yes, 1 (any case) are true. */
const patroniTrue = (v: unknown): boolean => ['on', 'true', 'yes', '1'].includes(String(v).toLowerCase());

/** Patroni's defaults where the DCS says nothing: synchronous mode off, strict off, ttl 30 s. */
export function configOf(c: ConfigAnswer): DcsConfig {
  const mode = String(c.synchronous_mode).toLowerCase() === 'quorum' ? 'quorum' : patroniTrue(c.synchronous_mode) ? 'on' : 'off';
  const ttl = Number(c.ttl);
  return { ok: true, synchronousMode: mode, strict: patroniTrue(c.synchronous_mode_strict), ttlSeconds: Number.isFinite(ttl) && ttl > 0 ? ttl : 30 };
}

/** The scope of a view when neither /cluster nor any member named it. */
export const UNNAMED_SCOPE = '(unnamed)';

export const isLeaderRole = (role: string): boolean => role === 'leader' || role === 'standby_leader' || role === 'master' || role === 'primary';

/** Python's truth value of a JSON value, as Patroni's `bool(tags.get(...))` sees it. */
function pythonTruthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Patroni's parse_int for a priority tag: an integer, or a string of one; anything else is not set. */
function priorityOf(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^\s*-?[0-9]+\s*$/.test(v)) return Number(v);
  return undefined;
}

/**
 * Patroni's Tags._bool_tag (patroni/tags.py): the boolean tag, when present, is the
 * truth (Python truthiness); without it a priority of 0 or less means the same.
 * nofailover/failover_priority (3.2+), nosync/sync_priority.
 */
export function patroniBoolTag(tags: Record<string, unknown> | undefined, bool: 'nofailover' | 'nosync'): boolean {
  const t = tags ?? {};
  const flag = t[bool];
  if (flag !== undefined && flag !== null) return pythonTruthy(flag);
  const priority = priorityOf(t[bool === 'nofailover' ? 'failover_priority' : 'sync_priority']);
  return priority !== undefined && priority <= 0;
}

const bytesOrUndefined = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

export function selfOf(a: MemberAnswer): MemberSelf {
  const received = a.xlog?.received_location;
  const replayed = a.xlog?.replayed_location;
  return {
    ok: true,
    state: a.state,
    role: a.role,
    ...(a.database_system_identifier ? { systemId: a.database_system_identifier } : {}),
    replayPaused: a.xlog?.paused === true,
    ...(a.server_version !== undefined ? { serverVersion: a.server_version } : {}),
    ...(a.patroni?.version ? { patroniVersion: a.patroni.version } : {}),
    ...(a.patroni?.scope ? { scope: a.patroni.scope } : {}),
    ...(typeof received === 'number' && typeof replayed === 'number' ? { replayBacklog: Math.max(0, received - replayed) } : {}),
  };
}

/** replay_lag as Patroni 4 reports it; before 4.0, lag plus the member's own backlog of received, unreplayed WAL. */
function replayLagOf(m: ClusterMember, lag: number | undefined, self: MemberSelf | undefined): number | undefined {
  if (m.replay_lag !== undefined && m.replay_lag !== null) return bytesOrUndefined(m.replay_lag);
  if (lag === undefined) return undefined;
  return self?.ok && self.replayBacklog !== undefined ? lag + self.replayBacklog : lag;
}

export function clusterView(c: ClusterAnswer, selves: ReadonlyMap<string, MemberSelf>): ClusterView {
  return {
    // /cluster names the scope since Patroni 3.2; before, each member's /patroni does.
    scope: c.scope ?? [...selves.values()].map((x) => (x.ok ? x.scope : undefined)).find((x) => x !== undefined) ?? UNNAMED_SCOPE,
    paused: c.pause === true,
    members: c.members.map((m) => {
      const leads = isLeaderRole(m.role);
      const self = selves.get(m.name);
      const lag = leads ? undefined : bytesOrUndefined(m.lag);
      const replayLag = leads ? undefined : replayLagOf(m, lag, self);
      return {
        name: m.name,
        role: m.role,
        state: m.state,
        ...(m.api_url ? { apiUrl: m.api_url } : {}),
        ...(m.timeline !== undefined ? { timeline: m.timeline } : {}),
        ...(lag !== undefined ? { lag } : {}),
        ...(replayLag !== undefined ? { replayLag } : {}),
        nofailover: patroniBoolTag(m.tags, 'nofailover'),
        nosync: patroniBoolTag(m.tags, 'nosync'),
        self: self ?? { ok: false, error: 'it lists no REST API address (api_url)' },
      };
    }),
  };
}
