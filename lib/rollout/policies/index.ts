import { POLICY_ANNOTATIONS } from '../../names.ts';
import type { Snapshot } from '../snapshot.ts';
import { checkAfter } from './after.ts';
import { PolicyAnnotation, read } from './annotations.ts';
import { checkHalt } from './halt.ts';
import { checkHoldTimeout, type OnHoldTimeout } from './hold-timeout.ts';
import { checkOverride, type Override } from './override.ts';
import { checkStepDelay } from './step-delay.ts';
import type { PolicyName, StepContext, Verdict } from './types.ts';
import { inHowLong, windowState, type Windows } from './window.ts';

export type { PolicyInputs, PolicyName, Verdict } from './types.ts';
export { POLICY_NAMES } from './types.ts';

/** The policies' annotations, parsed; `invalid` says which could not be, and why. */
export interface ParsedPolicies {
  window?: Windows;
  /** Where the windows came from: the annotation or the controller's default. */
  windowFrom?: 'annotation' | 'default';
  stepDelay?: number;
  after?: string[];
  holdTimeout?: { seconds: number; on: OnHoldTimeout };
  haltAfter?: number;
  override?: Override;
  invalid: Verdict[];
}

/** Windows re-check at least this often: time in a test (or a stepped clock) may move faster than timers. */
const WINDOW_RECHECK_MS = 10_000;

/** Read every policy annotation of the snapshot's StatefulSet (zod, lib/rollout/policies/annotations.ts). Pure; never throws. */
export function readPolicies(s: Snapshot): ParsedPolicies {
  const a = s.sts.policyAnnotations ?? {};
  const off = new Set<PolicyName>(s.policy?.disabled ?? []);
  const out: ParsedPolicies = { invalid: [] };
  const bad = (policy: PolicyName, annotation: string, error: string): void => {
    out.invalid.push({ policy, says: 'invalid', text: `annotation ${annotation} ${error}` });
  };
  const window = a[POLICY_ANNOTATIONS.window];
  const windows = window ?? s.policy?.defaultWindow;
  if (!off.has('window') && windows !== undefined) {
    const w = read(PolicyAnnotation.window, windows);
    if (w.ok) {
      out.window = w.value;
      out.windowFrom = window !== undefined ? 'annotation' : 'default';
    } else bad('window', POLICY_ANNOTATIONS.window, w.error);
  }
  const stepDelay = a[POLICY_ANNOTATIONS.stepDelay];
  if (!off.has('step-delay') && stepDelay !== undefined) {
    const d = read(PolicyAnnotation.stepDelay, stepDelay);
    if (d.ok) out.stepDelay = d.value;
    else bad('step-delay', POLICY_ANNOTATIONS.stepDelay, d.error);
  }
  const after = a[POLICY_ANNOTATIONS.after];
  if (!off.has('after') && after !== undefined) {
    const r = read(PolicyAnnotation.after, after);
    if (r.ok) out.after = r.value;
    else bad('after', POLICY_ANNOTATIONS.after, r.error);
  }
  const timeout = a[POLICY_ANNOTATIONS.holdTimeout];
  const onTimeout = a[POLICY_ANNOTATIONS.onHoldTimeout];
  if (!off.has('hold-timeout') && (timeout !== undefined || onTimeout !== undefined)) {
    const on = read(PolicyAnnotation.onHoldTimeout, onTimeout ?? 'pause');
    const t = timeout === undefined ? undefined : read(PolicyAnnotation.holdTimeout, timeout);
    if (!on.ok) bad('hold-timeout', POLICY_ANNOTATIONS.onHoldTimeout, `must be "pause" or "keep-waiting", got ${JSON.stringify((onTimeout ?? '').slice(0, 40))}`);
    else if (t === undefined) bad('hold-timeout', POLICY_ANNOTATIONS.onHoldTimeout, `is set but ${POLICY_ANNOTATIONS.holdTimeout} is not`);
    else if (!t.ok) bad('hold-timeout', POLICY_ANNOTATIONS.holdTimeout, t.error);
    else out.holdTimeout = { seconds: t.value, on: on.value };
  }
  const halt = a[POLICY_ANNOTATIONS.haltAfterErrors];
  if (!off.has('halt') && halt !== undefined) {
    const h = read(PolicyAnnotation.haltAfterErrors, halt);
    if (h.ok) out.haltAfter = h.value;
    else bad('halt', POLICY_ANNOTATIONS.haltAfterErrors, h.error);
  }
  const override = a[POLICY_ANNOTATIONS.override];
  if (!off.has('override') && override !== undefined) {
    const o = read(PolicyAnnotation.override, override);
    if (o.ok) out.override = o.value;
    else bad('override', POLICY_ANNOTATIONS.override, o.error);
  }
  return out;
}

