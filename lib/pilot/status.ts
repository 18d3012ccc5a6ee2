import { applicationHealthy, applicationReady } from '../probes/verdict.ts';
import type { ApplicationStatus, PilotActionStatus, PilotCondition, PilotPhase, PilotStatus } from './schema.ts';

/**
 * Pure decisions of the in-pod pilot about its status: what it says, and
 * whether it is worth a write now. The reporter does the I/O.
 */

export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message?: string;
}

/** A status without its heartbeat, and with conditions not yet stamped with transition times. */
export type DesiredStatus = Omit<PilotStatus, 'heartbeatTime' | 'conditions'> & { conditions: ConditionInput[] };

/** What the runner knows at a given moment. */
export interface PilotState {
  phase: PilotPhase;
  revision: string | undefined;
  /** The last probe's block; {probe: 'none'} when the pilot runs without a probe. */
  application: ApplicationStatus | undefined;
  exitCode: number | undefined;
  message: string | undefined;
  /** What became of the controller's requests (spec.actions); undefined or empty: none seen. */
  actions?: PilotActionStatus[];
}

export function desiredStatus(s: PilotState): DesiredStatus {
  const running = s.phase === 'Running';
  const ready = running ? applicationReady(s.application) : { ok: false as const, reason: `the pilot is ${s.phase}` };
  const healthy = running ? applicationHealthy(s.application) : ready;
  const out: DesiredStatus = {
    phase: s.phase,
    conditions: [
      ready.ok
        ? { type: 'Ready', status: 'True', reason: 'ApplicationReady' }
        : { type: 'Ready', status: 'False', reason: running ? 'ApplicationNotReady' : s.phase, message: ready.reason },
      healthy.ok
        ? { type: 'Healthy', status: 'True', reason: 'ApplicationHealthy' }
        : { type: 'Healthy', status: running ? 'False' : 'Unknown', reason: running ? 'ApplicationUnhealthy' : s.phase, message: healthy.reason },
    ],
  };
  if (s.revision !== undefined) out.revision = s.revision;
  if (s.message !== undefined) out.message = s.message.slice(0, 4096);
  if (s.exitCode !== undefined) out.exitCode = s.exitCode;
  if (s.application !== undefined) out.application = s.application;
  if (s.actions !== undefined && s.actions.length > 0) out.actions = s.actions;
  return out;
}

/** Stamp conditions: a condition keeps its lastTransitionTime while its status stays the same. */
export function stampConditions(prev: readonly PilotCondition[] | undefined, next: readonly ConditionInput[], now: string): PilotCondition[] {
  return next.map((c) => {
    const old = prev?.find((p) => p.type === c.type);
    const out: PilotCondition = {
      type: c.type,
      status: c.status,
      reason: c.reason,
      lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now,
    };
    if (c.message !== undefined) out.message = c.message.slice(0, 4096);
    return out;
  });
}

/** The status as written at `now`. */
export function stampStatus(desired: DesiredStatus, prevConditions: readonly PilotCondition[] | undefined, now: Date): PilotStatus {
  const t = now.toISOString();
  return { ...desired, heartbeatTime: t, conditions: stampConditions(prevConditions, desired.conditions, t) };
}

/**
 * The part of a status whose change is worth a write at once. Counters that
 * move all the time under load (documents, shard copies) are left out: they
 * ride along with the next heartbeat. Hooks that gate on them (the shard
 * drain) read the application afresh rather than from the Pilot.
 */
export function significant(s: Omit<PilotStatus, 'heartbeatTime' | 'conditions'> & { conditions?: readonly (ConditionInput | PilotCondition)[] }): string {
  const c = s.application?.cassandra;
  // Hint bytes grow with every write while a peer is down; the files per target are what a hook reads.
  // Free bytes and load move with every flush and compaction: they ride with the heartbeat too (the space-to-absorb rule reads them at most pilot-max-age old).
  const cassandra = c && { ...c, hints: c.hints?.map((h) => ({ hostId: h.hostId, files: h.files })), disk: c.disk && { dataDir: c.disk.dataDir } };
  const app = s.application ? { ...s.application, shards: undefined, documents: undefined, cassandra } : undefined;
  const conditions = s.conditions?.map((c) => [c.type, c.status, c.reason ?? '', c.message ?? '']);
  // A request's progress is what its hook waits on: every change of it goes out at once.
  return canonical([s.phase, s.revision, s.message, s.exitCode, conditions, app, s.actions ?? []]);
}

/**
 * JSON with object keys sorted at every depth, undefined left out: the status
 * written (parsed by zod, so in the schema's key order) and the one a probe
 * built (in its own order) compare equal when they say the same.
 */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).filter(([, y]) => y !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

export type WriteDecision = { write: true; why: 'first' | 'changed' | 'heartbeat' } | { write: false; retryInMs: number };

export interface WriteInput {
  /** The last status written, and when (ms); undefined before the first write. */
  written: PilotStatus | undefined;
  writtenAt: number | undefined;
  desired: DesiredStatus;
  now: number;
  heartbeatMs: number;
  /** Floor between two writes, so a flapping application cannot make the pilot hammer the API. */
  minIntervalMs: number;
}

/**
 * Write when nothing was written yet, when something significant changed (but
 * not twice within minIntervalMs, unless the phase changed), or when a heartbeat is due; otherwise say
 * how long until the next heartbeat. Never "write again at once": the loop
 * that follows this cannot become a hot loop.
 */
export function decideWrite(o: WriteInput): WriteDecision {
  if (!o.written || o.writtenAt === undefined) return { write: true, why: 'first' };
  const since = o.now - o.writtenAt;
  if (significant(o.written) !== significant(o.desired)) {
    // A new phase goes out at once: there are at most six in a pilot's life, so it cannot flap.
    if (since >= o.minIntervalMs || o.written.phase !== o.desired.phase) return { write: true, why: 'changed' };
    return { write: false, retryInMs: o.minIntervalMs - since };
  }
  if (since >= o.heartbeatMs) return { write: true, why: 'heartbeat' };
  return { write: false, retryInMs: o.heartbeatMs - since };
}
