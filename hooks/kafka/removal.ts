import type { Decision } from './decide.ts';
import { clusterHold, isVoter } from './health.ts';
import { ids, listOf, plural } from './words.ts';
import type { KafkaView, PartitionState, Reassignment } from './view.ts';

// The kafka hook's decisions for a pod that leaves for good (a scale-down), as
// pure functions of what it read. The rule is Strimzi's (BrokersInUseCheck):
// a broker may go only once no partition names it among its replicas; its data
// is moved by a person or a tool (kafka-reassign-partitions, Cruise Control),
// never by this hook. Beside it: no reassignment involving it may be running,
// the cluster must be healthy as for a rollout step, and a controller-quorum
// voter stays until a person has removed it from the quorum. Once the pod is
// gone, the broker is unregistered (decideUnregister), as Strimzi does since
// its proposal 081: a registration left behind blocks metadata.version upgrades.

/** The leaving pod, as the removal decisions see it. */
export interface LeavingRef {
  pod: string;
  /** node.id: ordinal + node-id-offset. */
  id: number;
  ready: boolean;
  /** The pod's own Pilot reported this node id: the mapping is known, not assumed. */
  confirmed: boolean;
}

const hold = (reason: string): Decision => ({ kind: 'hold', reason });
const INTERNAL = /^__/;

/** Partitions naming `id` among their replicas: what must move before it leaves. */
export function replicasOn(view: KafkaView, id: number): PartitionState[] {
  return view.partitions.filter((p) => p.replicas.includes(id));
}

/** "orders (6 of 6 partitions), __consumer_offsets (13 of 50) and 2 more topics": the topics, briefly; people's topics first. */
export function topicsBriefly(view: KafkaView, on: readonly PartitionState[], max = 4): string {
  const count = new Map<string, number>();
  for (const p of on) count.set(p.topic, (count.get(p.topic) ?? 0) + 1);
  const total = (t: string): number => view.partitions.filter((p) => p.topic === t).length;
  const topics = [...count.keys()].sort(
    (a, b) => Number(INTERNAL.test(a)) - Number(INTERNAL.test(b)) || (count.get(b) ?? 0) - (count.get(a) ?? 0) || (a < b ? -1 : a > b ? 1 : 0),
  );
  const shown = topics.map((t, i) => `${t} (${count.get(t)} of ${total(t)}${i === 0 ? ` ${total(t) === 1 ? 'partition' : 'partitions'}` : ''})`);
  if (shown.length <= max) return listOf(shown, max);
  return `${shown.slice(0, max).join(', ')} and ${plural(shown.length - max, 'more topic')}`;
}

/** Reassignments in progress that move data onto, off or among replicas including `id`. */
export function reassignmentsInvolving(rs: readonly Reassignment[], id: number): Reassignment[] {
  return rs.filter((r) => r.replicas.includes(id) || r.adding.includes(id) || r.removing.includes(id));
}

/** Why a reassignment involving `ref` holds its removal, or undefined. */
export function reassignmentHold(rs: readonly Reassignment[], ref: LeavingRef): string | undefined {
  const mine = reassignmentsInvolving(rs, ref.id);
  if (mine.length === 0) return undefined;
  const what = (r: Reassignment): string => {
    const dir = r.removing.includes(ref.id) ? `moving off ${ref.id}` : r.adding.includes(ref.id) ? `moving onto ${ref.id}` : `replicas ${ids(r.replicas)}`;
    return `${r.topic}-${r.partition} (${dir})`;
  };
  return (
    `${plural(mine.length, 'partition reassignment')} in progress involve${mine.length === 1 ? 's' : ''} broker ${ref.id} (pod ${ref.pod}): ${listOf(mine.map(what), 4)}; ` +
    `waiting for ${mine.length === 1 ? 'it' : 'them'} to finish (kafka-reassign-partitions --verify shows progress)`
  );
}

/** Why the replicas `ref` still hosts hold its removal, with how to move them, or undefined. */
export function replicaHold(view: KafkaView, ref: LeavingRef): string | undefined {
  const on = replicasOn(view, ref.id);
  if (on.length === 0) return undefined;
  return (
    `broker ${ref.id} (pod ${ref.pod}) still hosts ${plural(on.length, 'partition replica')}: ${topicsBriefly(view, on)}; ` +
    `it may leave only once it hosts none. Move them with kafka-reassign-partitions (--generate with a --broker-list without ${ref.id}, then --execute), ` +
    `Cruise Control's remove_broker, or the Admin API's alterPartitionReassignments; the removal goes on by itself once they are moved`
  );
}

/**
 * Why a voter of the controller quorum holds: removing a voter is a change of
 * the quorum a person makes on purpose, never a side effect of a scale-down.
 * The command needs the voter's directory id, which only a dynamic quorum has.
 */
