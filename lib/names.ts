// Every name the controller reads or writes on objects it does not own.
export const API_GROUP = 'sts-pilot.io';
export const API_VERSION = 'v1alpha1';

export const DEFAULT_LABEL_KEY = 'sts-pilot.io/hook';
export const PAUSED_ANNOTATION = 'sts-pilot.io/paused';
export const STATUS_ANNOTATION = 'sts-pilot.io/status';
/** Prefix of a hook's option annotations: `<hook>.sts-pilot.io/<option>`. */
export const hookOptionPrefix = (hook: string): string => `${hook}.${API_GROUP}/`;

// Set by the StatefulSet controller on every pod it creates.
export const REVISION_LABEL = 'controller-revision-hash';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';

export const FIELD_MANAGER = 'sts-pilot';
