import type { AppsV1Api, CoreV1Api, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { describeError } from '../errors.ts';
import type { EventRecorder } from '../events.ts';
import type { Egress } from '../egress.ts';
import { checkUpdateOrder, HookNotReady, holdEventType, type LeavingVolumes, type PilotActions, type RemovalContext, type RolloutHook, type SecretReader } from '../hook.ts';
import { type Logger, traceNow } from '../log.ts';
import { oneLine } from '../sanitize.ts';
import type { Metrics } from '../metrics.ts';
import type { PilotReader } from '../pilot/reader.ts';
import type { Action } from '../rollout/planner.ts';
import type { Approval, PodView } from '../rollout/snapshot.ts';
import type { OrderRecord } from '../rollout/status.ts';
import type { WorkQueue } from '../workqueue.ts';
import type { StatefulSetWriter } from './writer.ts';
import { type BudgetRef, budgetRef, type DisruptionBudget } from '../budget/budget.ts';
import { APPLICATION_CLUSTER_ANNOTATION, DISRUPTION_BUDGET_ANNOTATION, parseLimit } from '../budget/record.ts';
import { CheckFailed, ChecksHold, runStepChecks } from '../checks/run.ts';
import { type CheckConfig, readCheckConfig } from '../checks/schema.ts';

type CallHook = Extract<Action, { kind: 'callHook' }>;
type AskOrder = Extract<Action, { kind: 'askOrder' }>;
type CallRemoval = Extract<Action, { kind: 'callRemoval' }>;

export interface HookRunnerOptions {
  apps: AppsV1Api;
  core: CoreV1Api;
  events: EventRecorder;
  writer: StatefulSetWriter;
  metrics: Metrics;
  queue: WorkQueue;
  pilots: (namespace: string) => PilotReader;
  /** Requests to pods' pilots, for podRemoval (a decommission run in the pod); without it a hook cannot ask. */
  pilotActions?: (namespace: string) => PilotActions;
  /** The Secrets hooks may read, from the label-selected cache (secrets.ts): one reader for every call. */
  secrets: (namespace: string) => SecretReader;
  /** The address policy every hook's connections go through (lib/egress.ts). */
  egress: Egress;
  isLeader: () => boolean;
  timeoutMs: number;
  /** The disruption budgets of application clusters (lib/budget); without it every StatefulSet is on its own. */
  budget?: DisruptionBudget;
  /** Metric checks (lib/checks): how MetricChecks are read, and what to do when a bake fails. Without it, a StatefulSet naming checks holds. */
  checks?: {
    read(namespace: string, name: string): Promise<unknown>;
    /** --disable-policies metric-checks: checks are not run. */
    disabled?: boolean;
    observe?: (check: string, phase: 'before' | 'bake', result: 'pass' | 'fail' | 'inconclusive' | 'error') => void;
    /** on-check-failure rollback: write the current revision's template back (with the partition held); resolves with what was done. */
    rollback(sts: V1StatefulSet, reason: string, log: Logger): Promise<string>;
  };
}

/** The longest hold reason written into an Event and the status annotation. */
const REASON_MAX = 1000;

/** How long a StatefulSet's application cluster, once learnt from its hook, is taken as known. */
const CLUSTER_TTL_MS = 60_000;

interface Call {
  /** The step it asks about (the planner's key). */
  key: string;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * Calls hooks, off the workers (a slow hook must never delay what this or
 * another StatefulSet needs done now, a guard above all), one call per
 * StatefulSet at a time, each with a deadline carried by its abort signal; and
 * keeps what a hook answered: an approval, valid only while the plan is about
 * that very step. An approval queues the StatefulSet again and the step is
 * planned from the cache as it is then. Nothing here survives a restart, and
 * nothing needs to: a hook is asked again.
 */
export class HookRunner {
  private readonly o: HookRunnerOptions;
  private readonly approvals = new Map<string, Approval>();
  private readonly calls = new Map<string, Call>();
  /** Consecutive failures (not HookNotReady) per StatefulSet, for the halt policy; in memory only. */
  private readonly failures = new Map<string, { count: number; last: string }>();
  private readonly shutdown = new AbortController();
  /** Each StatefulSet's application cluster, as its hook last named it. */
  private readonly clusters = new Map<string, { id: string; at: number; config: string }>();
  /** The budget a running call was admitted under, for its approval. */
  private readonly admitted = new Map<string, { key: string; ref: BudgetRef }>();

  constructor(o: HookRunnerOptions) {
    this.o = o;
  }

  /** The hook's last approval for this StatefulSet, for the planner to check. */
  approval(sts: string): Approval | undefined {
    return this.approvals.get(sts);
  }

  /**
   * The plan is `action` now: an approval that is not for it (and is not being
   * used by it) is dropped, and a call about another step is stopped.
   */
  settle(sts: string, action: Action): void {
    const consumes =
      (action.kind === 'patch' && (action.why === 'step' || action.why === 'finish' || action.why === 'remove' || action.why === 'removed')) ||
      (action.kind === 'deletePod' && action.why === 'step');
    const asks = action.kind === 'callHook' || action.kind === 'askOrder' || action.kind === 'callRemoval' ? action.key : undefined;
    const approval = this.approvals.get(sts);
    if (approval && !consumes && approval.key !== asks) this.approvals.delete(sts);
    const call = this.calls.get(sts);
    if (call && call.key !== asks) {
      call.abort.abort(new Error('the plan changed'));
      this.calls.delete(sts);
    }
  }

  /** The approved step was taken (or can never be): its approval is spent. */
  spend(sts: string): void {
    this.approvals.delete(sts);
  }

  /** Consecutive hook failures that were not HookNotReady, and the last one. */
  errors(sts: string): { count: number; last: string } | undefined {
    return this.failures.get(sts);
  }

  /** The rollout was paused: its count starts again when a person resumes it. */
  resetErrors(sts: string): void {
    this.failures.delete(sts);
  }

  /** The StatefulSet is gone or is another object now: forget everything about it. */
  forget(sts: string, why: string): void {
    this.approvals.delete(sts);
    this.clusters.delete(sts);
    this.failures.delete(sts);
    this.calls.get(sts)?.abort.abort(new Error(why));
    this.calls.delete(sts);
  }

  /** Leadership lost: stop every call, drop every approval (a new leader asks again). */
  abortAll(why: string): void {
    for (const [sts, call] of this.calls) {
      call.abort.abort(new Error(why));
      this.calls.delete(sts);
    }
    this.approvals.clear();
  }

  async stop(): Promise<void> {
    this.shutdown.abort(new Error('controller shutting down'));
    await Promise.all([...this.calls.values()].map((c) => c.done));
  }

  /** Ask the hook about `action`, unless a call about that very step is running already. */
  ask(stsKey: string, sts: V1StatefulSet, pods: readonly V1Pod[], hook: RolloutHook, options: unknown, action: CallHook, log: Logger): void {
    this.start(stsKey, action.key, log, (signal, current) => this.call(stsKey, sts, pods, hook, options, action, log, signal, current));
  }

  /** Scale-down: ask the hook about a removal (or tell it one is over), like a step. */
  askRemoval(stsKey: string, sts: V1StatefulSet, hook: RolloutHook, options: unknown, action: CallRemoval, log: Logger): void {
    this.start(stsKey, action.key, log, (signal, current) => this.callRemoval(stsKey, sts, hook, options, action, log, signal, current));
  }

  /** One call per StatefulSet at a time; an approval is kept for the planner, for the step still planned. */
  private start(
    stsKey: string,
    key: string,
    log: Logger,
    run: (signal: AbortSignal, current: () => boolean) => Promise<'approved' | 'held' | 'dropped'>,
  ): void {
    if (this.calls.get(stsKey)?.key === key) return;
    const abort = new AbortController();
    const call: Call = { key, abort, done: Promise.resolve() };
    this.calls.set(stsKey, call);
    const current = (): boolean => this.calls.get(stsKey) === call && !abort.signal.aborted && this.o.isLeader();
    call.done = run(abort.signal, current)
      .then((answer) => {
        const mine = this.calls.get(stsKey) === call;
        if (mine) this.calls.delete(stsKey);
        // Only for the step still planned, by a leader: anything else is asked again.
        const admitted = this.admitted.get(stsKey);
        if (admitted?.key === key) this.admitted.delete(stsKey);
        if (answer === 'approved' && mine && !abort.signal.aborted && this.o.isLeader()) {
          this.approvals.set(stsKey, { key, at: Date.now(), ...(admitted?.key === key ? { budget: admitted.ref } : {}) });
          log.debug({ mark: 'approved', t: traceNow() }, 'trace');
          this.o.queue.add(stsKey);
        }
      })
      .catch((err: unknown) => {
        if (this.calls.get(stsKey) === call) this.calls.delete(stsKey);
        log.error({ err: describeError(err) }, 'hook call failed unexpectedly; retrying with backoff');
        this.o.queue.addRateLimited(stsKey);
      });
  }

  /**
   * OnDelete with a hook that has podUpdateOrder: ask it which stale pod moves
   * next, off the worker like any hook call, and record its answer (or why there
   * is none) in the status annotation, guarded like a step; the plan reads it
   * from there, so a restarted controller and `sts-pilot status` see the same order.
   */
  askOrder(stsKey: string, sts: V1StatefulSet, hook: RolloutHook, options: unknown, action: AskOrder, log: Logger): void {
    if (this.calls.get(stsKey)?.key === action.key || !hook.podUpdateOrder) return;
    const abort = new AbortController();
    const call: Call = { key: action.key, abort, done: Promise.resolve() };
    this.calls.set(stsKey, call);
    const signal = AbortSignal.any([this.shutdown.signal, abort.signal, AbortSignal.timeout(this.o.timeoutMs)]);
    const names = action.stale.map((p) => p.name);
    const ns = sts.metadata?.namespace ?? '';
    const hookLog = log.child({ hook: hook.name, stale: names });
    hookLog.info(action.message);
    const order = hook.podUpdateOrder.bind(hook);
    const answer = Promise.race([
      // Through a promise: a hook that throws at once must not leave this call pending for ever.
      this.full(sts, action.stale).then((objects) => {
        if (typeof objects === 'string') throw new HookNotReady(objects);
        const stale = objects.pods.filter((p): p is V1Pod => p !== null);
        return order(stale, { statefulSet: objects.sts, options, signal, log: hookLog, secrets: this.o.secrets(ns), egress: this.o.egress, pilots: this.o.pilots(ns) });
      }),
      new Promise<never>((_, reject) => {
        const onAbort = (): void => reject(new HookNotReady(`hook ${hook.name} gave no order within ${this.o.timeoutMs / 1000}s`));
        if (signal.aborted) onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]).then(
      (a) => checkUpdateOrder(a, names),
      (err: unknown) => ({ ok: false as const, error: err instanceof HookNotReady ? err.message : `hook ${hook.name} failed: ${describeError(err)}` }),
    );
    call.done = answer
      .then(async (r) => {
        if (this.calls.get(stsKey) !== call || abort.signal.aborted || this.shutdown.signal.aborted || !this.o.isLeader()) return;
        this.calls.delete(stsKey);
        const at = new Date().toISOString();
        const record: OrderRecord = r.ok ? { key: action.key, at, pods: r.order.pods, reason: r.order.reason } : { key: action.key, at, error: r.error };
        this.o.metrics.hookCalls.inc({ hook: hook.name, outcome: r.ok ? 'ordered' : 'held' });
        hookLog.info(r.ok ? { order: r.order.pods, reason: r.order.reason } : { reason: r.error }, r.ok ? 'hook ordered the stale pods' : 'hook gave no order');
        const outcome = await this.o.writer.recordOrder(sts, record, log);
        // Plan again once the watch shows the order (the writer's expectation waits for it).
        if (outcome === 'written') this.o.queue.add(stsKey);
        else if (outcome === 'conflict') this.o.queue.addAfter(stsKey, 200);
      })
      .catch((err: unknown) => {
        if (this.calls.get(stsKey) === call) this.calls.delete(stsKey);
        log.error({ err: describeError(err) }, 'asking the hook for an order failed unexpectedly; retrying with backoff');
        this.o.queue.addRateLimited(stsKey);
      });
  }

  /**
   * The objects as a hook sees them: read now, whole (the caches keep only what
   * planning needs), and only if they are still the ones planned on (same uid).
   * The hook gets these fresh copies, never the cache.
   */
  private async full(sts: V1StatefulSet, pods: readonly (PodView | null)[]): Promise<{ sts: V1StatefulSet; pods: (V1Pod | null)[] } | string> {
    const md = sts.metadata ?? {};
    const ns = md.namespace ?? '';
    const [full, ...read] = await Promise.all([
      this.o.apps.readNamespacedStatefulSet({ name: md.name ?? '', namespace: ns }),
      ...pods.map((p) => (p ? this.o.core.readNamespacedPod({ name: p.name, namespace: ns }) : Promise.resolve(null))),
    ]);
    if (full.metadata?.uid !== md.uid) return `StatefulSet ${ns}/${md.name} is another object now`;
    for (const [i, p] of pods.entries()) {
      if (p && read[i]?.metadata?.uid !== p.uid) return `pod ${p.name} was replaced since it was planned on`;
    }
    return { sts: full, pods: read };
  }

  private async call(
    stsKey: string,
    sts: V1StatefulSet,
    pods: readonly V1Pod[],
    hook: RolloutHook,
    options: unknown,
    action: CallHook,
    log: Logger,
    abort: AbortSignal,
    current: () => boolean,
  ): Promise<'approved' | 'held' | 'dropped'> {
    const ns = sts.metadata?.namespace ?? '';
    let objects: Awaited<ReturnType<HookRunner['full']>>;
    try {
      objects = hook.objects === 'cached' ? cached(sts, pods, [action.prev, action.next]) : await this.full(sts, [action.prev, action.next]);
    } catch (err) {
      objects = `could not read the objects for the hook: ${describeError(err, 200)}`;
    }
    if (typeof objects === 'string') {
      // The state moved on (or the API server is away): plan again, the hook is asked afresh.
      log.info({ reason: objects }, 'not asking the hook: its objects changed');
      this.o.queue.addRateLimited(stsKey);
      return 'dropped';
    }
    const [prev = null, next = null] = objects.pods;
    const hookLog = log.child({ hook: hook.name, prev: action.prev?.name ?? null, next: action.next?.name ?? null });
    const target = action.next ? `pod ${action.next.name}` : 'the end of the rollout';
    return this.answer(stsKey, sts, hook, hookLog, action.message, target, abort, current, (signal, warn) => {
      const ctx = { statefulSet: objects.sts, options, signal, log: hookLog, secrets: this.o.secrets(ns), egress: this.o.egress, pilots: this.o.pilots(ns), warn };
      const ask = (): Promise<void> => hook.podUpdateTransition(prev, next, { ...ctx, nextReady: action.nextReady });
      // A pod that goes away (not the final call) needs a slot of its application cluster's budget.
      const admitted = (): Promise<void> =>
        this.o.budget ? this.admit(stsKey, action.key, hook, ctx, action.next ? { statefulSet: stsKey, uid: action.next.uid, pod: action.next.name, ...(action.prev ? { prev: action.prev.name } : {}) } : undefined).then(ask) : ask();
      // The metric checks come first: the release must behave before the application is asked to spare a node.
      // Only a StatefulSet that names checks (or names them wrongly) is checked: the others are asked exactly as before.
      const checks = readCheckConfig(objects.sts.metadata?.annotations);
      if (checks.ok && (checks.config === undefined || this.o.checks?.disabled)) return admitted();
      return this.checkStep(checks, objects.sts, prev, next, action.nextReady, signal, hookLog).then(admitted);
    });
  }

  /**
   * The StatefulSet's metric checks for the step (lib/checks/run.ts): resolves when
   * they pass; HookNotReady to hold; CheckFailed when a bake failed.
   */
  private async checkStep(parsed: ReturnType<typeof readCheckConfig>, sts: V1StatefulSet, prev: V1Pod | null, next: V1Pod | null, nextReady: boolean | null, signal: AbortSignal, log: Logger): Promise<void> {
    if (!parsed.ok) throw new ChecksHold(parsed.error);
    const config: CheckConfig | undefined = parsed.config;
    if (!config || this.o.checks?.disabled) return;
    const checks = this.o.checks;
    if (!checks) throw new ChecksHold('MetricChecks are named, but this controller cannot read them');
    const ns = sts.metadata?.namespace ?? '';
    const out = await runStepChecks(config, sts, prev, next, nextReady, {
      readCheck: checks.read,
      secrets: this.o.secrets(ns),
      egress: this.o.egress,
      signal,
      now: Date.now,
      ...(checks.observe ? { observe: checks.observe } : {}),
    });
    log.debug({ checks: out.says, text: out.text }, 'metric checks');
    if (out.says === 'hold') throw new ChecksHold(out.text, out.retryAfterMs, { routine: out.routine === true });
    if (out.says === 'fail') {
      if (config.onFailure === 'hold') throw new ChecksHold(`${out.text} (on-check-failure: hold)`);
      throw new CheckFailed(out.check, out.text);
    }
  }

  /** A failed bake, as the StatefulSet's on-check-failure says: pause it (halt) or write the current revision back (rollback). */
  private async onCheckFailed(sts: V1StatefulSet, err: CheckFailed, log: Logger): Promise<string> {
    const parsed = readCheckConfig(sts.metadata?.annotations);
    const on = parsed.ok ? parsed.config?.onFailure : undefined;
    if (on === 'rollback' && this.o.checks) {
      try {
        return await this.o.checks.rollback(sts, err.message, log);
      } catch (e) {
        const why = `the rollback after the failed check could not be written (${describeError(e, 200)}); halting instead`;
        log.warn({ err: describeError(e) }, why);
        await this.o.writer.pause(sts, { kind: 'pause', phase: 'Paused', policy: 'metric-checks', event: 'MetricCheckFailed', reason: `policy metric-checks: ${err.message}; ${why}` }, log);
        return why;
      }
    }
    // "policy …" as every halt the controller makes: `wait`, Argo CD and Flux tell it from a person's pause by that (Degraded, not Suspended).
    const outcome = await this.o.writer.pause(sts, { kind: 'pause', phase: 'Paused', policy: 'metric-checks', event: 'MetricCheckFailed', reason: `policy metric-checks: ${err.message}` }, log);
    return `halted (${outcome})`;
  }

  /**
   * The disruption budget before a hook call: free the slots whose pods are back,
   * then hold (HookNotReady, naming who is away) if `asking` does not fit. Does
   * nothing for a StatefulSet that is an application cluster of its own.
   */
  private async admit(
    stsKey: string,
    key: string,
    hook: RolloutHook,
    ctx: Parameters<NonNullable<RolloutHook['applicationCluster']>>[0],
    asking: { statefulSet: string; uid: string; pod: string; prev?: string } | undefined,
  ): Promise<void> {
    const budget = this.o.budget;
    if (!budget) return;
    const ref = await this.budgetOf(stsKey, hook, ctx);
    if (!ref) return;
    const r = await budget.admit(ref, asking);
    for (const g of r.released) {
      await this.o.events.emit(ctx.statefulSet, 'Warning', 'BudgetReleased', `released the disruption budget slot of ${g.holder.pod} (${g.holder.statefulSet}): ${g.why}`, { dedupe: false });
    }
    // Another pod of the application cluster is away and coming back: the wait ends by itself.
    if (!r.ok) throw new HookNotReady(`waiting for the disruption budget: ${r.why}`, { routine: true });
    if (asking) this.admitted.set(stsKey, { key, ref });
  }

  /** The budget a StatefulSet counts against: named by annotation, else by its hook (remembered a minute), else none. */
  private async budgetOf(stsKey: string, hook: RolloutHook, ctx: Parameters<NonNullable<RolloutHook['applicationCluster']>>[0]): Promise<BudgetRef | undefined> {
    const annotations = ctx.statefulSet.metadata?.annotations ?? {};
    const limit = parseLimit(annotations[DISRUPTION_BUDGET_ANNOTATION]);
    if (!limit.ok) throw new HookNotReady(limit.error);
    const named = annotations[APPLICATION_CLUSTER_ANNOTATION];
    if (named !== undefined && named !== '') return budgetRef('named', named, limit.limit);
    if (!hook.applicationCluster) return undefined;
    const config = JSON.stringify([hook.name, ctx.options]);
    const known = this.clusters.get(stsKey);
    if (known && known.config === config && Date.now() - known.at < CLUSTER_TTL_MS) return budgetRef(hook.name, known.id, limit.limit);
    let id: string;
    try {
      id = await hook.applicationCluster(ctx);
    } catch (err) {
      const why = err instanceof HookNotReady ? err.message : describeError(err, 200);
      throw new HookNotReady(`cannot tell which application cluster this StatefulSet belongs to, so not whether another pod of it is away: ${why}`);
    }
    this.clusters.set(stsKey, { id, at: Date.now(), config });
    return budgetRef(hook.name, id, limit.limit);
  }

  /**
   * podRemoval (may the pod leave?) or podRemoved (it left, or its removal was
   * withdrawn). A hook without the method approves: it does not guard scale-down.
   * The leaving pod is read whole while it exists; once gone, the hook gets its
   * name and uid.
   */
  private async callRemoval(
    stsKey: string,
    sts: V1StatefulSet,
    hook: RolloutHook,
    options: unknown,
    action: CallRemoval,
    log: Logger,
    abort: AbortSignal,
    current: () => boolean,
  ): Promise<'approved' | 'held' | 'dropped'> {
    const ns = sts.metadata?.namespace ?? '';
    const hookLog = log.child({ hook: hook.name, removal: action.pod.pod, call: action.call });
    const method = action.call === 'removal' ? hook.podRemoval : hook.podRemoved;
    if (!method) {
      hookLog.info(`${action.message}: hook ${hook.name} has no ${action.call === 'removal' ? 'podRemoval' : 'podRemoved'}, so it does not guard scale-down; approved`);
      this.o.metrics.hookCalls.inc({ hook: hook.name, outcome: 'approved' });
      return 'approved';
    }
    let objects: { sts: V1StatefulSet; pod: V1Pod };
    try {
      const gone: V1Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: action.pod.pod, namespace: ns, uid: action.pod.uid } };
      if (hook.objects === 'cached' || action.call === 'removed') {
        objects = { sts: structuredClone(sts), pod: gone };
      } else {
        // Only the pod of a removal is read: a withdrawn one may be gone, and the hook gets its name and uid.
        const view = { name: action.pod.pod, uid: action.pod.uid } as PodView;
        const read = await this.full(sts, action.call === 'removal' ? [view] : []);
        if (typeof read === 'string') throw new Error(read);
        objects = { sts: read.sts, pod: read.pods[0] ?? gone };
      }
    } catch (err) {
      log.info({ reason: describeError(err, 200) }, 'not asking the hook about the removal: its objects changed');
      this.o.queue.addRateLimited(stsKey);
      return 'dropped';
    }
    const whenScaled = objects.sts.spec?.persistentVolumeClaimRetentionPolicy?.whenScaled;
    const volumes: LeavingVolumes = whenScaled === 'Delete' ? 'deleted' : 'kept';
    const target = action.call === 'removal' ? `the removal of pod ${action.pod.pod}` : `the clean-up after pod ${action.pod.pod} (${action.call})`;
    return this.answer(stsKey, sts, hook, hookLog, action.message, target, abort, current, (signal, warn) => {
      const ctx: RemovalContext<unknown> = {
        statefulSet: objects.sts,
        options,
        signal,
        warn,
        log: hookLog,
        secrets: this.o.secrets(ns),
        egress: this.o.egress,
        pilots: this.o.pilots(ns),
        podReady: action.podReady,
        volumes,
        requestedReplicas: action.requested,
        ...(this.o.pilotActions ? { pilotActions: this.o.pilotActions(ns) } : {}),
      };
      const ask = (): Promise<void> =>
        action.call === 'removal'
          ? (hook.podRemoval as NonNullable<RolloutHook['podRemoval']>).call(hook, objects.pod, ctx)
          : (hook.podRemoved as NonNullable<RolloutHook['podRemoved']>).call(hook, objects.pod, action.call, ctx);
      if (!this.o.budget) return ask();
      // A pod that leaves takes a slot like one that restarts; the clean-up calls only free slots.
      return this.admit(stsKey, action.key, hook, ctx, action.call === 'removal' ? { statefulSet: stsKey, uid: action.pod.uid, pod: action.pod.pod } : undefined).then(ask);
    });
  }

  /**
   * Run one hook method with the call's deadline and record its answer: an
   * approval, or a hold (status annotation, Event, backoff); failures that are
   * not HookNotReady count towards the halt policy.
   */
  private async answer(
    stsKey: string,
    sts: V1StatefulSet,
    hook: RolloutHook,
    hookLog: Logger,
    message: string,
    target: string,
    abort: AbortSignal,
    current: () => boolean,
    invoke: (signal: AbortSignal, warn: (message: string) => void) => Promise<void>,
  ): Promise<'approved' | 'held' | 'dropped'> {
    // The deadline, shutdown and a changed plan all reach the hook through one signal.
    const signal = AbortSignal.any([this.shutdown.signal, abort, AbortSignal.timeout(this.o.timeoutMs)]);
    const end = this.o.metrics.hookDuration.startTimer({ hook: hook.name });
    hookLog.info(message);
    // A hook's warnings, said once the call is over (approved or held), each an Event of its own.
    const warnings: string[] = [];
    const warn = (w: string): void => {
      if (warnings.length < 10) warnings.push(oneLine(String(w), 900));
    };
    const sayWarnings = async (): Promise<void> => {
      for (const w of warnings) {
        hookLog.warn({ warning: w }, 'hook warning');
        await this.o.events.emit(sts, 'Warning', 'HookWarning', `${hook.name}: ${w}`);
      }
    };
    try {
      await Promise.race([
        invoke(signal, warn),
        // A hook that ignores its signal does not hold the answer past the deadline.
        new Promise<never>((_, reject) => {
          const onAbort = (): void => reject(new HookNotReady(`hook ${hook.name} gave no answer within ${this.o.timeoutMs / 1000}s`));
          if (signal.aborted) onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } catch (err) {
      end();
      if (err instanceof CheckFailed) {
        this.o.metrics.hookCalls.inc({ hook: hook.name, outcome: 'held' });
        if (!current()) return 'dropped';
        hookLog.warn({ check: err.check, reason: err.message }, 'a metric check failed');
        const done = await this.onCheckFailed(sts, err, hookLog);
        hookLog.info({ done }, 'acted on the failed metric check');
        this.o.queue.addRateLimited(stsKey);
        return 'held';
      }
      const notReady = err instanceof HookNotReady;
      this.o.metrics.hookCalls.inc({ hook: hook.name, outcome: notReady ? 'held' : 'error' });
      if (!current()) return 'dropped';
      // People read it in an Event and the status: one line, whoever wrote the text it quotes.
      const reason = oneLine(notReady ? err.message : `hook ${hook.name} failed: ${describeError(err)}`, REASON_MAX);
      // "Not yet" is the hook working; anything else in a row is a broken hook (the halt policy).
      if (notReady) this.failures.delete(stsKey);
      else this.failures.set(stsKey, { count: (this.failures.get(stsKey)?.count ?? 0) + 1, last: reason });
      // A bake ends at a known time: ask again then (or at its sampling interval), not after a growing backoff.
      const hinted = err instanceof ChecksHold ? err.retryAfterMs : undefined;
      const delay = hinted !== undefined ? Math.max(200, hinted) : this.o.queue.addRateLimited(stsKey);
      hookLog.info({ reason, retryInMs: delay }, 'hook holds the rollout');
      await sayWarnings();
      const checks = err instanceof ChecksHold;
      const text = checks ? `metric checks hold ${target}: ${reason}` : `${hook.name} holds ${target}: ${reason}`;
      await this.o.writer.recordHold(sts, 'Rolling', text, hookLog, this.failures.get(stsKey)?.count);
      // By what it asks of a person: a routine wait (a bake in progress) is Normal, anything else a Warning.
      await this.o.events.emit(sts, holdEventType(err), checks ? 'MetricCheckHeld' : 'HookHeld', text);
      // Any event while the call ran was folded into it and cleared the retry timer: set it again.
      this.o.queue.addAfter(stsKey, delay);
      return 'held';
    }
    end();
    this.failures.delete(stsKey);
    this.o.metrics.hookCalls.inc({ hook: hook.name, outcome: 'approved' });
    hookLog.info('hook approved');
    await sayWarnings();
    return 'approved';
  }
}

/** Copies of the cached projections (a hook must never change the cache, nor see it change under it). */
function cached(sts: V1StatefulSet, pods: readonly V1Pod[], wanted: readonly (PodView | null)[]): { sts: V1StatefulSet; pods: (V1Pod | null)[] } {
  const copy = (p: PodView | null): V1Pod | null => {
    const pod = p ? pods.find((x) => x.metadata?.uid === p.uid) : undefined;
    return pod ? structuredClone(pod) : null;
  };
  return { sts: structuredClone(sts), pods: wanted.map(copy) };
}
