import type { V1StatefulSet } from '@kubernetes/client-node';
import { z } from 'zod';
import { defineHook, HookNotReady } from '../../lib/hook.ts';
import { hookOptionPrefix } from '../../lib/names.ts';

export const MANUAL_HOOK = 'manual';
/** The option that carries the approval, read from annotation `manual.sts-pilot.io/approve`. */
export const APPROVE_OPTION = 'approve';
export const APPROVE_ANNOTATION = `${hookOptionPrefix(MANUAL_HOOK)}${APPROVE_OPTION}`;
/** Stands for `next === null`: the final call, after the last pod. No pod is named so. */
export const END = 'end';

/**
 * The one value that approves this step: the pod and the revision it moves to.
 * Naming both means an approval given for one step can never let another one
 * through, not even the same pod in a rollout to another template.
 */
export const approvalValue = (next: string | null, updateRevision: string): string => `${next ?? END}@${updateRevision}`;

/**
 * The one value that approves the removal of a pod (scale-down): its name and
 * uid, so that it approves this very pod and no pod of the same name after it.
 */
export const removalApprovalValue = (pod: string, uid: string): string => `remove:${pod}@${uid}`;

const Options = z.strictObject({
  // Any string is accepted here: a wrong value holds with a reason naming the right
  // one, instead of making the whole hook unusable ("invalid options").
  [APPROVE_OPTION]: z
    .string()
    .optional()
    .describe('<pod>@<updateRevision>, or end@<updateRevision> for the last call; written by "sts-pilot approve"'),
});

export type Decision = { approved: true } | { approved: false; reason: string };

/**
 * Pure: approve exactly when the annotation names this step. Otherwise hold with
 * the command a person runs, and the raw annotation for those who script it.
 */
export function decide(o: {
  namespace: string;
  name: string;
  updateRevision: string | undefined;
  next: string | null;
  approval: string | undefined;
}): Decision {
  if (!o.updateRevision) return { approved: false, reason: 'the StatefulSet reports no updateRevision yet' };
  const wanted = approvalValue(o.next, o.updateRevision);
  if (o.approval === wanted) return { approved: true };
  const what = o.next ? `pod ${o.next} to revision ${o.updateRevision}` : `the end of the rollout to revision ${o.updateRevision}`;
  const ask = `waiting for approval: sts-pilot approve ${o.name} -n ${o.namespace} (${what}; or annotate ${APPROVE_ANNOTATION}=${wanted})`;
  if (o.approval === undefined || o.approval === '') return { approved: false, reason: ask };
  const shown = o.approval.length > 80 ? `${o.approval.slice(0, 80)}…` : o.approval;
  return { approved: false, reason: `${APPROVE_ANNOTATION}=${shown} is for another step; ${ask}` };
}

export const manualHook = defineHook({
  name: MANUAL_HOOK,
  description: 'a person approves each step and each removal: sts-pilot approve NAME (annotation manual.sts-pilot.io/approve=<pod>@<revision>, remove:<pod>@<uid>)',
  options: Options,
  objects: 'cached',
  async podUpdateTransition(_prev, next, ctx) {
    const sts: V1StatefulSet = ctx.statefulSet;
    const d = decide({
      namespace: sts.metadata?.namespace ?? 'default',
      name: sts.metadata?.name ?? '',
      updateRevision: sts.status?.updateRevision,
      next: next?.metadata?.name ?? null,
      approval: ctx.options[APPROVE_OPTION],
    });
    if (!d.approved) throw new HookNotReady(d.reason);
  },
  async podRemoval(pod, ctx) {
    const sts: V1StatefulSet = ctx.statefulSet;
    const name = pod.metadata?.name ?? '';
    const wanted = removalApprovalValue(name, pod.metadata?.uid ?? '');
    if (ctx.options[APPROVE_OPTION] === wanted) return;
    const ns = sts.metadata?.namespace ?? 'default';
    throw new HookNotReady(
      `waiting for approval to remove pod ${name} (scale-down to ${ctx.requestedReplicas}): sts-pilot approve ${sts.metadata?.name ?? ''} -n ${ns} (or annotate ${APPROVE_ANNOTATION}=${wanted})`,
    );
  },
  // Nothing was prepared for a removal: a person's approval is all it took.
  async podRemoved() {},
});
