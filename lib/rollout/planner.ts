import { PAUSED_ANNOTATION } from '../names.ts';
import type { PodView, Snapshot } from './snapshot.ts';
import type { RolloutMark } from './status.ts';

/** An approval older than this is asked again: the application may have changed its mind. */
export const APPROVAL_TTL_MS = 30_000;

/**
 * Steady: nothing to roll. Rolling: a rollout moves or waits on pods. Waiting: the
 * StatefulSet controller has not caught up yet (transient, not worth an Event).
 * Held: something needs a person's attention. Paused: a person asked for it.
 */
export type Phase = 'Steady' | 'Rolling' | 'Waiting' | 'Held' | 'Paused' | 'Unmanageable';

export type Action =
  /** Nothing to do until something changes. */
  | { kind: 'none'; phase: Phase; message: string }
  /** Do nothing, and say why; `retryAfterMs` when time alone will change the answer. */
  | { kind: 'hold'; phase: Phase; reason: string; retryAfterMs?: number }
  /** Ask the hook; an approval comes back to the planner keyed by `key`. */
  | { kind: 'callHook'; phase: Phase; key: string; prev: PodView | null; next: PodView | null; message: string }
  /**
   * One resourceVersion-guarded patch of the StatefulSet. `mark` undefined keeps the
   * rollout mark, null clears it. `partition` undefined leaves the partition alone.
   */
  | {
      kind: 'patch';
      phase: Phase;
      why: 'step' | 'finish' | 'hold' | 'guard' | 'skip';
      partition: number | undefined;
      mark: RolloutMark | null | undefined;
      message: string;
    }
  /** OnDelete: delete exactly this pod (uid precondition); write `mark` first. */
  | { kind: 'deletePod'; phase: Phase; pod: PodView; mark: RolloutMark; message: string };

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

const hold = (phase: Phase, reason: string, retryAfterMs?: number): Action =>
  retryAfterMs === undefined ? { kind: 'hold', phase, reason } : { kind: 'hold', phase, reason, retryAfterMs };

const quote = (s: string): string => JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);

/**
 * Decide the one next thing to do for a StatefulSet. Pure: everything it
 * knows is in the snapshot, so it is table-tested and restart-safe.
 * See docs/rollout.md for the rules and why each exists.
 */
export function plan(s: Snapshot): Action {
  const { sts } = s;
  if (sts.paused !== undefined && sts.paused !== 'false') {
    if (sts.paused === 'true') return hold('Paused', `paused by annotation ${PAUSED_ANNOTATION}`);
    return hold('Held', `annotation ${PAUSED_ANNOTATION} must be "true" or "false", got ${quote(sts.paused)}; holding`);
  }
  if (sts.strategy !== 'RollingUpdate' && sts.strategy !== 'OnDelete') {
    return hold('Unmanageable', `updateStrategy ${quote(sts.strategy)} is not RollingUpdate or OnDelete; not managing it`);
  }
  if (sts.observedGeneration === undefined || sts.observedGeneration < sts.generation) {
    return hold(
      'Waiting',
      `waiting for the StatefulSet controller to observe generation ${sts.generation} (observed ${sts.observedGeneration ?? 'none'})`,
    );
  }
  const upd = sts.updateRevision;
  if (!upd) return hold('Waiting', 'waiting for the StatefulSet controller to report status.updateRevision');
  return sts.strategy === 'OnDelete' ? planOnDelete(s, upd) : planRollingUpdate(s, upd);
}

interface Pods {
  n: number;
  byOrdinal: Map<number, PodView>;
  extras: PodView[];
  /** Pod i exists, is not leaving and runs the update revision. */
  atUpdate(i: number): boolean;
  /** Pod i exists (maybe leaving) at another revision: it is what a step would move. */
  stale(i: number): boolean;
  /** 1 + the highest stale ordinal below N; 0 when none is. Missing pods are not stale. */
  frontier: number;
}

function index(s: Snapshot, upd: string): Pods {
  const n = s.sts.replicas;
  const byOrdinal = new Map<number, PodView>();
  const extras: PodView[] = [];
  for (const p of s.pods) (p.ordinal < n ? byOrdinal.set(p.ordinal, p) : extras.push(p));
  const atUpdate = (i: number): boolean => {
    const p = byOrdinal.get(i);
    return p !== undefined && !p.terminating && p.revision === upd;
  };
  const stale = (i: number): boolean => {
    const p = byOrdinal.get(i);
    return p !== undefined && p.revision !== upd;
  };
  let frontier = 0;
  for (let i = n - 1; i >= 0; i--) {
    if (stale(i)) {
      frontier = i + 1;
      break;
    }
  }
  return { n, byOrdinal, extras, atUpdate, stale, frontier };
}

