import { CustomObjectsApi, RbacAuthorizationV1Api, type V1Pod, Watch } from '@kubernetes/client-node';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { freePort } from '../cluster/controlplane.ts';
import type { Cluster } from '../integration/harness.ts';
import { waitUntil } from '../integration/harness.ts';
import { PILOT_STATEFULSET_LABEL, type PilotStatus } from '../../lib/pilot/schema.ts';
import { pilotEntry, root } from './helpers.ts';
import { killMarked, killTree, MARK_ENV, runId } from './leftovers.ts';

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
export const G = { group: 'sts-pilot.io', version: 'v1alpha1', plural: 'pilots' };

/** A bare pod (no controller): something real for a Pilot to be owned by. */
export async function createPod(c: Cluster, ns: string, name: string, revision = 'r1', serviceAccountName?: string): Promise<V1Pod> {
  return c.core.createNamespacedPod({
    namespace: ns,
    body: { metadata: { name, labels: { 'controller-revision-hash': revision } }, spec: { serviceAccountName, containers: [{ name: 'app', image: 'example/app:1' }] } },
  });
}

/** Bind manifests/rbac-pilot.yaml's ClusterRole in `ns` to a ServiceAccount (of `saNamespace`), as the README says to. */
export async function bindPilotRole(c: Cluster, ns: string, serviceAccount: string, saNamespace = ns): Promise<void> {
  await c.kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'sts-pilot-pilot' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sts-pilot-pilot' },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: saNamespace }],
    },
  });
}

/** The Pilot of a pod, as the controller creates it. */
export async function createPilot(c: Cluster, ns: string, pod: V1Pod, ownerUid = pod.metadata?.uid ?? ''): Promise<{ uid: string }> {
  const api = c.kc.makeApiClient(CustomObjectsApi);
  const name = pod.metadata?.name ?? '';
  const created = (await api.createNamespacedCustomObject({
    ...G,
    namespace: ns,
    body: {
      apiVersion: 'sts-pilot.io/v1alpha1',
      kind: 'Pilot',
      metadata: {
        name,
        labels: { [PILOT_STATEFULSET_LABEL]: 'none' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name, uid: ownerUid, controller: true, blockOwnerDeletion: false }],
      },
      spec: { application: 'test' },
    },
  })) as { metadata: { uid: string } };
  return { uid: created.metadata.uid };
}

export async function readPilotStatus(c: Cluster, ns: string, name: string): Promise<PilotStatus | undefined> {
  const api = c.kc.makeApiClient(CustomObjectsApi);
  const p = (await api.getNamespacedCustomObject({ ...G, namespace: ns, name })) as { status?: PilotStatus };
  return p.status;
}

export interface PilotEvent {
  at: number;
  type: string;
  resourceVersion: string;
  uid: string;
  status: PilotStatus | undefined;
}

/** Every change of one Pilot as a watch shows it: the independent count of what the pilot wrote. */
export class PilotWatch {
  readonly events: PilotEvent[] = [];
  private ac: AbortController | undefined;

  static async start(c: Cluster, ns: string, name: string): Promise<PilotWatch> {
    const w = new PilotWatch();
    w.ac = await new Watch(c.kc).watch(
      `/apis/sts-pilot.io/v1alpha1/namespaces/${ns}/pilots`,
      { fieldSelector: `metadata.name=${name}` },
      (type: string, obj: { metadata: { resourceVersion: string; uid: string }; status?: PilotStatus }) => {
        w.events.push({ at: Date.now(), type, resourceVersion: obj.metadata.resourceVersion, uid: obj.metadata.uid, status: obj.status });
      },
      () => {},
    );
    return w;
  }

  /** Status writes seen: MODIFIED events whose status differs from the one before (heartbeats included). */
  statusWrites(since = 0): number {
    return this.events.filter((e, i) => e.at >= since && e.type === 'MODIFIED' && JSON.stringify(e.status) !== JSON.stringify(this.events[i - 1]?.status)).length;
  }

  /** Phases in the order they were seen, repeats folded. */
  phases(): string[] {
    const out: string[] = [];
    for (const e of this.events) {
      const p = e.status?.phase;
      if (p && out.at(-1) !== p) out.push(p);
    }
    return out;
  }

  stop(): void {
    this.ac?.abort();
  }
}

/** Pilots started and not exited yet. */
const live = new Set<PilotProcess>();
// A test process that exits (mocha --exit) takes every pilot it started down
// with it, and whatever they started: the application runs in a session of its
// own, so the pilot's end alone would leave it running. Registered on import,
// so before test/cluster/pilot-processes.ts' own exit work.
process.on('exit', () => {
  for (const p of live) killTree(p.pid);
  killMarked();
});

