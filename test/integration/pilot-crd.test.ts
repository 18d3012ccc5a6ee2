import { ApiextensionsV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { expect } from 'chai';
import { join } from 'node:path';
import { statusCode } from '../../lib/errors.ts';
import { CRD_NAME } from '../../lib/pilot/crd.ts';
import { kubectl } from '../cluster/controlplane.ts';
import { installPilotCrd, root } from '../pilot/helpers.ts';
import { type Cluster, cluster, namespace, waitUntil } from './harness.ts';

const G = { group: 'sts-pilot.io', version: 'v1alpha1', plural: 'pilots' };

const pilot = (name: string, spec: Record<string, unknown> = { application: 'elasticsearch' }) => ({
  apiVersion: 'sts-pilot.io/v1alpha1',
  kind: 'Pilot',
  metadata: { name },
  spec,
});

const status = {
  phase: 'Running',
  revision: 'es-7c9d',
  heartbeatTime: new Date().toISOString(),
  conditions: [{ type: 'Ready', status: 'True', reason: 'ApplicationReady', lastTransitionTime: new Date().toISOString() }],
  application: { probe: 'elasticsearch', version: '8.19.21', health: 'yellow', nodeName: 'es-0', shards: { started: 1, relocating: 0, initializing: 0 } },
};

async function rejection(p: Promise<unknown>): Promise<{ code: number | undefined; message: string }> {
  try {
    await p;
  } catch (err) {
    const body = (err as { body?: unknown }).body;
    return { code: statusCode(err), message: typeof body === 'string' ? body : JSON.stringify(body ?? (err as Error).message) };
  }
  throw new Error('the server accepted it');
}

describe('pilot: the Pilot CRD on a real kube-apiserver', function () {
  this.timeout(120_000);
  let c: Cluster;
  let api: CustomObjectsApi;
  let ns: string;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    api = c.kc.makeApiClient(CustomObjectsApi);
    ns = await namespace(c, 'pilot-crd');
  });

  it('is accepted as generated (kubectl apply of manifests/crd-pilot.yaml) and becomes Established', async function () {
    if (!c.cp) throw new Error('needs the test control plane of its own (kubectl from its build), not STS_PILOT_USE_EXISTING_CLUSTER');
    const out = await kubectl(c.cp, ['apply', '--server-side', '--field-manager=sts-pilot-test', '-f', join(root, 'manifests', 'crd-pilot.yaml')]);
    expect(out).to.match(/pilots\.sts-pilot\.io (serverside-applied|created|configured|unchanged)/);
    await installPilotCrd(c);
    const crd = await c.kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: CRD_NAME });
    // A non-structural schema would show here as a NonStructuralSchema condition.
    expect(crd.status?.conditions?.map((x) => `${x.type}=${x.status}`)).to.include.members(['Established=True', 'NamesAccepted=True']);
    expect(crd.status?.conditions?.some((x) => x.type === 'NonStructuralSchema')).to.equal(false);
  });

  it('takes a valid Pilot and its status through the status subresource only', async () => {
    await installPilotCrd(c);
    await api.createNamespacedCustomObject({ ...G, namespace: ns, body: { ...pilot('es-0'), status } });
    // Status sent with the object is dropped: only the status subresource writes it.
    const created = (await api.getNamespacedCustomObject({ ...G, namespace: ns, name: 'es-0' })) as { status?: unknown };
    expect(created.status).to.equal(undefined);
    await api.patchNamespacedCustomObjectStatus(
      { ...G, namespace: ns, name: 'es-0', body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const got = (await api.getNamespacedCustomObject({ ...G, namespace: ns, name: 'es-0' })) as { status?: typeof status };
    expect(got.status?.application).to.deep.equal(status.application);
  });

  it('prunes fields the schema does not know', async () => {
    await installPilotCrd(c);
    await api.createNamespacedCustomObject({ ...G, namespace: ns, body: pilot('es-prune') });
    await api.patchNamespacedCustomObjectStatus(
      { ...G, namespace: ns, name: 'es-prune', body: { status: { ...status, colour: 'blue', application: { ...status.application, mood: 'fine' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const got = (await api.getNamespacedCustomObject({ ...G, namespace: ns, name: 'es-prune' })) as { status: Record<string, unknown> };
    expect(got.status).to.not.have.property('colour');
    expect(got.status.application).to.not.have.property('mood');
  });

  for (const [what, bad, field] of [
    ['an unknown phase', { ...status, phase: 'Dancing' }, 'status.phase'],
    ['a health outside green/yellow/red', { ...status, application: { ...status.application, health: 'purple' } }, 'status.application.health'],
    ['a negative shard count', { ...status, application: { ...status.application, shards: { started: -1, relocating: 0, initializing: 0 } } }, 'status.application.shards.started'],
    ['a heartbeat that is not a date-time', { ...status, heartbeatTime: 'yesterday' }, 'status.heartbeatTime'],
    ['a status without its phase', { heartbeatTime: status.heartbeatTime }, 'status.phase'],
  ] as const) {
    it(`refuses a status with ${what}`, async () => {
      await installPilotCrd(c);
      const name = `bad-${what.replace(/[^a-z]+/g, '-').slice(0, 40)}`.replace(/-$/, '');
      await api.createNamespacedCustomObject({ ...G, namespace: ns, body: pilot(name) });
      const r = await rejection(
        api.patchNamespacedCustomObjectStatus({ ...G, namespace: ns, name, body: { status: bad } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
      );
      expect(r.code).to.equal(422);
      expect(r.message).to.include(field);
    });
  }

  it('refuses a Pilot without its application', async () => {
    await installPilotCrd(c);
    const r = await rejection(api.createNamespacedCustomObject({ ...G, namespace: ns, body: pilot('no-app', { options: { a: 'b' } }) }));
    expect(r.code).to.equal(422);
    expect(r.message).to.include('spec.application');
  });

  it('kubectl get pilots (and plt) shows phase, app, version, health and age', async function () {
    if (!c.cp) throw new Error('needs the test control plane of its own (kubectl from its build), not STS_PILOT_USE_EXISTING_CLUSTER');
    await installPilotCrd(c);
    const cp = c.cp;
    const out = await waitUntil('the printer columns', 10_000, async () => {
      const text = await kubectl(cp, ['get', 'pilots', '-n', ns, 'es-0']);
      return /Running/.test(text) ? text : undefined;
    });
    const [header, row] = out.trim().split('\n');
    expect(header?.split(/\s+/)).to.deep.equal(['NAME', 'PHASE', 'APP', 'VERSION', 'HEALTH', 'AGE']);
    expect(row?.split(/\s+/).slice(0, 5)).to.deep.equal(['es-0', 'Running', 'elasticsearch', '8.19.21', 'yellow']);
    const wide = await kubectl(cp, ['get', 'plt', '-n', ns, 'es-0', '-o', 'wide']);
    expect(wide.split('\n')[0]?.split(/\s+/)).to.deep.equal(['NAME', 'PHASE', 'APP', 'VERSION', 'HEALTH', 'AGE', 'REVISION', 'NODE', 'HEARTBEAT', 'MESSAGE']);
    expect(wide).to.include('es-7c9d');
  });
});
