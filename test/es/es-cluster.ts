// A real Elasticsearch/OpenSearch cluster on loopback for the test suite.
//
// The distribution comes from Maven Central through test/es/fetch-distribution.sh
// (cached outside the clone, see that script). Every node is a child process with
// its own config dir (ES_PATH_CONF / OPENSEARCH_PATH_CONF), data, logs and tmp dir
// under one work dir, listening on 127.0.0.1 only, plain HTTP, no security.
//
// Both refuse to run as root, so when we are root the nodes run as `nobody`
// (override: STS_PILOT_ES_UID / STS_PILOT_ES_GID) from a hard-linked copy of the
// distribution inside the work dir (the cache under /root is not readable by them).
// Every node is started through `setpriv --pdeathsig KILL` so a test process that
// dies hard does not leave JVMs behind; an 'exit' handler kills them too.

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

export type EsFlavor = 'opensearch' | 'elasticsearch';

export interface EsDistribution {
  flavor: EsFlavor;
  version: string;
  /** unpacked distribution (the cache dir) */
  home: string;
  /** JDK/JRE home the nodes run on */
  javaHome: string;
}

export interface EsSecurity {
  /** PEM of the CA that signed `cert` */
  ca: string;
  /** PEM certificate for 127.0.0.1 and key */
  cert: string;
  key: string;
  /** users of the file realm; the first one is what the harness itself logs in as */
  users: { name: string; password: string; role: string }[];
  /** the built-in `elastic` user's password, as ECK sets it: `bootstrap.password` in each node's keystore */
  elasticPassword?: string;
}

export interface EsNodeHandle {
  name: string;
  httpPort: number;
  transportPort: number;
  dataDir: string;
  /** pid of the node's top process (OpenSearch: the JVM; Elasticsearch 8: its CLI launcher JVM, whose child is the server JVM) */
  pid: number | undefined;
  /** http://127.0.0.1:<httpPort> */
  url: string;
  running: boolean;
  /** graceful: SIGTERM, up to 30 s, then SIGKILL of the whole process tree */
  stop(): Promise<void>;
  /** signal the whole process tree at once (default SIGKILL: a crash); does not wait */
  kill(signal?: NodeJS.Signals): void;
  /** start again after stop/kill, same name, config and data dir; resolves when it has joined the cluster */
  start(): Promise<void>;
  /** stop() then start(): what a rolling upgrade does to one pod */
  restart(): Promise<void>;
  /** resolves when the process has exited (at once if not running) */
  exited(): Promise<void>;
  /** resident memory of the node's process tree, bytes (0 when not running) */
  rssBytes(): number;
  /** last lines of this node's stdout/stderr */
  recentLog(lines?: number): string[];
  /** the distribution its next start runs (a version upgrade: stop, set, start) */
  setDistribution(dist: EsDistribution): void;
  readonly dist: EsDistribution;
}

