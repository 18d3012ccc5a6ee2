import { AdmissionregistrationV1Api, AuthenticationV1Api, CoreV1Api, type KubeConfig, type V1ParamRef } from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';
import type { Logger } from '../log.ts';

/** The names manifests/admission-gate.yaml installs. */
export const GATE = {
  mutating: 'sts-pilot-hold-partition',
  validating: 'sts-pilot-partition-gate',
} as const;

export interface GateReport {
  /** Both policies and bindings are there, and their parameters name this controller and its label key. */
  enforced: boolean;
  /** Why not, one sentence each. */
  problems: string[];
}

/** What the parameter ConfigMap must say for the policies to protect what this controller manages. */
export interface GateExpectation {
  labelKey: string;
  /** The user this controller authenticates as. */
  username: string;
}

/** Pure: the report from what was read (undefined: not found; a string: why it could not be read). */
export function judgeGate(
  read: {
    mutating: unknown | string | undefined;
    validating: unknown | string | undefined;
    mutatingParamRef: V1ParamRef | string | undefined;
    validatingParamRef: V1ParamRef | string | undefined;
    params: Record<string, string> | string | undefined;
  },
  want: GateExpectation,
): GateReport {
  const problems: string[] = [];
  const check = (what: string, v: unknown): boolean => {
    if (v === undefined) problems.push(`${what} is not installed`);
    else if (typeof v === 'string') problems.push(`${what} could not be read: ${v}`);
    else return true;
    return false;
  };
  check(`MutatingAdmissionPolicy ${GATE.mutating}`, read.mutating);
  check(`ValidatingAdmissionPolicy ${GATE.validating}`, read.validating);
  const mRef = check(`MutatingAdmissionPolicyBinding ${GATE.mutating}`, read.mutatingParamRef);
  const vRef = check(`ValidatingAdmissionPolicyBinding ${GATE.validating}`, read.validatingParamRef);
  if (mRef && vRef) {
    const a = read.mutatingParamRef as V1ParamRef;
    const b = read.validatingParamRef as V1ParamRef;
    if (a.name !== b.name || a.namespace !== b.namespace) problems.push('the two bindings name different parameter ConfigMaps');
  }
  if (check('the parameter ConfigMap of the bindings', read.params)) {
    const data = read.params as Record<string, string>;
    if (data.labelKey !== want.labelKey) {
      problems.push(`its labelKey is ${JSON.stringify(data.labelKey ?? null)}, but this controller subscribes StatefulSets by ${JSON.stringify(want.labelKey)}`);
    }
    if (data.controller !== want.username) {
      problems.push(`its controller is ${JSON.stringify(data.controller ?? null)}, but this controller authenticates as ${JSON.stringify(want.username)} (its own writes would be refused)`);
    }
  }
  return { enforced: problems.length === 0, problems };
}

/**
 * Once at startup: is the partition kept shut by the API server (the admission
 * policies of manifests/admission-gate.yaml), for this controller's label key and
 * identity? Says so in the log and the sts_pilot_admission_gate metric; never
 * stops the controller: without the policies its guard still acts, but it can
 * lose the race with the StatefulSet controller (docs/rollout.md).
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
  const [mutating, validating, mBinding, vBinding] = await Promise.all([
    read(() => adm.readMutatingAdmissionPolicy({ name: GATE.mutating })),
    read(() => adm.readValidatingAdmissionPolicy({ name: GATE.validating })),
    read(() => adm.readMutatingAdmissionPolicyBinding({ name: GATE.mutating })),
    read(() => adm.readValidatingAdmissionPolicyBinding({ name: GATE.validating })),
  ]);
  const refOf = (b: typeof mBinding | typeof vBinding): V1ParamRef | string | undefined =>
    b === undefined || typeof b === 'string' ? b : (b.spec?.paramRef ?? 'it names no parameter (paramRef)');
  const mutatingParamRef = refOf(mBinding);
  const validatingParamRef = refOf(vBinding);
  const ref = typeof mutatingParamRef === 'object' ? mutatingParamRef : undefined;
  const params =
    ref?.name && ref.namespace
      ? await read(async () => (await core.readNamespacedConfigMap({ name: ref.name as string, namespace: ref.namespace as string })).data ?? {})
      : undefined;
  const report = judgeGate(
    { mutating, validating, mutatingParamRef, validatingParamRef, params },
    { labelKey, username: typeof username === 'string' ? username : '' },
  );
  if (typeof username !== 'string') report.problems.push('this controller could not tell who it authenticates as (SelfSubjectReview)');
  report.enforced = report.problems.length === 0;
  if (report.enforced) {
    log.info({ labelKey, username }, 'admission gate installed: a template change holds the partition in the same write, and only this controller may lower it');
  } else {
    log.warn(
      { labelKey, problems: report.problems },
      'admission gate not enforced: the controller\'s guard alone protects the partition, and a template changed mid-rollout can move a pod before it acts (install manifests/admission-gate.yaml; docs/rollout.md)',
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
