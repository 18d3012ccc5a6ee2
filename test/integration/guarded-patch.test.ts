import { PatchStrategy, setHeaderOptions, type V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { guardedPatch, isFailedTest, jsonPatchOptions } from '../../lib/kube/guarded-patch.ts';
import { type Cluster, cluster, mergePatch, namespace, readSts, statefulSet } from './harness.ts';

/**
 * The controller's partition patch (lib/kube/guarded-patch.ts) as kube-apiserver
 * answers it: it must survive the status-only write kube-controller-manager
 * makes on every pod event, and be refused, as a failed guard, after any change
 * a decision rests on. Values holding `>` or `&` (our own messages say "3 -> 2")
 * must match the server's encoding.
 */
describe('the guarded partition patch on a real kube-apiserver', function () {
  this.timeout(2 * 60_000);
  let c: Cluster;
  let ns: string;
  let seq = 0;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    ns = await namespace(c, 'guarded-patch', { gate: false }); // writes the partition as a second writer would
  });

  /** A StatefulSet at partition 3, read back as the controller's cache would hold it. */
  async function fresh(annotations: Record<string, string>): Promise<V1StatefulSet> {
    const body = statefulSet(`web-${++seq}`, { replicas: 3, hook: 'noop', annotations });
    body.spec!.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition: 3 } };
    await c.apps.createNamespacedStatefulSet({ namespace: ns, body });
    return readSts(c, ns, body.metadata!.name!);
  }

  async function send(seen: V1StatefulSet, partition: number): Promise<{ partition?: number; refused?: boolean }> {
    const ops = guardedPatch(seen, { 'sts-pilot.io/status': `{"message":"partition ${partition + 1} -> ${partition}"}` }, partition);
    expect(ops, 'a StatefulSet with annotations gets the guarded patch').to.not.equal(undefined);
    try {
      const r = await c.apps.patchNamespacedStatefulSet({ name: seen.metadata!.name!, namespace: ns, body: ops }, jsonPatchOptions());
      return { partition: r.spec?.updateStrategy?.rollingUpdate?.partition };
    } catch (err) {
      expect((err as { code?: number }).code).to.equal(422);
      return { refused: isFailedTest(err) };
    }
  }

  it('survives a status-only write, with values holding ">" and "&" in the annotations it tests', async () => {
    const seen = await fresh({ 'sts-pilot.io/status': '{"message":"partition 4 -> 3"}', 'example.com/url': 'http://h/?a=1&b=<2>' });
    await c.apps.patchNamespacedStatefulSetStatus(
      { name: seen.metadata!.name!, namespace: ns, body: { status: { collisionCount: 1 } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(await send(seen, 2)).to.deep.equal({ partition: 2 });
    // And what it wrote reads back as the controller's next guard will test it.
    expect(await send(await readSts(c, ns, seen.metadata!.name!), 1)).to.deep.equal({ partition: 1 });
  });

  for (const [what, change] of [
    ['an annotation changed (paused)', { metadata: { annotations: { 'sts-pilot.io/paused': 'true' } } }],
    ['a label changed (unsubscribed)', { metadata: { labels: { 'sts-pilot.io/hook': null } } }],
    // A merge patch merges the labels: the template keeps matching the selector.
    ['the spec changed (a new template)', { spec: { template: { metadata: { labels: { v: '2' } } } } }],
    ['the partition was moved by someone else', { spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } }],
  ] as const) {
    it(`is refused, and read as a failed guard, when ${what}`, async () => {
      const seen = await fresh({ 'sts-pilot.io/status': '{"message":"partition 4 -> 3"}' });
      const name = seen.metadata!.name!;
      await mergePatch(c, ns, name, change);
      expect(await send(seen, 2)).to.deep.equal({ refused: true });
      expect((await readSts(c, ns, name)).spec?.updateStrategy?.rollingUpdate?.partition).to.not.equal(2);
    });
  }

  it('is refused when the StatefulSet was deleted and created again under the same name', async () => {
    const seen = await fresh({ 'sts-pilot.io/status': '{}' });
    const name = seen.metadata!.name!;
    await c.apps.deleteNamespacedStatefulSet({ name, namespace: ns });
    const again = statefulSet(name, { replicas: 3, hook: 'noop', annotations: { 'sts-pilot.io/status': '{}' } });
    again.spec!.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition: 3 } };
    for (;;) {
      try {
        await c.apps.createNamespacedStatefulSet({ namespace: ns, body: again });
        break;
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err; // still being deleted
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(await send(seen, 2)).to.deep.equal({ refused: true });
  });
});
