// Every name the controller reads or writes on objects it does not own.
export const API_GROUP = 'sts-pilot.io';
export const API_VERSION = 'v1alpha1';

export const DEFAULT_LABEL_KEY = 'sts-pilot.io/hook';
export const PAUSED_ANNOTATION = 'sts-pilot.io/paused';
export const STATUS_ANNOTATION = 'sts-pilot.io/status';
/**
 * The replica count a person asked for, a decimal string: set by the admission
 * policy sts-pilot-hold-replicas in the very write that lowered spec.replicas
 * (which it kept at the old count). The controller lowers spec.replicas towards
 * it one approved pod at a time and removes it in the write that reaches it; a
 * write that raises spec.replicas removes it too (the removal is cancelled).
 */
export const REQUESTED_REPLICAS_ANNOTATION = 'sts-pilot.io/requested-replicas';
/** Prefix of a hook's option annotations: `<hook>.sts-pilot.io/<option>`. */
export const hookOptionPrefix = (hook: string): string => `${hook}.${API_GROUP}/`;

// Set by the StatefulSet controller on every pod it creates.
export const REVISION_LABEL = 'controller-revision-hash';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';

export const FIELD_MANAGER = 'sts-pilot';

// Rollout policies (docs/rollout.md "Rollout policies"): annotations on the StatefulSet.
export const POLICY_ANNOTATIONS = {
  window: 'sts-pilot.io/window',
  stepDelay: 'sts-pilot.io/step-delay',
  after: 'sts-pilot.io/after',
  holdTimeout: 'sts-pilot.io/hold-timeout',
  onHoldTimeout: 'sts-pilot.io/on-hold-timeout',
  haltAfterErrors: 'sts-pilot.io/halt-after-errors',
  override: 'sts-pilot.io/override',
  /** Stamped by the admission policy with the user who set the override; never by a person. */
  overrideBy: 'sts-pilot.io/override-by',
} as const;

/**
 * On a Secret: the installer allows hooks to read it (value "true"). A hook's
 * credentials-secret, ca-secret or sasl-secret names only Secrets so labelled;
 * the controller lists and watches these alone (docs/decisions.md, "No
 * confused deputy").
 */
export const CREDENTIALS_LABEL = 'sts-pilot.io/credentials';
export const CREDENTIALS_SELECTOR = `${CREDENTIALS_LABEL}=true`;
