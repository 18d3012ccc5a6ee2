import type { PodView } from '../snapshot.ts';

/** The policies by name: what `--disable-policies` and `sts-pilot status` call them. */
export const POLICY_NAMES = ['window', 'step-delay', 'after', 'hold-timeout', 'halt', 'override', 'metric-checks'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/**
 * What one policy says about the step about to be taken, and why, for people.
 *   off: not configured (or disabled by flag)   go: lets the step through
 *   hold: not now (retryAfterMs when time alone changes the answer)
 *   invalid: its annotation cannot be read; holds like `hold`
 *   pause: stop the rollout until a person resumes it (writes sts-pilot.io/paused)
 *   overdue: held past its timeout, and configured to keep waiting (a Warning only)
 *   override: a person's audited override stands in for the hook's approval of this step
 */
export type Verdict =
  | { policy: PolicyName; says: 'off'; text: string }
  | { policy: PolicyName; says: 'go' | 'invalid' | 'overdue'; text: string }
  | { policy: PolicyName; says: 'hold'; text: string; retryAfterMs?: number }
  | { policy: PolicyName; says: 'pause'; text: string; event: string }
  | { policy: PolicyName; says: 'override'; text: string; override: AppliedOverride };

/** An override as it is applied and recorded (status annotation, Warning Event). */
export interface AppliedOverride {
  pod: string;
  uid: string;
  revision: string;
  reason: string;
  by: string;
  /** When the person set it (ISO). */
  at: string;
  /** When the controller applied it (ISO), once it has. */
  appliedAt?: string | undefined;
}

/** A StatefulSet named in another's `sts-pilot.io/after`, as the reconciler read it. */
export interface PeerView {
  /** Its own `sts-pilot.io/after`, raw: for finding cycles. */
  after: string | undefined;
  /** No rollout in progress and none pending. */
  settled: boolean;
  /** Why not settled, or what it runs. */
  why: string;
}

/** What policies need that is not in the StatefulSet; filled by the reconciler (or the CLI). */
export interface PolicyInputs {
  /** Controller-wide default for `sts-pilot.io/window` (flag --default-window). */
  defaultWindow?: string | undefined;
  /** Policies switched off by flag (--disable-policies). */
  disabled?: readonly PolicyName[];
  /** Same-namespace managed StatefulSets reachable through `after`, by name; null: not found. */
  peers?: Readonly<Record<string, PeerView | null>>;
  /** Since when the current step has waited (ms); kept in memory by the controller. */
  heldSince?: number | undefined;
  /** Consecutive hook failures that were not HookNotReady, and the last one's message. */
  hookErrors?: { count: number; last: string } | undefined;
  /** The admission gate is in force: the override's user was stamped by the API server. */
  gateEnforced?: boolean;
}

/** The step the policies are asked about. */
export interface StepContext {
  next: PodView;
  upd: string;
}
