// node bench/patch-path.ts: what the controller's partition patch costs on its way out, through
// client-node's generated AppsV1Api (request context, auth, middleware, ObjectSerializer on both
// ends) and as one undici request on the same pooled connection. Side by side, alternating.
import { AppsV1Api, HttpMethod, RequestContext, type V1StatefulSet } from '@kubernetes/client-node';
import { request } from 'undici';
import { PooledKubeConfig } from '../lib/kube/config.ts';
import { goJson, guardedPatch, jsonPatchOptions } from '../lib/kube/guarded-patch.ts';
import { startControlPlane } from '../test/cluster/controlplane.ts';
import { statefulSet } from '../test/integration/harness.ts';
import { percentile, timeSequential } from './stats.ts';

const n = Number(process.argv[2] ?? 300);
const cp = await startControlPlane({});
try {
  const kc = new PooledKubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const apps = kc.makeApiClient(AppsV1Api);
  const ns = 'default';
  const body = statefulSet('web', { replicas: 3, hook: 'noop', annotations: { 'sts-pilot.io/status': '{"state":"Steady"}' } });
  body.spec = { ...body.spec!, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 3 } } };
  let seen: V1StatefulSet = await apps.createNamespacedStatefulSet({ namespace: ns, body });
  const url = `${kc.getCurrentCluster()!.server}/apis/apps/v1/namespaces/${ns}/statefulsets/web?fieldManager=sts-pilot`;
  const ops = (p: number) => guardedPatch(seen, { 'sts-pilot.io/status': `{"state":"Rolling -> ${p}"}` }, p)!;

  const viaClient = async (p: number) => {
    seen = await apps.patchNamespacedStatefulSet({ name: 'web', namespace: ns, body: ops(p), fieldManager: 'sts-pilot' }, jsonPatchOptions());
  };
  // The raw path: headers and dispatcher from the same KubeConfig, once per request as well.
  const viaUndici = async (p: number) => {
    const ctx = new RequestContext(url, HttpMethod.PATCH);
    await kc.applySecurityAuthentication(ctx);
    const res = await request(url, {
      method: 'PATCH',
      headers: { ...ctx.getHeaders(), 'content-type': 'application/json-patch+json', accept: 'application/json' },
      body: goJson(JSON.stringify(ops(p))),
      dispatcher: ctx.getDispatcher(),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${text.slice(0, 300)}`);
    seen = JSON.parse(text) as V1StatefulSet;
  };
  const variants = [
    ['client-node AppsV1Api.patchNamespacedStatefulSet', viaClient],
    ['one undici request, same pooled Agent', viaUndici],
  ] as const;
  let p = 3;
  for (let round = 0; round < 3; round++) {
    for (const [label, send] of variants) {
      for (let i = 0; i < 20; i++) await send((p = p === 3 ? 2 : 3));
      const { ms, cpuMsPerCall } = await timeSequential(n, () => send((p = p === 3 ? 2 : 3)));
      console.log(
        `${label.padEnd(50)} ${n} guarded patches: p50 ${percentile(ms, 50).toFixed(2)} ms, p90 ${percentile(ms, 90).toFixed(2)} ms, ` +
          `client CPU ${cpuMsPerCall.toFixed(2)} ms per request`,
      );
    }
  }
} finally {
  await cp.stop();
}
