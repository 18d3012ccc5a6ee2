import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { PAUSED_ANNOTATION, REQUESTED_REPLICAS_ANNOTATION, REVISION_LABEL, STATUS_ANNOTATION } from '../names.ts';
import { podOrdinal } from '../rollout/snapshot.ts';
import { parseStatusAnnotation } from '../rollout/status.ts';

// The state of a rollout for machines (docs/gitops.md): what `sts-pilot wait`,
// `status -o json`, the Argo CD health customization and the Flux health
// expressions all say. Pure: a StatefulSet (and its pods) in, a verdict out.
// stsHealth reads the StatefulSet alone, as Argo CD and Flux see it; the Lua and
// CEL versions in charts/sts-pilot/files/gitops/ say the same, and
// test/integration/gitops.test.ts checks all three on recorded objects.

/** Argo CD's health words; Flux: Healthy is Current, Progressing InProgress, Degraded and Suspended Failed. */
export const HEALTHS = ['Progressing', 'Degraded', 'Suspended', 'Healthy'] as const;
export type Health = (typeof HEALTHS)[number];

/**
 * Why: `observing` the StatefulSet controller has not seen the spec yet;
 * `rolling` a rollout moves or is held by its hook or a policy (it goes on by
 * itself); `held` the controller records a hold that needs a person (an invalid
 * annotation, an unusable hook); `halted` a policy paused it (hook errors,
 * hold-timeout); `paused` a person paused it; `done` every pod runs the update
 * revision and sts-pilot owes no hook call; `unmanaged` not subscribed: the
 * health Argo CD gives any StatefulSet.
 */
export const REASONS = ['observing', 'rolling', 'held', 'halted', 'paused', 'done', 'unmanaged'] as const;
export type Reason = (typeof REASONS)[number];

export interface RolloutHealth {
  health: Health;
  reason: Reason;
  message: string;
}

const num = (v: number | undefined | null, d = 0): number => (typeof v === 'number' ? v : d);

/**
 * Argo CD's own StatefulSet health (gitops-engine, getAppsv1StatefulSetHealth),
 * for StatefulSets sts-pilot does not manage: the customization replaces it for
 * every StatefulSet, so it must say the same for those.
 */
export function builtinHealth(sts: V1StatefulSet): RolloutHealth {
  const h = (health: Health, message: string): RolloutHealth => ({ health, reason: 'unmanaged', message });
  const gen = num(sts.metadata?.generation);
  const og = num(sts.status?.observedGeneration);
  if (og === 0 || gen > og) return h('Progressing', 'Waiting for statefulset spec update to be observed...');
  const replicas = sts.spec?.replicas;
  const ready = num(sts.status?.readyReplicas);
  if (replicas !== undefined && ready < replicas) return h('Progressing', `Waiting for ${replicas - ready} pods to be ready...`);
  const strategy = sts.spec?.updateStrategy;
  const updated = num(sts.status?.updatedReplicas);
  if (strategy?.type === 'RollingUpdate' && strategy.rollingUpdate) {
    const p = strategy.rollingUpdate.partition;
    if (replicas !== undefined && p !== undefined && updated < replicas - p) {
      return h('Progressing', `Waiting for partitioned roll out to finish: ${updated} out of ${replicas - p} new pods have been updated...`);
    }
    return h('Healthy', `partitioned roll out complete: ${updated} new pods have been updated...`);
  }
  if (strategy?.type === 'OnDelete') return h('Healthy', `statefulset has ${ready} ready pods`);
  if (sts.status?.updateRevision !== sts.status?.currentRevision) {
    return h('Progressing', `waiting for statefulset rolling update to complete ${updated} pods at revision ${sts.status?.updateRevision}...`);
  }
  return h('Healthy', `statefulset rolling update complete ${num(sts.status?.currentReplicas)} pods at revision ${sts.status?.currentRevision}...`);
}

/** The controller paused it itself (halt-after-errors, hold-timeout): its pause record names the policy. */
export const isHalt = (state: string | undefined, message: string | undefined): boolean => state === 'Paused' && (message ?? '').startsWith('policy ');

