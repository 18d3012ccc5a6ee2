import { KubeConfig } from '@kubernetes/client-node';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';

/**
 * A real Kubernetes control plane on loopback: etcd, kube-apiserver and
 * kube-controller-manager (StatefulSet and garbage collector controllers among
 * others), built from source by build-binaries.sh and cached outside the clone.
 * There is no kubelet and no scheduler: test/cluster/node-agent.ts plays both.
 */
export interface ControlPlane {
  server: string;
  kubeconfigPath: string;
  kc: KubeConfig;
  dir: string;
  binDir: string;
  etcdUrl: string;
  /** What `kube-apiserver --version` says, e.g. { gitVersion: 'v1.35.4', minor: 35 }. */
  version: KubeVersion;
  /** The kube-apiserver audit log (JSON lines), when started with `auditPolicy`. */
  auditLogPath?: string;
  /** Process ids of etcd, kube-apiserver and kube-controller-manager (for resource accounting). */
  pids?(): Record<string, number | undefined>;
  restartApiserver(): Promise<void>;
  /** Stop kube-apiserver only (etcd and kube-controller-manager keep running); startApiserver() brings it back. */
  stopApiserver(): Promise<void>;
  startApiserver(): Promise<void>;
  /** etcd's current revision (maintenance/status through its gRPC gateway). */
  etcdRevision(): Promise<number>;
  /** Compact etcd's history up to `revision` (default: the current one); returns the revision compacted at. */
  compactEtcd(revision?: number): Promise<number>;
  stop(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));

export interface KubeVersion {
  gitVersion: string;
  minor: number;
}

/** The version of the kube-apiserver binary in `binDir` (`Kubernetes v1.35.4`). */
export async function binaryVersion(binDir: string): Promise<KubeVersion> {
  const { stdout } = await promisify(execFile)(join(binDir, 'kube-apiserver'), ['--version']);
  const m = /^Kubernetes (v1\.(\d+)\.\d+)\s*$/.exec(stdout);
  if (!m?.[1] || !m[2]) throw new Error(`kube-apiserver --version said ${JSON.stringify(stdout)}`);
  return { gitVersion: m[1], minor: Number(m[2]) };
}

/**
 * kube-apiserver flags a version needs beyond the common ones (test/cluster/FLAGS.md,
 * "Older versions"). 1.34 and 1.35 serve MutatingAdmissionPolicy only as a beta that
 * is off by default: a matrix cluster of those versions turns it on, as an operator
 * who wants the mutating gate there would (docs/install.md, "Kubernetes versions").
 * Set STS_PILOT_MAP_BETA=0 to start them as they ship (the validating gate).
 */
export function versionFlags(v: KubeVersion, env: NodeJS.ProcessEnv = process.env): string[] {
  if ((v.minor === 34 || v.minor === 35) && env.STS_PILOT_MAP_BETA !== '0') {
    return ['--feature-gates=MutatingAdmissionPolicy=true', '--runtime-config=admissionregistration.k8s.io/v1beta1=true'];
  }
  return [];
}
const exec = promisify(execFile);

