import { createHash } from 'node:crypto';
import { PAUSED_ANNOTATION } from '../names.ts';
import { gateStep, readPolicies, watchVerdicts } from './policies/index.ts';
import type { AppliedOverride, PolicyName } from './policies/types.ts';
import type { RemovalOutcome } from '../hook.ts';
import { planScaleDown } from './scale-down.ts';
import type { PodView, Snapshot } from './snapshot.ts';
import type { RemovalRecord, RolloutMark } from './status.ts';

/** An approval older than this is asked again: the application may have changed its mind. */
export const APPROVAL_TTL_MS = 30_000;
/** A hook's order (podUpdateOrder) is asked again after this long: leadership may have moved. */
export const ORDER_TTL_MS = 60_000;
/** A hook that could not give an order is asked again after this long. */
export const ORDER_RETRY_MS = 5_000;

/**
 * Steady: nothing to roll. Rolling: a rollout moves or waits on pods. Waiting: the
 * StatefulSet controller has not caught up yet (transient, not worth an Event).
 * Held: something needs a person's attention. Paused: a person asked for it.
 */
export type Phase = 'Steady' | 'Rolling' | 'Waiting' | 'Held' | 'Paused' | 'Unmanageable';

export type Action =
  /** Nothing to do until something changes. */
  | { kind: 'none'; phase: Phase; message: string }
  /**
   * Do nothing, and say why; `retryAfterMs` when time alone will change the answer.
   * `policy`: a rollout policy holds (lib/rollout/policies). `overdue`: the step
   * is held past its hold-timeout, configured to keep waiting (a Warning to raise).
   */
  | { kind: 'hold'; phase: Phase; reason: string; retryAfterMs?: number; policy?: PolicyName; overdue?: string }
  /**
   * A policy stops the rollout until a person resumes it: write
   * `sts-pilot.io/paused: "true"` with the reason, and a Warning Event `event`.
   */
  | { kind: 'pause'; phase: 'Paused'; policy: PolicyName; event: string; reason: string }
  /**
   * Ask the hook; an approval comes back to the planner keyed by `key`, which
   * names the exact state it was asked in. `nextReady`: the hook is told whether
   * the pod about to move is Ready (a broken release must be replaceable).
   */
  | {
      kind: 'callHook';
      phase: Phase;
      key: string;
      prev: PodView | null;
      next: PodView | null;
      nextReady: boolean | null;
      message: string;
      /** Why `next` is the next pod, when the hook's order chose it (OnDelete). */
      why?: string;
      overdue?: string;
    }
  /**
   * OnDelete with a hook that chooses the order: ask its podUpdateOrder about
   * these stale pods, and record the answer (or its error) under `key` in the
   * status annotation, where the next plan finds it.
   */
  | { kind: 'askOrder'; phase: Phase; key: string; stale: PodView[]; message: string }
  /**
   * Scale-down: ask the hook whether `pod` may leave for good (`removal`), or tell
   * it the pod is gone (`removed`) or its removal was withdrawn (`withdrawn`); an
   * approval comes back keyed by `key`, like a step's.
   */
  | {
      kind: 'callRemoval';
      phase: Phase;
      key: string;
      call: 'removal' | RemovalOutcome;
      pod: { pod: string; uid: string; index: number };
      podReady: boolean;
      requested: number;
      message: string;
    }
  /**
   * One guarded patch of the StatefulSet (the partition and the status annotation,
   * tested against what the plan saw). `mark` undefined keeps the rollout mark,
   * null clears it. `partition` undefined leaves the partition alone.
   */
  | {
      kind: 'patch';
      phase: Phase;
      why: 'step' | 'finish' | 'hold' | 'guard' | 'skip' | 'override' | 'removal' | 'remove' | 'removed' | 'request';
      partition: number | undefined;
      mark: RolloutMark | null | undefined;
      message: string;
      /** why 'remove': spec.replicas after the approved removal (one less). */
      replicas?: number;
      /** The scale-down's record in the status annotation: undefined keeps it, null clears it. */
      removal?: RemovalRecord | null;
      /** Remove the requested-replicas annotation in the same patch: the request is met or moot. */
      clearRequest?: boolean;
      /** why 'override': the person's override that stands in for the hook's approval. */
      override?: AppliedOverride;
    }
  /**
   * Delete exactly this pod (uid precondition), writing `mark` first: an approved
   * OnDelete step, or an approved pod the StatefulSet controller will not replace.
   */
  | { kind: 'deletePod'; phase: Phase; why: 'step' | 'replace' | 'override'; pod: PodView; mark: RolloutMark; message: string; override?: AppliedOverride };

