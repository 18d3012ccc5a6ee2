import { clusterHold, isBroker, isVoter, notRejoined } from './health.ts';
import { minIsrCheck } from './min-isr.ts';
import { type ActiveControllerPolicy, activeControllerHold, quorumCheck, type Strategy } from './quorum.ts';
import type { BrokerRef } from './refs.ts';
import { stillStarting } from './starting.ts';
import type { KafkaView } from './view.ts';
import { ids } from './words.ts';

// The decisions of the kafka hook for a rollout step, as pure functions of what
// it read. The rules are those Strimzi's KafkaRoller follows, each in its own
// file with its source: min-isr.ts (KafkaAvailability), quorum.ts
// (KafkaQuorumCheck, the active controller), starting.ts (log recovery),
// order.ts (podUpdateOrder); health.ts has what every decision asks of the
// cluster. Nothing depends on an earlier call.

/** An approval may come with warnings: said at warn level in the approval's log line. */
/** routine: a wait that ends by itself (lib/hook.ts HookNotReady): a Normal Event, not a Warning. */
export type Decision = { kind: 'approve'; note: string; warnings?: string[] } | { kind: 'hold'; reason: string; routine?: true };

export type { BrokerRef } from './refs.ts';

/** How a step is judged, beside what the cluster says. */
export interface StepPolicy {
  activeController: ActiveControllerPolicy;
  /** Hold on topics whose replication factor is at most min.insync.replicas (else: a warning). */
  strictMinIsr: boolean;
  strategy: Strategy;
  /** ms since the epoch, for how long a starting broker has run. */
  now: number;
}

const hold = (reason: string): Decision => ({ kind: 'hold', reason });

/** `next` Ready but unknown to the cluster: the pod runs some other node id. */
function unknownNode(view: KafkaView, next: BrokerRef): string | undefined {
  if (isVoter(view, next.id) || isBroker(view, next.id) || !next.ready) return undefined;
  return (
    `pod ${next.pod} is Ready, but node ${next.id} is neither a registered broker nor a controller voter ` +
    `(brokers ${ids([...view.brokers.keys()])}, voters ${ids(view.quorum.voters.map((v) => v.id))}): check kafka.sts-pilot.io/node-id-offset`
  );
}

/** What a restart of `next` comes with: warnings about topics that never keep min.insync.replicas, and about a quorum too small. */
export interface Restart {
  ok: true;
  minIsr?: string;
  quorum?: string;
}

/**
 * Why `next` may not restart now, or the warnings its restart comes with: its
 * node id known; not still starting (log recovery); every partition it hosts
 * keeps min.insync.replicas (topics that never can: a warning, or a hold when
 * strict); the quorum keeps a caught-up majority (1 or 2 voters: a warning);
 * the active controller's turn.
 */
export function notSafeToRestart(view: KafkaView, next: BrokerRef, policy: StepPolicy): Restart | { ok: false; reason: string } {
  const first = unknownNode(view, next) ?? stillStarting(view, next, policy.now);
  if (first) return { ok: false, reason: first };
  const minIsr = minIsrCheck(view, next, policy.strictMinIsr);
  if (!minIsr.ok) return minIsr;
  const quorum = quorumCheck(view, next);
  if (!quorum.ok) return quorum;
  const active = activeControllerHold(view, next, policy.activeController, policy.strategy);
  if (active) return { ok: false, reason: active };
  return { ok: true, ...(minIsr.warning ? { minIsr: minIsr.warning } : {}), ...(quorum.warning ? { quorum: quorum.warning } : {}) };
}

/**
 * One step: `prev` (updated last) must be back and caught up; nothing may be
 * under-replicated but `next`'s own replicas; then `next` may restart
 * (notSafeToRestart). At the end (`next` null): `prev` back and nothing
 * under-replicated.
 */
export function decide(view: KafkaView, prev: BrokerRef | null, next: BrokerRef | null, policy: StepPolicy): Decision {
  if (prev) {
    const why = notRejoined(view, prev);
    // The broker updated last on its way back (registering, unfenced, catching up): it ends by itself.
    if (why) return { kind: 'hold', reason: why, routine: true };
  }
  const cluster = clusterHold(view, next?.id ?? null);
  if (cluster) return hold(cluster);
  if (!next) return { kind: 'approve', note: prev ? `broker ${prev.id} rejoined; nothing under-replicated` : 'nothing under-replicated' };
  const r = notSafeToRestart(view, next, policy);
  if (!r.ok) return hold(r.reason);
  const leader = view.quorum.leader === next.id ? ` (the active controller, ${policy.strategy === 'OnDelete' || next.last ? 'last' : 'in its turn'})` : '';
  const partitions = r.minIsr
    ? 'every partition it hosts with more replicas than min.insync.replicas keeps it'
    : 'every partition it hosts keeps min.insync.replicas';
  const quorum = r.quorum ? 'the quorum is too small to keep a majority without it' : 'the quorum keeps a caught-up majority';
  const warnings = [r.minIsr, r.quorum].filter((w): w is string => !!w);
  return { kind: 'approve', note: `broker ${next.id}${leader} may restart: ${partitions}, ${quorum}`, ...(warnings.length > 0 ? { warnings } : {}) };
}