/** The window's verdict at `now`. */
function checkWindow(w: Windows, from: string | undefined, now: number): Verdict {
  const st = windowState(w, now);
  const src = from === 'default' ? ' (controller default)' : '';
  if (st.open) return { policy: 'window', says: 'go', text: `${w.text}${src}: ${st.text}` };
  const retry = st.until === undefined ? WINDOW_RECHECK_MS : Math.min(WINDOW_RECHECK_MS, Math.max(1000, st.until - now));
  return { policy: 'window', says: 'hold', text: `outside the maintenance window ${w.text}${src}: ${st.text}${inHowLong(st.until, now)}`, retryAfterMs: retry };
}

/**
 * What the policies that gate a step say about it (window, after, step-delay,
 * override), in the order they are consulted. `step` undefined: no step is
 * waiting (status shows the configuration only).
 */
export function stepVerdicts(s: Snapshot, p: ParsedPolicies, step: StepContext | undefined): Verdict[] {
  const out: Verdict[] = [];
  if (p.window) out.push(checkWindow(p.window, p.windowFrom, s.now));
  if (p.after) out.push(checkAfter(s.sts.name, p.after, s.policy?.peers ?? {}));
  if (p.stepDelay !== undefined) {
    out.push(step ? checkStepDelay(p.stepDelay, { pods: s.pods, upd: step.upd, minReadySeconds: s.sts.minReadySeconds, now: s.now }) : { policy: 'step-delay', says: 'go', text: `step-delay ${p.stepDelay}s: no step waiting` });
  }
  if (p.override) {
    out.push(
      checkOverride(p.override, {
        by: s.sts.policyAnnotations?.[POLICY_ANNOTATIONS.overrideBy],
        gateEnforced: s.policy?.gateEnforced ?? false,
        next: step?.next,
        upd: step?.upd ?? s.sts.updateRevision ?? '',
        pods: s.pods,
        applied: s.sts.override,
      }),
    );
  }
  return out;
}

/** What the policies that watch a waiting step say (hold-timeout, halt). `hookCall`: the plan asks the hook now. */
export function watchVerdicts(s: Snapshot, p: ParsedPolicies, hookCall: boolean): Verdict[] {
  const out: Verdict[] = [];
  if (p.haltAfter !== undefined) {
    const v = checkHalt(p.haltAfter, s.policy?.hookErrors);
    // Only a plan that would call the hook again halts; any other plan has moved on.
    out.push(v.says === 'pause' && !hookCall ? { policy: 'halt', says: 'go', text: v.text } : v);
  }
  if (p.holdTimeout) out.push(checkHoldTimeout(p.holdTimeout.seconds, p.holdTimeout.on, s.policy?.heldSince, s.now));
  return out;
}

/** Every policy's state, for `sts-pilot status` (and the tests). */
export function policyReport(s: Snapshot, step: StepContext | undefined, waiting: boolean): Verdict[] {
  const p = readPolicies(s);
  // Not waiting (steady, paused): the watchers show their configuration, with nothing held.
  const quiet: Snapshot = waiting ? s : { ...s, policy: { ...s.policy, heldSince: undefined, hookErrors: undefined } };
  return [...p.invalid, ...stepVerdicts(s, p, step), ...watchVerdicts(quiet, p, true)];
}

export type StepGate =
  | { kind: 'go' }
  | { kind: 'hold'; policy: PolicyName; phase: 'Held' | 'Rolling'; reason: string; retryAfterMs?: number }
  | { kind: 'override'; verdict: Extract<Verdict, { says: 'override' }> };

/** The gate before a step: the first policy that holds, or an override, or go. */
export function gateStep(s: Snapshot, step: StepContext): StepGate {
  const p = readPolicies(s);
  const invalid = p.invalid[0];
  if (invalid) return { kind: 'hold', policy: invalid.policy, phase: 'Held', reason: `policy ${invalid.policy}: ${invalid.text}; holding` };
  let override: StepGate | undefined;
  for (const v of stepVerdicts(s, p, step)) {
    if (v.says === 'hold') {
      const g: StepGate = { kind: 'hold', policy: v.policy, phase: 'Rolling', reason: `policy ${v.policy}: ${v.text}` };
      return v.retryAfterMs === undefined ? g : { ...g, retryAfterMs: v.retryAfterMs };
    }
    if (v.says === 'invalid') return { kind: 'hold', policy: v.policy, phase: 'Held', reason: `policy ${v.policy}: ${v.text}; holding` };
    if (v.says === 'override') override = { kind: 'override', verdict: v };
  }
  return override ?? { kind: 'go' };
}
