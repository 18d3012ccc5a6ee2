import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { expect } from 'chai';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type ControlPlane, freePort, startControlPlane } from '../cluster/controlplane.ts';
import { detectGateMode, GATE_MANIFEST, type GateMode } from '../../lib/kube/gate-mode.ts';
import { NodeAgent } from '../cluster/node-agent.ts';
import { type PlainEvent, PlainWatch } from './plain-watch.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};

export interface Cluster {
  cp: ControlPlane | undefined;
  /** Admin credentials: for the tests themselves, never for the controller. */
  kubeconfigPath: string;
  /** The shipped controller ServiceAccount's token, bound by the shipped RBAC. */
  controllerKubeconfigPath: string;
  kc: KubeConfig;
  apps: AppsV1Api;
  core: CoreV1Api;
  agent: NodeAgent;
  /**
   * The admission gate installed (docs/install.md, "Kubernetes versions"): the
   * strongest the API server serves, or STS_PILOT_GATE_MODE. Undefined: the
   * suite installed none itself.
   */
  gateMode?: GateMode;
}

/** The gate a fresh cluster gets: STS_PILOT_GATE_MODE (to try a weaker one on a newer server), else the strongest served. */
export async function gateModeFor(kc: KubeConfig): Promise<Exclude<GateMode, 'none'>> {
  const forced = process.env.STS_PILOT_GATE_MODE;
  if (forced) {
    if (!(forced in GATE_MANIFEST)) throw new Error(`STS_PILOT_GATE_MODE must be one of ${Object.keys(GATE_MANIFEST).join(', ')}, not ${JSON.stringify(forced)}`);
    return forced as Exclude<GateMode, 'none'>;
  }
  const { capable } = await detectGateMode(kc);
  if (capable === 'none') throw new Error('this API server serves no ValidatingAdmissionPolicy: the suite needs Kubernetes 1.30 or newer');
  return capable;
}

/**
 * The gate mode the suite's cluster will run, known before it starts (mocha defines
 * tests before any hook runs): STS_PILOT_GATE_MODE, else by STS_PILOT_K8S_VERSION
 * (default 1.37): MutatingAdmissionPolicy v1 from 1.36, its beta on 1.34/1.35 (on in
 * the test control plane unless STS_PILOT_MAP_BETA=0), ValidatingAdmissionPolicy
 * only below. cluster() checks that the server agrees.
 */
export function expectedGateMode(env: NodeJS.ProcessEnv = process.env): Exclude<GateMode, 'none'> {
  if (env.STS_PILOT_GATE_MODE) return env.STS_PILOT_GATE_MODE as Exclude<GateMode, 'none'>;
  const minor = Number(/^v?1\.(\d+)\./.exec(env.STS_PILOT_K8S_VERSION ?? 'v1.37.2')?.[1] ?? 37);
  if (minor >= 36) return 'mutating-v1';
  if (minor >= 34 && env.STS_PILOT_MAP_BETA !== '0') return 'mutating-v1beta1';
  return 'validating-only';
}

/** The manifest file (in manifests/) of a gate mode. */
export const gateManifest = (mode: Exclude<GateMode, 'none'>): string => join(root, GATE_MANIFEST[mode]);

let shared: Promise<Cluster> | undefined;

/**
 * One control plane for the whole run, started on first use. With
 * STS_PILOT_USE_EXISTING_CLUSTER=1 the tests use $KUBECONFIG instead (like
 * envtest's USE_EXISTING_CLUSTER); the node agent still plays kubelet there.
 */
export function cluster(): Promise<Cluster> {
  shared ??= process.env.STS_PILOT_USE_EXISTING_CLUSTER === '1'
    ? setUp(undefined, process.env.KUBECONFIG ?? join(process.env.HOME ?? '', '.kube', 'config'))
    : startControlPlane({ log: (l) => console.log(`      [control plane] ${l}`) }).then((cp) => setUp(cp, cp.kubeconfigPath));
  return shared;
}

/**
 * A control plane of a suite's own (an audit log, say), set up as the shared one:
 * manifests applied as shipped, a node agent, the controller's ServiceAccount token.
 * The suite stops it with stopOwnCluster().
 */
export async function ownCluster(o: { auditPolicy?: string }): Promise<Cluster> {
  const cp = await startControlPlane({ log: (l) => console.log(`      [own control plane] ${l}`), auditPolicy: o.auditPolicy });
  return setUp(cp, cp.kubeconfigPath);
}

export async function stopOwnCluster(c: Cluster | undefined): Promise<void> {
  if (!c) return;
  await c.agent.stop();
  await c.cp?.stop();
}

