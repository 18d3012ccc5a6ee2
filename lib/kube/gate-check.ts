import {
  AdmissionregistrationV1Api,
  AdmissionregistrationV1beta1Api,
  AuthenticationV1Api,
  type KubeConfig,
  type V1LabelSelector,
  type V1MatchCondition,
  type V1ParamKind,
  type V1ParamRef,
} from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';
import type { GateMode } from './gate-mode.ts';

/** The names manifests/admission-gate.yaml installs. */
export const GATE = {
  mutating: 'sts-pilot-hold-partition',
  validating: 'sts-pilot-partition-gate',
  /** Refuses a write that opens the gate and arrives unheld (the mutating policy did not act). */
  template: 'sts-pilot-template-gate',
  /** Holds a lowered spec.replicas and records the request (sts-pilot.io/requested-replicas). */
  holdReplicas: 'sts-pilot-hold-replicas',
  /** Refuses lowering replicas through the scale subresource. */
  scaleGate: 'sts-pilot-scale-gate',
  /**
   * The validating-only gate (manifests/admission-gate-validating.yaml, no
   * MutatingAdmissionPolicy served): refuses what hold-partition and
   * hold-replicas hold, naming the safe write. It replaces template-gate there.
   */
  write: 'sts-pilot-write-gate',
} as const;

/** The policies that stamp and check who set an override (manifests/admission-gate.yaml). */
export const OVERRIDE_POLICIES = { stamp: 'sts-pilot-stamp-override', audit: 'sts-pilot-override-audit' } as const;

/** One part of the gate: in force or not, and why not. */
export interface GateVerdict {
  enforced: boolean;
  /** Why not, one sentence each. */
  problems: string[];
}

export interface GateReport extends GateVerdict {
  /**
   * `enforced`: the partition's policies and bindings are there, select the
   * StatefulSets of this controller's label key and let its own user through.
   */
  enforced: boolean;
  /** Scale-down held in the API server (sts-pilot-hold-replicas, sts-pilot-scale-gate). Independent of `enforced`. */
  scaleDown: GateVerdict;
  /** Overrides stamped and audited (sts-pilot-stamp-override, sts-pilot-override-audit): only then does override-by name who wrote it. */
  override: GateVerdict;
}

/** What the policies must say to protect what this controller manages. */
export interface GateExpectation {
  labelKey: string;
  /** The user this controller authenticates as. */
  username: string;
}

/** What the check needs of a policy: its match conditions by name. */
export interface PolicyRead {
  conditions: Record<string, string>;
  /** Its variables by name (sts-pilot-write-gate tells a subscription in one). */
  variables?: Record<string, string>;
}

/** What the check needs of a binding: which objects it selects. */
export interface BindingRead {
  objectSelector: V1LabelSelector | undefined;
}

/** A read that may have failed: undefined when not found, a string saying why it could not be read. */
type Read<T> = T | string | undefined;

/** Everything the check reads, by object name (policies and bindings share names). */
export interface GateRead {
  mutating: Record<string, Read<PolicyRead>>;
  validating: Record<string, Read<PolicyRead>>;
  mutatingBindings: Record<string, Read<BindingRead>>;
  validatingBindings: Record<string, Read<BindingRead>>;
  /** The scale gate's paramKind (null: none) and its binding's paramRef: it takes the subscribed StatefulSets as parameters. */
  scaleGateParamKind: Read<V1ParamKind | null>;
  scaleGateParamRef: Read<V1ParamRef>;
}

/** Pushes why `v` is not there to `problems`; true when it is. */
function present(problems: string[], what: string, v: unknown): boolean {
  if (v === undefined) problems.push(`${what} is not installed`);
  else if (typeof v === 'string') problems.push(`${what} could not be read: ${v}`);
  else return true;
  return false;
}

/** The CEL string literal of `s` as the chart writes it (single quotes; label keys and user names hold none). */
export const celString = (s: string): string => `'${s}'`;

