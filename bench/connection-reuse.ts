// node bench/connection-reuse.ts: what one API request costs the controller with
// @kubernetes/client-node as it is (KubeConfig.applySecurityAuthentication builds a new
// undici Agent for every request, so every request opens a new TLS connection) and
// with one Agent shared by all requests (connections kept alive and reused).
// Evidence for a proposed fix in lib/kube/config.ts; see bench/README.md.
import { CoordinationV1Api, KubeConfig, type RequestContext } from '@kubernetes/client-node';
import type { Dispatcher } from 'undici';
import { startControlPlane } from '../test/cluster/controlplane.ts';
import { percentile, timeSequential } from './stats.ts';

/** One undici Agent for every request: connections are kept alive and reused. */
class SharedAgentKubeConfig extends KubeConfig {
  private dispatcher: Dispatcher | undefined;
  override async applySecurityAuthentication(ctx: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(ctx);
    this.dispatcher ??= ctx.getDispatcher();
    if (this.dispatcher) ctx.setDispatcher(this.dispatcher);
  }
}

const requests = Number(process.argv[2] ?? 300);
const cp = await startControlPlane({});
try {
  // Twice each, alternating, so load drift on the machine falls on both.
  const variants = [
    ['client-node as is (new Agent per request)', () => new KubeConfig()],
    ['one shared Agent', () => new SharedAgentKubeConfig()],
  ] as const;
  for (let round = 0; round < 2; round++) {
    for (const [label, make] of variants) {
      const kc = make();
      kc.loadFromFile(cp.kubeconfigPath);
      const api = kc.makeApiClient(CoordinationV1Api);
      for (let i = 0; i < 20; i++) await api.listNamespacedLease({ namespace: 'default' });
      const { ms, cpuMsPerCall } = await timeSequential(requests, () => api.listNamespacedLease({ namespace: 'default' }));
      console.log(
        `${label.padEnd(42)} ${requests} sequential GETs: p50 ${percentile(ms, 50).toFixed(2)} ms, p99 ${percentile(ms, 99).toFixed(2)} ms, ` +
          `client CPU ${cpuMsPerCall.toFixed(2)} ms per request`,
      );
    }
  }
} finally {
  await cp.stop();
}