async function setUp(cp: ControlPlane | undefined, kubeconfigPath: string): Promise<Cluster> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const agent = new NodeAgent({ kc, readyDelayMs: 300, terminationDelayMs: 200 });
  await agent.start();
  const core = kc.makeApiClient(CoreV1Api);
  const gateMode = await gateModeFor(kc);
  if (cp && gateMode !== expectedGateMode()) throw new Error(`Kubernetes ${cp.version.gitVersion} serves gate mode ${gateMode}, but the suite expected ${expectedGateMode()} (harness.ts expectedGateMode)`);
  for (const file of ['crd-pilot.yaml', 'crd-metriccheck.yaml', 'namespace.yaml', 'rbac-controller.yaml']) await applyManifest(kc, join(root, 'manifests', file));
  await applyManifest(kc, gateManifest(gateMode));
  await applyManifest(kc, join(root, 'manifests', 'admission-pilot.yaml'));
  const controllerKubeconfigPath = await serviceAccountKubeconfig(kc, core, 'sts-pilot-system', 'sts-pilot-controller');
  return { cp, kubeconfigPath, controllerKubeconfigPath, kc, apps: kc.makeApiClient(AppsV1Api), core, agent, gateMode };
}

export async function stopCluster(): Promise<void> {
  if (!shared) return;
  const c = await shared.catch(() => undefined);
  shared = undefined;
  await stopOwnCluster(c);
}

/** Create or replace every object of a manifest file, as `kubectl apply` would for a fresh object. */
export async function applyManifest(kc: KubeConfig, file: string): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const doc of loadAllYaml(readFileSync(file, 'utf8')) as KubernetesObject[]) {
    if (!doc) continue;
    try {
      await api.create(doc);
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw new Error(`applying ${file}: ${(err as Error).message}`);
      const live = await api.read(doc as KubernetesObject & { metadata: { name: string } });
      await api.replace({ ...doc, metadata: { ...doc.metadata, resourceVersion: live.metadata?.resourceVersion } });
    }
  }
}

/**
 * A kubeconfig carrying a token of a ServiceAccount (TokenRequest API), for the
 * same server; bound to a pod (or a Secret) when given one, as a pod's projected token is.
 */
export async function serviceAccountKubeconfig(
  kc: KubeConfig,
  core: CoreV1Api,
  namespace: string,
  name: string,
  pod?: { name: string; uid: string; kind?: 'Pod' | 'Secret' },
): Promise<string> {
  // Bound to an object, the token dies with it: how the tests revoke one.
  const boundObjectRef = pod ? { apiVersion: 'v1', kind: pod.kind ?? 'Pod', name: pod.name, uid: pod.uid } : undefined;
  const tr = await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [], expirationSeconds: 6 * 3600, boundObjectRef } } });
  const token = tr.status?.token;
  if (!token) throw new Error(`no token issued for ServiceAccount ${namespace}/${name}`);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the admin kubeconfig');
  const sa = new KubeConfig();
  sa.loadFromOptions({
    clusters: [{ name: 'local', server: cluster.server, skipTLSVerify: cluster.skipTLSVerify, caData: cluster.caData }],
    users: [{ name: `${namespace}-${name}`, token }],
    contexts: [{ name: 'local', cluster: 'local', user: `${namespace}-${name}` }],
    currentContext: 'local',
  });
  const dir = mkdtempSync(join(tmpdir(), 'sts-pilot-sa-'));
  const path = join(dir, `${name}${pod ? `-${pod.name}` : ''}.kubeconfig`);
  writeFileSync(path, sa.exportConfig(), { mode: 0o600 });
  return path;
}

let nsSeq = 0;
/**
 * A fresh namespace. `gate: false` labels it sts-pilot.io/admission-gate=disabled,
 * which the shipped admission policies honour: there the controller's guard
 * works alone, as on a cluster without the policies, and a test may lower a
 * partition by hand.
 */
export async function namespace(c: Cluster, prefix: string, o: { gate?: boolean } = {}): Promise<string> {
  const name = `${prefix}-${process.pid}-${++nsSeq}`.toLowerCase().slice(0, 63);
  const labels = o.gate === false ? { 'sts-pilot.io/admission-gate': 'disabled' } : undefined;
  await c.core.createNamespace({ body: { metadata: { name, labels } } });
  return name;
}

export function statefulSet(name: string, o: { replicas: number; hook?: string; annotations?: Record<string, string>; onDelete?: boolean; image?: string }): V1StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, labels: o.hook ? { 'sts-pilot.io/hook': o.hook } : {}, annotations: o.annotations ?? {} },
    spec: {
      replicas: o.replicas,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      updateStrategy: o.onDelete ? { type: 'OnDelete' } : { type: 'RollingUpdate' },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image: o.image ?? 'example/app:1' }] },
      },
    },
  };
}

