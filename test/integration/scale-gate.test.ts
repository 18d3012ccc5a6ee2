import { AdmissionregistrationV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { checkAdmissionGate } from '../../lib/kube/gate-check.ts';
import { PAUSED_ANNOTATION, REQUESTED_REPLICAS_ANNOTATION } from '../../lib/names.ts';
import {
  applyManifest,
  type Cluster,
  cluster,
  converged,
  createAndSettle,
  mergePatch,
  namespace,
  ownCluster,
  partitionOf,
  podsOf,
  readSts,
  RolloutAudit,
  setImage,
  statefulSet,
  stopOwnCluster,
  waitUntil,
} from './harness.ts';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');


/**
 * A subscribed StatefulSet as the controller would have left it: partition at
 * replicas. (No controller runs in this file: what holds is the API server alone.)
 */
function subscribed(name: string, replicas: number, o: { annotations?: Record<string, string> } = {}): V1StatefulSet {
  const s = statefulSet(name, { replicas, hook: 'noop', annotations: o.annotations });
  (s.spec as NonNullable<V1StatefulSet['spec']>).updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition: replicas } };
  return s;
}

const live = (c: Cluster, ns: string, name: string) => async (): Promise<V1Pod[]> =>
  (await podsOf(c, ns, name)).filter((p) => !p.metadata?.deletionTimestamp);

