import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Cluster, cluster } from './harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

describe('manifests/ on a real kube-apiserver', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
  });

  it('every manifest is accepted by the server (kubectl apply --dry-run=server)', async () => {
    const kubectl = c.cp ? join(c.cp.binDir, 'kubectl') : 'kubectl';
    // Objects of the example live in its namespace; a server-side dry run needs it to exist.
    await run(kubectl, ['--kubeconfig', c.kubeconfigPath, 'create', 'namespace', 'search']).catch((e: { stderr?: string }) => {
      if (!/AlreadyExists/.test(e.stderr ?? '')) throw e;
    });
    // Every object file (kustomization.yaml is kustomize's, applied with -k in chart.test.ts).
    // The gate of another mode is for another server (docs/install.md, "Kubernetes versions"): the v1beta1
    // MutatingAdmissionPolicy file is applied only where that API is served (1.34-1.35 with its beta on).
    const served = new Set((await run(kubectl, ['--kubeconfig', c.kubeconfigPath, 'api-versions'])).stdout.split('\n').map((l) => l.trim()));
    const needs: Record<string, string> = { 'admission-gate-v1beta1.yaml': 'admissionregistration.k8s.io/v1beta1' };
    const files = readdirSync(join(root, 'manifests')).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml' && (needs[f] === undefined || served.has(needs[f])));
    const { stdout } = await run(kubectl, ['--kubeconfig', c.kubeconfigPath, 'apply', '--dry-run=server', ...files.flatMap((f) => ['-f', join(root, 'manifests', f)])]);
    const lines = stdout.trim().split('\n');
    for (const kind of ['customresourcedefinition.apiextensions.k8s.io/pilots.sts-pilot.io', 'deployment.apps/sts-pilot-controller', 'clusterrole.rbac.authorization.k8s.io/sts-pilot-controller', 'clusterrole.rbac.authorization.k8s.io/sts-pilot-pilot', 'statefulset.apps/es', 'service/sts-pilot-metrics', 'validatingadmissionpolicy.admissionregistration.k8s.io/sts-pilot-own-pilot-only']) {
      expect(lines.some((l) => l.startsWith(kind) && l.endsWith('(server dry run)')), `${kind} in:\n${stdout}`).to.equal(true);
    }
  });
});