export async function setImage(c: Cluster, ns: string, name: string, image: string): Promise<void> {
  await c.apps.patchNamespacedStatefulSet(
    { name, namespace: ns, body: { spec: { template: { spec: { containers: [{ name: 'app', image }] } } } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
}

export async function mergePatch(c: Cluster, ns: string, name: string, body: unknown): Promise<V1StatefulSet> {
  return c.apps.patchNamespacedStatefulSet({ name, namespace: ns, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

/** Thrown inside a waitUntil check to stop waiting at once. */
export class Fatal extends Error {}

export async function waitUntil<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export const partitionOf = (sts: V1StatefulSet): number | undefined => sts.spec?.updateStrategy?.rollingUpdate?.partition;

let identitySeq = 0;

/** The controller as a separate process, as in production. */
export class ControllerProcess {
  readonly logs: Record<string, unknown>[] = [];
  private child: ChildProcess | undefined;
  readonly probePort: number;
  private readonly args: string[];
  exitCode: number | null | undefined;
  /** The signal that ended the process, if one did. */
  exitSignal: NodeJS.Signals | null | undefined;
  /** The end of what it wrote to stderr (a crash's stack lands there). */
  private stderrTail = '';
  /** Where this run's log lines start in `logs` (a respawn appends to the same list). */
  private runFrom = 0;
  /** Respawns by keepAlive() after a lost lease. */
  restarts = 0;

  readonly identity: string;

  private readonly env: Record<string, string>;

  private constructor(args: string[], probePort: number, identity: string, env: Record<string, string> = {}) {
    this.args = args;
    this.probePort = probePort;
    this.identity = identity;
    this.env = env;
  }

  /**
   * `identity` plays POD_NAME: a restarted process with the same identity is the
   * same pod's container restarting, and takes its own Lease back at once.
   */
  static async start(
    c: Cluster,
    extra: string[] = [],
    identity = `controller-${++identitySeq}`,
    o: { kubeconfigPath?: string; nodeArgs?: string[]; env?: Record<string, string> } = {},
  ): Promise<ControllerProcess> {
    const port = await freePort();
    // The shipped Role allows Leases in sts-pilot-system only; one Lease per watched namespace keeps suites apart.
    const nsFlag = extra.indexOf('--namespace');
    const leaseId = nsFlag >= 0 ? (extra[nsFlag + 1] as string) : 'sts-pilot-tests';
    const p = new ControllerProcess(
      [
        ...(o.nodeArgs ?? []),
        'cmd/sts-pilot.ts', 'controller', '--kubeconfig', o.kubeconfigPath ?? c.controllerKubeconfigPath, '--probe-address', `127.0.0.1:${port}`,
        '--log-level', 'debug', '--leader-election-namespace', 'sts-pilot-system', '--leader-election-id', leaseId,
        // Every application of the tests listens on loopback: the installer's allowance, as a single-host setup would give it.
        '--hook-allow-loopback', ...extra,
      ],
      port,
      identity,
      o.env ?? {},
    );
    await p.spawn();
    return p;
  }

  /**
   * The controller with exactly these arguments (after `cmd/sts-pilot.ts`), e.g. a
   * chart-rendered Deployment's: the caller gives the kubeconfig and probe address.
   */
  static async fromArgs(args: string[], probePort: number, identity: string, env: Record<string, string> = {}): Promise<ControllerProcess> {
    const p = new ControllerProcess(['cmd/sts-pilot.ts', ...args], probePort, identity, env);
    await p.spawn();
    return p;
  }

  async spawn(): Promise<void> {
    this.exitCode = undefined;
    this.exitSignal = undefined;
    this.runFrom = this.logs.length;
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...this.args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, POD_NAME: this.identity, ...this.env },
    });
    this.child = child;
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          this.logs.push(rec);
          say(`${String(rec.time).slice(11, 23)} [controller] ${rec.msg as string}${rec.statefulSet ? ` (${rec.statefulSet as string})` : ''}`);
        } catch {
          say(`[controller] ${line}`);
        }
      }
    });
    child.stderr?.on('data', (d: Buffer) => {
      console.error(`      [controller stderr] ${d.toString().trimEnd()}`);
      this.stderrTail = (this.stderrTail + d.toString()).slice(-1500);
    });
    child.on('exit', (code, signal) => {
      this.exitSignal = signal;
      this.exitCode = code;
    });
    await waitUntil('controller /readyz', 60_000, async () => {
      if (this.exitCode !== undefined) throw new Fatal(`controller exited with ${this.exitCode}`);
      const res = await fetch(`http://127.0.0.1:${this.probePort}/readyz`);
      return res.status === 200;
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.child !== undefined && this.exitCode === undefined;
  }

  /**
   * For suites that are not about leader election: a controller that ended
   * the way leader election ends it by design (its Lease not renewed within
   * the renew deadline, which a loaded test machine can cause) is started
   * again, as the kubelet restarts the container. Any other end fails the
   * test with its note: a crash is never papered over.
   */
  async keepAlive(): Promise<void> {
    if (this.alive) return;
    const leaseLost = this.logs.slice(this.runFrom).some((r) => String(r.msg).startsWith('could not renew the lease'));
    if (!leaseLost || this.restarts >= 3) throw new Error(this.deathNote());
    this.restarts++;
    console.log(`      [controller] ${this.deathNote()}; started again, as the kubelet would`);
    await this.spawn();
  }

  /**
   * Why the process ended, for a test's failure message (CI shows the
   * message, not the run's whole output): code or signal, its last warnings
   * and errors, and the end of its stderr.
   */
  deathNote(): string {
    const how = this.exitSignal ? `killed by ${this.exitSignal}` : `exited with ${String(this.exitCode)}`;
    const bad = this.logs
      .slice(this.runFrom)
      .filter((r) => typeof r.level === 'number' && r.level >= 40)
      .slice(-4)
      .map((r) => `${String(r.time).slice(11, 23)} ${String(r.msg)}${r.err ? `: ${String(r.err)}` : ''}`);
    const stderr = this.stderrTail.trim();
    return `the controller ${how}; its last warnings: ${bad.length ? bad.join(' | ') : '(none)'}${stderr ? `; stderr: ${stderr}` : ''}`;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || this.exitCode !== undefined) return Promise.resolve();
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    return done;
  }

  /**
   * Resolves with the first log line, at or after `since`, about `sts` (namespace/name) that
   * `match` accepts: a positive signal that the controller looked at it again, for checks that
   * something did *not* happen (a fixed sleep would also pass with a controller too slow to act).
   */
  reconciled(sts: string, since: number, match: RegExp = /./, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return waitUntil(`the controller to look at ${sts} again (${match})`, timeoutMs, async () =>
      this.logs.find((l) => l.statefulSet === sts && new Date(String(l.time)).getTime() >= since && match.test(String(l.msg))),
    );
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.probePort}/metrics`)).text();
  }
}

export interface HookCall {
  at: number;
  sts: string;
  updateRevision: string;
  prev: { name: string; uid: string } | null;
  next: { name: string; uid: string } | null;
  approved: boolean;
  /** When the answer was sent (after `decide`); 0 until then. */
  answeredAt: number;
  /** The StatefulSet's partition and resourceVersion in the request: what the controller planned on. */
  partition: number | undefined;
  resourceVersion: string;
}

/** A scale-down request the http hook sent (kind PodRemoval). */
export interface RemovalCall {
  at: number;
  sts: string;
  call: 'removal' | 'removed' | 'withdrawn';
  pod: { name: string; uid: string };
  podReady: boolean;
  volumes: string;
  requestedReplicas: number;
  /** spec.replicas of the StatefulSet the controller sent. */
  replicas: number | undefined;
  approved: boolean;
  answeredAt: number;
}

/**
 * A hook endpoint for the `http` hook that records every call and answers as
 * the test says: the auditing hook of the tests. Rollout steps go to `calls`
 * and `decide`, scale-down requests to `removals` and `decideRemoval`.
 */
export class RecordingHook {
  readonly calls: HookCall[] = [];
  readonly removals: RemovalCall[] = [];
  decide: (call: HookCall) => boolean | Promise<boolean> = () => true;
  decideRemoval: (call: RemovalCall) => boolean | Promise<boolean> = () => true;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', async () => {
        const b = JSON.parse(body) as { kind?: string; statefulSet: V1StatefulSet; prev: V1Pod | null; next: V1Pod | null };
        const pod = (p: V1Pod | null) => (p ? { name: p.metadata?.name ?? '', uid: p.metadata?.uid ?? '' } : null);
        if (b.kind === 'PodRemoval') {
          const r = b as unknown as { call: RemovalCall['call']; pod: V1Pod; podReady: boolean; volumes: string; requestedReplicas: number };
          const call: RemovalCall = {
            at: Date.now(),
            sts: `${b.statefulSet.metadata?.namespace}/${b.statefulSet.metadata?.name}`,
            call: r.call,
            pod: pod(r.pod) ?? { name: '', uid: '' },
            podReady: r.podReady,
            volumes: r.volumes,
            requestedReplicas: r.requestedReplicas,
            replicas: b.statefulSet.spec?.replicas,
            approved: false,
            answeredAt: 0,
          };
          call.approved = await this.decideRemoval(call);
          call.answeredAt = Date.now();
          this.removals.push(call);
          res.writeHead(call.approved ? 200 : 503).end(call.approved ? 'ok' : 'test hook says no');
          return;
        }
        const call: HookCall = {
          at: Date.now(),
          sts: `${b.statefulSet.metadata?.namespace}/${b.statefulSet.metadata?.name}`,
          updateRevision: b.statefulSet.status?.updateRevision ?? '',
          prev: pod(b.prev),
          next: pod(b.next),
          approved: false,
          answeredAt: 0,
          partition: partitionOf(b.statefulSet),
          resourceVersion: b.statefulSet.metadata?.resourceVersion ?? '',
        };
        call.approved = await this.decide(call);
        call.answeredAt = Date.now();
        this.calls.push(call);
        res.writeHead(call.approved ? 200 : 503).end(call.approved ? 'ok' : 'test hook says no');
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  approvals(sts?: string): HookCall[] {
    return this.calls.filter((c) => c.approved && (!sts || c.sts === sts));
  }

  stop(): void {
    this.server?.close();
  }
}

export interface PodUpdate {
  at: number;
  name: string;
  /** uid of the pod that went away, and the revision it ran. */
  oldUid: string;
  oldRevision: string;
}

/**
 * Watches the pods of one namespace and records every deletion: in a
 * StatefulSet rollout, a pod is updated by being deleted and recreated.
 */
export class PodWatcher {
  readonly deletions: PodUpdate[] = [];
  private watch: PlainWatch<V1Pod> | undefined;
  private readonly seen = new Set<string>();

  async start(c: Cluster, ns: string): Promise<this> {
    this.watch = await new PlainWatch<V1Pod>(
      c.kc,
      `/api/v1/namespaces/${ns}/pods`,
      () => c.core.listNamespacedPod({ namespace: ns }),
      (verb, pod) => {
        const uid = pod.metadata?.uid ?? '';
        if (verb !== 'DELETED' && !pod.metadata?.deletionTimestamp) return;
        if (this.seen.has(uid)) return;
        this.seen.add(uid);
        this.deletions.push({
          at: Date.now(),
          name: pod.metadata?.name ?? '',
          oldUid: uid,
          oldRevision: pod.metadata?.labels?.['controller-revision-hash'] ?? '',
        });
      },
    ).start();
    return this;
  }

  async stop(): Promise<void> {
    this.watch?.stop();
  }
}

/** Records each StatefulSet's partition as the watch shows it (consecutive repeats folded). */
export class PartitionRecorder {
  readonly history = new Map<string, (number | undefined)[]>();
  private watch: PlainWatch<V1StatefulSet> | undefined;

  async start(c: Cluster, ns: string): Promise<this> {
    this.watch = await new PlainWatch<V1StatefulSet>(
      c.kc,
      `/apis/apps/v1/namespaces/${ns}/statefulsets`,
      () => c.apps.listNamespacedStatefulSet({ namespace: ns }),
      (verb, sts) => {
        if (verb === 'DELETED') return;
        const name = sts.metadata?.name ?? '';
        const h = this.history.get(name) ?? [];
        const p = partitionOf(sts);
        if (h.length === 0 || h.at(-1) !== p) h.push(p);
        this.history.set(name, h);
      },
    ).start();
    return this;
  }

  of(name: string): (number | undefined)[] {
    return this.history.get(name) ?? [];
  }

  async stop(): Promise<void> {
    this.watch?.stop();
  }
}

export async function readSts(c: Cluster, ns: string, name: string): Promise<V1StatefulSet> {
  return c.apps.readNamespacedStatefulSet({ name, namespace: ns });
}

export async function podsOf(c: Cluster, ns: string, name: string): Promise<V1Pod[]> {
  const list = await c.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${name}` });
  return list.items.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** All pods exist, run the update revision, are Ready; the StatefulSet says so too. */
