// Moving partition replicas off a broker, as a person would before a scale-down:
// the Admin API's AlterPartitionReassignments (what kafka-reassign-partitions
// --execute and Cruise Control send). @platformatic/kafka's Admin class has no
// method for it; its codec (alterPartitionReassignmentsV0) is sent on a
// connection of its own, as lib/kafka/admin.ts does for the hook's requests.

import { alterPartitionReassignmentsV0, Connection } from '@platformatic/kafka';
import type { MetadataAnswer } from '../../lib/kafka/admin.ts';

export interface Move {
  topic: string;
  partition: number;
  /** The new replica list, preferred leader first. */
  replicas: number[];
}

/**
 * Every partition naming `leaving`, with `leaving` replaced in place by the
 * broker of `keep` hosting fewest replicas so far (and not already one of them).
 */
export function movesOff(metadata: MetadataAnswer, leaving: number, keep: readonly number[]): Move[] {
  const load = new Map(keep.map((b) => [b, 0]));
  for (const t of metadata.topics) for (const p of t.partitions) for (const r of p.replicaNodes) if (load.has(r)) load.set(r, (load.get(r) ?? 0) + 1);
  const moves: Move[] = [];
  for (const t of metadata.topics) {
    for (const p of t.partitions) {
      if (!p.replicaNodes.includes(leaving)) continue;
      const to = [...load.entries()].filter(([b]) => !p.replicaNodes.includes(b)).sort((a, b) => a[1] - b[1] || a[0] - b[0])[0]?.[0];
      if (to === undefined) throw new Error(`${t.name}-${p.partitionIndex}: no broker left to take broker ${leaving}'s replica`);
      load.set(to, (load.get(to) ?? 0) + 1);
      moves.push({ topic: t.name ?? '', partition: p.partitionIndex, replicas: p.replicaNodes.map((r) => (r === leaving ? to : r)) });
    }
  }
  return moves;
}

/** Starts the reassignments through one broker (it forwards them to the active controller); throws with Kafka's errors. */
export async function reassign(host: string, port: number, moves: readonly Move[]): Promise<void> {
  const byTopic = new Map<string, { partitionIndex: number; replicas: number[] }[]>();
  for (const m of moves) byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), { partitionIndex: m.partition, replicas: m.replicas }]);
  const conn = new Connection('sts-pilot-test-reassign', { connectTimeout: 10_000, requestTimeout: 30_000 });
  conn.on('error', () => {});
  try {
    await conn.connect(host, port);
    await alterPartitionReassignmentsV0.api.async(conn, 30_000, false, [...byTopic].map(([name, partitions]) => ({ name, partitions })));
  } finally {
    await conn.close().catch(() => {});
  }
}
