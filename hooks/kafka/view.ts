import type { ClusterAnswer, ConfigsAnswer, MetadataAnswer, QuorumAnswer, ReassignmentsAnswer } from '../../lib/kafka/admin.ts';

/** One partition, with the min.insync.replicas in force for its topic. */
export interface PartitionState {
  topic: string;
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
  /** Read for the topics on the broker about to move only (read.ts); undefined elsewhere. */
  minIsr?: number;
}

export interface Voter {
  id: number;
  /** The leader's clock, ms; -1 when it never caught up. */
  lastCaughtUp: number;
  /**
   * The voter's directory id as Kafka's tools print it (base64url, 22 characters);
   * absent in a static quorum (controller.quorum.voters), whose voters have none.
   */
  directoryId?: string;
}

/** A partition being reassigned (ListPartitionReassignments): replicas is the union of old and new while it runs. */
export interface Reassignment {
  topic: string;
  partition: number;
  replicas: number[];
  adding: number[];
  removing: number[];
}

export function reassignmentsOf(a: ReassignmentsAnswer): Reassignment[] {
  return a.topics.flatMap((t) =>
    t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, replicas: p.replicas, adding: p.addingReplicas, removing: p.removingReplicas })),
  );
}

/** Kafka's Uuid.toString(): the 16 bytes in base64url without padding; the zero id (no directory) is undefined. */
export function directoryIdText(hex: string | undefined): string | undefined {
  if (!hex) return undefined;
  const bytes = Buffer.from(hex.replaceAll('-', ''), 'hex');
  if (bytes.length !== 16 || bytes.every((b) => b === 0)) return undefined;
  return bytes.toString('base64url');
}

/** Everything a decision looks at, read afresh on every call. */
export interface KafkaView {
  clusterId: string;
  /** Registered brokers (DescribeCluster v2), fenced ones marked. */
  brokers: Map<number, { fenced: boolean }>;
  partitions: PartitionState[];
  quorum: { leader: number; voters: Voter[] };
  /** controller.quorum.fetch.timeout.ms: how far behind the leader a voter may be and still count as caught up. */
  fetchTimeoutMs: number;
}

export const MIN_ISR = 'min.insync.replicas';
export const FETCH_TIMEOUT = 'controller.quorum.fetch.timeout.ms';
/** Kafka's default for controller.quorum.fetch.timeout.ms. */
export const DEFAULT_FETCH_TIMEOUT_MS = 2000;

export interface Answers {
  metadata: MetadataAnswer;
  cluster: ClusterAnswer;
  quorum: QuorumAnswer;
  /** Topic configs (min.insync.replicas of the topics on the moving broker) and one broker's (the fetch timeout). */
  configs: ConfigsAnswer;
}

function positiveInt(v: string | null | undefined): number | undefined {
  if (v === null || v === undefined || !/^[0-9]{1,9}$/.test(v)) return undefined;
  const n = Number(v);
  return n > 0 ? n : undefined;
}

function voterOf(v: QuorumAnswer['topics'][number]['partitions'][number]['currentVoters'][number]): Voter {
  const dir = directoryIdText(v.replicaDirectoryId);
  return { id: v.replicaId, lastCaughtUp: Number(v.lastCaughtUpTimestamp), ...(dir ? { directoryId: dir } : {}) };
}

/**
 * Put the answers together; an error says what in them makes no sense.
 * `moving`: the broker about to restart; min.insync.replicas must be known for
 * every topic with a replica on it (the others' may be absent).
 */
export function kafkaView(a: Answers, moving: number | null = null): { ok: true; view: KafkaView } | { ok: false; error: string } {
  const minIsr = new Map<string, number>();
  let fetchTimeoutMs = DEFAULT_FETCH_TIMEOUT_MS;
  for (const r of a.configs.results) {
    if (r.errorCode !== 0) return { ok: false, error: `DescribeConfigs of ${r.resourceName}: error ${r.errorCode}${r.errorMessage ? ` (${r.errorMessage})` : ''}` };
    for (const c of r.configs) {
      if (r.resourceType === 2 && c.name === MIN_ISR) {
        const n = positiveInt(c.value);
        if (n === undefined) return { ok: false, error: `topic ${r.resourceName} has ${MIN_ISR}=${JSON.stringify(c.value)}, not a positive number` };
        minIsr.set(r.resourceName, n);
      }
      if (r.resourceType === 4 && c.name === FETCH_TIMEOUT) fetchTimeoutMs = positiveInt(c.value) ?? DEFAULT_FETCH_TIMEOUT_MS;
    }
  }
  const partitions: PartitionState[] = [];
  for (const t of a.metadata.topics) {
    if (!t.name) return { ok: false, error: 'Metadata listed a topic without a name' };
    if (t.errorCode !== 0) return { ok: false, error: `Metadata of topic ${t.name}: error ${t.errorCode}` };
    const m = minIsr.get(t.name);
    if (m === undefined && moving !== null && t.partitions.some((p) => p.replicaNodes.includes(moving))) {
      return { ok: false, error: `no ${MIN_ISR} known for topic ${t.name}, which has a replica on broker ${moving}` };
    }
    for (const p of t.partitions) {
      partitions.push({ topic: t.name, partition: p.partitionIndex, leader: p.leaderId, replicas: p.replicaNodes, isr: p.isrNodes, ...(m === undefined ? {} : { minIsr: m }) });
    }
  }
  const q = a.quorum.topics[0]?.partitions[0];
  if (!q) return { ok: false, error: 'DescribeQuorum returned no partition for the metadata log' };
  const brokers = new Map(a.cluster.brokers.map((b) => [b.brokerId, { fenced: b.isFenced }]));
  return {
    ok: true,
    view: {
      clusterId: a.cluster.clusterId,
      brokers,
      partitions,
      quorum: { leader: q.leaderId, voters: q.currentVoters.map(voterOf) },
      fetchTimeoutMs,
    },
  };
}
