import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { describeError, statusCode } from './errors.ts';
import { EventRecorder } from './events.ts';
import { checkUpdateOrder, hookConfigOf, HookNotReady, hookOptionAnnotations, parseHookOptions, type RolloutHook } from './hook.ts';
import { guardedPatch, isFailedTest, jsonPatchOptions } from './kube/guarded-patch.ts';
import { Informer } from './kube/informer.ts';
import { OwnerIndex } from './kube/owner-index.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { PilotManager } from './pilot/manager.ts';
import { DEFAULT_LABEL_KEY, FIELD_MANAGER, REVISION_LABEL, STATUS_ANNOTATION } from './names.ts';
import { type Action, plan } from './rollout/planner.ts';
import { type Approval, podView, type PodView, type Snapshot, statefulSetView } from './rollout/snapshot.ts';
import { type OrderRecord, parseStatusAnnotation, type RolloutMark, sameSituation, type StatusAnnotation } from './rollout/status.ts';
import { WorkQueue } from './workqueue.ts';

export interface ControllerOptions {
  kc: KubeConfig;
  hooks: ReadonlyMap<string, RolloutHook>;
  log: Logger;
  metrics: Metrics;
  labelKey?: string;
  /** Watch one namespace; all when undefined. */
  namespace?: string;
  workers?: number;
  hookTimeoutMs?: number;
  resyncMs?: number;
  /**
   * Cap of the backoff between calls to a hook that holds. A drain can finish at
   * any moment: asking again within this long keeps a rollout from idling.
   */
  retryMaxMs?: number;
  /** Writes and hook calls happen only while this says so (leader election). */
  isLeader?: () => boolean;
}

/** After a write, the cache still shows the old object for a moment: wait for the watch, not for a stale plan. */
interface Expectation {
  uid: string;
  /** The StatefulSet resourceVersion our patch replaced. */
  staleVersion?: string;
  /**
   * What our guarded JSON Patch left: it can land on a newer object than the one
   * we read (a status-only write in between), so the cache may show a version
   * that is neither the one we replaced nor ours. It is ours (or later) once it
   * shows at least our generation and our status annotation.
   */
  wrote?: { generation: number; status: string };
  /** The pod we deleted (OnDelete). */
  deletedPodUid?: string;
  at: number;
}
const EXPECTATION_TTL_MS = 30_000;

/** How often the whole cache is re-queued, as a safety net; it costs no API call. */
const DEFAULT_RESYNC_MS = 5 * 60_000;

const key = (ns: string, name: string): string => `${ns}/${name}`;

/**
 * Holds the partition of every StatefulSet that carries the hook label and moves
 * it one pod at a time, each move approved by the named hook. All state is read
 * from the informers' caches; the only memory is the hook's last approval and the
 * expectations of our own writes, both safe to lose.
 */
export class Controller {
  private readonly o: Required<Omit<ControllerOptions, 'namespace'>> & { namespace: string | undefined };
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly events: EventRecorder;
  private readonly statefulSets: Informer<V1StatefulSet>;
  private readonly pods: Informer<V1Pod>;
  private readonly podsByOwner = new OwnerIndex<V1Pod>();
  private readonly pilots: PilotManager;
  private readonly queue: WorkQueue;
  private readonly approvals = new Map<string, Approval>();
  /** Hook calls in flight, one per StatefulSet at most; they run off the workers. */
  private readonly calls = new Map<string, { key: string; abort: AbortController; done: Promise<void> }>();
  private readonly expectations = new Map<string, Expectation>();
  /** Subscribed StatefulSets we saw, to tell "label removed" from "deleted". */
  private readonly known = new Map<string, string>();
  /** Rollouts in progress, and since when each has been at its current step. */
  private readonly inProgress = new Map<string, { step: string; since: number }>();
  private readonly shutdown = new AbortController();
  private resync: NodeJS.Timeout | undefined;
  private synced = false;