/** The pod at the mark's place is the one approved (or is gone and being recreated). */
const isApproved = (mark: RolloutMark, pod: PodView | undefined): boolean => pod === undefined || mark.uid === undefined || pod.uid === mark.uid;

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

export const hold = (phase: Phase, reason: string, retryAfterMs?: number): Action =>
  retryAfterMs === undefined ? { kind: 'hold', phase, reason } : { kind: 'hold', phase, reason, retryAfterMs };

const quote = (s: string): string => JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);

/**
 * Decide the one next thing to do for a StatefulSet. Pure: everything it
 * knows is in the snapshot, so it is table-tested and restart-safe.
 * See docs/rollout.md for the rules and why each exists.
 */
export function plan(s: Snapshot): Action {
  return watchStep(s, planStep(s));
}

/**
 * The policies that watch a waiting step (hold-timeout, halt) turn a plan that
 * keeps waiting into a pause. Not while a maintenance window is closed: waiting
 * for it is what was asked for.
 */
function watchStep(s: Snapshot, a: Action): Action {
  const waiting = a.kind === 'callHook' || (a.kind === 'hold' && a.phase === 'Rolling' && a.policy !== 'window');
  if (!waiting) return a;
  const p = readPolicies(s);
  if (p.haltAfter === undefined && p.holdTimeout === undefined) return a;
  let overdue: string | undefined;
  for (const v of watchVerdicts(s, p, a.kind === 'callHook')) {
    if (v.says === 'pause') return { kind: 'pause', phase: 'Paused', policy: v.policy, event: v.event, reason: `policy ${v.policy}: ${v.text}` };
    if (v.says === 'overdue') overdue = `policy ${v.policy}: ${v.text}`;
  }
  return overdue === undefined ? a : { ...a, overdue };
}

/** The gate's hold as an action. */
function policyHold(g: { policy: PolicyName; phase: Phase; reason: string; retryAfterMs?: number }): Action {
  const a: Action = { kind: 'hold', phase: g.phase, reason: g.reason, policy: g.policy };
  return g.retryAfterMs === undefined ? a : { ...a, retryAfterMs: g.retryAfterMs };
}

function planStep(s: Snapshot): Action {
  const { sts } = s;
  if (sts.paused !== undefined && sts.paused !== 'false') {
    if (sts.paused === 'true') return hold('Paused', `paused by annotation ${PAUSED_ANNOTATION}`);
    return hold('Held', `annotation ${PAUSED_ANNOTATION} must be "true" or "false", got ${quote(sts.paused)}; holding`);
  }
  if (sts.strategy !== 'RollingUpdate' && sts.strategy !== 'OnDelete') {
    return hold('Unmanageable', `updateStrategy ${quote(sts.strategy)} is not RollingUpdate or OnDelete; not managing it`);
  }
  // Raising the partition is always safe, so the guard does not wait for the
  // StatefulSet controller to catch up: it acts on the first event that shows a risk.
  if (sts.strategy === 'RollingUpdate') {
    const guard = guardPartition(s);
    if (guard) return guard;
  }
  if (sts.observedGeneration === undefined || sts.observedGeneration < sts.generation) {
    return hold(
      'Waiting',
      `waiting for the StatefulSet controller to observe generation ${sts.generation} (observed ${sts.observedGeneration ?? 'none'})`,
    );
  }
  const upd = sts.updateRevision;
  if (!upd) return hold('Waiting', 'waiting for the StatefulSet controller to report status.updateRevision');
  const scaleDown = planScaleDown(s, upd);
  if (scaleDown) return scaleDown;
  return sts.strategy === 'OnDelete' ? planOnDelete(s, upd) : planRollingUpdate(s, upd);
}

