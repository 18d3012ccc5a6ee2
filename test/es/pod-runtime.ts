// A NodeAgent runtime that backs each pod of a StatefulSet with a real
// OpenSearch/Elasticsearch node, wrapped by the in-pod pilot (`sts-pilot pilot
// --app elasticsearch -- <node>`), as a container runtime would run it:
//
// - node.name = the pod's name; data dir keyed by the pod's name, so it
//   survives the pod's re-creation like a PersistentVolumeClaim;
// - env POD_NAME / POD_NAMESPACE / POD_UID / POD_REVISION from the pod;
// - the pilot writes Pilot status with the ADMIN kubeconfig of the test cluster
//   (acceptable in a test; production binds manifests/rbac-pilot.yaml);
// - readiness = the pilot's /readyz;
// - as root the node runs as `nobody` through setpriv (and the pilot itself
//   through `setpriv --pdeathsig KILL`, so nothing outlives the test process).
//
// The first node (names[0]) bootstraps the cluster alone; the others join it
// through the seed hosts, so the StatefulSet's default OrderedReady start works.

import type { V1Pod } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { PodRuntime } from '../cluster/node-agent.ts';
import { linkedCopy } from '../cluster/linked-copy.ts';
import { podPilotReady, startPodPilot, stopPodPilot, terminatePilots } from '../cluster/pilot-processes.ts';
import type { Cluster } from '../integration/harness.ts';
import type { PilotProcess } from '../pilot/harness.ts';
import type { EsDistribution } from './es-cluster.ts';

export interface EsPodRuntimeOptions {
  c: Cluster;
  dist: EsDistribution;
  /** Kept by the caller (removed by it). */
  workDir: string;
  /** Pod names in ordinal order; names[0] bootstraps the cluster. */
  names: string[];
  clusterName?: string;
  heap?: string;
  /** Extra pilot flags. */
  pilotFlags?: string[];
  log?: (line: string) => void;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A block of n http ports at base.. and transport ports at base+100.., all free now. */
export async function freePortBlock(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 21_000 + Math.floor(Math.random() * 40) * 200;
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = (await portFree(base + i)) && (await portFree(base + 100 + i));
    if (ok) return base;
  }
  throw new Error('no free block of loopback ports');
}

interface PodNode {
  name: string;
  httpPort: number;
  transportPort: number;
  dir: string;
  pilot: PilotProcess | undefined;
  /** The uid of the pod `pilot` was started for. */
  podUid: string | undefined;
  starts: number;
}

export class EsPodRuntime implements PodRuntime {
  readonly nodes = new Map<string, PodNode>();
  /** Every pilot started, in order (for logs after a failure). */
  readonly pilots: { pod: string; pilot: PilotProcess }[] = [];
  private readonly o: EsPodRuntimeOptions;
  private readonly home: string;
  private readonly runAs: { uid: number; gid: number } | undefined;

  private constructor(o: EsPodRuntimeOptions, base: number) {
    this.o = o;
    o.names.forEach((name, i) =>
      this.nodes.set(name, { name, httpPort: base + i, transportPort: base + 100 + i, dir: path.join(o.workDir, name), pilot: undefined, podUid: undefined, starts: 0 }),
    );
    const isRoot = process.getuid?.() === 0;
    this.runAs = isRoot ? { uid: Number(process.env.STS_PILOT_ES_UID ?? 65534), gid: Number(process.env.STS_PILOT_ES_GID ?? 65534) } : undefined;
    this.home = o.dist.home;
    if (this.runAs) {
      // the cache may not be readable by the node user: a hard-linked copy in the work dir
      this.home = path.join(o.workDir, `${o.dist.flavor}-${o.dist.version}`);
      linkedCopy(o.dist.home, this.home);
      fs.chmodSync(o.workDir, 0o755);
    }
  }

  static async create(o: EsPodRuntimeOptions): Promise<EsPodRuntime> {
    return new EsPodRuntime(o, await freePortBlock(o.names.length));
  }

  /** http ports of the nodes whose pilot process runs (the Service's endpoints). */
  runningPorts(): number[] {
    return [...this.nodes.values()].filter((n) => n.pilot && !n.pilot.exit).map((n) => n.httpPort);
  }

  urlOf(name: string): string {
    return `http://127.0.0.1:${this.node(name).httpPort}`;
  }

