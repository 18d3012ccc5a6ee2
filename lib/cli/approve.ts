import { POLICY_ANNOTATIONS } from '../names.ts';
import { plan } from '../rollout/planner.ts';
import { POLICY_NAMES } from '../rollout/policies/index.ts';
import { snapshotOf, pendingStep, type StatusItem } from './model.ts';

export type OverrideTarget = { ok: true; annotation: string; value: string; pod: string; step: string } | { ok: false; reason: string };

/**
 * What `approve --override` writes: one exact pod (its uid) at the update
 * revision, and why. The pod is the one the hook is (or would be, but for the
 * policies) asked about, or with --pod a stale pod further down, which the
 * override lets through once it is next. Pure: the refusals are table-tested.
 */
export function overrideTarget(item: StatusItem, o: { labelKey: string; now: number; pod: string | undefined; reason: string }): OverrideTarget {
  const md = item.sts.metadata ?? {};
  const id = `${md.namespace ?? 'default'}/${md.name ?? ''}`;
  if (md.labels?.[o.labelKey] === undefined) return { ok: false, reason: `${id} has no label ${o.labelKey}: sts-pilot does not manage it` };
  const snapshot = snapshotOf(item, o.now);
  const upd = snapshot.sts.updateRevision;
  // The step the hook decides, with every policy aside: that is what an override stands in for.
  const free = plan({ ...snapshot, policy: { ...snapshot.policy, disabled: POLICY_NAMES } });
  const next = free.kind === 'callHook' ? free.next : null;
  if (!upd || !next) {
    const why = free.kind === 'hold' || free.kind === 'pause' ? free.reason : free.message;
    return { ok: false, reason: `no pod of ${id} is waiting for its hook, so there is nothing to override: ${why}` };
  }
  const pod = o.pod === undefined ? next : snapshot.pods.find((p) => p.name === o.pod);
  if (!pod) return { ok: false, reason: `${id} has no pod ${o.pod}` };
  if (pod.revision === upd) return { ok: false, reason: `pod ${pod.name} already runs the update revision ${upd}` };
  const value = JSON.stringify({ pod: pod.name, uid: pod.uid, revision: upd, reason: o.reason, at: new Date(o.now).toISOString() });
  const step = pod.uid === next.uid ? `pod ${pod.name} (next)` : `pod ${pod.name} (once it is next; the next is ${next.name})`;
  return { ok: true, annotation: POLICY_ANNOTATIONS.override, value, pod: pod.name, step };
}

export type ApprovalTarget =
  | { ok: true; next: string | null; revision: string; step: string; removal?: { pod: string; uid: string } }
  | { ok: false; reason: string };

/**
 * Which step `approve` may approve: the one the controller is asking the hook
 * about, computed with the planner on what was just read. Pure, so every refusal
 * is table-tested. `pod` is the person's own expectation ("I approve web-3"): if
 * the rollout has moved on since they looked, nothing is approved.
 */
export function approvalTarget(
  item: StatusItem,
  o: { labelKey: string; hookName: string; now: number; pod: string | undefined },
): ApprovalTarget {
  const md = item.sts.metadata ?? {};
  const id = `${md.namespace ?? 'default'}/${md.name ?? ''}`;
  const hook = md.labels?.[o.labelKey];
  if (hook === undefined) return { ok: false, reason: `${id} has no label ${o.labelKey}: sts-pilot does not manage it` };
  if (hook !== o.hookName) {
    return { ok: false, reason: `${id} uses the ${JSON.stringify(hook)} hook, not ${o.hookName}: its steps are not approved by a person` };
  }
  const step = pendingStep(item, o.labelKey, o.now);
  if (!step.ok) return { ok: false, reason: `no step of ${id} is waiting for approval: ${step.reason}` };
  const n = item.sts.spec?.replicas ?? 1;
  const what = step.next ? step.next.name : 'end';
  if (o.pod !== undefined && o.pod !== what) {
    const pending = step.next ? `pod ${step.next.name}` : 'the end of the rollout (--pod end)';
    return { ok: false, reason: `the step of ${id} waiting for approval is ${pending}, not ${o.pod}; nothing approved` };
  }
  if (step.removal) return { ok: true, next: step.removal.pod, revision: step.revision, step: `the removal of pod ${step.removal.pod} (scale-down)`, removal: step.removal };
  return {
    ok: true,
    next: step.next?.name ?? null,
    revision: step.revision,
    step: step.next ? `pod ${step.next.name} (step ${n - step.next.index} of ${n})` : 'the end of the rollout',
  };
}