export interface EsClusterHandle {
  url: string;
  urls: string[];
  nodes: EsNodeHandle[];
  dist: EsDistribution;
  clusterName: string;
  workDir: string;
  /** GET /_cluster/health with the given query until it answers 200 (not timed out); throws after timeoutMs with recent logs */
  waitForHealth(query?: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface StartEsClusterOptions {
  nodes?: number;
  /** http port of node i is basePort+i, transport port basePort+100+i; default: a random free block from 30000 */
  basePort?: number;
  clusterName?: string;
  /** default es-0, es-1, ... (like the pods of a StatefulSet named "es") */
  nodeNames?: string[];
  /** JVM heap (-Xms = -Xmx), default 256m */
  heap?: string;
  /** default: a new temp dir, removed by stop(); a given one is kept */
  workDir?: string;
  log?: (line: string) => void;
  /** default: esDistribution() (env STS_PILOT_ES_DIST, STS_PILOT_ES_VERSION) */
  dist?: EsDistribution;
  /** extra node settings (elasticsearch.yml / opensearch.yml keys) */
  settings?: Record<string, unknown>;
  /** settings of one node, over `settings` (e.g. its node.roles) */
  nodeSettings?: (name: string) => Record<string, unknown>;
  /** the nodes that bootstrap the cluster (default: all); with dedicated masters, only those */
  masterNodes?: string[];
  /** security on (Elasticsearch): TLS on HTTP and transport with this certificate, and file-realm users */
  security?: EsSecurity;
  /** how long to wait for the cluster to form and go green, default 600 s (a shared 2-core machine can take minutes to start three JVMs) */
  startTimeoutMs?: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const FETCH_SCRIPT = path.join(here, 'fetch-distribution.sh');

// ---------------------------------------------------------------------------
// distribution

let distPromise: Promise<EsDistribution> | undefined;
let distKey = '';

/** Runs fetch-distribution.sh (downloads on a cache miss) and returns what it found. Memoized per env. */
export function esDistribution(): Promise<EsDistribution> {
  const key = [process.env.STS_PILOT_ES_DIST, process.env.STS_PILOT_ES_VERSION, process.env.STS_PILOT_CACHE, process.env.STS_PILOT_ES_JAVA_HOME].join('|');
  if (!distPromise || key !== distKey) {
    distKey = key;
    distPromise = runFetch();
    distPromise.catch(() => { distPromise = undefined; });
  }
  return distPromise;
}

/** runs fetch-distribution.sh, returns the home dir */
export async function esHome(): Promise<string> {
  return (await esDistribution()).home;
}

async function runFetch(): Promise<EsDistribution> {
  const child = spawn('bash', [FETCH_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; process.stderr.write(d); });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`fetch-distribution.sh exited ${code}:\n${err.trim()}`);
  const lines = out.trim().split('\n');
  const kv = (k: string) => lines.find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1);
  const home = lines[lines.length - 1] ?? '';
  const flavor = kv('flavor');
  const version = kv('version');
  const javaHome = kv('java_home');
  if ((flavor !== 'opensearch' && flavor !== 'elasticsearch') || !version || !javaHome || !home.startsWith('/')) {
    throw new Error(`fetch-distribution.sh printed something unexpected:\n${out}`);
  }
  return { flavor, version, home, javaHome };
}

// ---------------------------------------------------------------------------
// processes

/** every running node in this process, for the exit/signal handlers */
const live = new Set<NodeImpl>();
/** temp work dirs this process created and has not removed yet */
const ownDirs = new Set<string>();
let handlersInstalled = false;
const WORKDIR_PREFIX = 'sts-pilot-es-';

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const n of live) n.kill('SIGKILL');
    for (const d of ownDirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      for (const n of live) n.kill('SIGKILL');
      // if nobody else handles it, behave as if we had not been here
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/** removes temp work dirs left by test processes that died without cleaning up (their owner pid is gone) */
function sweepStaleWorkDirs(): void {
  let entries: string[];
  try { entries = fs.readdirSync(os.tmpdir()); } catch { return; }
  for (const e of entries) {
    if (!e.startsWith(WORKDIR_PREFIX)) continue;
    const dir = path.join(os.tmpdir(), e);
    let owner = NaN;
    try { owner = Number(fs.readFileSync(path.join(dir, 'owner.pid'), 'utf8')); } catch { continue; }
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
      try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
    }
  }
}

