// Cassandra for the tests: jars from Maven Central through fetch-cassandra.sh
// (cached outside the clone), and a cluster of real CassandraDaemon JVMs on
// loopback addresses (127.0.0.1, 127.0.0.2, …), one rack each
// (GossipingPropertyFileSnitch), small heaps and fast-start settings; nodetool
// runs org.apache.cassandra.tools.NodeTool from the same classpath over each
// node's own JMX port. Every JVM is killed at process exit if a test forgets.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type cassandra from 'cassandra-driver';
import { type JarDist, jarDist } from '../tools/jar-dist.ts';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

export type CassandraDist = JarDist;

/** Runs fetch-cassandra.sh (downloads on a cache miss); fails with the script's own words. */
export const cassandraDist = jarDist(path.join(here, 'fetch-cassandra.sh'));

/** What conf/jvm17-server.options of the Cassandra 5.0 tarball gives the JVM on Java 17 (the module openings it needs). */
const JAVA17_OPENINGS = [
  '--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED',
  '--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED',
  '--add-exports=java.base/sun.nio.ch=ALL-UNNAMED',
  '--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED',
  '--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED',
  '--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED',
  '--add-exports=java.sql/java.sql=ALL-UNNAMED',
  '--add-exports=java.base/java.lang.ref=ALL-UNNAMED',
  '--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED',
  '--add-opens=java.base/java.lang.module=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.math=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.module=ALL-UNNAMED',
  '--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED',
  '--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED',
  '--add-opens=java.base/sun.nio.ch=ALL-UNNAMED',
  '--add-opens=java.base/java.io=ALL-UNNAMED',
  '--add-opens=java.base/java.nio=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent=ALL-UNNAMED',
  '--add-opens=java.base/java.util=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED',
  '--add-opens=java.base/java.lang=ALL-UNNAMED',
  '--add-opens=java.base/java.math=ALL-UNNAMED',
  '--add-opens=java.base/java.lang.reflect=ALL-UNNAMED',
  '--add-opens=java.base/java.net=ALL-UNNAMED',
];

const LOGBACK = `<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>\${cassandra.logdir}/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
</configuration>
`;

export interface CassandraNodeSpec {
  /** 127.0.0.<n> */
  address: string;
  rack: string;
  dc: string;
  jmxPort: number;
  dir: string;
}

export interface StartOptions {
  nodes?: number;
  clusterName?: string;
  dc?: string;
  /** -Xmx and -Xms of each node; default 512m. */
  heap?: string;
  /** Tokens per node; default 4 (fewer ranges, faster start). */
  numTokens?: number;
  /** TLS only on the native port (client_encryption_options, optional false), with this PKCS12 keystore. */
  clientTls?: { keystore: string; password: string };
}

/** cassandra.yaml for one node: loopback addresses, every directory under its own dir, nothing optional on. */
function yamlOf(n: CassandraNodeSpec, seeds: string, clusterName: string, numTokens: number, tls?: StartOptions['clientTls']): string {
  return `cluster_name: '${clusterName}'
num_tokens: ${numTokens}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
auto_bootstrap: false
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${seeds}"
listen_address: ${n.address}
rpc_address: ${n.address}
storage_port: 7000
native_transport_port: 9042
endpoint_snitch: GossipingPropertyFileSnitch
data_file_directories: [${n.dir}/data]
commitlog_directory: ${n.dir}/commitlog
saved_caches_directory: ${n.dir}/saved_caches
hints_directory: ${n.dir}/hints
cdc_raw_directory: ${n.dir}/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
hinted_handoff_enabled: true
max_hint_window: 3h
concurrent_reads: 4
concurrent_writes: 4
concurrent_counter_writes: 4
concurrent_compactors: 1
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
start_native_transport: true
${
  tls
    ? `client_encryption_options:
  enabled: true
  optional: false
  keystore: ${tls.keystore}
  keystore_password: ${tls.password}
  store_type: PKCS12
  require_client_auth: false
`
    : ''
}`;
}

export class CassandraNode {
  child: ChildProcess | null = null;
  exited: Promise<void> = Promise.resolve();

  readonly spec: CassandraNodeSpec;
  readonly dist: CassandraDist;
  private readonly heap: string;

  constructor(spec: CassandraNodeSpec, dist: CassandraDist, heap: string) {
    this.spec = spec;
    this.dist = dist;
    this.heap = heap;
  }

  get address(): string {
    return this.spec.address;
  }

  get log(): string {
    return path.join(this.spec.dir, 'logs', 'system.log');
  }

