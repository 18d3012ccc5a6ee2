import { CHECK_ANNOTATIONS } from '../checks/schema.ts';
import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { BudgetRef } from '../budget/budget.ts';
// Not re-exported by the package index (2.0.1); the package has no exports map, so the path is stable per version.
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { PAUSED_ANNOTATION, POD_INDEX_LABEL, POLICY_ANNOTATIONS, REQUESTED_REPLICAS_ANNOTATION, REVISION_LABEL, STATUS_ANNOTATION } from '../names.ts';
import type { AppliedOverride, PolicyInputs } from './policies/types.ts';
import { type OrderRecord, parseStatusAnnotation, type RemovalRecord, type RolloutMark } from './status.ts';
import { templateHash } from './template-hash.ts';

/** What the planner needs to know about one pod, nothing more. */
export interface PodView {
  name: string;
  uid: string;
  /** Changes with every write to the pod: an approval holds only for the pod as the hook saw it. */
  resourceVersion: string;
  /** The number in the pod's name. */
  ordinal: number;
  /**
   * Its place in the StatefulSet, `ordinal - spec.ordinals.start`: what the
   * partition counts (pods with index >= partition move to the update revision).
   */
  index: number;
  /** controller-revision-hash label; undefined if the pod has none yet. */
  revision: string | undefined;
  ready: boolean;
  /** When the Ready condition last became true (ms since epoch). */
  readySince: number | undefined;
  terminating: boolean;
}

export interface StatefulSetView {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  generation: number;
  observedGeneration: number | undefined;
  replicas: number;
  /** spec.ordinals.start: the first pod is `<name>-<start>`. */
  ordinalsStart: number;
  strategy: string;
  /** OrderedReady (default) or Parallel. */
  podManagementPolicy: string;
  /** Fingerprint of spec.template as it is now. */
  templateHash: string;
  /** The template fingerprint sts-pilot last set the partition for (status annotation); undefined before its first write. */
  heldTemplate: string | undefined;
  /** The update revision of heldTemplate, when the StatefulSet controller had reported it. */
  heldRevision: string | undefined;
  /** spec.updateStrategy.rollingUpdate.partition; undefined means 0 to the StatefulSet controller. */
  partition: number | undefined;
  minReadySeconds: number;
  currentRevision: string | undefined;
  updateRevision: string | undefined;
  /** Raw `sts-pilot.io/paused` value: "true" pauses; anything but "false" or absence holds too. */
  paused: string | undefined;
  mark: RolloutMark | undefined;
  /** The hook's last answer to podUpdateOrder, as recorded in the status annotation. */
  order?: OrderRecord | undefined;
  /** Why the status annotation could not be read, if it could not. */
  statusError: string | undefined;
  /** The rollout policies' annotations (POLICY_ANNOTATIONS), raw. */
  policyAnnotations?: Readonly<Record<string, string>>;
  /** The last override applied, as the status annotation records it. */
  override?: AppliedOverride | undefined;
  /** When sts-pilot last took a step (ms), as the status annotation records it. */
  stepSince?: number | undefined;
  /** The hook's consecutive failures as last recorded in the status annotation. */
  hookErrors?: number | undefined;
  /**
   * The raw `sts-pilot.io/requested-replicas` annotation: the size a person asked
   * for, which the admission policy recorded instead of lowering spec.replicas.
   */
  requestedReplicas?: string | undefined;
  /** spec.persistentVolumeClaimRetentionPolicy.whenScaled: 'Delete' or 'Retain' (the default). */
  whenScaled?: string | undefined;
  /** The pod a scale-down is removing, as the status annotation records it. */
  removal?: RemovalRecord | undefined;
}

export interface Approval {
  key: string;
  at: number;
  /** The disruption budget the approved pod counts against (lib/budget): its write takes a slot first. */
  budget?: BudgetRef | undefined;
}

export interface Snapshot {
  sts: StatefulSetView;
  pods: PodView[];
  now: number;
  /** The hook's last approval, if any; the planner checks it is for this exact step. */
  approval: Approval | undefined;
  /** Set when the hook cannot be used (unknown name, invalid options): no step is taken. */
  hookProblem: string | undefined;
  /**
   * The hook's name and options as they are now: an approval is valid only for
   * the configuration it was given under.
   */
  hookConfig: string;
  /** The hook chooses which stale pod moves next (it has podUpdateOrder): used with OnDelete only. */
  hookOrders?: boolean;
  /** What the rollout policies need besides the StatefulSet (lib/rollout/policies). */
  policy?: PolicyInputs;
}

/**
 * Ordinal from the pod's name, `<statefulset>-<ordinal>`, as the StatefulSet
 * controller names it. The pod-index label (k8s >= 1.28) must agree when
 * present: a label edited by hand must never make one pod stand for another.
 */
