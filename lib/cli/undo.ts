import type { V1ControllerRevision, V1PodTemplateSpec, V1StatefulSet } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { PAUSED_ANNOTATION } from '../names.ts';

export type UndoPlan =
  | { ok: false; reason: string }
  | {
      ok: true;
      /** JSON Patch: a resourceVersion test, then the template and (RollingUpdate) the partition. */
      patch: Record<string, unknown>[];
      lines: string[];
    };

/** The pod template a StatefulSet ControllerRevision holds (`data.spec.template`, as kubectl rollout undo reads it). */
export function revisionTemplate(rev: V1ControllerRevision): V1PodTemplateSpec | undefined {
  const t = (rev.data as { spec?: { template?: Record<string, unknown> } } | undefined)?.spec?.template;
  if (!t || typeof t !== 'object') return undefined;
  const { $patch: _, ...template } = t;
  return template as V1PodTemplateSpec;
}

/**
 * `sts-pilot undo`: the safe rollback of docs/rollout.md in one guarded write.
 * The template goes back to the revision the rollout came from (or
 * --to-revision) and, for RollingUpdate, the partition goes to `replicas` in the
 * same write: no pod is above the partition, so the StatefulSet controller moves
 * none by itself, and every pod already updated goes back through the hook,
 * highest ordinal first. (`kubectl rollout undo` writes only the template: the
 * pods above the partition would be reverted at once, without the hook.) Pure.
 */
export function undoPlan(
  sts: V1StatefulSet,
  revisions: readonly V1ControllerRevision[],
  o: { labelKey: string; toRevision?: number },
): UndoPlan {
  const md = sts.metadata ?? {};
  const name = md.name ?? '';
  const ns = md.namespace ?? 'default';
  const id = `${ns}/${name}`;
  if (md.labels?.[o.labelKey] === undefined) {
    return { ok: false, reason: `${id} has no label ${o.labelKey}: sts-pilot does not manage it (kubectl rollout undo statefulset/${name} -n ${ns} rolls it back natively)` };
  }
  const owned = revisions
    .filter((r) => r.metadata?.ownerReferences?.some((ref) => ref.uid === md.uid && ref.controller))
    .sort((a, b) => a.revision - b.revision);
  const update = sts.status?.updateRevision;
  const current = sts.status?.currentRevision;
  const updateRev = owned.find((r) => r.metadata?.name === update);
  let target: V1ControllerRevision | undefined;
  if (o.toRevision !== undefined) {
    target = owned.find((r) => r.revision === o.toRevision);
    if (!target) return { ok: false, reason: `${id} has no revision ${o.toRevision}; it has ${owned.map((r) => r.revision).join(', ') || 'none'}` };
  } else if (current && update && current !== update) {
    // A rollout in progress: back to where it came from.
    target = owned.find((r) => r.metadata?.name === current);
    if (!target) return { ok: false, reason: `${id} is rolling from ${current}, but that ControllerRevision is gone; name one with --to-revision` };
  } else {
    const below = owned.filter((r) => r.revision < (updateRev?.revision ?? Number.MAX_SAFE_INTEGER));
    target = below.at(-1);
    if (!target) return { ok: false, reason: `${id} has no earlier revision to go back to` };
  }
  const template = revisionTemplate(target);
  if (!template) return { ok: false, reason: `ControllerRevision ${target.metadata?.name ?? ''} holds no pod template` };
  if (isDeepStrictEqual(template, sts.spec?.template)) {
    return { ok: false, reason: `${id} already has the template of revision ${target.revision} (${target.metadata?.name ?? ''}); nothing to undo` };
  }
  const replicas = sts.spec?.replicas ?? 1;
  const rolling = (sts.spec?.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate';
  const patch: Record<string, unknown>[] = [
    { op: 'test', path: '/metadata/resourceVersion', value: md.resourceVersion },
    { op: 'replace', path: '/spec/template', value: template },
  ];
  if (rolling) {
    patch.push(
      sts.spec?.updateStrategy?.rollingUpdate
        ? { op: 'add', path: '/spec/updateStrategy/rollingUpdate/partition', value: replicas }
        : { op: 'add', path: '/spec/updateStrategy', value: { type: 'RollingUpdate', rollingUpdate: { partition: replicas } } },
    );
  }
  const hook = md.labels[o.labelKey];
  const lines = [
    `${id}: rolling back to ${target.metadata?.name ?? ''} (revision ${target.revision})` +
      (rolling ? `; partition held at ${replicas} in the same write, so no pod moves until the ${hook} hook approves it` : ''),
    `  pods updated to ${update ?? 'the update revision'} go back one at a time through the hook; watch: sts-pilot status ${name} -n ${ns} --watch`,
  ];
  if (md.annotations?.[PAUSED_ANNOTATION] !== undefined) lines.push(`  note: ${id} is paused: nothing moves until "sts-pilot resume ${name} -n ${ns}"`);
  return { ok: true, patch, lines };
}