  /** The CassandraDaemon JVM's command line (java and its arguments), for this process or a pilot to run. */
  command(): string[] {
    const d = this.spec.dir;
    return [
      path.join(this.dist.javaHome, 'bin', 'java'),
      `-Xms${this.heap}`,
      `-Xmx${this.heap}`,
      '-Xss512k',
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=100',
      '-XX:+UseStringDeduplication',
      '-XX:TieredStopAtLevel=1', // C1 only: a faster start on two cores, enough for tests
      '-Djava.awt.headless=true',
      '-Djdk.attach.allowAttachSelf=true',
      '-Dcassandra-foreground=yes',
      `-Dcassandra.config=file://${d}/cassandra.yaml`,
      `-Dcassandra-rackdc.properties=file://${d}/cassandra-rackdc.properties`,
      `-Dcassandra.logdir=${d}/logs`,
      `-Dcassandra.storagedir=${d}`,
      `-Dlogback.configurationFile=${d}/logback.xml`,
      `-Dcassandra.jmx.local.port=${this.spec.jmxPort}`,
      '-Dcassandra.skip_wait_for_gossip_to_settle=0',
      '-Dcassandra.ring_delay_ms=1000',
      '-Dcassandra.consistent.rangemovement=false',
      '-Dcassandra.superuser_setup_delay_ms=0',
      ...JAVA17_OPENINGS,
      '-cp',
      `${this.dist.libs}/*`,
      'org.apache.cassandra.service.CassandraDaemon',
    ];
  }

