import { type AppsV1Api, type CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';
import type { EventRecorder } from '../events.ts';
import { guardedPatch, isFailedTest, jsonPatchOptions } from '../kube/guarded-patch.ts';
import { type Logger, traceNow } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { FIELD_MANAGER, PAUSED_ANNOTATION, REQUESTED_REPLICAS_ANNOTATION, REVISION_LABEL, STATUS_ANNOTATION } from '../names.ts';
import type { Action } from '../rollout/planner.ts';
import { statefulSetView } from '../rollout/snapshot.ts';
import { type OrderRecord, parseStatusAnnotation, type RolloutMark, sameSituation, type StatusAnnotation } from '../rollout/status.ts';

type Patch = Extract<Action, { kind: 'patch' }>;
type DeletePod = Extract<Action, { kind: 'deletePod' }>;
type PauseAction = Extract<Action, { kind: 'pause' }>;

/**
 * What a write came to. `written`: it landed (wait for the watch to show it);
 * `conflict`: the object changed since it was read, nothing happened (plan
 * again); `gone`: the object is no more; `not-leader`: leadership was lost
 * before the request went out, nothing was sent.
 */
export type WriteOutcome = 'written' | 'conflict' | 'gone' | 'not-leader';

/** Our last write, until the cache shows it: planning from the version it replaced would repeat it. */
interface Expectation {
  /** The StatefulSet resourceVersion our write replaced. */
  replaced?: string;
  /**
   * What our guarded JSON Patch left. It can land on a newer object than the one
   * we read (a status-only write in between), so the cache may show a version
   * that is neither the one we replaced nor ours: it is ours (or later) once it
   * shows at least our generation and our status annotation.
   */
  wrote?: { generation: number; status: string };
  /** The pod we deleted (OnDelete, or an approved pod the StatefulSet controller would not replace). */
  deletedPodUid?: string;
  at: number;
}
export const EXPECTATION_TTL_MS = 30_000;
/**
 * The Event of a step is written this long after the step, off its critical
 * path: kube-controller-manager acts on the new partition (or the deleted pod)
 * within ~20 ms (p90, bench/trace-step.ts), and nobody reads an Event faster.
 */
export const STEP_EVENT_DELAY_MS = 200;

const keyOf = (sts: V1StatefulSet): string => `${sts.metadata?.namespace ?? ''}/${sts.metadata?.name ?? ''}`;

/**
 * Every write the controller makes to a StatefulSet and its pods: the guarded
 * partition patch, the status annotation, pod deletions, and the Event each
 * one deserves; and the expectation each leaves behind. Leadership is checked
 * right before every request, after whatever awaited before it.
 */
export class StatefulSetWriter {
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly events: EventRecorder;
  private readonly metrics: Metrics;
  private readonly isLeader: () => boolean;
  private readonly expectations = new Map<string, Expectation>();

  constructor(o: { apps: AppsV1Api; core: CoreV1Api; events: EventRecorder; metrics: Metrics; isLeader: () => boolean }) {
    this.apps = o.apps;
    this.core = o.core;
    this.events = o.events;
    this.metrics = o.metrics;
    this.isLeader = o.isLeader;
  }

  forget(key: string): void {
    this.expectations.delete(key);
  }

  /**
   * True while the cache still shows the StatefulSet (or a pod) as it was before
   * our last write; false once it shows the write, or after EXPECTATION_TTL_MS
   * (logged: planning from the cache as it is, then).
   */
  behind(sts: V1StatefulSet, pods: readonly V1Pod[], log: Logger): boolean {
    const key = keyOf(sts);
    const exp = this.expectations.get(key);
    if (!exp) return false;
    const fresh = Date.now() - exp.at < EXPECTATION_TTL_MS;
    const md = sts.metadata;
    const stsBehind =
      (exp.replaced !== undefined && md?.resourceVersion === exp.replaced) ||
      (exp.wrote !== undefined && ((md?.generation ?? 0) < exp.wrote.generation || md?.annotations?.[STATUS_ANNOTATION] !== exp.wrote.status));
    const podBehind = exp.deletedPodUid !== undefined && pods.some((p) => p.metadata?.uid === exp.deletedPodUid && !p.metadata?.deletionTimestamp);
    if (fresh && (stsBehind || podBehind)) return true;
    if (!fresh) log.warn('our last write never showed in the cache; planning from what it shows');
    this.expectations.delete(key);
    return false;
  }

  /** The partition and the status annotation, in one patch guarded by what the plan saw. */
  async patch(sts: V1StatefulSet, action: Patch, log: Logger): Promise<WriteOutcome> {
    const md = sts.metadata ?? {};
    const annotations = { [STATUS_ANNOTATION]: statusFor(sts, action, action.mark) };
    const removeAnnotations = action.clearRequest ? [REQUESTED_REPLICAS_ANNOTATION] : [];
    const guarded = guardedPatch(sts, annotations, action.partition, { replicas: action.replicas, removeAnnotations });
    const body: Record<string, unknown> = {
      metadata: { resourceVersion: md.resourceVersion, annotations: { ...annotations, ...(action.clearRequest ? { [REQUESTED_REPLICAS_ANNOTATION]: null } : {}) } },
    };
    const spec: Record<string, unknown> = {};
    if (action.partition !== undefined) spec.updateStrategy = { rollingUpdate: { partition: action.partition } };
    if (action.replicas !== undefined) spec.replicas = action.replicas;
    if (Object.keys(spec).length > 0) body.spec = spec;
    if (!this.isLeader()) return 'not-leader';
    let updated: V1StatefulSet;
    log.debug({ mark: 'patch-send', t: traceNow() }, 'trace');
    try {
      updated = await this.apps.patchNamespacedStatefulSet(
        { name: md.name ?? '', namespace: md.namespace ?? '', body: guarded ?? body, fieldManager: FIELD_MANAGER },
        guarded ? jsonPatchOptions() : setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      const code = statusCode(err);
      this.metrics.apiErrors.inc({ operation: 'patch_statefulset', code: String(code ?? 'none') });
      if (code === 409 || (guarded && code === 422 && isFailedTest(err))) {
        log.info({ why: action.why }, 'StatefulSet changed since we read it; planning again');
        return 'conflict';
      }
      if (code === 404) return 'gone';
      throw err;
    }
    log.debug({ mark: 'patch-done', t: traceNow() }, 'trace');
    const wrote = guarded ? { generation: updated.metadata?.generation ?? 0, status: annotations[STATUS_ANNOTATION] } : undefined;
    this.expectations.set(keyOf(sts), { replaced: md.resourceVersion, wrote, at: Date.now() });
    this.metrics.steps.inc({ why: action.why });
    log.info({ why: action.why, partition: action.partition, resourceVersion: updated.metadata?.resourceVersion }, action.message);
    const reason = {
      step: 'StepApproved',
      finish: 'RolloutFinished',
      hold: 'PartitionHeld',
      guard: 'PartitionGuarded',
      skip: 'PartitionLowered',
      override: 'OverrideApplied',
      removal: 'ScaleDownRequested',
      remove: 'PodRemovalApproved',
      removed: 'PodRemoved',
      request: 'ScaleDownDone',
    }[action.why];
    // An override is an audited act: a Warning, never folded into another.
    const warn = action.why === 'guard' || action.why === 'override';
    const opts = { dedupe: !['step', 'finish', 'override', 'removal', 'remove', 'removed'].includes(action.why) };
    // A routine step's Event waits until the StatefulSet controller has acted on it; anything rarer (a guard, an override) is written now.
    if (action.why === 'step' || action.why === 'finish') this.events.emitLater(STEP_EVENT_DELAY_MS, sts, 'Normal', reason, action.message, opts);
    else await this.events.emit(sts, warn ? 'Warning' : 'Normal', reason, action.message, opts);
    return 'written';
  }

  /**
   * Record a hold in the status annotation, only when the situation changed, so a
   * hold retried every few seconds costs no write. Guarded by resourceVersion: the
   * annotation carries the rollout mark, which must never be written stale. A
   * failure is counted and left to the next reconcile.
   */
  async recordHold(sts: V1StatefulSet, state: string, message: string, log: Logger, hookErrors?: number): Promise<void> {
    const md = sts.metadata ?? {};
    const parsed = parseStatusAnnotation(md.annotations?.[STATUS_ANNOTATION]);
    const current = parsed.ok ? parsed.status : {};
    if (current.state === state && sameSituation(current.message, message) && current.hookErrors === hookErrors) return;
    const status: StatusAnnotation = {
      ...(current.rollout ? { rollout: current.rollout } : {}),
      ...(current.template ? { template: current.template } : {}),
      ...(current.revision ? { revision: current.revision } : {}),
      ...(current.order ? { order: current.order } : {}),
      ...(current.removal ? { removal: current.removal } : {}),
      ...(current.override ? { override: current.override } : {}),
      ...(current.stepSince ? { stepSince: current.stepSince } : {}),
      ...(hookErrors ? { hookErrors } : {}),
      state,
      message,
      since: new Date().toISOString(),
    };
    if (!this.isLeader()) return;
    try {
      await this.apps.patchNamespacedStatefulSet(
        {
          name: md.name ?? '',
          namespace: md.namespace ?? '',
          body: { metadata: { resourceVersion: md.resourceVersion, annotations: { [STATUS_ANNOTATION]: JSON.stringify(status) } } },
          fieldManager: FIELD_MANAGER,
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      const code = statusCode(err);
      this.metrics.apiErrors.inc({ operation: 'patch_statefulset', code: String(code ?? 'none') });
      // A newer object is on its way through the watch; the next reconcile writes again if needed.
      log.debug({ err: describeError(err) }, 'status annotation not written');
    }
  }

  /**
   * A policy pauses the rollout: `sts-pilot.io/paused: "true"` and the reason in
   * the status annotation, in one merge patch guarded by resourceVersion (a
   * person's edit in between wins; the next plan decides again), and a Warning.
   */
  async pause(sts: V1StatefulSet, action: PauseAction, log: Logger): Promise<WriteOutcome> {
    const md = sts.metadata ?? {};
    const annotations = { [PAUSED_ANNOTATION]: 'true', [STATUS_ANNOTATION]: statusFor(sts, action, undefined) };
    if (!this.isLeader()) return 'not-leader';
    try {
      await this.apps.patchNamespacedStatefulSet(
        { name: md.name ?? '', namespace: md.namespace ?? '', body: { metadata: { resourceVersion: md.resourceVersion, annotations } }, fieldManager: FIELD_MANAGER },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      const code = statusCode(err);
      this.metrics.apiErrors.inc({ operation: 'patch_statefulset', code: String(code ?? 'none') });
      if (code === 409) return 'conflict';
      if (code === 404) return 'gone';
      throw err;
    }
    this.expectations.set(keyOf(sts), { replaced: md.resourceVersion, at: Date.now() });
    log.warn({ policy: action.policy }, action.reason);
    await this.events.emit(sts, 'Warning', action.event, `${action.reason}; resume with: sts-pilot resume ${md.name ?? ''}`, { dedupe: false });
    return 'written';
  }

  /** The hook's order (or why it gave none) in the status annotation, guarded like a step. */
  async recordOrder(sts: V1StatefulSet, record: OrderRecord, log: Logger): Promise<WriteOutcome> {
    const md = sts.metadata ?? {};
    const parsed = parseStatusAnnotation(md.annotations?.[STATUS_ANNOTATION]);
    const status = JSON.stringify({ ...(parsed.ok ? parsed.status : {}), order: record });
    const guarded = guardedPatch(sts, { [STATUS_ANNOTATION]: status }, undefined);
    if (!this.isLeader()) return 'not-leader';
    try {
      const updated = await this.apps.patchNamespacedStatefulSet(
        { name: md.name ?? '', namespace: md.namespace ?? '', body: guarded ?? { metadata: { resourceVersion: md.resourceVersion, annotations: { [STATUS_ANNOTATION]: status } } }, fieldManager: FIELD_MANAGER },
        guarded ? jsonPatchOptions() : setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const wrote = guarded ? { generation: updated.metadata?.generation ?? 0, status } : undefined;
      this.expectations.set(keyOf(sts), { replaced: md.resourceVersion, wrote, at: Date.now() });
      return 'written';
    } catch (err) {
      const code = statusCode(err);
      this.metrics.apiErrors.inc({ operation: 'patch_statefulset', code: String(code ?? 'none') });
      log.info({ err: describeError(err) }, 'the order was not recorded (the StatefulSet changed); asking again');
      return code === 404 ? 'gone' : 'conflict';
    }
  }

  /**
   * Delete exactly the approved pod (uid precondition), after the status and the
   * mark are written with the guarded patch: the deletion is valid only for the
   * StatefulSet as planned, and after a restart the mark says the rollout owes the
   * hook a final call.
   */
  async deletePod(sts: V1StatefulSet, pods: readonly V1Pod[], action: DeletePod, log: Logger): Promise<WriteOutcome> {
    const md = sts.metadata ?? {};
    const annotations = { [STATUS_ANNOTATION]: statusFor(sts, action, action.mark) };
    const guarded = guardedPatch(sts, annotations, undefined);
    if (!this.isLeader()) return 'not-leader';
    try {
      await this.apps.patchNamespacedStatefulSet(
        { name: md.name ?? '', namespace: md.namespace ?? '', body: guarded ?? { metadata: { resourceVersion: md.resourceVersion, annotations } }, fieldManager: FIELD_MANAGER },
        guarded ? jsonPatchOptions() : setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      const code = statusCode(err);
      this.metrics.apiErrors.inc({ operation: 'patch_statefulset', code: String(code ?? 'none') });
      if (code === 409 || (guarded && code === 422 && isFailedTest(err))) {
        log.info({ pod: action.pod.name }, 'StatefulSet changed since we read it; planning again before deleting');
        return 'conflict';
      }
      if (code === 404) return 'gone';
      throw err;
    }
    const pod = pods.find((p) => p.metadata?.uid === action.pod.uid);
    if (!this.isLeader()) return 'not-leader';
    try {
      await this.core.deleteNamespacedPod({ name: action.pod.name, namespace: md.namespace ?? '', body: { preconditions: { uid: action.pod.uid } } });
    } catch (err) {
      const code = statusCode(err);
      this.metrics.apiErrors.inc({ operation: 'delete_pod', code: String(code ?? 'none') });
      // 409: the pod is not the one approved any more; 404: already gone. Plan again.
      if (code === 409 || code === 404) return 'conflict';
      throw err;
    }
    this.expectations.set(keyOf(sts), { deletedPodUid: action.pod.uid, at: Date.now() });
    this.metrics.steps.inc({ why: action.why });
    log.info({ pod: action.pod.name, revision: pod?.metadata?.labels?.[REVISION_LABEL] }, action.message);
    const reason = { step: 'StepApproved', replace: 'ApprovedPodReplaced', override: 'OverrideApplied' }[action.why];
    if (action.why === 'override') await this.events.emit(sts, 'Warning', reason, action.message, { dedupe: false });
    else this.events.emitLater(STEP_EVENT_DELAY_MS, sts, 'Normal', reason, action.message, { dedupe: false });
    return 'written';
  }
}

/**
 * The status annotation a write leaves: the rollout mark (kept, replaced or
 * cleared), the template and revision the partition is set for, and what was done.
 */
export function statusFor(sts: V1StatefulSet, action: Action, mark: RolloutMark | null | undefined): string {
  const view = statefulSetView(sts);
  const rollout = mark === undefined ? view.mark : (mark ?? undefined);
  // Every partition sts-pilot writes is for the template it read (the patch tests the generation),
  // whose revision is known once the StatefulSet controller has observed it.
  const setsPartition = action.kind === 'patch' && action.partition !== undefined;
  const template = setsPartition ? view.templateHash : view.heldTemplate;
  const revision = setsPartition ? (view.observedGeneration === view.generation ? view.updateRevision : undefined) : view.heldRevision;
  const message = action.kind === 'hold' || action.kind === 'pause' ? action.reason : action.message;
  // The audit record of the last override: written in the very patch that applies it.
  const applied = (action.kind === 'patch' || action.kind === 'deletePod') && action.override ? { ...action.override, appliedAt: new Date().toISOString() } : undefined;
  const override = applied ?? view.override;
  // A step taken starts the wait for the next one (hold-timeout).
  const steps = (action.kind === 'patch' && (action.why === 'step' || action.why === 'override')) || (action.kind === 'deletePod' && action.why !== 'replace');
  // A pause ends the wait: after a resume the count starts again.
  const kept = action.kind !== 'pause' && view.stepSince !== undefined ? new Date(view.stepSince).toISOString() : undefined;
  const stepSince = steps ? new Date().toISOString() : kept;
  const removal = action.kind === 'patch' && action.removal !== undefined ? (action.removal ?? undefined) : view.removal;
  const status: StatusAnnotation = {
    ...(rollout ? { rollout } : {}),
    ...(template ? { template } : {}),
    ...(revision ? { revision } : {}),
    // The order is for a step of a rollout: a finished one leaves none behind.
    ...(view.order && !(action.kind === 'patch' && action.why === 'finish') ? { order: view.order } : {}),
    ...(removal ? { removal } : {}),
    ...(override ? { override } : {}),
    ...(stepSince ? { stepSince } : {}),
    state: action.phase,
    message,
    since: new Date().toISOString(),
  };
  return JSON.stringify(status);
}
