import { AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { DisruptionBudget } from '../budget/budget.ts';
import type { HolderFacts } from '../budget/decide.ts';
import type { BudgetHolder } from '../budget/record.ts';
import { BudgetStore } from '../budget/store.ts';
import { readMetricCheck } from '../checks/read.ts';
import { rollbackForCheck } from '../checks/rollback.ts';
import { HookNotReady, parseHookOptions } from '../hook.ts';
import { podView, statefulSetView } from '../rollout/snapshot.ts';
import { describeError } from '../errors.ts';
import { EventRecorder } from '../events.ts';
import type { RolloutHook } from '../hook.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { PolicyName } from '../rollout/policies/types.ts';
import { DEFAULT_LABEL_KEY } from '../names.ts';
import { PilotManager } from '../pilot/manager.ts';
import { WorkQueue } from '../workqueue.ts';
import { Caches } from './caches.ts';
import { HookRunner } from './hook-runner.ts';
import type { SecretCache } from './secrets.ts';
import type { Egress } from '../egress.ts';
import { PilotProvisioner } from './pilots.ts';
import { Reconciler } from './reconciler.ts';
import { Subscriptions } from './subscriptions.ts';
import { StatefulSetWriter } from './writer.ts';

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
  /** Rollout policies: a default window for StatefulSets without one (--default-window). */
  defaultWindow?: string;
  /** Rollout policies switched off by name (--disable-policies). */
  disabledPolicies?: readonly PolicyName[];
  /** The admission gate is in force (checked at startup): an override's user can be trusted. */
  gateEnforced?: () => boolean;
  /**
   * Disruption budgets of application clusters (lib/budget): their Leases live in
   * `namespace` (the controller's own, beside its leader Lease). `lookup` finds a
   * subscribed StatefulSet and its pods in any namespace this process watches
   * ('unknown' for one it does not watch); default: this controller's caches.
   */
  budget?: { namespace: string; lookup?: StatefulSetLookup };
  /** The Secrets hooks may read (one cache per process, shared by its controllers). */
  secrets: SecretCache;
  /** The address policy of every hook's connections (--hook-allow, --hook-allow-loopback). */
  egress: Egress;
}

/** A subscribed StatefulSet and its pods from the caches; undefined: not subscribed (or gone); 'unknown': not watched here. */
export type StatefulSetLookup = (namespace: string, name: string) => { sts: V1StatefulSet; pods: V1Pod[] } | undefined | 'unknown';

/** How long a hook may take to say whether a pod that holds a budget slot is back. */
const REJOINED_TIMEOUT_MS = 30_000;

/** How often the whole cache is queued again, as a safety net; it costs no API call. */
const DEFAULT_RESYNC_MS = 5 * 60_000;

/**
 * Holds the partition of every StatefulSet that carries the hook label and moves
 * it one pod at a time, each move approved by the named hook. It only wires the
 * parts, each in its own file:
 *
 *   caches (watches) --> queue --> reconciler: snapshot -> plan -> dispatch
 *                                     |--> writer (patches, deletes, Events; its expectations)
 *                                     |--> hook runner (calls, deadlines, approvals)
 *                                     '--> Pilot provisioner (its own queue)
 *
 * All state is read from the caches; the only memory is the hook's last approval
 * and the expectation of our own last write, both safe to lose.
 */
export class Controller {
  private readonly caches: Caches;
  private readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly hooks: HookRunner;
  private readonly pilots: PilotManager;
  private readonly events: EventRecorder;
  private readonly provisioner: PilotProvisioner;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly resyncMs: number;
  private readonly isLeader: () => boolean;
  private readonly labelKey: string;
  private readonly namespace: string | undefined;
  private resync: NodeJS.Timeout | undefined;