/** The pods by their place in the StatefulSet (index = ordinal - ordinals.start). */
export interface Pods {
  n: number;
  byIndex: Map<number, PodView>;
  /** Pods outside 0..N-1: left from a scale-down, or from before ordinals.start changed. */
  extras: PodView[];
  /** The pod at index i as people know it. */
  name(i: number): string;
  /** Pod i exists, is not leaving and runs the update revision. */
  atUpdate(i: number): boolean;
  /** Pod i exists (maybe leaving) at another revision: it is what a step would move. */
  stale(i: number): boolean;
  /** 1 + the highest stale index below N; 0 when none is. Missing pods are not stale. */
  frontier: number;
  /** 1 + the highest index of a stale pod a scale-down has not removed yet; 0 when none. The guard keeps the partition above it. */
  extrasTop: number;
  /**
   * Pod i is missing and the StatefulSet controller cannot create it: with
   * OrderedReady it creates pods in order and stops at the first that is not
   * Ready, here the pod at the frontier, left unready at an abandoned revision
   * (a broken release). It is created once that pod is replaced, at the update
   * revision.
   */
  blocked(i: number): boolean;
}

export function indexPods(s: Snapshot, upd: string | undefined): Pods {
  const n = s.sts.replicas;
  const byIndex = new Map<number, PodView>();
  const extras: PodView[] = [];
  for (const p of s.pods) (p.index >= 0 && p.index < n ? byIndex.set(p.index, p) : extras.push(p));
  const atUpdate = (i: number): boolean => {
    const p = byIndex.get(i);
    return p !== undefined && !p.terminating && p.revision === upd;
  };
  const stale = (i: number): boolean => {
    const p = byIndex.get(i);
    return p !== undefined && p.revision !== upd;
  };
  let frontier = 0;
  for (let i = n - 1; i >= 0; i--) {
    if (stale(i)) {
      frontier = i + 1;
      break;
    }
  }
  const name = (i: number): string => `${s.sts.name}-${s.sts.ordinalsStart + i}`;
  // A stale pod at neither revision the StatefulSet controller creates pods at is
  // left from an abandoned rollout; not Ready, it is a broken release's pod.
  const top = byIndex.get(frontier - 1);
  const stuck =
    s.sts.podManagementPolicy !== 'Parallel' && top !== undefined && !top.ready && !top.terminating &&
    top.revision !== undefined && top.revision !== s.sts.currentRevision;
  const blocked = (i: number): boolean => stuck && i >= frontier && i < n && !byIndex.has(i);
  const extrasTop = Math.max(0, ...extras.filter((p) => !p.terminating && p.index >= n && p.revision !== upd).map((p) => p.index + 1));
  return { n, byIndex, extras, name, atUpdate, stale, frontier, blocked, extrasTop };
}

/**
 * Guard: raise the partition above every pod the StatefulSet controller would
 * move without the hook's approval. Runs before the wait for observedGeneration,
 * on the status as it is: nothing here can make a raise unsafe.
 *
 * 1. The template differs from the one sts-pilot last set the partition for:
 *    every pod at or above the partition is about to go to a revision nobody
 *    approved (a template reverted or replaced mid-rollout, where the admission
 *    policy is not installed). Seen from the spec alone, on the first event.
 * 2. A pod at or above the partition that is stale and was not approved
 *    (the partition lowered by hand, a rollout adopted in flight).
 * 3. A missing pod below where sts-pilot left the partition: the StatefulSet
 *    controller deleted it and would recreate it at the update revision, not
 *    the current one (no risk when both are the same, nor for a pod it cannot
 *    create before a broken one is replaced: see Pods.blocked).
 */
