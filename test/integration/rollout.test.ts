import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  converged,
  createAndSettle,
  eventsFor,
  Fatal,
  type HookCall,
  mergePatch,
  namespace,
  partitionOf,
  PartitionRecorder,
  type PodUpdate,
  podsOf,
  PodWatcher,
  readSts,
  RecordingHook,
  setImage,
  statefulSet,
  stopCluster,
  waitUntil,
} from './harness.ts';

// Once, after every integration suite: stop what cluster() started.
after(async function () {
  this.timeout(60_000);
  await stopCluster();
});

/** Every pod update of `name` was approved before it happened, for that exact pod, once. */
function expectAudited(deletions: PodUpdate[], calls: HookCall[], ns: string, name: string, fromRevision: string, replicas = Infinity): void {
  // Pods at or beyond the final replica count went away by scale-down, not by an update.
  const ordinal = (pod: string): number => Number(pod.slice(name.length + 1));
  const updates = deletions.filter((d) => d.name.startsWith(`${name}-`) && d.oldRevision === fromRevision && ordinal(d.name) < replicas);
  for (const d of updates) {
    const approval = calls.find((c) => c.approved && c.sts === `${ns}/${name}` && c.next?.uid === d.oldUid);
    expect(approval, `${d.name} (uid ${d.oldUid}) was updated without an approval`).to.not.equal(undefined);
    expect(approval?.at, `${d.name} was updated before its approval`).to.be.at.most(d.at);
  }
  expect(new Set(updates.map((d) => d.name)).size, 'a pod was updated twice').to.equal(updates.length);
}

/** The partition only ever moved down by one, then back up to N at the end. */
function expectStepwise(history: (number | undefined)[], n: number): void {
  const moves = history.filter((p): p is number => p !== undefined);
  expect(moves[0], `partition history ${JSON.stringify(history)}`).to.equal(n);
  expect(moves.at(-1), `partition history ${JSON.stringify(history)}`).to.equal(n);
  for (let i = 1; i < moves.length - 1; i++) {
    expect(moves[i], `partition history ${JSON.stringify(history)}`).to.equal((moves[i - 1] as number) - 1);
  }
}

