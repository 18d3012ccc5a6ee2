import type { AppsV1Api, V1StatefulSet } from '@kubernetes/client-node';
import { undoPlan } from '../cli/undo.ts';
import { listControllerRevisions } from '../kube/controller-revisions.ts';
import type { EventRecorder } from '../events.ts';
import { jsonPatchOptions } from '../kube/guarded-patch.ts';
import type { Logger } from '../log.ts';
import { FIELD_MANAGER } from '../names.ts';
import { CHECK_ANNOTATIONS } from './schema.ts';

const escapePointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * on-check-failure rollback: the template of the current revision (the one the
 * pods ran before this rollout) written back, with the partition held at
 * replicas, as `sts-pilot undo --to-revision` writes it: every moved pod then
 * goes back through the hook, the highest first. The write carries
 * sts-pilot.io/check-rollback {from, to}, so the steps back are not checked
 * (they return to a revision that ran before) and people can see why the
 * template changed. Guarded by uid and resourceVersion: any write in between
 * wins, and the next failed check decides again.
 */
export async function rollbackForCheck(apps: AppsV1Api, events: EventRecorder, stale: V1StatefulSet, reason: string, log: Logger): Promise<string> {
  const md = stale.metadata ?? {};
  const ns = md.namespace ?? '';
  const name = md.name ?? '';
  const sts = await apps.readNamespacedStatefulSet({ name, namespace: ns });
  if (sts.metadata?.uid !== md.uid) throw new Error('the StatefulSet is another object now');
  // The failure was judged on `stale`: act only while that is still the rollout, and only once for it.
  const failed = stale.status?.updateRevision ?? '';
  if (sts.status?.updateRevision !== failed || sts.metadata?.generation !== md.generation) return 'the StatefulSet changed since the check failed; not rolling back (the next step is checked afresh)';
  const from = sts.status?.updateRevision ?? '';
  const to = sts.status?.currentRevision ?? '';
  if (!from || !to || from === to) throw new Error(`no earlier revision to go back to (current ${to || '?'}, update ${from || '?'})`);
  const revisions = await listControllerRevisions(apps, ns);
  const target = revisions.find((r) => r.metadata?.name === to);
  if (!target) throw new Error(`ControllerRevision ${to} is gone`);
  const plan = undoPlan(sts, revisions, target.revision);
  const record = JSON.stringify({ from, to });
  const annotation = md.annotations || sts.metadata?.annotations ? [{ op: 'add' as const, path: `/metadata/annotations/${escapePointer(CHECK_ANNOTATIONS.rolledBack)}`, value: record }] : [{ op: 'add' as const, path: '/metadata/annotations', value: { [CHECK_ANNOTATIONS.rolledBack]: record } }];
  await apps.patchNamespacedStatefulSet({ name, namespace: ns, body: [...plan.patch, ...annotation], fieldManager: FIELD_MANAGER }, jsonPatchOptions());
  const text = `${reason}; rolling back to revision ${plan.revision} (${to}): each pod goes back through the hook`;
  log.warn({ from, to }, text);
  await events.emit(sts, 'Warning', 'MetricCheckRollback', text, { dedupe: false });
  return `rolled back from ${from} to ${to}`;
}
