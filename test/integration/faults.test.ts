import { Watch } from '@kubernetes/client-node';
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlane } from '../cluster/controlplane.ts';
import {
  auditViolations,
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  type HookCall,
  namespace,
  partitionOf,
  readSts,
  RecordingHook,
  RolloutAudit,
  rolloutFinished,
  setImage,
  statefulSet,
  waitUntil,
} from '../integration/harness.ts';

/**
 * Control-plane faults in the middle of rollouts, on the shared control plane:
 * kube-apiserver restarted, and etcd compacted while it is down so that every
 * watch resumes from a resourceVersion that no longer exists (410 Gone). The
 * controller process must ride through both (same pid), relist, and take no
 * step that the audit (its own watch, and the hook's record) cannot account for.
 *
 * The lease is longer than the shipped default here: the test kube-apiserver
 * takes about 15 s to stop and start again, longer than the default 10 s renew
 * deadline, after which a leader must stop acting (and the shipped binary
 * exits, to be restarted by its Deployment: what the chaos suite proves safe).
 */
const LEASE = ['--lease-duration', '40', '--renew-deadline', '30'];

/** The value of a counter in Prometheus text, summed over the label sets that match. */
function counter(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return sum;
}

/** What a client watching from `resourceVersion` is told: the code of an ERROR event or of the failed request, or 200. */
async function watchFrom(c: Cluster, path: string, resourceVersion: string): Promise<number> {
  const w = new Watch(c.kc);
  return new Promise<number>((resolve) => {
    let settled = false;
    const done = (code: number): void => {
      if (!settled) {
        settled = true;
        resolve(code);
      }
    };
    setTimeout(() => done(200), 5000).unref();
    void w
      .watch(
        path,
        { resourceVersion },
        (type, obj: { code?: number }) => {
          if (type === 'ERROR') done(obj.code ?? 500);
        },
        (err: { statusCode?: number } | null) => done(err?.statusCode ?? 200),
      )
      .then((req) => setTimeout(() => req.abort(), 5500).unref());
  });
}

