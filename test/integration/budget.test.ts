import { CoordinationV1Api, type V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  eventsFor,
  namespace,
  readSts,
  RecordingHook,
  rolloutFinished,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';
import { PlainWatch } from './plain-watch.ts';

const ready = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true && !p.metadata?.deletionTimestamp;

/**
 * An independent count of pods away, read from a plain watch: a pod is away from
 * the moment it is being deleted until a pod of its name (a new uid) is Ready.
 * `most` is the largest number ever away at once; `overlaps` names when it was more than one.
 */
class AwayWatch {
  most = 0;
  readonly overlaps: string[] = [];
  private readonly away = new Map<string, string>();
  private watch: PlainWatch<V1Pod> | undefined;

  async start(c: Cluster, ns: string): Promise<this> {
    this.watch = await new PlainWatch<V1Pod>(c.kc, `/api/v1/namespaces/${ns}/pods`, () => c.core.listNamespacedPod({ namespace: ns }), (verb, pod) => {
      const name = pod.metadata?.name ?? '';
      const uid = pod.metadata?.uid ?? '';
      if (verb === 'DELETED' || pod.metadata?.deletionTimestamp) {
        if (!this.away.has(name)) this.away.set(name, uid);
      } else if (this.away.has(name) && this.away.get(name) !== uid && ready(pod)) this.away.delete(name);
      if (this.away.size > this.most) this.most = this.away.size;
      if (this.away.size > 1) this.overlaps.push(`${new Date().toISOString()}: ${[...this.away.keys()].sort().join(', ')}`);
    }).start();
    return this;
  }

  stop(): void {
    this.watch?.stop();
  }
}

/**
 * One application cluster in two StatefulSets (sts-pilot.io/application-cluster
 * names it; the elasticsearch hook names it by cluster UUID): both templates
 * changed in the same second, one pod of the cluster away at a time.
 */
describe('disruption budget: one pod of an application cluster away at a time, whichever StatefulSet', function () {
  this.timeout(8 * 60_000);
  let c: Cluster;
  let hook: RecordingHook;
  let ctrl: ControllerProcess;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    hook = await new RecordingHook().start();
  });
  after(async () => {
    await ctrl?.kill('SIGTERM');
    hook?.stop();
  });

  async function rollBoth(ns: string, names: string[], annotations: Record<string, string>, during?: () => Promise<void>): Promise<AwayWatch> {
    await Promise.all(names.map((n) => createAndSettle(c, ns, statefulSet(n, { replicas: 3, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url, ...annotations } }))));
    const from = await Promise.all(names.map(async (n) => (await readSts(c, ns, n)).status?.updateRevision ?? ''));
    const away = await new AwayWatch().start(c, ns);
    await Promise.all(names.map((n, i) => setImage(c, ns, n, `example/app:${i + 2}`)));
    await during?.();
    await Promise.all(names.map((n, i) => waitUntil(`${n} rolled`, 5 * 60_000, () => rolloutFinished(c, ns, n, from[i] ?? ''))));
    away.stop();
    return away;
  }

  it('without a shared cluster, two StatefulSets roll side by side (the count can see two away)', async () => {
    const ns = await namespace(c, 'budget-none');
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    const away = await rollBoth(ns, ['a', 'b'], {});
    await ctrl.kill('SIGTERM');
    console.log(`      [figures] no shared cluster: at most ${away.most} pods away at once`);
    expect(away.most).to.equal(2);
  });

  it('with one: at most one pod away at once; the other StatefulSet waits, naming the pod that holds the budget; the Lease shows the holder', async () => {
    const ns = await namespace(c, 'budget-one');
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    const holders: string[] = [];
    const away = await rollBoth(ns, ['a', 'b'], { 'sts-pilot.io/application-cluster': 'shop' }, async () => {
      // The Lease of the cluster names who is away, for people with kubectl.
      const leases = c.kc.makeApiClient(CoordinationV1Api);
      await waitUntil('the budget Lease to name a holder of this namespace', 60_000, async () => {
        const l = (await leases.listNamespacedLease({ namespace: 'sts-pilot-system', labelSelector: 'sts-pilot.io/budget' })).items;
        const mine = l.map((x) => x.spec?.holderIdentity ?? '').filter((h) => h.startsWith(`${ns}/`));
        holders.push(...mine);
        return mine.length > 0;
      });
    });
    expect(holders[0]).to.match(new RegExp(`^${ns}/[ab]/[ab]-[0-2]$`));
    console.log(`      [figures] one application cluster: at most ${away.most} pod away at once${away.overlaps.length ? `; overlaps ${away.overlaps.join(' | ')}` : ''}`);
    expect(away.most, `overlaps: ${away.overlaps.join(' | ')}`).to.equal(1);
    const waits = [...(await eventsFor(c, ns, 'a')), ...(await eventsFor(c, ns, 'b'))].filter((e) => /waiting for the disruption budget: application cluster shop: .* of .* holds the disruption budget \(1\)/.test(e.message));
    expect(waits.length, 'a hold that names the holder').to.be.greaterThan(0);
    expect(new Set(hook.calls.filter((x) => x.sts.startsWith(`${ns}/`) && x.approved && x.next).map((x) => x.next?.uid)).size, 'pods approved').to.equal(6);
    await ctrl.kill('SIGTERM');
  });

  it('a controller killed while a slot is held: the new one keeps the holder and finishes, one pod away at a time', async () => {
    const ns = await namespace(c, 'budget-kill');
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    let killed = false;
    const away = await rollBoth(ns, ['a', 'b'], { 'sts-pilot.io/application-cluster': 'shop' }, async () => {
      await waitUntil('a first approval', 60_000, async () => hook.calls.some((x) => x.sts.startsWith(`${ns}/`) && x.approved && x.next));
      await ctrl.kill('SIGKILL');
      killed = true;
      await ctrl.spawn();
    });
    expect(killed).to.equal(true);
    console.log(`      [figures] controller SIGKILLed mid-rollout: at most ${away.most} pod away at once`);
    expect(away.most, `overlaps: ${away.overlaps.join(' | ')}`).to.equal(1);
    await ctrl.kill('SIGTERM');
  });

  it('a broken release rolled back under a shared budget: the broken pod, away since its step, is replaced without waiting for itself; the other StatefulSet waits for it', async () => {
    const ns = await namespace(c, 'budget-broken');
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    const annotations = { 'http.sts-pilot.io/url': hook.url, 'sts-pilot.io/application-cluster': 'shop' };
    await Promise.all(['a', 'b'].map((n) => createAndSettle(c, ns, statefulSet(n, { replicas: 3, hook: 'http', annotations }))));
    await setImage(c, ns, 'a', 'example/app:broken');
    await waitUntil('a-2 broken at the top', 60_000, async () => {
      const top = (await c.core.listNamespacedPod({ namespace: ns })).items.find((p) => p.metadata?.name === 'a-2');
      return top?.spec?.containers?.[0]?.image === 'example/app:broken' && !top.metadata?.deletionTimestamp;
    });
    // b's rollout must wait: a-2 is away (it never comes back Ready).
    const fromB = (await readSts(c, ns, 'b')).status?.updateRevision ?? '';
    await setImage(c, ns, 'b', 'example/app:2');
    await waitUntil('b held by the budget, naming a-2', 60_000, async () =>
      (await eventsFor(c, ns, 'b')).some((e) => /waiting for the disruption budget: application cluster shop: a-2 of .*\/a .* holds the disruption budget/.test(e.message)),
    );
    // The rollback replaces the broken a-2 first: the same pod, already away, so no wait for itself.
    const fromA = (await readSts(c, ns, 'a')).status?.updateRevision ?? '';
    await setImage(c, ns, 'a', 'example/app:1');
    await waitUntil('a rolled back', 150_000, () => rolloutFinished(c, ns, 'a', fromA));
    await waitUntil('b rolled after it', 150_000, () => rolloutFinished(c, ns, 'b', fromB));
    await ctrl.kill('SIGTERM');
  });
});