describe('rollouts on a real control plane (etcd, kube-apiserver, kube-controller-manager)', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let hook: RecordingHook;
  let ctrl: ControllerProcess;
  let ns: string;
  let pods: PodWatcher;
  let partitions: PartitionRecorder;

  before(async function () {
    // The first run builds the control plane from source: allow for it.
    this.timeout(80 * 60_000);
    c = await cluster();
    hook = await new RecordingHook().start();
    ns = await namespace(c, 'rollout');
    pods = await new PodWatcher().start(c, ns);
    partitions = await new PartitionRecorder().start(c, ns);
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
  });

  after(async () => {
    await ctrl?.kill('SIGTERM');
    hook?.stop();
    await pods?.stop();
    await partitions?.stop();
  });

  const httpHook = { 'http.sts-pilot.io/url': '' };
  const withHook = (): Record<string, string> => ({ ...httpHook, 'http.sts-pilot.io/url': hook.url });

  it('rolls 5 replicas one pod at a time through the noop hook and restores partition = replicas', async () => {
    const before = await createAndSettle(c, ns, statefulSet('noop', { replicas: 5, hook: 'noop' }));
    const from = before.status?.updateRevision ?? '';
    await setImage(c, ns, 'noop', 'example/app:2');
    const done = await waitUntil('noop rollout', 120_000, async () => {
      const s = await converged(c, ns, 'noop');
      return s && s.status?.updateRevision !== from && partitionOf(s) === 5 ? s : undefined;
    });
    expect(partitionOf(done)).to.equal(5);
    const order = pods.deletions.filter((d) => d.name.startsWith('noop-') && d.oldRevision === from).map((d) => d.name);
    expect(order).to.deep.equal(['noop-4', 'noop-3', 'noop-2', 'noop-1', 'noop-0']);
    expectStepwise(partitions.of('noop'), 5);
    // The Event follows the write that finished the rollout: wait for it, then count.
    const reasons = await waitUntil('the RolloutFinished Event', 10_000, async () => {
      const r = (await eventsFor(c, ns, 'noop')).map((e) => e.reason);
      return r.includes('RolloutFinished') ? r : undefined;
    });
    expect(reasons.filter((r) => r === 'StepApproved')).to.have.length(5);
  });

  it('asks the hook for each exact pod, highest ordinal first, before it moves, then once more at the end', async () => {
    const before = await createAndSettle(c, ns, statefulSet('audited', { replicas: 5, hook: 'http', annotations: withHook() }));
    const from = before.status?.updateRevision ?? '';
    await setImage(c, ns, 'audited', 'example/app:2');
    await waitUntil('audited rollout', 120_000, async () => {
      const s = await converged(c, ns, 'audited');
      return s && s.status?.updateRevision !== from && partitionOf(s) === 5;
    });
    const calls = hook.calls.filter((x) => x.sts === `${ns}/audited`);
    expect(calls.map((x) => `${x.prev?.name ?? 'null'}>${x.next?.name ?? 'null'}`)).to.deep.equal([
      'null>audited-4',
      'audited-4>audited-3',
      'audited-3>audited-2',
      'audited-2>audited-1',
      'audited-1>audited-0',
      'audited-0>null',
    ]);
    expectAudited(pods.deletions, hook.calls, ns, 'audited', from);
    expectStepwise(partitions.of('audited'), 5);
  });

  it('a hook that says no holds the rollout: no pod changes, the partition stays', async () => {
    await createAndSettle(c, ns, statefulSet('denied', { replicas: 3, hook: 'http', annotations: withHook() }));
    const uids = (await podsOf(c, ns, 'denied')).map((p) => p.metadata?.uid);
    hook.decide = (call) => call.sts !== `${ns}/denied`;
    try {
      await setImage(c, ns, 'denied', 'example/app:2');
      await waitUntil('three refusals', 60_000, async () => hook.calls.filter((x) => x.sts === `${ns}/denied`).length >= 3);
      await sleep(2000);
      expect((await podsOf(c, ns, 'denied')).map((p) => p.metadata?.uid)).to.deep.equal(uids);
      expect(partitionOf(await readSts(c, ns, 'denied'))).to.equal(3);
      const refused = hook.calls.filter((x) => x.sts === `${ns}/denied`);
      expect(refused.every((x) => !x.approved && x.next?.name === 'denied-2' && x.prev === null)).to.equal(true);
      const held = (await eventsFor(c, ns, 'denied')).filter((e) => e.reason === 'HookHeld');
      expect(held, 'one HookHeld Event, not one per retry').to.have.length(1);
      expect(held[0]?.message).to.match(/http holds pod denied-2: .* answered 503: test hook says no/);
      expect(held[0]?.type, 'a refusal is not a routine wait').to.equal('Warning');
      const wait = new RegExp(`^sts_pilot_step_wait_seconds\\{namespace="${ns}",statefulset="denied"\\} ([0-9.e+-]+)$`, 'm').exec(await ctrl.metrics());
      expect(Number(wait?.[1]), 'the step wait metric of the held rollout').to.be.greaterThan(1);
      expect(await ctrl.metrics()).to.match(/^sts_pilot_hook_calls_total\{hook="http",outcome="held"\} [1-9]/m);
    } finally {
      hook.decide = () => true;
    }
    await waitUntil('denied rollout after approval', 120_000, async () => {
      const s = await converged(c, ns, 'denied');
      return s && partitionOf(s) === 3 && s.status?.updateRevision === s.status?.currentRevision;
    });
  });

  it('survives SIGKILL at any moment: no step skipped or repeated', async () => {
    const before = await createAndSettle(c, ns, statefulSet('killed', { replicas: 5, hook: 'http', annotations: withHook() }));
    const from = before.status?.updateRevision ?? '';
    // Kill the controller while it waits for an answer, and right after approvals.
    let killsWanted = 4;
    hook.decide = async (call) => {
      if (call.sts !== `${ns}/killed` || killsWanted === 0) return true;
      killsWanted--;
      if (killsWanted % 2 === 0) {
        await ctrl.kill('SIGKILL'); // mid-call: the answer never arrives
        return true;
      }
      setTimeout(() => void ctrl.kill('SIGKILL'), 20); // just after approving
      return true;
    };
    await setImage(c, ns, 'killed', 'example/app:2');
    let restarts = 0;
    await waitUntil('killed rollout', 180_000, async () => {
      if (!ctrl.alive) {
        restarts++;
        // Killed again while starting is part of the test, not a failure.
        await ctrl.spawn().catch((e: unknown) => {
          if (!(e instanceof Fatal)) throw e;
        });
      }
      const s = await converged(c, ns, 'killed');
      return s && s.status?.updateRevision !== from && partitionOf(s) === 5;
    });
    hook.decide = () => true;
    expect(restarts).to.be.at.least(4);
    expectAudited(pods.deletions, hook.calls, ns, 'killed', from);
    const updated = pods.deletions.filter((d) => d.name.startsWith('killed-') && d.oldRevision === from).map((d) => d.name);
    expect(updated).to.deep.equal(['killed-4', 'killed-3', 'killed-2', 'killed-1', 'killed-0']);
    expectStepwise(partitions.of('killed'), 5);
  });

  it('the paused annotation holds a rollout until it is removed', async () => {
    await createAndSettle(c, ns, statefulSet('paused', { replicas: 3, hook: 'http', annotations: withHook() }));
    await mergePatch(c, ns, 'paused', { metadata: { annotations: { 'sts-pilot.io/paused': 'true' } } });
    const changed = Date.now();
    await setImage(c, ns, 'paused', 'example/app:2');
    await waitUntil('the new revision observed', 30_000, async () => {
      const s = await readSts(c, ns, 'paused');
      return s.status?.observedGeneration === s.metadata?.generation && s.status?.updateRevision !== s.status?.currentRevision;
    });
    // The controller looked at the changed StatefulSet and held for the pause (rule 1 comes first).
    await ctrl.reconciled(`${ns}/paused`, changed, /paused by annotation/);
    expect(hook.calls.filter((x) => x.sts === `${ns}/paused`)).to.have.length(0);
    expect(partitionOf(await readSts(c, ns, 'paused'))).to.equal(3);
    expect((await eventsFor(c, ns, 'paused')).map((e) => e.reason)).to.include('Paused');
    await mergePatch(c, ns, 'paused', { metadata: { annotations: { 'sts-pilot.io/paused': null } } });
    await waitUntil('paused rollout after resume', 120_000, async () => {
      const s = await converged(c, ns, 'paused');
      return s && partitionOf(s) === 3;
    });
    expect(hook.approvals(`${ns}/paused`)).to.have.length(4);
  });

  it('removing the label mid-rollout stops every write and says so', async () => {
    await createAndSettle(c, ns, statefulSet('unsub', { replicas: 4, hook: 'http', annotations: withHook() }));
    let approvals = 0;
    hook.decide = (call) => call.sts !== `${ns}/unsub` || ++approvals <= 1;
    await setImage(c, ns, 'unsub', 'example/app:2');
    await waitUntil('first step', 60_000, async () => partitionOf(await readSts(c, ns, 'unsub')) === 3);
    await waitUntil('a refusal of the second step', 60_000, async () => hook.calls.some((x) => x.sts === `${ns}/unsub` && !x.approved));
    await mergePatch(c, ns, 'unsub', { metadata: { labels: { 'sts-pilot.io/hook': null } } });
    await waitUntil('Unsubscribed Event', 30_000, async () => (await eventsFor(c, ns, 'unsub')).some((e) => e.reason === 'Unsubscribed'));
    // A hook call already in flight when the label went may still land; none may start after.
    await sleep(1000);
    const callsAtRemoval = hook.calls.filter((x) => x.sts === `${ns}/unsub`).length;
    const annotation = (await readSts(c, ns, 'unsub')).metadata?.annotations?.['sts-pilot.io/status'];
    await sleep(4000);
    const after = await readSts(c, ns, 'unsub');
    expect(partitionOf(after)).to.equal(3);
    expect(after.metadata?.annotations?.['sts-pilot.io/status']).to.equal(annotation);
    expect(hook.calls.filter((x) => x.sts === `${ns}/unsub`)).to.have.length(callsAtRemoval);
    const ev = (await eventsFor(c, ns, 'unsub')).find((e) => e.reason === 'Unsubscribed');
    expect(ev?.message).to.match(/leaves its partition at 3/);
    hook.decide = () => true;
  });

  it('scale up during a rollout: new pods come at the update revision, the rollout finishes at the new size', async () => {
    const before = await createAndSettle(c, ns, statefulSet('grow', { replicas: 3, hook: 'http', annotations: withHook() }));
    const from = before.status?.updateRevision ?? '';
    let approvals = 0;
    let gate = false;
    hook.decide = (call) => call.sts !== `${ns}/grow` || gate || ++approvals <= 1;
    await setImage(c, ns, 'grow', 'example/app:2');
    await waitUntil('first step', 60_000, async () => partitionOf(await readSts(c, ns, 'grow')) === 2);
    await mergePatch(c, ns, 'grow', { spec: { replicas: 5 } });
    await waitUntil('5 pods', 60_000, async () => (await podsOf(c, ns, 'grow')).length === 5);
    gate = true;
    const done = await waitUntil('grow rollout', 120_000, async () => {
      const s = await converged(c, ns, 'grow');
      return s && partitionOf(s) === 5 ? s : undefined;
    });
    expect(done.status?.replicas).to.equal(5);
    expectAudited(pods.deletions, hook.calls, ns, 'grow', from);
    hook.decide = () => true;
  });

  it('scale down during a rollout: the removed pods are not waited for, the rest roll', async () => {
    const before = await createAndSettle(c, ns, statefulSet('shrink', { replicas: 5, hook: 'http', annotations: withHook() }));
    const from = before.status?.updateRevision ?? '';
    let approvals = 0;
    let gate = false;
    hook.decide = (call) => call.sts !== `${ns}/shrink` || gate || ++approvals <= 1;
    await setImage(c, ns, 'shrink', 'example/app:2');
    await waitUntil('first step', 60_000, async () => partitionOf(await readSts(c, ns, 'shrink')) === 4);
    await mergePatch(c, ns, 'shrink', { spec: { replicas: 2 } });
    await waitUntil('2 pods', 60_000, async () => (await podsOf(c, ns, 'shrink')).length === 2);
    gate = true;
    await waitUntil('shrink rollout', 120_000, async () => {
      const s = await converged(c, ns, 'shrink');
      return s && partitionOf(s) === 2;
    });
    expectAudited(pods.deletions, hook.calls, ns, 'shrink', from, 2);
    hook.decide = () => true;
  });

  it('a rollback done the documented way (pause, raise partition, revert, resume) asks the hook for every reverted pod', async () => {
    const v1 = await createAndSettle(c, ns, statefulSet('back', { replicas: 4, hook: 'http', annotations: withHook() }));
    const rev1 = v1.status?.updateRevision ?? '';
    let approvals = 0;
    hook.decide = (call) => call.sts !== `${ns}/back` || ++approvals <= 2;
    await setImage(c, ns, 'back', 'example/app:2');
    await waitUntil('two steps', 60_000, async () => {
      const s = await readSts(c, ns, 'back');
      return partitionOf(s) === 2 && s.status?.updatedReplicas === 2 && s.status.readyReplicas === 4;
    });
    const rev2 = (await readSts(c, ns, 'back')).status?.updateRevision ?? '';
    await mergePatch(c, ns, 'back', { metadata: { annotations: { 'sts-pilot.io/paused': 'true' } }, spec: { updateStrategy: { rollingUpdate: { partition: 4 } } } });
    await setImage(c, ns, 'back', 'example/app:1');
    await waitUntil('revision back to v1', 30_000, async () => (await readSts(c, ns, 'back')).status?.updateRevision === rev1);
    const callsBefore = hook.calls.length;
    hook.decide = () => true;
    await mergePatch(c, ns, 'back', { metadata: { annotations: { 'sts-pilot.io/paused': null } } });
    await waitUntil('rollback converged', 120_000, async () => {
      const s = await converged(c, ns, 'back');
      return s && s.status?.updateRevision === rev1 && partitionOf(s) === 4;
    });
    const rollbackCalls = hook.calls.slice(callsBefore).filter((x) => x.sts === `${ns}/back`);
    expect(rollbackCalls.map((x) => x.next?.name ?? 'null')).to.deep.equal(['back-3', 'back-2', 'null']);
    expectAudited(pods.deletions, hook.calls, ns, 'back', rev2);
  });

  it('OnDelete: the controller deletes each approved pod itself, one at a time', async () => {
    const before = await createAndSettle(c, ns, statefulSet('ondel', { replicas: 3, hook: 'http', annotations: withHook(), onDelete: true }));
    const from = before.status?.updateRevision ?? '';
    await setImage(c, ns, 'ondel', 'example/app:2');
    await waitUntil('OnDelete rollout', 120_000, async () => {
      const s = await readSts(c, ns, 'ondel');
      const p = await podsOf(c, ns, 'ondel');
      return (
        p.length === 3 &&
        p.every((x) => x.metadata?.labels?.['controller-revision-hash'] === s.status?.updateRevision && !x.metadata?.deletionTimestamp) &&
        s.status?.updateRevision !== from &&
        hook.calls.some((x) => x.sts === `${ns}/ondel` && x.next === null && x.approved) &&
        !s.metadata?.annotations?.['sts-pilot.io/status']?.includes('"rollout"')
      );
    });
    const calls = hook.calls.filter((x) => x.sts === `${ns}/ondel`);
    expect(calls.map((x) => x.next?.name ?? 'null')).to.deep.equal(['ondel-2', 'ondel-1', 'ondel-0', 'null']);
    expectAudited(pods.deletions, hook.calls, ns, 'ondel', from);
  });

  it('an unknown hook or bad options hold with an Event and never crash the controller', async () => {
    await c.apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSet('bad', { replicas: 2, hook: 'no-such-hook' }) });
    await waitUntil('bad to be held at P=N', 60_000, async () => partitionOf(await readSts(c, ns, 'bad')) === 2);
    await setImage(c, ns, 'bad', 'example/app:2');
    await waitUntil('Held Event', 30_000, async () =>
      (await eventsFor(c, ns, 'bad')).some((e) => e.reason === 'Held' && /unknown hook "no-such-hook"/.test(e.message)),
    );
    await mergePatch(c, ns, 'bad', { metadata: { labels: { 'sts-pilot.io/hook': 'http' }, annotations: { 'http.sts-pilot.io/url': 'ftp://nope' } } });
    await waitUntil('options Event', 30_000, async () =>
      (await eventsFor(c, ns, 'bad')).some((e) => e.reason === 'Held' && /http\.sts-pilot\.io\/url/.test(e.message)),
    );
    await sleep(1000);
    expect(partitionOf(await readSts(c, ns, 'bad'))).to.equal(2);
    expect(ctrl.alive).to.equal(true);
    expect(ctrl.logs.some((l) => /unknown hook/.test(String(l.msg)))).to.equal(true);
  });
});
