import type { V1ControllerRevision, V1StatefulSet } from '@kubernetes/client-node';
import type { JsonPatchOp } from '../kube/guarded-patch.ts';
import { templateFingerprint } from '../rollout/snapshot.ts';
import { CliError } from './kube.ts';

export interface UndoPlan {
  /** The one write: the old template and a held partition, tested against what was read. */
  patch: JsonPatchOp[];
  revision: number;
  revisionName: string;
  /** The partition written with it (undefined for OnDelete, which has none). */
  partition: number | undefined;
}

/** The ControllerRevisions the StatefulSet controller keeps for this StatefulSet, oldest first. */
export function historyOf(sts: V1StatefulSet, revisions: readonly V1ControllerRevision[]): V1ControllerRevision[] {
  const uid = sts.metadata?.uid;
  return revisions
    .filter((r) => r.metadata?.ownerReferences?.some((o) => o.controller && o.uid === uid))
    .sort((a, b) => a.revision - b.revision);
}

/** A revision's pod template: its data is a strategic merge patch that replaces spec.template. */
function templateOf(r: V1ControllerRevision): Record<string, unknown> | undefined {
  const data = r.data as { spec?: { template?: Record<string, unknown> } } | undefined;
  const t = data?.spec?.template;
  if (!t || typeof t !== 'object') return undefined;
  const { $patch: _replace, ...template } = t;
  return template;
}

/**
 * What `sts-pilot undo` writes: the template of an earlier revision (the one
 * before the newest, as `kubectl rollout undo`, or --to-revision), with the
 * partition held at replicas in the same write. Nothing moves by itself then:
 * sts-pilot takes every pod back through the hook, the highest first, even on a
 * cluster without the admission policies. Pure; refusals throw CliError.
 */
export function undoPlan(sts: V1StatefulSet, revisions: readonly V1ControllerRevision[], toRevision?: number): UndoPlan {
  const md = sts.metadata ?? {};
  const id = `${md.namespace ?? 'default'}/${md.name ?? ''}`;
  const history = historyOf(sts, revisions);
  const numbers = history.map((r) => r.revision).join(', ');
  let target: V1ControllerRevision | undefined;
  if (toRevision !== undefined) {
    target = history.find((r) => r.revision === toRevision);
    if (!target) throw new CliError(`${id} has no revision ${toRevision}; its revisions: ${numbers || 'none'}`);
  } else {
    if (history.length < 2) throw new CliError(`${id} has no earlier revision to go back to (revisions: ${numbers || 'none'})`);
    target = history.at(-2) as V1ControllerRevision;
  }
  const template = templateOf(target);
  if (!template) throw new CliError(`revision ${target.revision} of ${id} holds no pod template`);
  if (templateFingerprint(template) === templateFingerprint(sts.spec?.template)) {
    throw new CliError(`${id} already runs the template of revision ${target.revision} (${target.metadata?.name ?? '?'}); nothing to undo`);
  }
  if (!md.uid || !md.resourceVersion) throw new CliError(`${id} was read without uid or resourceVersion`);
  const patch: JsonPatchOp[] = [
    { op: 'test', path: '/metadata/uid', value: md.uid },
    { op: 'test', path: '/metadata/resourceVersion', value: md.resourceVersion },
    { op: 'replace', path: '/spec/template', value: template },
  ];
  let partition: number | undefined;
  const strategy = sts.spec?.updateStrategy;
  if ((strategy?.type ?? 'RollingUpdate') === 'RollingUpdate') {
    const n = sts.spec?.replicas ?? 1;
    partition = Math.max(n, strategy?.rollingUpdate?.partition ?? 0);
    if (strategy?.rollingUpdate) patch.push({ op: 'add', path: '/spec/updateStrategy/rollingUpdate/partition', value: partition });
    else if (strategy) patch.push({ op: 'add', path: '/spec/updateStrategy/rollingUpdate', value: { partition } });
    else patch.push({ op: 'add', path: '/spec/updateStrategy', value: { type: 'RollingUpdate', rollingUpdate: { partition } } });
  }
  return { patch, revision: target.revision, revisionName: target.metadata?.name ?? '', partition };
}