describe('scale-down held by the API server alone (no controller running)', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let ns: string;
  let audit: RolloutAudit;

  const kubectl = (args: string[], kubeconfig?: string, namespaceName?: string): Promise<{ stdout: string; stderr: string }> =>
    run(join(c.cp?.binDir ?? '', 'kubectl'), ['--kubeconfig', kubeconfig ?? c.kubeconfigPath, '-n', namespaceName ?? ns, ...args]);

  /** The pods of `name` the plain watch saw deleted (names), after it caught up with the API server. */
  const deleted = async (name: string, namespaceName = ns, a = audit): Promise<string[]> => {
    await a.caughtUp(c, namespaceName);
    return a.deletions.filter((d) => d.owner === name).map((d) => d.name).sort();
  };

  /**
   * The StatefulSet controller has acted on the spec stored now: its
   * status.observedGeneration reached metadata.generation. kube-controller-manager
   * writes observedGeneration in the status update that ends the very sync in
   * which it deletes the pods above spec.replicas and those above the partition
   * (pkg/controller/statefulset, updateStatefulSet then updateStatefulSetStatus),
   * so a deletion this spec causes is in the API server before this resolves
   * (every pod here is Ready before the write: OrderedReady deletes nothing
   * while one is not, and would still write observedGeneration).
   * A write that leaves the spec alone bumps no generation: then nothing new was
   * there to act on, and this resolves at once.
   */
  const stsControllerSynced = (name: string): Promise<V1StatefulSet> =>
    waitUntil(`the StatefulSet controller to observe ${name}'s generation`, 30_000, async () => {
      const s = await readSts(c, ns, name);
      return s.status?.observedGeneration === s.metadata?.generation ? s : undefined;
    });

  /**
   * The write was held: once the StatefulSet controller has synced the stored
   * spec, no pod of `name` is deleted, spec.replicas stays at `replicas`, and
   * the request is recorded.
   */
  async function expectHeld(name: string, replicas: number, requested: number): Promise<V1StatefulSet> {
    const written = await readSts(c, ns, name);
    expect(written.spec?.replicas, 'spec.replicas kept in the same write').to.equal(replicas);
    expect(written.metadata?.annotations?.[REQUESTED_REPLICAS_ANNOTATION], 'the request recorded in the same write').to.equal(String(requested));
    const synced = await stsControllerSynced(name);
    expect(await deleted(name), `no pod of ${name} deleted by the sync of generation ${synced.metadata?.generation}`).to.deep.equal([]);
    expect((await live(c, ns, name)()).length).to.equal(replicas);
    const s = await readSts(c, ns, name);
    expect(s.spec?.replicas).to.equal(replicas);
    expect(s.metadata?.annotations?.[REQUESTED_REPLICAS_ANNOTATION]).to.equal(String(requested));
    return s;
  }

  /** The scale-down went through as without sts-pilot: `replicas` pods left, nothing recorded. */
  async function expectScaled(name: string, replicas: number, namespaceName = ns): Promise<void> {
    const s = await readSts(c, namespaceName, name);
    expect(s.spec?.replicas).to.equal(replicas);
    expect(s.metadata?.annotations?.[REQUESTED_REPLICAS_ANNOTATION], 'nothing recorded').to.equal(undefined);
    await waitUntil(`${name} down to ${replicas} pods`, 30_000, async () => (await live(c, namespaceName, name)()).length === replicas);
  }

  const scaleRefused = async (name: string, replicas: number, namespaceName = ns): Promise<string> => {
    const err = await kubectl(['scale', `statefulset/${name}`, `--replicas=${replicas}`], undefined, namespaceName).then(
      () => undefined,
      (e: unknown) => e as { stderr?: string },
    );
    expect(err, `kubectl scale --replicas=${replicas} refused`).to.not.equal(undefined);
    return err?.stderr ?? '';
  };

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    ns = await namespace(c, 'scale');
    audit = await new RolloutAudit().start(c, ns);
  });
  after(async () => {
    await audit?.stop();
  });

  it('(a) a JSON merge patch 5 -> 3 keeps 5 pods and records 3', async () => {
    await createAndSettle(c, ns, subscribed('merge', 5));
    const patched = await mergePatch(c, ns, 'merge', { spec: { replicas: 3 } });
    expect(patched.spec?.replicas).to.equal(5);
    await expectHeld('merge', 5, 3);
  });

  it('a write that leaves replicas alone (annotate, set image) leaves the request alone; scaling up to 6 cancels it', async () => {
    await kubectl(['annotate', 'statefulset/merge', 'example.com/note=x']);
    expect((await readSts(c, ns, 'merge')).metadata?.annotations?.[REQUESTED_REPLICAS_ANNOTATION]).to.equal('3');
    await setImage(c, ns, 'merge', 'example/app:2');
    const imaged = await readSts(c, ns, 'merge');
    expect(imaged.metadata?.annotations?.[REQUESTED_REPLICAS_ANNOTATION]).to.equal('3');
    expect(partitionOf(imaged), 'the new template held by the partition').to.equal(5);
    const up = await mergePatch(c, ns, 'merge', { spec: { replicas: 6 } });
    expect(up.spec?.replicas).to.equal(6);
    expect(up.metadata?.annotations?.[REQUESTED_REPLICAS_ANNOTATION], 'the pending removal cancelled').to.equal(undefined);
    expect(up.metadata?.annotations?.['example.com/note'], 'other annotations kept').to.equal('x');
    await waitUntil('merge at 6 pods', 30_000, async () => (await live(c, ns, 'merge')()).length === 6);
    expect(await deleted('merge')).to.deep.equal([]);
  });

  it('(b) `kubectl scale --replicas=3` is refused with the write to run instead, which is then held', async () => {
    await createAndSettle(c, ns, subscribed('scaled', 5));
    const stderr = await scaleRefused('scaled', 3);
    expect(stderr).to.include(`sts-pilot removes the pods of StatefulSet ${ns}/scaled one at a time`);
    expect(stderr).to.include('lowering it from 5 to 3 here is refused');
    const patch = `kubectl patch statefulset scaled -n ${ns} --type merge -p '{"spec":{"replicas":3}}'`;
    expect(stderr).to.include(`Run "${patch}" instead`);
    expect(stderr).to.include(`"sts-pilot pause scaled -n ${ns}"`);
    expect((await readSts(c, ns, 'scaled')).spec?.replicas).to.equal(5);
    // The command it names, as written there.
    await kubectl(['patch', 'statefulset', 'scaled', '--type', 'merge', '-p', '{"spec":{"replicas":3}}']);
    await expectHeld('scaled', 5, 3);
  });

  it('the scale subresource: raising passes, but not while a removal is pending (it could not cancel it)', async () => {
    // scaled is held at 5 with 3 requested.
    const stderr = await scaleRefused('scaled', 6);
    expect(stderr).to.include(`StatefulSet ${ns}/scaled is being scaled down to 3 by sts-pilot`);
    expect(stderr).to.include(`kubectl patch statefulset scaled -n ${ns} --type merge -p '{"spec":{"replicas":6}}'`);
    await mergePatch(c, ns, 'scaled', { spec: { replicas: 6 } });
    expect((await readSts(c, ns, 'scaled')).metadata?.annotations?.[REQUESTED_REPLICAS_ANNOTATION]).to.equal(undefined);
    await kubectl(['scale', 'statefulset/scaled', '--replicas=7']);
    expect((await readSts(c, ns, 'scaled')).spec?.replicas).to.equal(7);
    await waitUntil('scaled at 7 pods', 30_000, async () => (await live(c, ns, 'scaled')()).length === 7);
    expect(await deleted('scaled')).to.deep.equal([]);
  });

  it('(c) server-side apply of the manifest with replicas 3 keeps 5 pods and records 3', async () => {
    const file = (replicas: number): string => {
      const s = subscribed('ssa', 5);
      (s.spec as NonNullable<V1StatefulSet['spec']>).replicas = replicas;
      const path = join(tmpdir(), `sts-pilot-ssa-${process.pid}-${replicas}.json`);
      writeFileSync(path, JSON.stringify({ ...s, metadata: { ...s.metadata, namespace: ns } }));
      return path;
    };
    await kubectl(['apply', '--server-side', '-f', file(5)]);
    await waitUntil('ssa to settle', 60_000, async () => {
      const s = await converged(c, ns, 'ssa');
      return s && partitionOf(s) === 5;
    });
    await kubectl(['apply', '--server-side', '-f', file(3)]);
    await expectHeld('ssa', 5, 3);
    // Applied again (the person's pipeline runs again): still held, nothing to resolve.
    await kubectl(['apply', '--server-side', '-f', file(3)]);
    expect((await readSts(c, ns, 'ssa')).spec?.replicas).to.equal(5);
  });

  it('(d) a full update (replace) with replicas 3 keeps 5 pods and records 3', async () => {
    await createAndSettle(c, ns, subscribed('replace', 5));
    const s = await readSts(c, ns, 'replace');
    (s.spec as NonNullable<V1StatefulSet['spec']>).replicas = 3;
    const replaced = await c.apps.replaceNamespacedStatefulSet({ name: 'replace', namespace: ns, body: s });
    expect(replaced.spec?.replicas).to.equal(5);
    await expectHeld('replace', 5, 3);
  });

  it('the label removed in the same write as the scale-down: held', async () => {
    await createAndSettle(c, ns, subscribed('unlabel', 5));
    await mergePatch(c, ns, 'unlabel', { metadata: { labels: { 'sts-pilot.io/hook': null } }, spec: { replicas: 3 } });
    const s = await expectHeld('unlabel', 5, 3);
    expect(s.metadata?.labels?.['sts-pilot.io/hook'], 'the label is gone').to.equal(undefined);
  });

  it('a template change and a scale-down (and a lower partition) in one write: partition >= 5, no pod moves', async () => {
    const before = await createAndSettle(c, ns, subscribed('both', 5));
    const from = before.status?.currentRevision;
    await mergePatch(c, ns, 'both', {
      spec: {
        replicas: 3,
        updateStrategy: { rollingUpdate: { partition: 3 } },
        template: { spec: { containers: [{ name: 'app', image: 'example/app:2' }] } },
      },
    });
    const s = await readSts(c, ns, 'both');
    expect(partitionOf(s), 'partition held at the held replicas').to.be.at.least(5);
    await expectHeld('both', 5, 3);
    const after = await readSts(c, ns, 'both');
    expect(after.status?.updateRevision, 'the new template has its revision').to.not.equal(from);
    const revisions = (await live(c, ns, 'both')()).map((p) => p.metadata?.labels?.['controller-revision-hash']);
    expect(revisions, 'every pod still at the old revision').to.deep.equal([from, from, from, from, from]);
  });

  it('a write by the controller lowering replicas by one passes, and one pod is removed; it may drop the request when it gets there', async () => {
    await createAndSettle(c, ns, subscribed('ctrl', 5));
    await mergePatch(c, ns, 'ctrl', { spec: { replicas: 3 } });
    expect((await readSts(c, ns, 'ctrl')).spec?.replicas, 'a person: held').to.equal(5);
    // As the controller: 5 -> 4 after its hook approved ctrl-4 (partition left at 5).
    await kubectl(['patch', 'statefulset', 'ctrl', '--type', 'merge', '-p', '{"spec":{"replicas":4}}'], c.controllerKubeconfigPath);
    const s = await readSts(c, ns, 'ctrl');
    expect(s.spec?.replicas).to.equal(4);
    expect(s.metadata?.annotations?.[REQUESTED_REPLICAS_ANNOTATION], 'still 3 requested').to.equal('3');
    await waitUntil('ctrl-4 removed', 30_000, async () => (await live(c, ns, 'ctrl')()).length === 4);
    expect(await deleted('ctrl')).to.deep.equal(['ctrl-4']);
    // 4 -> 3, the annotation removed in the write that reaches it.
    await kubectl(
      ['patch', 'statefulset', 'ctrl', '--type', 'merge', '-p', JSON.stringify({ metadata: { annotations: { [REQUESTED_REPLICAS_ANNOTATION]: null } }, spec: { replicas: 3 } })],
      c.controllerKubeconfigPath,
    );
    await expectScaled('ctrl', 3);
    expect(await deleted('ctrl')).to.deep.equal(['ctrl-3', 'ctrl-4']);
  });

  it('paused: a scale-down passes (patch and kubectl scale)', async () => {
    await createAndSettle(c, ns, subscribed('paused', 5, { annotations: { [PAUSED_ANNOTATION]: 'true' } }));
    await mergePatch(c, ns, 'paused', { spec: { replicas: 4 } });
    await expectScaled('paused', 4);
    await kubectl(['scale', 'statefulset/paused', '--replicas=3']);
    await expectScaled('paused', 3);
    // Paused in the very write that scales down.
    await createAndSettle(c, ns, subscribed('pausing', 5));
    await mergePatch(c, ns, 'pausing', { metadata: { annotations: { [PAUSED_ANNOTATION]: 'true' } }, spec: { replicas: 3 } });
    await expectScaled('pausing', 3);
  });

  it('unsubscribed: a scale-down passes (patch and kubectl scale), also beside a subscribed one of the same namespace', async () => {
    await createAndSettle(c, ns, statefulSet('plain', { replicas: 5 }));
    await mergePatch(c, ns, 'plain', { spec: { replicas: 4 } });
    await expectScaled('plain', 4);
    await kubectl(['scale', 'statefulset/plain', '--replicas=3']);
    await expectScaled('plain', 3);
  });

  it('a namespace labelled sts-pilot.io/admission-gate=disabled: a scale-down passes (patch and kubectl scale)', async () => {
    const off = await namespace(c, 'scale-off', { gate: false });
    await createAndSettle(c, off, subscribed('web', 5));
    await mergePatch(c, off, 'web', { spec: { replicas: 4 } });
    await expectScaled('web', 4, off);
    await kubectl(['scale', 'statefulset/web', '--replicas=3'], undefined, off);
    await expectScaled('web', 3, off);
  });

  it('a StatefulSet of the same name in another namespace decides nothing: the scale gate looks in the request\'s namespace', async () => {
    // "scaled" is subscribed in ns; one of that name, unsubscribed, elsewhere.
    const other = await namespace(c, 'scale-other');
    await createAndSettle(c, other, statefulSet('scaled', { replicas: 3 }));
    await kubectl(['scale', 'statefulset/scaled', '--replicas=2'], undefined, other);
    await expectScaled('scaled', 2, other);
  });

  it('the controller\'s startup check says scale-down is held, separately from the partition; a scale gate selecting by another key is named', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(c.controllerKubeconfigPath);
    const r = await checkAdmissionGate(kc, 'sts-pilot.io/hook');
    expect(r.scaleDown).to.deep.equal({ enforced: true, problems: [] });
    expect(r.enforced).to.equal(true);
    // Not deleted: with no binding taking StatefulSets as parameters for a second,
    // kube-apiserver 1.37 stops watching them for good (see the last suite below).
    const adm = c.kc.makeApiClient(AdmissionregistrationV1Api);
    await adm.patchValidatingAdmissionPolicyBinding(
      { name: 'sts-pilot-scale-gate', body: { spec: { paramRef: { selector: { matchExpressions: [{ key: 'example.com/hook', operator: 'Exists' }] } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    try {
      const other = await checkAdmissionGate(kc, 'sts-pilot.io/hook');
      expect(other.enforced, 'the partition gate is still in force').to.equal(true);
      expect(other.scaleDown.enforced).to.equal(false);
      expect(other.scaleDown.problems).to.deep.equal([
        'the binding sts-pilot-scale-gate must select the StatefulSets labelled "sts-pilot.io/hook" (paramRef.selector: that key Exists, nothing else), but it selects {"matchExpressions":[{"key":"example.com/hook","operator":"Exists"}]}',
      ]);
      const otherKey = await checkAdmissionGate(kc, 'example.com/hook');
      expect(otherKey.scaleDown.problems).to.include(
        'the binding sts-pilot-hold-replicas must select the StatefulSets labelled "example.com/hook" (matchResources.objectSelector: that key Exists, nothing else), but it selects {"matchExpressions":[{"key":"sts-pilot.io/hook","operator":"Exists"}]}',
      );
    } finally {
      await applyManifest(c.kc, join(root, 'manifests', 'admission-gate.yaml'));
    }
    // Back in force before anything else runs (the API server picks up policies within about a second).
    await createAndSettle(c, ns, subscribed('back', 2));
    await waitUntil('the scale gate back in force', 30_000, async () => {
      const refused = await kubectl(['scale', 'statefulset/back', '--replicas=1']).then(() => false, () => true);
      if (!refused) await mergePatch(c, ns, 'back', { spec: { replicas: 2 } });
      return refused;
    });
  });
});

/**
 * A limitation of kube-apiserver 1.37 (kubernetes/kubernetes#130887, fix proposed in
 * #141015), on its own control plane because it poisons the API server it runs on.
 * The scale gate's parameters (StatefulSets) come from a watch the API server starts
 * from its shared informer factory for the first binding that needs them, and stops
 * once no binding has needed them for one policy refresh (1 s); a new binding then
 * gets the stopped watch back: a frozen copy of the StatefulSets. Until kube-apiserver
 * restarts, a StatefulSet subscribed after that is not seen (its kubectl scale down
 * passes) and a pause is not seen either. docs/rollout.md ("Scale-down") says so.
 * When this test fails, the API server no longer does this: drop the caveat there.
 */
describe('scale gate: after its binding was gone for a second, kube-apiserver 1.37 judges by a frozen copy of the StatefulSets until it restarts', function () {
  this.timeout(5 * 60_000);
  let c: Cluster | undefined;
  after(() => stopOwnCluster(c));

  it('a StatefulSet subscribed after the binding came back slips through kubectl scale; a restart of kube-apiserver fixes it', async function () {
    this.timeout(80 * 60_000);
    c = await ownCluster({});
    const cl = c;
    const ns = await namespace(cl, 'frozen');
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    /** kubectl scale to one less: true when it passed. */
    const lower = async (name: string): Promise<boolean> => {
      const n = (await cl.apps.readNamespacedStatefulSetScale({ name, namespace: ns })).spec?.replicas ?? 0;
      return cl.apps.patchNamespacedStatefulSetScale({ name, namespace: ns, body: { spec: { replicas: n - 1 } } }, merge).then(
        () => true,
        (e: { code?: number }) => {
          if (e.code !== 403) throw e;
          return false;
        },
      );
    };
    /** kubectl scale down is refused (when it passes, spec.replicas is raised back to 5 for the next try). */
    const refused = async (name: string): Promise<boolean> => {
      if (!(await lower(name))) return true;
      await cl.apps.patchNamespacedStatefulSet({ name, namespace: ns, body: { spec: { replicas: 5 } } }, merge);
      return false;
    };
    await cl.apps.createNamespacedStatefulSet({ namespace: ns, body: subscribed('early', 5) });
    await waitUntil('the scale gate refusing early', 30_000, async () => refused('early'));
    const adm = cl.kc.makeApiClient(AdmissionregistrationV1Api);
    await adm.deleteValidatingAdmissionPolicyBinding({ name: 'sts-pilot-scale-gate' });
    await sleep(3000);
    await applyManifest(cl.kc, join(root, 'manifests', 'admission-gate.yaml'));
    await waitUntil('the binding back: early refused again', 30_000, async () => refused('early'));
    await cl.apps.createNamespacedStatefulSet({ namespace: ns, body: subscribed('late', 5) });
    await sleep(3000);
    expect(await lower('late'), 'kube-apiserver now sees StatefulSets created after the binding came back: kubernetes#130887 is fixed here, drop the caveat in docs/rollout.md').to.equal(true);
    await cl.cp?.restartApiserver();
    await waitUntil('late refused after the restart', 60_000, async () => refused('late'));
  });
});
