import type { KafkaView } from './view.ts';
import { listOf } from './words.ts';

// The order of an OnDelete rollout (podUpdateOrder). It is Strimzi's KRaft
// order: KafkaRoller.rollingRestart (strimzi/strimzi-kafka-operator,
// cluster-operator/src/main/java/io/strimzi/operator/cluster/operator/resource/KafkaRoller.java)
// schedules the nodes with the controller role (combined nodes included)
// before the broker-only ones, unready ones first in each group, and
// deferController keeps the active controller until the other controllers are
// done; strimzi/proposals 060-kafka-roller-kraft.md gives the order (unready
// controllers, ready controllers that follow, the active controller, unready
// brokers, ready brokers) and why brokers do not go first: they need a formed
// quorum to become ready. Within a group the highest ordinal goes first, as
// without an order.

export interface OrderPod {
  pod: string;
  id: number;
  ordinal: number;
  ready: boolean;
}

export interface Order {
  pods: string[];
  reason: string;
}

export function updateOrder(view: KafkaView, pods: readonly OrderPod[]): Order {
  const voters = new Set(view.quorum.voters.map((v) => v.id));
  const leader = view.quorum.leader;
  const byOrdinal = (a: OrderPod, b: OrderPod): number => Number(a.ready) - Number(b.ready) || b.ordinal - a.ordinal;
  const controllers = pods.filter((p) => voters.has(p.id) && p.id !== leader).sort(byOrdinal);
  const active = pods.filter((p) => p.id === leader && voters.has(p.id));
  const brokers = pods.filter((p) => !voters.has(p.id)).sort(byOrdinal);
  const names = (ps: readonly OrderPod[]): string => listOf(ps.map((p) => (p.ready ? p.pod : `${p.pod}, not Ready`)), 6);
  const parts: string[] = [];
  if (controllers.length > 0) parts.push(`controllers first (${names(controllers)})`);
  if (active.length > 0) parts.push(`${parts.length > 0 ? 'then ' : ''}the active controller ${active[0]?.pod} (node ${leader}) after the other controllers`);
  if (brokers.length > 0) parts.push(`${parts.length > 0 ? 'then ' : ''}broker-only nodes (${names(brokers)})`);
  const unready = pods.some((p) => !p.ready) ? ', unready ones first in each group' : '';
  return {
    pods: [...controllers, ...active, ...brokers].map((p) => p.pod),
    reason: `${parts.join(', ')}: Strimzi's KRaft order${unready}`,
  };
}
