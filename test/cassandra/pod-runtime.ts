// A NodeAgent runtime that backs each pod with a real CassandraDaemon JVM
// (test/cassandra/cluster.ts) run by the in-pod pilot, as a container runtime
// would run it (`sts-pilot pilot --app cassandra -- java … CassandraDaemon`):
// pod `names[i]` is node i+1, at 127.0.0.<i+1> (its pod IP, as the cassandra
// hook maps pods to nodes), rack r<i+1>. The node's directory is kept across
// the pod's re-creation, like a PersistentVolumeClaim.
//
// - the pilot reads its node over cql://127.0.0.<n>:9042 and lists its hints
//   directory (--app-hints-dir), so the pod's Pilot carries the cassandra block;
// - its --pre-stop is this node's own `nodetool drain` (each node has its own
//   JMX port; in a real image it is the pilot's default, `nodetool drain`): a
//   pod's stop is SIGTERM to the pilot, which drains, then signals the JVM;
//   the drain's duration is the pilot's own log record ("pre-stop hook done");
// - readiness = the pilot's /readyz (own gossip STATUS NORMAL, CQL served);
// - every process under `setpriv --pdeathsig KILL`, so nothing outlives the test.

import type { V1Pod } from '@kubernetes/client-node';
import * as path from 'node:path';
import type { PodRuntime } from '../cluster/node-agent.ts';
import { podPilotReady, startPodPilot, stopPodPilot, terminatePilots } from '../cluster/pilot-processes.ts';
import type { Cluster } from '../integration/harness.ts';
import type { PilotProcess } from '../pilot/harness.ts';
import { type CassandraNode, nodetoolCommand, type PreparedNodes, shellLine } from './cluster.ts';

interface PodNode {
  node: CassandraNode;
  pilot: PilotProcess | undefined;
  /** The uid of the pod `pilot` was started for. */
  podUid: string | undefined;
  starts: number;
}

export interface Drain {
  pod: string;
  /** The pre-stop hook's duration, as the pilot logged it. */
  ms: number;
  error?: string;
}

export class CassandraPodRuntime implements PodRuntime {
  private readonly pods = new Map<string, PodNode>();
  readonly pilots: { pod: string; pilot: PilotProcess }[] = [];
  readonly drains: Drain[] = [];
  /** More pilot flags for a pod's next start (after the runtime's own: a repeated flag wins). */
  readonly extraFlags = new Map<string, string[]>();
  private readonly c: Cluster;
  private readonly prepared: PreparedNodes;
  private readonly log: (line: string) => void;

  constructor(c: Cluster, prepared: PreparedNodes, names: string[], log: (line: string) => void = () => {}) {
    this.c = c;
    this.prepared = prepared;
    names.forEach((n, i) => this.pods.set(n, { node: prepared.nodes[i] as CassandraNode, pilot: undefined, podUid: undefined, starts: 0 }));
    this.log = log;
  }

  private pod(name: string): PodNode {
    const p = this.pods.get(name);
    if (!p) throw new Error(`no Cassandra node for pod ${name}`);
    return p;
  }

  node(pod: V1Pod | string): CassandraNode {
    return this.pod(typeof pod === 'string' ? pod : (pod.metadata?.name ?? '')).node;
  }

  pilot(name: string): PilotProcess | undefined {
    return this.pods.get(name)?.pilot;
  }

  podIP(pod: V1Pod): string | undefined {
    return this.pods.get(pod.metadata?.name ?? '')?.node.address;
  }

  /** The pilot's --pre-stop for this node: its own nodetool drain, over its own JMX port. */
  drainCommand(name: string): string {
    const n = this.node(name);
    return shellLine(nodetoolCommand(this.prepared.dist, n.spec.jmxPort, ['drain']));
  }

  async start(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const p = this.pod(name);
    if (p.pilot && !p.pilot.exit) {
      // The agent starts a pod again when the first start was slow: the same pod waits for its pilot.
      if (p.podUid === pod.metadata?.uid) return p.pilot.waitForServer();
      throw new Error(`${name}: a pilot still runs (pid ${p.pilot.pid})`);
    }
    const n = p.node;
    p.starts++;
    this.log(`${name}: starting the Cassandra node at ${n.address} (start #${p.starts}) under the pilot`);
    const pilot = await startPodPilot({
      c: this.c,
      pod,
      // env -C: the JVM runs in its node's directory, as the daemon's own start script would.
      command: ['setpriv', '--pdeathsig', 'KILL', '--', 'env', '-C', n.spec.dir, ...n.command()],
      env: {},
      app: 'cassandra',
      appUrl: `cql://${n.address}:9042`,
      flags: ['--app-hints-dir', path.join(n.spec.dir, 'hints'), '--app-data-dir', path.join(n.spec.dir, 'data'), '--pre-stop', this.drainCommand(name), '--pre-stop-timeout', '120', ...(this.extraFlags.get(name) ?? [])],
    });
    p.pilot = pilot;
    p.podUid = pod.metadata?.uid;
    this.pilots.push({ pod: name, pilot });
    await pilot.waitForServer();
  }

  async ready(pod: V1Pod): Promise<boolean> {
    return podPilotReady(this.pods.get(pod.metadata?.name ?? '')?.pilot);
  }

  /** SIGTERM to the pilot (it drains, then stops the JVM); the drain's figure from its log. */
  async stop(pod: V1Pod): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const pilot = this.pod(name).pilot;
    if (!(await stopPodPilot(name, pilot, this.log)) || !pilot) return;
    const d = preStopRecord(pilot);
    if (d) {
      this.drains.push({ pod: name, ms: d.durationMs, ...(d.result !== 'ok' ? { error: `pre-stop ${d.result} (code ${d.code})${d.error ? `: ${d.error}` : ''}` } : {}) });
      this.log(`${name}: the pilot's pre-stop ran ${d.durationMs} ms (${d.result})`);
    }
  }

  async stopAll(): Promise<void> {
    await terminatePilots([...this.pods.values()].map((p) => p.pilot));
  }

  tail(name: string, lines = 30): string {
    return this.pods.get(name)?.pilot?.tail(lines) ?? '';
  }
}

/** The pilot's "pre-stop hook done" record, if it ran one. */
export function preStopRecord(pilot: PilotProcess): { durationMs: number; result: string; code: number; error?: string; at: number } | undefined {
  const r = pilot.logs.findLast((x) => x.msg === 'pre-stop hook done');
  if (!r) return undefined;
  return {
    durationMs: Number(r.durationMs),
    result: String(r.result),
    code: Number(r.code),
    ...(r.error ? { error: String(r.error) } : {}),
    at: new Date(String(r.time)).getTime(),
  };
}
