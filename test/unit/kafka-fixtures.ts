import { type KafkaView, kafkaView } from '../../hooks/kafka/view.ts';
import { ClusterAnswer, ConfigsAnswer, MetadataAnswer, QuorumAnswer } from '../../lib/kafka/admin.ts';

// ---------------------------------------------------------------------------
// A cluster written compactly, turned into the answers Kafka gives and through
// the same zod schemas and view the hook uses.

export interface Spec {
  /** topic -> partitions as "replicas/isr", e.g. "0,1,2/0,1" (leader: the first in sync, or none) */
  topics?: Record<string, string[]>;
  minIsr?: Record<string, number>;
  /** registered brokers; an id followed by f is fenced: "0 1f 2" */
  brokers?: string;
  voters?: number[];
  leader?: number;
  /** voter -> ms behind the leader (default 0; -1: never caught up) */
  behind?: Record<number, number>;
  fetchTimeoutMs?: number;
  /** voter -> directory id (hex with dashes, as the client decodes it); absent: a static quorum's zero id */
  dirs?: Record<number, string>;
}

const NOW = 1_800_000_000_000;
const nums = (s: string): number[] => (s === '' ? [] : s.split(',').map(Number));

export function view(s: Spec = {}): KafkaView {
  const topics = s.topics ?? { orders: ['0,1,2/0,1,2', '1,2,0/1,2,0', '2,0,1/2,0,1'] };
  const metadata = MetadataAnswer.parse({
    clusterId: 'c1',
    brokers: [],
    topics: Object.entries(topics).map(([name, ps]) => ({
      errorCode: 0,
      name,
      isInternal: false,
      partitions: ps.map((p, i) => {
        const [r = '', isr = ''] = p.split('/');
        return { errorCode: 0, partitionIndex: i, leaderId: nums(isr)[0] ?? -1, replicaNodes: nums(r), isrNodes: nums(isr), offlineReplicas: [] };
      }),
    })),
  });
  const cluster = ClusterAnswer.parse({
    clusterId: 'c1',
    brokers: (s.brokers ?? '0 1 2').split(' ').filter(Boolean).map((b) => ({ brokerId: Number.parseInt(b, 10), host: 'h', port: 9092, isFenced: b.endsWith('f') })),
  });
  const voters = s.voters ?? [0, 1, 2];
  const leader = s.leader ?? 0;
  const quorum = QuorumAnswer.parse({
    topics: [
      {
        topicName: '__cluster_metadata',
        partitions: [
          {
            partitionIndex: 0,
            leaderId: leader,
            leaderEpoch: 3,
            highWatermark: 100n,
            currentVoters: voters.map((id) => {
              const b = s.behind?.[id] ?? 0;
              const t = b < 0 ? -1n : BigInt(NOW - b);
              const replicaDirectoryId = s.dirs?.[id] ?? '00000000-0000-0000-0000-000000000000';
              return { replicaId: id, replicaDirectoryId, logEndOffset: 100n, lastFetchTimestamp: t, lastCaughtUpTimestamp: t };
            }),
            observers: [],
          },
        ],
      },
    ],
  });
  const configs = ConfigsAnswer.parse({
    results: [
      ...Object.keys(topics).map((t) => ({
        errorCode: 0,
        errorMessage: null,
        resourceType: 2,
        resourceName: t,
        configs: [{ name: 'min.insync.replicas', value: String(s.minIsr?.[t] ?? 2) }],
      })),
      { errorCode: 0, errorMessage: null, resourceType: 4, resourceName: '0', configs: [{ name: 'controller.quorum.fetch.timeout.ms', value: String(s.fetchTimeoutMs ?? 2000) }] },
    ],
  });
  const v = kafkaView({ metadata, cluster, quorum, configs });
  if (!v.ok) throw new Error(v.error);
  return v.view;
}

