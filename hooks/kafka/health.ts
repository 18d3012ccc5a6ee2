import { caughtUpVoters } from './quorum.ts';
import type { BrokerRef } from './refs.ts';
import type { KafkaView, PartitionState } from './view.ts';
import { describePartitions, ids, listOf, partitionName, plural } from './words.ts';

// What the kafka hook asks of the cluster as a whole, and of a node that came
// back: every decision (a step, the budget's podRejoined, a removal) starts here.

export const isVoter = (view: KafkaView, id: number): boolean => view.quorum.voters.some((v) => v.id === id);
/** A broker: registered, or named as a replica of some partition (a broker that never came back is only the latter). */
export const isBroker = (view: KafkaView, id: number): boolean => view.brokers.has(id) || view.partitions.some((p) => p.replicas.includes(id));

/** Replicas outside the ISR. */
const missing = (p: PartitionState): number[] => p.replicas.filter((r) => !p.isr.includes(r));

/**
 * Partitions that are under-replicated for a reason other than `except`
 * being out of their ISR: what the cluster lacks besides the broker the step
 * is about (a broken pod being replaced is allowed to be missing).
 */
export function underReplicated(view: KafkaView, except: number | null): PartitionState[] {
  return view.partitions.filter((p) => missing(p).some((r) => r !== except));
}

/** Holds that concern the whole cluster, whatever the step: a quorum leader, nothing under-replicated but `except`'s own replicas. */
export function clusterHold(view: KafkaView, except: number | null): string | undefined {
  if (view.quorum.leader < 0) return 'the controller quorum has no leader';
  const under = underReplicated(view, except);
  if (under.length > 0) {
    const offline = under.filter((p) => p.leader < 0);
    return (
      `${plural(under.length, 'partition')} under-replicated${offline.length ? ` (${offline.length} offline)` : ''}: ` +
      describePartitions(under, (p) => `replicas ${ids(p.replicas)}, in sync ${ids(p.isr)}${p.leader < 0 ? ', no leader' : ''}`)
    );
  }
  return undefined;
}

/**
 * Why `ref`'s broker/controller is not back yet, or undefined when it is: a
 * broker registered, unfenced and back in the ISR of every partition it hosts;
 * a voter caught up with the metadata log. Both the step after `prev` and the
 * disruption budget (podRejoined) ask this.
 */
export function notRejoined(view: KafkaView, ref: Pick<BrokerRef, 'pod' | 'id'>): string | undefined {
  const voter = isVoter(view, ref.id);
  const broker = isBroker(view, ref.id);
  if (!voter && !broker) {
    return `node ${ref.id} (pod ${ref.pod}) is neither a registered broker nor a controller voter (brokers ${ids([...view.brokers.keys()])}, voters ${ids(view.quorum.voters.map((v) => v.id))})`;
  }
  if (broker) {
    const b = view.brokers.get(ref.id);
    if (!b) return `waiting for broker ${ref.id} (pod ${ref.pod}) to register with the controller`;
    if (b.fenced) return `waiting for broker ${ref.id} (pod ${ref.pod}) to be unfenced: it is registered but has not caught up with the metadata log`;
    const behind = view.partitions.filter((p) => p.replicas.includes(ref.id) && !p.isr.includes(ref.id));
    if (behind.length > 0) {
      return `waiting for broker ${ref.id} (pod ${ref.pod}) to catch up: ${plural(behind.length, 'partition')} not back in sync: ${listOf(behind.map(partitionName))}`;
    }
  }
  if (voter && !caughtUpVoters(view).includes(ref.id)) {
    return `waiting for controller ${ref.id} (pod ${ref.pod}) to catch up with the metadata log (more than ${view.fetchTimeoutMs} ms behind the active controller ${view.quorum.leader})`;
  }
  return undefined;
}