/** pids of all descendants of pid, from /proc */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try { entries = fs.readdirSync('/proc'); } catch { return []; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try { stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8'); } catch { continue; }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(e));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const c of children.get(p) ?? []) { out.push(c); queue.push(c); }
  }
  return out;
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

function signalPids(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) { try { process.kill(p, sig); } catch { /* gone */ } }
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// HTTP

export interface EsResponse<T = any> { status: number; body: T }

/** How to reach a secured node: its CA and credentials, by base URL (the harness registers its own nodes). */
const endpoints = new Map<string, { dispatcher: Agent; authorization: string }>();
export function registerEndpoint(baseUrl: string, o: { ca: string; user: string; password: string }): void {
  endpoints.set(baseUrl, { dispatcher: new Agent({ connect: { ca: o.ca } }), authorization: `Basic ${Buffer.from(`${o.user}:${o.password}`).toString('base64')}` });
}

/** One JSON call to a node. body: object -> JSON, string -> sent as is (ndjson for _bulk). Never throws on HTTP status. */
export async function esCall<T = any>(baseUrl: string, method: string, pathAndQuery: string, body?: unknown, timeoutMs = 30_000): Promise<EsResponse<T>> {
  const isString = typeof body === 'string';
  const ep = endpoints.get(baseUrl);
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': isString ? 'application/x-ndjson' : 'application/json' };
  if (ep) headers.authorization = ep.authorization;
  const res = await request(baseUrl + pathAndQuery, {
    method: method as 'GET',
    headers,
    ...(ep ? { dispatcher: ep.dispatcher } : {}),
    body: body === undefined ? undefined : isString ? body : JSON.stringify(body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON (e.g. _cat without format=json) */ }
  return { status: res.statusCode, body: parsed as T };
}

/** esCall that throws unless 2xx */
export async function esOk<T = any>(baseUrl: string, method: string, pathAndQuery: string, body?: unknown, timeoutMs?: number): Promise<T> {
  const r = await esCall<T>(baseUrl, method, pathAndQuery, body, timeoutMs);
  if (r.status < 200 || r.status > 299) throw new Error(`${method} ${pathAndQuery} -> ${r.status} ${JSON.stringify(r.body).slice(0, 2000)}`);
  return r.body;
}

/** the cluster UUID, by an API both Elasticsearch and OpenSearch have (the integ-test-zip of Elasticsearch has no GET /) */
export async function clusterUuid(baseUrl: string): Promise<string> {
  const b = await esOk<{ metadata: { cluster_uuid: string } }>(baseUrl, 'GET', '/_cluster/state/metadata?filter_path=metadata.cluster_uuid');
  return b.metadata.cluster_uuid;
}

// ---------------------------------------------------------------------------
// ports

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

async function blockFree(base: number, n: number): Promise<boolean> {
  for (let i = 0; i < n; i++) {
    if (!(await portFree(base + i)) || !(await portFree(base + 100 + i))) return false;
  }
  return true;
}

async function findBasePort(n: number): Promise<number> {
  // Random blocks, not the first free one: several test runs share this machine,
  // and a JVM binds its ports long after the check (minutes on a loaded machine).
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 30_000 + Math.floor(Math.random() * 150) * 200;
    if (await blockFree(base, n)) return base;
  }
  throw new Error('no free block of loopback ports at 30000-59999');
}

// ---------------------------------------------------------------------------
// files

function yamlOf(settings: Record<string, unknown>): string {
  // flat keys; JSON scalars and arrays are valid YAML flow values
  return Object.entries(settings).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n') + '\n';
}

/** hard-linked copy (same filesystem), else a plain copy */
function linkCopy(src: string, dst: string): void {
  const r = spawnSync('cp', ['-al', src, dst], { stdio: 'pipe' });
  if (r.status !== 0) {
    fs.rmSync(dst, { recursive: true, force: true });
    execFileSync('cp', ['-a', src, dst]);
  }
}

function hasSetpriv(): boolean {
  return spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
}

// ---------------------------------------------------------------------------
// nodes

interface ClusterCtx {
  dist: EsDistribution;
  home: string;
  clusterName: string;
  heap: string;
  all: NodeImpl[];
  runAs: { uid: number; gid: number } | undefined;
  setpriv: boolean;
  log: (line: string) => void;
  /** recent lines of all nodes, for failures */
  tail: string[];
  extraSettings: Record<string, unknown>;
  nodeSettings: (name: string) => Record<string, unknown>;
  masterNodes: string[];
  security: EsSecurity | undefined;
  workDir: string;
}

const RING = 400;

class NodeImpl implements EsNodeHandle {
  readonly name: string;
  readonly httpPort: number;
  readonly transportPort: number;
  readonly dir: string;
  readonly dataDir: string;
  readonly confDir: string;
  readonly logsDir: string;
  readonly tmpDir: string;
  private readonly ctx: ClusterCtx;
  private child: ChildProcess | undefined;
  private exitPromise: Promise<void> = Promise.resolve();
  private lines: string[] = [];
  private starts = 0;

  constructor(ctx: ClusterCtx, name: string, httpPort: number, transportPort: number, dir: string) {
    this.ctx = ctx;
    this.name = name;
    this.httpPort = httpPort;
    this.transportPort = transportPort;
    this.dir = dir;
    this.dataDir = path.join(dir, 'data');
    this.confDir = path.join(dir, 'config');
    this.logsDir = path.join(dir, 'logs');
    this.tmpDir = path.join(dir, 'tmp');
  }

  get url(): string { return `${this.ctx.security ? 'https' : 'http'}://127.0.0.1:${this.httpPort}`; }
  private own: { dist: EsDistribution; home: string } | undefined;
  get dist(): EsDistribution { return this.own?.dist ?? this.ctx.dist; }
  private get home(): string { return this.own?.home ?? this.ctx.home; }

  setDistribution(dist: EsDistribution): void {
    if (this.running) throw new Error(`${this.name} is running: stop it before changing its distribution`);
    let home = dist.home;
    if (this.ctx.runAs) {
      home = path.join(this.ctx.workDir, `${dist.flavor}-${dist.version}`);
      if (!fs.existsSync(home)) linkCopy(dist.home, home);
    }
    this.own = { dist, home };
    // The new version's jvm.options: config is copied again on the next start.
    const jvm = path.join(this.confDir, 'jvm.options');
    fs.rmSync(jvm, { force: true });
  }
  get pid(): number | undefined { return this.running ? this.child?.pid : undefined; }
  get running(): boolean { return !!this.child && this.child.exitCode === null && this.child.signalCode === null; }

  recentLog(n = 50): string[] { return this.lines.slice(-n); }

  rssBytes(): number {
    const pid = this.pid;
    if (pid === undefined) return 0;
    return [pid, ...descendants(pid)].reduce((s, p) => s + rssOf(p), 0);
  }

  exited(): Promise<void> { return this.exitPromise; }

  /** writes config files; the node's dirs exist */
  prepare(): void {
    const dist = this.dist;
    const home = this.home;
    for (const d of [this.dataDir, this.logsDir, this.tmpDir]) fs.mkdirSync(d, { recursive: true });
    if (!fs.existsSync(path.join(this.confDir, 'jvm.options'))) {
      fs.cpSync(path.join(home, 'config'), this.confDir, { recursive: true, force: true });
      // GC/error logs point at <home>/logs (not ours, not writable by the node user); heap comes from *_JAVA_OPTS
      const jvm = path.join(this.confDir, 'jvm.options');
      const kept = fs.readFileSync(jvm, 'utf8').split('\n')
        .filter((l) => !/-Xlog:|-Xloggc:|ErrorFile=|HeapDumpPath=|^\s*-Xm[sx]/.test(l));
      fs.writeFileSync(jvm, kept.join('\n'));
    }
    const firstBoot = !fs.existsSync(path.join(this.dataDir, 'nodes')) && fs.readdirSync(this.dataDir).length === 0;
    const names = this.ctx.masterNodes;
    const settings: Record<string, unknown> = {
      'cluster.name': this.ctx.clusterName,
      'node.name': this.name,
      'path.data': this.dataDir,
      'path.logs': this.logsDir,
      'network.host': '127.0.0.1',
      'http.port': this.httpPort,
      'transport.port': this.transportPort,
      'discovery.seed_hosts': this.ctx.all.map((n) => `127.0.0.1:${n.transportPort}`),
      // the disk here may be full-ish; a watermark must not move shards around behind the test's back
      'cluster.routing.allocation.disk.threshold_enabled': false,
    };
    // only for bootstrapping a new cluster; a restarted node rejoins the cluster it knows
    if (firstBoot && names.includes(this.name)) {
      settings[dist.flavor === 'opensearch' && !dist.version.startsWith('1.') ? 'cluster.initial_cluster_manager_nodes' : 'cluster.initial_master_nodes'] = names;
    }
    const sec = this.ctx.security;
    if (dist.flavor === 'elasticsearch' && fs.existsSync(path.join(home, 'modules', 'x-pack-security'))) {
      settings['xpack.security.enabled'] = sec !== undefined;
    }
    if (sec) {
      if (dist.flavor !== 'elasticsearch') throw new Error('security: only the Elasticsearch distribution carries it');
      fs.writeFileSync(path.join(this.confDir, 'ca.crt'), sec.ca);
      fs.writeFileSync(path.join(this.confDir, 'node.crt'), sec.cert);
      fs.writeFileSync(path.join(this.confDir, 'node.key'), sec.key);
      for (const layer of ['http', 'transport']) {
        settings[`xpack.security.${layer}.ssl.enabled`] = true;
        settings[`xpack.security.${layer}.ssl.certificate`] = 'node.crt';
        settings[`xpack.security.${layer}.ssl.key`] = 'node.key';
        settings[`xpack.security.${layer}.ssl.certificate_authorities`] = ['ca.crt'];
      }
      settings['xpack.security.transport.ssl.verification_mode'] = 'certificate';
      // file-realm users (config/users, users_roles), written by the distribution's own tool
      this.writeUsers(sec);
    }
    Object.assign(settings, this.ctx.extraSettings, this.ctx.nodeSettings(this.name));
    fs.writeFileSync(path.join(this.confDir, dist.flavor === 'opensearch' ? 'opensearch.yml' : 'elasticsearch.yml'), yamlOf(settings));
    if (this.ctx.runAs) {
      execFileSync('chown', ['-R', `${this.ctx.runAs.uid}:${this.ctx.runAs.gid}`, this.dir]);
    }
  }

  private writeUsers(sec: EsSecurity): void {
    const done = path.join(this.confDir, '.sts-pilot-users');
    if (fs.existsSync(done)) return;
    const env = { ...process.env, ES_PATH_CONF: this.confDir, ES_JAVA_HOME: this.dist.javaHome, JAVA_HOME: '' };
    for (const u of sec.users) {
      execFileSync(path.join(this.home, 'bin', 'elasticsearch-users'), ['useradd', u.name, '-p', u.password, '-r', u.role], { env, stdio: 'pipe' });
    }
    if (sec.elasticPassword) {
      const ks = path.join(this.home, 'bin', 'elasticsearch-keystore');
      if (!fs.existsSync(path.join(this.confDir, 'elasticsearch.keystore'))) execFileSync(ks, ['create'], { env, stdio: 'pipe' });
      execFileSync(ks, ['add', '--force', '--stdin', 'bootstrap.password'], { env, input: sec.elasticPassword, stdio: ['pipe', 'pipe', 'pipe'] });
    }
    fs.writeFileSync(done, '');
  }

  private addLine(line: string): void {
    const tagged = `[${this.name}] ${line}`;
    this.lines.push(line);
    if (this.lines.length > RING) this.lines.splice(0, this.lines.length - RING);
    this.ctx.tail.push(tagged);
    if (this.ctx.tail.length > RING) this.ctx.tail.splice(0, this.ctx.tail.length - RING);
    this.ctx.log(tagged);
  }

  /** spawns the process; does not wait for anything */
  spawnProcess(): void {
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.child?.pid})`);
    this.prepare();
    const { runAs } = this.ctx;
    const dist = this.dist;
    const home = this.home;
    const os_ = dist.flavor === 'opensearch';
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['JAVA_HOME', 'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'ES_JAVA_OPTS', 'OPENSEARCH_JAVA_OPTS', 'ES_HOME', 'OPENSEARCH_HOME']) delete env[k];
    const heapOpts = `-Xms${this.ctx.heap} -Xmx${this.ctx.heap}`;
    Object.assign(env, os_
      ? { OPENSEARCH_JAVA_HOME: dist.javaHome, OPENSEARCH_PATH_CONF: this.confDir, OPENSEARCH_JAVA_OPTS: heapOpts, OPENSEARCH_TMPDIR: this.tmpDir }
      : { ES_JAVA_HOME: dist.javaHome, ES_PATH_CONF: this.confDir, ES_JAVA_OPTS: heapOpts, ES_TMPDIR: this.tmpDir },
      { HOME: this.dir });
    const bin = path.join(home, 'bin', dist.flavor);
    let cmd = bin;
    let args: string[] = [];
    const spawnOpts: SpawnOptions = { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: false };
    if (this.ctx.setpriv) {
      cmd = 'setpriv';
      args = ['--pdeathsig', 'KILL'];
      if (runAs) args.push(`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--clear-groups');
      args.push('--', bin);
    } else if (runAs) {
      spawnOpts.uid = runAs.uid;
      spawnOpts.gid = runAs.gid;
    }
    this.starts++;
    this.addLine(`--- sts-pilot: starting ${dist.flavor} ${dist.version} (start #${this.starts}) http ${this.httpPort} transport ${this.transportPort}`);
    const child = spawn(cmd, args, spawnOpts);
    this.child = child;
    live.add(this);
    installHandlers();
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (l) => this.addLine(l));
    }
    this.exitPromise = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(this);
        this.addLine(`--- sts-pilot: exited (code ${code}, signal ${signal})`);
        resolve();
      });
      child.once('error', (e) => {
        live.delete(this);
        this.addLine(`--- sts-pilot: spawn error ${e.message}`);
        resolve();
      });
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running) return;
    signalPids([...descendants(pid).reverse(), pid], signal);
  }

  async stop(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running) return;
    // the Elasticsearch CLI's server JVM is reparented when the CLI exits: remember the tree now
    const tree = descendants(pid);
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exitPromise.then(() => false),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(true), 30_000); }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.addLine('--- sts-pilot: no exit 30 s after SIGTERM, SIGKILL');
      signalPids([...descendants(pid), ...tree, pid], 'SIGKILL');
      await this.exitPromise;
    }
    // leftovers of the tree (normally none: the Elasticsearch CLI exits after its server JVM;
    // a SIGTERM during the launcher's JVM-options step can orphan that short-lived java)
    const deadline = Date.now() + 3_000;
    while (tree.some(alive) && Date.now() < deadline) await sleep(100);
    signalPids(tree.filter(alive), 'SIGKILL');
  }

  /** resolves when this node answers and sees `expected` nodes in its cluster */
  async waitJoined(expected: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited while starting:\n${this.recentLog(50).join('\n')}`);
      try {
        const r = await esCall(this.url, 'GET', `/_cluster/health?wait_for_nodes=${expected}&timeout=5s`, undefined, 15_000);
        if (r.status === 200 && r.body?.timed_out === false) return;
        last = `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;
      } catch (e) {
        last = String((e as Error).message);
      }
      await sleep(500);
    }
    throw new Error(`${this.name} did not join a cluster of ${expected} nodes in ${timeoutMs / 1000} s (last: ${last})\n${this.recentLog(50).join('\n')}`);
  }

  async start(): Promise<void> {
    this.spawnProcess();
    await this.waitJoined(this.ctx.all.filter((n) => n.running).length, 180_000);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

// ---------------------------------------------------------------------------
// cluster

export async function startEsCluster(opts: StartEsClusterOptions = {}): Promise<EsClusterHandle> {
  const n = opts.nodes ?? opts.nodeNames?.length ?? 3;
  const names = opts.nodeNames ?? Array.from({ length: n }, (_, i) => `es-${i}`);
  if (names.length !== n) throw new Error(`nodeNames has ${names.length} names for ${n} nodes`);
  const dist = opts.dist ?? (await esDistribution());
  const basePort = opts.basePort ?? (await findBasePort(n));
  if (opts.basePort !== undefined && !(await blockFree(basePort, n))) {
    throw new Error(`ports ${basePort}..${basePort + n - 1} / ${basePort + 100}..${basePort + 100 + n - 1} are not all free on 127.0.0.1`);
  }
  const ownWorkDir = opts.workDir === undefined;
  if (ownWorkDir) sweepStaleWorkDirs();
  const workDir = opts.workDir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), WORKDIR_PREFIX)));
  await fsp.mkdir(workDir, { recursive: true });
  if (ownWorkDir) {
    ownDirs.add(workDir);
    await fsp.writeFile(path.join(workDir, 'owner.pid'), String(process.pid));
  }

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const runAs = isRoot
    ? { uid: Number(process.env.STS_PILOT_ES_UID ?? 65534), gid: Number(process.env.STS_PILOT_ES_GID ?? 65534) }
    : undefined;
  let home = dist.home;
  if (runAs) {
    home = path.join(workDir, `${dist.flavor}-${dist.version}`);
    if (!fs.existsSync(home)) linkCopy(dist.home, home);
    // the work dir itself must be traversable by the node user
    fs.chmodSync(workDir, 0o755);
  }

  const ctx: ClusterCtx = {
    dist,
    home,
    clusterName: opts.clusterName ?? 'sts-pilot-test',
    heap: opts.heap ?? '256m',
    all: [],
    runAs,
    setpriv: hasSetpriv(),
    log: opts.log ?? (() => {}),
    tail: [],
    extraSettings: opts.settings ?? {},
    nodeSettings: opts.nodeSettings ?? (() => ({})),
    masterNodes: opts.masterNodes ?? names,
    security: opts.security,
    workDir,
  };
  names.forEach((name, i) => ctx.all.push(new NodeImpl(ctx, name, basePort + i, basePort + 100 + i, path.join(workDir, name))));
  const urls = ctx.all.map((x) => x.url);
  if (opts.security) {
    const u = opts.security.users[0];
    if (!u) throw new Error('security: give at least one user');
    for (const url of urls) registerEndpoint(url, { ca: opts.security.ca, user: u.name, password: u.password });
  }

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(ctx.all.map((x) => x.stop()));
    if (ownWorkDir) {
      await fsp.rm(workDir, { recursive: true, force: true });
      ownDirs.delete(workDir);
    }
  };

  const waitForHealth = async (query = `wait_for_nodes=${n}&wait_for_status=green`, timeoutMs = 180_000): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    let i = 0;
    while (Date.now() < deadline) {
      const up = ctx.all.filter((x) => x.running);
      if (up.length === 0) break;
      const node = up[i++ % up.length]!;
      try {
        const r = await esCall(node.url, 'GET', `/_cluster/health?${query}&timeout=5s`, undefined, 15_000);
        if (r.status === 200 && r.body?.timed_out === false) return r.body;
        last = `${node.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;
      } catch (e) {
        last = `${node.name}: ${(e as Error).message}`;
      }
      await sleep(500);
    }
    throw new Error(`cluster health (${query}) not reached in ${timeoutMs / 1000} s; last answer: ${last}\n--- last 50 log lines:\n${ctx.tail.slice(-50).join('\n')}`);
  };

  try {
    for (const node of ctx.all) node.spawnProcess();
    const startTimeout = opts.startTimeoutMs ?? 600_000;
    const early = Promise.race(ctx.all.map((x) => x.exited().then(() => x)));
    const exitedEarly = early.then((x) => { throw new Error(`${x.name} exited while the cluster was forming\n--- last 50 log lines:\n${ctx.tail.slice(-50).join('\n')}`); });
    await Promise.race([waitForHealth(`wait_for_nodes=${n}&wait_for_status=green`, startTimeout), exitedEarly]);
    exitedEarly.catch(() => {});
    // plain HTTP without credentials must work (security off / absent)
    await esOk(urls[0]!, 'GET', '/_cluster/settings');
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }

  return { url: urls[0]!, urls, nodes: ctx.all, dist, clusterName: ctx.clusterName, workDir, waitForHealth, stop };
}
