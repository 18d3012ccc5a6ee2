import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  eventsFor,
  mergePatch,
  namespace,
  partitionOf,
  podsOf,
  readSts,
  RecordingHook,
  setImage,
  statefulSet,
  waitUntil,
} from '../integration/harness.ts';

/**
 * The partition lowered by hand while the controller was not looking (frozen,
 * restarting, busy): the StatefulSet controller has already deleted the pod at
 * the top, and has not recreated it yet (here: a ValidatingAdmissionPolicy
 * forbids new pods; in life: a failing admission webhook, a full quota). When that
 * pod is created it takes the revision its ordinal's side of the partition
 * says. The guard must put the partition back above it, so it returns at the
 * old revision, not at the new one without the hook's approval.
 */
describe('bad input: a partition lowered by hand while the controller was frozen', function () {
  this.timeout(3 * 60_000);
  let c: Cluster;
  let ns: string;
  let hook: RecordingHook;
  let ctrl: ControllerProcess;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    ns = await namespace(c, 'guard', { gate: false }); // the guard alone: partitions are lowered by hand here
    hook = await new RecordingHook().start();
    hook.decide = () => false;
    ctrl = await ControllerProcess.start(c, ['--namespace', ns], 'guard-controller');
  });

  after(async () => {
    if (ctrl?.pid) process.kill(ctrl.pid, 'SIGCONT');
    await ctrl?.kill('SIGKILL');
    hook?.stop();
    await unblock().catch(() => {});
  });

  const policy = (): string => `sts-pilot-test-no-new-pods-${ns}`;
  const block = async (): Promise<void> => {
    const api = c.kc.makeApiClient(AdmissionregistrationV1Api);
    await api.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: policy() },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }] },
          validations: [{ expression: 'false', message: 'no new pods in this namespace (test)' }],
        },
      },
    });
    await api.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: policy() },
        spec: { policyName: policy(), validationActions: ['Deny'], matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } } },
      },
    });
  };
  const unblock = async (): Promise<void> => {
    const api = c.kc.makeApiClient(AdmissionregistrationV1Api);
    await api.deleteValidatingAdmissionPolicyBinding({ name: policy() });
    await api.deleteValidatingAdmissionPolicy({ name: policy() });
  };

  it('a pod deleted and not yet recreated comes back at the old revision: the guard raises the partition above it', async () => {
    await createAndSettle(c, ns, statefulSet('gone', { replicas: 2, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
    const from = (await readSts(c, ns, 'gone')).status?.updateRevision ?? '';
    await setImage(c, ns, 'gone', 'example/app:2');
    await waitUntil('a refusal by the hook', 60_000, async () => hook.calls.some((x) => x.sts === `${ns}/gone` && !x.approved));

    // From now on no pod can be created in the namespace.
    await block();
    await waitUntil('the admission policy to refuse new pods', 30_000, async () =>
      c.core
        .createNamespacedPod({ namespace: ns, body: { metadata: { name: 'probe' }, spec: { containers: [{ name: 'x', image: 'x' }] } } })
        .then(
          async () => {
            await c.core.deleteNamespacedPod({ name: 'probe', namespace: ns, gracePeriodSeconds: 0 });
            return false;
          },
          (e: { code?: number }) => e.code === 403 || e.code === 422,
        ),
    );

    // The controller looks away; someone lowers the partition; the StatefulSet controller deletes pod 1 and cannot recreate it.
    process.kill(ctrl.pid as number, 'SIGSTOP');
    try {
      await mergePatch(c, ns, 'gone', { spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } });
      await waitUntil('pod gone-1 to be deleted and stay gone', 30_000, async () => !(await podsOf(c, ns, 'gone')).some((p) => p.metadata?.name === 'gone-1'));
      await sleep(500);
      expect((await podsOf(c, ns, 'gone')).map((p) => p.metadata?.name)).to.deep.equal(['gone-0']);
    } finally {
      process.kill(ctrl.pid as number, 'SIGCONT');
    }
    const guarded = await waitUntil('the guard', 30_000, async () => {
      const p = partitionOf(await readSts(c, ns, 'gone')) ?? 0;
      return p > 0 ? p : undefined;
    });
    await sleep(1000); // one more reconcile, should it want to raise further
    const partition = partitionOf(await readSts(c, ns, 'gone'));
    const events = (await eventsFor(c, ns, 'gone')).filter((e) => e.reason === 'PartitionGuarded').map((e) => e.message);
    console.log(`      guarded to ${guarded}, partition now ${partition}; ${JSON.stringify(events)}`);

    // Pods may be created again: gone-1 comes back, at whichever revision its side of the partition says.
    await unblock();
    const back = await waitUntil('gone-1 back', 60_000, async () =>
      (await podsOf(c, ns, 'gone')).find((p) => p.metadata?.name === 'gone-1' && !p.metadata.deletionTimestamp),
    );
    expect(partition, 'the partition is above the deleted pod').to.equal(2);
    expect(back.metadata?.labels?.['controller-revision-hash'], 'gone-1 came back at the old revision (no hook approved it)').to.equal(from);
    expect(events.some((m) => /gone-1/.test(m)), 'a PartitionGuarded Event names gone-1').to.equal(true);
    expect(hook.calls.filter((x) => x.approved)).to.deep.equal([]);
    expect(ctrl.alive).to.equal(true);
  });
});