/** Why a step may not start now: every pod must exist and be available, none may be leaving. */
function notAvailable(s: Snapshot, pods: Pods): { reason: string; retryAfterMs?: number } | undefined {
  if (pods.extras.length > 0) {
    const names = pods.extras.map((p) => p.name).sort().join(', ');
    return { reason: `waiting for scale-down to remove ${names}` };
  }
  for (let i = pods.n - 1; i >= 0; i--) {
    const p = pods.byOrdinal.get(i);
    const name = `${s.sts.name}-${i}`;
    if (!p) return { reason: `waiting for pod ${name} to be created` };
    if (p.terminating) return { reason: `waiting for pod ${name} to finish terminating` };
    if (!p.ready) return { reason: `waiting for pod ${name} to be Ready` };
    const minReadyMs = s.sts.minReadySeconds * 1000;
    if (minReadyMs > 0) {
      const readyFor = s.now - (p.readySince ?? s.now);
      if (readyFor < minReadyMs) {
        return {
          reason: `waiting for pod ${name} to be Ready for minReadySeconds=${s.sts.minReadySeconds}`,
          retryAfterMs: minReadyMs - readyFor,
        };
      }
    }
  }
  return undefined;
}

const approved = (s: Snapshot, key: string): boolean =>
  s.approval !== undefined && s.approval.key === key && s.now - s.approval.at <= APPROVAL_TTL_MS;

const stepKey = (kind: string, upd: string, at: number, prev: PodView | null, next: PodView | null): string =>
  `${kind}|${upd}|${at}|${prev?.uid ?? '-'}|${next?.uid ?? '-'}`;

/** The pod approved last, for the final call: the mark's ordinal, clamped to what still exists. */
function lastApproved(pods: Pods, mark: RolloutMark): PodView | null {
  if (pods.n === 0) return null;
  return pods.byOrdinal.get(Math.min(mark.partition, pods.n - 1)) ?? null;
}

/** All pods run the update revision; a rollout sts-pilot stepped through owes the hook a last call. */
function planFinish(s: Snapshot, upd: string, pods: Pods, partition: number | undefined): Action {
  const { sts } = s;
  const mark = sts.mark;
  if (mark && mark.revision === upd) {
    if (s.hookProblem) return hold('Held', s.hookProblem);
    const wait = notAvailable(s, pods);
    if (wait) return hold('Rolling', wait.reason, wait.retryAfterMs);
    const prev = lastApproved(pods, mark);
    const key = stepKey('final', upd, mark.partition, prev, null);
    if (approved(s, key)) {
      return {
        kind: 'patch',
        phase: 'Steady',
        why: 'finish',
        partition,
        mark: null,
        message: `rollout to ${upd} finished; hook approved the end`,
      };
    }
    return {
      kind: 'callHook',
      phase: 'Rolling',
      key,
      prev,
      next: null,
      message: `all ${pods.n} pods run ${upd}; asking the hook to approve the end of the rollout`,
    };
  }
  const stale = mark !== undefined;
  const wrongPartition = partition !== undefined && sts.partition !== partition;
  if (stale || wrongPartition) {
    return {
      kind: 'patch',
      phase: 'Steady',
      why: 'hold',
      partition: wrongPartition ? partition : undefined,
      mark: stale ? null : undefined,
      message: wrongPartition
        ? `no rollout in progress; holding partition at replicas (${partition})`
        : `clearing the mark of an abandoned rollout to ${mark?.revision}`,
    };
  }
  return { kind: 'none', phase: 'Steady', message: `all ${pods.n} pods run ${upd}` };
}

