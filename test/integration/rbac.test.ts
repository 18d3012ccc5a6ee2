import { AuthorizationV1Api, KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { type Cluster, cluster, namespace } from './harness.ts';

/**
 * What the controller's ServiceAccount may do, as the real RBAC authorizer
 * computes it from the shipped manifests. The integration tests run the
 * controller with exactly this identity; this test fails if the role grows.
 */
const EXPECTED_ANYWHERE = [
  // The admission gate's objects and the override's two policies, by name (resourceNames): read once at startup.
  // No ConfigMaps: the gate takes no parameters (test/unit/rbac-used.test.ts: every verb has a caller).
  'admissionregistration.k8s.io/mutatingadmissionpolicies: get',
  'admissionregistration.k8s.io/mutatingadmissionpolicybindings: get',
  'admissionregistration.k8s.io/validatingadmissionpolicies: get',
  'admissionregistration.k8s.io/validatingadmissionpolicybindings: get',
  // on-check-failure rollback finds the current revision's template, as sts-pilot undo does.
  'apps/controllerrevisions: list',
  'apps/statefulsets: get list patch watch',
  'core/events: create',
  'core/pods: delete get list watch',
  // Label-selected by the controller (sts-pilot.io/credentials=true): RBAC cannot say so, the informer does.
  'core/secrets: list watch',
  // Metric checks, read when a step is checked.
  'sts-pilot.io/metricchecks: get',
  // patch: requests appended to a Pilot's spec.actions (a decommission); the sts-pilot-controller-pilots fence allows nothing else.
  'sts-pilot.io/pilots: create get list patch watch',
];
const EXPECTED_OWN_NAMESPACE = [...EXPECTED_ANYWHERE, 'coordination.k8s.io/leases: create get update'].sort();

// Granted to every authenticated identity by Kubernetes' default roles.
const DEFAULT_FOR_EVERYONE = new Set([
  'certificates.k8s.io/clustertrustbundles', // readable by every identity since ClusterTrustBundle projection
  'authorization.k8s.io/selfsubjectaccessreviews', 'authorization.k8s.io/selfsubjectrulesreviews', 'authentication.k8s.io/selfsubjectreviews']);

async function rules(kubeconfigPath: string, ns: string): Promise<string[]> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const review = await kc.makeApiClient(AuthorizationV1Api).createSelfSubjectRulesReview({ body: { spec: { namespace: ns } } });
  const merged = new Map<string, Set<string>>();
  for (const r of review.status?.resourceRules ?? []) {
    for (const g of r.apiGroups ?? []) {
      for (const res of r.resources ?? []) {
        const key = `${g || 'core'}/${res}`;
        if (DEFAULT_FOR_EVERYONE.has(key)) continue;
        const verbs = merged.get(key) ?? new Set<string>();
        for (const v of r.verbs) verbs.add(v);
        merged.set(key, verbs);
      }
    }
  }
  return [...merged].map(([k, v]) => `${k}: ${[...v].sort().join(' ')}`).sort();
}

describe('least privilege: the controller ServiceAccount from manifests/', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
  });

  it('may do exactly what the controller needs in an application namespace, nothing more', async () => {
    const ns = await namespace(c, 'rbac');
    expect(await rules(c.controllerKubeconfigPath, ns)).to.deep.equal([...EXPECTED_ANYWHERE].sort());
  });

  it('may also manage Leases, in its own namespace only', async () => {
    expect(await rules(c.controllerKubeconfigPath, 'sts-pilot-system')).to.deep.equal(EXPECTED_OWN_NAMESPACE);
  });

  it('is refused what it must never do', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(c.controllerKubeconfigPath);
    const authz = kc.makeApiClient(AuthorizationV1Api);
    const can = async (verb: string, group: string, resource: string, ns = 'default'): Promise<boolean> =>
      (await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, group, resource, namespace: ns } } } })).status?.allowed ?? false;
    expect(await can('patch', 'apps', 'statefulsets')).to.equal(true);
    for (const [verb, group, resource] of [
      ['delete', 'apps', 'statefulsets'],
      ['update', 'apps', 'statefulsets'],
      ['create', 'apps', 'statefulsets'],
      ['get', '', 'secrets'],
      ['update', '', 'secrets'],
      ['patch', '', 'secrets'],
      ['create', '', 'pods'],
      ['patch', '', 'pods'],
      ['update', 'sts-pilot.io', 'pilots/status'],
      ['delete', 'sts-pilot.io', 'pilots'],
      ['update', 'coordination.k8s.io', 'leases'],
      ['list', 'admissionregistration.k8s.io', 'validatingadmissionpolicies'],
      ['get', 'admissionregistration.k8s.io', 'validatingadmissionpolicies'],
      ['update', 'admissionregistration.k8s.io', 'mutatingadmissionpolicies'],
      ['delete', 'admissionregistration.k8s.io', 'validatingadmissionpolicybindings'],
    ] as const) {
      expect(await can(verb, group, resource), `${verb} ${group || 'core'}/${resource}`).to.equal(false);
    }
  });
});
