import type { ClusterAnswer, ClusterMember, ConfigAnswer, MemberAnswer } from './answers.ts';

/** What a member itself says (GET /patroni on it), or why it could not be asked. */
export type MemberSelf =
  | { ok: true; state: string; role: string; systemId?: string; replayPaused: boolean; serverVersion?: number }
  | { ok: false; error: string };

/** One member, as the DCS lists it (GET /cluster) and as it answers itself. */
export interface MemberView {
  name: string;
  role: string;
  state: string;
  apiUrl?: string;
  timeline?: number;
  /** Bytes of WAL behind the leader (the largest lag Patroni reports); undefined when unknown or for the leader. */
  lag?: number;
  nofailover: boolean;
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

export const isLeaderRole = (role: string): boolean => role === 'leader' || role === 'standby_leader' || role === 'master' || role === 'primary';

/** Patroni reports lag as bytes, or "unknown"; the receive and replay lags apart since 4.0. */
function lagOf(m: ClusterMember): number | undefined {
  const values = [m.lag, m.receive_lag, m.replay_lag].filter((v) => v !== undefined && v !== null);
  if (values.length === 0 || values.some((v) => typeof v !== 'number')) return undefined;
  return Math.max(...(values as number[]));
}

export function selfOf(a: MemberAnswer): MemberSelf {
  return {
    ok: true,
    state: a.state,
    role: a.role,
    ...(a.database_system_identifier ? { systemId: a.database_system_identifier } : {}),
    replayPaused: a.xlog?.paused === true,
    ...(a.server_version !== undefined ? { serverVersion: a.server_version } : {}),
  };
}

export function clusterView(c: ClusterAnswer, selves: ReadonlyMap<string, MemberSelf>): ClusterView {
  return {
    scope: c.scope ?? '(unnamed)',
    paused: c.pause === true,
    members: c.members.map((m) => {
      const lag = isLeaderRole(m.role) ? undefined : lagOf(m);
      return {
        name: m.name,
        role: m.role,
        state: m.state,
        ...(m.api_url ? { apiUrl: m.api_url } : {}),
        ...(m.timeline !== undefined ? { timeline: m.timeline } : {}),
        ...(lag !== undefined ? { lag } : {}),
        nofailover: m.tags?.nofailover === true,
        nosync: m.tags?.nosync === true,
        self: selves.get(m.name) ?? { ok: false, error: 'it lists no REST API address (api_url)' },
      };
    }),
  };
}
