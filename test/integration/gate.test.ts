import { PatchStrategy, setHeaderOptions, type V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { rng } from '../rng.ts';
import {
  applyManifest,
  type Cluster,
  cluster,
  ControllerProcess,
  converged,
  createAndSettle,
  eventsFor,
  expectedGateMode,
  gateManifest,
  type HookCall,
  mergePatch,
  namespace,
  partitionOf,
  type PodMove,
  podsOf,
  readSts,
  RecordingHook,
  RolloutAudit,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Moves (a pod gone at one revision, back at another) that no approval of that
 * very pod, to that very revision, preceded: what the product promises never happens.
 */
function unapproved(moves: PodMove[], calls: readonly HookCall[]): PodMove[] {
  return moves.filter(
    (m) => !calls.some((c) => c.approved && c.next?.uid === m.oldUid && c.answeredAt <= m.at && c.updateRevision === m.newRevision),
  );
}

/** Prints the moves of `names` once the audit has caught up with the API server (moves() is read right after). */
async function tally(c: Cluster, ns: string, audit: RolloutAudit, calls: readonly HookCall[], ...names: string[]): Promise<void> {
  await audit.caughtUp(c, ns);
  const moves = names.flatMap((n) => audit.moves(n));
  console.log(`      ${names.join(', ')}: ${moves.length} pod moves, ${unapproved(moves, calls).length} unapproved`);
  if (process.env.STS_PILOT_AUDIT_DEBUG) {
    const mine = (o: { owner: string }): boolean => names.includes(o.owner);
    console.log(JSON.stringify({ deletions: audit.deletions.filter(mine), creations: audit.creations.filter(mine), calls: calls.filter((x) => names.some((n) => x.sts === `${ns}/${n}`)).map((x) => ({ next: x.next?.name, uid: x.next?.uid, ok: x.approved, at: x.answeredAt, rev: x.updateRevision })) }, null, 1));
  }
}

/**
 * At least `n` pods run the revision being rolled to, by a status written for
 * the current generation (right after a template change the status still
 * counts the pods of the last rollout as updated).
 */
async function updatedAtLeast(c: Cluster, ns: string, name: string, n: number): Promise<boolean> {
  const s = await readSts(c, ns, name);
  const st = s.status;
  return st?.observedGeneration === s.metadata?.generation && st?.updateRevision !== st?.currentRevision && (st?.updatedReplicas ?? 0) >= n;
}

/** The rollout is over: every pod Ready at the update revision, partition back at replicas, no mark left. */
async function settled(c: Cluster, ns: string, name: string): Promise<V1StatefulSet | undefined> {
  const s = await converged(c, ns, name);
  if (!s || partitionOf(s) !== (s.spec?.replicas ?? 1)) return undefined;
  if (s.metadata?.annotations?.['sts-pilot.io/status']?.includes('"rollout"')) return undefined;
  return s;
}

/**
 * The gate modes (docs/install.md, "Kubernetes versions"). With MutatingAdmissionPolicy
 * (1.36+, or its beta on 1.34/1.35) the API server holds an unsafe write; with
 * ValidatingAdmissionPolicy only (1.30–1.35) it refuses it, saying how to write it,
 * and the tests then write it that way. Everything after the write is the same.
 */
const refusing = (c: Cluster): boolean => c.gateMode === 'validating-only';
/** The manifest of the gate this cluster runs (the suite installs it at start). */
const shipped = (c: Cluster): string => gateManifest(c.gateMode === undefined || c.gateMode === 'none' ? 'mutating-v1' : c.gateMode);

/** A subscribed StatefulSet as the validating gate wants it created: partition = replicas (as statefulset-pilot manifests always were). */
function held(c: Cluster, sts: V1StatefulSet): V1StatefulSet {
  const spec = sts.spec as NonNullable<V1StatefulSet['spec']>;
  if (!refusing(c) || spec.updateStrategy?.type === 'OnDelete') return sts;
  spec.updateStrategy = { ...spec.updateStrategy, type: 'RollingUpdate', rollingUpdate: { ...spec.updateStrategy?.rollingUpdate, partition: spec.replicas ?? 1 } };
  return sts;
}

/** A new image, written as this cluster's gate wants: held by the API server, or with partition = replicas in the same write. */
async function writeImage(c: Cluster, ns: string, name: string, image: string): Promise<void> {
  if (!refusing(c)) return setImage(c, ns, name, image);
  const n = (await readSts(c, ns, name)).spec?.replicas ?? 1;
  await c.apps.patchNamespacedStatefulSet(
    { name, namespace: ns, body: { spec: { updateStrategy: { rollingUpdate: { partition: n } }, template: { spec: { containers: [{ name: 'app', image }] } } } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

/** The API server's refusal of a write: its message, or a failed expectation when the write went through. */
async function refusal(write: Promise<unknown>): Promise<string> {
  const err = await write.then(
    () => undefined,
    (e: unknown) => e as { code?: number; body?: unknown; stderr?: string },
  );
  expect(err, 'the write was refused').to.not.equal(undefined);
  if (err?.stderr !== undefined) return err.stderr;
  expect(err?.code, 'refused').to.equal(403);
  // The Status's message, unescaped (the body may come as its JSON text).
  let body: unknown = err?.body;
  if (typeof body === 'string') body = JSON.parse(body) as unknown;
  return String((body as { message?: unknown } | undefined)?.message ?? JSON.stringify(body));
}

/** The refusal of a write, or undefined when it went through. */
const refusalOf = (p: Promise<unknown>): Promise<{ code?: number; body: string } | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => {
      const err = e as { code?: number; body?: unknown };
      return { code: err.code, body: typeof err.body === 'string' ? err.body : JSON.stringify(err.body) };
    },
  );

const SEED = Number(process.env.STS_PILOT_GATE_SEED ?? Date.now() % 1_000_000_000);

/**
 * Four StatefulSets at once, each rolled to a new image and reverted to the
 * previous one at a random moment of the rollout (`kubectl apply` of the old
 * manifest does the same write), `rounds` times each.
 */
async function revertStorm(c: Cluster, ns: string, hook: RecordingHook, audit: RolloutAudit, rounds: number, seed: number, gated: boolean) {
  const rand = rng(seed);
  const names = ['r0', 'r1', 'r2', 'r3'];
  const withHook = { 'http.sts-pilot.io/url': hook.url };
  // Without the gate (its namespace left out), the plain write: what the guard alone must catch.
  const write = gated ? writeImage : setImage;
  await Promise.all(names.map((n) => createAndSettle(c, ns, gated ? held(c, statefulSet(n, { replicas: 5, hook: 'http', annotations: withHook })) : statefulSet(n, { replicas: 5, hook: 'http', annotations: withHook }))));
  const waits = names.map(() => Array.from({ length: rounds }, () => 300 + Math.floor(rand() * 4500)));
  let reverts = 0;
  await Promise.all(
    names.map(async (n, i) => {
      for (let r = 0; r < rounds; r++) {
        await write(c, ns, n, `example/app:${n}-${r + 2}`);
        await sleep(waits[i]?.[r] ?? 1000);
        await write(c, ns, n, 'example/app:1');
        reverts++;
        await waitUntil(`${n} back at example/app:1 (round ${r + 1})`, 120_000, () => settled(c, ns, n));
      }
    }),
  );
  await audit.caughtUp(c, ns);
  const moves = names.flatMap((n) => audit.moves(n));
  return { names, reverts, moves, unapproved: unapproved(moves, hook.calls) };
}

describe('the gate: admission policies, the guard, broken releases, undo, ordinals.start', function () {
  this.timeout(6 * 60_000);
  let c: Cluster;
  let hook: RecordingHook;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    hook = await new RecordingHook().start();
    console.log(`      gate seed ${SEED} (replay: STS_PILOT_GATE_SEED=${SEED}); Kubernetes ${c.cp?.version.gitVersion ?? '(existing cluster)'}, gate mode ${c.gateMode}`);
  });
  after(() => hook?.stop());

  describe('with the admission policies (as shipped)', () => {
    let ns: string;
    let ctrl: ControllerProcess;
    let audit: RolloutAudit;
    const withHook = (): Record<string, string> => ({ 'http.sts-pilot.io/url': hook.url });

    before(async () => {
      ns = await namespace(c, 'gate');
      audit = await new RolloutAudit().start(c, ns);
      ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    });
    after(async () => {
      await ctrl?.kill('SIGTERM');
      await audit?.stop();
    });

    it('says at startup that the API server keeps the gate shut, and in which mode', async () => {
      const mode = c.gateMode ?? '';
      await waitUntil('the gate mode', 60_000, async () => ctrl.logs.some((l) => String(l.msg).startsWith(`admission gate mode ${mode}:`)));
      const line = ctrl.logs.find((l) => String(l.msg).startsWith('admission gate mode'));
      if (process.env.STS_PILOT_GATE_MODE) {
        // A weaker gate installed on purpose: said, with what to install instead.
        expect((line?.problems as string[] | undefined)?.join('; ')).to.include(`${mode} is installed, but this API server can run ${String(line?.capable)}`);
      } else {
        expect(line?.capable, 'the strongest gate this server serves is installed').to.equal(mode);
        expect(line?.problems).to.equal(undefined);
      }
      const metrics = await ctrl.metrics();
      expect(metrics).to.match(new RegExp(`^sts_pilot_admission_gate_mode\\{mode="${mode}"\\} 1$`, 'm'));
      expect(metrics).to.match(/^sts_pilot_admission_gate_mode\{mode="none"\} 0$/m);
      const { stdout } = await run(process.execPath, ['cmd/sts-pilot.ts', 'status', '--gate', '-n', ns, '--kubeconfig', c.kubeconfigPath], { cwd: root });
      expect(stdout).to.include(`admission gate mode ${mode}:`);
      // The gate check judges the policies of the mode installed (lib/kube/gate-monitor.ts): enforced in every mode.
      await waitUntil('the gate check', 60_000, async () => ctrl.logs.some((l) => String(l.msg).startsWith('admission gate installed')));
      expect(await ctrl.metrics()).to.match(/^sts_pilot_admission_gate 1$/m);
      expect(await fetch(`http://127.0.0.1:${ctrl.probePort}/readyz`).then((r) => r.text())).to.match(/admission gate: enforced/);
    });

    it('a template reverted at random moments of 20 rollouts moves no pod without an approval of that pod', async () => {
      const r = await revertStorm(c, ns, hook, audit, 5, SEED, true);
      console.log(`      ${r.reverts} reverts, ${r.moves.length} pod moves, ${r.unapproved.length} unapproved`);
      expect(r.reverts).to.equal(20);
      expect(r.moves.length, 'the rollouts moved pods').to.be.greaterThan(20);
      expect(r.unapproved.map((m) => `${m.name} ${m.oldRevision} -> ${m.newRevision}`)).to.deep.equal([]);
    });

    it('`kubectl rollout undo` and `kubectl apply` of the old manifest mid-rollout hold the partition in the same write', async () => {
      const sts = held(c, statefulSet('undo', { replicas: 4, hook: 'http', annotations: withHook() }));
      await createAndSettle(c, ns, sts);
      const kubectl = (args: string[]): Promise<{ stdout: string }> =>
        run(join(c.cp?.binDir ?? '', 'kubectl'), ['--kubeconfig', c.kubeconfigPath, '-n', ns, ...args]);
      // What the write itself left, as the audit's own watch saw that generation first.
      const partitionWritten = async (generation: number): Promise<number | undefined> => {
        const o = await waitUntil(`generation ${generation} seen`, 10_000, async () => audit.of('undo').find((x) => x.generation === generation));
        return o.partition;
      };
      // kubectl rollout undo, after two pods moved.
      // The hook holds while the person writes, so the next generation is theirs.
      const holdUndo = async (): Promise<number> => {
        hook.decide = (call) => call.sts !== `${ns}/undo`;
        const since = hook.calls.length;
        await waitUntil('the hook holding undo', 30_000, async () => hook.calls.slice(since).some((x) => x.sts === `${ns}/undo` && !x.approved));
        return (await readSts(c, ns, 'undo')).metadata?.generation ?? 0;
      };
      // Where the gate only refuses, the unsafe write is refused with the safe one, which the test then runs.
      // A write that also lowers the partition (an apply without it) may be refused by
      // sts-pilot-partition-gate first: both say what would happen and name `sts-pilot undo`.
      const unsafe = async (args: string[], safe: () => Promise<unknown>, lowersPartition = false): Promise<void> => {
        if (!refusing(c)) {
          await kubectl(args);
          return;
        }
        const message = await refusal(kubectl(args));
        expect(message).to.match(/sts-pilot holds the partition of StatefulSet .*\/undo.* would let pods move without the approval of its hook/);
        if (!lowersPartition) expect(message).to.include('Set spec.updateStrategy.rollingUpdate.partition: 4 in the same write');
        expect(message).to.include(`sts-pilot undo undo -n ${ns}`);
        await safe();
      };
      await writeImage(c, ns, 'undo', 'example/app:2');
      await waitUntil('two pods at the new revision', 60_000, () => updatedAtLeast(c, ns, 'undo', 2));
      let generation = await holdUndo();
      await unsafe(['rollout', 'undo', 'statefulset/undo'], () =>
        run(process.execPath, ['cmd/sts-pilot.ts', 'undo', 'undo', '-n', ns, '--kubeconfig', c.kubeconfigPath], { cwd: root }),
      );
      hook.decide = () => true;
      expect(await partitionWritten(generation + 1), 'the undo write itself held the partition').to.equal(4);
      await waitUntil('undo rolled back', 120_000, () => settled(c, ns, 'undo'));
      // kubectl apply of the manifest as first applied (no partition in it), after one pod moved.
      const bare = statefulSet('undo', { replicas: 4, hook: 'http', annotations: withHook() });
      const file = join(tmpdir(), `sts-pilot-undo-${process.pid}.json`);
      const heldFile = join(tmpdir(), `sts-pilot-undo-held-${process.pid}.json`);
      writeFileSync(file, JSON.stringify({ ...bare, metadata: { ...bare.metadata, namespace: ns } }));
      writeFileSync(heldFile, JSON.stringify({ ...sts, metadata: { ...sts.metadata, namespace: ns } }));
      await kubectl(['apply', '-f', refusing(c) ? heldFile : file]);
      await writeImage(c, ns, 'undo', 'example/app:3');
      await waitUntil('one pod at the new revision', 60_000, () => updatedAtLeast(c, ns, 'undo', 1));
      generation = await holdUndo();
      await unsafe(['apply', '-f', file], () => kubectl(['apply', '-f', heldFile]), true);
      hook.decide = () => true;
      expect(await partitionWritten(generation + 1), 'the apply itself held the partition').to.equal(4);
      await waitUntil('apply rolled back', 120_000, () => settled(c, ns, 'undo'));
      await tally(c, ns, audit, hook.calls, 'undo');
      const bad = unapproved(audit.moves('undo'), hook.calls);
      expect(bad.map((m) => `${m.name} ${m.oldRevision} -> ${m.newRevision}`)).to.deep.equal([]);
      expect(audit.moves('undo').length, 'pods moved there and back, each approved').to.be.at.least(4);
    });

    it('a hand-lowered partition is refused with how to take over; paused, it is allowed', async () => {
      await createAndSettle(c, ns, held(c, statefulSet('hand', { replicas: 3, hook: 'http', annotations: withHook() })));
      hook.decide = (call) => call.sts !== `${ns}/hand`;
      try {
        await writeImage(c, ns, 'hand', 'example/app:2');
        const err = await mergePatch(c, ns, 'hand', { spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } }).then(
          () => undefined,
          (e: unknown) => e as { code?: number; body?: unknown },
        );
        expect(err?.code, 'refused').to.equal(403);
        const body = typeof err?.body === 'string' ? err.body : JSON.stringify(err?.body);
        expect(body).to.match(/sts-pilot holds the partition of StatefulSet .*\/hand: lowering it from 3 to 0 would let pods move without the approval of its hook/);
        expect(body).to.include(`sts-pilot pause hand -n ${ns}`);
        expect(partitionOf(await readSts(c, ns, 'hand'))).to.equal(3);
        // A person who took the wheel may do it.
        await mergePatch(c, ns, 'hand', { metadata: { annotations: { 'sts-pilot.io/paused': 'true' } }, spec: { updateStrategy: { rollingUpdate: { partition: 2 } } } });
        expect(partitionOf(await readSts(c, ns, 'hand'))).to.equal(2);
        // The hook keeps saying no until hand-2 has moved: an approval of it
        // answered in the meantime would make its move look approved.
        await waitUntil('hand-2 moved by hand', 60_000, () => updatedAtLeast(c, ns, 'hand', 1));
      } finally {
        hook.decide = () => true;
      }
      await mergePatch(c, ns, 'hand', { metadata: { annotations: { 'sts-pilot.io/paused': null } } });
      await waitUntil('hand rollout', 120_000, () => settled(c, ns, 'hand'));
      await tally(c, ns, audit, hook.calls, 'hand');
      // Paused, the person lowered it to 2: hand-2 moved by their hand; nothing else without the hook.
      expect(unapproved(audit.moves('hand'), hook.calls).map((m) => m.name)).to.deep.equal(['hand-2']);
    });

    it('the label added in the middle of a native rollout holds the partition in the same write', async () => {
      const sts = statefulSet('native', { replicas: 5 });
      await createAndSettle(c, ns, sts);
      await setImage(c, ns, 'native', 'example/app:2');
      await waitUntil('a native rollout in flight', 60_000, () => updatedAtLeast(c, ns, 'native', 1));
      const subscribe = { metadata: { labels: { 'sts-pilot.io/hook': 'http' }, annotations: withHook() } };
      if (refusing(c)) {
        const message = await refusal(mergePatch(c, ns, 'native', subscribe));
        expect(message).to.match(/native while its hook approves each pod, .*: subscribing it with partition 0 would let pods move/);
        expect(message).to.include('Set spec.updateStrategy.rollingUpdate.partition: 5 in the same write');
      }
      const labelled = await mergePatch(c, ns, 'native', refusing(c) ? { ...subscribe, spec: { updateStrategy: { rollingUpdate: { partition: 5 } } } } : subscribe);
      const at = Date.now();
      expect(partitionOf(labelled), 'the labelling write held the partition').to.equal(5);
      await waitUntil('native rollout finished through the hook', 120_000, () => settled(c, ns, 'native'));
      await tally(c, ns, audit, hook.calls, 'native');
      const later = audit.moves('native').filter((m) => m.at > at + 1000);
      expect(later.length, 'pods moved after the label').to.be.at.least(1);
      expect(unapproved(later, hook.calls).map((m) => m.name), 'no pod moved unapproved after the label').to.deep.equal([]);
      expect(hook.approvals(`${ns}/native`).length, 'the pods left were approved one by one').to.be.at.least(1);
    });

    for (const how of ['rolled back with `sts-pilot undo`', 'fixed forward with a new image'] as const) {
      it(`a broken release (its pod never Ready) ${how}: completes through the hook, every pod approved`, async () => {
        const name = how.startsWith('rolled') ? 'broken-back' : 'broken-fwd';
        await createAndSettle(c, ns, held(c, statefulSet(name, { replicas: 4, hook: 'http', annotations: withHook() })));
        const start = hook.calls.length;
        await writeImage(c, ns, name, 'example/app:broken');
        await waitUntil('the broken pod at the top', 60_000, async () => {
          const top = (await podsOf(c, ns, name)).find((p) => p.metadata?.name === `${name}-3`);
          return top?.spec?.containers?.[0]?.image === 'example/app:broken' && !top.metadata?.deletionTimestamp;
        });
        await waitUntil('the rollout held by the broken pod', 30_000, async () => {
          const status = (await readSts(c, ns, name)).metadata?.annotations?.['sts-pilot.io/status'] ?? '';
          return ctrl.logs.some((l) => l.statefulSet === `${ns}/${name}` && String(l.msg).includes(`waiting for pod ${name}-3 to be Ready`)) || status.includes('Ready');
        });
        if (how.startsWith('rolled')) {
          const { stdout } = await run(process.execPath, ['cmd/sts-pilot.ts', 'undo', name, '-n', ns, '--kubeconfig', c.kubeconfigPath], { cwd: root });
          expect(stdout).to.match(/template of revision 1 .* restored; partition held at 4 in the same write/);
        } else {
          await writeImage(c, ns, name, 'example/app:3');
        }
        const done = await waitUntil(`${name} recovered`, 150_000, () => settled(c, ns, name));
        const image = done.spec?.template?.spec?.containers?.[0]?.image;
        expect(image).to.equal(how.startsWith('rolled') ? 'example/app:1' : 'example/app:3');
        const calls = hook.calls.slice(start).filter((x) => x.sts === `${ns}/${name}` && x.approved && x.updateRevision === done.status?.updateRevision);
        // The broken pod first (told it is not Ready), then every other one that had to move, then the end.
        expect(calls[0]?.next?.name, 'the broken pod is replaced first').to.equal(`${name}-3`);
        const expected = how.startsWith('rolled') ? [`${name}-3`] : [`${name}-3`, `${name}-2`, `${name}-1`, `${name}-0`];
        expect(calls.filter((x) => x.next).map((x) => x.next?.name)).to.deep.equal(expected);
        await tally(c, ns, audit, hook.calls, name);
        expect(unapproved(audit.moves(name), hook.calls).map((m) => m.name)).to.deep.equal([]);
        expect(audit.moves(name).length, 'the broken pod and the rest moved').to.be.at.least(2);
        const events = (await eventsFor(c, ns, name)).map((e) => e.reason);
        expect(events, 'OrderedReady never replaces an unready pod: sts-pilot did').to.include('ApprovedPodReplaced');
      });
    }

    for (const start of [1, 3]) {
      it(`spec.ordinals.start ${start}: rolls ${start}.. from the highest, every step approved, status and Pilots by name`, async () => {
        const name = `ord${start}`;
        const sts = statefulSet(name, { replicas: 3, hook: 'http', annotations: withHook() });
        (sts.spec as NonNullable<V1StatefulSet['spec']>).ordinals = { start };
        const from = (await createAndSettle(c, ns, held(c, sts))).status?.updateRevision;
        const before = hook.calls.length;
        await writeImage(c, ns, name, 'example/app:2');
        await waitUntil(`${name} rollout`, 120_000, async () => {
          const s = await settled(c, ns, name);
          return s && s.status?.updateRevision !== from ? s : undefined;
        });
        const order = hook.calls.slice(before).filter((x) => x.sts === `${ns}/${name}` && x.approved).map((x) => `${x.prev?.name ?? '-'}>${x.next?.name ?? '-'}`);
        expect(order).to.deep.equal([`->${name}-${start + 2}`, `${name}-${start + 2}>${name}-${start + 1}`, `${name}-${start + 1}>${name}-${start}`, `${name}-${start}>-`]);
        await tally(c, ns, audit, hook.calls, name);
        expect(unapproved(audit.moves(name), hook.calls)).to.deep.equal([]);
        expect(audit.moves(name).length, 'every pod moved').to.equal(3);
        const { stdout } = await run(process.execPath, ['cmd/sts-pilot.ts', 'status', name, '-n', ns, '--kubeconfig', c.kubeconfigPath], { cwd: root });
        expect(stdout).to.include(`${name}-${start + 2}`);
        expect(stdout).to.not.match(new RegExp(`${name}-${start + 3}\\b`));
      });
    }

    it('Parallel with maxUnavailable 2: the partition still moves one approved pod at a time', async () => {
      const sts = statefulSet('par', { replicas: 5, hook: 'http', annotations: withHook() });
      const spec = sts.spec as NonNullable<V1StatefulSet['spec']>;
      spec.podManagementPolicy = 'Parallel';
      spec.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 2 } };
      await createAndSettle(c, ns, held(c, sts));
      const from = (await readSts(c, ns, 'par')).status?.updateRevision;
      await writeImage(c, ns, 'par', 'example/app:2');
      await waitUntil('par rollout', 120_000, async () => {
        const s = await settled(c, ns, 'par');
        return s && s.status?.updateRevision !== from ? s : undefined;
      });
      const partitions = audit.of('par').map((o) => o.partition).filter((p): p is number => p !== undefined);
      const steps = partitions.slice(1).map((p, i) => p - (partitions[i] as number));
      expect(steps.filter((d) => d < 0).every((d) => d === -1), `partition history ${partitions.join(' ')}`).to.equal(true);
      await tally(c, ns, audit, hook.calls, 'par');
      const moves = audit.moves('par');
      expect(moves).to.have.length(5);
      expect(unapproved(moves, hook.calls)).to.deep.equal([]);
      // Never two pods down at once: each move starts after the previous pod came back.
      const downs = moves.map((m) => m.at).sort((a, b) => a - b);
      for (let i = 1; i < downs.length; i++) expect(downs[i] as number).to.be.greaterThan(downs[i - 1] as number);
    });

    // What the mutating policies do in the same write, the validating gate refuses, saying how.
    // Defined only where they apply (mocha's --forbid-pending: no skipped tests).
    if (expectedGateMode() === 'validating-only') describe('where only ValidatingAdmissionPolicy is served (validating-only)', () => {
      it('a StatefulSet created without partition = replicas is refused with the manifest to write; with it, created', async () => {
        const message = await refusal(c.apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSet('fresh', { replicas: 3, hook: 'http', annotations: withHook() }) }));
        expect(message).to.match(new RegExp(`sts-pilot holds the partition of StatefulSet ${ns}/fresh .*: creating it with partition 0 would let pods move`));
        expect(message).to.include('Set spec.updateStrategy.rollingUpdate.partition: 3 in the same write');
        await createAndSettle(c, ns, held(c, statefulSet('fresh', { replicas: 3, hook: 'http', annotations: withHook() })));
      });

      it('a strategy switch is refused unless paused; a template change that drops the label is still held to the partition', async () => {
        await createAndSettle(c, ns, held(c, statefulSet('sw', { replicas: 3, hook: 'http', annotations: withHook() })));
        const message = await refusal(mergePatch(c, ns, 'sw', { spec: { updateStrategy: { type: 'OnDelete', rollingUpdate: null } } }));
        expect(message).to.match(/switching its updateStrategy from RollingUpdate to OnDelete would let pods move without that approval/);
        expect(message).to.include(`sts-pilot pause sw -n ${ns}`);
        const unlabelled = await refusal(
          mergePatch(c, ns, 'sw', { metadata: { labels: { 'sts-pilot.io/hook': null } }, spec: { updateStrategy: { rollingUpdate: { partition: 0 } }, template: { spec: { containers: [{ name: 'app', image: 'example/app:9' }] } } } }),
        );
        expect(unlabelled).to.match(/would let pods move without the approval of its hook/);
        const paused = await mergePatch(c, ns, 'sw', { metadata: { annotations: { 'sts-pilot.io/paused': 'true' } }, spec: { updateStrategy: { type: 'OnDelete', rollingUpdate: null } } });
        expect(paused.spec?.updateStrategy?.type).to.equal('OnDelete');
        expect((await podsOf(c, ns, 'sw')).every((p) => p.spec?.containers?.[0]?.image === 'example/app:1'), 'no pod moved').to.equal(true);
      });

      it('a lowered spec.replicas is refused with the annotation to write; written, the controller removes one approved pod at a time', async () => {
        await createAndSettle(c, ns, held(c, statefulSet('down', { replicas: 4, hook: 'http', annotations: withHook() })));
        const before = hook.removals.length;
        const message = await refusal(mergePatch(c, ns, 'down', { spec: { replicas: 2 } }));
        expect(message).to.match(/keep spec.replicas: 4 and set the annotation sts-pilot.io\/requested-replicas: "2" instead/);
        expect(message).to.include(`kubectl annotate statefulset down -n ${ns} sts-pilot.io/requested-replicas=2 --overwrite`);
        await mergePatch(c, ns, 'down', { metadata: { annotations: { 'sts-pilot.io/requested-replicas': '2' } } });
        await waitUntil('down at 2 pods, the request met', 120_000, async () => {
          const s = await readSts(c, ns, 'down');
          return s.spec?.replicas === 2 && !s.metadata?.annotations?.['sts-pilot.io/requested-replicas'] && (await podsOf(c, ns, 'down')).length === 2;
        });
        const removals = hook.removals.slice(before).filter((r) => r.call === 'removal' && r.approved).map((r) => r.pod.name);
        expect(removals).to.deep.equal(['down-3', 'down-2']);
      });
    });
  });

  describe('without the admission policies (a namespace left to the guard alone)', () => {
    let ns: string;
    let ctrl: ControllerProcess;
    let audit: RolloutAudit;

    before(async () => {
      ns = await namespace(c, 'noadm', { gate: false });
      audit = await new RolloutAudit().start(c, ns);
      ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    });
    after(async () => {
      await ctrl?.kill('SIGTERM');
      await audit?.stop();
    });

    it('the guard acts on the first event of a reverted template: at most one pod per revert moves before it', async () => {
      const r = await revertStorm(c, ns, hook, audit, 5, SEED + 1, false);
      console.log(`      ${r.reverts} reverts, ${r.moves.length} pod moves, ${r.unapproved.length} unapproved (the race the policies close)`);
      expect(r.reverts).to.equal(20);
      const byRevertWindow = new Map<string, number>();
      for (const m of r.unapproved) byRevertWindow.set(`${m.owner}`, (byRevertWindow.get(m.owner) ?? 0) + 1);
      for (const [owner, count] of byRevertWindow) expect(count, `${owner}: unapproved moves in 5 reverts`).to.be.at.most(5);
      const guarded = (await Promise.all(r.names.map((n) => eventsFor(c, ns, n)))).flat().filter((e) => e.reason === 'PartitionGuarded');
      expect(guarded.length, 'the guard raised the partition').to.be.greaterThan(0);
    });

    it('`sts-pilot undo` holds the partition in its own write: a rollback moves nothing unapproved', async () => {
      await createAndSettle(c, ns, statefulSet('u', { replicas: 4, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
      await setImage(c, ns, 'u', 'example/app:2');
      await waitUntil('two pods at the new revision', 60_000, () => updatedAtLeast(c, ns, 'u', 2));
      await run(process.execPath, ['cmd/sts-pilot.ts', 'undo', 'u', '-n', ns, '--kubeconfig', c.kubeconfigPath], { cwd: root });
      await waitUntil('u rolled back', 120_000, () => settled(c, ns, 'u'));
      await tally(c, ns, audit, hook.calls, 'u');
      expect(unapproved(audit.moves('u'), hook.calls).map((m) => m.name)).to.deep.equal([]);
      expect(audit.moves('u').length).to.be.at.least(4);
    });

    it('OnDelete: a pod evicted mid-rollout comes back at the update revision without the hook (the StatefulSet controller recreates it so)', async () => {
      await createAndSettle(c, ns, statefulSet('od', { replicas: 3, hook: 'http', onDelete: true, annotations: { 'http.sts-pilot.io/url': hook.url } }));
      hook.decide = (call) => call.sts !== `${ns}/od`;
      try {
        await setImage(c, ns, 'od', 'example/app:2');
        await waitUntil('the hook holding od', 30_000, async () => hook.calls.some((x) => x.sts === `${ns}/od`));
        const victim = (await podsOf(c, ns, 'od')).find((p) => p.metadata?.name === 'od-0');
        await c.core.deleteNamespacedPod({ name: 'od-0', namespace: ns });
        await waitUntil('od-0 back', 30_000, async () => {
          const p = (await podsOf(c, ns, 'od')).find((x) => x.metadata?.name === 'od-0');
          return p && p.metadata?.uid !== victim?.metadata?.uid && !p.metadata?.deletionTimestamp;
        });
        await tally(c, ns, audit, hook.calls, 'od');
        const moved = unapproved(audit.moves('od'), hook.calls);
        expect(moved.map((m) => m.name), 'recreated at updateRevision: a move no hook approved').to.deep.equal(['od-0']);
      } finally {
        hook.decide = () => true;
      }
      await waitUntil('od rollout', 120_000, async () => {
        const s = await readSts(c, ns, 'od');
        const pods = await podsOf(c, ns, 'od');
        return pods.length === 3 && pods.every((p) => p.metadata?.labels?.['controller-revision-hash'] === s.status?.updateRevision);
      });
    });

    it('RollingUpdate: the same eviction below the partition comes back at the current revision (no move)', async () => {
      await createAndSettle(c, ns, statefulSet('ru', { replicas: 3, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
      hook.decide = (call) => call.sts !== `${ns}/ru`;
      try {
        await setImage(c, ns, 'ru', 'example/app:2');
        await waitUntil('the hook holding ru', 30_000, async () => hook.calls.some((x) => x.sts === `${ns}/ru`));
        const victim = (await podsOf(c, ns, 'ru')).find((p) => p.metadata?.name === 'ru-0');
        await c.core.deleteNamespacedPod({ name: 'ru-0', namespace: ns });
        await waitUntil('ru-0 back', 30_000, async () => {
          const p = (await podsOf(c, ns, 'ru')).find((x) => x.metadata?.name === 'ru-0');
          return p && p.metadata?.uid !== victim?.metadata?.uid && !p.metadata?.deletionTimestamp;
        });
        await tally(c, ns, audit, hook.calls, 'ru');
        expect(audit.moves('ru')).to.deep.equal([]);
      } finally {
        hook.decide = () => true;
      }
      await waitUntil('ru rollout', 120_000, () => settled(c, ns, 'ru'));
    });
  });

  describe('the startup check', () => {
    it('says so when the policies are not installed, and works on', async () => {
      // Remove the gate's bindings for a moment (nothing else runs now), start a controller, put them back.
      const k8s = await import('@kubernetes/client-node');
      const v1 = c.kc.makeApiClient(k8s.AdmissionregistrationV1Api);
      const mode = c.gateMode ?? 'mutating-v1';
      if (mode === 'mutating-v1') await v1.deleteMutatingAdmissionPolicyBinding({ name: 'sts-pilot-hold-partition' });
      if (mode === 'mutating-v1beta1') await c.kc.makeApiClient(k8s.AdmissionregistrationV1beta1Api).deleteMutatingAdmissionPolicyBinding({ name: 'sts-pilot-hold-partition' });
      if (mode === 'validating-only') await v1.deleteValidatingAdmissionPolicyBinding({ name: 'sts-pilot-write-gate' });
      await v1.deleteValidatingAdmissionPolicyBinding({ name: 'sts-pilot-partition-gate' });
      let ctrl: ControllerProcess | undefined;
      try {
        ctrl = await ControllerProcess.start(c, ['--namespace', 'default']);
        const p = ctrl;
        await waitUntil('the gate mode', 120_000, async () => p.logs.some((l) => String(l.msg).startsWith('admission gate mode none')));
        const modeLine = ctrl.logs.find((l) => String(l.msg).startsWith('admission gate mode none'));
        // The strongest served is the one installed, unless a weaker one was forced (STS_PILOT_GATE_MODE).
        if (!process.env.STS_PILOT_GATE_MODE) expect(modeLine?.capable).to.equal(mode);
        expect((modeLine?.problems as string[]).join('; ')).to.include(`no admission gate is installed; this API server can run ${String(modeLine?.capable)}: install`);
        // Nothing installed: the check judges the gate of the strongest mode served, and names what is missing.
        await waitUntil('the gate check', 120_000, async () => p.logs.some((l) => String(l.msg).startsWith('admission gate not enforced')));
        const line = ctrl.logs.find((l) => String(l.msg).startsWith('admission gate not enforced'));
        expect((line?.problems as string[]).join('; ')).to.include(
          modeLine?.capable === 'validating-only'
            ? 'ValidatingAdmissionPolicyBinding sts-pilot-write-gate is not installed'
            : 'MutatingAdmissionPolicyBinding sts-pilot-hold-partition is not installed',
        );
        expect(await ctrl.metrics()).to.match(/^sts_pilot_admission_gate 0$/m);
        expect(await ctrl.metrics()).to.match(/^sts_pilot_admission_gate_mode\{mode="none"\} 1$/m);
        expect(await fetch(`http://127.0.0.1:${ctrl.probePort}/readyz`).then((r) => r.status)).to.equal(200);
      } finally {
        await ctrl?.kill('SIGTERM');
        await applyManifest(c.kc, gateManifest(mode === 'none' ? 'mutating-v1' : mode));
      }
      // Back in force before the next suite: a template change holds the partition again (or is refused).
      // The API server loads re-applied policies and bindings asynchronously: until the mutating binding is
      // back, the validating backstop refuses an unheld create (as it should), so the create is retried too.
      const ns = await namespace(c, 'gate-back');
      let created = false;
      let image = 1;
      await waitUntil('the gate back in force', 120_000, async () => {
        if (!created) {
          await c.apps.createNamespacedStatefulSet({ namespace: ns, body: held(c, statefulSet('probe', { replicas: 2, hook: 'noop' })) }).then(() => (created = true), () => undefined);
          if (!created) return false;
        }
        // Validating-only: a StatefulSet created without its partition held is refused again.
        if (refusing(c)) return c.apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSet(`probe-${++image}`, { replicas: 2, hook: 'noop' }) }).then(() => false, (e: { code?: number }) => e.code === 403);
        await mergePatch(c, ns, 'probe', { spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } }).catch(() => undefined);
        await setImage(c, ns, 'probe', `example/app:${++image}`);
        return partitionOf(await readSts(c, ns, 'probe')) === 2;
      });
    });
  });
  describe('the holes of issue 24: every way around the gate, closed in the same write', () => {
    let ns: string;
    let ctrl: ControllerProcess;
    let audit: RolloutAudit;
    const withHook = (): Record<string, string> => ({ 'http.sts-pilot.io/url': hook.url });
    /** The hook says no to `name` until `release` is called. */
    const holdHook = (name: string): (() => void) => {
      const prev = hook.decide;
      hook.decide = (call) => (call.sts === `${ns}/${name}` ? false : prev(call));
      return () => (hook.decide = prev);
    };
    const refusal = refusalOf;
    /**
     * A write that opens the gate, as a person writes it (no partition): held in the same
     * write (mutating modes), or refused naming the safe write (validating-only), which is
     * then written. Returns the StatefulSet as written.
     */
    const heldWrite = async (name: string, write: (partition?: number) => Promise<V1StatefulSet>, replicas: number, what: string): Promise<V1StatefulSet> => {
      if (!refusing(c)) return write();
      const err = await refusal(write());
      expect(err?.code, 'refused').to.equal(403);
      // A write that also lowers a held partition (a replace without it) meets sts-pilot-partition-gate too, and
      // the API server answers with one denial: either names a safe write (the partition, undo, pause).
      const lowered = new RegExp(`lowering it from ${replicas} to 0 would let pods move without the approval of its hook`);
      if (!lowered.test(err?.body ?? '')) {
        expect(err?.body).to.include(`${what} with partition 0 would let pods move without the approval of its hook`);
        expect(err?.body).to.include(`Set spec.updateStrategy.rollingUpdate.partition: ${replicas} in the same write`);
      }
      expect(err?.body).to.include(`sts-pilot undo ${name} -n ${ns}`);
      expect(err?.body).to.include(`sts-pilot pause ${name} -n ${ns}`);
      return write(replicas);
    };
    const withPartition = (sts: V1StatefulSet, partition?: number): V1StatefulSet => {
      if (partition === undefined) return sts;
      const spec = sts.spec as NonNullable<V1StatefulSet['spec']>;
      spec.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition } };
      return sts;
    };
    /** The StatefulSet controller has seen the latest spec and names two revisions. */
    const observedNew = async (name: string): Promise<V1StatefulSet | undefined> => {
      const s = await readSts(c, ns, name);
      const st = s.status;
      return st?.observedGeneration === s.metadata?.generation && st?.updateRevision && st.updateRevision !== st.currentRevision ? s : undefined;
    };

    before(async () => {
      ns = await namespace(c, 'holes');
      audit = await new RolloutAudit().start(c, ns);
      ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    });
    after(async () => {
      await ctrl?.kill('SIGTERM');
      await audit?.stop();
    });

    it('a StatefulSet re-created over its orphaned pods with a new image starts held: no pod moves before the hook approves it', async () => {
      const name = 'orph';
      const sts = held(c, statefulSet(name, { replicas: 3, hook: 'http', annotations: withHook() }));
      const first = await createAndSettle(c, ns, sts);
      const oldRevision = first.status?.updateRevision;
      const release = holdHook(name);
      let since = 0;
      try {
        // The standard recipe for changing volumeClaimTemplates: orphan the pods, apply the new manifest.
        await c.apps.deleteNamespacedStatefulSet({ name, namespace: ns, propagationPolicy: 'Orphan' });
        await waitUntil('the StatefulSet gone', 30_000, async () => !(await c.apps.listNamespacedStatefulSet({ namespace: ns })).items.some((x) => x.metadata?.name === name));
        since = hook.calls.length;
        const created = await heldWrite(
          name,
          (p) => c.apps.createNamespacedStatefulSet({ namespace: ns, body: withPartition(statefulSet(name, { replicas: 3, hook: 'http', annotations: withHook(), image: 'example/app:2' }), p) }),
          3,
          'creating it',
        );
        expect(partitionOf(created), 'the create itself held the partition').to.equal(3);
        // The orphans adopted, the new revision named, the hook asked about the highest pod and holding.
        await waitUntil('the orphans adopted', 60_000, async () => {
          const pods = await podsOf(c, ns, name);
          return pods.length === 3 && pods.every((p) => p.metadata?.ownerReferences?.some((o) => o.uid === created.metadata?.uid));
        });
        await waitUntil('the hook asked about orph-2', 60_000, async () => hook.calls.slice(since).some((x) => x.sts === `${ns}/${name}` && x.next?.name === `${name}-2` && !x.approved));
        await tally(c, ns, audit, hook.calls, name);
        expect(audit.moves(name).map((m) => m.name), 'no pod moved while the hook said no').to.deep.equal([]);
        const pods = await podsOf(c, ns, name);
        expect(pods.map((p) => p.metadata?.labels?.['controller-revision-hash'])).to.deep.equal([oldRevision, oldRevision, oldRevision]);
      } finally {
        release();
      }
      await waitUntil('orph rolled through the hook', 120_000, async () => {
        const s = await settled(c, ns, name);
        const pods = await podsOf(c, ns, name);
        return s && pods.length === 3 && pods.every((p) => p.metadata?.labels?.['controller-revision-hash'] === s.status?.updateRevision) ? s : undefined;
      });
      await tally(c, ns, audit, hook.calls, name);
      expect(audit.moves(name).length, 'every pod moved').to.equal(3);
      expect(unapproved(audit.moves(name), hook.calls).map((m) => m.name)).to.deep.equal([]);
    });

    it('a `replace` that drops the label and changes the image is held in the same write', async () => {
      const name = 'unlab';
      await createAndSettle(c, ns, held(c, statefulSet(name, { replicas: 3, hook: 'http', annotations: withHook() })));
      // The manifest as a person keeps it (no partition: sts-pilot's business), having lost the label.
      const replace = async (p?: number): Promise<V1StatefulSet> => {
        const manifest = withPartition(statefulSet(name, { replicas: 3, annotations: withHook(), image: 'example/app:2' }), p);
        manifest.metadata = { ...manifest.metadata, resourceVersion: (await readSts(c, ns, name)).metadata?.resourceVersion };
        return c.apps.replaceNamespacedStatefulSet({ name, namespace: ns, body: manifest });
      };
      // Validating-only: the binding matched the old object (labelled), so the write is refused all the same.
      const written = await heldWrite(name, replace, 3, 'changing its pod template');
      expect(written.metadata?.labels?.['sts-pilot.io/hook'], 'the label is gone').to.equal(undefined);
      expect(partitionOf(written), 'the replace itself held the partition').to.equal(3);
      const seen = await waitUntil('the StatefulSet controller at the new revision', 60_000, () => observedNew(name));
      expect(seen.status?.updatedReplicas ?? 0).to.equal(0);
      await tally(c, ns, audit, hook.calls, name);
      expect(audit.moves(name)).to.deep.equal([]);
    });

    it('switching updateStrategy of a subscribed StatefulSet is refused unless it is paused, with the command to pause', async () => {
      const name = 'switch';
      await createAndSettle(c, ns, held(c, statefulSet(name, { replicas: 3, hook: 'http', annotations: withHook() })));
      const release = holdHook(name);
      try {
        await writeImage(c, ns, name, 'example/app:2');
        await waitUntil('the new revision named', 60_000, () => observedNew(name));
        const toOnDelete = { spec: { updateStrategy: { type: 'OnDelete', rollingUpdate: null } } };
        const err = await refusal(mergePatch(c, ns, name, toOnDelete));
        expect(err?.code, 'refused').to.equal(403);
        expect(err?.body).to.include(`sts-pilot pause ${name} -n ${ns}`);
        expect(err?.body).to.match(/updateStrategy from RollingUpdate to OnDelete/);
        expect((await readSts(c, ns, name)).spec?.updateStrategy?.type).to.equal('RollingUpdate');
        // Paused, the person has the wheel: the switch is theirs to make, and back.
        await mergePatch(c, ns, name, { metadata: { annotations: { 'sts-pilot.io/paused': 'true' } }, spec: { updateStrategy: { type: 'OnDelete', rollingUpdate: null } } });
        // Validating-only, paused: nothing holds it, so the person writes the partition with the switch.
        const back = await mergePatch(c, ns, name, { spec: { updateStrategy: { type: 'RollingUpdate', ...(refusing(c) ? { rollingUpdate: { partition: 3 } } : {}) } } });
        expect(partitionOf(back), 'switched back to RollingUpdate: held').to.equal(3);
        await mergePatch(c, ns, name, { metadata: { annotations: { 'sts-pilot.io/paused': null } } });
      } finally {
        release();
      }
      await waitUntil(`${name} rolled through the hook`, 120_000, () => settled(c, ns, name));
      await tally(c, ns, audit, hook.calls, name);
      expect(unapproved(audit.moves(name), hook.calls).map((m) => m.name)).to.deep.equal([]);
    });

    it('a forged override-by does not survive removing and re-adding the label: the Event names who wrote the override', async () => {
      const name = 'forge';
      await createAndSettle(c, ns, held(c, statefulSet(name, { replicas: 3, hook: 'http', annotations: withHook() })));
      const release = holdHook(name);
      try {
        await writeImage(c, ns, name, 'example/app:2');
        const s = await waitUntil('the hook holding forge-2', 60_000, async () => {
          const x = await observedNew(name);
          return x && hook.calls.some((h) => h.sts === `${ns}/${name}` && h.next?.name === `${name}-2` && h.updateRevision === x.status?.updateRevision) ? x : undefined;
        });
        const top = (await podsOf(c, ns, name)).find((p) => p.metadata?.name === `${name}-2`);
        const override = JSON.stringify({ pod: `${name}-2`, uid: top?.metadata?.uid, revision: s.status?.updateRevision, reason: 'forged by a test', at: new Date().toISOString() });
        // Out of the subscription for one write, with a user name of one's choice; then back in.
        const forged = {
          metadata: { labels: { 'sts-pilot.io/hook': null }, annotations: { 'sts-pilot.io/override': override, 'sts-pilot.io/override-by': 'mallory' } },
        };
        if (refusing(c)) {
          // Nothing stamps override-by here: sts-pilot-override-audit refuses the forged name (its binding matched
          // the old, labelled object), and the controller applies no override at all in this mode.
          const err = await refusal(mergePatch(c, ns, name, forged));
          expect(err?.code, 'refused').to.equal(403);
          expect(err?.body).to.include('it must be admin, not mallory');
          const after = await readSts(c, ns, name);
          expect(after.metadata?.labels?.['sts-pilot.io/hook']).to.equal('http');
          expect(after.metadata?.annotations?.['sts-pilot.io/override-by']).to.equal(undefined);
          // Written under one's own name, it is let through and not applied: the hook still holds forge-2.
          await mergePatch(c, ns, name, { metadata: { annotations: { 'sts-pilot.io/override': override, 'sts-pilot.io/override-by': 'admin' } } });
          await sleep(5_000);
          expect((await eventsFor(c, ns, name)).some((e) => e.reason === 'OverrideApplied')).to.equal(false);
          await tally(c, ns, audit, hook.calls, name);
          expect(audit.moves(name)).to.deep.equal([]);
          await mergePatch(c, ns, name, { metadata: { annotations: { 'sts-pilot.io/override': null, 'sts-pilot.io/override-by': null } } });
          return;
        }
        const out = await mergePatch(c, ns, name, forged);
        expect(out.metadata?.annotations?.['sts-pilot.io/override-by'], 'stamped in the write that dropped the label').to.equal('admin');
        await mergePatch(c, ns, name, { metadata: { annotations: { 'sts-pilot.io/override-by': 'mallory' } } });
        const back = await mergePatch(c, ns, name, { metadata: { labels: { 'sts-pilot.io/hook': 'http' } } });
        expect(back.metadata?.annotations?.['sts-pilot.io/override-by'], 'stamped again in the write that subscribed it').to.equal('admin');
        const ev = await waitUntil('the override applied', 60_000, async () => (await eventsFor(c, ns, name)).find((e) => e.reason === 'OverrideApplied'));
        expect(ev.message).to.match(/^override by admin lets pod forge-2 through/);
        expect(ev.message).to.not.include('mallory');
      } finally {
        release();
      }
      await waitUntil(`${name} rolled`, 120_000, () => settled(c, ns, name));
    });

    describe('the gate needs no parameters: a missing or broken ConfigMap opens nothing and locks nothing', () => {
      const core = (): Cluster['core'] => c.core;
      let saved: Record<string, string> | undefined;
      before(async () => {
        saved = (await core().readNamespacedConfigMap({ name: 'sts-pilot-gate', namespace: 'sts-pilot-system' })).data;
      });
      afterEach(async () => {
        // Put it back as shipped, whatever the test did to it.
        await applyManifest(c.kc, shipped(c));
        const now = (await core().readNamespacedConfigMap({ name: 'sts-pilot-gate', namespace: 'sts-pilot-system' })).data;
        expect(now).to.deep.equal(saved);
      });

      it('ConfigMap deleted: a hand-lowered partition is refused, a template change is held', async () => {
        const name = 'nocm';
        await createAndSettle(c, ns, held(c, statefulSet(name, { replicas: 3, hook: 'http', annotations: withHook() })));
        const release = holdHook(name);
        try {
          // A rollout waiting for its hook: lowering the partition now would move pods.
          await writeImage(c, ns, name, 'example/app:2');
          await waitUntil('the new revision named', 60_000, () => observedNew(name));
          await core().deleteNamespacedConfigMap({ name: 'sts-pilot-gate', namespace: 'sts-pilot-system' });
          // Whenever the API server's own cache sees the deletion, every attempt must be refused.
          for (let i = 0; i < 10; i++) {
            const err = await refusal(mergePatch(c, ns, name, { spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } }));
            expect(err?.code, `attempt ${i + 1} refused`).to.equal(403);
            expect(err?.body).to.include(`sts-pilot pause ${name} -n ${ns}`);
            await sleep(300);
          }
          // The partition is at replicas already (the rollout is held), and this patch leaves it there: safe in
          // every mode, so let through (validating-only refuses only a write that leaves it below replicas).
          const changed = await mergePatch(c, ns, name, { spec: { template: { spec: { containers: [{ name: 'app', image: 'example/app:3' }] } } } });
          expect(partitionOf(changed), 'held in the same write').to.equal(3);
        } finally {
          release();
        }
        await waitUntil(`${name} rolled`, 120_000, () => settled(c, ns, name));
        await tally(c, ns, audit, hook.calls, name);
        expect(unapproved(audit.moves(name), hook.calls).map((m) => m.name)).to.deep.equal([]);
      });

      it('a key missing from the ConfigMap: a StatefulSet outside the subscription is still written, a subscribed one still held', async () => {
        // Labelled, as most StatefulSets are, only not with the subscribe label.
        const plain = statefulSet('plain', { replicas: 1 });
        plain.metadata = { ...plain.metadata, labels: { team: 'other' } };
        await c.apps.createNamespacedStatefulSet({ namespace: ns, body: plain });
        await createAndSettle(c, ns, held(c, statefulSet('keyed', { replicas: 2, hook: 'noop' })));
        await core().replaceNamespacedConfigMap({
          name: 'sts-pilot-gate',
          namespace: 'sts-pilot-system',
          body: { metadata: { name: 'sts-pilot-gate', namespace: 'sts-pilot-system' }, data: { controller: saved?.controller ?? '' } },
        });
        for (let i = 0; i < 10; i++) {
          await setImage(c, ns, 'plain', `example/app:${i + 2}`);
          await sleep(300);
        }
        const kept = await mergePatch(c, ns, 'keyed', { spec: { template: { spec: { containers: [{ name: 'app', image: 'example/app:2' }] } } } });
        expect(partitionOf(kept)).to.equal(2);
      });
    });
  });

  describe('the gate check runs all along', () => {
    it('the metric, /readyz and the log follow the gate within seconds when a binding goes and comes back', async () => {
      const ctrl = await ControllerProcess.start(c, ['--namespace', 'default', '--gate-check-interval', '2']);
      const k8s = await import('@kubernetes/client-node');
      const api = c.kc.makeApiClient(k8s.AdmissionregistrationV1Api);
      const gauge = async (): Promise<string | undefined> => /^sts_pilot_admission_gate (\d)$/m.exec(await ctrl.metrics())?.[1];
      const readyz = async (): Promise<string> => fetch(`http://127.0.0.1:${ctrl.probePort}/readyz`).then((r) => r.text());
      try {
        // The check judges the gate of the mode installed (lib/kube/gate-monitor.ts): enforced in every mode.
        await waitUntil('the gate enforced', 30_000, async () => (await gauge()) === '1');
        expect(await readyz()).to.match(/admission gate: enforced/);
        await api.deleteValidatingAdmissionPolicyBinding({ name: 'sts-pilot-partition-gate' });
        await waitUntil('the metric at 0', 30_000, async () => (await gauge()) === '0');
        expect(await readyz()).to.match(/admission gate: NOT enforced: ValidatingAdmissionPolicyBinding sts-pilot-partition-gate is not installed/);
        expect(ctrl.logs.some((l) => String(l.msg).startsWith('admission gate no longer enforced'))).to.equal(true);
        if (refusing(c)) {
          // Validating-only: sts-pilot-write-gate is what refuses an unheld template change; its binding gone is said too.
          await api.deleteValidatingAdmissionPolicyBinding({ name: 'sts-pilot-write-gate' });
          await waitUntil('the write gate named missing', 30_000, async () => (await readyz()).includes('ValidatingAdmissionPolicyBinding sts-pilot-write-gate is not installed'));
        } else {
          // Without the mutating policy's binding, a template change is refused, not let through unheld.
          const ns = await namespace(c, 'gate-nomap');
          await createAndSettle(c, ns, statefulSet('probe', { replicas: 2, hook: 'noop' }));
          if (c.gateMode === 'mutating-v1beta1') await c.kc.makeApiClient(k8s.AdmissionregistrationV1beta1Api).deleteMutatingAdmissionPolicyBinding({ name: 'sts-pilot-hold-partition' });
          else await api.deleteMutatingAdmissionPolicyBinding({ name: 'sts-pilot-hold-partition' });
          // A replace of the manifest as a person keeps it: a new image, no partition (the held
          // partition is lowered to 0 in the same write, the partition gate's binding being gone too).
          let image = 1;
          const replace = async (): Promise<unknown> => {
            const m = statefulSet('probe', { replicas: 2, hook: 'noop', image: `example/app:${++image}` });
            m.metadata = { ...m.metadata, resourceVersion: (await readSts(c, ns, 'probe')).metadata?.resourceVersion };
            return c.apps.replaceNamespacedStatefulSet({ name: 'probe', namespace: ns, body: m });
          };
          const refused = await waitUntil('a template change refused by sts-pilot-template-gate', 30_000, async () => {
            const r = await refusalOf(replace());
            // Held (the mutating binding's removal not seen yet by the API server), or refused by it.
            return r?.body.includes('sts-pilot-hold-partition, which holds the partition in such a write, did not act') ? r : undefined;
          });
          expect(refused.code).to.equal(403);
          expect(refused.body).to.match(/this write changes its pod template with the partition at 0, below its 2 replicas/);
          expect(refused.body).to.include(`sts-pilot pause probe -n ${ns}`);
          expect(partitionOf(await readSts(c, ns, 'probe')), 'nothing let through unheld').to.equal(2);
        }
        await applyManifest(c.kc, shipped(c));
        await waitUntil('the metric back at 1', 30_000, async () => (await gauge()) === '1');
        expect(ctrl.logs.some((l) => String(l.msg).startsWith('admission gate enforced again'))).to.equal(true);
      } finally {
        await ctrl.kill('SIGTERM');
        await applyManifest(c.kc, shipped(c));
      }
    });
  });
});
