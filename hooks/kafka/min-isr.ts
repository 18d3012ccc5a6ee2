import type { BrokerRef } from './refs.ts';
import type { KafkaView, PartitionState } from './view.ts';
import { describePartitions, ids, listOf, plural } from './words.ts';

// min.insync.replicas through a restart. The rule is Strimzi's KafkaAvailability
// (strimzi/strimzi-kafka-operator,
// cluster-operator/src/main/java/io/strimzi/operator/cluster/operator/resource/KafkaAvailability.java,
// wouldAffectAvailability): a broker may restart only if every partition it
// hosts keeps min.insync.replicas in sync without it, except partitions whose
// replication factor is at most min.insync.replicas. Those lose it whenever any
// of their replicas restarts, in any order, so no rolling can spare them:
// Strimzi skips them (only a debug line says so) and rolls. So does this hook
// by default, saying so at warn level with the topics' names; the option
// kafka.sts-pilot.io/strict-min-isr: "true" holds on them instead.

/** A partition with no more replicas than min.insync.replicas: any restart of one of them takes it below. */
// An unknown min.insync.replicas is never taken as "cannot survive" (that would roll it with a warning): it holds (minIsrCheck).
export const cannotSurviveRestart = (p: PartitionState): boolean => p.minIsr !== undefined && p.replicas.length <= p.minIsr;

/** Partitions on `id` whose ISR without `id` is below min.insync.replicas: restarting `id` makes them refuse acks=all writes, or go offline. */
export function wouldFallBelowMinIsr(view: KafkaView, id: number): PartitionState[] {
  return view.partitions.filter((p) => p.replicas.includes(id) && p.minIsr !== undefined && p.isr.filter((r) => r !== id).length < p.minIsr);
}

/** Topics on `id` whose min.insync.replicas was not read: the step cannot be judged (read.ts reads it for the moving broker's topics). */
export function minIsrUnknown(view: KafkaView, id: number): string[] {
  return [...new Set(view.partitions.filter((p) => p.replicas.includes(id) && p.minIsr === undefined).map((p) => p.topic))];
}

const detail = (id: number) => (p: PartitionState) =>
  `replicas ${ids(p.replicas)}, in sync ${ids(p.isr)}, min.insync.replicas ${p.minIsr}${p.replicas.length === 1 && p.replicas[0] === id ? ': its only replica' : ''}`;

/** "single (replication factor 1, min.insync.replicas 1, 1 partition on broker 2: offline while it restarts)". */
function topicsOf(ps: readonly PartitionState[], id: number): string {
  const byTopic = new Map<string, PartitionState[]>();
  for (const p of ps) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p]);
  return listOf(
    [...byTopic].map(([topic, mine]) => {
      const rf = [...new Set(mine.map((p) => p.replicas.length))].join('/');
      const min = [...new Set(mine.map((p) => p.minIsr))].join('/');
      const effect = mine.some((p) => p.isr.filter((r) => r !== id).length === 0) ? 'offline while it restarts' : 'acks=all producers fail while it restarts';
      return `${topic} (replication factor ${rf}, min.insync.replicas ${min}, ${plural(mine.length, 'partition')} on broker ${id}: ${effect})`;
    }),
    4,
  );
}

/**
 * May broker `next` restart as far as min.insync.replicas goes? Partitions that
 * could keep it (more replicas than min.insync.replicas) and would not hold.
 * Those that never can are a warning naming their topics, or, with `strict`,
 * a hold like the others.
 */
export function minIsrCheck(view: KafkaView, next: Pick<BrokerRef, 'pod' | 'id'>, strict: boolean): { ok: true; warning?: string } | { ok: false; reason: string } {
  const id = next.id;
  const unknown = minIsrUnknown(view, id);
  if (unknown.length > 0) return { ok: false, reason: `min.insync.replicas of ${listOf(unknown, 4)} (on broker ${id}) was not read: the step cannot be judged` };
  const below = wouldFallBelowMinIsr(view, id);
  const hopeless = below.filter(cannotSurviveRestart);
  const held = strict ? below : below.filter((p) => !cannotSurviveRestart(p));
  if (held.length > 0) {
    const offline = held.filter((p) => p.isr.filter((r) => r !== id).length === 0);
    const what = offline.length > 0 ? `${plural(offline.length, 'partition')} would go offline` : 'producers with acks=all would fail';
    const hint =
      strict && hopeless.length > 0
        ? `; kafka.sts-pilot.io/strict-min-isr is "true": without it the step would go on with a warning, as Strimzi rolls topics whose replication factor is at most min.insync.replicas`
        : '';
    return {
      ok: false,
      reason: `restarting broker ${id} (pod ${next.pod}) would take ${plural(held.length, 'partition')} below min.insync.replicas (${what}): ${describePartitions(held, detail(id))}${hint}`,
    };
  }
  if (hopeless.length === 0) return { ok: true };
  return {
    ok: true,
    warning:
      `restarting broker ${id} (pod ${next.pod}) takes topics whose replication factor is at most min.insync.replicas below it, as any restart of their replicas would: ` +
      `${topicsOf(hopeless, id)}; rolled anyway, as Strimzi does: give them more replicas than min.insync.replicas, ` +
      `or set kafka.sts-pilot.io/strict-min-isr: "true" to hold on them`,
  };
}