function guardPartition(s: Snapshot): Action | undefined {
  const { sts } = s;
  const n = sts.replicas;
  const p = sts.partition ?? 0;
  // A pod a scale-down has not removed yet is back in range after a scale-up:
  // at or above the partition, it counts like any other.
  const top = Math.max(n, ...s.pods.filter((x) => !x.terminating).map((x) => x.index + 1));
  if (p >= top) return undefined;
  const raise = (to: number, why: string): Action => ({
    kind: 'patch',
    phase: 'Rolling',
    why: 'guard',
    partition: to,
    mark: undefined,
    message: `${why}; raising the partition ${p} -> ${to}`,
  });
  const atRisk = `${sts.name}-${sts.ordinalsStart + p}..${sts.name}-${sts.ordinalsStart + top - 1}`;
  if (sts.heldTemplate !== undefined && sts.heldTemplate !== sts.templateHash) {
    return raise(top, `the partition is at ${p}, but sts-pilot set it for an earlier pod template: pods ${atRisk} could move without the hook's approval`);
  }
  const mark = sts.mark;
  const approved = (x: PodView | undefined, revision: string): boolean =>
    mark !== undefined && mark.revision === revision && mark.partition === p && x?.index === p && p < n && isApproved(mark, x);
  // The StatefulSet controller has not observed the spec yet, so its status says
  // nothing of what it is about to do; but every pod at or above the partition
  // should run the revision sts-pilot set it for. One that does not was moved
  // by someone else (a template changed and changed back in between).
  const unobserved = sts.observedGeneration === undefined || sts.observedGeneration < sts.generation;
  if (unobserved && sts.heldTemplate !== undefined && sts.heldRevision === undefined) {
    // sts-pilot last set the partition before the StatefulSet controller had named the
    // template's revision (a guard): below that now, someone else lowered it.
    return raise(top, `the partition was lowered to ${p} before the StatefulSet controller named the revision: pods ${atRisk} could move without the hook's approval`);
  }
  if (unobserved && sts.heldRevision !== undefined) {
    const held = sts.heldRevision;
    const moved = s.pods.find((x) => x.index >= p && !x.terminating && !approved(x, held) && x.revision !== held);
    if (moved) return raise(top, `pod ${moved.name} runs ${moved.revision ?? 'no revision'}, not ${held}, the revision the partition was set for: pods ${atRisk} could move without the hook's approval`);
  }
  const upd = sts.updateRevision;
  if (!upd) return undefined;
  const pods = indexPods(s, upd);
  const at = new Map(s.pods.filter((x) => x.index >= n && !x.terminating).map((x) => [x.index, x]));
  for (const [i, x] of pods.byIndex) at.set(i, x);
  const heldAt = mark !== undefined && mark.revision === upd ? Math.min(mark.partition, n) : n;
  const gone = (i: number): boolean => i < heldAt && !at.has(i) && sts.currentRevision !== upd && !pods.blocked(i);
  for (let i = top - 1; i >= p; i--) {
    const x = at.get(i);
    const stale = x !== undefined && x.revision !== upd && !approved(x, upd);
    if (stale || gone(i)) {
      const name = x?.name ?? pods.name(i);
      return raise(i + 1, `pod ${name} would ${stale ? 'move to' : 'be recreated at'} ${upd} without the hook's approval`);
    }
  }
  return undefined;
}

/**
 * Why a step may not start now: every pod must exist and be available, none may
 * be leaving. `next` (the pod the step moves) must exist and not be leaving, but
 * may be unready: a broken release must be replaceable, and the hook is told.
 * Replacing a pod that is not Ready takes no working pod away, so then other
 * stale pods that are not Ready (broken the same way) and a pending scale-down
 * do not hold the step either; pods already at the update revision still must be
 * Ready: a release that does not come up is not pushed further.
 */
