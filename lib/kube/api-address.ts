import type { KubeConfig } from '@kubernetes/client-node';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface ApiAddress {
  ip: string;
  port: number;
  what: string;
}

/**
 * The API server's own addresses, which no hook may call: the kubeconfig's
 * server (its name resolved now) and, in a pod, the `kubernetes` Service
 * (KUBERNETES_SERVICE_HOST/PORT). A name that does not resolve yields nothing.
 */
export async function apiServerAddresses(kc: KubeConfig, env: NodeJS.ProcessEnv = process.env): Promise<ApiAddress[]> {
  const out: ApiAddress[] = [];
  const add = async (host: string, port: number): Promise<void> => {
    const bare = host.replace(/^\[|\]$/g, '');
    const ips = isIP(bare) ? [bare] : await lookup(bare, { all: true }).then((a) => a.map((x) => x.address), () => []);
    for (const ip of ips) if (!out.some((o) => o.ip === ip && o.port === port)) out.push({ ip, port, what: 'the API server' });
  };
  const server = kc.getCurrentCluster()?.server;
  if (server && URL.canParse(server)) {
    const u = new URL(server);
    await add(u.hostname, Number(u.port) || (u.protocol === 'http:' ? 80 : 443));
  }
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = Number(env.KUBERNETES_SERVICE_PORT);
  if (host && Number.isInteger(port) && port > 0) await add(host, port);
  return out;
}