  private node(name: string): PodNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node for pod ${name}`);
    return n;
  }

  private prepare(n: PodNode): { confDir: string; tmpDir: string } {
    const { dist } = this.o;
    const dataDir = path.join(n.dir, 'data');
    const confDir = path.join(n.dir, 'config');
    const logsDir = path.join(n.dir, 'logs');
    const tmpDir = path.join(n.dir, 'tmp');
    for (const d of [dataDir, logsDir, tmpDir]) fs.mkdirSync(d, { recursive: true });
    if (!fs.existsSync(confDir)) {
      fs.cpSync(path.join(this.home, 'config'), confDir, { recursive: true });
      const jvm = path.join(confDir, 'jvm.options');
      const kept = fs.readFileSync(jvm, 'utf8').split('\n').filter((l) => !/-Xlog:|-Xloggc:|ErrorFile=|HeapDumpPath=|^\s*-Xm[sx]/.test(l));
      fs.writeFileSync(jvm, kept.join('\n'));
    }
    const firstBoot = fs.readdirSync(dataDir).length === 0;
    const all = [...this.nodes.values()];
    const settings: Record<string, unknown> = {
      'cluster.name': this.o.clusterName ?? 'sts-pilot-e2e',
      'node.name': n.name,
      'path.data': dataDir,
      'path.logs': logsDir,
      'network.host': '127.0.0.1',
      'http.port': n.httpPort,
      'transport.port': n.transportPort,
      'discovery.seed_hosts': all.map((x) => `127.0.0.1:${x.transportPort}`),
      'cluster.routing.allocation.disk.threshold_enabled': false,
    };
    if (firstBoot && n.name === this.o.names[0]) {
      settings[dist.flavor === 'opensearch' && !dist.version.startsWith('1.') ? 'cluster.initial_cluster_manager_nodes' : 'cluster.initial_master_nodes'] = [n.name];
    }
    if (dist.flavor === 'elasticsearch' && fs.existsSync(path.join(this.home, 'modules', 'x-pack-security'))) settings['xpack.security.enabled'] = false;
    const yml = Object.entries(settings).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n') + '\n';
    fs.writeFileSync(path.join(confDir, dist.flavor === 'opensearch' ? 'opensearch.yml' : 'elasticsearch.yml'), yml);
    if (this.runAs) execFileSync('chown', ['-R', `${this.runAs.uid}:${this.runAs.gid}`, n.dir]);
    return { confDir, tmpDir };
  }

  async start(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const ns = pod.metadata?.namespace ?? '';
    const n = this.node(name);
    if (n.pilot && !n.pilot.exit) {
      // The node agent starts a pod again when the first start timed out (the pilot slow to serve /healthz on a
      // loaded machine): the same pod waits for the pilot it already has; another pod may not run beside it.
      if (n.podUid === pod.metadata?.uid) return n.pilot.waitForServer();
      throw new Error(`${name}: a pilot still runs (pid ${n.pilot.pid})`);
    }
    const { confDir, tmpDir } = this.prepare(n);
    const { dist } = this.o;
    const heap = this.o.heap ?? '256m';
    const heapOpts = `-Xms${heap} -Xmx${heap}`;
    const env: Record<string, string> = dist.flavor === 'opensearch'
      ? { OPENSEARCH_JAVA_HOME: dist.javaHome, OPENSEARCH_PATH_CONF: confDir, OPENSEARCH_JAVA_OPTS: heapOpts, OPENSEARCH_TMPDIR: tmpDir }
      : { ES_JAVA_HOME: dist.javaHome, ES_PATH_CONF: confDir, ES_JAVA_OPTS: heapOpts, ES_TMPDIR: tmpDir };
    Object.assign(env, {
      JAVA_HOME: '', JAVA_TOOL_OPTIONS: '', _JAVA_OPTIONS: '', ES_HOME: '', OPENSEARCH_HOME: '',
      POD_NAME: name, POD_NAMESPACE: ns, POD_UID: pod.metadata?.uid ?? '', POD_REVISION: pod.metadata?.labels?.['controller-revision-hash'] ?? '',
    });
    const bin = path.join(this.home, 'bin', dist.flavor);
    const command = ['setpriv', '--pdeathsig', 'KILL'];
    if (this.runAs) command.push(`--reuid=${this.runAs.uid}`, `--regid=${this.runAs.gid}`, '--clear-groups');
    command.push('--', bin);
    n.starts++;
    this.o.log?.(`${name}: starting node (start #${n.starts}) http ${n.httpPort} under the pilot`);
    const pilot = await startPodPilot({ c: this.o.c, pod, command, env, app: 'elasticsearch', appUrl: this.urlOf(name), flags: this.o.pilotFlags ?? [] });
    n.pilot = pilot;
    n.podUid = pod.metadata?.uid;
    this.pilots.push({ pod: name, pilot });
    await pilot.waitForServer();
  }

  async stop(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    await stopPodPilot(name, this.node(name).pilot, this.o.log);
  }

  async ready(pod: V1Pod): Promise<boolean> {
    return podPilotReady(this.node(pod.metadata?.name ?? '').pilot);
  }

  /** Stops every pilot (and so every node). */
  async stopAll(): Promise<void> {
    await terminatePilots([...this.nodes.values()].map((n) => n.pilot));
  }

  /** Last lines of a pod's pilot and node output. */
  tail(name: string, lines = 30): string {
    return this.nodes.get(name)?.pilot?.tail(lines) ?? '';
  }
}
