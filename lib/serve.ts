import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface ProbeServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** /readyz answers 200 only while this returns true. */
  ready: () => boolean;
  /** Lines added to the /readyz body (not to its status): what an operator should know. */
  detail?: () => string;
}

/** /healthz (the process answers), /readyz (caller's notion of ready) and /metrics. */
export async function serveProbes(o: ProbeServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path === '/readyz') {
      const ok = o.ready();
      const detail = o.detail ? `${o.detail()}\n` : '';
      return void res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(`${ok ? 'ok' : 'not ready'}\n${detail}`);
    }
    if (path === '/metrics') {
      o.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '0.0.0.0', () => resolve());
  });
  return server;
}