  constructor(opts: ControllerOptions) {
    this.o = {
      labelKey: DEFAULT_LABEL_KEY,
      workers: 4,
      hookTimeoutMs: 60_000,
      resyncMs: DEFAULT_RESYNC_MS,
      retryMaxMs: 30_000,
      isLeader: () => true,
      ...opts,
      namespace: opts.namespace,
    };
    const { kc, log, namespace } = this.o;
    this.apps = kc.makeApiClient(AppsV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(this.core, log);
    this.queue = new WorkQueue({
      workers: this.o.workers,
      maxDelayMs: this.o.retryMaxMs,
      handler: (k) => this.reconcile(k),
      onError: (k, err) => log.error({ statefulSet: k, err: describeError(err) }, 'reconcile failed; retrying with backoff'),
    });
    const stsPath = namespace ? `/apis/apps/v1/namespaces/${namespace}/statefulsets` : '/apis/apps/v1/statefulsets';
    this.statefulSets = new Informer<V1StatefulSet>({
      kc,
      path: stsPath,
      labelSelector: this.o.labelKey,
      log,
      listPage: (token) =>
        namespace
          ? this.apps.listNamespacedStatefulSet({ namespace, labelSelector: this.o.labelKey, limit: 500, _continue: token })
          : this.apps.listStatefulSetForAllNamespaces({ labelSelector: this.o.labelKey, limit: 500, _continue: token }),
      onChange: (sts, verb) => this.onStatefulSet(sts, verb),
      onRestart: () => this.o.metrics.watchRestarts.inc({ resource: 'statefulsets' }),
    });
    // Every pod a StatefulSet controller made carries the revision label: watch only those.
    const podPath = namespace ? `/api/v1/namespaces/${namespace}/pods` : '/api/v1/pods';
    this.pods = new Informer<V1Pod>({
      kc,
      path: podPath,
      labelSelector: REVISION_LABEL,
      log,
      listPage: (token) =>
        namespace
          ? this.core.listNamespacedPod({ namespace, labelSelector: REVISION_LABEL, limit: 500, _continue: token })
          : this.core.listPodForAllNamespaces({ labelSelector: REVISION_LABEL, limit: 500, _continue: token }),
      onChange: (pod, verb) => {
        this.podsByOwner.onChange(pod, verb);
        this.onPod(pod);
      },
      onRestart: () => this.o.metrics.watchRestarts.inc({ resource: 'pods' }),
    });
    this.o.metrics.setStepWaitSource(() =>
      [...this.inProgress].map(([k, s]): [string, number] => [k, (Date.now() - s.since) / 1000]),
    );
    this.pilots = new PilotManager({
      kc,
      log,
      namespace,
      metrics: this.o.metrics,
      onChange: (ns, sts) => {
        if (this.synced && this.statefulSets.get(sts, ns)) this.queue.add(key(ns, sts));
      },
    });
  }

  /** Resolves once both caches are synced and workers run. */
  async start(): Promise<void> {
    await Promise.all([this.statefulSets.start(), this.pods.start(), this.pilots.start()]);
    this.synced = true;
    for (const sts of this.statefulSets.list()) this.enqueue(sts);
    this.resync = setInterval(() => {
      for (const sts of this.statefulSets.list()) this.enqueue(sts);
    }, this.o.resyncMs);
    this.resync.unref();
    this.o.log.info({ labelKey: this.o.labelKey, namespace: this.o.namespace ?? '(all)', statefulSets: this.statefulSets.list().length }, 'controller started');
  }

  get ready(): boolean {
    return this.synced;
  }

  async stop(): Promise<void> {
    this.shutdown.abort(new Error('controller shutting down'));
    if (this.resync) clearInterval(this.resync);
    await this.queue.shutdown();
    await Promise.all([...this.calls.values()].map((c) => c.done));
    await Promise.all([this.statefulSets.stop(), this.pods.stop(), this.pilots.stop()]);
  }

  /** Queue every cached StatefulSet, e.g. on becoming leader. */
  enqueueAll(): void {
    for (const sts of this.statefulSets.list()) this.enqueue(sts);
  }

  private enqueue(sts: V1StatefulSet): void {
    const md = sts.metadata;
    if (md?.name && md.namespace) this.queue.add(key(md.namespace, md.name));
  }

  private onStatefulSet(sts: V1StatefulSet, verb: 'add' | 'update' | 'delete'): void {
    if (!this.synced && verb !== 'delete') return; // start() enqueues everything once synced
    this.enqueue(sts);
  }

  private onPod(pod: V1Pod): void {
    if (!this.synced) return;
    const owner = pod.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'StatefulSet');
    const ns = pod.metadata?.namespace;
    if (!owner || !ns) return;
    if (this.statefulSets.get(owner.name, ns)) this.queue.add(key(ns, owner.name));
  }