  constructor(opts: ControllerOptions) {
    const { kc, log, metrics } = opts;
    this.log = log;
    this.metrics = metrics;
    this.labelKey = opts.labelKey ?? DEFAULT_LABEL_KEY;
    this.namespace = opts.namespace;
    this.resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.isLeader = opts.isLeader ?? (() => true);
    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const events = new EventRecorder(core, log);
    this.events = events;
    this.queue = new WorkQueue({
      workers: opts.workers ?? 4,
      maxDelayMs: opts.retryMaxMs ?? 30_000,
      handler: (k) => this.reconcile(k),
      onError: (k, err) => log.error({ statefulSet: k, err: describeError(err) }, 'reconcile failed; retrying with backoff'),
      observer: metrics.addWorkQueue('statefulsets', { stats: (now) => this.queue.stats(now) }),
    });
    const enqueue = (ns: string, name: string): void => this.queue.add(`${ns}/${name}`);
    this.caches = new Caches({ kc, log, metrics, labelKey: this.labelKey, namespace: this.namespace, onStatefulSet: enqueue });
    this.pilots = new PilotManager({
      kc,
      log,
      namespace: this.namespace,
      // The heartbeats of this controller's Pilots, exported while it leads (a follower's copy would double them).
      metrics: {
        apiErrors: metrics.apiErrors,
        watchRestarts: metrics.watchRestarts,
        addPilotHeartbeatSource: (source) => metrics.addPilotHeartbeatSource(() => (this.isLeader() ? source() : [])),
      },
      onChange: (ns, sts) => {
        if (this.caches.started && this.caches.statefulSet(ns, sts)) enqueue(ns, sts);
      },
    });
    const writer = new StatefulSetWriter({ apps, core, events, metrics, isLeader: this.isLeader });
    const budget = opts.budget ? this.disruptionBudget(kc, opts.budget.namespace, opts.budget.lookup ?? ((ns, name) => this.lookup(ns, name)), opts.hooks, core, opts) : undefined;
    this.hooks = new HookRunner({
      apps,
      core,
      events,
      writer,
      metrics,
      queue: this.queue,
      pilots: (ns) => this.pilots.reader(ns),
      pilotActions: (ns) => this.pilots.actions(ns),
      secrets: (ns) => opts.secrets.reader(ns),
      egress: opts.egress,
      isLeader: this.isLeader,
      timeoutMs: opts.hookTimeoutMs ?? 60_000,
      ...(budget ? { budget } : {}),
      checks: {
        read: (namespace, name) => readMetricCheck(custom, namespace, name),
        disabled: (opts.disabledPolicies ?? []).includes('metric-checks'),
        observe: (check, phase, result) => metrics.checkResults.inc({ check, phase, result }),
        rollback: (sts, reason, l) => rollbackForCheck(apps, events, sts, reason, l),
      },
    });
    this.provisioner = new PilotProvisioner({ manager: this.pilots, caches: this.caches, events, log, labelKey: this.labelKey, isLeader: this.isLeader, metrics });
    this.reconciler = new Reconciler({
      caches: this.caches,
      subscriptions: new Subscriptions({ apps, events, log, labelKey: this.labelKey }),
      writer,
      hooks: this.hooks,
      pilots: this.provisioner,
      events,
      queue: this.queue,
      registry: opts.hooks,
      labelKey: this.labelKey,
      log,
      isLeader: this.isLeader,
      policy: { defaultWindow: opts.defaultWindow, disabled: opts.disabledPolicies ?? [], gateEnforced: opts.gateEnforced ?? (() => false) },
      ...(budget ? { budget } : {}),
    });
    metrics.addStatefulSetSource(() =>
      this.isLeader()
        ? this.caches.allStatefulSets().map((sts) => ({ namespace: sts.metadata?.namespace ?? '', statefulset: sts.metadata?.name ?? '', hook: sts.metadata?.labels?.[this.labelKey] ?? '' }))
        : [],
    );
    // The leader's own: a replica that led before keeps stale entries it no longer updates.
    metrics.setStepWaitSource(() => (this.isLeader() ? [...this.reconciler.inProgress].map(([k, s]): [string, number] => [k, (Date.now() - s.since) / 1000]) : []));
  }

  /** A subscribed StatefulSet of this controller's caches, with its pods; 'unknown' outside the namespace it watches. */
  lookup(namespace: string, name: string): { sts: V1StatefulSet; pods: V1Pod[] } | undefined | 'unknown' {
    if (this.namespace !== undefined && namespace !== this.namespace) return 'unknown';
    if (!this.caches.started) return 'unknown';
    const sts = this.caches.statefulSet(namespace, name);
    return sts ? { sts, pods: this.caches.podsOf(sts) } : undefined;
  }