export function podOrdinal(pod: V1Pod, stsName: string): number | undefined {
  const name = pod.metadata?.name ?? '';
  if (!name.startsWith(`${stsName}-`)) return undefined;
  const raw = name.slice(stsName.length + 1);
  if (!/^(0|[1-9][0-9]{0,8})$/.test(raw)) return undefined;
  const label = pod.metadata?.labels?.[POD_INDEX_LABEL];
  if (label !== undefined && label !== raw) return undefined;
  return Number(raw);
}

export function podView(pod: V1Pod, stsName: string, ordinalsStart = 0): PodView | undefined {
  const ordinal = podOrdinal(pod, stsName);
  if (ordinal === undefined || !pod.metadata?.name || !pod.metadata.uid) return undefined;
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const isReady = ready?.status === 'True' && pod.status?.phase === 'Running';
  const since = ready?.lastTransitionTime ? new Date(ready.lastTransitionTime).getTime() : undefined;
  return {
    name: pod.metadata.name,
    uid: pod.metadata.uid,
    resourceVersion: pod.metadata.resourceVersion ?? '',
    ordinal,
    index: ordinal - ordinalsStart,
    revision: pod.metadata.labels?.[REVISION_LABEL],
    ready: isReady,
    readySince: isReady ? since : undefined,
    terminating: pod.metadata.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null,
  };
}

export function statefulSetView(sts: V1StatefulSet): StatefulSetView {
  const md = sts.metadata ?? {};
  const parsed = parseStatusAnnotation(md.annotations?.[STATUS_ANNOTATION]);
  return {
    namespace: md.namespace ?? 'default',
    name: md.name ?? '',
    uid: md.uid ?? '',
    resourceVersion: md.resourceVersion ?? '',
    generation: md.generation ?? 0,
    observedGeneration: sts.status?.observedGeneration,
    replicas: sts.spec?.replicas ?? 1,
    ordinalsStart: sts.spec?.ordinals?.start ?? 0,
    strategy: sts.spec?.updateStrategy?.type ?? 'RollingUpdate',
    podManagementPolicy: sts.spec?.podManagementPolicy ?? 'OrderedReady',
    templateHash: fingerprintOf(sts),
    heldTemplate: parsed.ok ? parsed.status.template : undefined,
    heldRevision: parsed.ok ? parsed.status.revision : undefined,
    partition: sts.spec?.updateStrategy?.rollingUpdate?.partition,
    minReadySeconds: sts.spec?.minReadySeconds ?? 0,
    currentRevision: sts.status?.currentRevision,
    updateRevision: sts.status?.updateRevision,
    paused: md.annotations?.[PAUSED_ANNOTATION],
    mark: parsed.ok ? parsed.status.rollout : undefined,
    order: parsed.ok ? parsed.status.order : undefined,
    statusError: parsed.ok ? undefined : parsed.error,
    policyAnnotations: policyAnnotationsOf(md.annotations),
    override: parsed.ok ? parsed.status.override : undefined,
    stepSince: parsed.ok && parsed.status.stepSince !== undefined && !Number.isNaN(Date.parse(parsed.status.stepSince)) ? Date.parse(parsed.status.stepSince) : undefined,
    hookErrors: parsed.ok ? parsed.status.hookErrors : undefined,
    requestedReplicas: md.annotations?.[REQUESTED_REPLICAS_ANNOTATION],
    whenScaled: sts.spec?.persistentVolumeClaimRetentionPolicy?.whenScaled,
    removal: parsed.ok ? parsed.status.removal : undefined,
  };
}

// The metric checks' annotations ride along: `sts-pilot status` shows them beside the policies.
const POLICY_KEYS = new Set<string>([...Object.values(POLICY_ANNOTATIONS), ...Object.values(CHECK_ANNOTATIONS)]);

function policyAnnotationsOf(annotations: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations ?? {})) if (POLICY_KEYS.has(k)) out[k] = v;
  return out;
}

/** The fingerprint of a pod template, the same whichever way the object reached us. */
export const templateFingerprint = (template: unknown): string => templateHash(normalTemplate(template));

/**
 * Fingerprints of StatefulSets whose template a cache dropped to save memory
 * (lib/controller/projection.ts): taken before the drop, looked up by the object.
 */
const fingerprints = new WeakMap<object, string>();

/** Remember the fingerprint of `template` for `sts`, a copy of a StatefulSet that does not carry it. */
export function rememberTemplate(sts: V1StatefulSet, template: unknown): void {
  fingerprints.set(sts, templateFingerprint(template));
}

const fingerprintOf = (sts: V1StatefulSet): string => fingerprints.get(sts) ?? templateFingerprint(sts.spec?.template);

/**
 * The template in one shape whichever way it reached us: a typed list gives
 * class instances (dates as Date, fields unknown to the client dropped), a watch
 * event plain JSON. Through the client's own model both come out the same.
 */
function normalTemplate(template: unknown): unknown {
  if (template === undefined || template === null) return null;
  return ObjectSerializer.serialize(ObjectSerializer.deserialize(template, 'V1PodTemplateSpec'), 'V1PodTemplateSpec');
}