export async function binaries(log: (l: string) => void = () => {}): Promise<string> {
  const started = Date.now();
  const child = spawn('bash', [join(here, 'build-binaries.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => d.toString().split('\n').filter(Boolean).forEach(log));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`test/cluster/build-binaries.sh failed with exit code ${code}; its output is above`);
  const dir = out.trim().split('\n').at(-1) ?? '';
  if (!existsSync(join(dir, 'kube-apiserver'))) throw new Error(`build-binaries.sh printed ${JSON.stringify(dir)}, which holds no kube-apiserver`);
  log(`binaries in ${dir} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  return dir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const insecure = new Agent({ connect: { rejectUnauthorized: false } });

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, alive: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  while (Date.now() < deadline) {
    const dead = alive();
    if (dead) throw new Error(`${what}: ${dead}`);
    try {
      if (await check()) return;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`${what} not ready within ${timeoutMs / 1000}s${lastErr ? ` (last error: ${lastErr})` : ''}`);
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: string | undefined;
}

const running = new Set<Proc>();
process.on('exit', () => {
  for (const p of running) p.child.kill('SIGKILL');
});

function startProc(name: string, bin: string, args: string[], dir: string): Proc {
  const logFile = join(dir, `${name}.log`);
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const p: Proc = { name, child, logFile, exited: undefined };
  running.add(p);
  child.on('exit', (code, signal) => {
    p.exited = `${name} exited (code ${code}, signal ${signal}); last log lines:\n${tail(logFile)}`;
    running.delete(p);
  });
  child.on('error', (err) => {
    p.exited = `${name} could not start: ${err.message}`;
  });
  return p;
}

async function stopProc(p: Proc, graceMs = 10_000): Promise<void> {
  if (p.exited || p.child.exitCode !== null) return;
  const done = new Promise<void>((resolve) => p.child.once('exit', () => resolve()));
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
}

function kubeconfigYaml(server: string, user: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: local',
    '  cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: local',
    '  context:',
    '    cluster: local',
    `    user: ${user}`,
    'current-context: local',
    '',
  ].join('\n');
}

export interface StartOptions {
  log?: (line: string) => void;
  /** Keep the data dir after stop (for debugging). */
  keep?: boolean;
  /**
   * Enable the kube-apiserver audit log with this policy (an audit.k8s.io/v1
   * Policy, YAML text). The log is written as JSON lines, without rotation, to
   * `<dir>/audit.log` (ControlPlane.auditLogPath). Off by default.
   */
  auditPolicy?: string;
  /** Extra kube-apiserver flags; one given here replaces a default flag of the same name. */
  apiserverArgs?: string[];
  /**
   * Extra kube-controller-manager flags, e.g. `--kube-api-qps=500`,
   * `--kube-api-burst=1000`, `--concurrent-statefulset-syncs=20`; one given here
   * replaces a default flag of the same name.
   */
  controllerManagerArgs?: string[];
}

/** `defaults` with every `--flag` that `extra` also sets replaced by extra's value; other extras appended. */
function withFlags(defaults: string[], extra: string[] = []): string[] {
  const name = (a: string): string => a.split('=')[0] ?? a;
  const overridden = new Set(extra.map(name));
  return [...defaults.filter((a) => !overridden.has(name(a))), ...extra];
}

export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const binDir = await binaries(log);
  const version = await binaryVersion(binDir);
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'sts-pilot-cp-'));
  await mkdir(join(dir, 'etcd'), { recursive: true });
  await mkdir(join(dir, 'certs'), { recursive: true });

  const [etcdPort, etcdPeerPort, apiPort, kcmPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const server = `https://127.0.0.1:${apiPort}`;

  // Static tokens: admin for the tests, one for the controller manager.
  const tokens = new Map<string, { user: string; groups: string[] }>();
  const adminToken = randomBytes(16).toString('hex');
  const kcmToken = randomBytes(16).toString('hex');
  tokens.set(adminToken, { user: 'admin', groups: ['system:masters'] });
  tokens.set(kcmToken, { user: 'system:kube-controller-manager', groups: ['system:masters'] });
  const tokenFile = join(dir, 'tokens.csv');
  writeFileSync(tokenFile, [...tokens].map(([t, u]) => `${t},${u.user},${u.user},"${u.groups.join(',')}"`).join('\n') + '\n');

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));

  const procs: Proc[] = [];
  const etcd = startProc(
    'etcd',
    join(binDir, 'etcd'),
    [
      '--name=sts-pilot-test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=sts-pilot-test=http://127.0.0.1:${etcdPeerPort}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
    dir,
  );
  procs.push(etcd);
  await waitFor(
    'etcd',
    30_000,
    async () => (await request(`${etcdUrl}/health`)).statusCode === 200,
    () => etcd.exited,
  );

  let auditLogPath: string | undefined;
  const auditArgs: string[] = [];
  if (opts.auditPolicy !== undefined) {
    auditLogPath = join(dir, 'audit.log');
    writeFileSync(join(dir, 'audit-policy.yaml'), opts.auditPolicy);
    auditArgs.push(
      `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`,
      `--audit-log-path=${auditLogPath}`,
      '--audit-log-format=json',
      '--audit-log-maxsize=0',
    );
  }
  const apiserverArgs = withFlags([
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${join(dir, 'certs')}`,
    `--token-auth-file=${tokenFile}`,
    '--authorization-mode=RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    '--endpoint-reconciler-type=none',
    '--v=0',
    ...versionFlags(version),
    ...auditArgs,
  ], opts.apiserverArgs);
  let apiserver = startProc('kube-apiserver', join(binDir, 'kube-apiserver'), apiserverArgs, dir);
  procs.push(apiserver);
  const apiReady = async (): Promise<boolean> => {
    const res = await request(`${server}/readyz`, { dispatcher: insecure, headers: { authorization: `Bearer ${adminToken}` } });
    await res.body.text();
    return res.statusCode === 200;
  };
  await waitFor('kube-apiserver', 90_000, apiReady, () => apiserver.exited);

  const kubeconfigPath = join(dir, 'admin.kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfigYaml(server, 'admin', adminToken));
  writeFileSync(join(dir, 'kcm.kubeconfig'), kubeconfigYaml(server, 'system:kube-controller-manager', kcmToken));

  const kcm = startProc(
    'kube-controller-manager',
    join(binDir, 'kube-controller-manager'),
    withFlags([
      `--kubeconfig=${join(dir, 'kcm.kubeconfig')}`,
      '--controllers=statefulset,garbagecollector,namespace,serviceaccount',
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      `--cert-dir=${join(dir, 'certs')}`,
      '--concurrent-statefulset-syncs=5',
      '--v=1',
    ], opts.controllerManagerArgs),
    dir,
  );
  procs.push(kcm);

  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  // The serviceaccount controller creating "default" proves kube-controller-manager is working.
  await waitFor(
    'kube-controller-manager',
    90_000,
    async () => {
      const res = await request(`${server}/api/v1/namespaces/default/serviceaccounts/default`, {
        dispatcher: insecure,
        headers: { authorization: `Bearer ${adminToken}` },
      });
      await res.body.text();
      return res.statusCode === 200;
    },
    () => kcm.exited,
  );
  log(`control plane ${version.gitVersion} up in ${((Date.now() - started) / 1000).toFixed(1)}s at ${server} (dir ${dir})`);

  const etcdRevision = async (): Promise<number> => {
    const res = await request(`${etcdUrl}/v3/maintenance/status`, { method: 'POST', body: '{}' });
    const body = (await res.body.json()) as { header?: { revision?: string } };
    const rev = Number(body.header?.revision);
    if (res.statusCode !== 200 || !Number.isSafeInteger(rev)) throw new Error(`etcd status answered ${res.statusCode}: ${JSON.stringify(body)}`);
    return rev;
  };

  return {
    server,
    kubeconfigPath,
    kc,
    dir,
    binDir,
    etcdUrl,
    version,
    ...(auditLogPath !== undefined ? { auditLogPath } : {}),
    pids: () => ({ etcd: etcd.child.pid, 'kube-apiserver': apiserver.child.pid, 'kube-controller-manager': kcm.child.pid }),
    async restartApiserver() {
      await stopProc(apiserver);
      apiserver = startProc('kube-apiserver', join(binDir, 'kube-apiserver'), apiserverArgs, dir);
      procs.push(apiserver);
      await waitFor('kube-apiserver (restart)', 90_000, apiReady, () => apiserver.exited);
    },
    async stopApiserver() {
      await stopProc(apiserver);
    },
    async startApiserver() {
      if (!apiserver.exited && apiserver.child.exitCode === null) return;
      apiserver = startProc('kube-apiserver', join(binDir, 'kube-apiserver'), apiserverArgs, dir);
      procs.push(apiserver);
      await waitFor('kube-apiserver (start)', 90_000, apiReady, () => apiserver.exited);
    },
    etcdRevision,
    async compactEtcd(revision?: number) {
      const rev = revision ?? (await etcdRevision());
      const res = await request(`${etcdUrl}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: String(rev), physical: true }) });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`etcd compaction at ${rev} answered ${res.statusCode}: ${text}`);
      return rev;
    },
    async stop() {
      for (const p of [...procs].reverse()) await stopProc(p);
      if (!opts.keep) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** kubectl from the same build, against this control plane. */
export async function kubectl(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const p = exec(join(cp.binDir, 'kubectl'), ['--kubeconfig', cp.kubeconfigPath, ...args], { maxBuffer: 16 << 20 });
  if (input !== undefined) {
    p.child.stdin?.end(input);
  }
  const { stdout } = await p;
  return stdout;
}
