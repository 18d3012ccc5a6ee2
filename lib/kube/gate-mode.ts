import { AdmissionregistrationV1Api, AdmissionregistrationV1beta1Api, type KubeConfig } from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';

/**
 * Which admission gate a cluster runs (docs/install.md, "Kubernetes versions"):
 * - mutating-v1: MutatingAdmissionPolicy v1 (1.36+) holds the partition in the unsafe write;
 * - mutating-v1beta1: the same policies through the beta API (1.34/1.35 with it turned on);
 * - validating-only: ValidatingAdmissionPolicy refuses the unsafe write and says how to write it (1.30+);
 * - none: the controller's guard alone, which can lose the race with the StatefulSet controller.
 */
export const GATE_MODES = ['mutating-v1', 'mutating-v1beta1', 'validating-only', 'none'] as const;
export type GateMode = (typeof GATE_MODES)[number];

/** The manifest that installs each mode (the chart picks the same by admission.mode=auto). */
export const GATE_MANIFEST: Record<Exclude<GateMode, 'none'>, string> = {
  'mutating-v1': 'manifests/admission-gate.yaml',
  'mutating-v1beta1': 'manifests/admission-gate-v1beta1.yaml',
  'validating-only': 'manifests/admission-gate-validating.yaml',
};

/** The policy (and its binding, same name) each mode is recognised by. */
export const MODE_POLICY = {
  mutating: 'sts-pilot-hold-partition',
  validating: 'sts-pilot-write-gate',
  /** Both modes lean on it for a lowered partition. */
  partition: 'sts-pilot-partition-gate',
} as const;

/** A probe's answer: true/false, or why it could not be told. */
export type Probe = boolean | string;

export interface GateModeRead {
  served: { mutatingV1: Probe; mutatingV1beta1: Probe; validating: Probe };
  installed: { mutatingV1: Probe; mutatingV1beta1: Probe; validating: Probe };
}

export interface GateModeReport {
  /** What is installed and in force. */
  mode: GateMode;
  /** The strongest mode this API server serves. */
  capable: GateMode;
  /** Why `mode` is not `capable`, or what could not be read; one sentence each. */
  problems: string[];
}

/** Pure: the mode in force and the mode the cluster could run, from what was read. */
export function judgeGateMode(read: GateModeRead): GateModeReport {
  const problems: string[] = [];
  const what: Record<string, string> = {
    mutatingV1: 'MutatingAdmissionPolicy (admissionregistration.k8s.io/v1)',
    mutatingV1beta1: 'MutatingAdmissionPolicy (admissionregistration.k8s.io/v1beta1)',
    validating: 'ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1)',
  };
  for (const [k, v] of Object.entries(read.served)) if (typeof v === 'string') problems.push(`could not tell whether the API server serves ${what[k]}: ${v}`);
  for (const [k, v] of Object.entries(read.installed)) if (typeof v === 'string') problems.push(`could not read the gate's ${what[k]} objects: ${v}`);
  const { served: s, installed: i } = read;
  const capable: GateMode = s.mutatingV1 === true ? 'mutating-v1' : s.mutatingV1beta1 === true ? 'mutating-v1beta1' : s.validating === true ? 'validating-only' : 'none';
  const mode: GateMode = i.mutatingV1 === true ? 'mutating-v1' : i.mutatingV1beta1 === true ? 'mutating-v1beta1' : i.validating === true ? 'validating-only' : 'none';
  if (mode !== capable && capable !== 'none') {
    problems.push(
      mode === 'none'
        ? `no admission gate is installed; this API server can run ${capable}: install ${GATE_MANIFEST[capable]} (or the chart, admission.mode=auto)`
        : `${mode} is installed, but this API server can run ${capable}, which holds the partition in the unsafe write instead of refusing it: install ${GATE_MANIFEST[capable]}`,
    );
  }
  if (capable === 'none' && !problems.length) problems.push('this API server serves no ValidatingAdmissionPolicy (Kubernetes < 1.30): only the controller\'s guard protects the partition');
  return { mode, capable, problems };
}

/** One line for logs and `sts-pilot status`. */
export function describeGateMode(r: GateModeReport): string {
  const says: Record<GateMode, string> = {
    'mutating-v1': 'the API server holds the partition in any unsafe write (MutatingAdmissionPolicy v1)',
    'mutating-v1beta1': 'the API server holds the partition in any unsafe write (MutatingAdmissionPolicy v1beta1)',
    'validating-only': 'the API server refuses any unsafe write and says how to write it (ValidatingAdmissionPolicy only)',
    none: 'no admission gate: only the controller\'s guard protects the partition',
  };
  return `admission gate mode ${r.mode}: ${says[r.mode]}`;
}

/** 404: not there; any other error: why it could not be read. */
async function probe(fn: () => Promise<unknown>): Promise<Probe> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (statusCode(err) === 404) return false;
    return describeError(err, 200);
  }
}

/** Whether an API group version lists a resource (discovery); a group version not served: false. */
async function serves(list: () => Promise<{ resources?: { name?: string }[] }>, resource: string): Promise<Probe> {
  try {
    return (await list()).resources?.some((r) => r.name === resource) ?? false;
  } catch (err) {
    if (statusCode(err) === 404) return false;
    return describeError(err, 200);
  }
}

const both = async (a: Promise<Probe>, b: Promise<Probe>): Promise<Probe> => {
  const [x, y] = await Promise.all([a, b]);
  return typeof x === 'string' ? x : typeof y === 'string' ? y : x && y;
};

/** Reads what the API server serves and which gate objects are installed (by name), and judges. */
export async function detectGateMode(kc: KubeConfig): Promise<GateModeReport> {
  const v1 = kc.makeApiClient(AdmissionregistrationV1Api);
  const v1beta1 = kc.makeApiClient(AdmissionregistrationV1beta1Api);
  const [mutatingV1, mutatingV1beta1, validating] = await Promise.all([
    serves(() => v1.getAPIResources(), 'mutatingadmissionpolicies'),
    serves(() => v1beta1.getAPIResources(), 'mutatingadmissionpolicies'),
    serves(() => v1.getAPIResources(), 'validatingadmissionpolicies'),
  ]);
  const name = MODE_POLICY.mutating;
  const installed = {
    mutatingV1: mutatingV1 === true ? await both(probe(() => v1.readMutatingAdmissionPolicy({ name })), probe(() => v1.readMutatingAdmissionPolicyBinding({ name }))) : false,
    mutatingV1beta1:
      mutatingV1beta1 === true ? await both(probe(() => v1beta1.readMutatingAdmissionPolicy({ name })), probe(() => v1beta1.readMutatingAdmissionPolicyBinding({ name }))) : false,
    validating:
      validating === true
        ? await both(
            both(probe(() => v1.readValidatingAdmissionPolicy({ name: MODE_POLICY.validating })), probe(() => v1.readValidatingAdmissionPolicyBinding({ name: MODE_POLICY.validating }))),
            both(probe(() => v1.readValidatingAdmissionPolicy({ name: MODE_POLICY.partition })), probe(() => v1.readValidatingAdmissionPolicyBinding({ name: MODE_POLICY.partition }))),
          )
        : false,
  };
  return judgeGateMode({ served: { mutatingV1, mutatingV1beta1, validating }, installed });
}
