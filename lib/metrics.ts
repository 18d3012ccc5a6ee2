import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { VERSION } from './version.ts';

/** The controller's Prometheus metrics, on their own registry (tests make several controllers). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Read at scrape time, so the wait keeps growing between reconciles. One source
  // per controller: a process that watches several namespaces runs one for each.
  const stepWaitSources: (() => Iterable<[string, number]>)[] = [];
  const stepWaits = (): [string, number][] => stepWaitSources.flatMap((s) => [...s()]);
  const heartbeatSources: (() => Iterable<PilotHeartbeat>)[] = [];
  const m = {
    /** Adds a source of sts_pilot_step_wait_seconds (and of the rollouts in progress): StatefulSet key -> seconds at its current step. */
    setStepWaitSource(source: () => Iterable<[string, number]>): void {
      stepWaitSources.push(source);
    },
    /** Adds a source of sts_pilot_pilot_heartbeat_timestamp_seconds: the Pilots a controller's cache holds. */
    addPilotHeartbeatSource(source: () => Iterable<PilotHeartbeat>): void {
      heartbeatSources.push(source);
    },
    stepWait: new Gauge({
      name: 'sts_pilot_step_wait_seconds',
      help: 'How long each rollout in progress has waited at its current step',
      labelNames: ['statefulset'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [sts, seconds] of stepWaits()) this.set({ statefulset: sts }, seconds);
      },
    }),
    pilotHeartbeat: new Gauge({
      name: 'sts_pilot_pilot_heartbeat_timestamp_seconds',
      help: "When each Pilot's in-pod pilot last wrote its heartbeat (Unix seconds), as the controller's cache sees it; Pilots never written by a pilot have none",
      labelNames: ['pilot', 'statefulset'],
      registers: [registry],
      collect() {
        this.reset();
        for (const source of heartbeatSources) for (const h of source()) this.set({ pilot: h.pilot, statefulset: h.statefulSet }, h.at / 1000);
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
  };
  m.buildInfo.set({ version: VERSION, node: process.version }, 1);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** One Pilot's last heartbeat: `pilot` and `statefulSet` as namespace/name. */
export interface PilotHeartbeat {
  pilot: string;
  statefulSet: string;
  /** Unix milliseconds. */
  at: number;
}
