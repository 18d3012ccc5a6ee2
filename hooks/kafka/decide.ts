import type { KafkaView, PartitionState } from './view.ts';

// The decisions of the kafka hook, as pure functions of what it read. The rules
// are those Strimzi's KafkaRoller follows: a broker restarts only if no
// partition it hosts would fall below min.insync.replicas (or already has),
// the controller quorum keeps a caught-up majority without it, and the active
// controller goes last. Nothing depends on an earlier call.

export type Decision = { kind: 'approve'; note: string } | { kind: 'hold'; reason: string };

/** A pod of the rollout, as the decisions see it. */
export interface BrokerRef {
  pod: string;
  /** node.id of the Kafka process in the pod. */
  id: number;
  ready: boolean;
  /** No pod below this one is left to update: it is the last step of the rollout. */
  last: boolean;
}

export type ActiveControllerPolicy = 'last' | 'any';

const hold = (reason: string): Decision => ({ kind: 'hold', reason });

/** "a, b, c and 4 more": names in a reason stay short. */
export function listOf(names: readonly string[], max = 5): string {
  if (names.length === 0) return 'none';
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
const name = (p: PartitionState): string => `${p.topic}-${p.partition}`;
export const ids = (xs: readonly number[]): string => (xs.length === 0 ? 'none' : [...xs].sort((a, b) => a - b).join(','));

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

/** Partitions on `id` whose ISR without `id` is below min.insync.replicas: restarting `id` makes them refuse acks=all writes, or go offline. */
export function wouldFallBelowMinIsr(view: KafkaView, id: number): PartitionState[] {
  return view.partitions.filter((p) => p.replicas.includes(id) && p.isr.filter((r) => r !== id).length < p.minIsr);
}

/** Voters caught up with the leader within the fetch timeout (the leader counts), on the leader's clock. */
export function caughtUpVoters(view: KafkaView): number[] {
  const q = view.quorum;
  const leader = q.voters.find((v) => v.id === q.leader);
  if (!leader) return [];
  return q.voters.filter((v) => v.id === q.leader || (v.lastCaughtUp >= 0 && leader.lastCaughtUp - v.lastCaughtUp <= view.fetchTimeoutMs)).map((v) => v.id);
}

export const isVoter = (view: KafkaView, id: number): boolean => view.quorum.voters.some((v) => v.id === id);
/** A broker: registered, or named as a replica of some partition (a broker that never came back is only the latter). */
export const isBroker = (view: KafkaView, id: number): boolean => view.brokers.has(id) || view.partitions.some((p) => p.replicas.includes(id));

function describePartitions(ps: readonly PartitionState[], detail: (p: PartitionState) => string): string {
  return listOf(ps.map((p) => `${name(p)} (${detail(p)})`), 4);
}

const minIsrDetail = (id: number) => (p: PartitionState) =>
  `replicas ${ids(p.replicas)}, in sync ${ids(p.isr)}, min.insync.replicas ${p.minIsr}${p.replicas.length === 1 && p.replicas[0] === id ? ': its only replica' : ''}`;

/** Why `ref`'s broker/controller is not back yet, or undefined when it is. */
export function notRejoined(view: KafkaView, ref: BrokerRef): string | undefined {
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
      return `waiting for broker ${ref.id} (pod ${ref.pod}) to catch up: ${plural(behind.length, 'partition')} not back in sync: ${listOf(behind.map(name))}`;
    }
  }
  if (voter && !caughtUpVoters(view).includes(ref.id)) {
    return `waiting for controller ${ref.id} (pod ${ref.pod}) to catch up with the metadata log (more than ${view.fetchTimeoutMs} ms behind the active controller ${view.quorum.leader})`;
  }
  return undefined;
}

/** Why `next` may not restart now, or undefined when it may. */
export function notSafeToRestart(view: KafkaView, next: BrokerRef, policy: ActiveControllerPolicy): string | undefined {
  const id = next.id;
  const voter = isVoter(view, id);
  if (!voter && !isBroker(view, id) && next.ready) {
    return (
      `pod ${next.pod} is Ready, but node ${id} is neither a registered broker nor a controller voter ` +
      `(brokers ${ids([...view.brokers.keys()])}, voters ${ids(view.quorum.voters.map((v) => v.id))}): check kafka.sts-pilot.io/node-id-offset`
    );
  }
  const below = wouldFallBelowMinIsr(view, id);
  if (below.length > 0) {
    const offline = below.filter((p) => p.isr.filter((r) => r !== id).length === 0);
    const what = offline.length > 0 ? `${plural(offline.length, 'partition')} would go offline` : 'producers with acks=all would fail';
    return `restarting broker ${id} (pod ${next.pod}) would take ${plural(below.length, 'partition')} below min.insync.replicas (${what}): ${describePartitions(below, minIsrDetail(id))}`;
  }
  if (voter) {
    const majority = Math.floor(view.quorum.voters.length / 2) + 1;
    const others = caughtUpVoters(view).filter((v) => v !== id);
    if (others.length < majority) {
      return (
        `restarting controller ${id} (pod ${next.pod}) would leave ${others.length} caught-up voters (${ids(others)}) of ${view.quorum.voters.length}, ` +
        `fewer than a majority of ${majority} (caught up: within ${view.fetchTimeoutMs} ms of the active controller ${view.quorum.leader})`
      );
    }
    if (view.quorum.leader === id && policy === 'last' && !next.last) {
      return (
        `broker ${id} (pod ${next.pod}) is the active controller: it goes last, so its step waits until leadership moves to another controller ` +
        `or it is the last pod left (kafka.sts-pilot.io/active-controller: any lets it restart now: a graceful shutdown hands leadership over)`
      );
    }
  }
  return undefined;
}

/** Holds that concern the whole cluster, whatever the step. */
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
 * One step: `prev` (updated last) must be back and caught up; nothing may be
 * under-replicated but `next`'s own replicas; `next` may restart without
 * taking a partition below min.insync.replicas or the quorum below a
 * caught-up majority; the active controller goes last. At the end (`next`
 * null): `prev` back and nothing under-replicated.
 */
export function decide(view: KafkaView, prev: BrokerRef | null, next: BrokerRef | null, policy: ActiveControllerPolicy): Decision {
  if (prev) {
    const why = notRejoined(view, prev);
    if (why) return hold(why);
  }
  const cluster = clusterHold(view, next?.id ?? null);
  if (cluster) return hold(cluster);
  if (!next) return { kind: 'approve', note: prev ? `broker ${prev.id} rejoined; nothing under-replicated` : 'nothing under-replicated' };
  const why = notSafeToRestart(view, next, policy);
  if (why) return hold(why);
  const leader = view.quorum.leader === next.id ? ' (the active controller, last)' : '';
  return { kind: 'approve', note: `broker ${next.id}${leader} may restart: every partition it hosts keeps min.insync.replicas, the quorum keeps a caught-up majority` };
}
