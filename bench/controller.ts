import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/cluster/controlplane.ts';
import { now } from './stats.ts';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Linux USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
const CLOCK_TICKS = 100;

export interface ControllerStart {
  kubeconfig: string;
  /** Plays POD_NAME: a restart with the same identity takes its own Lease back at once. */
  identity: string;
  logFile: string;
  /** Write a V8 CPU profile (.cpuprofile) into this directory when the process exits. */
  cpuProfDir?: string | undefined;
  extra?: string[];
  /** The checkout whose controller runs (default: this one): the scale section's baseline. */
  root?: string | undefined;
  /** Extra Node flags and environment for this controller (an experiment; the shipped ones are the default). */
  nodeFlags?: string[] | undefined;
  env?: Record<string, string> | undefined;
}

/**
 * The literal environment the shipped Deployment gives the controller
 * (manifests/deployment.yaml of that checkout: NODE_OPTIONS, MALLOC_ARENA_MAX),
 * so that the bench measures the controller as it runs in a cluster.
 */
export function shippedEnv(checkout: string): Record<string, string> {
  const file = join(checkout, 'manifests', 'deployment.yaml');
  if (!existsSync(file)) return {};
  const out: Record<string, string> = {};
  for (const m of readFileSync(file, 'utf8').matchAll(/^\s*- \{ name: (\w+), value: "([^"]*)" \}\s*$/gm)) out[m[1] as string] = m[2] as string;
  return out;
}

const bundles = new Set<string>();

/**
 * What the image runs: the checkout's bundle (image/bundle.ts), built afresh once
 * per bench run so that it is never stale; the sources for a checkout that has no
 * bundle (a baseline from before it).
 */
export function entryOf(checkout: string): string {
  if (!existsSync(join(checkout, 'image', 'bundle.ts'))) return 'cmd/sts-pilot.ts';
  if (!bundles.has(checkout)) {
    execFileSync(process.execPath, ['image/bundle.ts'], { cwd: checkout, stdio: 'ignore' });
    bundles.add(checkout);
  }
  return 'dist/sts-pilot.mjs';
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** What one controller process did from spawn to exit. */
export interface Lifetime {
  spawnedAt: number;
  /** /healthz answers: Node is up, the modules are loaded, the probe server listens (before any list). */
  healthyAt: number;
  /** /readyz answers 200: both caches listed, watches running. */
  readyAt: number;
  stoppedAt: number | undefined;
}

/**
 * sts-pilot's controller as a separate process, exactly as shipped (the bundle of image/bundle.ts,
 * the ServiceAccount's kubeconfig, leader election on), measured from outside:
 * spawn → /readyz 200, RSS and CPU time from /proc, /metrics.
 */
export class BenchController {
  /** Every controller process the bench started, in order. */
  static readonly lifetimes: Lifetime[] = [];
  readonly lifetime: Lifetime;
  private readonly child: ChildProcess;
  private readonly port: number;
  private readonly logFile: string;
  private exited: string | undefined;
  private stopping = false;

  private constructor(child: ChildProcess, port: number, spawnedAt: number, logFile: string) {
    this.child = child;
    this.port = port;
    this.logFile = logFile;
    this.lifetime = { spawnedAt, healthyAt: Number.NaN, readyAt: Number.NaN, stoppedAt: undefined };
    BenchController.lifetimes.push(this.lifetime);
    live.add(child);
    child.on('exit', (code, signal) => {
      live.delete(child);
      this.exited = `controller exited (code ${code}, signal ${signal})`;
      this.lifetime.stoppedAt ??= now();
    });
  }

  static async start(o: ControllerStart): Promise<BenchController> {
    const port = await freePort();
    const out = openSync(o.logFile, 'a');
    const nodeArgs = ['--disable-warning=ExperimentalWarning'];
    nodeArgs.push(...(o.nodeFlags ?? []));
    if (o.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`);
    const args = [
      ...nodeArgs,
      entryOf(o.root ?? root),
      'controller',
      '--kubeconfig', o.kubeconfig,
      '--probe-address', `127.0.0.1:${port}`,
      '--log-level', 'info',
      '--leader-election-namespace', 'sts-pilot-system',
      '--leader-election-id', 'sts-pilot-bench',
      ...(o.extra ?? []),
    ];
    const spawnedAt = now();
    const child = spawn(process.execPath, args, { cwd: o.root ?? root, stdio: ['ignore', out, out], env: { ...process.env, ...shippedEnv(o.root ?? root), ...o.env, POD_NAME: o.identity } });
    closeSync(out);
    const c = new BenchController(child, port, spawnedAt, o.logFile);
    const deadline = Date.now() + 5 * 60_000;
    const lastLines = (): string => readFileSync(o.logFile, 'utf8').trimEnd().split('\n').slice(-5).join('\n');
    for (const probe of ['healthz', 'readyz'] as const) {
      for (;;) {
        if (c.exited) throw new Error(`${c.exited}; last lines of ${o.logFile}:\n${lastLines()}`);
        if (Date.now() > deadline) {
          await c.stop();
          throw new Error(`controller not ${probe === 'healthz' ? 'up' : 'ready'} within 5 min; last lines of ${o.logFile}:\n${lastLines()}`);
        }
        try {
          const res = await fetch(`http://127.0.0.1:${port}/${probe}`);
          await res.text();
          if (res.status === 200) break;
        } catch {
          // not listening yet
        }
        await sleep(10);
      }
      if (probe === 'healthz') c.lifetime.healthyAt = now();
    }
    c.lifetime.readyAt = now();
    return c;
  }

  /** Why the process ended, with the last lines of its log; undefined while it runs (or after stop()). */
  get exit(): string | undefined {
    if (!this.exited || this.stopping) return undefined;
    return `${this.exited}; last lines of ${this.logFile}:\n${readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-8).join('\n')}`;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Spawn to /healthz 200, ms: process boot. */
  get bootMs(): number {
    return this.lifetime.healthyAt - this.lifetime.spawnedAt;
  }

  /** Spawn to /readyz 200, ms. */
  get readyMs(): number {
    return this.lifetime.readyAt - this.lifetime.spawnedAt;
  }

  /** Times (ms since epoch) of this process's log records with this message. */
  logTimes(msg: string): number[] {
    const out: number[] = [];
    for (const line of readFileSync(this.logFile, 'utf8').split('\n')) {
      if (!line.includes(msg)) continue;
      try {
        const rec = JSON.parse(line) as { msg?: string; time?: string; pid?: number };
        if (rec.msg === msg && rec.pid === this.pid && rec.time) out.push(Date.parse(rec.time));
      } catch {
        // not a log record
      }
    }
    return out;
  }

  /** Resident set size, bytes, from /proc. */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : Number.NaN;
  }

  /** User + system CPU time, seconds, from /proc. */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }

  /** CPU seconds by thread name (main thread, V8 workers, libuv workers …), from /proc. */
  threadCpu(): Record<string, number> {
    const out: Record<string, number> = {};
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${this.pid}/task`);
    } catch {
      return out;
    }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${this.pid}/task/${tid}/stat`, 'utf8');
        const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const name = tid === String(this.pid) ? 'main thread' : comm.replace(/[0-9]+$/, '').trim();
        out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
      } catch {
        // the thread ended
      }
    }
    return out;
  }

  async metrics(): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.port}/metrics`);
    return res.text();
  }

  /** Sum of a metric's samples (all label sets), from /metrics. */
  async metric(name: string): Promise<number> {
    const text = await this.metrics();
    let sum = 0;
    let found = false;
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
      if (m && m[1] === name) {
        sum += Number(m[3]);
        found = true;
      }
    }
    return found ? sum : Number.NaN;
  }

  /** SIGTERM (graceful: hands the Lease back, writes the CPU profile), SIGKILL after 30 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.stopping = true;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await done;
    clearTimeout(t);
  }
}