export async function converged(c: Cluster, ns: string, name: string): Promise<V1StatefulSet | undefined> {
  const sts = await readSts(c, ns, name);
  const n = sts.spec?.replicas ?? 1;
  const st = sts.status;
  if (!st || st.observedGeneration !== sts.metadata?.generation) return undefined;
  if (st.currentRevision !== st.updateRevision || st.updatedReplicas !== n || st.readyReplicas !== n) return undefined;
  const pods = (await podsOf(c, ns, name)).filter((p) => !p.metadata?.deletionTimestamp);
  if (pods.length !== n || !pods.every((p) => isReady(p) && p.metadata?.labels?.['controller-revision-hash'] === st.updateRevision)) return undefined;
  return sts;
}

/** Create a StatefulSet and wait until its pods run and (if subscribed) the controller holds P = N. */
export async function createAndSettle(c: Cluster, ns: string, sts: V1StatefulSet): Promise<V1StatefulSet> {
  await c.apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
  const name = sts.metadata?.name ?? '';
  const n = sts.spec?.replicas ?? 1;
  const subscribed = Object.keys(sts.metadata?.labels ?? {}).length > 0 && sts.spec?.updateStrategy?.type !== 'OnDelete';
  return waitUntil(`${name} to settle`, 60_000, async () => {
    const s = await converged(c, ns, name);
    if (!s) return undefined;
    if (subscribed && partitionOf(s) !== n) return undefined;
    return s;
  });
}

