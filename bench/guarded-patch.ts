// node bench/guarded-patch.ts: why sts-pilot's partition patch meets 409 Conflict on most steps,
// and a guard that does not. The controller's merge patch carries the resourceVersion it planned
// on; the StatefulSet controller writes the status (readyReplicas …) on the same pod event, so the
// resourceVersion is stale by the time the patch lands. A JSON Patch whose `test` operations guard
// what the decision rests on (generation = the whole spec, labels, annotations) survives
// status-only writes and still fails on any change that matters. This runs the controller's own
// builder (lib/kube/guarded-patch.ts) and its reading of the refusal. See bench/README.md.
import { AppsV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { guardedPatch, isFailedTest } from '../lib/kube/guarded-patch.ts';
import { startControlPlane } from '../test/cluster/controlplane.ts';
import { statefulSet } from '../test/integration/harness.ts';

const code = (e: unknown): string =>
  `${String((e as { code?: number }).code ?? (e as Error).message)} (read by the controller as ${isFailedTest(e) ? 'a failed guard: plan again' : 'an error'})`;
const cp = await startControlPlane({});
try {
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const apps = kc.makeApiClient(AppsV1Api);
  const ns = 'default';
  const body = statefulSet('web', { replicas: 3, hook: 'noop', annotations: { 'sts-pilot.io/status': '{"state":"Steady"}' } });
  body.spec = { ...body.spec!, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 3 } } };
  await apps.createNamespacedStatefulSet({ namespace: ns, body });
  const seen = await apps.readNamespacedStatefulSet({ name: 'web', namespace: ns });
  // What the StatefulSet controller does after a pod becomes Ready: a status-only write.
  const statusWrite = (n: number) =>
    apps.patchNamespacedStatefulSetStatus({ name: 'web', namespace: ns, body: { status: { collisionCount: n } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const guarded = (partition: number) => {
    const ops = guardedPatch(seen, { 'sts-pilot.io/status': `{"state":"Rolling","partition":${partition}}` }, partition);
    if (!ops) throw new Error('guardedPatch declined a StatefulSet with annotations');
    return ops;
  };


  await statusWrite(1);
  try {
    await apps.patchNamespacedStatefulSet(
      { name: 'web', namespace: ns, body: { metadata: { resourceVersion: seen.metadata?.resourceVersion }, spec: { updateStrategy: { rollingUpdate: { partition: 2 } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    console.log('1. merge patch guarded by resourceVersion, after a status-only write: accepted');
  } catch (e) {
    console.log(`1. merge patch guarded by resourceVersion, after a status-only write: rejected, ${code(e)} (what the controller does today)`);
  }
  await statusWrite(2);
  const r = await apps.patchNamespacedStatefulSet({ name: 'web', namespace: ns, body: guarded(2) }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
  console.log(`2. JSON Patch guarded by test ops, after a status-only write: accepted, partition ${r.spec?.updateStrategy?.rollingUpdate?.partition}`);
  await apps.patchNamespacedStatefulSet(
    { name: 'web', namespace: ns, body: { metadata: { annotations: { 'sts-pilot.io/paused': 'true' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  try {
    await apps.patchNamespacedStatefulSet({ name: 'web', namespace: ns, body: guarded(1) }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    console.log('3. the same JSON Patch after someone paused the StatefulSet: ACCEPTED (the guard failed)');
  } catch (e) {
    console.log(`3. the same JSON Patch after someone paused the StatefulSet: rejected, ${code(e)} (a failed test op is 422 Invalid, not 409)`);
  }
  await apps.patchNamespacedStatefulSet({ name: 'web', namespace: ns, body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'example/app:2' }] } } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
  try {
    const latest = await apps.readNamespacedStatefulSet({ name: 'web', namespace: ns });
    seen.metadata!.annotations = latest.metadata?.annotations; // annotations current, spec not
    await apps.patchNamespacedStatefulSet({ name: 'web', namespace: ns, body: guarded(1) }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    console.log('4. the same JSON Patch after a template change: ACCEPTED (the guard failed)');
  } catch (e) {
    console.log(`4. the same JSON Patch after a template change (generation moved): rejected, ${code(e)}`);
  }
} finally {
  await cp.stop();
}
