import { describeError } from '../../lib/errors.ts';
import { HookNotReady } from '../../lib/hook.ts';
import { type KafkaAdmin, type MetadataAnswer, RESOURCE_BROKER, RESOURCE_TOPIC } from '../../lib/kafka/admin.ts';
import { FETCH_TIMEOUT, type KafkaView, kafkaView, MIN_ISR, type Reassignment, reassignmentsOf } from './view.ts';

/**
 * The topics whose min.insync.replicas a step must know: those with a replica
 * on the broker about to move. No other rule reads it, so no other topic's
 * config is asked for (at 10,000 partitions, most of them are elsewhere).
 */
export function topicsOn(metadata: MetadataAnswer, broker: number | null): string[] {
  if (broker === null) return [];
  return metadata.topics.filter((t) => !!t.name && t.partitions.some((p) => p.replicaNodes.includes(broker))).map((t) => t.name as string);
}

/**
 * Reads what a decision needs, afresh on every call: brokers with their
 * fencing, every partition with its ISR, the quorum (a broker forwards
 * DescribeQuorum to the active controller), min.insync.replicas of the topics
 * on `moving` (the broker about to restart, or null when none is) and the
 * quorum fetch timeout. Two round trips: the topics on `moving` are known from
 * Metadata.
 */
export async function readCluster(admin: KafkaAdmin, moving: number | null): Promise<KafkaView> {
  try {
    const [metadata, cluster, quorum] = await Promise.all([admin.metadata(), admin.cluster(), admin.quorum()]);
    // Any registered broker answers for the broker-level setting; the connected one is as good as any.
    const anyBroker = cluster.brokers.find((b) => !b.isFenced)?.brokerId;
    const resources = topicsOn(metadata, moving).map((name) => ({ type: RESOURCE_TOPIC, name, keys: [MIN_ISR] }));
    if (anyBroker !== undefined) resources.push({ type: RESOURCE_BROKER, name: String(anyBroker), keys: [FETCH_TIMEOUT] });
    const configs = resources.length > 0 ? await admin.configs(resources) : { results: [] };
    const v = kafkaView({ metadata, cluster, quorum, configs }, moving);
    if (!v.ok) throw new HookNotReady(`Kafka at ${admin.broker}: ${v.error}`);
    return v.view;
  } catch (err) {
    if (err instanceof HookNotReady) throw err;
    throw new HookNotReady(`Kafka: ${describeError(err, 400)}`);
  }
}

/** The partition reassignments in progress (a scale-down waits for those involving the leaving broker). */
export async function readReassignments(admin: KafkaAdmin): Promise<Reassignment[]> {
  try {
    return reassignmentsOf(await admin.reassignments());
  } catch (err) {
    throw new HookNotReady(`Kafka: ${describeError(err, 400)}`);
  }
}
