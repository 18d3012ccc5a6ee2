import {
  AdmissionregistrationV1Api,
  AuthenticationV1Api,
  type KubeConfig,
  type V1LabelSelector,
  type V1MatchCondition,
  type V1ParamKind,
  type V1ParamRef,
} from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';

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
    if (o.labelKeyIn !== undefined && !(conditions[o.labelKeyIn] ?? '').includes(celString(want.labelKey))) {
      problems.push(`${kind}AdmissionPolicy ${name} does not tell a subscription by the label ${JSON.stringify(want.labelKey)} (match condition ${o.labelKeyIn})`);
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
  return { enforced: problems.length === 0, problems };
}

/** Pure: are overrides stamped with the user the API server authenticated, whatever writes led to them? */
export function judgeOverride(read: GateRead, want: GateExpectation): GateVerdict {
  const problems: string[] = [];
  judgeOne(problems, read, 'Mutating', OVERRIDE_POLICIES.stamp, want, { labelKeyIn: 'sets-an-override' });
  judgeOne(problems, read, 'Validating', OVERRIDE_POLICIES.audit, want, { labelKeyIn: 'touches-the-override' });
  return { enforced: problems.length === 0, problems };
}

const conditionsOf = (list: V1MatchCondition[] | undefined): Record<string, string> => Object.fromEntries((list ?? []).map((c) => [c.name, c.expression]));

/**
 * Reads the gate's policies and bindings and judges them for this controller's
 * label key and identity: the partition, scale-down and overrides, each on its
 * own. Never throws: what cannot be read is a problem of the report. Called at
 * startup and then all along (GateMonitor).
 */
export async function checkAdmissionGate(kc: KubeConfig, labelKey: string): Promise<GateReport> {
  const adm = kc.makeApiClient(AdmissionregistrationV1Api);
  const read = async <T>(fn: () => Promise<T>): Promise<T | string | undefined> => {
    try {
      return await fn();
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      return describeError(err, 200);
    }
  };
  const policy = async (fn: () => Promise<{ spec?: { matchConditions?: V1MatchCondition[] } }>): Promise<Read<PolicyRead>> => {
    const p = await read(fn);
    return p === undefined || typeof p === 'string' ? p : { conditions: conditionsOf(p.spec?.matchConditions) };
  };
  const binding = async (fn: () => Promise<{ spec?: { matchResources?: { objectSelector?: V1LabelSelector } } }>): Promise<Read<BindingRead>> => {
    const b = await read(fn);
    return b === undefined || typeof b === 'string' ? b : { objectSelector: b.spec?.matchResources?.objectSelector };
  };
  const mutatingNames = [GATE.mutating, GATE.holdReplicas, OVERRIDE_POLICIES.stamp];
  const validatingNames = [GATE.validating, GATE.template, OVERRIDE_POLICIES.audit];
  const [username, mutating, mutatingBindings, validating, validatingBindings, scaleGate, scaleBinding] = await Promise.all([
    read(async () => (await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} })).status?.userInfo?.username),
    Promise.all(mutatingNames.map((name) => policy(() => adm.readMutatingAdmissionPolicy({ name })))),
    Promise.all(mutatingNames.map((name) => binding(() => adm.readMutatingAdmissionPolicyBinding({ name })))),
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
  const report: GateReport = { ...judgeGate(r, want), scaleDown: judgeScaleDownGate(r, want), override: judgeOverride(r, want) };
  if (typeof username !== 'string') {
    const why = 'this controller could not tell who it authenticates as (SelfSubjectReview)';
    for (const v of [report, report.scaleDown]) {
      v.problems.push(why);
      v.enforced = false;
    }
  }
  return report;
}
