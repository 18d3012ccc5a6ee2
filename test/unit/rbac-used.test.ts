import { loadAllYaml, type V1ClusterRole, type V1PolicyRule } from '@kubernetes/client-node';
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { root } from '../tools/chart.ts';

/**
 * Least privilege (docs/install.md, "RBAC, verb by verb"): every verb the chart grants
 * the controller and the pilot is one some code path of theirs uses, and every call
 * they make is granted. The calls are read from the source: the generated client's
 * methods (`readNamespacedLease`, `patchNamespacedCustomObjectStatus`, ...), the gate
 * check's policy reads and the informers' paths (list + watch). The rules are read
 * from manifests/, which test/integration/chart.test.ts keeps equal to the chart.
 */

type Grant = string; // "group/resource verb"

const CORE = new Set(['Pod', 'Event', 'Secret', 'ConfigMap', 'Service', 'Namespace']);
const KINDS: Record<string, [string, string]> = {
  Lease: ['coordination.k8s.io', 'leases'],
  StatefulSet: ['apps', 'statefulsets'],
  ControllerRevision: ['apps', 'controllerrevisions'],
};
/** The custom resources the code reads or writes, by the file that names them (PILOT_PLURAL, METRIC_CHECK_PLURAL). */
const CUSTOM: [RegExp, string][] = [
  [/^lib\/checks\//, 'metricchecks'],
  [/./, 'pilots'],
];
const VERBS: Record<string, string> = { read: 'get', get: 'get', list: 'list', create: 'create', replace: 'update', patch: 'patch', delete: 'delete' };
/** Granted to every authenticated user by Kubernetes itself (system:basic-user): not in the chart's rules. */
const EVERYONE = new Set(['authentication.k8s.io/selfsubjectreviews create']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The API calls made in these source files, as "group/resource verb" (core group: ""), with where. */
export function callsIn(paths: string[]): Map<Grant, string[]> {
  const out = new Map<Grant, string[]>();
  const add = (g: string, r: string, v: string, where: string): void => {
    const k = `${g}/${r} ${v}`;
    out.set(k, [...(out.get(k) ?? []), where]);
  };
  for (const p of paths) {
    const src = readFileSync(p, 'utf8');
    const where = relative(root, p);
    for (const m of src.matchAll(/\b(read|get|list|create|replace|patch|delete)Namespaced([A-Z][A-Za-z]*?)(Status)?\(/g)) {
      const [, verb, kind, status] = m as unknown as [string, string, string, string | undefined];
      const custom = CUSTOM.find(([re]) => re.test(where))?.[1] as string;
      const gr = CORE.has(kind) ? ['', `${kind.toLowerCase()}s`] : kind === 'CustomObject' ? ['sts-pilot.io', custom] : KINDS[kind];
      if (!gr) throw new Error(`${where}: ${m[0]} — add ${kind} to this test's table`);
      add(gr[0] as string, `${gr[1]}${status ? '/status' : ''}`, VERBS[verb] as string, where);
    }
    for (const m of src.matchAll(/\bread(Mutating|Validating)AdmissionPolicy(Binding)?\(/g)) {
      add('admissionregistration.k8s.io', `${(m[1] as string).toLowerCase()}admissionpolic${m[2] ? 'ybindings' : 'ies'}`, 'get', where);
    }
    for (const m of src.matchAll(/createSelfSubjectReview\(/g)) add('authentication.k8s.io', 'selfsubjectreviews', 'create', where);
    // Informers: list + watch of a collection path.
    for (const line of src.split('\n').filter((l) => /^\s*path:/.test(l))) {
      for (const m of line.matchAll(/['`](?:\/api\/v1|\/apis\/([a-z.]+|\$\{API_GROUP\})\/v\w+|\$\{base\})\/(?:namespaces\/\$\{\w+\}\/)?([a-z]+|\$\{PILOT_PLURAL\})['`]/g)) {
        const resource = m[2] === '${PILOT_PLURAL}' ? 'pilots' : (m[2] as string);
        const group = m[0].includes('${base}') || m[1] === '${API_GROUP}' ? 'sts-pilot.io' : (m[1] ?? '');
        for (const v of ['list', 'watch']) add(group, resource, v, where);
      }
    }
  }
  return out;
}

/** What a set of rules grants, resource by verb (resourceNames narrow a rule but do not make a verb unused). */
export function grantsOf(rules: V1PolicyRule[]): Set<Grant> {
  const out = new Set<Grant>();
  for (const r of rules) for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${g}/${res} ${v}`);
  return out;
}

function rulesIn(manifest: string, names: string[]): V1PolicyRule[] {
  const docs = loadAllYaml(readFileSync(join(root, 'manifests', manifest), 'utf8')) as (V1ClusterRole | null)[];
  return docs.filter((d) => (d?.kind === 'ClusterRole' || d?.kind === 'Role') && names.includes(d.metadata?.name ?? '')).flatMap((d) => d?.rules ?? []);
}

/** Granted but never called, and called but never granted. */
export function compare(granted: Set<Grant>, calls: Map<Grant, string[]>): { unused: string[]; missing: string[] } {
  return {
    unused: [...granted].filter((g) => !calls.has(g)).sort(),
    missing: [...calls.keys()].filter((c) => !granted.has(c) && !EVERYONE.has(c)).sort().map((c) => `${c} (${[...new Set(calls.get(c))].join(', ')})`),
  };
}

const pilotSide = ['lib/pilot/runner.ts', 'lib/pilot/reporter.ts'].map((p) => join(root, p));
const controllerSide = [...files(join(root, 'lib')).filter((p) => !p.includes(`${join('lib', 'cli')}/`) && !pilotSide.includes(p)), ...files(join(root, 'hooks')), join(root, 'cmd', 'sts-pilot.ts')];

describe('RBAC: every granted verb has a caller, every call is granted', () => {
  it('the controller (ClusterRole sts-pilot-controller, Role sts-pilot-leader-election)', () => {
    const granted = grantsOf(rulesIn('rbac-controller.yaml', ['sts-pilot-controller', 'sts-pilot-leader-election']));
    const calls = callsIn(controllerSide);
    expect(granted.size, 'rules found').to.be.greaterThan(10);
    expect(compare(granted, calls)).to.deep.equal({ unused: [], missing: [] });
  });

  it('the in-pod pilot (ClusterRole sts-pilot-pilot)', () => {
    const granted = grantsOf(rulesIn('rbac-pilot.yaml', ['sts-pilot-pilot']));
    expect(compare(granted, callsIn(pilotSide))).to.deep.equal({ unused: [], missing: [] });
  });

  it('fails on a rule no code path uses, and on a call no rule grants (the check itself)', () => {
    const rules = rulesIn('rbac-controller.yaml', ['sts-pilot-controller', 'sts-pilot-leader-election']);
    const calls = callsIn(controllerSide);
    // The rule this branch removed: the gate's ConfigMap, read by nothing since the gate lost its parameters.
    const widened = grantsOf([...rules, { apiGroups: [''], resources: ['configmaps'], resourceNames: ['sts-pilot-gate'], verbs: ['get'] }]);
    expect(compare(widened, calls).unused).to.deep.equal(['/configmaps get']);
    const narrowed = grantsOf(rules.filter((r) => !r.resources?.includes('leases')));
    expect(compare(narrowed, calls).missing.map((m) => m.split(' (')[0])).to.deep.equal(['coordination.k8s.io/leases create', 'coordination.k8s.io/leases get', 'coordination.k8s.io/leases update']);
  });
});