/** The one selector a binding of the gate may have: the label key, Exists, nothing else. */
export function selectsLabel(sel: V1LabelSelector | undefined, labelKey: string): boolean {
  const exprs = sel?.matchExpressions ?? [];
  return Object.keys(sel?.matchLabels ?? {}).length === 0 && exprs.length === 1 && exprs[0]?.key === labelKey && exprs[0]?.operator === 'Exists' && !exprs[0]?.values?.length;
}

type Kind = 'Mutating' | 'Validating';

/**
 * Pure: one policy and its binding. `controller`: the policy lets through the
 * writes of this controller (match condition not-the-controller). `labelKeyIn`:
 * the match condition that tells a write that subscribes from the label key.
 */
function judgeOne(
  problems: string[],
  read: GateRead,
  kind: Kind,
  name: string,
  want: GateExpectation,
  o: { controller?: boolean; labelKeyIn?: string } = {},
): void {
  const policy = (kind === 'Mutating' ? read.mutating : read.validating)[name];
  const binding = (kind === 'Mutating' ? read.mutatingBindings : read.validatingBindings)[name];
  if (present(problems, `${kind}AdmissionPolicy ${name}`, policy)) {
    const conditions = (policy as PolicyRead).conditions;
    if (o.controller) {
      const expr = conditions['not-the-controller'];
      if (expr !== `request.userInfo.username != ${celString(want.username)}`) {
        const who = /'([^']*)'/.exec(expr ?? '')?.[1];
        problems.push(
          `${kind}AdmissionPolicy ${name} lets through the writes of ${who === undefined ? 'nobody it names' : JSON.stringify(who)}, ` +
            `but this controller authenticates as ${JSON.stringify(want.username)} (its own writes would be refused)`,
        );
      }
    }
    const expr = conditions[o.labelKeyIn ?? ''] ?? (policy as PolicyRead).variables?.[o.labelKeyIn ?? ''];
    if (o.labelKeyIn !== undefined && !(expr ?? '').includes(celString(want.labelKey))) {
      const where = o.labelKeyIn in conditions || !(policy as PolicyRead).variables ? 'match condition' : 'variable';
      problems.push(`${kind}AdmissionPolicy ${name} does not tell a subscription by the label ${JSON.stringify(want.labelKey)} (${where} ${o.labelKeyIn})`);
    }
  }
  if (present(problems, `${kind}AdmissionPolicyBinding ${name}`, binding)) {
    const sel = (binding as BindingRead).objectSelector;
    if (!selectsLabel(sel, want.labelKey)) {
      problems.push(
        `the binding ${name} must select the StatefulSets labelled ${JSON.stringify(want.labelKey)} (matchResources.objectSelector: that key Exists, nothing else), ` +
          `but it selects ${sel ? JSON.stringify(sel) : 'every StatefulSet'}`,
      );
    }
  }
}

/** Pure: the partition's part of the gate (hold-partition, template-gate, partition-gate). */
export function judgeGate(read: GateRead, want: GateExpectation): GateVerdict {
  const problems: string[] = [];
  judgeOne(problems, read, 'Mutating', GATE.mutating, want, { labelKeyIn: 'opens-the-gate' });
  judgeOne(problems, read, 'Validating', GATE.template, want, { labelKeyIn: 'opens-the-gate' });
  judgeOne(problems, read, 'Validating', GATE.validating, want, { controller: true });
  return { enforced: problems.length === 0, problems };
}

/**
 * Pure: is a scale-down held by the API server? sts-pilot-hold-replicas, and
 * sts-pilot-scale-gate, whose binding must take as parameters the StatefulSets
 * of the request's namespace that carry this controller's label key.
 */
export function judgeScaleDownGate(read: GateRead, want: GateExpectation): GateVerdict {
  const problems: string[] = [];
  judgeOne(problems, read, 'Mutating', GATE.holdReplicas, want, { controller: true });
  judgeScaleGate(problems, read, want);
  return { enforced: problems.length === 0, problems };
}

