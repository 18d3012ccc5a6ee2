// A NodeAgent runtime that backs each pod with a real CassandraDaemon JVM
// (test/cassandra/cluster.ts): pod `names[i]` is node i+1, at 127.0.0.<i+1>
// (its pod IP, as the cassandra hook maps pods to nodes), rack r<i+1>. The
// node's directory is kept across the pod's re-creation, like a
// PersistentVolumeClaim. Stopping a pod runs `nodetool drain` first (what a
// PreStop hook does, as cass-operator's pods call the management API's drain),
// then SIGTERM. Readiness: the node listens for CQL clients since its latest
// start. No pilot wraps the JVM: the pilot does not report Cassandra yet.

import type { V1Pod } from '@kubernetes/client-node';
import * as fs from 'node:fs';
import type { PodRuntime } from '../cluster/node-agent.ts';
import type { CassandraNode, PreparedNodes } from './cluster.ts';

export class CassandraPodRuntime implements PodRuntime {
  readonly byPod = new Map<string, CassandraNode>();
  /** Log offset of each node's latest start. */
  private readonly mark = new Map<string, number>();
  readonly drains: { pod: string; ms: number; error?: string }[] = [];
  private readonly log: (line: string) => void;

  constructor(prepared: PreparedNodes, names: string[], log: (line: string) => void = () => {}) {
    names.forEach((n, i) => this.byPod.set(n, prepared.nodes[i] as CassandraNode));
    this.log = log;
  }

  node(pod: V1Pod | string): CassandraNode {
    const name = typeof pod === 'string' ? pod : (pod.metadata?.name ?? '');
    const n = this.byPod.get(name);
    if (!n) throw new Error(`no Cassandra node for pod ${name}`);
    return n;
  }

  podIP(pod: V1Pod): string | undefined {
    return this.byPod.get(pod.metadata?.name ?? '')?.address;
  }

  async start(pod: V1Pod): Promise<void> {
    const n = this.node(pod);
    if (n.child) return; // started already (the agent retries a slow start)
    this.mark.set(pod.metadata?.name ?? '', fs.existsSync(n.log) ? fs.statSync(n.log).size : 0);
    this.log(`${pod.metadata?.name}: starting the Cassandra node at ${n.address}`);
    n.spawn();
  }

  async ready(pod: V1Pod): Promise<boolean> {
    const n = this.node(pod);
    if (!n.child || !fs.existsSync(n.log)) return false;
    const text = fs.readFileSync(n.log, 'utf8').slice(this.mark.get(pod.metadata?.name ?? '') ?? 0);
    return /Starting listening for CQL clients/.test(text);
  }

  async stop(pod: V1Pod): Promise<void> {
    const n = this.node(pod);
    if (!n.child) return;
    const t = Date.now();
    try {
      await n.nodetool(['drain'], 60_000);
      this.drains.push({ pod: pod.metadata?.name ?? '', ms: Date.now() - t });
    } catch (err) {
      this.drains.push({ pod: pod.metadata?.name ?? '', ms: Date.now() - t, error: err instanceof Error ? err.message : String(err) });
    }
    this.log(`${pod.metadata?.name}: drained in ${Date.now() - t} ms; stopping`);
    await n.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.byPod.values()].map((n) => n.stop()));
  }
}
