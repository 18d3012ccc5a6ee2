import {
  AdmissionregistrationV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1ParamKind,
  type V1ParamRef,
} from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';
import type { Logger } from '../log.ts';

/** The names manifests/admission-gate.yaml installs. */
export const GATE = {
  mutating: 'sts-pilot-hold-partition',
  validating: 'sts-pilot-partition-gate',
  /** Holds a lowered spec.replicas and records the request (sts-pilot.io/requested-replicas). */
  holdReplicas: 'sts-pilot-hold-replicas',
  /** Refuses lowering replicas through the scale subresource. */
  scaleGate: 'sts-pilot-scale-gate',
} as const;

/** One part of the gate: in force or not, and why not. */
export interface GateVerdict {
  enforced: boolean;
  /** Why not, one sentence each. */
  problems: string[];
}

export interface GateReport extends GateVerdict {
  /**
   * `enforced`: the partition's two policies and bindings are there, and their
   * parameters name this controller and its label key (what it always meant).
   */
  enforced: boolean;
  /**
   * Scale-down held in the API server: sts-pilot-hold-replicas and
   * sts-pilot-scale-gate with their bindings, for this label key and controller.
   * Independent of `enforced`.
   */
  scaleDown: GateVerdict;
}

/** What the parameter ConfigMap must say for the policies to protect what this controller manages. */
export interface GateExpectation {
  labelKey: string;
  /** The user this controller authenticates as. */
  username: string;
}

/** A read that may have failed: undefined when not found, a string saying why it could not be read. */
type Read<T> = T | string | undefined;

/** Pushes why `v` is not there to `problems`; true when it is. */
function present(problems: string[], what: string, v: unknown): boolean {
  if (v === undefined) problems.push(`${what} is not installed`);
  else if (typeof v === 'string') problems.push(`${what} could not be read: ${v}`);
  else return true;
  return false;
}

/** What is wrong with the parameter ConfigMap for this controller. */
function paramsProblems(problems: string[], params: Read<Record<string, string>>, want: GateExpectation): void {
  if (!present(problems, 'the parameter ConfigMap of the bindings', params)) return;
  const data = params as Record<string, string>;
  if (data.labelKey !== want.labelKey) {
    problems.push(`its labelKey is ${JSON.stringify(data.labelKey ?? null)}, but this controller subscribes StatefulSets by ${JSON.stringify(want.labelKey)}`);
  }
  if (data.controller !== want.username) {
    problems.push(`its controller is ${JSON.stringify(data.controller ?? null)}, but this controller authenticates as ${JSON.stringify(want.username)} (its own writes would be refused)`);
  }
}

/** Pure: the partition's part of the report from what was read (undefined: not found; a string: why it could not be read). */
export function judgeGate(
  read: {
    mutating: unknown | string | undefined;
    validating: unknown | string | undefined;
    mutatingParamRef: V1ParamRef | string | undefined;
    validatingParamRef: V1ParamRef | string | undefined;
    params: Record<string, string> | string | undefined;
  },
  want: GateExpectation,
): GateVerdict {
  const problems: string[] = [];
  present(problems, `MutatingAdmissionPolicy ${GATE.mutating}`, read.mutating);
  present(problems, `ValidatingAdmissionPolicy ${GATE.validating}`, read.validating);
  const mRef = present(problems, `MutatingAdmissionPolicyBinding ${GATE.mutating}`, read.mutatingParamRef);
  const vRef = present(problems, `ValidatingAdmissionPolicyBinding ${GATE.validating}`, read.validatingParamRef);
  if (mRef && vRef) {
    const a = read.mutatingParamRef as V1ParamRef;
    const b = read.validatingParamRef as V1ParamRef;
    if (a.name !== b.name || a.namespace !== b.namespace) problems.push('the two bindings name different parameter ConfigMaps');
  }
  paramsProblems(problems, read.params, want);
  return { enforced: problems.length === 0, problems };
}

/**
 * Pure: is a scale-down held by the API server? sts-pilot-hold-replicas (and its
 * binding, on the same ConfigMap as the partition's: `partitionParamRef`, the
 * binding of sts-pilot-hold-partition, when it could be read) and
 * sts-pilot-scale-gate, whose binding must take as parameters the StatefulSets
 * of the request's namespace that carry this controller's label key.
 */