  /**
   * The budget's view of the cluster: holders judged from the caches, and "back
   * in the application" asked of the holder's own hook (podRejoined), with the
   * pod read whole.
   */
  private disruptionBudget(
    kc: KubeConfig,
    namespace: string,
    lookup: StatefulSetLookup,
    registry: ReadonlyMap<string, RolloutHook>,
    core: CoreV1Api,
    hookServices: Pick<ControllerOptions, 'secrets' | 'egress'>,
  ): DisruptionBudget {
    const split = (key: string): [string, string] => {
      const i = key.indexOf('/');
      return [key.slice(0, i), key.slice(i + 1)];
    };
    const facts = (holder: BudgetHolder): Omit<HolderFacts, 'now'> => {
      const found = lookup(...split(holder.statefulSet));
      // Watched by no controller here: its own controller judges it; until then it counts.
      if (found === 'unknown') return { holder, subscribed: true, claimed: true, pod: { uid: holder.uid, ready: false, revision: undefined, terminating: false } };
      if (!found) return { holder, subscribed: false, claimed: false };
      const view = statefulSetView(found.sts);
      const pod = found.pods.map((p) => podView(p, view.name, view.ordinalsStart)).find((p) => p?.name === holder.pod);
      return {
        holder,
        subscribed: true,
        claimed: view.mark?.uid === holder.uid || view.removal?.uid === holder.uid,
        ...(pod ? { pod: { uid: pod.uid, ready: pod.ready, revision: pod.revision, terminating: pod.terminating } } : {}),
      };
    };
    const rejoined = async (holder: BudgetHolder): Promise<true | string> => {
      if (holder.kind === 'removal') return true;
      const [ns, name] = split(holder.statefulSet);
      const found = lookup(ns, name);
      if (!found || found === 'unknown') return true;
      const hook = registry.get(found.sts.metadata?.labels?.[this.labelKey] ?? '');
      if (!hook?.podRejoined) return true;
      const parsed = parseHookOptions(hook, found.sts.metadata?.annotations);
      if (!parsed.ok) return parsed.error;
      const pod = await core.readNamespacedPod({ name: holder.pod, namespace: ns });
      try {
        await hook.podRejoined(pod, {
          statefulSet: found.sts,
          options: parsed.options,
          signal: AbortSignal.timeout(REJOINED_TIMEOUT_MS),
          log: this.log.child({ statefulSet: holder.statefulSet, hook: hook.name, rejoined: holder.pod }),
          secrets: hookServices.secrets.reader(ns),
          egress: hookServices.egress,
          pilots: this.pilots.reader(ns),
        });
        return true;
      } catch (err) {
        return err instanceof HookNotReady ? err.message : describeError(err, 200);
      }
    };
    return new DisruptionBudget({ store: new BudgetStore({ api: kc.makeApiClient(CoordinationV1Api), namespace }), facts, rejoined, log: this.log.child({ part: 'budget' }) });
  }

  /** Resolves once the caches are synced and the workers run. */
  async start(): Promise<void> {
    await Promise.all([this.caches.start(), this.pilots.start()]);
    this.enqueueAll();
    this.resync = setInterval(() => this.enqueueAll(), this.resyncMs);
    this.resync.unref();
    this.log.info({ labelKey: this.labelKey, namespace: this.namespace ?? '(all)', statefulSets: this.caches.allStatefulSets().length }, 'controller started');
  }

  /** Caches synced and watching: /readyz. False while a watch cannot reconnect (a revoked token, say). */
  get ready(): boolean {
    return this.caches.ready;
  }

  async stop(): Promise<void> {
    if (this.resync) clearInterval(this.resync);
    await this.hooks.stop();
    await this.queue.shutdown();
    await this.events.flush();
    await this.provisioner.stop();
    await Promise.all([this.caches.stop(), this.pilots.stop()]);
  }

  /** Queue every cached StatefulSet, and what was skipped while not leader: on becoming leader. */
  enqueueAll(): void {
    for (const k of this.reconciler.takeDropped()) this.queue.add(k);
    for (const sts of this.caches.allStatefulSets()) {
      const md = sts.metadata;
      if (md?.name && md.namespace) this.queue.add(`${md.namespace}/${md.name}`);
    }
  }

  /** Leadership lost: every hook call is stopped and every approval dropped; no write goes out (the writer checks too). */
  leadershipLost(): void {
    this.hooks.abortAll('leadership lost');
  }

  private async reconcile(key: string): Promise<void> {
    // A follower's reconcile only notes the key for later: counting it would double the leader's.
    if (!this.isLeader()) return this.reconciler.reconcile(key);
    const end = this.metrics.reconcileDuration.startTimer();
    try {
      await this.reconciler.reconcile(key);
      this.metrics.reconciles.inc({ result: 'ok' });
    } catch (err) {
      this.metrics.reconciles.inc({ result: 'error' });
      throw err;
    } finally {
      end();
      this.metrics.rolloutsInProgress.set(this.reconciler.inProgress.size);
    }
  }
}
