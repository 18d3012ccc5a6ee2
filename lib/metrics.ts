import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { VERSION } from './version.ts';
import type { WorkQueueObserver, WorkQueueStats } from './workqueue.ts';

/** The controller's Prometheus metrics, on their own registry (tests make several controllers). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Read at scrape time, so the wait keeps growing between reconciles. One source
  // per controller: a process that watches several namespaces runs one for each.
  const stepWaitSources: (() => Iterable<[string, number]>)[] = [];
  const stepWaits = (): [string, number][] => stepWaitSources.flatMap((s) => [...s()]);
  const heartbeatSources: (() => Iterable<PilotHeartbeat>)[] = [];
  const statefulSetSources: (() => Iterable<{ namespace: string; statefulset: string; hook: string }>)[] = [];
  const workQueues: { name: string; queue: { stats(now: number): WorkQueueStats } }[] = [];
  // Gauges summed over the queues of one name, read at scrape time.
  const queueGauge = (name: string, help: string, value: (s: WorkQueueStats) => number, combine: (a: number, b: number) => number): Gauge =>
    new Gauge({
      name,
      help,
      labelNames: ['name'],
      registers: [registry],
      collect() {
        this.reset();
        const now = Date.now();
        const by = new Map<string, number>();
        for (const { name: q, queue } of workQueues) {
          const v = value(queue.stats(now));
          by.set(q, by.has(q) ? combine(by.get(q) as number, v) : v);
        }
        for (const [q, v] of by) this.set({ name: q }, v);
      },
    });
  const sum = (a: number, b: number): number => a + b;
  // The families of client-go's workqueue metrics (depth, adds, latency, work duration,
  // retries, unfinished work, longest running), with sts_pilot_ in front and `name` the queue.
  // Registered, and read at scrape time: nothing holds them.
  queueGauge('sts_pilot_workqueue_depth', 'Keys waiting in the work queue', (s) => s.depth, sum);
  queueGauge(
    'sts_pilot_workqueue_unfinished_work_seconds',
    'Seconds of work in progress not yet observed by work_duration: large values mean stuck handlers',
    (s) => s.unfinishedSeconds,
    sum,
  );
  queueGauge('sts_pilot_workqueue_longest_running_processor_seconds', 'How long the longest running handler of the queue has run', (s) => s.longestSeconds, Math.max);
  const wqAdds = new Counter({ name: 'sts_pilot_workqueue_adds_total', help: 'Keys added to the work queue (an add of a key already waiting is not counted)', labelNames: ['name'], registers: [registry] });
  const wqRetries = new Counter({ name: 'sts_pilot_workqueue_retries_total', help: 'Keys put back with backoff (a failed reconcile, a hook that holds)', labelNames: ['name'], registers: [registry] });
  const durationBuckets = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
  const wqQueueDuration = new Histogram({ name: 'sts_pilot_workqueue_queue_duration_seconds', help: 'How long a key waits in the queue before a worker takes it', labelNames: ['name'], registers: [registry], buckets: durationBuckets });
  const wqWorkDuration = new Histogram({ name: 'sts_pilot_workqueue_work_duration_seconds', help: 'How long a worker takes with one key', labelNames: ['name'], registers: [registry], buckets: durationBuckets });
  const m = {
    /** Adds a source of sts_pilot_step_wait_seconds (and of the rollouts in progress): StatefulSet key -> seconds at its current step. */
    setStepWaitSource(source: () => Iterable<[string, number]>): void {
      stepWaitSources.push(source);
    },
    /** Adds a source of sts_pilot_statefulset_info: the subscribed StatefulSets a controller's cache holds. */
    addStatefulSetSource(source: () => Iterable<{ namespace: string; statefulset: string; hook: string }>): void {
      statefulSetSources.push(source);
    },
    /** Adds a source of sts_pilot_pilot_heartbeat_timestamp_seconds: the Pilots a controller's cache holds. */
    addPilotHeartbeatSource(source: () => Iterable<PilotHeartbeat>): void {
      heartbeatSources.push(source);
    },
    /** Adds a work queue to the sts_pilot_workqueue_* families, under `name` (several controllers may share one). */
    addWorkQueue(name: string, queue: { stats(now: number): WorkQueueStats }): WorkQueueObserver {
      workQueues.push({ name, queue });
      return {
        added: () => wqAdds.inc({ name }),
        retried: () => wqRetries.inc({ name }),
        waited: (seconds) => wqQueueDuration.observe({ name }, seconds),
        worked: (seconds) => wqWorkDuration.observe({ name }, seconds),
      };
    },
    // Per-object series (one per StatefulSet, one per Pilot) come from the leader only:
    // a follower's sources yield nothing, so two replicas never export them twice.
    stepWait: new Gauge({
      name: 'sts_pilot_step_wait_seconds',
      help: 'How long each rollout in progress has waited at its current step (leader only)',
      labelNames: ['namespace', 'statefulset'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [key, seconds] of stepWaits()) this.set(objectLabels(key), seconds);
      },
    }),
    // One series per subscribed StatefulSet: the dashboard's variables, and joins with kube-state-metrics.
    statefulSetInfo: new Gauge({
      name: 'sts_pilot_statefulset_info',
      help: 'Always 1: a StatefulSet sts-pilot manages, with its hook (leader only)',
      labelNames: ['namespace', 'statefulset', 'hook'],
      registers: [registry],
      collect() {
        this.reset();
        for (const source of statefulSetSources) for (const l of source()) this.set(l, 1);
      },
    }),
    pilotHeartbeat: new Gauge({
      name: 'sts_pilot_pilot_heartbeat_timestamp_seconds',
      help: "When each Pilot's in-pod pilot last wrote its heartbeat (Unix seconds), as the leader's cache sees it; Pilots never written by a pilot have none",
      labelNames: ['namespace', 'pilot', 'statefulset'],
      registers: [registry],
      collect() {
        this.reset();
        for (const source of heartbeatSources) for (const h of source()) this.set({ namespace: h.namespace, pilot: h.pilot, statefulset: h.statefulSet }, h.at / 1000);
      },
    }),
    buildInfo: new Gauge({
      name: 'sts_pilot_build_info',
      help: 'Always 1; the version of sts-pilot and of Node.js in labels',
      labelNames: ['version', 'node'],
      registers: [registry],
    }),
    admissionGate: new Gauge({
      name: 'sts_pilot_admission_gate',
      help: '1 when the admission policies that keep the partition shut are installed and name this controller and its label key (checked at start and every --gate-check-interval), else 0; why not: the log and /readyz',
      registers: [registry],
    }),
    admissionGateMode: new Gauge({
      name: 'sts_pilot_admission_gate_mode',
      help: 'The admission gate this cluster runs (checked at startup): 1 for the mode in force (mutating-v1, mutating-v1beta1, validating-only, none), 0 for the others',
      labelNames: ['mode'],
      registers: [registry],
    }),
    admissionGateCapable: new Gauge({
      name: 'sts_pilot_admission_gate_capable',
      help: 'The strongest admission gate mode this API server serves (checked at startup): 1 for it, 0 for the others',
      labelNames: ['mode'],
      registers: [registry],
    }),
    admissionGateScaleDown: new Gauge({
      name: 'sts_pilot_admission_gate_scale_down',
      help: '1 when the admission policies that hold a scale-down (sts-pilot-hold-replicas, sts-pilot-scale-gate) are installed and name this controller and its label key (checked at start and every --gate-check-interval), else 0',
      registers: [registry],
    }),
    admissionGateChecked: new Gauge({
      name: 'sts_pilot_admission_gate_checked_timestamp_seconds',
      help: 'When the admission gate was last checked (Unix seconds): a stale value means the check itself stopped',
      registers: [registry],
    }),
    leader: new Gauge({ name: 'sts_pilot_leader', help: '1 while this replica holds the Lease (or runs without leader election)', registers: [registry] }),
    registry,
    reconciles: new Counter({ name: 'sts_pilot_reconciles_total', help: 'Reconciles by result', labelNames: ['result'], registers: [registry] }),
    reconcileDuration: new Histogram({ name: 'sts_pilot_reconcile_duration_seconds', help: 'Reconcile duration', registers: [registry], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30] }),
    hookCalls: new Counter({ name: 'sts_pilot_hook_calls_total', help: 'Hook calls by hook and outcome (approved, held, error)', labelNames: ['hook', 'outcome'], registers: [registry] }),
    // Per check (a MetricCheck's name), not per StatefulSet: one check serves many, and the Events name the StatefulSet.
    checkResults: new Counter({ name: 'sts_pilot_metric_check_results_total', help: 'Metric check evaluations by check, phase (before, bake) and result (pass, fail, inconclusive, error)', labelNames: ['check', 'phase', 'result'], registers: [registry] }),
    hookDuration: new Histogram({ name: 'sts_pilot_hook_call_duration_seconds', help: 'Hook call duration', labelNames: ['hook'], registers: [registry], buckets: [0.005, 0.05, 0.25, 1, 5, 15, 60] }),
    steps: new Counter({ name: 'sts_pilot_steps_total', help: 'Partition moves and pod deletions, by why', labelNames: ['why'], registers: [registry] }),
    // Counted at scrape time from every controller's rollouts, whatever .set() said last.
    rolloutsInProgress: new Gauge({
      name: 'sts_pilot_rollouts_in_progress',
      help: 'StatefulSets with a rollout in progress',
      registers: [registry],
      collect() {
        if (stepWaitSources.length > 0) this.set(stepWaits().length);
      },
    }),
    watchRestarts: new Counter({ name: 'sts_pilot_watch_restarts_total', help: 'Informer restarts after errors', labelNames: ['resource'], registers: [registry] }),
    apiErrors: new Counter({ name: 'sts_pilot_api_errors_total', help: 'Kubernetes API errors by operation and code', labelNames: ['operation', 'code'], registers: [registry] }),
    strayRejections: new Counter({ name: 'sts_pilot_unhandled_rejections_total', help: 'Promises rejected with nobody waiting for them (logged with their stack; the process keeps running): a bug to report', registers: [registry] }),
  };
  m.buildInfo.set({ version: VERSION, node: process.version }, 1);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** `namespace` and `statefulset` as kube-state-metrics labels them, from a "namespace/name" key. */
export function objectLabels(key: string): { namespace: string; statefulset: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), statefulset: key.slice(slash + 1) };
}

/** One Pilot's last heartbeat: names within `namespace`. */
export interface PilotHeartbeat {
  namespace: string;
  /** The Pilot's name, which is its pod's. */
  pilot: string;
  statefulSet: string;
  /** Unix milliseconds. */
  at: number;
}