/** Pure: sts-pilot-scale-gate and its binding (the scale subresource), the same in every mode. */
function judgeScaleGate(problems: string[], read: GateRead, want: GateExpectation): void {
  if (present(problems, `ValidatingAdmissionPolicy ${GATE.scaleGate}`, read.scaleGateParamKind)) {
    const k = read.scaleGateParamKind as V1ParamKind | null;
    if (k?.apiVersion !== 'apps/v1' || k.kind !== 'StatefulSet') {
      problems.push(`ValidatingAdmissionPolicy ${GATE.scaleGate} must take apps/v1 StatefulSets as parameters, not ${k ? `${k.apiVersion ?? ''} ${k.kind ?? ''}`.trim() : 'none'}`);
    }
  }
  if (present(problems, `ValidatingAdmissionPolicyBinding ${GATE.scaleGate}`, read.scaleGateParamRef)) {
    const ref = read.scaleGateParamRef as V1ParamRef;
    if (ref.name || !selectsLabel(ref.selector, want.labelKey)) {
      problems.push(
        `the binding ${GATE.scaleGate} must select the StatefulSets labelled ${JSON.stringify(want.labelKey)} (paramRef.selector: that key Exists, nothing else), ` +
          `but it selects ${ref.name ? `the one named ${JSON.stringify(ref.name)}` : JSON.stringify(ref.selector ?? null)}`,
      );
    }
    if (ref.namespace) {
      problems.push(`the binding ${GATE.scaleGate} looks for StatefulSets in namespace ${ref.namespace} only, not in the namespace of each request (paramRef.namespace must be empty)`);
    }
  }
}

/** Pure: are overrides stamped with the user the API server authenticated, whatever writes led to them? */
export function judgeOverride(read: GateRead, want: GateExpectation): GateVerdict {
  const problems: string[] = [];
  judgeOne(problems, read, 'Mutating', OVERRIDE_POLICIES.stamp, want, { labelKeyIn: 'sets-an-override' });
  judgeOne(problems, read, 'Validating', OVERRIDE_POLICIES.audit, want, { labelKeyIn: 'touches-the-override' });
  return { enforced: problems.length === 0, problems };
}

/**
 * Pure: the validating-only gate (Kubernetes 1.30-1.35 without
 * MutatingAdmissionPolicy): sts-pilot-write-gate refuses what the mutating
 * policies would hold (an unheld template change, CREATE or subscription; a
 * lowered spec.replicas) and sts-pilot-partition-gate a lowered partition or a
 * strategy switch; the scale subresource as in every mode. Overrides are never
 * stamped here, so never applied.
 */
export function judgeValidatingOnly(read: GateRead, want: GateExpectation): GateReport {
  const partition: string[] = [];
  judgeOne(partition, read, 'Validating', GATE.write, want, { controller: true, labelKeyIn: 'opensTheGate' });
  judgeOne(partition, read, 'Validating', GATE.validating, want, { controller: true });
  const scaleDown: string[] = [];
  judgeOne(scaleDown, read, 'Validating', GATE.write, want, { controller: true });
  judgeScaleGate(scaleDown, read, want);
  return {
    enforced: partition.length === 0,
    problems: partition,
    scaleDown: { enforced: scaleDown.length === 0, problems: scaleDown },
    override: {
      enforced: false,
      problems: [`the validating-only gate has no MutatingAdmissionPolicy to stamp sts-pilot.io/override-by (${OVERRIDE_POLICIES.stamp}): overrides are refused`],
    },
  };
}

const conditionsOf = (list: V1MatchCondition[] | undefined): Record<string, string> => Object.fromEntries((list ?? []).map((c) => [c.name, c.expression]));

/**
 * Reads the gate's policies and bindings and judges them for this controller's
 * label key and identity: the partition, scale-down and overrides, each on its
 * own. Never throws: what cannot be read is a problem of the report. Called at
 * startup and then all along (GateMonitor).
 */
