// An independent witness of a Kafka rollout: it polls the pods and the Kafka
// cluster itself (not the controller, not the hook) and records how many
// brokers were away at once. A broker is away when its pod is missing, being
// deleted or not Ready, or when Kafka says so: not registered, fenced, or out
// of the ISR of a partition it hosts. The largest such set is what "one
// disruption at a time" is checked against.

import type { V1Pod } from '@kubernetes/client-node';
import { type BrokerAddress, openKafkaAdmin } from '../../lib/kafka/admin.ts';
import { type Cluster, podsOf } from '../integration/harness.ts';

export interface AwaySample {
  at: number;
  /** Node id -> why it is away. */
  away: Map<number, string>;
  /** Quorum leader, or -1 when Kafka could not be read. */
  leader: number;
}

const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;

export class AwayWatcher {
  readonly samples: AwaySample[] = [];
  /** Polls whose Kafka read failed (the pods were still counted). */
  kafkaErrors = 0;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private readonly o: { c: Cluster; ns: string; statefulSets: string[]; ids: ReadonlyMap<string, number>; bootstrap: BrokerAddress[]; intervalMs: number };

  constructor(o: AwayWatcher['o']) {
    this.o = o;
  }

  start(): this {
    this.loop = (async () => {
      while (!this.stopped) {
        const t = Date.now();
        await this.poll().catch(() => {});
        await new Promise((r) => setTimeout(r, Math.max(0, this.o.intervalMs - (Date.now() - t))));
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** The sample with the most brokers away (the first of them). */
  get worst(): AwaySample | undefined {
    return this.samples.reduce<AwaySample | undefined>((w, s) => (!w || s.away.size > w.away.size ? s : w), undefined);
  }

  /** The quorum leader last seen at or before `t` (-1: none seen). */
  leaderAt(t: number): number {
    return this.samples.filter((s) => s.at <= t && s.leader >= 0).at(-1)?.leader ?? -1;
  }

  /** "kafka-a-1 (not Ready) 12.3 s; kafka-b-1 (fenced) ...": each away spell, in order. */
  spells(names: ReadonlyMap<number, string>): string[] {
    const out: string[] = [];
    const open = new Map<number, { from: number; why: string }>();
    for (const s of this.samples) {
      for (const [id, why] of s.away) if (!open.has(id)) open.set(id, { from: s.at, why });
      for (const [id, o] of open) {
        if (s.away.has(id)) continue;
        out.push(`${names.get(id) ?? id} (${o.why}) ${((s.at - o.from) / 1000).toFixed(1)} s`);
        open.delete(id);
      }
    }
    for (const [id, o] of open) out.push(`${names.get(id) ?? id} (${o.why}) still away`);
    return out;
  }

  private async poll(): Promise<void> {
    const at = Date.now();
    const away = new Map<number, string>();
    const pods = (await Promise.all(this.o.statefulSets.map((s) => podsOf(this.o.c, this.o.ns, s)))).flat();
    for (const [name, id] of this.o.ids) {
      const p = pods.find((x) => x.metadata?.name === name);
      if (!p) away.set(id, 'pod missing');
      else if (p.metadata?.deletionTimestamp) away.set(id, 'pod deleting');
      else if (!isReady(p)) away.set(id, 'pod not Ready');
    }
    let leader = -1;
    try {
      const admin = await openKafkaAdmin({ bootstrap: this.o.bootstrap, timeoutMs: 5000, clientId: 'sts-pilot-test-watcher' });
      try {
        const [cluster, metadata, quorum] = await Promise.all([admin.cluster(), admin.metadata(), admin.quorum()]);
        leader = quorum.topics[0]?.partitions[0]?.leaderId ?? -1;
        for (const id of this.o.ids.values()) {
          const b = cluster.brokers.find((x) => x.brokerId === id);
          if (!b) away.set(id, away.get(id) ?? 'not registered');
          else if (b.isFenced) away.set(id, away.get(id) ?? 'fenced');
        }
        for (const t of metadata.topics) {
          for (const p of t.partitions) {
            for (const r of p.replicaNodes) if (!p.isrNodes.includes(r)) away.set(r, away.get(r) ?? `out of the ISR of ${t.name}-${p.partitionIndex}`);
          }
        }
      } finally {
        await admin.close();
      }
    } catch {
      this.kafkaErrors++;
    }
    this.samples.push({ at, away, leader });
  }
}