/** The health of a StatefulSet from the object alone: what Argo CD and Flux can see. */
export function stsHealth(sts: V1StatefulSet, labelKey: string): RolloutHealth {
  const md = sts.metadata ?? {};
  if (md.labels?.[labelKey] === undefined) return builtinHealth(sts);
  const gen = num(md.generation);
  const og = num(sts.status?.observedGeneration);
  if (og === 0 || og !== gen) {
    return { health: 'Progressing', reason: 'observing', message: `waiting for the StatefulSet controller to observe generation ${gen}` };
  }
  const n = num(sts.spec?.replicas, 1);
  const st = sts.status;
  const upd = st?.updateRevision ?? '';
  const strategy = sts.spec?.updateStrategy?.type ?? 'RollingUpdate';
  const partition = num(sts.spec?.updateStrategy?.rollingUpdate?.partition);
  const annotations = md.annotations ?? {};
  const parsed = parseStatusAnnotation(annotations[STATUS_ANNOTATION]);
  const rec = parsed.ok ? parsed.status : {};
  const updated = num(st?.updatedReplicas);
  const progress = `${updated}/${n} pods at the update revision ${upd || '(not reported yet)'}, partition ${partition}`;
  // Done: every pod updated, Ready and available, no pod to remove, and nothing
  // owed: a rollout mark means sts-pilot still owes its hook the final call, and
  // the partition back at replicas means it has made it (RollingUpdate).
  const done =
    upd !== '' &&
    num(st?.replicas) === n &&
    updated === n &&
    num(st?.readyReplicas) === n &&
    num(st?.availableReplicas) === n &&
    rec.rollout === undefined &&
    annotations[REQUESTED_REPLICAS_ANNOTATION] === undefined &&
    (strategy === 'OnDelete' || (strategy === 'RollingUpdate' && st?.currentRevision === upd && partition >= n));
  if (done) return { health: 'Healthy', reason: 'done', message: `all ${n} pods run ${upd}` };
  const paused = annotations[PAUSED_ANNOTATION];
  if (paused !== undefined && paused !== 'false') {
    if (paused !== 'true') return { health: 'Degraded', reason: 'held', message: `annotation ${PAUSED_ANNOTATION} must be "true" or "false"` };
    if (isHalt(rec.state, rec.message)) return { health: 'Degraded', reason: 'halted', message: `halted: ${rec.message}` };
    return { health: 'Suspended', reason: 'paused', message: `paused (${PAUSED_ANNOTATION}): ${progress}` };
  }
  if (rec.state === 'Held' || rec.state === 'Unmanageable') return { health: 'Degraded', reason: 'held', message: `held: ${rec.message ?? ''}` };
  const why = rec.state === 'Rolling' && rec.message ? `: ${rec.message}` : '';
  return { health: 'Progressing', reason: 'rolling', message: `${progress}${why}` };
}

/**
 * stsHealth, then the pods themselves: done needs every pod of the StatefulSet
 * (by ordinal, 0..N-1 from ordinals.start) at the update revision, Ready and not
 * leaving. The StatefulSet's counters lag its pods by a sync; a wait must not end
 * on a count that the pods already contradict.
 */
export function rolloutHealth(sts: V1StatefulSet, pods: readonly V1Pod[], labelKey: string): RolloutHealth {
  const h = stsHealth(sts, labelKey);
  if (h.reason !== 'done') return h;
  const name = sts.metadata?.name ?? '';
  const start = num(sts.spec?.ordinals?.start);
  const n = num(sts.spec?.replicas, 1);
  const upd = sts.status?.updateRevision;
  const byIndex = new Map<number, V1Pod>();
  for (const p of pods) {
    const o = podOrdinal(p, name);
    if (o !== undefined) byIndex.set(o - start, p);
  }
  for (let i = n - 1; i >= 0; i--) {
    const p = byIndex.get(i);
    const pod = `${name}-${start + i}`;
    const rolling = (why: string): RolloutHealth => ({ health: 'Progressing', reason: 'rolling', message: `pod ${pod} ${why}` });
    if (!p) return rolling('is missing');
    if (p.metadata?.deletionTimestamp) return rolling('is terminating');
    if (p.metadata?.labels?.[REVISION_LABEL] !== upd) return rolling(`runs ${p.metadata?.labels?.[REVISION_LABEL] ?? 'no revision'}, not ${upd}`);
    const ready = p.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (!ready) return rolling('is not Ready');
  }
  return h;
}
