import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { rolloutHealth, type RolloutHealth } from './health.ts';

// `sts-pilot wait`: the decision, pure. The watch (wait-watch.ts) feeds it each
// StatefulSet and its pods as they change; it says wait, done or fail, and when
// a progress line is due. docs/cli.md, "wait".

/** What a wait remembers about one StatefulSet between events. */
export interface Tracked {
  /** The update revision of the template this wait is for: the first one the StatefulSet controller reported for the spec. */
  target?: string;
  /** The revision the pods ran before that rollout (currentRevision then), when it differed: going back to it is a rollback. */
  from?: string;
  /** The last progress line's identity: a new line only when it changes. */
  shown?: string;
}

export type Verdict =
  | { kind: 'wait'; health: RolloutHealth }
  | { kind: 'done'; health: RolloutHealth }
  | { kind: 'fail'; reason: string };

export interface Judged {
  next: Tracked;
  verdict: Verdict;
  /** A progress line to print (the situation changed), without the name. */
  line?: string;
}

/**
 * One StatefulSet, as it is now. The first spec the StatefulSet controller has
 * observed fixes the rollout waited for; a later template ends the wait: back to
 * the revision the pods came from is a rollback, anything else a newer template.
 */
export function judge(t: Tracked, sts: V1StatefulSet | undefined, pods: readonly V1Pod[], labelKey: string): Judged {
  if (!sts) return { next: t, verdict: { kind: 'fail', reason: 'the StatefulSet was deleted' } };
  const hook = sts.metadata?.labels?.[labelKey];
  if (hook === undefined) {
    return { next: t, verdict: { kind: 'fail', reason: `not managed by sts-pilot (no label ${labelKey}); "kubectl rollout status" follows it` } };
  }
  const observed = sts.status?.observedGeneration !== undefined && sts.status.observedGeneration === sts.metadata?.generation;
  const upd = sts.status?.updateRevision;
  const cur = sts.status?.currentRevision;
  let next = t;
  if (observed && upd) {
    if (t.target === undefined) next = { ...t, target: upd, ...(cur && cur !== upd ? { from: cur } : {}) };
    else if (upd !== t.target) {
      const reason =
        upd === t.from
          ? `rolled back: the template went back to revision ${upd}; the rollout to ${t.target} was abandoned`
          : `the template changed again: the rollout to ${t.target} was replaced by one to ${upd}`;
      return { next: t, verdict: { kind: 'fail', reason } };
    }
  }
  const health = rolloutHealth(sts, pods, labelKey);
  const st = sts.status;
  const partition = sts.spec?.updateStrategy?.rollingUpdate?.partition;
  // A new line per step: the pods updated, the partition, the verdict, and the
  // controller's reason up to its numbers ("12 shards left" and "11 shards left"
  // are one situation). The StatefulSet controller catching up with a write
  // ("observing") is a blink between two steps, not one.
  const shown = [health.health, health.reason, st?.updatedReplicas ?? 0, partition ?? '-', health.message.replace(/[0-9]+/g, '#')].join('|');
  const quiet = health.reason === 'observing' || shown === t.shown;
  const line = quiet ? undefined : `${health.health}: ${health.message}`;
  next = quiet ? next : { ...next, shown };
  const out = (verdict: Verdict): Judged => (line === undefined ? { next, verdict } : { next, verdict, line });
  // Until the spec is observed, the rollout asked for is not known yet: a Healthy now would be the last one's.
  if (next.target === undefined) return out({ kind: 'wait', health });
  switch (health.health) {
    case 'Healthy':
      return out({ kind: 'done', health });
    case 'Degraded':
      return out({ kind: 'fail', reason: health.message });
    case 'Suspended':
      return out({ kind: 'fail', reason: `${health.message}; resume with: sts-pilot resume ${sts.metadata?.name ?? ''} -n ${sts.metadata?.namespace ?? ''}` });
    default:
      return out({ kind: 'wait', health });
  }
}
