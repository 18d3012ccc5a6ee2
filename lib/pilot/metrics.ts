import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { PilotPhase } from './schema.ts';

/** The in-pod pilot's metrics, served on its /metrics. */
export function createPilotMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    phase: new Gauge({ name: 'sts_pilot_pilot_phase', help: 'Current phase of the pilot (1 for the current one)', labelNames: ['phase'], registers: [registry] }),
    statusWrites: new Counter({ name: 'sts_pilot_pilot_status_writes_total', help: 'Pilot status writes by why (first, changed, heartbeat, final)', labelNames: ['why'], registers: [registry] }),
    statusWriteErrors: new Counter({ name: 'sts_pilot_pilot_status_write_errors_total', help: 'Failed Pilot status writes by HTTP code', labelNames: ['code'], registers: [registry] }),
    probes: new Counter({ name: 'sts_pilot_pilot_probes_total', help: 'Application probes by result (ok: every field known; partial; error)', labelNames: ['result'], registers: [registry] }),
    probeDuration: new Histogram({ name: 'sts_pilot_pilot_probe_duration_seconds', help: 'Application probe duration', registers: [registry], buckets: [0.005, 0.025, 0.1, 0.5, 1, 5, 15] }),
    signalsForwarded: new Counter({ name: 'sts_pilot_pilot_signals_forwarded_total', help: 'Signals passed to the application', labelNames: ['signal'], registers: [registry] }),
    hookRuns: new Counter({ name: 'sts_pilot_pilot_hook_runs_total', help: 'Lifecycle hook commands by hook and result', labelNames: ['hook', 'result'], registers: [registry] }),
    actionRuns: new Counter({ name: 'sts_pilot_pilot_action_runs_total', help: 'Requested actions (spec.actions) by action and result (ok, failed, aborted, refused)', labelNames: ['action', 'result'], registers: [registry] }),
    zombies: new Gauge({ name: 'sts_pilot_pilot_zombies', help: 'Exited orphans the pilot (as PID 1) cannot reap', registers: [registry] }),
  };
  for (const p of PilotPhase.options) m.phase.set({ phase: p }, 0);
  return m;
}

export type PilotMetrics = ReturnType<typeof createPilotMetrics>;