export function voterHold(view: KafkaView, ref: LeavingRef): string | undefined {
  const v = view.quorum.voters.find((x) => x.id === ref.id);
  if (!v) return undefined;
  const n = view.quorum.voters.length;
  const cmd = `kafka-metadata-quorum --bootstrap-controller <controller> remove-controller --controller-id ${ref.id} --controller-directory-id ${v.directoryId ?? '<id>'}`;
  return (
    `node ${ref.id} (pod ${ref.pod}) is a KRaft controller voter (voters ${ids(view.quorum.voters.map((x) => x.id))}): without it the quorum runs ${n - 1} of ${n} for good. ` +
    `Removing a voter is a deliberate act this hook will not do: ${cmd}` +
    (v.directoryId
      ? `; the removal goes on once it is no longer a voter`
      : `; this static quorum (controller.quorum.voters, no directory ids) must first become dynamic (kafka-features upgrade --feature kraft.version=1, Kafka 4.1+)`)
  );
}

/**
 * May `ref`'s pod leave for good? In order: a node the cluster does not know
 * (already gone: approve, if the cluster is healthy and the mapping is not in
 * doubt); then, said together, a voter (a person removes it from the quorum)
 * and a reassignment involving it (wait) or else replicas on it (move them);
 * then the cluster's health as for a rollout step (a leader, nothing
 * under-replicated or offline).
 */
export function decideRemoval(view: KafkaView, reassignments: readonly Reassignment[], ref: LeavingRef): Decision {
  const voter = isVoter(view, ref.id);
  const known = voter || view.brokers.has(ref.id) || replicasOn(view, ref.id).length > 0 || reassignmentsInvolving(reassignments, ref.id).length > 0;
  if (!known) {
    if (ref.ready && !ref.confirmed) {
      return hold(
        `pod ${ref.pod} is Ready, but node ${ref.id} is neither a registered broker nor a controller voter ` +
          `(brokers ${ids([...view.brokers.keys()])}, voters ${ids(view.quorum.voters.map((v) => v.id))}): the pod may run another node id; ` +
          `check kafka.sts-pilot.io/node-id-offset (or let the pod's Pilot report its node id)`,
      );
    }
    const cluster = clusterHold(view, null);
    if (cluster) return hold(`node ${ref.id} (pod ${ref.pod}) is not in the cluster, but the cluster is not healthy: ${cluster}`);
    return { kind: 'approve', note: `node ${ref.id} (pod ${ref.pod}) is not registered, not a voter and hosts no replica: nothing to move, it is already gone` };
  }
  // The voter first: its way out is a person's act. A running reassignment says more than the replicas it is moving.
  const own = [voterHold(view, ref), reassignmentHold(reassignments, ref) ?? replicaHold(view, ref)].filter((x): x is string => !!x);
  if (own.length > 0) return hold(own.join('; also, '));
  const cluster = clusterHold(view, null);
  if (cluster) return hold(cluster);
  const b = view.brokers.get(ref.id);
  const state = b ? (b.fenced ? 'registered, fenced' : 'registered') : 'not registered';
  return { kind: 'approve', note: `broker ${ref.id} (pod ${ref.pod}, ${state}) hosts no partition replica, no reassignment involves it, it is not a voter, and nothing is under-replicated` };
}

/** What podRemoved('removed') does about the broker of a pod that is gone. */
export type Cleanup =
  | { kind: 'done'; note: string; warnings: string[] }
  | { kind: 'unregister'; note: string; warnings: string[] }
  | { kind: 'hold'; reason: string };

/**
 * After the pod is gone: unregister its broker, unless there is none (done:
 * idempotent) or it is still unfenced (stopped uncleanly moments ago, or a
 * process with that node id still runs somewhere: unregistering a live broker
 * would be undone by its next registration, and would hide a real problem). Replicas still naming it (a topic created between the
 * approval and the shutdown) and a voter left in the quorum are said, not
 * held on: the next removal holds on the under-replicated partitions anyway.
 */
export function decideUnregister(view: KafkaView, ref: Pick<LeavingRef, 'pod' | 'id'>): Cleanup {
  const warnings: string[] = [];
  const on = replicasOn(view, ref.id);
  if (on.length > 0) {
    warnings.push(`broker ${ref.id} is gone but still named as a replica of ${topicsBriefly(view, on)}: those partitions are under-replicated until they are reassigned`);
  }
  if (isVoter(view, ref.id)) {
    warnings.push(`node ${ref.id} is gone but still a voter of the controller quorum: remove it with kafka-metadata-quorum remove-controller, or the quorum runs one voter short`);
  }
  const b = view.brokers.get(ref.id);
  if (!b) return { kind: 'done', note: `broker ${ref.id} (pod ${ref.pod}) is not registered: nothing to unregister`, warnings };
  if (!b.fenced) {
    return {
      kind: 'hold',
      reason:
        `pod ${ref.pod} is gone, but broker ${ref.id} is still registered and unfenced: either it stopped without a controlled shutdown ` +
        `less than broker.session.timeout.ms ago (the controller fences it then), or a Kafka process with node id ${ref.id} still runs somewhere ` +
        `(another pod with the same node.id? check kafka.sts-pilot.io/node-id-offset). The hook unregisters it once it is fenced; ` +
        `to finish by hand: kafka-cluster unregister --bootstrap-server <a broker> --id ${ref.id}`,
    };
  }
  return { kind: 'unregister', note: `broker ${ref.id} (pod ${ref.pod}) is gone and fenced: unregistering it`, warnings };
}
