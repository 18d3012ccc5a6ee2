import { isBroker } from './health.ts';
import type { BrokerRef } from './refs.ts';
import type { KafkaView } from './view.ts';

// A broker that is starting is not restarted again. Strimzi's KafkaRoller
// (strimzi/strimzi-kafka-operator,
// cluster-operator/src/main/java/io/strimzi/operator/cluster/operator/resource/KafkaRoller.java,
// restartIfNecessary) asks its agent in the pod for the broker state and will
// not restart an unready pod whose broker is in log recovery (an
// UnforceableProblem: retried, never forced; the design is strimzi/proposals
// 048-avoid-broker-restarts-when-in-recovery.md). A restart would start the
// recovery over. Kafka says the state only over JMX, which this hook cannot
// read; what it can see is that the pod's Kafka process runs (its Pilot, or
// its containers) while the broker is not yet registered and unfenced: a KRaft
// broker registers fenced at start and is unfenced once it has caught up with
// the metadata log and recovered its logs.

/** A broker whose process runs but that has not registered this long after it started is taken as broken, not starting. */
export const REGISTER_GRACE_MS = 5 * 60_000;

const OVERRIDE = 'if it will never get there (a broken release), replace it with: sts-pilot approve <statefulset> --override --reason "…" --pod';

/**
 * Why `next` (not Ready, its Kafka process running) is left to finish
 * starting, or undefined. Registered and fenced: it is recovering its logs or
 * catching up with the metadata log: hold for as long as it takes. Not
 * registered: hold for REGISTER_GRACE_MS after its start, then it is broken
 * (a configuration that cannot reach the controllers) and may be replaced. A
 * pod whose process does not run (a container waiting: CrashLoopBackOff,
 * image pull, unschedulable; its Pilot Failed) or of which nothing is known
 * has nothing to lose: replaceable, as today.
 */
export function stillStarting(view: KafkaView, next: BrokerRef, now: number): string | undefined {
  if (next.ready || next.process?.running !== true) return undefined;
  const b = view.brokers.get(next.id);
  const who = `broker ${next.id} (pod ${next.pod}, not Ready; ${next.process.source})`;
  if (b?.fenced) {
    return `${who} is registered but fenced: it is recovering its logs or catching up with the metadata log, and a restart would start that over (Strimzi does not restart a broker in log recovery); waiting until it is unfenced; ${OVERRIDE} ${next.pod}`;
  }
  if (b || !isBrokerCandidate(view, next)) return undefined;
  const age = next.process.since === undefined ? undefined : now - next.process.since;
  if (age !== undefined && age >= REGISTER_GRACE_MS) return undefined;
  const since = age === undefined ? 'since an unknown time' : `for ${Math.round(age / 1000)} s`;
  return (
    `${who} has run ${since} and has not registered with the controller yet: a starting broker registers first, then recovers its logs; ` +
    `waiting up to ${REGISTER_GRACE_MS / 60_000} min from its start before it is taken as broken and replaced; ${OVERRIDE} ${next.pod}`
  );
}

/** A node that may be a broker: known as one, or not a voter (a dedicated controller never registers as a broker). */
function isBrokerCandidate(view: KafkaView, next: BrokerRef): boolean {
  return isBroker(view, next.id) || !view.quorum.voters.some((v) => v.id === next.id);
}
