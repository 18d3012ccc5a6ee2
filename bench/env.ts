import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { PooledKubeConfig } from '../lib/kube/config.ts';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { type ControlPlane, startControlPlane } from '../test/cluster/controlplane.ts';
import { NodeAgent } from '../test/cluster/node-agent.ts';
import { applyManifest, serviceAccountKubeconfig } from '../test/integration/harness.ts';
import { AUDIT_POLICY } from './audit.ts';
import { root } from './controller.ts';

export interface Bench {
  cp: ControlPlane;
  kc: KubeConfig;
  apps: AppsV1Api;
  core: CoreV1Api;
  agent: NodeAgent;
  controllerKubeconfig: string;
  auditLogPath: string;
}

export interface BenchEnvOptions {
  readyDelayMs: number;
  terminationDelayMs: number;
  log: (line: string) => void;
  keep: boolean;
  /** Another audit policy (bench/trace-step.ts logs every user's pod and StatefulSet writes). */
  auditPolicy?: string;
}

/**
 * kube-controller-manager's client is throttled to 20 QPS (burst 30) by default:
 * creating thousands of pods would measure that, not sts-pilot. Raised for the
 * whole run, so native and sts-pilot rollouts see the same control plane.
 */
export const KCM_FLAGS = ['--kube-api-qps=1000', '--kube-api-burst=2000', '--concurrent-statefulset-syncs=20'];
export const NODE_AGENT_WORKERS = 32;

export async function startBench(o: BenchEnvOptions): Promise<Bench> {
  const cp = await startControlPlane({ log: (l) => o.log(`control plane: ${l}`), keep: o.keep, auditPolicy: o.auditPolicy ?? AUDIT_POLICY, controllerManagerArgs: KCM_FLAGS });
  // Pooled connections for the node agent and the watches, as the controller has
  // (finding 3): a TLS handshake per binding and status write made every pod's
  // restart depend on the machine's load, noise on native and sts-pilot alike.
  const kc = new PooledKubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  const agent = new NodeAgent({ kc, readyDelayMs: o.readyDelayMs, terminationDelayMs: o.terminationDelayMs, terminationFromObserved: true, workers: NODE_AGENT_WORKERS });
  try {
    await agent.start();
    const core = kc.makeApiClient(CoreV1Api);
    // What the controller needs installed, as the integration harness applies it.
    for (const file of ['crd-pilot.yaml', 'namespace.yaml', 'rbac-controller.yaml']) {
      if (existsSync(join(root, 'manifests', file))) await applyManifest(kc, join(root, 'manifests', file));
    }
    const controllerKubeconfig = await serviceAccountKubeconfig(kc, core, 'sts-pilot-system', 'sts-pilot-controller');
    if (!cp.auditLogPath) throw new Error('the control plane has no audit log');
    return { cp, kc, apps: kc.makeApiClient(AppsV1Api), core, agent, controllerKubeconfig, auditLogPath: cp.auditLogPath };
  } catch (err) {
    await agent.stop().catch(() => {});
    await cp.stop();
    throw err;
  }
}

export async function stopBench(b: Bench): Promise<void> {
  await b.agent.stop().catch(() => {});
  await b.cp.stop();
}

export interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  kubernetes: string;
  etcd: string;
  clientNode: string;
  go: string;
}

const run = (cmd: string, args: string[]): string => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    return `unavailable (${(err as Error).message.split('\n')[0]})`;
  }
};

export function machine(binDir: string | undefined): Machine {
  const cpuinfo = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const clientNode = (JSON.parse(readFileSync(join(root, 'node_modules/@kubernetes/client-node/package.json'), 'utf8')) as { version: string }).version;
  return {
    date: new Date().toISOString(),
    cpus: Number(run('nproc', [])) || cpus().length,
    cpuModel: model.trim(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    kubernetes: binDir ? run(join(binDir, 'kube-apiserver'), ['--version']) : 'n/a',
    etcd: binDir ? (run(join(binDir, 'etcd'), ['--version']).split('\n')[0] ?? '') : 'n/a',
    clientNode,
    go: run('go', ['version']),
  };
}

interface LoadSample {
  t: number;
  load1: number;
  /** Fraction of all CPUs busy since the previous sample (every process on the machine). */
  busy: number;
}

export interface LoadSummary {
  loadAvgMean: number;
  loadAvgMax: number;
  busyPct: number;
  samples: number;
}

/**
 * The machine's load while the bench runs: other work on a 2-core machine shows
 * in every latency, so the report says how busy the machine was.
 */
export class LoadMonitor {
  private readonly samples: LoadSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last = LoadMonitor.cpuTimes();

  private static cpuTimes(): { busy: number; total: number } {
    try {
      const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
      const v = line.trim().split(/\s+/).slice(1).map(Number);
      const total = v.reduce((s, x) => s + x, 0);
      const idle = (v[3] ?? 0) + (v[4] ?? 0);
      return { busy: total - idle, total };
    } catch {
      return { busy: Number.NaN, total: Number.NaN };
    }
  }

  start(everyMs = 5000): this {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }

  private sample(): void {
    const cur = LoadMonitor.cpuTimes();
    const busy = (cur.busy - this.last.busy) / (cur.total - this.last.total);
    this.last = cur;
    let load1 = Number.NaN;
    try {
      load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    } catch {
      // not Linux
    }
    this.samples.push({ t: Date.now(), load1, busy });
  }

  /** Over samples taken in [from, to] (ms since epoch). */
  summary(from = 0, to = Number.POSITIVE_INFINITY): LoadSummary {
    const s = this.samples.filter((x) => x.t >= from && x.t <= to && !Number.isNaN(x.busy));
    const mean = (xs: number[]): number => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
    return {
      loadAvgMean: mean(s.map((x) => x.load1)),
      loadAvgMax: s.length === 0 ? Number.NaN : Math.max(...s.map((x) => x.load1)),
      busyPct: mean(s.map((x) => x.busy)) * 100,
      samples: s.length,
    };
  }
}
