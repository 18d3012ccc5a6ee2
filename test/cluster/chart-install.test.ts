import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { detectGateMode } from '../../lib/kube/gate-mode.ts';
import { expectedGateMode, statefulSet } from '../integration/harness.ts';
import { chartDir, goTool, helmTemplate } from '../tools/chart.ts';
import { type ControlPlane, startControlPlane } from './controlplane.ts';

const exec = promisify(execFile);

/**
 * The chart on the control plane STS_PILOT_K8S_VERSION selects (test/cluster/matrix.sh
 * runs it on the oldest of the matrix): `helm install` passes its kubeVersion, picks
 * the gate by .Capabilities.APIVersions, and that gate keeps the partition shut.
 * Not part of `npm test` (test/integration/chart.test.ts covers 1.37 in depth).
 */
describe('install: the Helm chart on this Kubernetes version picks the gate it serves', function () {
  this.timeout(5 * 60_000);
  let cp: ControlPlane;
  let helm: string;
  let apps: AppsV1Api;
  const want = expectedGateMode();
  // STS_PILOT_GATE_MODE: a weaker gate on a newer server, chosen by value instead of by capability.
  const forced = process.env.STS_PILOT_GATE_MODE ? ['--set', `admission.mode=${want}`] : [];

  before(async function () {
    this.timeout(80 * 60_000);
    helm = await goTool('helm', (l) => console.log(`      [helm] ${l}`));
    cp = await startControlPlane({ log: (l) => console.log(`      [control plane] ${l}`) });
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    apps = kc.makeApiClient(AppsV1Api);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'apps' } } });
  });
  after(async () => {
    await cp?.stop();
  });

  it('refuses Kubernetes older than 1.30, saying so', async () => {
    const err = await helmTemplate(helm, { kubeVersion: '1.29.9' }).then(
      () => '',
      (e: { stderr?: string }) => e.stderr ?? '',
    );
    expect(err).to.match(/chart requires kubeVersion: >=1\.30\.0-0 which is incompatible with Kubernetes v1\.29\.9/);
  });

  it(`helm install deploys, with the gate ${want}`, async () => {
    const { stdout } = await exec(helm, ['--kubeconfig', cp.kubeconfigPath, 'install', 'sts-pilot', chartDir, '--namespace', 'sts-pilot-system', '--create-namespace', '--wait=false', '--set', 'replicas=1', ...forced]);
    expect(stdout).to.match(/STATUS: deployed/);
    const manifest = (await exec(helm, ['--kubeconfig', cp.kubeconfigPath, 'get', 'manifest', 'sts-pilot', '--namespace', 'sts-pilot-system'])).stdout;
    const kinds = [...manifest.matchAll(/^apiVersion: (admissionregistration\.k8s\.io\/\w+)\nkind: (\w+)\nmetadata:\n {2}name: (sts-pilot-[\w-]+)/gm)].map((m) => `${m[2]} ${m[3]} ${m[1]}`);
    if (want === 'validating-only') {
      expect(kinds.filter((k) => k.startsWith('Mutating')), 'no MutatingAdmissionPolicy here').to.deep.equal([]);
      expect(kinds).to.include('ValidatingAdmissionPolicy sts-pilot-write-gate admissionregistration.k8s.io/v1');
    } else {
      const version = want === 'mutating-v1' ? 'v1' : 'v1beta1';
      expect(kinds).to.include(`MutatingAdmissionPolicy sts-pilot-hold-partition admissionregistration.k8s.io/${version}`);
      expect(kinds.some((k) => k.includes('sts-pilot-write-gate'))).to.equal(false);
    }
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const mode = await detectGateMode(kc);
    if (forced.length) expect(mode.mode).to.equal(want);
    else expect(mode).to.deep.equal({ mode: want, capable: want, problems: [] });
  });

  it('the installed gate keeps the partition shut: a new image is held in the write, or refused with the safe write', async () => {
    // The API server loads new policies and bindings asynchronously: wait until a probe write shows
    // the gate in force, then check. (In the mutating modes the template backstop may refuse the
    // create until the mutating binding is loaded: then try again.)
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const deadline = Date.now() + 60_000;
    for (let i = 0; ; i++) {
      if (Date.now() > deadline) throw new Error('the gate was not in force within 60 s of helm install');
      const probe = statefulSet(`probe-${i}`, { replicas: 2, hook: 'noop' });
      const created = await apps.createNamespacedStatefulSet({ namespace: 'apps', body: probe }).then(() => true, (e: { code?: number }) => (e.code === 403 ? false : Promise.reject(e)));
      if (want === 'validating-only' && !created) break;
      if (want !== 'validating-only' && created) {
        const after = await apps.patchNamespacedStatefulSet({ name: `probe-${i}`, namespace: 'apps', body: { spec: { template: { metadata: { labels: { probe: 'x' } } } } } }, merge);
        if (after.spec?.updateStrategy?.rollingUpdate?.partition === 2) break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const sts: V1StatefulSet = statefulSet('web', { replicas: 3, hook: 'noop' });
    const spec = sts.spec as NonNullable<V1StatefulSet['spec']>;
    spec.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition: 3 } };
    await apps.createNamespacedStatefulSet({ namespace: 'apps', body: sts });
    // A controller-like partition of 1 (as mid-rollout), written by a paused hand.
    await apps.patchNamespacedStatefulSet(
      { name: 'web', namespace: 'apps', body: { metadata: { annotations: { 'sts-pilot.io/paused': 'true' } }, spec: { updateStrategy: { rollingUpdate: { partition: 1 } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await apps.patchNamespacedStatefulSet({ name: 'web', namespace: 'apps', body: { metadata: { annotations: { 'sts-pilot.io/paused': null } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const write = apps.patchNamespacedStatefulSet(
      { name: 'web', namespace: 'apps', body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'example/app:2' }] } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    if (want === 'validating-only') {
      const err = await write.then(
        () => undefined,
        (e: { code?: number; body?: unknown }) => e,
      );
      expect(err?.code, 'refused').to.equal(403);
      const body = typeof err?.body === 'string' ? (JSON.parse(err.body) as { message?: string }) : (err?.body as { message?: string });
      expect(body?.message).to.include('Set spec.updateStrategy.rollingUpdate.partition: 3 in the same write');
      expect((await apps.readNamespacedStatefulSet({ name: 'web', namespace: 'apps' })).spec?.template?.spec?.containers?.[0]?.image).to.equal('example/app:1');
    } else {
      const after = await write;
      expect(after.spec?.updateStrategy?.rollingUpdate?.partition, 'held in the same write').to.equal(3);
    }
  });

  it('helm uninstall removes the gate', async () => {
    await exec(helm, ['--kubeconfig', cp.kubeconfigPath, 'uninstall', 'sts-pilot', '--namespace', 'sts-pilot-system']);
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    expect((await detectGateMode(kc)).mode).to.equal('none');
  });
});