  private podsOf(sts: V1StatefulSet): V1Pod[] {
    // Owner uids are unique cluster-wide; the namespace check only guards against a forged reference.
    return this.podsByOwner.of(sts.metadata?.uid).filter((p) => p.metadata?.namespace === sts.metadata?.namespace);
  }

  private async reconcile(k: string): Promise<void> {
    const end = this.o.metrics.reconcileDuration.startTimer();
    try {
      await this.reconcileOnce(k);
      this.o.metrics.reconciles.inc({ result: 'ok' });
    } catch (err) {
      this.o.metrics.reconciles.inc({ result: 'error' });
      throw err;
    } finally {
      end();
      this.o.metrics.rolloutsInProgress.set(this.inProgress.size);
    }
  }

  private async reconcileOnce(k: string): Promise<void> {
    const slash = k.indexOf('/');
    const ns = k.slice(0, slash);
    const name = k.slice(slash + 1);
    // A follower keeps its caches warm for a fast takeover, and does nothing else.
    if (!this.o.isLeader()) return;
    const sts = this.statefulSets.get(name, ns);
    if (!sts) return this.forgetStatefulSet(ns, name);
    const uid = sts.metadata?.uid ?? '';
    if (this.known.get(k) !== uid) {
      this.known.set(k, uid);
      this.approvals.delete(k);
      this.expectations.delete(k);
    }
    const log = this.o.log.child({ statefulSet: k });
    const pods = this.podsOf(sts);
    const app = sts.metadata?.labels?.[this.o.labelKey] ?? '';
    await this.pilots.ensurePilots(sts, pods, app, hookOptionAnnotations(sts.metadata?.annotations, app));

    const exp = this.expectations.get(k);
    if (exp) {
      const fresh = Date.now() - exp.at < EXPECTATION_TTL_MS;
      const stsStale =
        (exp.staleVersion !== undefined && sts.metadata?.resourceVersion === exp.staleVersion) ||
        (exp.wrote !== undefined &&
          ((sts.metadata?.generation ?? 0) < exp.wrote.generation || sts.metadata?.annotations?.[STATUS_ANNOTATION] !== exp.wrote.status));
      const podStale =
        exp.deletedPodUid !== undefined &&
        pods.some((p) => p.metadata?.uid === exp.deletedPodUid && !p.metadata?.deletionTimestamp);
      if (fresh && (stsStale || podStale)) {
        log.debug('waiting for the watch to show our last write');
        this.queue.addAfter(k, EXPECTATION_TTL_MS);
        return;
      }
      if (!fresh) log.warn('our last write never showed in the cache; planning from what it shows');
      this.expectations.delete(k);
    }

    const hookName = sts.metadata?.labels?.[this.o.labelKey] ?? '';
    const hook = this.o.hooks.get(hookName);
    let hookProblem: string | undefined;
    let options: unknown;
    if (!hook) {
      hookProblem = `unknown hook ${JSON.stringify(hookName.slice(0, 63))} in label ${this.o.labelKey}; known hooks: ${[...this.o.hooks.keys()].join(', ')}`;
    } else {
      const parsed = parseHookOptions(hook, sts.metadata?.annotations);
      if (parsed.ok) options = parsed.options;
      else hookProblem = parsed.error;
    }

    const view = statefulSetView(sts);
    if (view.statusError) log.warn({ error: view.statusError }, `ignoring unreadable ${STATUS_ANNOTATION} annotation`);
    const snapshot: Snapshot = {
      sts: view,
      pods: pods.map((p) => podView(p, name, view.ordinalsStart)).filter((p): p is PodView => p !== undefined),
      now: Date.now(),
      approval: this.approvals.get(k),
      hookProblem,
      hookConfig: hookConfigOf(hookName, sts.metadata?.annotations),
      hookOrders: typeof hook?.podUpdateOrder === 'function',
    };

    const action = plan(snapshot);
    // An approval is for the state it was given in: once the plan is about anything
    // else, it is gone, and a hook call still running for it is stopped.
    const consumes = (action.kind === 'patch' && (action.why === 'step' || action.why === 'finish')) || (action.kind === 'deletePod' && action.why === 'step');
    const asks = action.kind === 'callHook' || action.kind === 'askOrder' ? action.key : undefined;
    const approval = this.approvals.get(k);
    if (approval && !consumes && approval.key !== asks) this.approvals.delete(k);
    const running = this.calls.get(k);
    if (running && running.key !== asks) {
      running.abort.abort(new Error('the plan changed'));
      this.calls.delete(k);
    }
    if (action.phase === 'Rolling') {
      const step = `${view.updateRevision}|${view.partition}|${view.mark?.partition}`;
      if (this.inProgress.get(k)?.step !== step) this.inProgress.set(k, { step, since: Date.now() });
    } else this.inProgress.delete(k);
    if (action.kind === 'askOrder') return this.askOrder(k, sts, pods, hook as RolloutHook, options, action, log);
    if (action.kind !== 'callHook') return this.execute(sts, pods, action, log);
    // The hook is called off the worker: a slow hook must never delay what this or
    // another StatefulSet needs done now (a guard above all). Its approval queues the
    // key again, and the step is planned from the cache as it is then.
    if (running?.key === action.key) return;
    const abort = new AbortController();
    const call = { key: action.key, abort, done: Promise.resolve() };
    this.calls.set(k, call);
    const current = (): boolean => this.calls.get(k) === call;
    call.done = this.callHook(sts, pods, hook as RolloutHook, options, action, log, abort.signal, current)
      .then((answer) => {
        if (!current()) return;
        this.calls.delete(k);
        if (answer.approved) {
          this.approvals.set(k, { key: action.key, at: Date.now() });
          this.queue.add(k);
        } else if (answer.retryInMs !== undefined) {
          // Any event while the call ran was folded into it, and cleared the retry timer: set it again.
          this.queue.addAfter(k, answer.retryInMs);
        }
      })
      .catch((err: unknown) => {
        if (current()) this.calls.delete(k);
        log.error({ err: describeError(err) }, 'hook call failed unexpectedly; retrying with backoff');
        this.queue.addRateLimited(k);
      });
  }

