import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
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
  RolloutAudit,
  setImage,
  statefulSet,
  waitUntil,
} from '../integration/harness.ts';

/**
 * Hooks that hang (an application that is down, a gatekeeper that never
 * answers) are bad input too, and there may be more of them than the
 * controller has workers. What other StatefulSets need at that moment must not
 * wait for them: above all the guard, which has to raise a partition that
 * someone lowered by hand before the StatefulSet controller moves pods that
 * no hook approved.
 */
const SLOW = 6; // more hanging hooks than the controller's default 4 workers

describe('bad input: hanging hooks do not delay the guard of another StatefulSet', function () {
  this.timeout(4 * 60_000);
  let c: Cluster;
  let ns: string;
  let hook: RecordingHook;
  let audit: RolloutAudit;
  let ctrl: ControllerProcess;
  let hang: Server;
  const sockets = new Set<Socket>();

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    ns = await namespace(c, 'starve', { gate: false }); // the guard alone: a partition is lowered by hand here
    hook = await new RecordingHook().start();
    hook.decide = () => false;
    hang = createServer(() => {}); // never answers
    hang.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    audit = await new RolloutAudit().start(c, ns);
    // Shipped defaults: 4 workers, 60 s per hook call.
    ctrl = await ControllerProcess.start(c, ['--namespace', ns], 'starve-controller');
  });

  after(async () => {
    await ctrl?.kill('SIGKILL');
    hook?.stop();
    await audit?.stop();
    for (const s of sockets) s.destroy();
    hang?.close();
  });

  it(`with ${SLOW} hooks hanging for 30 s, a partition lowered by hand is raised again before any pod moves unapproved`, async () => {
    const hangUrl = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/step`;
    const slow = Array.from({ length: SLOW }, (_, i) => `slow-${i}`);
    await Promise.all([
      ...slow.map((name) => createAndSettle(c, ns, statefulSet(name, { replicas: 1, hook: 'http', annotations: { 'http.sts-pilot.io/url': hangUrl, 'http.sts-pilot.io/timeout': '30' } }))),
      createAndSettle(c, ns, statefulSet('victim', { replicas: 3, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } })),
    ]);
    const before = await podsOf(c, ns, 'victim');
    // A finalizer plays graceful termination (seconds in a real cluster, 0-200 ms for the test node
    // agent): a pod the StatefulSet controller deletes stays, terminating, until the test lets it go.
    const hold = (name: string, finalizers: string[] | null): Promise<unknown> =>
      c.core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { finalizers } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    for (const p of before) await hold(p.metadata?.name ?? '', ['sts-pilot.io/test-hold']);
    const from = (await readSts(c, ns, 'victim')).status?.updateRevision ?? '';
    await setImage(c, ns, 'victim', 'example/app:2');
    await waitUntil('the victim held by its hook', 60_000, async () => hook.calls.some((x) => x.sts === `${ns}/victim` && !x.approved));
    await Promise.all(slow.map((name) => setImage(c, ns, name, 'example/app:2')));
    await waitUntil(`${Math.min(SLOW, 4)} hanging hook calls`, 30_000, async () => sockets.size >= Math.min(SLOW, 4));

    // Someone lowers the victim's partition by hand.
    const lowered = Date.now();
    await mergePatch(c, ns, 'victim', { spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } });
    const guarded = await waitUntil('the guard to raise the partition again', 60_000, async () =>
      (partitionOf(await readSts(c, ns, 'victim')) ?? 0) > 0 ? Date.now() : undefined,
    ).finally(async () => {
      for (const p of await podsOf(c, ns, 'victim')) await hold(p.metadata?.name ?? '', null).catch(() => {});
    });
    // Let the StatefulSet controller finish whatever it had started, then look.
    await waitUntil('victim pods back and Ready', 60_000, async () => {
      const pods = await podsOf(c, ns, 'victim');
      return pods.length === 3 && pods.every((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'));
    });
    const sts = await readSts(c, ns, 'victim');
    const pods = await podsOf(c, ns, 'victim');
    const moved = pods.filter((p) => p.metadata?.labels?.['controller-revision-hash'] !== from).map((p) => p.metadata?.name);
    const replaced = before.filter((p) => !pods.some((q) => q.metadata?.uid === p.metadata?.uid)).map((p) => p.metadata?.name);
    const guardEvent = (await eventsFor(c, ns, 'victim')).find((e) => e.reason === 'PartitionGuarded');
    console.log(
      `      guard after ${guarded - lowered} ms; partition now ${partitionOf(sts)}; pods replaced: ${JSON.stringify(replaced)}; ` +
        `pods moved to the new revision without approval: ${JSON.stringify(moved)}`,
    );
    expect(guardEvent?.message, 'a PartitionGuarded Event').to.match(/without the hook's approval/);
    expect(guarded - lowered, 'ms until the guard raised the partition').to.be.below(2000);
    expect(moved, 'victim pods at the new revision, none of them approved').to.deep.equal([]);
    expect(replaced.length, 'victim pods the StatefulSet controller replaced before the guard').to.be.at.most(1);
    await audit.caughtUp(c, ns);
    expect(audit.deletions.filter((d) => d.owner === 'victim').length).to.be.at.most(1);
    expect(ctrl.alive).to.equal(true);
  });
});