export async function eventsFor(c: Cluster, ns: string, name: string): Promise<{ reason: string; message: string; type: string }[]> {
  const list = await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name},involvedObject.kind=StatefulSet` });
  const time = (e: (typeof list.items)[number]): number => new Date(e.lastTimestamp ?? e.eventTime ?? 0).getTime();
  return list.items.sort((a, b) => time(a) - time(b)).map((e) => ({ reason: e.reason ?? '', message: e.message ?? '', type: e.type ?? '' }));
}

/** One observed state of a StatefulSet, as the audit's own watch saw it. */
export interface StsObservation {
  at: number;
  resourceVersion: string;
  generation: number;
  partition: number | undefined;
  replicas: number;
  strategy: string;
  updateRevision: string | undefined;
  currentRevision: string | undefined;
}

export interface PodCreation {
  at: number;
  name: string;
  uid: string;
  revision: string;
  owner: string;
}

/** A pod that went away at one revision and came back at another. */
export interface PodMove extends PodDeletion {
  newUid: string;
  newRevision: string;
}

export interface PodDeletion extends PodUpdate {
  /** The StatefulSet that owned the pod. */
  owner: string;
  /** Not seen directly: the name came back with another uid after the watch relisted. */
  inferred: boolean;
}

/**
 * An independent record of a namespace, for the chaos and fault tests: every
 * pod deletion (also one that happened while this watch was relisting: the
 * name comes back with a new uid) and every observed change of each
 * StatefulSet's partition and revisions, with times. Read by auditViolations().
 */
export class RolloutAudit {
  readonly deletions: PodDeletion[] = [];
  /** Every pod the watch saw appear, with its revision: what a deleted pod came back as. */
  readonly creations: PodCreation[] = [];
  private readonly observations = new Map<string, StsObservation[]>();
  private readonly lastPod = new Map<string, { uid: string; revision: string; owner: string }>();
  private readonly deleted = new Set<string>();
  private readonly created = new Set<string>();
  private readonly latest = new Map<string, string>();
  private pods: PlainWatch<V1Pod> | undefined;
  private sets: PlainWatch<V1StatefulSet> | undefined;

  async start(c: Cluster, ns: string): Promise<this> {
    this.pods = new PlainWatch<V1Pod>(c.kc, `/api/v1/namespaces/${ns}/pods`, () => c.core.listNamespacedPod({ namespace: ns }), (verb, pod) =>
      this.onPod(pod, verb),
    );
    this.sets = new PlainWatch<V1StatefulSet>(
      c.kc,
      `/apis/apps/v1/namespaces/${ns}/statefulsets`,
      () => c.apps.listNamespacedStatefulSet({ namespace: ns }),
      (verb, sts) => {
        if (verb !== 'DELETED') this.observe(sts);
      },
    );
    await Promise.all([this.pods.start(), this.sets.start()]);
    return this;
  }

  async stop(): Promise<void> {
    this.pods?.stop();
    this.sets?.stop();
  }

  /**
   * Waits until this watch has seen the pod that stands under each name of the
   * namespace now (read from the API server), so that moves() and deletions
   * include everything up to this moment. Fails, with what its watch went
   * through, rather than let a test count moves from an audit that fell behind.
   */
  async caughtUp(c: Cluster, ns: string, timeoutMs = 30_000): Promise<void> {
    const now = (await c.core.listNamespacedPod({ namespace: ns })).items;
    const behind = (): string[] =>
      now.filter((p) => this.lastPod.get(p.metadata?.name ?? '')?.uid !== p.metadata?.uid && !this.deleted.has(p.metadata?.uid ?? '')).map((p) => p.metadata?.name ?? '');
    const until = Date.now() + timeoutMs;
    while (behind().length > 0) {
      if (Date.now() > until) {
        throw new Error(`the audit's pod watch is behind the API server on ${behind().join(', ')} after ${timeoutMs} ms: ${JSON.stringify(this.pods?.state)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Observed states of one StatefulSet, oldest first (consecutive repeats of the audited fields folded). */
  of(name: string): StsObservation[] {
    return this.observations.get(name) ?? [];
  }

  /** The state the StatefulSet was in at time `t`, as far as this watch knew. */
  at(name: string, t: number): StsObservation | undefined {
    return this.of(name).findLast((o) => o.at <= t);
  }

  /** This watch has seen the StatefulSet at `resourceVersion` or later. */
  hasSeen(name: string, resourceVersion: string): boolean {
    const last = this.latest.get(name) ?? this.of(name).at(-1)?.resourceVersion;
    if (!last || !/^[0-9]+$/.test(last) || !/^[0-9]+$/.test(resourceVersion)) return false;
    return BigInt(last) >= BigInt(resourceVersion);
  }

  /**
   * Pods of `owner` that went away and came back at another revision: the moves
   * a rollout makes. A pod deleted and recreated at the same revision (an
   * eviction, a rollback that caught it in flight) moved nothing.
   */
  moves(owner: string): PodMove[] {
    const out: PodMove[] = [];
    for (const d of this.deletions.filter((x) => x.owner === owner)) {
      const next = this.creations.find((c) => c.name === d.name && c.uid !== d.oldUid && c.at >= d.at - 1000 && !this.deletions.some((e) => e.oldUid === c.uid && e.at < d.at));
      if (next && next.revision !== d.oldRevision) out.push({ ...d, newUid: next.uid, newRevision: next.revision });
    }
    return out;
  }

  private observe(sts: V1StatefulSet): void {
    const name = sts.metadata?.name ?? '';
    this.latest.set(name, sts.metadata?.resourceVersion ?? '');
    const list = this.observations.get(name) ?? [];
    const o: StsObservation = {
      at: Date.now(),
      resourceVersion: sts.metadata?.resourceVersion ?? '',
      generation: sts.metadata?.generation ?? 0,
      partition: partitionOf(sts),
      replicas: sts.spec?.replicas ?? 1,
      strategy: sts.spec?.updateStrategy?.type ?? 'RollingUpdate',
      updateRevision: sts.status?.updateRevision,
      currentRevision: sts.status?.currentRevision,
    };
    const last = list.at(-1);
    const same =
      last !== undefined &&
      last.generation === o.generation &&
      last.partition === o.partition &&
      last.replicas === o.replicas &&
      last.updateRevision === o.updateRevision &&
      last.currentRevision === o.currentRevision;
    if (!same) list.push(o);
    else last.resourceVersion = o.resourceVersion;
    this.observations.set(name, list);
  }

  private onPod(pod: V1Pod, verb: PlainEvent): void {
    const name = pod.metadata?.name ?? '';
    const uid = pod.metadata?.uid ?? '';
    const revision = pod.metadata?.labels?.['controller-revision-hash'] ?? '';
    const owner = pod.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'StatefulSet')?.name ?? '';
    const before = this.lastPod.get(name);
    if (before && before.uid !== uid && !this.deleted.has(before.uid)) {
      // The old pod vanished while this watch was away (a relist after 410 Gone).
      this.record({ at: Date.now(), name, oldUid: before.uid, oldRevision: before.revision, owner: before.owner, inferred: true });
    }
    this.lastPod.set(name, { uid, revision, owner });
    if (!this.created.has(uid)) {
      this.created.add(uid);
      this.creations.push({ at: Date.now(), name, uid, revision, owner });
    }
    if (verb === 'DELETED' || pod.metadata?.deletionTimestamp) {
      this.record({ at: Date.now(), name, oldUid: uid, oldRevision: revision, owner, inferred: false });
    }
  }

  private record(d: PodDeletion): void {
    if (this.deleted.has(d.oldUid)) return;
    this.deleted.add(d.oldUid);
    this.deletions.push(d);
  }
}

