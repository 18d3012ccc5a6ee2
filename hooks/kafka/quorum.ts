import type { BrokerRef } from './refs.ts';
import type { KafkaView } from './view.ts';
import { ids } from './words.ts';

// The KRaft controller quorum: who is caught up, whether a voter may restart,
// and when the active controller's turn is. The rules are Strimzi's
// KafkaQuorumCheck (strimzi/strimzi-kafka-operator,
// cluster-operator/src/main/java/io/strimzi/operator/cluster/operator/resource/KafkaQuorumCheck.java):
// a majority of the voters other than the one restarting must be caught up
// with the leader (within controller.quorum.fetch.timeout.ms, the leader always
// counting); a quorum of one voter rolls with a warning, one of two rolls with
// a warning when the other voter is caught up.

/** Voters caught up with the leader within the fetch timeout (the leader counts), on the leader's clock. */
export function caughtUpVoters(view: KafkaView): number[] {
  const q = view.quorum;
  const leader = q.voters.find((v) => v.id === q.leader);
  if (!leader) return [];
  return q.voters.filter((v) => v.id === q.leader || (v.lastCaughtUp >= 0 && leader.lastCaughtUp - v.lastCaughtUp <= view.fetchTimeoutMs)).map((v) => v.id);
}

export type Check = { ok: true; warning?: string } | { ok: false; reason: string };

const THREE = 'run three (or five) controllers so that one can restart while the others keep a majority';

/**
 * May voter `next` restart without the quorum losing its caught-up majority?
 * Not a voter: nothing to check. One voter: yes, with a warning (the quorum is
 * down while it restarts: holding would hold for ever). Two: yes, with a
 * warning, when the other is caught up (neither alone is a majority, so the
 * metadata log stops until `next` is back); else hold. Three or more: the
 * voters other than `next` that are caught up must be a majority of all.
 */
export function quorumCheck(view: KafkaView, next: Pick<BrokerRef, 'pod' | 'id'>): Check {
  const voters = view.quorum.voters.map((v) => v.id);
  if (!voters.includes(next.id)) return { ok: true };
  const n = voters.length;
  const others = caughtUpVoters(view).filter((v) => v !== next.id);
  const who = `controller ${next.id} (pod ${next.pod})`;
  if (n === 1) {
    return {
      ok: true,
      warning:
        `${who} is the only voter of the controller quorum: while it restarts the cluster has no active controller ` +
        `(no metadata changes, partition leader elections or broker registrations until it is back); rolled anyway, as Strimzi does; ${THREE}`,
    };
  }
  if (n === 2) {
    const other = voters.find((v) => v !== next.id) as number;
    if (others.length === 1) {
      return {
        ok: true,
        warning:
          `the controller quorum has 2 voters (${ids(voters)}): while ${who} restarts, voter ${other} alone is no majority and the metadata log stops until it is back; ` +
          `rolled anyway since ${other} is caught up, as Strimzi does; ${THREE}`,
      };
    }
    return {
      ok: false,
      reason:
        `restarting ${who} would leave voter ${other} of a 2-voter quorum, which is not caught up with the active controller ${view.quorum.leader} ` +
        `(more than ${view.fetchTimeoutMs} ms behind): waiting for it to catch up`,
    };
  }
  const majority = Math.floor(n / 2) + 1;
  if (others.length < majority) {
    return {
      ok: false,
      reason:
        `restarting ${who} would leave ${others.length} caught-up voters (${ids(others)}) of ${n}, ` +
        `fewer than a majority of ${majority} (caught up: within ${view.fetchTimeoutMs} ms of the active controller ${view.quorum.leader})`,
    };
  }
  return { ok: true };
}

/**
 * When the active controller restarts. 'in-turn' (the default): like any voter,
 * once quorumCheck passes; its controlled shutdown hands leadership to a
 * caught-up voter. 'last': under RollingUpdate its step waits until leadership
 * moves or its pod is the last one (the ordinals fix the order, and nothing
 * moves leadership on request). Under OnDelete the hook's order
 * (podUpdateOrder) already puts it after the other controllers, so its step
 * is never held for being the leader.
 */
export type ActiveControllerPolicy = 'in-turn' | 'last';
export type Strategy = 'RollingUpdate' | 'OnDelete';

export function activeControllerHold(view: KafkaView, next: BrokerRef, policy: ActiveControllerPolicy, strategy: Strategy): string | undefined {
  if (view.quorum.leader !== next.id || policy !== 'last' || strategy !== 'RollingUpdate' || next.last) return undefined;
  return (
    `broker ${next.id} (pod ${next.pod}) is the active controller and kafka.sts-pilot.io/active-controller is "last": its step waits until leadership moves ` +
    `to another controller or it is the last pod left (remove the annotation to restart it in its turn: a controlled shutdown hands leadership over)`
  );
}