export function judgeScaleDownGate(
  read: {
    holdReplicas: unknown | string | undefined;
    holdReplicasParamRef: V1ParamRef | string | undefined;
    /** The policy's paramKind (null: it has none). */
    scaleGateParamKind: V1ParamKind | null | string | undefined;
    scaleGateParamRef: V1ParamRef | string | undefined;
    partitionParamRef: V1ParamRef | string | undefined;
    params: Record<string, string> | string | undefined;
  },
  want: GateExpectation,
): GateVerdict {
  const problems: string[] = [];
  present(problems, `MutatingAdmissionPolicy ${GATE.holdReplicas}`, read.holdReplicas);
  if (present(problems, `MutatingAdmissionPolicyBinding ${GATE.holdReplicas}`, read.holdReplicasParamRef)) {
    const a = read.holdReplicasParamRef as V1ParamRef;
    const b = read.partitionParamRef;
    if (typeof b === 'object' && (a.name !== b.name || a.namespace !== b.namespace)) {
      problems.push(`the binding ${GATE.holdReplicas} names another parameter ConfigMap than ${GATE.mutating}`);
    }
  }
  if (present(problems, `ValidatingAdmissionPolicy ${GATE.scaleGate}`, read.scaleGateParamKind)) {
    const k = read.scaleGateParamKind as V1ParamKind | null;
    if (k?.apiVersion !== 'apps/v1' || k.kind !== 'StatefulSet') {
      problems.push(`ValidatingAdmissionPolicy ${GATE.scaleGate} must take apps/v1 StatefulSets as parameters, not ${k ? `${k.apiVersion ?? ''} ${k.kind ?? ''}`.trim() : 'none'}`);
    }
  }
  if (present(problems, `ValidatingAdmissionPolicyBinding ${GATE.scaleGate}`, read.scaleGateParamRef)) {
    const ref = read.scaleGateParamRef as V1ParamRef;
    const sel = ref.selector;
    const exprs = sel?.matchExpressions ?? [];
    const exact =
      Object.keys(sel?.matchLabels ?? {}).length === 0 &&
      exprs.length === 1 &&
      exprs[0]?.key === want.labelKey &&
      exprs[0]?.operator === 'Exists';
    if (ref.name || !exact) {
      problems.push(
        `the binding ${GATE.scaleGate} must select the StatefulSets labelled ${JSON.stringify(want.labelKey)} (paramRef.selector: that key Exists, nothing else), ` +
          `but it selects ${ref.name ? `the one named ${JSON.stringify(ref.name)}` : JSON.stringify(sel ?? null)}`,
      );
    }
    if (ref.namespace) {
      problems.push(`the binding ${GATE.scaleGate} looks for StatefulSets in namespace ${ref.namespace} only, not in the namespace of each request (paramRef.namespace must be empty)`);
    }
  }
  // Which ConfigMap parameterises sts-pilot-hold-replicas is known only from its binding.
  if (typeof read.holdReplicasParamRef === 'object') paramsProblems(problems, read.params, want);
  return { enforced: problems.length === 0, problems };
}

/**
 * Once at startup: is the partition kept shut by the API server (the admission
 * policies of manifests/admission-gate.yaml), for this controller's label key and
 * identity? And, separately (`scaleDown`), is a scale-down held there? Says so in
 * the log and the sts_pilot_admission_gate metrics; never stops the controller:
 * without the policies its guard still acts, but it can lose the race with the
 * StatefulSet controller (docs/rollout.md), and a scale-down is not held at all.
 */