/**
 * Everything that went wrong in the rollouts of `names`, as sentences (empty: all
 * good). Checks, from the audit's own watch and the hook's own record:
 * - every pod deletion was preceded by an approval for that exact pod uid, to
 *   the revision the StatefulSet was rolling to;
 * - every partition decrease is by exactly one, to P-1, and preceded by its own
 *   approval (one approval per decrease) of pod P-1 at that revision;
 * - the partition was never raised while a rollout was in progress (no guard
 *   was needed: nobody but sts-pilot touched these StatefulSets);
 * - every hook call named the next pod: P-1 for the partition it was made at.
 */
export function auditViolations(audit: RolloutAudit, calls: readonly HookCall[], ns: string, names: readonly string[], t0 = 0): string[] {
  const out: string[] = [];
  const when = (t: number): string => `+${((t - t0) / 1000).toFixed(1)}s`;
  for (const name of names) {
    const key = `${ns}/${name}`;
    const mine = calls.filter((c) => c.sts === key);
    const approvals = mine.filter((c) => c.approved).sort((a, b) => a.answeredAt - b.answeredAt);
    for (const d of audit.deletions.filter((x) => x.owner === name)) {
      const state = audit.at(name, d.at);
      const a = approvals.find((c) => c.next?.uid === d.oldUid && c.answeredAt <= d.at && c.updateRevision !== d.oldRevision);
      if (!a) {
        out.push(`${name}: pod ${d.name} (uid ${d.oldUid}, revision ${d.oldRevision}) went away at ${when(d.at)}${d.inferred ? ' (seen after a relist)' : ''} without an approval for that pod`);
      } else if (state?.updateRevision && a.updateRevision !== state.updateRevision) {
        out.push(`${name}: pod ${d.name} was approved to move to ${a.updateRevision}, but was deleted while rolling to ${state.updateRevision}`);
      }
    }
    const timeline = audit.of(name);
    const used = new Set<HookCall>();
    for (let i = 1; i < timeline.length; i++) {
      const before = timeline[i - 1] as StsObservation;
      const now = timeline[i] as StsObservation;
      const p0 = before.partition;
      const p1 = now.partition;
      if (p0 === undefined || p1 === undefined || p0 === p1) continue;
      if (p1 > p0) {
        if (now.strategy === 'RollingUpdate' && now.updateRevision && now.currentRevision && now.updateRevision !== now.currentRevision) {
          out.push(`${name}: partition raised ${p0} -> ${p1} at ${when(now.at)} while rolling from ${now.currentRevision} to ${now.updateRevision}`);
        }
        continue;
      }
      if (p1 !== p0 - 1) {
        out.push(`${name}: partition jumped ${p0} -> ${p1} at ${when(now.at)}`);
        continue;
      }
      const a = approvals.find(
        (c) => !used.has(c) && c.next?.name === `${name}-${p1}` && c.updateRevision === now.updateRevision && c.answeredAt <= now.at,
      );
      if (!a) out.push(`${name}: partition ${p0} -> ${p1} at ${when(now.at)} without its own approval of ${name}-${p1} to ${now.updateRevision}`);
      else used.add(a);
    }
    for (const c of mine) {
      if (c.next && c.partition !== undefined && c.next.name !== `${name}-${c.partition - 1}`) {
        out.push(`${name}: the hook was asked about ${c.next.name} at partition ${c.partition} (the next pod is ${name}-${c.partition - 1})`);
      }
    }
  }
  return out;
}