export async function checkAdmissionGate(kc: KubeConfig, labelKey: string, mode: Exclude<GateMode, 'none'> = 'mutating-v1'): Promise<GateReport> {
  const adm = kc.makeApiClient(AdmissionregistrationV1Api);
  // The beta serves the same MutatingAdmissionPolicy fields (1.34/1.35 with it turned on).
  const madm = mode === 'mutating-v1beta1' ? kc.makeApiClient(AdmissionregistrationV1beta1Api) : adm;
  const read = async <T>(fn: () => Promise<T>): Promise<T | string | undefined> => {
    try {
      return await fn();
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      return describeError(err, 200);
    }
  };
  const policy = async (fn: () => Promise<{ spec?: { matchConditions?: V1MatchCondition[]; variables?: { name: string; expression: string }[] } }>): Promise<Read<PolicyRead>> => {
    const p = await read(fn);
    return p === undefined || typeof p === 'string' ? p : { conditions: conditionsOf(p.spec?.matchConditions), variables: conditionsOf(p.spec?.variables) };
  };
  const binding = async (fn: () => Promise<{ spec?: { matchResources?: { objectSelector?: V1LabelSelector } } }>): Promise<Read<BindingRead>> => {
    const b = await read(fn);
    return b === undefined || typeof b === 'string' ? b : { objectSelector: b.spec?.matchResources?.objectSelector };
  };
  const validatingOnly = mode === 'validating-only';
  const mutatingNames: string[] = validatingOnly ? [] : [GATE.mutating, GATE.holdReplicas, OVERRIDE_POLICIES.stamp];
  const validatingNames: string[] = validatingOnly ? [GATE.validating, GATE.write, OVERRIDE_POLICIES.audit] : [GATE.validating, GATE.template, OVERRIDE_POLICIES.audit];
  const [username, mutating, mutatingBindings, validating, validatingBindings, scaleGate, scaleBinding] = await Promise.all([
    read(async () => (await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} })).status?.userInfo?.username),
    Promise.all(mutatingNames.map((name) => policy(() => madm.readMutatingAdmissionPolicy({ name })))),
    Promise.all(mutatingNames.map((name) => binding(() => madm.readMutatingAdmissionPolicyBinding({ name })))),
    Promise.all(validatingNames.map((name) => policy(() => adm.readValidatingAdmissionPolicy({ name })))),
    Promise.all(validatingNames.map((name) => binding(() => adm.readValidatingAdmissionPolicyBinding({ name })))),
    read(() => adm.readValidatingAdmissionPolicy({ name: GATE.scaleGate })),
    read(() => adm.readValidatingAdmissionPolicyBinding({ name: GATE.scaleGate })),
  ]);
  const byName = <T>(names: string[], values: T[]): Record<string, T> => Object.fromEntries(names.map((n, i) => [n, values[i] as T]));
  const r: GateRead = {
    mutating: byName(mutatingNames, mutating),
    mutatingBindings: byName(mutatingNames, mutatingBindings),
    validating: byName(validatingNames, validating),
    validatingBindings: byName(validatingNames, validatingBindings),
    scaleGateParamKind: typeof scaleGate === 'object' ? (scaleGate.spec?.paramKind ?? null) : scaleGate,
    scaleGateParamRef: typeof scaleBinding === 'object' ? (scaleBinding.spec?.paramRef ?? 'it names no parameter (paramRef)') : scaleBinding,
  };
  const want = { labelKey, username: typeof username === 'string' ? username : '' };
  const report: GateReport = validatingOnly
    ? judgeValidatingOnly(r, want)
    : { ...judgeGate(r, want), scaleDown: judgeScaleDownGate(r, want), override: judgeOverride(r, want) };
  if (typeof username !== 'string') {
    const why = 'this controller could not tell who it authenticates as (SelfSubjectReview)';
    for (const v of [report, report.scaleDown]) {
      v.problems.push(why);
      v.enforced = false;
    }
  }
  return report;
}
