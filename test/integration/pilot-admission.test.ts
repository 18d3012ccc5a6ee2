import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { expect } from 'chai';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bindPilotRole, createPilot, createPod, G } from '../pilot/harness.ts';
import { applyManifest, type Cluster, cluster, namespace, serviceAccountKubeconfig } from './harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * manifests/admission-pilot.yaml: RBAC lets every pod of a namespace write the
 * status of every Pilot there; the admission policy narrows it to the Pilot of
 * the pod the token is bound to. Each case is a real status write, with a
 * real token from the TokenRequest API, answered by kube-apiserver.
 */
describe('least privilege: a pilot may write only the Pilot of its own pod', function () {
  this.timeout(2 * 60_000);
  let c: Cluster;
  let ns: string;
  let other: string;
  const pods: Record<string, { name: string; uid: string }> = {};

  /** Patch a Pilot's status as `kubeconfig`; the HTTP code and message of the answer. */
  async function writeStatus(kubeconfig: string, inNs: string, name: string): Promise<{ code: number; message: string }> {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    return kc
      .makeApiClient(CustomObjectsApi)
      .patchNamespacedCustomObjectStatus(
        { ...G, namespace: inNs, name, body: { status: { phase: 'Running', heartbeatTime: new Date().toISOString() } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      .then(
        () => ({ code: 200, message: '' }),
        (err: { code?: number; body?: string }) => ({ code: err.code ?? 0, message: String(JSON.parse(err.body ?? '{}').message ?? err.body) }),
      );
  }

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    ns = await namespace(c, 'own-pilot');
    other = await namespace(c, 'own-pilot-other');
    await applyManifest(c.kc, join(root, 'manifests', 'rbac-pilot.yaml'));
    await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
    // The pods' role, bound in both namespaces to the ServiceAccount of the first.
    for (const where of [ns, other]) await bindPilotRole(c, where, 'app', ns);
    for (const name of ['db-0', 'db-1']) {
      const pod = await createPod(c, ns, name, 'r1', 'app');
      await createPilot(c, ns, pod);
      pods[name] = { name, uid: pod.metadata?.uid ?? '' };
    }
    // A Pilot of the same name in another namespace.
    const twin = await createPod(c, other, 'db-0');
    await createPilot(c, other, twin);
  });

  it('with a token bound to its pod, it writes the status of that pod\'s Pilot', async () => {
    const own = await serviceAccountKubeconfig(c.kc, c.core, ns, 'app', pods['db-0']);
    expect(await writeStatus(own, ns, 'db-0')).to.deep.equal({ code: 200, message: '' });
  });

  it('the same token is refused on the Pilot of another pod of the same StatefulSet', async () => {
    const own = await serviceAccountKubeconfig(c.kc, c.core, ns, 'app', pods['db-0']);
    const r = await writeStatus(own, ns, 'db-1');
    expect(r.code).to.equal(403);
    expect(r.message).to.include('only the Pilot of its own pod').and.include('bound to pod db-0, not db-1');
    // And db-1's own token may.
    const theirs = await serviceAccountKubeconfig(c.kc, c.core, ns, 'app', pods['db-1']);
    expect((await writeStatus(theirs, ns, 'db-1')).code).to.equal(200);
  });

  it('is refused on a Pilot of the same name in another namespace, though RBAC there allows it', async () => {
    const own = await serviceAccountKubeconfig(c.kc, c.core, ns, 'app', pods['db-0']);
    const r = await writeStatus(own, other, 'db-0');
    expect(r.code).to.equal(403);
    expect(r.message).to.include(`in its own namespace, not in ${other}`);
  });

  it('a token of the same ServiceAccount bound to no pod is refused everywhere', async () => {
    const loose = await serviceAccountKubeconfig(c.kc, c.core, ns, 'app');
    const r = await writeStatus(loose, ns, 'db-0');
    expect(r.code).to.equal(403);
    expect(r.message).to.include('only with a token bound to a pod');
  });

  it('people and the controller are not matched: an admin still writes any Pilot', async () => {
    // The controller's own writes are proven by every rollout test (it creates the Pilots).
    const api = c.kc.makeApiClient(CustomObjectsApi);
    await api.patchNamespacedCustomObjectStatus(
      { ...G, namespace: ns, name: 'db-1', body: { status: { phase: 'Failed' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  });
});
