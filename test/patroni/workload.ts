// Workload for tests against a real Patroni cluster: a "leader endpoint" (a TCP
// proxy to whichever member answers Patroni's GET /primary, as the Service that
// Patroni keeps pointed at its leader on Kubernetes), and a writer that commits
// a transaction every few milliseconds through it and remembers what was
// acknowledged.

import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface Endpoint {
  name: string;
  rest: string;
  host: string;
  port: number;
}

/** Leader changes as the endpoint saw them (every 100 ms): the switchovers, with times. */
export interface LeaderChange {
  at: number;
  from: string | undefined;
  to: string | undefined;
}

export class LeaderEndpoint {
  readonly changes: LeaderChange[] = [];
  leader: string | undefined;
  port = 0;
  private server: net.Server | undefined;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private readonly sockets = new Set<net.Socket>();
  private readonly endpoints: () => Endpoint[];

  constructor(endpoints: () => Endpoint[]) {
    this.endpoints = endpoints;
  }

  async start(): Promise<this> {
    this.loop = (async () => {
      while (!this.stopped) {
        const eps = this.endpoints();
        const answers = await Promise.all(
          eps.map(async (e) => {
            try {
              const r = await fetch(`${e.rest}/primary`, { signal: AbortSignal.timeout(1000) });
              await r.body?.cancel();
              return r.status === 200 ? e.name : undefined;
            } catch {
              return undefined;
            }
          }),
        );
        const leaders = answers.filter((x): x is string => x !== undefined);
        const now = leaders.length === 1 ? leaders[0] : undefined;
        if (now !== this.leader) {
          this.changes.push({ at: Date.now(), from: this.leader, to: now });
          this.leader = now;
        }
        await sleep(100);
      }
    })();
    this.server = net.createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => {});
      const target = this.endpoints().find((e) => e.name === this.leader);
      if (!target) {
        client.destroy();
        return;
      }
      const up = net.connect(target.port, target.host);
      this.sockets.add(up);
      up.on('close', () => {
        this.sockets.delete(up);
        client.destroy();
      });
      up.on('error', () => client.destroy());
      client.on('close', () => up.destroy());
      client.pipe(up);
      up.pipe(client);
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  /** Switchovers seen: changes from one leader to another, with or without a gap between. */
  leaderSequence(): string[] {
    return this.changes.map((c) => c.to).filter((x): x is string => x !== undefined).filter((x, i, a) => i === 0 || a[i - 1] !== x);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

export interface WriteGap {
  /** Last acknowledgement before the gap, and the first after it (ms since epoch). */
  from: number;
  to: number;
  ms: number;
}

/** The Python writer (psycopg) as a child process. */
export class Writer {
  readonly acked = new Set<number>();
  readonly ackTimes: number[] = [];
  errors = 0;
  readonly lastErrors: string[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  start(python: string, dsn: string, pauseSeconds = 0.005): this {
    const child = spawn(python, [path.join(here, 'writer.py'), dsn, String(pauseSeconds)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        const r = JSON.parse(line) as { ack?: number; err?: string; t: number };
        if (r.ack !== undefined) {
          this.acked.add(r.ack);
          this.ackTimes.push(Math.round(r.t * 1000));
        } else if (r.err !== undefined) {
          this.errors++;
          this.lastErrors.push(r.err);
          if (this.lastErrors.length > 20) this.lastErrors.shift();
        }
      } catch {
        // not ours
      }
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      if (stderr.trim()) this.lastErrors.push(`stderr: ${stderr.trim()}`);
    });
    return this;
  }

  async stop(): Promise<void> {
    this.child?.stdin?.end();
    this.child?.kill('SIGTERM');
    await this.exited;
  }

  /** Gaps between consecutive acknowledgements longer than `minMs`, between two times. */
  gaps(minMs: number, from = 0, to = Infinity): WriteGap[] {
    const out: WriteGap[] = [];
    const t = this.ackTimes.filter((x) => x >= from && x <= to);
    for (let i = 1; i < t.length; i++) {
      const ms = (t[i] as number) - (t[i - 1] as number);
      if (ms >= minMs) out.push({ from: t[i - 1] as number, to: t[i] as number, ms });
    }
    return out;
  }
}
