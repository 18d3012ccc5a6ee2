import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Registry } from 'prom-client';
import { goTool } from '../tools/tools.ts';

const say = (s: string): void => {
  if (process.env.STS_PILOT_TEST_VERBOSE) console.log(`      [prometheus] ${s}`);
};

/**
 * A real Prometheus (cmd/prometheus, built from the Go module proxy and cached
 * like the Kubernetes binaries: test/tools/go-tool.sh prometheus) scraping
 * static targets every second on loopback, in a temp dir removed at stop.
 */
export class PrometheusServer {
  private child: ChildProcess | undefined;
  private dir = '';
  port = 0;
  private exitCode: number | null | undefined;
  private stderr = '';

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(targets: { address: string; labels: Record<string, string> }[]): Promise<this> {
    const bin = await goTool('prometheus', say);
    this.dir = mkdtempSync(join(tmpdir(), 'sts-pilot-prom-'));
    this.port = await freePort();
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '900ms' },
      scrape_configs: [{ job_name: 'app', static_configs: targets.map((t) => ({ targets: [t.address], labels: t.labels })) }],
    };
    writeFileSync(join(this.dir, 'prometheus.yml'), JSON.stringify(config));
    const child = spawn(bin, [`--config.file=${join(this.dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(this.dir, 'data')}`, `--web.listen-address=127.0.0.1:${this.port}`, '--log.level=warn'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    child.on('exit', (code) => (this.exitCode = code));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (this.exitCode !== undefined) throw new Error(`prometheus exited with ${this.exitCode}: ${this.stderr}`);
      try {
        if ((await fetch(`${this.url}/-/ready`)).status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`prometheus not ready within 60 s: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    say(`ready at ${this.url}`);
    return this;
  }

  /** An instant query, for the test's own checks. */
  async query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const r = await fetch(`${this.url}/api/v1/query?${new URLSearchParams({ query: q })}`);
    const body = (await r.json()) as { data?: { result?: { metric: Record<string, string>; value: [number, string] }[] } };
    return body.data?.result ?? [];
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && this.exitCode === undefined) {
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 10_000))]);
      if (this.exitCode === undefined) child.kill('SIGKILL');
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One small HTTP exporter per pod (prom-client), as an application would run
 * beside each replica: app_requests_total{code} grows by 100 requests a second,
 * of which the share `errorRate(pod)` answers 500. The test decides the rate
 * per pod, from the revision or image the pod runs.
 */
export class PodExporter {
  private readonly server: Server;
  private readonly registry = new Registry();
  private readonly requests: Counter;
  private timer: NodeJS.Timeout | undefined;
  port = 0;
  errorRate = 0;
  /** Serve no samples at all (a pod whose exporter is gone). */
  silent = false;

  constructor() {
    this.requests = new Counter({ name: 'app_requests_total', help: 'requests served', labelNames: ['code'], registers: [this.registry] });
    this.requests.inc({ code: '200' }, 0);
    this.requests.inc({ code: '500' }, 0);
    this.server = createServer((req, res) => {
      if (this.silent) return res.writeHead(503).end();
      void this.registry.metrics().then((m) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(m));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    let carry = 0;
    this.timer = setInterval(() => {
      // 10 requests every 100 ms; errors as a running share, so a 5 % rate shows at once.
      carry += 10 * this.errorRate;
      const errors = Math.floor(carry);
      carry -= errors;
      this.requests.inc({ code: '500' }, errors);
      this.requests.inc({ code: '200' }, 10 - errors);
    }, 100);
    return this;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}