export function notAvailable(s: Snapshot, pods: Pods, next?: number): { reason: string; retryAfterMs?: number } | undefined {
  const nextPod = next === undefined ? undefined : pods.byIndex.get(next);
  const replacingBroken = nextPod !== undefined && !nextPod.ready && !nextPod.terminating;
  if (!replacingBroken) {
    // A pod left unready at an abandoned revision (a broken release that was rolled
    // back or fixed while it waited below the partition) blocks the StatefulSet
    // controller and this rollout alike, and no step of this rollout reaches it
    // first: only a person can decide to replace it. Said before anything else.
    const abandoned = [...pods.byIndex.values()].find(
      (p) => p.index !== next && !p.ready && !p.terminating && p.revision !== undefined &&
        p.revision !== s.sts.updateRevision && p.revision !== s.sts.currentRevision,
    );
    if (abandoned) {
      return {
        reason:
          `pod ${abandoned.name} is not Ready and runs ${abandoned.revision}, neither the current nor the update revision ` +
          `(a release abandoned while it was rolling): the StatefulSet controller and this rollout both wait for it; if it is broken, ` +
          `delete pod ${abandoned.name} and it is recreated at ${s.sts.currentRevision ?? 'the current revision'}`,
      };
    }
  }
  for (let i = pods.n - 1; i >= 0; i--) {
    const p = pods.byIndex.get(i);
    const name = pods.name(i);
    if (!p && replacingBroken && pods.blocked(i)) continue;
    if (!p) return { reason: `waiting for pod ${name} to be created` };
    if (p.terminating) return { reason: `waiting for pod ${name} to finish terminating` };
    if (i === next) continue;
    if (!p.ready) {
      if (replacingBroken && p.revision !== s.sts.updateRevision) continue;
      return { reason: `waiting for pod ${name} to be Ready` };
    }
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
  if (pods.extras.length > 0 && !replacingBroken) {
    const names = pods.extras.map((p) => p.name).sort().join(', ');
    return { reason: `waiting for scale-down to remove ${names}` };
  }
  return undefined;
}

export const approved = (s: Snapshot, key: string): boolean =>
  s.approval !== undefined && s.approval.key === key && s.now - s.approval.at <= APPROVAL_TTL_MS;

/**
 * What an approval is valid for: this step of this revision, the spec as it is
 * (generation), the hook's configuration, and prev/next exactly as the hook saw
 * them (uid and resourceVersion). Anything else changes the key, and the hook
 * is asked again.
 */
function stepKey(s: Snapshot, kind: string, upd: string, at: number, prev: PodView | null, next: PodView | null): string {
  const pod = (p: PodView | null): string => (p ? `${p.uid}@${p.resourceVersion}` : '-');
  return [kind, upd, at, s.sts.generation, s.hookConfig, pod(prev), pod(next)].join('|');
}

/** The pod approved last, for the final call: the mark's index, clamped to what still exists. */
function lastApproved(pods: Pods, mark: RolloutMark): PodView | null {
  if (pods.n === 0) return null;
  return pods.byIndex.get(Math.min(mark.partition, pods.n - 1)) ?? null;
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
    const key = stepKey(s, 'final', upd, mark.partition, prev, null);
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
      nextReady: null,
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
  const pods = indexPods(s, upd);
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

  // The guard ran first: every stale pod at or above the partition is the one approved last.
  const mark = sts.mark;
  const inFlight = mark !== undefined && mark.revision === upd && mark.partition === p && p < n && isApproved(mark, pods.byIndex.get(p)) ? p : -1;
  if (inFlight >= 0 && !pods.atUpdate(inFlight)) return planInFlight(s, pods, inFlight, upd, mark as RolloutMark);

  if (s.hookProblem) return hold('Held', s.hookProblem);

  // Pods between the frontier and the partition already run the update revision:
  // lowering the partition over them moves no pod, so it needs no hook call. A
  // missing one would be created at the update revision: wait for it instead,
  // unless it cannot be created before the broken pod below it is replaced.
  // Never below a stale pod a scale-down has not removed yet (the guard would raise it again).
  const floor = Math.max(k, pods.extrasTop);
  if (p > floor && range(floor, Math.min(p, n)).every((i) => pods.atUpdate(i) || pods.blocked(i))) {
    const over = floor < Math.min(p, n) ? `pods ${pods.name(floor)}..${pods.name(Math.min(p, n) - 1)} already run ${upd}` : `no pod is at ${floor}..${p - 1}`;
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'skip',
      partition: floor,
      mark: undefined,
      message: `${over}; lowering partition to ${floor}`,
    };
  }

  const wait = notAvailable(s, pods, p - 1);
  if (wait) return hold('Rolling', wait.reason, wait.retryAfterMs);

  // p === k > 0: pod p-1 is the next, pod p (if any) the one updated last.
  const next = pods.byIndex.get(p - 1);
  if (p !== k || !next) return hold('Rolling', `waiting for the pods between ${pods.name(k - 1)} and the partition (${p}) to settle`);
  const prev = p < n ? (pods.byIndex.get(p) ?? null) : null;
  // The rollout policies: they only ever hold a step, or let a person's override stand in for the hook.
  const gate = gateStep(s, { next, upd });
  if (gate.kind === 'hold') return policyHold(gate);
  if (gate.kind === 'override') {
    const o = gate.verdict.override;
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'override',
      partition: p - 1,
      mark: { revision: upd, partition: p - 1, uid: next.uid },
      message: `override by ${o.by} lets pod ${next.name} through without the hook (reason: ${o.reason}); partition ${p} -> ${p - 1}`,
      override: o,
    };
  }
  const key = stepKey(s, 'step', upd, p, prev, next);
  if (approved(s, key)) {
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'step',
      partition: p - 1,
      mark: { revision: upd, partition: p - 1, uid: next.uid },
      message: `hook approved pod ${next.name}; partition ${p} -> ${p - 1}`,
    };
  }
  const unready = next.ready ? '' : ` (it is not Ready: replacing a broken pod)`;
  return {
    kind: 'callHook',
    phase: 'Rolling',
    key,
    prev,
    next,
    nextReady: next.ready,
    message: `asking the hook to approve pod ${next.name} (${n - p + 1}/${n}) moving to ${upd}${unready}`,
  };
}

