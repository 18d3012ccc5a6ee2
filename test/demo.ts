// npm run demo: a local control plane, the controller, and one rollout to watch.
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeAgent } from './cluster/node-agent.ts';
import { startControlPlane } from './cluster/controlplane.ts';
import {
  applyManifest,
  type Cluster,
  ControllerProcess,
  converged,
  createAndSettle,
  eventsFor,
  partitionOf,
  podsOf,
  readSts,
  serviceAccountKubeconfig,
  setImage,
  statefulSet,
} from './integration/harness.ts';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';

const t0 = Date.now();
const say = (s: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${s}`);

const replicas = Number(process.env.DEMO_REPLICAS ?? 5);
// `npm run demo -- --hook elasticsearch`, or DEMO_HOOK=elasticsearch
const hookArg = process.argv.indexOf('--hook');
const hookName = (hookArg >= 0 ? process.argv[hookArg + 1] : undefined) ?? process.env.DEMO_HOOK ?? 'noop';

say('starting a local control plane (the first run builds it from source; later runs take seconds)');
const cp = await startControlPlane({ log: (l) => say(`  ${l}`) });
const kc = new KubeConfig();
kc.loadFromFile(cp.kubeconfigPath);
const agent = new NodeAgent({ kc, readyDelayMs: 1500, terminationDelayMs: 500 });
await agent.start();
const core = kc.makeApiClient(CoreV1Api);
for (const file of ['crd-pilot.yaml', 'crd-metriccheck.yaml', 'namespace.yaml', 'rbac-controller.yaml']) await applyManifest(kc, `manifests/${file}`);
say('applied manifests/namespace.yaml and manifests/rbac-controller.yaml; the controller runs as its ServiceAccount');
const controllerKubeconfigPath = await serviceAccountKubeconfig(kc, core, 'sts-pilot-system', 'sts-pilot-controller');
const c: Cluster = { cp, kubeconfigPath: cp.kubeconfigPath, controllerKubeconfigPath, kc, apps: kc.makeApiClient(AppsV1Api), core, agent };
let ctrl: ControllerProcess | undefined;

const stopAll = async (): Promise<void> => {
  await ctrl?.kill('SIGTERM');
  await agent.stop();
  await cp.stop();
};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

try {
  ctrl = await ControllerProcess.start(c);
  say(`controller running (kubeconfig ${cp.kubeconfigPath})`);
  if (process.argv.includes('--bad-release')) {
    const { badReleaseDemo } = await import('./demo-checks.ts');
    await badReleaseDemo(c, say);
  } else if (hookName === 'elasticsearch') {
    const { esDemo } = await import('./demo-es.ts');
    await esDemo(c, agent, say);
  } else {
    await c.core.createNamespace({ body: { metadata: { name: 'demo' } } });
    say(`creating StatefulSet demo/web: ${replicas} replicas, label sts-pilot.io/hook=${hookName}`);
    const before = await createAndSettle(c, 'demo', statefulSet('web', { replicas, hook: hookName }));
    say(`all pods Ready; the controller holds partition = ${partitionOf(before)}`);
    const from = before.status?.updateRevision ?? '';

    say('changing the pod template (image example/app:1 -> example/app:2)');
    await setImage(c, 'demo', 'web', 'example/app:2');

    let last = '';
    for (;;) {
      // Pods before the StatefulSet: the partition shown is never older than the pods.
      const pods = await podsOf(c, 'demo', 'web');
      const sts = await readSts(c, 'demo', 'web');
      const cells = pods.map((p) => {
        const rev = p.metadata?.labels?.['controller-revision-hash'] === from ? 'v1' : 'v2';
        const ready = p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
        const state = p.metadata?.deletionTimestamp ? 'stopping' : ready ? 'ready' : 'starting';
        return `${p.metadata?.name} ${rev} ${state.padEnd(8)}`;
      });
      const line = `partition ${partitionOf(sts)} | ${cells.join(' | ')}`;
      if (line !== last) say(line);
      last = line;
      const done = await converged(c, 'demo', 'web');
      if (done && done.status?.updateRevision !== from && partitionOf(done) === replicas) break;
      await sleep(250);
    }
    say(`rollout finished; partition restored to ${replicas}`);
    const events = await eventsFor(c, 'demo', 'web');
    say('Events on demo/web:');
    for (const e of events.filter((x) => !x.reason.startsWith('Successful'))) console.log(`         ${e.type.padEnd(7)} ${e.reason.padEnd(16)} ${e.message}`);
  }
} finally {
  say('stopping everything the demo started');
  await stopAll();
}