/** The rollout of `name` to a revision other than `from` is finished: pods, partition, final hook call and mark. */
export async function rolloutFinished(c: Cluster, ns: string, name: string, from: string): Promise<V1StatefulSet | undefined> {
  const sts = await readSts(c, ns, name);
  const upd = sts.status?.updateRevision;
  const n = sts.spec?.replicas ?? 1;
  if (!upd || upd === from || sts.status?.observedGeneration !== sts.metadata?.generation) return undefined;
  if (sts.metadata?.annotations?.['sts-pilot.io/status']?.includes('"rollout"')) return undefined; // final call not made yet
  const pods = (await podsOf(c, ns, name)).filter((p) => !p.metadata?.deletionTimestamp);
  if (pods.length !== n || !pods.every((p) => isReady(p) && p.metadata?.labels?.['controller-revision-hash'] === upd)) return undefined;
  if (sts.spec?.updateStrategy?.type === 'OnDelete') return sts;
  return sts.status?.currentRevision === upd && partitionOf(sts) === n ? sts : undefined;
}

/**
 * Text snapshots of real runs, kept in test/integration/__snapshots__/<dir>.
 * UPDATE_SNAPSHOTS=1 records what this run printed; otherwise the output must
 * equal the committed file, and a missing file fails.
 */
export function snapshots(dir: string): (name: string, actual: string) => void {
  const snapshotDir = join(root, 'test', 'integration', '__snapshots__', dir);
  return (name, actual) => {
    const file = join(snapshotDir, `${name}.txt`);
    if (process.env.UPDATE_SNAPSHOTS === '1') {
      mkdirSync(snapshotDir, { recursive: true });
      writeFileSync(file, actual);
      return;
    }
    if (!existsSync(file)) throw new Error(`no snapshot ${relative(root, file)}: run with UPDATE_SNAPSHOTS=1 to record it from a real run`);
    expect(actual, `output differs from ${relative(root, file)} (UPDATE_SNAPSHOTS=1 records a new one)`).to.equal(readFileSync(file, 'utf8'));
  };
}