  /** Spawns the JVM; does not wait for anything. */
  spawn(): void {
    const d = this.spec.dir;
    const [java, ...args] = this.command();
    const child = spawn(java as string, args, { cwd: d, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => fs.appendFileSync(path.join(d, 'logs', 'stderr.log'), s));
    this.child = child;
    live.add(this);
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        live.delete(this);
        if (this.child === child) this.child = null;
        resolve();
      });
    });
  }

  /** Spawns the JVM and resolves once its native transport listens (the log says so). */
  async start(timeoutMs = 180_000): Promise<void> {
    const mark = fs.existsSync(this.log) ? fs.statSync(this.log).size : 0;
    this.spawn();
    await this.waitForLog(/Starting listening for CQL clients|Startup complete/, mark, timeoutMs);
  }

  async waitForLog(re: RegExp, from: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (fs.existsSync(this.log)) {
        const text = fs.readFileSync(this.log, 'utf8').slice(from);
        if (re.test(text)) return;
      }
      if (!this.child) throw new Error(`cassandra at ${this.address} exited before ${re}; see ${this.log} and ${path.join(this.spec.dir, 'logs', 'stderr.log')}`);
      if (Date.now() > deadline) throw new Error(`cassandra at ${this.address}: no ${re} within ${timeoutMs} ms; see ${this.log}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** SIGTERM (Cassandra's own shutdown hook), then SIGKILL after graceMs. */
  async stop(graceMs = 30_000): Promise<void> {
    const c = this.child;
    if (!c) return;
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }

  /** `nodetool -h 127.0.0.1 -p <jmx port> <args>` from the same classpath; the output, or a thrown error with nodetool's own words. */
  async nodetool(args: string[], timeoutMs = 60_000): Promise<string> {
    return nodetool(this.dist, this.spec.jmxPort, args, timeoutMs);
  }
}

/** A logback configuration that silences nodetool's own logging, written once per process. */
let toolsLogbackFile: string | undefined;
function toolsLogback(): string {
  if (!toolsLogbackFile) {
    toolsLogbackFile = path.join(os.tmpdir(), `sts-pilot-nodetool-logback-${process.pid}.xml`);
    fs.writeFileSync(toolsLogbackFile, '<configuration><root level="OFF"/></configuration>\n');
    process.once('exit', () => fs.rmSync(toolsLogbackFile as string, { force: true }));
  }
  return toolsLogbackFile;
}

/** `nodetool -h 127.0.0.1 -p <jmxPort> <args>` as a command line (java and its arguments). */
export function nodetoolCommand(dist: CassandraDist, jmxPort: number, args: string[]): string[] {
  const java = path.join(dist.toolsJavaHome, 'bin', 'java');
  const jvm = ['-Xmx128m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', `-Dlogback.configurationFile=${toolsLogback()}`, ...JAVA17_OPENINGS, '-cp', `${dist.libs}/*`];
  return [java, ...jvm, 'org.apache.cassandra.tools.NodeTool', '-h', '127.0.0.1', '-p', String(jmxPort), ...args];
}

/** A command line as one string for /bin/sh -c, every word single-quoted. */
export const shellLine = (argv: readonly string[]): string => argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');

export async function nodetool(dist: CassandraDist, jmxPort: number, args: string[], timeoutMs = 60_000): Promise<string> {
  const [java, ...rest] = nodetoolCommand(dist, jmxPort, args);
  try {
    const { stdout } = await run(java as string, rest, { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`nodetool ${args.join(' ')} (jmx ${jmxPort}): ${(e.stderr || e.stdout || e.message).trim().slice(0, 2000)}`);
  }
}

const live = new Set<CassandraNode>();
process.once('exit', () => {
  for (const n of live) n.kill();
});

export interface CassandraCluster {
  dist: CassandraDist;
  clusterName: string;
  dc: string;
  nodes: CassandraNode[];
  dir: string;
  /** Milliseconds from the first spawn to every node UN in node 1's view. */
  startMs: number;
  stop(): Promise<void>;
}

export interface PreparedNodes {
  dist: CassandraDist;
  clusterName: string;
  dc: string;
  dir: string;
  nodes: CassandraNode[];
}

/**
 * Writes the configuration of `nodes` CassandraDaemon nodes (127.0.0.1 …, rack
 * r1, r2, … in one DC, seeds the first two, auto_bootstrap false: a fresh,
 * empty ring needs no streaming) under a new temporary directory; starts none.
 */
export async function prepareCassandraNodes(o: StartOptions = {}): Promise<PreparedNodes> {
  const dist = await cassandraDist();
  const count = o.nodes ?? 3;
  const clusterName = o.clusterName ?? 'sts-pilot-test';
  const dc = o.dc ?? 'dc1';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-cassandra-'));
  const specs: CassandraNodeSpec[] = Array.from({ length: count }, (_, i) => ({
    address: `127.0.0.${i + 1}`,
    rack: `r${i + 1}`,
    dc,
    jmxPort: 7199 + 100 * i,
    dir: path.join(dir, `n${i + 1}`),
  }));
  const seeds = specs.map((s) => s.address).slice(0, Math.min(2, count)).join(',');
  for (const s of specs) {
    for (const sub of ['data', 'commitlog', 'saved_caches', 'hints', 'cdc_raw', 'logs']) fs.mkdirSync(path.join(s.dir, sub), { recursive: true });
    fs.writeFileSync(path.join(s.dir, 'cassandra.yaml'), yamlOf(s, seeds, clusterName, o.numTokens ?? 4, o.clientTls));
    fs.writeFileSync(path.join(s.dir, 'cassandra-rackdc.properties'), `dc=${s.dc}\nrack=${s.rack}\nprefer_local=true\n`);
    fs.writeFileSync(path.join(s.dir, 'logback.xml'), LOGBACK);
  }
  return { dist, clusterName, dc, dir, nodes: specs.map((s) => new CassandraNode(s, dist, o.heap ?? '512m')) };
}

/**
 * Starts the nodes of prepareCassandraNodes, the first seed first (the others
 * join its gossip), and resolves when every node reports every node UN.
 */
export async function startCassandraCluster(o: StartOptions = {}): Promise<CassandraCluster> {
  const { dist, clusterName, dc, dir, nodes } = await prepareCassandraNodes(o);
  const count = nodes.length;
  const t0 = Date.now();
  const cluster: CassandraCluster = {
    dist,
    clusterName,
    dc,
    nodes,
    dir,
    startMs: 0,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      if (!process.env.STS_PILOT_KEEP_CASSANDRA) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await (nodes[0] as CassandraNode).start();
    await Promise.all(nodes.slice(1).map((n) => n.start()));
    await waitFor(async () => {
      const s = parseStatus(await (nodes[0] as CassandraNode).nodetool(['status']));
      return s.length === count && s.every((x) => x.status === 'U' && x.state === 'N');
    }, 120_000, 'every node UN');
    cluster.startMs = Date.now() - t0;
    return cluster;
  } catch (err) {
    await cluster.stop().catch(() => {});
    throw err;
  }
}

/**
 * Every node sees every node UN (`nodetool status` on each). A pod Ready is a
 * node whose native port listens, not yet one its peers see NORMAL; 4.1.10
 * refuses `ALTER KEYSPACE … replication` then ("Cannot alter RF while some
 * endpoints are not in normal state").
 */
export async function allUpNormal(nodes: readonly CassandraNode[]): Promise<boolean> {
  const views = await Promise.all(nodes.map(async (n) => parseStatus(await n.nodetool(['status']))));
  return views.every((v) => v.length === nodes.length && v.every((x) => x.status === 'U' && x.state === 'N'));
}

/**
 * Every node the client knows reports one schema version (system.local, asked
 * of each node): DDL sent to one node and the next statement to another need
 * it. Measured on 4.1.10: CREATE TABLE on a second node right after CREATE
 * KEYSPACE on the first failed "Keyspace 'app' doesn't exist".
 */
export async function schemaAgreed(client: cassandra.Client): Promise<boolean> {
  const versions = await Promise.all(
    [...client.hosts.values()].map((host) => client.execute('SELECT schema_version FROM system.local', [], { host }).then((r) => String(r.rows[0]?.get('schema_version')))),
  );
  return new Set(versions).size === 1;
}

export async function waitFor(f: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await f()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last instanceof Error ? last.message : String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface StatusLine {
  dc: string;
  /** U or D */
  status: string;
  /** N, L, J or M */
  state: string;
  address: string;
  hostId: string;
  rack: string;
}

/** `nodetool status`: one line per node, under its "Datacenter: <dc>" heading. */
export function parseStatus(out: string): StatusLine[] {
  const lines: StatusLine[] = [];
  let dc = '';
  for (const line of out.split('\n')) {
    const h = /^Datacenter: (.+)$/.exec(line.trim());
    if (h) {
      dc = h[1] as string;
      continue;
    }
    const m = /^([UD])([NLJM])\s+(\S+)\s+.*?\s([0-9a-f]{8}-[0-9a-f-]{27})\s+(\S+)\s*$/.exec(line.trim());
    if (m) lines.push({ dc, status: m[1] as string, state: m[2] as string, address: (m[3] as string).replace(/:\d+$/, ''), hostId: m[4] as string, rack: m[5] as string });
  }
  return lines;
}