/**
 * The approved pod has not come back at the update revision yet. Normally the
 * StatefulSet controller is replacing it: wait. But with OrderedReady it never
 * replaces a pod that is not Ready (it waits for every pod to be Running and
 * Ready first): a broken release would stay broken. Then sts-pilot deletes the
 * approved pod itself, once every other pod is available: the step the hook
 * approved, nothing more.
 */
function planInFlight(s: Snapshot, pods: Pods, i: number, upd: string, mark: RolloutMark): Action {
  const pod = pods.byIndex.get(i);
  const waiting = hold('Rolling', `waiting for pod ${pods.name(i)} to be updated to ${upd}`);
  if (!pod || pod.terminating || pod.ready || s.sts.podManagementPolicy === 'Parallel') return waiting;
  const wait = notAvailable(s, pods, i);
  if (wait) return hold('Rolling', `waiting for pod ${pods.name(i)} to be updated to ${upd}: it is not Ready, and before replacing it, ${wait.reason}`, wait.retryAfterMs);
  return {
    kind: 'deletePod',
    phase: 'Rolling',
    why: 'replace',
    pod,
    mark,
    message:
      `pod ${pod.name} was approved but is not Ready, and the StatefulSet controller (OrderedReady) does not replace ` +
      `a pod that is not Ready; deleting it so it is recreated at ${upd}`,
  };
}

/**
 * What an order is valid for: this revision, the spec as it is, and exactly
 * these stale pods (uids). A step changes the set, so the hook is asked again
 * before every step; and after ORDER_TTL_MS within one (a changed option too).
 */
export function orderKey(s: Snapshot, upd: string, stale: readonly PodView[]): string {
  const uids = stale.map((p) => p.uid).sort();
  return createHash('sha256').update(JSON.stringify([upd, s.sts.generation, uids])).digest('hex').slice(0, 16);
}

/**
 * The pod the hook's order puts first, or what to do instead: ask for an order
 * (none yet, or it is old, or it is for other pods), or hold on its error.
 * Every pod but the stale ones is available here.
 */
