import { AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, loadAllYaml, PatchStrategy, setHeaderOptions, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { pilotCrdYaml } from '../../lib/pilot/crd.ts';
import { type ControlPlane, freePort, startControlPlane } from '../cluster/controlplane.ts';
import { NodeAgent } from '../cluster/node-agent.ts';
import { chartDir, expectedManifests, generatedOnDisk, goTool, helmTemplate, root } from '../tools/chart.ts';
import {
  type Cluster,
  ControllerProcess,
  converged,
  createAndSettle,
  eventsFor,
  partitionOf,
  podsOf,
  readSts,
  RecordingHook,
  rolloutFinished,
  serviceAccountKubeconfig,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

const exec = promisify(execFile);

/** The values sets every check runs on: [name, release namespace, --set values]. */
const MATRIX: [string, string, string[]][] = [
  ['defaults', 'sts-pilot-system', []],
  ['namespace-scoped RBAC, two watched namespaces', 'sts-pilot', ['rbac.namespaced=true', 'watchNamespaces={apps,web}']],
  ['another label key, namespace and image', 'ops', ['labelKey=dd-statefulset-pilot', 'image.repository=registry.example/sts-pilot', 'image.tag=0.1.0-rc1', 'namespace.create=true']],
  // What 1.30-1.35 get (docs/install.md, "Kubernetes versions"); the API server here accepts its objects too.
  ['the validating-only gate', 'sts-pilot-system', ['admission.mode=validating-only']],
  ['monitoring on', 'sts-pilot-system', ['metrics.serviceMonitor.enabled=true', 'prometheusRule.enabled=true', 'grafanaDashboard.enabled=true', 'prometheusRule.rolloutHeldSeconds=600']],
  ['the least: no CRD, no gate, no pilot RBAC, one replica without a Lease', 'sts-pilot-system', ['crds.install=false', 'admission.gate=false', 'admission.ownPilotOnly=false', 'pilot.rbac=false', 'metrics.service.enabled=false', 'leaderElection.enabled=false', 'replicas=1']],
  ['everything set', 'sts-pilot-system', [
    'logLevel=debug', 'workers=8', 'hookTimeout=120', 'extraArgs={--hook-retry-max=60}', 'hooks.allow={10.0.0.0/8}', 'httpHook.allow={*.svc.cluster.local}', 'hooks.allowLoopback=true',
    'pilot.bindings[0].namespace=search', 'pilot.bindings[0].serviceAccount=es', 'resources.requests.cpu=100m', 'nodeSelector.kubernetes\\.io/os=linux',
    'tolerations[0].key=dedicated', 'tolerations[0].operator=Exists', 'podAnnotations.team=db', 'priorityClassName=system-cluster-critical',
    'imagePullSecrets[0].name=registry', 'leaderElection.leaseDuration=30', 'leaderElection.renewDeadline=20',
  ]],
];
// Issue 25: the pilots' PodMonitor, the admission fence and spread switched off, use as a subchart.
MATRIX.push(
  ['the pilots\' PodMonitor, no admission fence, no spread, no PDB', 'sts-pilot-system', ['metrics.podMonitor.enabled=true', 'metrics.podMonitor.labels.release=prom', 'rbac.admissionFence=false', 'topologySpreadConstraints=null', 'podDisruptionBudget.enabled=false']],
  ['a subchart: global values, CRD not kept, a PDB by minAvailable, spread over zones', 'sts-pilot-system', ['global.imageRegistry=registry.example', 'global.labels.team=db', 'crds.keep=false', 'podDisruptionBudget.minAvailable=1', 'replicas=3', 'topologySpreadConstraints[0].maxSkew=1', 'topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone', 'topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule']],
);

/**
 * Stand-ins for prometheus-operator's CRDs, so the ServiceMonitor and PrometheusRule
 * can be dry-run on the API server: the kinds and the fields the chart sets, typed as
 * upstream's, nothing more (the rules themselves are checked by promtool).
 */
const MONITORING_CRDS = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: servicemonitors.monitoring.coreos.com }
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: { kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [selector]
              properties:
                selector: { type: object, properties: { matchLabels: { type: object, additionalProperties: { type: string } } } }
                endpoints:
                  type: array
                  items:
                    type: object
                    properties:
                      port: { type: string }
                      path: { type: string }
                      honorLabels: { type: boolean }
                      interval: { type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' }
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: prometheusrules.monitoring.coreos.com }
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: { kind: PrometheusRule, plural: prometheusrules, singular: prometheusrule, listKind: PrometheusRuleList }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                groups:
                  type: array
                  items:
                    type: object
                    required: [name]
                    properties:
                      name: { type: string, minLength: 1 }
                      rules:
                        type: array
                        items:
                          type: object
                          required: [expr]
                          properties:
                            alert: { type: string }
                            record: { type: string }
                            expr: { x-kubernetes-int-or-string: true }
                            for: { type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' }
                            labels: { type: object, additionalProperties: { type: string } }
                            annotations: { type: object, additionalProperties: { type: string } }
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: podmonitors.monitoring.coreos.com }
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: { kind: PodMonitor, plural: podmonitors, singular: podmonitor, listKind: PodMonitorList }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [selector]
              properties:
                selector:
                  type: object
                  properties:
                    matchLabels: { type: object, additionalProperties: { type: string } }
                    matchExpressions:
                      type: array
                      items:
                        type: object
                        required: [key, operator]
                        properties: { key: { type: string }, operator: { type: string }, values: { type: array, items: { type: string } } }
                namespaceSelector:
                  type: object
                  properties: { any: { type: boolean }, matchNames: { type: array, items: { type: string } } }
                podMetricsEndpoints:
                  type: array
                  items:
                    type: object
                    properties:
                      port: { type: string }
                      path: { type: string }
                      interval: { type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' }
`;

/** The labels every object of the chart carries (docs/install.md, "Labels"). */
const STANDARD_LABELS = ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/component', 'app.kubernetes.io/part-of', 'helm.sh/chart'];

/** A recording HTTP endpoint on a given loopback address: counts requests, answers 200. */
async function listen(host: string): Promise<{ server: Server; url: string; requests: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    n++;
    req.resume();
    res.writeHead(200).end('ok');
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, url: `http://${host}:${(server.address() as AddressInfo).port}/hook`, requests: () => n };
}

describe('install: the Helm chart, kustomize and the plain manifests on a real API server', function () {
  this.timeout(5 * 60_000);
  let helm: string;
  let kubectl: string;
  let cp: ControlPlane;
  let c: Cluster;
  const controllers: ControllerProcess[] = [];
  const servers: Server[] = [];
  const hooks: RecordingHook[] = [];

  const k = async (...args: string[]): Promise<string> => (await exec(kubectl, ['--kubeconfig', cp.kubeconfigPath, ...args], { maxBuffer: 64 << 20 })).stdout;
  const kIn = async (input: string, ...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = execFile(kubectl, ['--kubeconfig', cp.kubeconfigPath, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
        err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
      );
      child.stdin?.end(input);
    });
  const h = async (...args: string[]): Promise<string> => (await exec(helm, ['--kubeconfig', cp.kubeconfigPath, ...args], { maxBuffer: 64 << 20 })).stdout;
  const ensureNamespace = async (ns: string): Promise<void> => {
    await k('create', 'namespace', ns).catch((e: { stderr?: string }) => {
      if (!/AlreadyExists/.test(e.stderr ?? '')) throw e;
    });
  };
  const canI = async (sa: string, ...args: string[]): Promise<boolean> => {
    const r = await exec(kubectl, ['--kubeconfig', cp.kubeconfigPath, 'auth', 'can-i', '--as', sa, ...args]).then(
      (x) => x.stdout.trim(),
      (e: { stdout?: string }) => (e.stdout ?? '').trim(),
    );
    return r === 'yes';
  };

  before(async function () {
    this.timeout(80 * 60_000); // a first run builds helm (and the control plane)
    helm = await goTool('helm', (l) => console.log(`      [helm] ${l}`));
    // Its own control plane: installing the chart for real replaces cluster-wide objects
    // (ClusterRoles, admission policies) that the other suites' controller relies on.
    cp = await startControlPlane({ log: (l) => console.log(`      [control plane] ${l}`) });
    kubectl = join(cp.binDir, 'kubectl');
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const agent = new NodeAgent({ kc, readyDelayMs: 300, terminationDelayMs: 200 });
    await agent.start();
    c = { cp, kubeconfigPath: cp.kubeconfigPath, controllerKubeconfigPath: '', kc, apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api), agent };
    await kIn(MONITORING_CRDS, 'apply', '-f', '-');
  });

  after(async () => {
    for (const p of controllers) await p.kill();
    for (const s of servers) s.close();
    for (const hk of hooks) hk.stop();
    await c?.agent.stop();
    await cp?.stop();
  });

  it('helm lint --strict passes for every values set of the matrix', async () => {
    for (const [name, ns, set] of MATRIX) {
      const out = await h('lint', '--strict', chartDir, '--namespace', ns, ...set.flatMap((s) => ['--set', s])).catch((e: { stdout?: string }) => {
        throw new Error(`helm lint (${name}): ${e.stdout}`);
      });
      expect(out, name).to.match(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('manifests/ is exactly what the chart renders, and the chart carries the CRD lib/pilot/crd.ts generates (npm run manifests)', async () => {
    expect(readFileSync(join(chartDir, 'files', 'crd-pilot.yaml'), 'utf8'), 'charts/sts-pilot/files/crd-pilot.yaml is stale: npm run manifests').to.equal(pilotCrdYaml());
    // The chart, its default image tag and the image move with the package version.
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    const chart = readFileSync(join(chartDir, 'Chart.yaml'), 'utf8');
    expect(chart, 'Chart.yaml version and appVersion follow package.json').to.match(new RegExp(`^version: ${version.replace(/\./g, '\\.')}$[\\s\\S]*^appVersion: "${version.replace(/\./g, '\\.')}"$`, 'm'));
    const expected = await expectedManifests(helm);
    for (const [path, text] of expected) {
      expect(existsSync(join(root, path)), `${path} is missing: npm run manifests`).to.equal(true);
      expect(readFileSync(join(root, path), 'utf8'), `${path} differs from the chart's rendering: npm run manifests (and edit the chart, not the file)`).to.equal(text);
    }
    expect(generatedOnDisk().filter((f) => !expected.has(f)), 'files in manifests/ the chart does not render').to.deep.equal([]);
  });

  it('the gate for older Kubernetes is admission-gate.yaml\'s objects: the mutating ones at v1beta1, or its validating ones (the template backstop replaced by sts-pilot-write-gate), none with parameters', () => {
    type Obj = { apiVersion?: string; kind?: string; metadata?: { name?: string } };
    const load = (f: string): Obj[] => (loadAllYaml(readFileSync(join(root, 'manifests', f), 'utf8')) as (Obj | null)[]).filter((d): d is Obj => !!d?.kind);
    const v1 = load('admission-gate.yaml');
    const beta = load('admission-gate-v1beta1.yaml');
    const validating = load('admission-gate-validating.yaml');
    const mutating = (o: Obj): boolean => o.kind?.startsWith('MutatingAdmissionPolicy') ?? false;
    expect(beta).to.deep.equal(v1.map((o) => (mutating(o) ? { ...o, apiVersion: 'admissionregistration.k8s.io/v1beta1' } : o)));
    const key = (o: Obj): string => `${o.kind ?? ''}/${o.metadata?.name ?? ''}`;
    // sts-pilot-template-gate refuses what sts-pilot-hold-partition did not hold, and says that policy did not act:
    // here there is none, and sts-pilot-write-gate refuses those writes with a message for a cluster without it.
    const template = (o: Obj): boolean => o.metadata?.name === 'sts-pilot-template-gate';
    expect(v1.filter(template).map(key)).to.deep.equal(['ValidatingAdmissionPolicy/sts-pilot-template-gate', 'ValidatingAdmissionPolicyBinding/sts-pilot-template-gate']);
    expect(validating.filter((o) => o.metadata?.name !== 'sts-pilot-write-gate')).to.deep.equal(v1.filter((o) => !mutating(o) && !template(o)));
    expect(validating.map(key).filter((k) => k.endsWith('/sts-pilot-write-gate'))).to.deep.equal(['ValidatingAdmissionPolicy/sts-pilot-write-gate', 'ValidatingAdmissionPolicyBinding/sts-pilot-write-gate']);
    expect(validating.some(mutating)).to.equal(false);
    // Parameterless like the rest of the gate: the label key and the controller's user written in, the binding selecting the label.
    type Gate = Obj & { spec?: { paramKind?: unknown; paramRef?: unknown; matchConditions?: { name: string; expression: string }[]; variables?: { name: string; expression: string }[]; matchResources?: { objectSelector?: unknown } } };
    const policy = validating.find((o) => o.kind === 'ValidatingAdmissionPolicy' && o.metadata?.name === 'sts-pilot-write-gate') as Gate;
    const binding = validating.find((o) => o.kind === 'ValidatingAdmissionPolicyBinding' && o.metadata?.name === 'sts-pilot-write-gate') as Gate;
    expect(policy.spec?.paramKind).to.equal(undefined);
    expect(binding.spec?.paramRef).to.equal(undefined);
    expect(binding.spec?.matchResources?.objectSelector).to.deep.equal({ matchExpressions: [{ key: 'sts-pilot.io/hook', operator: 'Exists' }] });
    expect(policy.spec?.matchConditions?.find((c) => c.name === 'not-the-controller')?.expression).to.equal("request.userInfo.username != 'system:serviceaccount:sts-pilot-system:sts-pilot-controller'");
    expect(policy.spec?.variables?.find((v) => v.name === 'opensTheGate')?.expression).to.include("'sts-pilot.io/hook' in oldObject.metadata.labels");
    expect(JSON.stringify(policy)).to.not.include('params.');
  });

  it('every values set renders, and the API server accepts every object (kubectl apply --dry-run=server)', async () => {
    let validated = 0;
    for (const [name, ns, set] of MATRIX) {
      for (const n of [ns, 'apps', 'web', 'search']) await ensureNamespace(n);
      const rendered = await helmTemplate(helm, { namespace: ns, set });
      const docs = (loadAllYaml(rendered) as ({ kind?: string } | null)[]).filter((d) => d?.kind);
      // --validate=strict: the API server's own schema of each kind refuses unknown and duplicate fields too.
      const out = await kIn(rendered, 'apply', '--dry-run=server', '--validate=strict', '-f', '-');
      const lines = out.trim().split('\n');
      expect(lines.filter((l) => l.endsWith('(server dry run)')), `${name}:\n${out}`).to.have.length(docs.length);
      validated += docs.length;
      // The standard labels, on every object (CRD, RBAC, admission objects, the helm test Pod included).
      type Meta = { kind: string; metadata?: { name?: string; labels?: Record<string, string> } };
      const unlabelled = (docs as Meta[]).flatMap((d) => STANDARD_LABELS.filter((l) => !d.metadata?.labels?.[l]).map((l) => `${d.kind}/${d.metadata?.name}: no ${l}`));
      expect(unlabelled, name).to.deep.equal([]);
      const crd = (docs as (Meta & { metadata?: { annotations?: Record<string, string> } })[]).find((d) => d.kind === 'CustomResourceDefinition');
      if (crd) expect(crd.metadata?.annotations?.['helm.sh/resource-policy'], `${name}: crds.keep`).to.equal(set.includes('crds.keep=false') ? undefined : 'keep');
      // The scale gate selects its parameters (the subscribed StatefulSets) by the label key the ConfigMap names.
      type Doc = { kind?: string; metadata?: { name?: string }; data?: Record<string, string>; spec?: { paramRef?: { namespace?: string; selector?: unknown } } };
      const gate = (docs as Doc[]).find((d) => d.kind === 'ConfigMap' && d.metadata?.name === 'sts-pilot-gate');
      const scaleGate = (docs as Doc[]).find((d) => d.kind === 'ValidatingAdmissionPolicyBinding' && d.metadata?.name === 'sts-pilot-scale-gate');
      if (set.includes('admission.gate=false')) {
        expect(scaleGate, name).to.equal(undefined);
      } else {
        expect(scaleGate?.spec?.paramRef, name).to.deep.equal({
          selector: { matchExpressions: [{ key: gate?.data?.labelKey, operator: 'Exists' }] },
          parameterNotFoundAction: 'Allow',
        });
      }
    }
    console.log(`      ${validated} rendered objects accepted by the API server's validation (${MATRIX.length} values sets)`);
  });

  for (const [what, set, message] of [
    ['a word for a number', ['workers=abc'], /at '\/workers': got string, want integer/],
    ['a bad label key', ['labelKey=bad key'], /at '\/labelKey': 'bad key' does not match pattern/],
    ['a bad namespace to watch', ['watchNamespaces={Apps}'], /at '\/watchNamespaces\/0'/],
    ['an unknown value', ['replica=3'], /additional properties 'replica' not allowed/],
    ['a namespace-scoped install without namespaces', ['rbac.namespaced=true'], /rbac\.namespaced=true needs watchNamespaces/],
    ['a renew deadline past the lease', ['leaderElection.renewDeadline=20'], /leaderElection\.renewDeadline must be shorter than leaderElection\.leaseDuration/],
  ] as const) {
    it(`refuses ${what} before rendering anything, saying why`, async () => {
      const err = await helmTemplate(helm, { set: [...set] }).then(
        () => undefined,
        (e: { stderr?: string }) => e.stderr,
      );
      expect(err).to.match(message);
    });
  }

  describe('installed with helm, namespace-scoped, in namespace sts-pilot watching apps', () => {
    const release = 'sts-pilot';
    const sa = `system:serviceaccount:${release}:sts-pilot-controller`;
    // The values of the release, given again on upgrade (docs/install.md: never --reuse-values).
    const installSets = ['rbac.namespaced=true', 'watchNamespaces={apps}', 'hooks.allow={127.0.0.1}', 'hooks.allowLoopback=true', 'replicas=1'];
    let saKubeconfig: string;
    let ctrl: ControllerProcess;
    let ctrlPort = 0;

    before(async () => {
      for (const n of ['apps', 'other']) await ensureNamespace(n);
      const out = await h('install', 'sts-pilot', chartDir, '--namespace', release, '--create-namespace', '--wait=false', ...installSets.flatMap((x) => ['--set', x]));
      expect(out).to.match(/STATUS: deployed/);
      saKubeconfig = await serviceAccountKubeconfig(c.kc, c.core, release, 'sts-pilot-controller');
    });

    it('kubectl auth can-i: the controller ServiceAccount may do its work in apps, and nothing with Secrets or pods anywhere else', async () => {
      const table: [string[], boolean][] = [
        // Secrets: listed and watched (label-selected by the controller), never read by name.
        [['list', 'secrets', '-n', 'apps'], true],
        [['watch', 'secrets', '-n', 'apps'], true],
        [['get', 'secrets', '-n', 'apps'], false],
        [['patch', 'statefulsets', '-n', 'apps'], true],
        [['delete', 'pods', '-n', 'apps'], true],
        [['create', 'pilots.sts-pilot.io', '-n', 'apps'], true],
        [['get', 'secrets', '-n', 'other'], false],
        [['get', 'secrets', '-n', release], false],
        [['get', 'secrets', '-n', 'kube-system'], false],
        [['list', 'statefulsets', '--all-namespaces'], false],
        [['list', 'pods', '--all-namespaces'], false],
        [['patch', 'statefulsets', '-n', 'other'], false],
        [['list', 'secrets', '-n', 'other'], false],
        // The cluster-wide thing it still reads: the gate's objects by name (the gate takes no parameters).
        [['get', 'validatingadmissionpolicies.admissionregistration.k8s.io/sts-pilot-partition-gate'], true],
        [['get', 'validatingadmissionpolicies.admissionregistration.k8s.io/some-other-policy'], false],
        [['get', 'configmaps/sts-pilot-gate', '-n', release], false],
        [['get', 'configmaps/other', '-n', release], false],
        [['update', 'leases.coordination.k8s.io', '-n', release], true],
      ];
      const wrong: string[] = [];
      for (const [args, want] of table) if ((await canI(sa, ...args)) !== want) wrong.push(`can-i ${args.join(' ')}: expected ${want ? 'yes' : 'no'}`);
      expect(wrong).to.deep.equal([]);
      // And no ClusterRole of the chart grants Secrets at all.
      const roles = JSON.parse(await k('get', 'clusterroles', '-o', 'json')) as { items: { metadata: { name: string }; rules?: { resources?: string[] }[] }[] };
      const mine = roles.items.filter((r) => r.metadata.name.startsWith('sts-pilot-controller'));
      expect(mine.flatMap((r) => (r.rules ?? []).flatMap((x) => x.resources ?? []))).to.not.include('secrets');
    });

    it('the controller runs with the rendered Deployment\'s flags and RBAC: a rollout in apps finishes, a StatefulSet in another namespace is never touched', async () => {
      const manifest = await h('get', 'manifest', release, '--namespace', release);
      const deployment = (loadAllYaml(manifest) as (V1Deployment | null)[]).find((d) => d?.kind === 'Deployment');
      const args = deployment?.spec?.template.spec?.containers[0]?.args ?? [];
      expect(args).to.include.members(['controller', '--namespace=apps', '--hook-allow=127.0.0.1', '--hook-allow-loopback']);
      const port = await freePort();
      ctrlPort = port;
      ctrl = await ControllerProcess.fromArgs(
        [...args.filter((a) => !a.startsWith('--probe-address')), `--probe-address=127.0.0.1:${port}`, '--kubeconfig', saKubeconfig],
        port,
        'sts-pilot-controller-0',
        { POD_NAMESPACE: release },
      );
      controllers.push(ctrl);
      expect(ctrl.logs.some((l) => l.msg === 'sts-pilot 0.1.0 controller starting' && l.version === '0.1.0'), 'the version in the log at start').to.equal(true);
      const hook = await new RecordingHook().start();
      hooks.push(hook);
      await createAndSettle(c, 'apps', statefulSet('web', { replicas: 3, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
      await c.apps.createNamespacedStatefulSet({ namespace: 'other', body: statefulSet('web', { replicas: 2, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }) });
      const from = (await readSts(c, 'apps', 'web')).status?.updateRevision ?? '';
      await setImage(c, 'apps', 'web', 'example/app:2');
      await waitUntil('the rollout in apps to finish', 60_000, () => rolloutFinished(c, 'apps', 'web', from));
      expect(hook.approvals('apps/web').map((x) => x.next?.name ?? 'end')).to.deep.equal(['web-2', 'web-1', 'web-0', 'end']);
      // The gate names the chart's controller (its user, rendered from the release namespace).
      await waitUntil('the admission gate check', 10_000, async () => ctrl.logs.some((l) => /^admission gate installed/.test(String(l.msg))));
      const other = await readSts(c, 'other', 'web');
      // The API server holds every subscribed StatefulSet from its creation; the controller never wrote this one.
      expect(partitionOf(other), 'held by the create itself').to.equal(2);
      expect(other.metadata?.annotations?.['sts-pilot.io/status'], 'a namespace it does not watch').to.equal(undefined);
      expect(hook.calls.filter((x) => x.sts.startsWith('other/'))).to.deep.equal([]);
    });

    it('helm test: the hook Pod\'s script passes against the running controller, and fails when the gate is not what the values asked', async () => {
      const hooksYaml = await h('get', 'hooks', release, '--namespace', release);
      const pod = (loadAllYaml(hooksYaml) as (V1Pod | null)[]).find((d) => d?.kind === 'Pod' && d.metadata?.name === 'sts-pilot-test-install');
      expect(pod?.metadata?.annotations?.['helm.sh/hook']).to.equal('test');
      const container = pod?.spec?.containers[0];
      expect(container?.command).to.deep.equal(['/usr/local/bin/node', '--input-type=module', '--eval']);
      const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value ?? '']));
      expect(env).to.include({ STS_PILOT_URL: `http://sts-pilot-metrics.${release}.svc:8080`, EXPECT_GATE: 'enforced' });
      // The Pod's own command and script, here with node, against the controller's probe address
      // (this control plane has no kubelet to run the Pod).
      const run = async (over: Record<string, string>): Promise<{ code: number; out: string }> =>
        exec(process.execPath, ['--input-type=module', '--eval', container?.args?.[0] ?? ''], { env: { ...process.env, ...env, STS_PILOT_URL: `http://127.0.0.1:${ctrlPort}`, TIMEOUT_SECONDS: '30', ...over } }).then(
          (r) => ({ code: 0, out: r.stdout + r.stderr }),
          (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, out: (e.stdout ?? '') + (e.stderr ?? '') }),
        );
      const ok = await run({});
      expect(ok, ok.out).to.deep.include({ code: 0 });
      expect(ok.out).to.match(/sts-pilot controller ready at .*; admission gate enforced, as the values asked/);
      const wrong = await run({ EXPECT_GATE: 'off', TIMEOUT_SECONDS: '5' });
      expect(wrong.code, wrong.out).to.equal(1);
      expect(wrong.out).to.match(/admission\.gate=false, but the controller finds a gate enforced/);
      const away = await run({ STS_PILOT_URL: `http://127.0.0.1:${await freePort()}`, TIMEOUT_SECONDS: '5' });
      expect(away.code, away.out).to.equal(1);
    });

    it('the controller\'s user may delete only pods of subscribed StatefulSets, write only its own Leases, and only append requests to Pilots (rbac.admissionFence)', async () => {
      const skc = new KubeConfig();
      skc.loadFromFile(saKubeconfig);
      const core = skc.makeApiClient(CoreV1Api);
      const leases = skc.makeApiClient(CoordinationV1Api);
      const refusal = async (fn: () => Promise<unknown>): Promise<string> =>
        fn().then(
          () => '',
          (e: { body?: unknown; message?: string }) => String(e.body ?? e.message),
        );
      await createAndSettle(c, 'apps', statefulSet('plain', { replicas: 1 }));
      await createAndSettle(c, 'apps', statefulSet('fenced', { replicas: 2, onDelete: true, hook: 'noop' }));
      await c.core.createNamespacedPod({ namespace: 'apps', body: { metadata: { name: 'bare' }, spec: { containers: [{ name: 'app', image: 'example/app:1' }] } } });
      // RBAC allows all three; the policies refuse two (the API server loads them asynchronously).
      for (const [what, args] of [['delete', ['pods', '-n', 'apps']], ['create', ['leases.coordination.k8s.io', '-n', release]]] as const) expect(await canI(sa, what, ...args), `${what} ${args[0]}`).to.equal(true);
      await waitUntil('a bare pod refused', 30_000, async () => /is not controlled by a StatefulSet/.test(await refusal(() => core.deleteNamespacedPod({ name: 'bare', namespace: 'apps' }))));
      await waitUntil('a pod of an unsubscribed StatefulSet refused', 30_000, async () =>
        /StatefulSet apps\/plain, which controls pod plain-0, has no label sts-pilot\.io\/hook/.test(await refusal(() => core.deleteNamespacedPod({ name: 'plain-0', namespace: 'apps' }))),
      );
      expect(await refusal(() => core.deleteNamespacedPod({ name: 'fenced-1', namespace: 'apps' })), 'a pod of a subscribed StatefulSet').to.equal('');
      expect((await c.core.readNamespacedPod({ name: 'plain-0', namespace: 'apps' })).metadata?.name, 'still there').to.equal('plain-0');
      // Leases: the leader's and the budgets' names only, in its own namespace.
      expect(await refusal(() => leases.createNamespacedLease({ namespace: release, body: { metadata: { name: 'someone-elses' }, spec: {} } }))).to.match(/writes only its leader Lease \(sts-pilot\) and its disruption budgets \(sts-pilot-budget-\*\), not sts-pilot\/someone-elses/);
      expect(await refusal(() => leases.createNamespacedLease({ namespace: release, body: { metadata: { name: 'sts-pilot-budget-0123456789abcdef0123' }, spec: {} } }))).to.equal('');
      // The controller's own OnDelete rollout, under the fence: it deletes each approved pod itself.
      await waitUntil('fenced-1 back', 30_000, async () => (await podsOf(c, 'apps', 'fenced')).filter((p) => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')).length === 2);
      const from = (await readSts(c, 'apps', 'fenced')).status?.updateRevision ?? '';
      await setImage(c, 'apps', 'fenced', 'example/app:2');
      await waitUntil('the OnDelete rollout to finish', 60_000, () => rolloutFinished(c, 'apps', 'fenced', from));
      expect(ctrl.logs.filter((l) => /sts-pilot-controller-pods/.test(JSON.stringify(l))), 'refusals of the controller\'s own deletes').to.deep.equal([]);
      // Pilots: the controller may append a request to spec.actions, and nothing else.
      const pilotPod = await c.core.createNamespacedPod({ namespace: 'apps', body: { metadata: { name: 'fenced-pilot' }, spec: { containers: [{ name: 'app', image: 'example/app:1' }] } } });
      const G = { group: 'sts-pilot.io', version: 'v1alpha1', plural: 'pilots', namespace: 'apps', name: 'fenced-pilot' };
      await c.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
        ...G,
        body: {
          apiVersion: 'sts-pilot.io/v1alpha1',
          kind: 'Pilot',
          metadata: { name: 'fenced-pilot', labels: { 'sts-pilot.io/statefulset': 'none' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'fenced-pilot', uid: pilotPod.metadata?.uid ?? '', controller: true }] },
          spec: { application: 'cassandra', actions: [{ id: 'decommission-1', action: 'decommission' }] },
        },
      });
      const pilots = skc.makeApiClient(CustomObjectsApi);
      const patch = (body: unknown[]) => refusal(() => pilots.patchNamespacedCustomObject({ ...G, body }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)));
      await waitUntil('a changed application refused', 30_000, async () =>
        /only appends requests to a Pilot's spec\.actions; it may not change the application, options, labels or owners of apps\/fenced-pilot/.test(await patch([{ op: 'replace', path: '/spec/application', value: 'kafka' }])),
      );
      expect(await patch([{ op: 'remove', path: '/spec/actions/0' }, { op: 'add', path: '/spec/actions/-', value: { id: 'decommission-2', action: 'decommission' } }])).to.match(/may not change or drop one already in apps\/fenced-pilot/);
      expect(await patch([{ op: 'add', path: '/metadata/labels/x', value: 'y' }])).to.match(/may not change the application, options, labels or owners/);
      expect(await patch([{ op: 'add', path: '/spec/actions/-', value: { id: 'decommission-2', action: 'decommission' } }]), 'an appended request').to.equal('');
      await c.core.deleteNamespacedPod({ name: 'fenced-pilot', namespace: 'apps' });
      // People are not matched: an administrator deletes what they like.
      await c.core.deleteNamespacedPod({ name: 'bare', namespace: 'apps' });
      await c.kc.makeApiClient(CoordinationV1Api).deleteNamespacedLease({ name: 'sts-pilot-budget-0123456789abcdef0123', namespace: release }).catch(() => undefined);
      for (const name of ['plain', 'fenced']) await c.apps.deleteNamespacedStatefulSet({ name, namespace: 'apps' });
    });

    it('http hook URLs outside --hook-allow, and the API server\'s own address, are held without a request', async () => {
      const outside = await listen('127.0.0.2'); // loopback, but not in the allowlist (127.0.0.1)
      servers.push(outside.server);
      const api = new URL(c.kc.getCurrentCluster()?.server ?? '');
      await createAndSettle(c, 'apps', statefulSet('outside', { replicas: 2, hook: 'http', annotations: { 'http.sts-pilot.io/url': outside.url } }));
      await createAndSettle(c, 'apps', statefulSet('apiserver', { replicas: 2, hook: 'http', annotations: { 'http.sts-pilot.io/url': `https://${api.host}/api/v1/secrets` } }));
      for (const name of ['outside', 'apiserver']) await setImage(c, 'apps', name, 'example/app:2');
      const held = async (name: string, reason: RegExp) =>
        waitUntil(`${name} held with a reason`, 30_000, async () => (await eventsFor(c, 'apps', name)).find((e) => e.reason === 'HookHeld' && reason.test(e.message)));
      const e1 = await held('outside', /is not allowed: 127\.0\.0\.2 is not in the controller's --hook-allow \(127\.0\.0\.1\)/);
      const e2 = await held('apiserver', /is not allowed: 127\.0\.0\.1:\d+ is the API server; hooks may not call it/);
      expect(e1.message).to.match(/^http holds pod outside-1: http:\/\/127\.0\.0\.2:\d+\/hook is not allowed/);
      expect(e2.message).to.match(/^http holds pod apiserver-1/);
      expect(outside.requests(), 'requests that reached the service outside the list').to.equal(0);
      for (const name of ['outside', 'apiserver']) expect(partitionOf(await readSts(c, 'apps', name))).to.equal(2);
    });

    it('helm upgrade changes the controller\'s flags; helm uninstall leaves every partition where it was, and lowering it by hand then rolls natively', async () => {
      const out = await h('upgrade', 'sts-pilot', chartDir, '--namespace', release, ...[...installSets, 'logLevel=debug'].flatMap((x) => ['--set', x]), '--wait=false');
      expect(out).to.match(/STATUS: deployed/);
      const manifest = await h('get', 'manifest', release, '--namespace', release);
      expect(manifest).to.include('--log-level=debug');
      // A rollout held half-way: the hook approves the first pod only.
      const hook = await new RecordingHook().start();
      hooks.push(hook);
      hook.decide = (call) => call.next?.name === 'held-2';
      await createAndSettle(c, 'apps', statefulSet('held', { replicas: 3, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }));
      const from = (await readSts(c, 'apps', 'held')).status?.updateRevision ?? '';
      await setImage(c, 'apps', 'held', 'example/app:2');
      await waitUntil('held-2 updated and held-1 refused', 60_000, async () => {
        const pods = await podsOf(c, 'apps', 'held');
        const upd = (await readSts(c, 'apps', 'held')).status?.updateRevision;
        return hook.calls.some((x) => x.next?.name === 'held-1' && !x.approved) && pods.find((p) => p.metadata?.name === 'held-2')?.metadata?.labels?.['controller-revision-hash'] === upd;
      });
      // While installed, the gate refuses a person lowering the partition.
      const refused = await k('patch', 'statefulset', 'held', '-n', 'apps', '--type=merge', '-p', '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}').then(
        () => '',
        (e: { stderr?: string }) => e.stderr ?? '',
      );
      expect(refused).to.match(/sts-pilot holds the partition of StatefulSet apps\/held: lowering it from 2 to 0/);
      // Uninstall: the controller goes (its Deployment would; here its process), then the chart's objects.
      await ctrl.kill('SIGTERM');
      expect(await h('uninstall', 'sts-pilot', '--namespace', release, '--wait')).to.match(/uninstalled/);
      const revisionsBefore = (await podsOf(c, 'apps', 'held')).map((p) => `${p.metadata?.name}@${p.metadata?.labels?.['controller-revision-hash']}`);
      await sleep(5000);
      const sts = await readSts(c, 'apps', 'held');
      expect(partitionOf(sts), 'the partition sts-pilot left').to.equal(2);
      expect((await podsOf(c, 'apps', 'held')).map((p) => `${p.metadata?.name}@${p.metadata?.labels?.['controller-revision-hash']}`)).to.deep.equal(revisionsBefore);
      expect(await k('get', 'validatingadmissionpolicies', '-o', 'name')).to.not.include('sts-pilot');
      // crds.keep (default): the Pilot CRD and every Pilot stay.
      expect(await k('get', 'crd', 'pilots.sts-pilot.io', '-o', 'name')).to.equal('customresourcedefinition.apiextensions.k8s.io/pilots.sts-pilot.io\n');
      expect((await k('get', 'pilots', '-n', 'apps', '-o', 'name')).trim().split('\n'), 'Pilots kept').to.include('pilot.sts-pilot.io/held-0');
      // A person takes over: lower the partition, and the StatefulSet controller finishes the rollout by itself.
      await k('patch', 'statefulset', 'held', '-n', 'apps', '--type=merge', '-p', '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}');
      await waitUntil('the native rollout to finish', 60_000, async () => {
        const s = await converged(c, 'apps', 'held');
        return s && s.status?.updateRevision !== from ? s : undefined;
      });
    });
  });

  describe('installed with kubectl apply -k (after the helm release is gone)', () => {
    it('manifests/ installs the base in sts-pilot-system, and the example overlay the same in sts-pilot-ops, each naming its own controller to the gate', async () => {
      const base = await k('apply', '-k', join(root, 'manifests'));
      expect(base).to.match(/deployment\.apps\/sts-pilot-controller created/);
      const gate = JSON.parse(await k('get', 'configmap', 'sts-pilot-gate', '-n', 'sts-pilot-system', '-o', 'json')) as { data: Record<string, string> };
      expect(gate.data).to.deep.equal({ labelKey: 'sts-pilot.io/hook', controller: 'system:serviceaccount:sts-pilot-system:sts-pilot-controller' });
      expect(await canI('system:serviceaccount:sts-pilot-system:sts-pilot-controller', 'list', 'statefulsets', '--all-namespaces')).to.equal(true);
      await k('delete', '-k', join(root, 'manifests'), '--wait');

      const overlay = await k('apply', '-k', join(root, 'examples', 'kustomize-other-namespace'));
      expect(overlay).to.match(/namespace\/sts-pilot-ops created/);
      const moved = JSON.parse(await k('get', 'configmap', 'sts-pilot-gate', '-n', 'sts-pilot-ops', '-o', 'json')) as { data: Record<string, string> };
      expect(moved.data.controller).to.equal('system:serviceaccount:sts-pilot-ops:sts-pilot-controller');
      for (const kind of ['validatingadmissionpolicybinding', 'mutatingadmissionpolicybinding']) {
        const bindings = JSON.parse(await k('get', kind, '-o', 'json')) as { items: { metadata: { name: string }; spec: { paramRef?: { namespace?: string } } }[] };
        for (const b of bindings.items.filter((x) => x.metadata.name.startsWith('sts-pilot'))) {
          // Only the Pilot policy reads the ConfigMap; the scale gate's parameters are the
          // subscribed StatefulSets of each request's own namespace; the others take none.
          const expected = b.metadata.name === 'sts-pilot-own-pilot-only' ? 'sts-pilot-ops' : undefined;
          expect(b.spec.paramRef?.namespace, b.metadata.name).to.equal(expected);
        }
      }
      for (const [kind, name] of [['mutatingadmissionpolicy', 'sts-pilot-hold-replicas'], ['validatingadmissionpolicy', 'sts-pilot-partition-gate']] as const) {
        const policy = JSON.parse(await k('get', kind, name, '-o', 'json')) as { spec: { matchConditions: { name: string; expression: string }[] } };
        const cond = policy.spec.matchConditions.find((m) => m.name === 'not-the-controller');
        expect(cond?.expression, name).to.equal("request.userInfo.username != 'system:serviceaccount:sts-pilot-ops:sts-pilot-controller'");
      }
      // The fence of the controller's own pod deletes and Lease writes matches the moved controller.
      for (const name of ['sts-pilot-controller-pods', 'sts-pilot-controller-pods-subscribed', 'sts-pilot-controller-leases', 'sts-pilot-controller-pilots']) {
        const policy = JSON.parse(await k('get', 'validatingadmissionpolicy', name, '-o', 'json')) as { spec: { matchConditions: { name: string; expression: string }[] } };
        expect(policy.spec.matchConditions.find((m) => m.name === 'the-controller')?.expression, name).to.equal("request.userInfo.username == 'system:serviceaccount:sts-pilot-ops:sts-pilot-controller'");
      }
      expect(await canI('system:serviceaccount:sts-pilot-ops:sts-pilot-controller', 'list', 'statefulsets', '--all-namespaces')).to.equal(true);
      expect(await canI('system:serviceaccount:sts-pilot-ops:sts-pilot-controller', 'update', 'leases.coordination.k8s.io', '-n', 'sts-pilot-ops')).to.equal(true);
      expect(await k('get', 'deployment', '-n', 'sts-pilot-system', '-o', 'name').catch(() => '')).to.equal('');
    });
  });
});
