import { describeError } from '../../lib/errors.ts';
import { HookNotReady } from '../../lib/hook.ts';
import { type KafkaAdmin, RESOURCE_BROKER, RESOURCE_TOPIC } from '../../lib/kafka/admin.ts';
import { FETCH_TIMEOUT, type KafkaView, kafkaView, MIN_ISR, type Reassignment, reassignmentsOf } from './view.ts';

/**
 * Reads what a decision needs, afresh: brokers with their fencing, every
 * partition with its ISR, the quorum (a broker forwards DescribeQuorum to the
 * active controller), min.insync.replicas of every topic and the quorum fetch
 * timeout. Two round trips: the topic list is needed to ask for their configs.
 */
export async function readCluster(admin: KafkaAdmin): Promise<KafkaView> {
  try {
    const [metadata, cluster, quorum] = await Promise.all([admin.metadata(), admin.cluster(), admin.quorum()]);
    const topics = metadata.topics.map((t) => t.name).filter((n): n is string => !!n);
    // Any registered broker answers for the broker-level setting; the connected one is as good as any.
    const anyBroker = cluster.brokers.find((b) => !b.isFenced)?.brokerId;
    const resources = topics.map((name) => ({ type: RESOURCE_TOPIC, name, keys: [MIN_ISR] }));
    if (anyBroker !== undefined) resources.push({ type: RESOURCE_BROKER, name: String(anyBroker), keys: [FETCH_TIMEOUT] });
    const configs = resources.length > 0 ? await admin.configs(resources) : { results: [] };
    const v = kafkaView({ metadata, cluster, quorum, configs });
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