describe('control-plane faults during rollouts', function () {
  this.timeout(6 * 60_000);
  let c: Cluster;
  let cp: ControlPlane;
  let ns: string;
  let hook: RecordingHook;
  let audit: RolloutAudit;
  let ctrl: ControllerProcess;
  let pid: number | undefined;
  let t0 = Date.now();

  /**
   * Approve only once the audit's own watch has seen the StatefulSet the
   * controller decided on: the audit then cannot miss a step while it reconnects.
   */
  const caughtUp = async (call: HookCall): Promise<boolean> => {
    const name = call.sts.slice(ns.length + 1);
    try {
      await waitUntil(`the audit to see ${call.sts} at ${call.resourceVersion}`, 8000, async () => audit.hasSeen(name, call.resourceVersion));
      return true;
    } catch {
      return false; // held: the controller asks again
    }
  };

  before(async function () {
    this.timeout(80 * 60_000);
    t0 = Date.now();
    c = await cluster();
    // Not skipped (a skipped test would count as passed): it needs a kube-apiserver of its own to restart.
    if (!c.cp) throw new Error('needs the test control plane of its own (it restarts kube-apiserver), not STS_PILOT_USE_EXISTING_CLUSTER');
    cp = c.cp as ControlPlane;
    ns = await namespace(c, 'faults');
    hook = await new RecordingHook().start();
    audit = await new RolloutAudit().start(c, ns);
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, ...LEASE], 'faults-controller');
    pid = ctrl.pid;
  });

  after(async () => {
    await ctrl?.kill('SIGKILL');
    hook?.stop();
    await audit?.stop();
  });

  it('kube-apiserver restarted mid-rollout: the controller rides through without a restart and without a wrong step', async () => {
    const sets = [
      { name: 'restart-a', replicas: 5 },
      { name: 'restart-b', replicas: 4 },
    ];
    await Promise.all(sets.map((s) => createAndSettle(c, ns, statefulSet(s.name, { replicas: s.replicas, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }))));
    const from = new Map<string, string>();
    for (const s of sets) from.set(s.name, (await readSts(c, ns, s.name)).status?.updateRevision ?? '');
    const restartsBefore = counter(await ctrl.metrics(), 'sts_pilot_watch_restarts_total');

    let restart: Promise<void> | undefined;
    let restartStarted = 0;
    let approvalsA = 0;
    hook.decide = async (call) => {
      if (!(await caughtUp(call))) return false;
      await sleep(50);
      if (call.sts === `${ns}/restart-a` && ++approvalsA === 2 && !restart) {
        // The approval reaches the controller just as the apiserver goes away: its patch races the shutdown.
        restartStarted = Date.now();
        restart = cp.restartApiserver();
        await sleep(100);
      }
      return true;
    };
    await Promise.all(sets.map((s) => setImage(c, ns, s.name, 'example/app:2')));
    await waitUntil('the apiserver restart to begin', 60_000, async () => restart !== undefined);
    await restart;
    const outage = (Date.now() - restartStarted) / 1000;
    await waitUntil('both rollouts to finish after the restart', 180_000, async () => {
      for (const s of sets) if (!(await rolloutFinished(c, ns, s.name, from.get(s.name) ?? ''))) return false;
      return true;
    });
    await audit.caughtUp(c, ns);
    console.log(`      kube-apiserver down and back in ${outage.toFixed(1)}s; ${hook.calls.length} hook calls, ${audit.deletions.length} pod updates`);

    expect(ctrl.alive, 'the controller is still running').to.equal(true);
    expect(ctrl.pid, 'the same controller process').to.equal(pid);
    expect(auditViolations(audit, hook.calls, ns, sets.map((s) => s.name), t0)).to.deep.equal([]);
    for (const s of sets) {
      const order = audit.deletions.filter((d) => d.owner === s.name).map((d) => d.name);
      expect(order, `${s.name}: each pod once, highest first`).to.deep.equal(Array.from({ length: s.replicas }, (_, i) => `${s.name}-${s.replicas - 1 - i}`));
      expect(partitionOf(await readSts(c, ns, s.name))).to.equal(s.replicas);
    }
    const restartsAfter = counter(await ctrl.metrics(), 'sts_pilot_watch_restarts_total');
    expect(restartsAfter, 'sts_pilot_watch_restarts_total went up').to.be.greaterThan(restartsBefore);
    expect(ctrl.logs.some((l) => l.msg === 'watch failed; restarting' || l.msg === 'list/watch failed; retrying'), 'a log line says the watch restarted').to.equal(true);
  });

  it('etcd compacted while the watches reconnect: 410 Gone, the controller relists and carries on, audited', async () => {
    await createAndSettle(c, ns, statefulSet('compact-a', { replicas: 4, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
    const fromA = (await readSts(c, ns, 'compact-a')).status?.updateRevision ?? '';
    let released = false;
    let approvedA = 0;
    hook.decide = async (call) => {
      if (!(await caughtUp(call))) return false;
      if (call.sts !== `${ns}/compact-a`) return true;
      if (released) return true;
      return ++approvedA <= 1; // one step, then hold until after the fault
    };
    await setImage(c, ns, 'compact-a', 'example/app:2');
    await waitUntil('compact-a: one step taken, the next one refused', 60_000, async () => {
      const s = await readSts(c, ns, 'compact-a');
      return partitionOf(s) === 3 && s.status?.updatedReplicas === 1 && s.status.readyReplicas === 4 && hook.calls.some((x) => x.sts === `${ns}/compact-a` && !x.approved);
    });
    const staleRv = (await readSts(c, ns, 'compact-a')).metadata?.resourceVersion ?? '';
    const restartsBefore = counter(await ctrl.metrics(), 'sts_pilot_watch_restarts_total');
    const logsBefore = ctrl.logs.length;

    // The fault: the apiserver goes away, every watch starts reconnecting, and etcd forgets the history they would resume from.
    const t = Date.now();
    await cp.stopApiserver();
    const compactedAt = await cp.compactEtcd();
    await cp.startApiserver();
    console.log(`      etcd compacted at revision ${compactedAt} while kube-apiserver was down (${((Date.now() - t) / 1000).toFixed(1)}s)`);
    expect(await watchFrom(c, `/apis/apps/v1/namespaces/${ns}/statefulsets`, staleRv), 'a watch resuming from before the compaction').to.equal(410);

    // Changes that only a relisted cache shows: a new StatefulSet (the controller must hold its partition), its rollout, and the held one released.
    await createAndSettle(c, ns, statefulSet('compact-b', { replicas: 3, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
    const fromB = (await readSts(c, ns, 'compact-b')).status?.updateRevision ?? '';
    await setImage(c, ns, 'compact-b', 'example/app:2');
    released = true;
    await waitUntil('both rollouts to finish after the compaction', 180_000, async () =>
      (await rolloutFinished(c, ns, 'compact-a', fromA)) && (await rolloutFinished(c, ns, 'compact-b', fromB)),
    );

    expect(ctrl.alive, 'the controller is still running').to.equal(true);
    expect(ctrl.pid, 'the same controller process').to.equal(pid);
    await audit.caughtUp(c, ns);
    expect(auditViolations(audit, hook.calls, ns, ['compact-a', 'compact-b'], t0)).to.deep.equal([]);
    expect(audit.deletions.filter((d) => d.owner === 'compact-a').map((d) => d.name)).to.deep.equal(['compact-a-3', 'compact-a-2', 'compact-a-1', 'compact-a-0']);
    expect(audit.deletions.filter((d) => d.owner === 'compact-b').map((d) => d.name)).to.deep.equal(['compact-b-2', 'compact-b-1', 'compact-b-0']);
    expect(counter(await ctrl.metrics(), 'sts_pilot_watch_restarts_total'), 'sts_pilot_watch_restarts_total went up').to.be.greaterThan(restartsBefore);
    // The relist itself must be visible: a watch that expired is not a silent event.
    const relists = ctrl.logs.slice(logsBefore).filter((l) => /relist|\bgone\b|expired/i.test(String(l.msg)));
    expect(relists.length, 'a log line says the controller relisted after 410 Gone').to.be.greaterThan(0);
  });
});
