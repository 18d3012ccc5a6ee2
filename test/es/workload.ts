// Workload helpers for tests against a real Elasticsearch/OpenSearch cluster:
// a TCP "Service" over the running nodes, a continuous writer that remembers
// every acknowledged document, and a health watcher. Copied from
// test/integration/elasticsearch-hook.test.ts (which keeps its own copies), with
// the proxy taking its endpoints from a function.

import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { esCall } from './es-cluster.ts';

export interface Service {
  url: string;
  close(): Promise<void>;
}

/** A TCP proxy like kube-proxy over the endpoints of running pods: each connection tries every endpoint once, from the next in turn. */
export async function tcpService(endpoints: () => number[]): Promise<Service> {
  let rr = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    const candidates = endpoints();
    const start = rr++;
    const attempt = (i: number): void => {
      const port = candidates[(start + i) % Math.max(1, candidates.length)];
      if (port === undefined || i >= candidates.length) {
        client.destroy();
        return;
      }
      const up = net.connect(port, '127.0.0.1');
      sockets.add(up);
      up.on('close', () => sockets.delete(up));
      let connected = false;
      up.once('connect', () => {
        connected = true;
        client.pipe(up);
        up.pipe(client);
      });
      up.on('error', () => {
        if (connected) client.destroy();
        else attempt(i + 1);
      });
      client.on('close', () => up.destroy());
    };
    attempt(0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A JSON call that retries a few times: a kept-alive connection may point at a node that restarted. */
export async function es<T = any>(url: string, method: string, path: string, body?: unknown): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 5; i++) {
    try {
      const r = await esCall<T>(url, method, path, body);
      if (r.status >= 200 && r.status < 300) return r.body;
      last = new Error(`${method} ${path} -> ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
      if (r.status < 500) break;
    } catch (err) {
      last = err;
    }
    await sleep(300);
  }
  throw last;
}

/** Cluster health every intervalMs; every red answer kept. */
export class HealthWatch {
  readonly seen: Record<string, number> = { green: 0, yellow: 0, red: 0, error: 0 };
  readonly reds: string[] = [];
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  start(url: string, intervalMs = 200): this {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          const r = await esCall<{ status: string }>(url, 'GET', '/_cluster/health', undefined, 2000);
          const s = r.status === 200 ? r.body.status : 'error';
          this.seen[s] = (this.seen[s] ?? 0) + 1;
          if (s === 'red') this.reds.push(`${new Date().toISOString()} ${JSON.stringify(r.body)}`);
        } catch {
          this.seen.error = (this.seen.error ?? 0) + 1;
        }
        await sleep(intervalMs);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

/** Bulk-indexes batches of 20 documents until stopped; remembers every acknowledged one. */
export class Writer {
  /** id -> index, for every document the cluster acknowledged */
  readonly acked = new Map<string, string>();
  failedBulks = 0;
  failedItems = 0;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private n = 0;
  private readonly indices: string[];

  constructor(indices: string[]) {
    this.indices = indices;
  }

  start(url: string, pauseMs = 25): this {
    this.loop = (async () => {
      while (!this.stopped) {
        const batch: [string, string][] = [];
        let nd = '';
        for (let i = 0; i < 20; i++) {
          const id = `w-${this.n++}`;
          const index = this.indices[this.n % this.indices.length] as string;
          batch.push([id, index]);
          nd += `${JSON.stringify({ index: { _index: index, _id: id } })}\n${JSON.stringify({ n: this.n, at: new Date().toISOString() })}\n`;
        }
        try {
          const r = await esCall<{ items: { index: { _id: string; status: number } }[] }>(url, 'POST', '/_bulk', nd, 10_000);
          if (r.status !== 200) this.failedBulks++;
          else
            for (const item of r.body.items) {
              if (item.index.status === 200 || item.index.status === 201) {
                const pair = batch.find(([id]) => id === item.index._id);
                if (pair) this.acked.set(pair[0], pair[1]);
              } else this.failedItems++;
            }
        } catch {
          this.failedBulks++;
        }
        await sleep(pauseMs);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Acknowledged documents the cluster does not have. */
  async missing(url: string): Promise<string[]> {
    await es(url, 'POST', `/${this.indices.join(',')}/_refresh`);
    const out: string[] = [];
    const all = [...this.acked.entries()];
    for (let i = 0; i < all.length; i += 500) {
      const docs = all.slice(i, i + 500).map(([id, index]) => ({ _index: index, _id: id }));
      const r = await es<{ docs: { _id: string; found: boolean }[] }>(url, 'POST', '/_mget?_source=false', { docs });
      for (const d of r.docs) if (!d.found) out.push(d._id);
    }
    return out;
  }
}