export async function checkAdmissionGate(kc: KubeConfig, labelKey: string, log: Logger): Promise<GateReport> {
  const adm = kc.makeApiClient(AdmissionregistrationV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const read = async <T>(fn: () => Promise<T>): Promise<T | string | undefined> => {
    try {
      return await fn();
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      return describeError(err, 200);
    }
  };
  const username = await read(async () => (await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} })).status?.userInfo?.username);
  const [mutating, validating, mBinding, vBinding, holdReplicas, hrBinding, scaleGate, sgBinding] = await Promise.all([
    read(() => adm.readMutatingAdmissionPolicy({ name: GATE.mutating })),
    read(() => adm.readValidatingAdmissionPolicy({ name: GATE.validating })),
    read(() => adm.readMutatingAdmissionPolicyBinding({ name: GATE.mutating })),
    read(() => adm.readValidatingAdmissionPolicyBinding({ name: GATE.validating })),
    read(() => adm.readMutatingAdmissionPolicy({ name: GATE.holdReplicas })),
    read(() => adm.readMutatingAdmissionPolicyBinding({ name: GATE.holdReplicas })),
    read(() => adm.readValidatingAdmissionPolicy({ name: GATE.scaleGate })),
    read(() => adm.readValidatingAdmissionPolicyBinding({ name: GATE.scaleGate })),
  ]);
  const refOf = (b: typeof mBinding | typeof vBinding): V1ParamRef | string | undefined =>
    b === undefined || typeof b === 'string' ? b : (b.spec?.paramRef ?? 'it names no parameter (paramRef)');
  const mutatingParamRef = refOf(mBinding);
  const validatingParamRef = refOf(vBinding);
  const holdReplicasParamRef = refOf(hrBinding);
  const scaleGateParamRef = refOf(sgBinding);
  const paramsOf = async (r: V1ParamRef | string | undefined): Promise<Record<string, string> | string | undefined> =>
    typeof r === 'object' && r.name && r.namespace
      ? read(async () => (await core.readNamespacedConfigMap({ name: r.name as string, namespace: r.namespace as string })).data ?? {})
      : undefined;
  const params = await paramsOf(mutatingParamRef);
  const sameRef =
    typeof holdReplicasParamRef === 'object' && typeof mutatingParamRef === 'object' &&
    holdReplicasParamRef.name === mutatingParamRef.name && holdReplicasParamRef.namespace === mutatingParamRef.namespace;
  const holdReplicasParams = sameRef ? params : await paramsOf(holdReplicasParamRef);
  const want = { labelKey, username: typeof username === 'string' ? username : '' };
  const partition = judgeGate({ mutating, validating, mutatingParamRef, validatingParamRef, params }, want);
  const scaleDown = judgeScaleDownGate(
    {
      holdReplicas,
      holdReplicasParamRef,
      scaleGateParamKind: typeof scaleGate === 'object' ? (scaleGate.spec?.paramKind ?? null) : scaleGate,
      scaleGateParamRef,
      partitionParamRef: mutatingParamRef,
      params: holdReplicasParams,
    },
    want,
  );
  const report: GateReport = { ...partition, scaleDown };
  if (typeof username !== 'string') {
    report.problems.push('this controller could not tell who it authenticates as (SelfSubjectReview)');
    scaleDown.problems.push('this controller could not tell who it authenticates as (SelfSubjectReview)');
  }
  report.enforced = report.problems.length === 0;
  scaleDown.enforced = scaleDown.problems.length === 0;
  if (report.enforced) {
    log.info({ labelKey, username }, 'admission gate installed: a template change holds the partition in the same write, and only this controller may lower it');
  } else {
    log.warn(
      { labelKey, problems: report.problems },
      'admission gate not enforced: the controller\'s guard alone protects the partition, and a template changed mid-rollout can move a pod before it acts (install manifests/admission-gate.yaml; docs/rollout.md)',
    );
  }
  if (scaleDown.enforced) {
    log.info({ labelKey, username }, 'admission gate holds scale-downs: a lowered spec.replicas is kept in the same write and recorded in sts-pilot.io/requested-replicas; the scale subresource may not lower it');
  } else {
    log.warn(
      { labelKey, problems: scaleDown.problems },
      'scale-down not held by the admission gate: a lowered spec.replicas (kubectl scale, patch, apply) removes pods at once, without the hook (install manifests/admission-gate.yaml; docs/rollout.md)',
    );
  }
  return report;
}

/** The policies that stamp and check who set an override (manifests/admission-gate.yaml). */
export const OVERRIDE_POLICIES = { stamp: 'sts-pilot-stamp-override', audit: 'sts-pilot-override-audit' } as const;

/**
 * Once at startup, with the gate: are the override's policies installed? Only
 * then does `sts-pilot.io/override-by` name the user the API server
 * authenticated, and only then does the controller apply an override.
 */
export async function checkOverrideStamp(kc: KubeConfig, log: Logger): Promise<{ ok: boolean; problems: string[] }> {
  const adm = kc.makeApiClient(AdmissionregistrationV1Api);
  const problems: string[] = [];
  const need = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      problems.push(statusCode(err) === 404 ? `${what} is not installed` : `${what} could not be read: ${describeError(err, 200)}`);
    }
  };
  await Promise.all([
    need(`MutatingAdmissionPolicy ${OVERRIDE_POLICIES.stamp}`, () => adm.readMutatingAdmissionPolicy({ name: OVERRIDE_POLICIES.stamp })),
    need(`MutatingAdmissionPolicyBinding ${OVERRIDE_POLICIES.stamp}`, () => adm.readMutatingAdmissionPolicyBinding({ name: OVERRIDE_POLICIES.stamp })),
    need(`ValidatingAdmissionPolicy ${OVERRIDE_POLICIES.audit}`, () => adm.readValidatingAdmissionPolicy({ name: OVERRIDE_POLICIES.audit })),
    need(`ValidatingAdmissionPolicyBinding ${OVERRIDE_POLICIES.audit}`, () => adm.readValidatingAdmissionPolicyBinding({ name: OVERRIDE_POLICIES.audit })),
  ]);
  if (problems.length > 0) log.warn({ problems }, 'override policies not installed: audited overrides (sts-pilot approve --override) are refused');
  return { ok: problems.length === 0, problems };
}
