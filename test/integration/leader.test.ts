import { CoordinationV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  converged,
  createAndSettle,
  namespace,
  partitionOf,
  PodWatcher,
  RecordingHook,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

const LEASE = ['--lease-duration', '4', '--renew-deadline', '3'];

describe('leader election with two controller replicas', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let ns: string;
  let hook: RecordingHook;
  let pods: PodWatcher;
  const procs: ControllerProcess[] = [];

  const holder = async (): Promise<string | undefined> => {
    const api = c.kc.makeApiClient(CoordinationV1Api);
    try {
      return (await api.readNamespacedLease({ name: ns, namespace: 'sts-pilot-system' })).spec?.holderIdentity || undefined;
    } catch {
      return undefined;
    }
  };
  const byIdentity = (id: string | undefined): ControllerProcess => {
    const p = procs.find((x) => x.identity === id);
    if (!p) throw new Error(`no controller process is ${id}`);
    return p;
  };
  /** Log lines in which a replica wrote to the StatefulSet or called a hook. */
  const actions = (p: ControllerProcess, since = 0): string[] =>
    p.logs
      .filter((l) => new Date(String(l.time)).getTime() >= since)
      .map((l) => String(l.msg))
      .filter((m) => /^(hook approved pod|asking the hook|rollout to .* finished|no rollout in progress)/.test(m));

  /** The series of one StatefulSet or one Pilot in an exposition: name and labels. */
  const perObject = (text: string): string[] =>
    text
      .split('\n')
      .filter((l) => /^sts_pilot_(step_wait_seconds|pilot_heartbeat_timestamp_seconds|statefulset_info)\{/.test(l))
      .map((l) => l.slice(0, l.lastIndexOf(' ')));
  /** A heartbeat on a Pilot, as its in-pod pilot writes it. */
  const heartbeat = async (pod: string): Promise<void> => {
    const api = c.kc.makeApiClient(CustomObjectsApi);
    const pilot = { group: 'sts-pilot.io', version: 'v1alpha1', plural: 'pilots', namespace: ns, name: pod };
    await waitUntil(`the Pilot of ${pod}`, 30_000, async () => api.getNamespacedCustomObject(pilot).catch(() => undefined));
    await api.patchNamespacedCustomObjectStatus(
      { ...pilot, body: { status: { phase: 'Running', heartbeatTime: new Date().toISOString() } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  };

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    ns = await namespace(c, 'leader');
    hook = await new RecordingHook().start();
    pods = await new PodWatcher().start(c, ns);
    procs.push(await ControllerProcess.start(c, ['--namespace', ns, ...LEASE], 'replica-a'));
    procs.push(await ControllerProcess.start(c, ['--namespace', ns, ...LEASE], 'replica-b'));
  });

  after(async () => {
    for (const p of procs) await p.kill('SIGKILL');
    hook?.stop();
    await pods?.stop();
  });

  it('only the leader acts; when it is killed the other takes over and finishes the rollout', async () => {
    const leader = await waitUntil('a leader', 30_000, holder);
    const follower = procs.find((p) => p.identity !== leader) as ControllerProcess;
    const before = await createAndSettle(c, ns, statefulSet('ha', { replicas: 4, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
    const from = before.status?.updateRevision ?? '';
    expect(await byIdentity(leader).metrics()).to.match(/^sts_pilot_leader 1$/m);
    expect(await follower.metrics()).to.match(/^sts_pilot_leader 0$/m);
    // Per-object series come from the leader alone, though both caches hold the Pilot.
    await heartbeat('ha-3');
    const pilotSeries = `sts_pilot_pilot_heartbeat_timestamp_seconds{namespace="${ns}",pilot="ha-3",statefulset="ha"}`;
    await waitUntil('the heartbeat on the leader', 30_000, async () => (await byIdentity(leader).metrics()).includes(pilotSeries));
    await sleep(1000); // the follower's cache has seen the same write by now
    expect(perObject(await follower.metrics()), 'per-object series of the follower').to.deep.equal([]);
    let approvals = 0;
    let killedAt = 0;
    let waitSeries: { leader: string[]; follower: string[] } | undefined;
    hook.decide = async () => {
      if (approvals === 0) waitSeries = { leader: perObject(await byIdentity(leader).metrics()), follower: perObject(await follower.metrics()) };
      if (++approvals === 2) {
        killedAt = Date.now();
        await byIdentity(leader).kill('SIGKILL'); // dies while the hook answers
      }
      return true;
    };
    await setImage(c, ns, 'ha', 'example/app:2');
    const took = await waitUntil('the follower to take the lease', 60_000, async () => ((await holder()) === follower.identity ? Date.now() : undefined));
    await waitUntil('the rollout to finish under the new leader', 120_000, async () => {
      const s = await converged(c, ns, 'ha');
      return s && s.status?.updateRevision !== from && partitionOf(s) === 4;
    });
    expect(actions(byIdentity(leader)).length, 'the leader acted').to.be.greaterThan(0);
    expect(actions(follower).length, 'the follower acted after taking over').to.be.greaterThan(0);
    const early = follower.logs.filter((l) => new Date(String(l.time)).getTime() < killedAt);
    expect(early.map((l) => String(l.msg)).filter((m) => /^(hook approved pod|asking the hook|no rollout in progress)/.test(m)), 'the follower acted while the leader lived').to.deep.equal([]);
    expect(took).to.be.greaterThan(killedAt);
    expect(waitSeries?.leader, 'the leader exports the wait of the rollout it runs').to.include(`sts_pilot_step_wait_seconds{namespace="${ns}",statefulset="ha"}`);
    expect(waitSeries?.leader).to.include(pilotSeries);
    expect(waitSeries?.leader).to.include(`sts_pilot_statefulset_info{namespace="${ns}",statefulset="ha",hook="http"}`);
    expect(waitSeries?.follower, 'the follower exports no per-object series during the rollout').to.deep.equal([]);
    const updated = pods.deletions.filter((d) => d.oldRevision === from).map((d) => d.name);
    expect(updated).to.deep.equal(['ha-3', 'ha-2', 'ha-1', 'ha-0']);
    for (const d of pods.deletions.filter((x) => x.oldRevision === from)) {
      expect(hook.calls.some((x) => x.approved && x.next?.uid === d.oldUid && x.at <= d.at), `${d.name} moved unapproved`).to.equal(true);
    }
    hook.decide = () => true;
  });

  it('a frozen leader (SIGSTOP past its lease) is replaced, and on waking stops without writing', async () => {
    // Bring the killed replica back as a follower first.
    const dead = procs.find((p) => !p.alive);
    if (dead) await dead.spawn();
    const leader = byIdentity(await waitUntil('a leader', 30_000, holder));
    const other = procs.find((p) => p !== leader) as ControllerProcess;
    await createAndSettle(c, ns, statefulSet('frozen', { replicas: 3, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
    let frozenAt = 0;
    hook.decide = (call) => {
      if (call.sts === `${ns}/frozen` && frozenAt === 0) {
        frozenAt = Date.now();
        process.kill(leader.pid as number, 'SIGSTOP');
        return false; // the frozen leader never sees this answer until it wakes
      }
      return true;
    };
    await setImage(c, ns, 'frozen', 'example/app:2');
    await waitUntil('the other replica to take over', 60_000, async () => (await holder()) === other.identity);
    await waitUntil('the rollout to finish under the new leader', 120_000, async () => {
      const s = await converged(c, ns, 'frozen');
      return s && partitionOf(s) === 3 && s.status?.currentRevision === s.status?.updateRevision && s.metadata?.annotations?.['sts-pilot.io/status']?.includes('"Steady"');
    });
    const woke = Date.now();
    process.kill(leader.pid as number, 'SIGCONT');
    await waitUntil('the woken replica to exit', 30_000, async () => !leader.alive);
    expect(leader.exitCode).to.equal(1);
    expect(actions(leader, woke), 'the woken replica acted').to.deep.equal([]);
    expect(leader.logs.some((l) => l.msg === 'stopped leading' && new Date(String(l.time)).getTime() >= woke)).to.equal(true);
    hook.decide = () => true;
    await sleep(500);
  });
});