function orderedNext(s: Snapshot, upd: string, stale: PodView[]): { next: PodView; why: string } | Action {
  const key = orderKey(s, upd, stale);
  const rec = s.sts.order;
  const at = rec ? Date.parse(rec.at) : NaN;
  const age = s.now - at;
  const ttl = rec?.error !== undefined ? ORDER_RETRY_MS : ORDER_TTL_MS;
  if (!rec || rec.key !== key || Number.isNaN(at) || age > ttl || age < -ttl) {
    const names = stale.map((p) => p.name).join(', ');
    return { kind: 'askOrder', phase: 'Rolling', key, stale, message: `asking the hook which of the stale pods (${names}) moves next` };
  }
  if (rec.error !== undefined) return hold('Rolling', `the hook gave no order for the stale pods: ${rec.error}`, Math.max(0, ttl - age));
  const byName = new Map(stale.map((p) => [p.name, p]));
  const first = (rec.pods ?? []).map((n) => byName.get(n)).find((p) => p !== undefined);
  // The key names these very pods, so the order names them all (the controller checked it).
  if (!first) return hold('Held', `the hook's order (${(rec.pods ?? []).join(', ')}) names none of the stale pods`);
  const order = (rec.pods ?? []).join(', ');
  return { next: first, why: `first in the hook's order (${order})${rec.reason ? `: ${rec.reason}` : ''}` };
}

function planOnDelete(s: Snapshot, upd: string): Action {
  const pods = indexPods(s, upd);
  const k = pods.frontier;
  if (k === 0) return planFinish(s, upd, pods, undefined);
  if (s.hookProblem) return hold('Held', s.hookProblem);

  let next: PodView;
  let prev: PodView | null;
  let why = '';
  if (s.hookOrders) {
    const stale = [...pods.byIndex.values()].filter((p) => pods.stale(p.index)).sort((a, b) => b.index - a.index);
    // A broken pod (stale, not Ready) goes first whatever the order: every other pod must be Ready for a step.
    const broken = stale.find((p) => !p.ready && !p.terminating);
    const wait = notAvailable(s, pods, broken?.index);
    if (wait) return hold('Rolling', wait.reason, wait.retryAfterMs);
    if (broken) {
      next = broken;
      why = `it is not Ready: replaced before the hook's order applies`;
    } else {
      const chosen = orderedNext(s, upd, stale);
      if ('kind' in chosen) return chosen;
      next = chosen.next;
      why = chosen.why;
    }
    // prev: the pod approved last (the mark), as it is now.
    const mark = s.sts.mark;
    prev = mark && mark.revision === upd && mark.partition !== next.index ? (pods.byIndex.get(mark.partition) ?? null) : null;
  } else {
    const wait = notAvailable(s, pods, k - 1);
    if (wait) return hold('Rolling', wait.reason, wait.retryAfterMs);
    next = pods.byIndex.get(k - 1) as PodView;
    prev = k < pods.n ? (pods.byIndex.get(k) ?? null) : null;
  }
  const gate = gateStep(s, { next, upd });
  if (gate.kind === 'hold') return policyHold(gate);
  if (gate.kind === 'override') {
    const o = gate.verdict.override;
    return {
      kind: 'deletePod',
      phase: 'Rolling',
      why: 'override',
      pod: next,
      mark: { revision: upd, partition: next.index, uid: next.uid },
      message: `override by ${o.by} lets pod ${next.name} through without the hook (reason: ${o.reason}); deleting it so it is recreated at ${upd}`,
      override: o,
    };
  }
  const key = stepKey(s, 'delete', upd, next.index, prev, next);
  const done = [...pods.byIndex.values()].filter((p) => !pods.stale(p.index)).length;
  if (approved(s, key)) {
    return {
      kind: 'deletePod',
      phase: 'Rolling',
      why: 'step',
      pod: next,
      mark: { revision: upd, partition: next.index, uid: next.uid },
      message: `hook approved pod ${next.name}${why ? ` (${why})` : ''}; deleting it so it is recreated at ${upd}`,
    };
  }
  const unready = next.ready ? '' : ` (it is not Ready: replacing a broken pod)`;
  const step = s.hookOrders ? done + 1 : pods.n - k + 1;
  return {
    kind: 'callHook',
    phase: 'Rolling',
    key,
    prev,
    next,
    nextReady: next.ready,
    message: `asking the hook to approve pod ${next.name} (${step}/${pods.n}) moving to ${upd}${unready}${why && next.ready ? `; ${why}` : ''}`,
    ...(why ? { why } : {}),
  };
}
