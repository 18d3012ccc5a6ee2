import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { checkAdmissionGate, type GateReport } from './gate-check.ts';
import { describeGateMode, detectGateMode, type GateModeReport } from './gate-mode.ts';

/** What a change of the gate is said as: one log line per part that changed (or at the first check). */
export interface GateNotice {
  level: 'info' | 'warn';
  part: 'partition' | 'scaleDown' | 'override';
  msg: string;
  problems?: string[];
}

const PARTS = {
  partition: {
    on: 'admission gate installed: a write that would move a pod holds the partition in the same write, and only this controller may lower it',
    back: 'admission gate enforced again: a write that would move a pod holds the partition in the same write, and only this controller may lower it',
    off: "admission gate not enforced: the controller's guard alone protects the partition, and a template changed mid-rollout can move a pod before it acts (install manifests/admission-gate.yaml; docs/rollout.md)",
    lost: "admission gate no longer enforced: the controller's guard alone protects the partition, and a template changed mid-rollout can move a pod before it acts (reinstall manifests/admission-gate.yaml; docs/rollout.md)",
  },
  scaleDown: {
    on: 'admission gate holds scale-downs: a lowered spec.replicas is kept in the same write and recorded in sts-pilot.io/requested-replicas; the scale subresource may not lower it',
    back: 'admission gate holds scale-downs again',
    off: 'scale-down not held by the admission gate: a lowered spec.replicas (kubectl scale, patch, apply) removes pods at once, without the hook (install manifests/admission-gate.yaml; docs/rollout.md)',
    lost: 'scale-down no longer held by the admission gate: a lowered spec.replicas removes pods at once, without the hook (reinstall manifests/admission-gate.yaml; docs/rollout.md)',
  },
  override: {
    on: 'override policies installed: sts-pilot.io/override-by names the user the API server authenticated',
    back: 'override policies installed again: overrides (sts-pilot approve --override) are applied again',
    off: 'override policies not installed: audited overrides (sts-pilot approve --override) are refused',
    lost: 'override policies no longer installed: audited overrides (sts-pilot approve --override) are refused',
  },
} as const;

const verdictOf = (r: GateReport, part: GateNotice['part']): { enforced: boolean; problems: string[] } =>
  part === 'partition' ? r : part === 'scaleDown' ? r.scaleDown : r.override;

/** Pure: what to say about `next`, given what was said about `prev` (undefined: the first check). */
export function gateNotices(prev: GateReport | undefined, next: GateReport): GateNotice[] {
  const out: GateNotice[] = [];
  for (const part of ['partition', 'scaleDown', 'override'] as const) {
    const v = verdictOf(next, part);
    const was = prev === undefined ? undefined : verdictOf(prev, part);
    const words = PARTS[part];
    if (was !== undefined && was.enforced === v.enforced && (v.enforced || was.problems.join('\n') === v.problems.join('\n'))) continue;
    if (v.enforced) out.push({ level: 'info', part, msg: was === undefined ? words.on : words.back });
    else out.push({ level: 'warn', part, msg: was === undefined || !was.enforced ? words.off : words.lost, problems: v.problems });
  }
  return out;
}

/**
 * Pure: whether the mode (which gate is installed, which the server could run,
 * and why they differ) changed since `prev` and is to be said again.
 */
export function modeChanged(prev: GateModeReport | undefined, next: GateModeReport): boolean {
  return prev === undefined || prev.mode !== next.mode || prev.capable !== next.capable || prev.problems.join('\n') !== next.problems.join('\n');
}

/**
 * Pure: the gate to judge. The one installed; with none installed, the one the
 * server could run (so the report names what is missing of it); with none
 * served, the full one (lib/kube/gate-check.ts reads each part by name).
 */
export function judgedMode(m: GateModeReport): Exclude<GateModeReport['mode'], 'none'> {
  return m.mode !== 'none' ? m.mode : m.capable !== 'none' ? m.capable : 'mutating-v1';
}

/** Pure: the /readyz line about the gate. */
export function gateDetail(r: GateReport | undefined): string {
  if (r === undefined) return 'admission gate: not checked yet';
  if (r.enforced) return `admission gate: enforced${r.scaleDown.enforced ? '' : ` (scale-down not held: ${r.scaleDown.problems.join('; ')})`}`;
  return `admission gate: NOT enforced: ${r.problems.join('; ')}`;
}

export interface GateMonitorOptions {
  kc: KubeConfig;
  labelKey: string;
  log: Logger;
  intervalMs: number;
  /** Called after every check with its report, and which gate mode it judged. */
  onReport: (r: GateReport, mode: GateModeReport) => void;
}

/**
 * Checks the gate at start and then every `intervalMs`, for as long as the
 * controller runs: a policy, a binding deleted or edited afterwards is seen
 * within one interval. Says each change once (log), and hands every report on
 * (metrics, /readyz, whether overrides may be applied).
 */
export class GateMonitor {
  private last: GateReport | undefined;
  private lastMode: GateModeReport | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly o: GateMonitorOptions;

  constructor(o: GateMonitorOptions) {
    this.o = o;
  }

  get report(): GateReport | undefined {
    return this.last;
  }

  get mode(): GateModeReport | undefined {
    return this.lastMode;
  }

  start(): void {
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    try {
      // Which gate is installed (docs/install.md, "Kubernetes versions"), then that gate's policies.
      const m = await detectGateMode(this.o.kc);
      const r = await checkAdmissionGate(this.o.kc, this.o.labelKey, judgedMode(m));
      if (this.stopped) return;
      if (modeChanged(this.lastMode, m)) {
        const fields = { mode: m.mode, capable: m.capable, ...(m.problems.length ? { problems: m.problems } : {}) };
        if (m.mode === 'none' || m.problems.length) this.o.log.warn(fields, describeGateMode(m));
        else this.o.log.info(fields, describeGateMode(m));
      }
      this.lastMode = m;
      for (const n of gateNotices(this.last, r)) {
        const fields = n.problems ? { labelKey: this.o.labelKey, problems: n.problems } : { labelKey: this.o.labelKey };
        if (n.level === 'info') this.o.log.info(fields, n.msg);
        else this.o.log.warn(fields, n.msg);
      }
      this.last = r;
      this.o.onReport(r, m);
    } catch (err) {
      // checkAdmissionGate reports what it cannot read; this is a bug of its own: say it, keep checking.
      this.o.log.error({ err }, 'admission gate check failed');
    }
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), this.o.intervalMs);
      this.timer.unref();
    }
  }
}
