import { pendingStep, type StatusItem } from './model.ts';

export type ApprovalTarget =
  | { ok: true; next: string | null; revision: string; step: string }
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
  return {
    ok: true,
    next: step.next?.name ?? null,
    revision: step.revision,
    step: step.next ? `pod ${step.next.name} (step ${n - step.next.index} of ${n})` : 'the end of the rollout',
  };
}
