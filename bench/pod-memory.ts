// node --expose-gc bench/pod-memory.ts [count]: what the controller's pod cache costs per pod.
// Takes one real pod (a StatefulSet's, made Ready by the node agent, with its managedFields) from
// the local control plane and keeps `count` copies the ways a cache could: as the watch delivers
// it (JSON.parse), as the informer's list delivers it (client-node's deserialized V1Pod), without
// managedFields, and trimmed to what the rollout planner reads. See bench/README.md.
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { kubectl, startControlPlane } from '../test/cluster/controlplane.ts';
import { NodeAgent } from '../test/cluster/node-agent.ts';
import { statefulSet } from '../test/integration/harness.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with --expose-gc: node --expose-gc bench/pod-memory.ts');
  process.exit(2);
}
const count = Number(process.argv[2] ?? 6000);

const cp = await startControlPlane({});
let raw: string;
try {
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const agent = new NodeAgent({ kc, readyDelayMs: 100 });
  await agent.start();
  await kc.makeApiClient(AppsV1Api).createNamespacedStatefulSet({ namespace: 'default', body: statefulSet('web', { replicas: 1, hook: 'noop' }) });
  for (let i = 0; ; i++) {
    raw = await kubectl(cp, ['get', 'pod', 'web-0', '-o', 'json', '--show-managed-fields']).catch(() => '');
    if (raw.includes('"Ready"') && raw.includes('"True"')) break;
    if (i > 100) throw new Error('pod web-0 never became Ready');
    await sleep(200);
  }
  await agent.stop();
} finally {
  await cp.stop();
}

interface PodJson {
  metadata: Record<string, unknown> & { managedFields?: unknown };
  status: { conditions?: { type: string }[] };
}
const compact = JSON.stringify(JSON.parse(raw));
console.log(`one pod: ${compact.length} bytes of JSON, of which managedFields ${JSON.stringify((JSON.parse(raw) as PodJson).metadata.managedFields).length}`);
const copy = (i: number): string => compact.replaceAll('web-0', `web-${i}`).replace(/"uid":"[^"]+"/, `"uid":"${i}-${Math.random()}"`);

function measure(label: string, make: (json: string) => unknown): void {
  gc?.();
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const keep: unknown[] = [];
  for (let i = 0; i < count; i++) keep.push(make(copy(i)));
  gc?.();
  gc?.();
  const bytes = process.memoryUsage().heapUsed - before;
  console.log(`${label.padEnd(58)} ${(bytes / count / 1024).toFixed(1).padStart(5)} KiB per pod, ${(bytes / 2 ** 20).toFixed(1).padStart(5)} MiB for ${count}${keep.length < 0 ? '' : ''}`);
}

measure('as the watch delivers it (JSON.parse)', (j) => JSON.parse(j));
measure("as the list delivers it (client-node's V1Pod)", (j) => ObjectSerializer.deserialize(JSON.parse(j), 'V1Pod', ''));
measure('watch object without managedFields', (j) => {
  const o = JSON.parse(j) as PodJson;
  delete o.metadata.managedFields;
  return o;
});
measure('trimmed to what the planner reads', (j) => {
  const o = JSON.parse(j) as PodJson;
  const m = o.metadata;
  return {
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, labels: m.labels, ownerReferences: m.ownerReferences, deletionTimestamp: m.deletionTimestamp },
    status: { conditions: o.status.conditions?.filter((c) => c.type === 'Ready') },
  };
});