  private forgetStatefulSet(ns: string, name: string): void {
    const k = key(ns, name);
    this.calls.get(k)?.abort.abort(new Error('StatefulSet no longer managed'));
    this.calls.delete(k);
    this.approvals.delete(k);
    this.expectations.delete(k);
    this.inProgress.delete(k);
    if (!this.known.delete(k)) return;
    this.events.forget(ns, name);
    // Gone from a label-selected watch: deleted, or the label was removed.
    void this.apps.readNamespacedStatefulSet({ name, namespace: ns }).then(
      (sts) => {
        const partition = sts.spec?.updateStrategy?.rollingUpdate?.partition;
        const msg = `label ${this.o.labelKey} removed: sts-pilot no longer manages this StatefulSet and leaves its partition at ${partition ?? 'unset'}`;
        this.o.log.info({ statefulSet: k, partition }, msg);
        return this.events.emit(sts, 'Normal', 'Unsubscribed', msg);
      },
      (err) => {
        if (statusCode(err) !== 404) this.o.log.warn({ statefulSet: k, err: describeError(err) }, 'could not check a StatefulSet that left the watch');
      },
    );
  }

  private async callHook(
    sts: V1StatefulSet,
    pods: V1Pod[],
    hook: RolloutHook,
    options: unknown,
    action: Extract<Action, { kind: 'callHook' }>,
    log: Logger,
    abort: AbortSignal,
    current: () => boolean,
  ): Promise<{ approved: boolean; retryInMs?: number }> {
    const k = key(sts.metadata?.namespace ?? '', sts.metadata?.name ?? '');
    // Copies: a hook must never change the controller's cache, nor see it change under it.
    const byName = (p: PodView | null): V1Pod | null => {
      const pod = p ? pods.find((x) => x.metadata?.uid === p.uid) : undefined;
      return pod ? structuredClone(pod) : null;
    };
    const prev = byName(action.prev);
    const next = byName(action.next);
    const signal = AbortSignal.any([this.shutdown.signal, abort, AbortSignal.timeout(this.o.hookTimeoutMs)]);
    const hookLog = log.child({ hook: hook.name, prev: action.prev?.name ?? null, next: action.next?.name ?? null });
    const end = this.o.metrics.hookDuration.startTimer({ hook: hook.name });
    hookLog.info(action.message);
    try {
      await Promise.race([
        hook.podUpdateTransition(prev, next, {
          statefulSet: structuredClone(sts),
          nextReady: action.nextReady,
          options,
          signal,
          log: hookLog,
          secrets: (name) => this.readSecret(sts.metadata?.namespace ?? '', name),
          pilots: this.pilots.reader(sts.metadata?.namespace ?? ''),
        }),
        new Promise<never>((_, reject) => {
          const onAbort = (): void => reject(new HookNotReady(`hook ${hook.name} gave no answer within ${this.o.hookTimeoutMs / 1000}s`));
          if (signal.aborted) onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } catch (err) {
      end();
      const notReady = err instanceof HookNotReady;
      this.o.metrics.hookCalls.inc({ hook: hook.name, outcome: notReady ? 'held' : 'error' });
      if (this.shutdown.signal.aborted || abort.aborted || !current() || !this.o.isLeader()) return { approved: false };
      const reason = notReady ? err.message : `hook ${hook.name} failed: ${describeError(err)}`;
      const delay = this.queue.addRateLimited(k);
      hookLog.info({ reason, retryInMs: delay }, 'hook holds the rollout');
      const target = action.next ? `pod ${action.next.name}` : 'the end of the rollout';
      const message = `${hook.name} holds ${target}: ${reason}`;
      await this.writeStatus(sts, 'Rolling', message, log);
      await this.events.emit(sts, 'Warning', 'HookHeld', message);
      return { approved: false, retryInMs: delay };
    }
    end();
    this.o.metrics.hookCalls.inc({ hook: hook.name, outcome: 'approved' });
    hookLog.info('hook approved');
    return { approved: true };
  }

  private async execute(sts: V1StatefulSet, pods: V1Pod[], action: Action, log: Logger): Promise<void> {
    const k = key(sts.metadata?.namespace ?? '', sts.metadata?.name ?? '');
    switch (action.kind) {
      case 'none':
        log.debug(action.message);
        this.queue.forget(k);
        return;
      case 'hold':
        log.info({ phase: action.phase }, action.reason);
        if (action.retryAfterMs !== undefined) this.queue.addAfter(k, action.retryAfterMs);
        if (action.phase !== 'Rolling' && action.phase !== 'Waiting') {
          // Paused means hands off: Events only, not even our own annotation.
          if (action.phase !== 'Paused') await this.writeStatus(sts, action.phase, action.reason, log);
          await this.events.emit(sts, 'Warning', action.phase === 'Paused' ? 'Paused' : 'Held', action.reason);
        }
        return;
      case 'patch':
        return this.patch(sts, action, log);
      case 'deletePod':
        return this.deletePod(sts, pods, action, log);
      case 'callHook':
      case 'askOrder':
        throw new Error('unreachable: hook calls are made by reconcile');
    }
  }

  /**
   * Record a hold in the status annotation, only when the situation changed, so
   * a hold retried every few seconds costs no write. Guarded by resourceVersion:
   * the annotation carries the rollout mark, which must never be written stale.
   */
  private async writeStatus(sts: V1StatefulSet, state: string, message: string, log: Logger): Promise<void> {
    const md = sts.metadata ?? {};
    const parsed = parseStatusAnnotation(md.annotations?.[STATUS_ANNOTATION]);
    const current = parsed.ok ? parsed.status : {};
    if (current.state === state && sameSituation(current.message, message)) return;
    const status: StatusAnnotation = {
      ...(current.rollout ? { rollout: current.rollout } : {}),
      ...(current.template ? { template: current.template } : {}),
      ...(current.revision ? { revision: current.revision } : {}),
      ...(current.order ? { order: current.order } : {}),
      state,
      message,
      since: new Date().toISOString(),
    };
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
      this.o.metrics.apiErrors.inc({ operation: 'patch_statefulset', code: String(code ?? 'none') });
      // A newer object is on its way through the watch; the next reconcile writes again if needed.
      log.debug({ err: describeError(err) }, 'status annotation not written');
    }
  }

  private statusFor(sts: V1StatefulSet, action: Action, mark: RolloutMark | null | undefined): string {
    const view = statefulSetView(sts);
    const rollout = mark === undefined ? view.mark : (mark ?? undefined);
    // Every partition sts-pilot writes is for the template it read (the patch tests the generation),
    // whose revision is known once the StatefulSet controller has observed it.
    const setsPartition = action.kind === 'patch' && action.partition !== undefined;
    const template = setsPartition ? view.templateHash : view.heldTemplate;
    const observed = view.observedGeneration === view.generation;
    const revision = setsPartition ? (observed ? view.updateRevision : undefined) : view.heldRevision;
    const message = action.kind === 'hold' ? action.reason : action.message;
    const status: StatusAnnotation = {
      ...(rollout ? { rollout } : {}),
      ...(template ? { template } : {}),
      ...(revision ? { revision } : {}),
      // The order is for a step of a rollout: a finished one leaves none behind.
      ...(view.order && !(action.kind === 'patch' && action.why === 'finish') ? { order: view.order } : {}),
      state: action.phase,
      message,
      since: new Date().toISOString(),
    };
    return JSON.stringify(status);
  }

  private async patch(sts: V1StatefulSet, action: Extract<Action, { kind: 'patch' }>, log: Logger): Promise<void> {
    const md = sts.metadata ?? {};
    const k = key(md.namespace ?? '', md.name ?? '');
    const annotations = { [STATUS_ANNOTATION]: this.statusFor(sts, action, action.mark) };
    const guarded = guardedPatch(sts, annotations, action.partition);
    const body: Record<string, unknown> = { metadata: { resourceVersion: md.resourceVersion, annotations } };
    if (action.partition !== undefined) body.spec = { updateStrategy: { rollingUpdate: { partition: action.partition } } };
    let updated: V1StatefulSet;
    try {
      updated = await this.apps.patchNamespacedStatefulSet(
        { name: md.name ?? '', namespace: md.namespace ?? '', body: guarded ?? body, fieldManager: FIELD_MANAGER },
        guarded ? jsonPatchOptions() : setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      const code = statusCode(err);
      this.o.metrics.apiErrors.inc({ operation: 'patch_statefulset', code: String(code ?? 'none') });
      if (code === 409 || (guarded && code === 422 && isFailedTest(err))) {
        // Someone wrote first: plan again from what the watch brings. Nothing moved.
        log.info({ why: action.why }, 'StatefulSet changed since we read it; planning again');
        this.queue.addAfter(k, 200);
        return;
      }
      if (code === 404) return;
      throw err;
    }
    const wrote = guarded ? { generation: updated.metadata?.generation ?? 0, status: annotations[STATUS_ANNOTATION] } : undefined;
    this.expectations.set(k, { uid: md.uid ?? '', staleVersion: md.resourceVersion, wrote, at: Date.now() });
    this.approvals.delete(k);
    this.queue.forget(k);
    this.o.metrics.steps.inc({ why: action.why });
    log.info({ why: action.why, partition: action.partition, resourceVersion: updated.metadata?.resourceVersion }, action.message);
    const reason = { step: 'StepApproved', finish: 'RolloutFinished', hold: 'PartitionHeld', guard: 'PartitionGuarded', skip: 'PartitionLowered' }[action.why];
    await this.events.emit(sts, action.why === 'guard' ? 'Warning' : 'Normal', reason, action.message, { dedupe: action.why !== 'step' && action.why !== 'finish' });
  }

  private async deletePod(
    sts: V1StatefulSet,
    pods: V1Pod[],
    action: Extract<Action, { kind: 'deletePod' }>,
    log: Logger,
  ): Promise<void> {
    const md = sts.metadata ?? {};
    const k = key(md.namespace ?? '', md.name ?? '');
    // The status and the mark first, with the guarded patch: the deletion is valid only for
    // the StatefulSet as planned (a template changed since then fails the test), and after a
    // restart the mark tells this rollout owes the hook a final call.
    const annotations = { [STATUS_ANNOTATION]: this.statusFor(sts, action, action.mark) };
    const guarded = guardedPatch(sts, annotations, undefined);
    try {
      await this.apps.patchNamespacedStatefulSet(
        {
          name: md.name ?? '',
          namespace: md.namespace ?? '',
          body: guarded ?? { metadata: { resourceVersion: md.resourceVersion, annotations } },
          fieldManager: FIELD_MANAGER,
        },
        guarded ? jsonPatchOptions() : setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      const code = statusCode(err);
      this.o.metrics.apiErrors.inc({ operation: 'patch_statefulset', code: String(code ?? 'none') });
      if (code === 409 || (guarded && code === 422 && isFailedTest(err))) {
        log.info({ pod: action.pod.name }, 'StatefulSet changed since we read it; planning again before deleting');
        this.queue.addAfter(k, 200);
        return;
      }
      throw err;
    }
    const pod = pods.find((p) => p.metadata?.uid === action.pod.uid);
    try {
      await this.core.deleteNamespacedPod({
        name: action.pod.name,
        namespace: md.namespace ?? '',
        body: { preconditions: { uid: action.pod.uid } },
      });
    } catch (err) {
      const code = statusCode(err);
      this.o.metrics.apiErrors.inc({ operation: 'delete_pod', code: String(code ?? 'none') });
      // 409: the pod is not the one approved any more; 404: already gone. Plan again.
      if (code === 409 || code === 404) {
        this.approvals.delete(k);
        this.queue.addAfter(k, 200);
        return;
      }
      throw err;
    }
    this.expectations.set(k, { uid: md.uid ?? '', deletedPodUid: action.pod.uid, at: Date.now() });
    this.approvals.delete(k);
    this.queue.forget(k);
    this.o.metrics.steps.inc({ why: action.why });
    log.info({ pod: action.pod.name, revision: pod?.metadata?.labels?.[REVISION_LABEL] }, action.message);
    await this.events.emit(sts, 'Normal', action.why === 'step' ? 'StepApproved' : 'ApprovedPodReplaced', action.message, { dedupe: false });
  }

  /**
   * OnDelete, a hook with podUpdateOrder: ask it which stale pod moves next, off
   * the worker like any hook call, and record its answer (or why there is none)
   * in the status annotation, guarded like a step; the plan reads it from there.
   */
  private askOrder(
    k: string,
    sts: V1StatefulSet,
    pods: V1Pod[],
    hook: RolloutHook,
    options: unknown,
    action: Extract<Action, { kind: 'askOrder' }>,
    log: Logger,
  ): void {
    if (this.calls.get(k)?.key === action.key || !hook.podUpdateOrder) return;
    const abort = new AbortController();
    const call = { key: action.key, abort, done: Promise.resolve() };
    this.calls.set(k, call);
    const signal = AbortSignal.any([this.shutdown.signal, abort.signal, AbortSignal.timeout(this.o.hookTimeoutMs)]);
    const names = action.stale.map((p) => p.name);
    const stale = action.stale.flatMap((p) => pods.filter((x) => x.metadata?.uid === p.uid).map((x) => structuredClone(x)));
    const ns = sts.metadata?.namespace ?? '';
    const hookLog = log.child({ hook: hook.name, stale: names });
    hookLog.info(action.message);
    const order = hook.podUpdateOrder.bind(hook);
    const answer = Promise.race([
      // Through a promise: a hook that throws at once must not leave this call pending for ever.
      Promise.resolve().then(() => order(stale, { statefulSet: structuredClone(sts), options, signal, log: hookLog, secrets: (n) => this.readSecret(ns, n), pilots: this.pilots.reader(ns) })),
      new Promise<never>((_, reject) => {
        const onAbort = (): void => reject(new HookNotReady(`hook ${hook.name} gave no order within ${this.o.hookTimeoutMs / 1000}s`));
        if (signal.aborted) onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]).then(
      (a) => checkUpdateOrder(a, names),
      (err: unknown) => ({ ok: false as const, error: err instanceof HookNotReady ? err.message : `hook ${hook.name} failed: ${describeError(err)}` }),
    );
    call.done = answer.then(async (r) => {
      if (this.calls.get(k) !== call || this.shutdown.signal.aborted || !this.o.isLeader()) return;
      this.calls.delete(k);
      const at = new Date().toISOString();
      const record: OrderRecord = r.ok ? { key: action.key, at, pods: r.order.pods, reason: r.order.reason } : { key: action.key, at, error: r.error };
      this.o.metrics.hookCalls.inc({ hook: hook.name, outcome: r.ok ? 'ordered' : 'held' });
      hookLog.info(r.ok ? { order: r.order.pods, reason: r.order.reason } : { reason: r.error }, r.ok ? 'hook ordered the stale pods' : 'hook gave no order');
      const parsed = parseStatusAnnotation(sts.metadata?.annotations?.[STATUS_ANNOTATION]);
      const status = JSON.stringify({ ...(parsed.ok ? parsed.status : {}), order: record });
      const guarded = guardedPatch(sts, { [STATUS_ANNOTATION]: status }, undefined);
      const md = sts.metadata ?? {};
      try {
        const updated = await this.apps.patchNamespacedStatefulSet(
          { name: md.name ?? '', namespace: ns, body: guarded ?? { metadata: { resourceVersion: md.resourceVersion, annotations: { [STATUS_ANNOTATION]: status } } }, fieldManager: FIELD_MANAGER },
          guarded ? jsonPatchOptions() : setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        // Plan again only once the watch shows the order, or the same question is asked twice.
        const wrote = guarded ? { generation: updated.metadata?.generation ?? 0, status } : undefined;
        this.expectations.set(k, { uid: md.uid ?? '', staleVersion: md.resourceVersion, wrote, at: Date.now() });
        this.queue.add(k);
      } catch (err) {
        this.o.metrics.apiErrors.inc({ operation: 'patch_statefulset', code: String(statusCode(err) ?? 'none') });
        log.info({ err: describeError(err) }, 'the order was not recorded (the StatefulSet changed); asking again');
        this.queue.addAfter(k, 200);
      }
    }).catch((err: unknown) => {
      if (this.calls.get(k) === call) this.calls.delete(k);
      log.error({ err: describeError(err) }, 'asking the hook for an order failed unexpectedly; retrying with backoff');
      this.queue.addRateLimited(k);
    });
  }

  private async readSecret(namespace: string, name: string): Promise<Record<string, string>> {
    const secret = await this.core.readNamespacedSecret({ name, namespace });
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
    return out;
  }
}