function planRollingUpdate(s: Snapshot, upd: string): Action {
  const { sts } = s;
  const pods = index(s, upd);
  const n = pods.n;
  const p = sts.partition ?? 0;
  const k = pods.frontier;

  if (k === 0 && sts.currentRevision === upd) return planFinish(s, upd, pods, n);
  if (k === 0) {
    const wait = notAvailable(s, pods);
    return hold(
      'Rolling',
      wait?.reason ?? `all pods run ${upd}; waiting for the StatefulSet status to report it as currentRevision`,
      wait?.retryAfterMs,
    );
  }

  // The pod at the partition is in flight when sts-pilot approved it: the mark says so.
  const mark = sts.mark;
  const inFlight = mark !== undefined && mark.revision === upd && mark.partition === p && p < n ? p : -1;

  // Guard: a pod at or above the partition that is not at the update revision and
  // was not approved would be moved by the StatefulSet controller without the hook
  // (partition lowered by hand, a new template mid-rollout, a rollout adopted in
  // flight). Raising the partition above it stops that; pods already moved stay moved.
  // A pod the StatefulSet controller already deleted is missing, and would be
  // recreated at upd: below where sts-pilot left the partition (the mark, or N
  // before its first step) nobody approved that either.
  const heldAt = mark !== undefined && mark.revision === upd ? Math.min(mark.partition, n) : n;
  const gone = (i: number): boolean => i < heldAt && !pods.byOrdinal.has(i);
  let unapproved = -1;
  for (let i = n - 1; i >= p; i--) {
    if ((pods.stale(i) && i !== inFlight) || gone(i)) {
      unapproved = i;
      break;
    }
  }
  if (unapproved >= 0) {
    const what = gone(unapproved) ? 'be recreated at' : 'move to';
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'guard',
      partition: unapproved + 1,
      mark: undefined,
      message:
        `partition ${p} would let pod ${sts.name}-${unapproved} ${what} ${upd} without the hook's approval; ` +
        `raising it to ${unapproved + 1}`,
    };
  }

  if (inFlight >= 0 && !pods.atUpdate(inFlight)) {
    return hold('Rolling', `waiting for pod ${sts.name}-${inFlight} to be updated to ${upd}`);
  }

  if (s.hookProblem) return hold('Held', s.hookProblem);

  // Pods between the frontier and the partition already run the update revision:
  // lowering the partition over them moves no pod, so it needs no hook call. A
  // missing one would be created at the update revision: wait for it instead.
  if (p > k && range(k, Math.min(p, n)).every(pods.atUpdate)) {
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'skip',
      partition: k,
      mark: undefined,
      message: `pods ${sts.name}-${k}..${Math.min(p, n) - 1} already run ${upd}; lowering partition to ${k}`,
    };
  }

  const wait = notAvailable(s, pods);
  if (wait) return hold('Rolling', wait.reason, wait.retryAfterMs);

  // p === k > 0: pod p-1 is the next, pod p (if any) the one updated last.
  const next = pods.byOrdinal.get(p - 1) as PodView;
  const prev = p < n ? (pods.byOrdinal.get(p) ?? null) : null;
  const key = stepKey('step', upd, p, prev, next);
  if (approved(s, key)) {
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'step',
      partition: p - 1,
      mark: { revision: upd, partition: p - 1 },
      message: `hook approved pod ${next.name}; partition ${p} -> ${p - 1}`,
    };
  }
  return {
    kind: 'callHook',
    phase: 'Rolling',
    key,
    prev,
    next,
    message: `asking the hook to approve pod ${next.name} (${n - p + 1}/${n}) moving to ${upd}`,
  };
}

function planOnDelete(s: Snapshot, upd: string): Action {
  const pods = index(s, upd);
  const k = pods.frontier;
  if (k === 0) return planFinish(s, upd, pods, undefined);
  if (s.hookProblem) return hold('Held', s.hookProblem);
  const wait = notAvailable(s, pods);
  if (wait) return hold('Rolling', wait.reason, wait.retryAfterMs);

  const next = pods.byOrdinal.get(k - 1) as PodView;
  const prev = k < pods.n ? (pods.byOrdinal.get(k) ?? null) : null;
  const key = stepKey('delete', upd, k - 1, prev, next);
  if (approved(s, key)) {
    return {
      kind: 'deletePod',
      phase: 'Rolling',
      pod: next,
      mark: { revision: upd, partition: k - 1 },
      message: `hook approved pod ${next.name}; deleting it so it is recreated at ${upd}`,
    };
  }
  return {
    kind: 'callHook',
    phase: 'Rolling',
    key,
    prev,
    next,
    message: `asking the hook to approve pod ${next.name} (${pods.n - k + 1}/${pods.n}) moving to ${upd}`,
  };
}
