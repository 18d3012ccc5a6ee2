import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createLogger } from '../../lib/log.ts';
import { PilotManager } from '../../lib/pilot/manager.ts';
import { PILOT_STATEFULSET_LABEL, podOwnerUid } from '../../lib/pilot/schema.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { G } from '../pilot/harness.ts';
import { type Cluster, cluster, createAndSettle, namespace, podsOf, statefulSet, waitUntil } from './harness.ts';

interface Raw {
  metadata: { uid: string; ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[]; labels?: Record<string, string> };
  spec: { application: string; options?: Record<string, string> };
}

/** Count the requests the manager makes: instrumentation of the real client, not a stand-in for it. */
function countCalls(m: PilotManager): { n: number } {
  const counter = { n: 0 };
  const holder = m as unknown as { api: Record<string, unknown> };
  const real = holder.api;
  holder.api = new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        counter.n++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return counter;
}

describe('pilot: PilotManager on a real control plane (StatefulSet controller, garbage collector, the controller RBAC)', function () {
  this.timeout(120_000);
  let c: Cluster;
  let ns: string;
  let api: CustomObjectsApi;
  let sts: V1StatefulSet;
  let pods: V1Pod[];
  let m: PilotManager;
  let calls: { n: number };
  const changes: string[] = [];

  const get = async (name: string): Promise<Raw | undefined> =>
    (api.getNamespacedCustomObject({ ...G, namespace: ns, name }) as Promise<Raw>).catch(() => undefined);

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    api = c.kc.makeApiClient(CustomObjectsApi);
    ns = await namespace(c, 'pilot-mgr');
    sts = await createAndSettle(c, ns, statefulSet('web', { replicas: 3 }));
    pods = await podsOf(c, ns, 'web');
    // The controller's own identity, bound by manifests/rbac-controller.yaml: the manager needs no more.
    const controllerKc = new KubeConfig();
    controllerKc.loadFromFile(c.controllerKubeconfigPath);
    m = new PilotManager({ kc: controllerKc, log: createLogger({ level: 'warn' }), namespace: ns, onChange: (n, s, p) => changes.push(`${n}/${s}/${p}`) });
    await m.start();
    calls = countCalls(m);
  });

  after(async () => {
    await m?.stop();
  });

  it('creates one Pilot per pod, same name, owned by the pod, labelled with its StatefulSet', async () => {
    const r = await m.ensurePilots(sts, pods, 'pilot-ready', { 'max-age': '30' });
    expect(r.created.sort()).to.deep.equal(['web-0', 'web-1', 'web-2']);
    expect(r.failed).to.deep.equal([]);
    for (const pod of pods) {
      const p = await get(pod.metadata?.name ?? '');
      expect(p?.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name, uid: pod.metadata?.uid, controller: true, blockOwnerDeletion: false }]);
      expect(p?.metadata.labels?.[PILOT_STATEFULSET_LABEL]).to.equal('web');
      expect(p?.spec).to.deep.equal({ application: 'pilot-ready', options: { 'max-age': '30' } });
    }
  });

  it('makes no API call when nothing is missing, even before the watch shows its own creates', async () => {
    const before = calls.n;
    const again = await m.ensurePilots(sts, pods, 'pilot-ready', { 'max-age': '30' });
    expect(again).to.deep.equal({ created: [], stale: [], failed: [] });
    await waitUntil('the cache to hold the Pilots', 10_000, async () => pods.every((p) => m.reader(ns).get(p.metadata?.name ?? '')));
    for (let i = 0; i < 20; i++) await m.ensurePilots(sts, pods, 'pilot-ready', { 'max-age': '30' });
    // list(): every Pilot of the namespace from the cache (a hook finds its ring's Pilots across StatefulSets), none of another.
    expect(m.reader(ns).list?.().map((p) => p.metadata.name).sort()).to.deep.equal(pods.map((p) => p.metadata?.name).sort());
    expect(m.reader(`${ns}-other`).list?.()).to.deep.equal([]);
    expect(calls.n - before).to.equal(0);
  });

  it('never rewrites a Pilot: other options cost no call, they go into the Pilots of new pods', async () => {
    const before = calls.n;
    const r = await m.ensurePilots(sts, pods, 'pilot-ready', { 'max-age': '90' });
    expect(r).to.deep.equal({ created: [], stale: [], failed: [] });
    expect(calls.n - before).to.equal(0);
    expect((await get('web-1'))?.spec.options).to.deep.equal({ 'max-age': '30' });
  });

  it('tells the controller when a Pilot status changes, not on a plain heartbeat or a metadata change', async () => {
    changes.length = 0;
    const status = { phase: 'Running', revision: 'x', heartbeatTime: new Date().toISOString(), application: { probe: 'none' } };
    await api.patchNamespacedCustomObjectStatus({ ...G, namespace: ns, name: 'web-1', body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await waitUntil('onChange for web-1', 10_000, async () => changes.includes(`${ns}/web/web-1`));
    await waitUntil('the reader to see the status', 10_000, async () => m.reader(ns).get('web-1')?.status?.phase === 'Running');
    const reader = m.reader(ns);
    const p = reader.get('web-1');
    expect(p && reader.isFresh(p, 60_000)).to.equal(true);
    expect(p && reader.isFresh(p, 0)).to.equal(false);
    const beat = async (at: number): Promise<void> => {
      const heartbeatTime = new Date(at).toISOString();
      await api.patchNamespacedCustomObjectStatus(
        { ...G, namespace: ns, name: 'web-1', body: { status: { heartbeatTime } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await waitUntil('the cache to show the heartbeat', 10_000, async () => m.reader(ns).get('web-1')?.status?.heartbeatTime === heartbeatTime);
    };
    const t0 = Date.parse(status.heartbeatTime);
    changes.length = 0;
    await beat(t0 + 20_000);
    expect(changes, 'a plain heartbeat').to.deep.equal([]);
    await beat(t0 + 20_000 + 45_000);
    expect(changes, 'a heartbeat after a silence longer than 30 s').to.deep.equal([`${ns}/web/web-1`]);
    changes.length = 0;
    await api.patchNamespacedCustomObject(
      { ...G, namespace: ns, name: 'web-1', body: { metadata: { labels: { touched: 'yes' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await waitUntil('the cache to show the label', 10_000, async () => m.reader(ns).get('web-1')?.metadata.labels?.touched === 'yes');
    expect(changes).to.deep.equal([]);
  });

  it('appends a hook\'s request to spec.actions as the controller (its RBAC: patch), once per id; the pilot\'s report of it wakes the controller', async () => {
    changes.length = 0;
    expect(await m.requestAction(ns, 'web-0', { id: 'decommission-1', action: 'decommission', reason: 'test' })).to.equal('requested');
    await waitUntil('the cache to show the request', 10_000, async () => m.reader(ns).get('web-0')?.spec.actions?.length === 1);
    expect(await m.requestAction(ns, 'web-0', { id: 'decommission-1', action: 'decommission' }), 'asked again').to.equal('already');
    expect(await m.requestAction(ns, 'web-0', { id: 'decommission-2', action: 'decommission' })).to.equal('requested');
    const spec = (await get('web-0'))?.spec as { application: string; options: unknown; actions: { id: string; action: string; reason?: string }[] };
    expect(spec.application, 'the rest of the spec untouched').to.equal('pilot-ready');
    expect(spec.options).to.deep.equal({ 'max-age': '30' });
    expect(spec.actions.map((a) => `${a.id} ${a.action} ${a.reason ?? ''}`.trim())).to.deep.equal(['decommission-1 decommission test', 'decommission-2 decommission']);
    try {
      await m.requestAction(ns, 'no-such-pod', { id: 'decommission-1', action: 'decommission' });
      expect.fail('a pod without a Pilot');
    } catch (err) {
      expect((err as Error).message).to.equal('pod no-such-pod has no Pilot (yet) to take the request');
    }
    const status = { phase: 'Running', heartbeatTime: new Date().toISOString(), actions: [{ id: 'decommission-1', action: 'decommission', state: 'Running' }] };
    changes.length = 0;
    await api.patchNamespacedCustomObjectStatus({ ...G, namespace: ns, name: 'web-0', body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await waitUntil('onChange for the request\'s status', 10_000, async () => changes.includes(`${ns}/web/web-0`));
  });

  it('the garbage collector deletes a Pilot with its pod; ensurePilots makes one for the pod that replaces it', async () => {
    const old = pods.find((p) => p.metadata?.name === 'web-2') as V1Pod;
    const oldPilot = await get('web-2');
    await c.core.deleteNamespacedPod({ name: 'web-2', namespace: ns });
    await waitUntil('the Pilot of the deleted pod to be collected', 60_000, async () => (await get('web-2'))?.metadata.uid !== oldPilot?.metadata.uid);
    const fresh = await waitUntil('the StatefulSet to recreate web-2', 30_000, async () => {
      const p = (await podsOf(c, ns, 'web')).find((x) => x.metadata?.name === 'web-2' && x.metadata.uid !== old.metadata?.uid);
      return p;
    });
    pods = await podsOf(c, ns, 'web');
    await waitUntil('the cache to forget the old Pilot', 10_000, async () => !m.reader(ns).get('web-2'));
    const r = await m.ensurePilots(sts, pods, 'pilot-ready', { 'max-age': '90' });
    expect(r.created).to.deep.equal(['web-2']);
    expect((await get('web-2'))?.spec.options, "the new pod's Pilot carries the options of now").to.deep.equal({ 'max-age': '90' });
    expect((await get('web-2'))?.metadata.ownerReferences?.[0]?.uid).to.equal(fresh.metadata?.uid);
  });

  it('leaves a Pilot another pod owns to the garbage collector, and makes the pod\'s own once it is gone', async () => {
    // A Pilot left by an earlier pod of the same name is owned by a pod that is gone, and the collector
    // takes it within a second: to stand still for the test, these are owned by a live decoy pod.
    const decoy = await c.core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'decoy' }, spec: { containers: [{ name: 'app', image: 'example/app:1' }] } } });
    const owner = [{ apiVersion: 'v1', kind: 'Pod', name: 'decoy', uid: decoy.metadata?.uid ?? '' }];
    for (const [name, labels] of [['web-0', { [PILOT_STATEFULSET_LABEL]: 'web' }], ['web-1', {}]] as const) {
      await api.deleteNamespacedCustomObject({ ...G, namespace: ns, name });
      await waitUntil(`${name} Pilot gone`, 10_000, async () => !(await get(name)));
      await api.createNamespacedCustomObject({
        ...G,
        namespace: ns,
        body: { apiVersion: 'sts-pilot.io/v1alpha1', kind: 'Pilot', metadata: { name, labels, ownerReferences: owner }, spec: { application: 'pilot-ready' } },
      });
    }
    // web-0 is in the cache (our label), web-1 is not (no label).
    await waitUntil('the cache to show the decoy-owned web-0', 10_000, async () => podOwnerUid(m.reader(ns).get('web-0') ?? {}) === decoy.metadata?.uid);
    await waitUntil('the cache to drop web-1', 10_000, async () => !m.reader(ns).get('web-1'));
    const before = calls.n;
    const r = await m.ensurePilots(sts, pods, 'pilot-ready');
    expect(r).to.deep.equal({ created: [], stale: ['web-0', 'web-1'], failed: [] });
    expect(calls.n - before, 'web-0 from the cache: none; web-1: a create that conflicts, and a read').to.equal(2);

    changes.length = 0;
    await c.core.deleteNamespacedPod({ name: 'decoy', namespace: ns });
    await waitUntil('the collector to remove both', 30_000, async () => !(await get('web-0')) && !(await get('web-1')));
    await waitUntil('the controller to be told web-0 went', 10_000, async () => changes.includes(`${ns}/web/web-0`));
    const created: string[] = [];
    await waitUntil('both Pilots made anew', 20_000, async () => {
      created.push(...(await m.ensurePilots(sts, pods, 'pilot-ready')).created);
      return created.length === 2;
    });
    for (const name of ['web-0', 'web-1']) {
      expect((await get(name))?.metadata.ownerReferences?.[0]?.uid).to.equal(pods.find((p) => p.metadata?.name === name)?.metadata?.uid);
    }
  });

  it('skips pods that are being deleted', async () => {
    const terminating = pods.map((p) => ({ ...p, metadata: { ...p.metadata, name: `${p.metadata?.name}-x`, deletionTimestamp: new Date() } }));
    const before = calls.n;
    const r = await m.ensurePilots(sts, terminating, 'pilot-ready');
    expect(r.created).to.deep.equal([]);
    expect(calls.n - before).to.equal(0);
  });

  it('forgets a create of its own once the watch shows it: a Pilot deleted by hand right after is made again at once', async () => {
    const drop = async () => {
      await api.deleteNamespacedCustomObject({ ...G, namespace: ns, name: 'web-2' });
      await waitUntil('the cache to drop web-2', 10_000, async () => !m.reader(ns).get('web-2'));
    };
    await drop();
    expect((await m.ensurePilots(sts, pods, 'pilot-ready')).created).to.deep.equal(['web-2']);
    await waitUntil('the cache to show web-2', 10_000, async () => m.reader(ns).get('web-2'));
    await drop();
    // Had the create stayed pending until an ensurePilots call saw it cached, this call would wait out its 30 s.
    expect((await m.ensurePilots(sts, pods, 'pilot-ready')).created).to.deep.equal(['web-2']);
  });

  it('forgets a create of its own when the watch shows it before the create\'s answer (a loaded machine)', async () => {
    // Hold each create's answer until the cache shows its Pilot: the order a busy
    // machine produces now and then, made certain here.
    const holder = m as unknown as { api: Record<string, unknown> };
    const real = holder.api;
    holder.api = new Proxy(real, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== 'createNamespacedCustomObject' || typeof v !== 'function') return v;
        return async (...args: unknown[]) => {
          const out = (await (v as (...a: unknown[]) => Promise<{ metadata?: { name?: string } }>).apply(target, args)) ?? {};
          const name = out.metadata?.name ?? '';
          await waitUntil(`the cache to show ${name} before the answer`, 10_000, async () => m.reader(ns).get(name));
          return out;
        };
      },
    });
    try {
      const drop = async () => {
        await api.deleteNamespacedCustomObject({ ...G, namespace: ns, name: 'web-1' });
        await waitUntil('the cache to drop web-1', 10_000, async () => !m.reader(ns).get('web-1'));
      };
      await drop();
      expect((await m.ensurePilots(sts, pods, 'pilot-ready')).created).to.deep.equal(['web-1']);
      await drop();
      expect((await m.ensurePilots(sts, pods, 'pilot-ready')).created).to.deep.equal(['web-1']);
    } finally {
      holder.api = real;
    }
  });

  it('reports an application name no Pilot can carry, without a call and without throwing', async () => {
    const before = calls.n;
    const r = await m.ensurePilots(sts, pods, '');
    expect(r.failed.map((f) => f.pod).sort()).to.deep.equal(['web-0', 'web-1', 'web-2']);
    expect(r.failed[0]?.error).to.match(/no valid Pilot spec: .*application/);
    expect(calls.n - before).to.equal(0);
  });
});
