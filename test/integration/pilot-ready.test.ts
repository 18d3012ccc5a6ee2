import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Informer } from '../../lib/kube/informer.ts';
import { createLogger } from '../../lib/log.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { PilotProcess, readPilotStatus } from '../pilot/harness.ts';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  converged,
  eventsFor,
  namespace,
  partitionOf,
  PartitionRecorder,
  readSts,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

/**
 * Plays the container runtime for the pilot: for every pod of the namespace, a
 * real `sts-pilot pilot` process (identity as the downward API would give it),
 * stopped with SIGTERM when the pod is deleted. Its pre-start hook waits for a
 * file `go-<pod>-<revision>`: until the test writes it, the pilot stays in
 * PreStart, which pilot-ready must treat as not ready.
 */
class PodPilots {
  readonly pilots = new Map<string, PilotProcess>();
  private informer: Informer<V1Pod> | undefined;
  private stopped = false;
  private readonly c: Cluster;
  private readonly ns: string;
  readonly dir: string;

  constructor(c: Cluster, ns: string, dir: string) {
    this.c = c;
    this.ns = ns;
    this.dir = dir;
  }

  go(pod: string, revision: string): void {
    writeFileSync(join(this.dir, `go-${pod}-${revision}`), '');
  }

  async start(): Promise<this> {
    this.informer = new Informer<V1Pod>({
      kc: this.c.kc,
      path: `/api/v1/namespaces/${this.ns}/pods`,
      log: createLogger({ level: 'warn', name: 'pod-pilots' }),
      listPage: (token) => this.c.core.listNamespacedPod({ namespace: this.ns, limit: 500, _continue: token }),
      onChange: (pod, verb) => void this.sync(pod, verb),
    });
    await this.informer.start();
    return this;
  }

  private async sync(pod: V1Pod, verb: string): Promise<void> {
    const uid = pod.metadata?.uid ?? '';
    const running = this.pilots.get(uid);
    if (verb === 'delete' || pod.metadata?.deletionTimestamp) {
      running?.signal('SIGTERM');
      return;
    }
    if (running) return;
    const name = pod.metadata?.name ?? '';
    const revision = pod.metadata?.labels?.['controller-revision-hash'] ?? '';
    const p = await PilotProcess.start({
      c: this.c,
      ns: this.ns,
      pod: name,
      podUid: uid,
      revision,
      flags: ['--heartbeat', '2', '--pre-start', `while [ ! -e "${this.dir}/go-$POD_NAME-$REV" ]; do sleep 0.2; done`],
      env: { REV: revision },
    });
    this.pilots.set(uid, p);
    // A pod seen just before stop(): its pilot started after stop() killed the others.
    if (this.stopped) await p.kill();
  }

  /** Kills every pilot still running, with its application. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
    await Promise.all([...this.pilots.values()].map((p) => p.kill()));
  }
}

describe('pilot: pilot-ready gates a real rollout on the Pilots of real pilot processes', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let ns: string;
  let ctrl: ControllerProcess | undefined;
  let pilots: PodPilots | undefined;
  let partitions: PartitionRecorder | undefined;
  let dir: string;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'pilot-ready');
    dir = mkdtempSync(join(tmpdir(), 'sts-pilot-ready-'));
    pilots = await new PodPilots(c, ns, dir).start();
    partitions = await new PartitionRecorder().start(c, ns);
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
  });

  after(async () => {
    await ctrl?.kill('SIGTERM');
    await pilots?.stop();
    await partitions?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds while the updated pod is not Running healthy at the update revision, and releases when it is', async () => {
    const name = 'gated';
    const p = pilots as PodPilots;
    const sts = statefulSet(name, { replicas: 3, hook: 'pilot-ready', annotations: { 'pilot-ready.sts-pilot.io/max-age': '30' } });
    // The pods of the first revision start at once.
    await c.apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
    const first = await waitUntil('the first revision', 30_000, async () => (await readSts(c, ns, name)).status?.updateRevision);
    for (let i = 0; i < 3; i++) p.go(`${name}-${i}`, first);
    await waitUntil(`${name} to settle with the partition held at 3`, 60_000, async () => {
      const s = await converged(c, ns, name);
      return s && partitionOf(s) === 3;
    });
    await waitUntil('the controller to make a Pilot per pod, Running', 60_000, async () => {
      const st = await Promise.all([0, 1, 2].map((i) => readPilotStatus(c, ns, `${name}-${i}`).catch(() => undefined)));
      return st.every((s) => s?.phase === 'Running' && s.revision === first);
    });

    await setImage(c, ns, name, 'example/app:2');
    const next = await waitUntil('the update revision', 30_000, async () => {
      const s = await readSts(c, ns, name);
      return s.status?.updateRevision !== first ? s.status?.updateRevision : undefined;
    });
    // Step 1 needs no Pilot (nothing updated yet): gated-2 moves, and its new pilot waits in PreStart.
    await waitUntil(`${name}-2 at the new revision, its pilot in PreStart`, 60_000, async () => {
      const s = await readPilotStatus(c, ns, `${name}-2`).catch(() => undefined);
      return s?.phase === 'PreStart' && s.revision === next;
    });
    const starting = await waitUntil('a HookHeld Event naming the reason', 30_000, async () =>
      (await eventsFor(c, ns, name)).find((e) => e.reason === 'HookHeld' && /the Pilot gated-2 is PreStart, not Running/.test(e.message)),
    );
    expect(starting.type, 'a pod starting is a routine wait: Normal, not a Warning').to.equal('Normal');
    await sleep(3000);
    expect(partitionOf(await readSts(c, ns, name)), 'held at 2 while gated-2 is not Running').to.equal(2);

    // gated-2 turns healthy: the rollout moves on; the others are let through as they come.
    const t = Date.now();
    p.go(`${name}-2`, next);
    await waitUntil('the partition to move to 1', 30_000, async () => partitionOf(await readSts(c, ns, name)) === 1);
    console.log(`      [figures] from the Pilot turning Running to the next step: ${Date.now() - t} ms`);
    p.go(`${name}-1`, next);
    p.go(`${name}-0`, next);
    const done = await waitUntil('the rollout to finish', 120_000, async () => {
      const s = await converged(c, ns, name);
      return s && s.status?.currentRevision === next && partitionOf(s) === 3 ? s : undefined;
    });
    expect(partitionOf(done)).to.equal(3);
    const history = partitions?.of(name).filter((x): x is number => x !== undefined) ?? [];
    expect(history).to.deep.equal([3, 2, 1, 0, 3]);
  });
});