export interface PilotProcessOptions {
  c: Cluster;
  ns: string;
  pod: string;
  podUid?: string;
  revision?: string;
  /** Default: the admin kubeconfig of the test cluster. */
  kubeconfig?: string;
  /** Flags after the identity ones, e.g. ['--heartbeat', '2']. */
  flags?: string[];
  /**
   * The application; default: test/pilot/app.ts under `setpriv --pdeathsig KILL`
   * (it dies with the pilot), its environment marked (test/pilot/leftovers.ts).
   */
  command?: string[];
  env?: Record<string, string>;
  /**
   * Wrap the pilot, e.g. ['unshare', '--pid', '--fork', '--mount-proc'] to make it PID 1.
   * Always inside `setpriv --pdeathsig KILL`: the pilot dies with the test process.
   */
  wrapper?: string[];
}

/**
 * `sts-pilot pilot` as a real process, as a container runtime would run it.
 * Tracked until it exits; kill() and the test process's exit kill it with
 * everything it started.
 */
export class PilotProcess {
  readonly logs: Record<string, unknown>[] = [];
  readonly output: string[] = [];
  readonly probePort: number;
  readonly startedAt = Date.now();
  private readonly proc: ChildProcess;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(proc: ChildProcess, probePort: number) {
    this.proc = proc;
    this.probePort = probePort;
    this.exited = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
    let buf = '';
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.output.push(line);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          this.logs.push(rec);
          if (verbose) console.log(`      | [pilot] ${String(rec.msg)} ${rec.phase ? `(${String(rec.phase)})` : ''}`);
        } catch {
          if (verbose) console.log(`      | [app] ${line}`);
        }
      }
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.output.push(d.toString());
      if (verbose) console.log(`      | [stderr] ${d.toString().trimEnd()}`);
    });
  }

  static async start(o: PilotProcessOptions): Promise<PilotProcess> {
    const port = await freePort();
    const node = [process.execPath, '--disable-warning=ExperimentalWarning'];
    const args = [
      ...['setpriv', '--pdeathsig', 'KILL', '--'],
      ...(o.wrapper ?? []),
      ...node,
      pilotEntry(),
      'pilot',
      '--kubeconfig',
      o.kubeconfig ?? o.c.kubeconfigPath,
      '--namespace',
      o.ns,
      '--pod-name',
      o.pod,
      ...(o.podUid ? ['--pod-uid', o.podUid] : []),
      ...(o.revision ? ['--revision', o.revision] : []),
      '--probe-address',
      `127.0.0.1:${port}`,
      '--log-level',
      'debug',
      ...(o.flags ?? []),
      '--',
      ...(o.command ?? ['setpriv', '--pdeathsig', 'KILL', '--', ...node, 'test/pilot/app.ts']),
    ];
    const [file, ...rest] = args;
    const env = { ...process.env, ...o.env, ...(o.command ? {} : { [MARK_ENV]: runId }) };
    const proc = spawn(file as string, rest, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new PilotProcess(proc, port);
    live.add(p);
    void p.exited.then(() => live.delete(p));
    return p;
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  /**
   * SIGKILL the pilot, its application and what that started. (signal('SIGKILL')
   * kills the pilot only; the default application follows by its parent-death
   * signal, what the application started does not.)
   */
  async kill(): Promise<void> {
    if (this.exit) return;
    if (this.pid) killTree(this.pid);
    else this.proc.kill('SIGKILL');
    await this.exited;
  }

  async get(path: string): Promise<{ status: number; text: string }> {
    const res = await fetch(`http://127.0.0.1:${this.probePort}${path}`);
    return { status: res.status, text: await res.text() };
  }

  async waitForServer(): Promise<void> {
    await waitUntil('the pilot to serve /healthz', 20_000, async () => {
      if (this.exit) throw new Error(`pilot exited early (${JSON.stringify(this.exit)}):\n${this.output.slice(-20).join('\n')}`);
      return (await this.get('/healthz')).status === 200;
    });
  }

  /** A metric's value from /metrics (first sample matching the prefix). */
  async metric(prefix: string): Promise<number | undefined> {
    const text = (await this.get('/metrics')).text;
    const line = text.split('\n').find((l) => l.startsWith(prefix));
    return line ? Number(line.split(' ').at(-1)) : undefined;
  }

  /** Why it failed, for assertion messages. */
  tail(n = 30): string {
    return this.output.slice(-n).join('\n');
  }
}

/** Lines of the test application's EVENTS_FILE. */
export function appEvents(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}
