import type { V1StatefulSet } from '@kubernetes/client-node';
import { PAUSED_ANNOTATION } from '../names.ts';

export interface PauseChange {
  /** Merge patch body; undefined when nothing needs writing. */
  patch: Record<string, unknown> | undefined;
  message: string;
}

/**
 * What `pause`/`resume` write and say. Pure. A value other than "true" also holds
 * the rollout (planner rule 1), so resume removes whatever is there, and says so.
 */
export function pauseChange(sts: V1StatefulSet, pause: boolean, labelKey: string): PauseChange {
  const md = sts.metadata ?? {};
  const ns = md.namespace ?? 'default';
  const id = `${ns}/${md.name ?? ''}`;
  const current = md.annotations?.[PAUSED_ANNOTATION];
  const unmanaged = md.labels?.[labelKey] === undefined ? ` (note: it has no label ${labelKey}, so sts-pilot does not manage it)` : '';
  const guard = { resourceVersion: md.resourceVersion };
  if (pause) {
    if (current === 'true') return { patch: undefined, message: `${id} was already paused; nothing changed${unmanaged}` };
    return {
      patch: { metadata: { ...guard, annotations: { [PAUSED_ANNOTATION]: 'true' } } },
      message:
        `paused ${id}: set ${PAUSED_ANNOTATION}="true"; sts-pilot makes no hook call and no write until ` +
        `"sts-pilot resume ${md.name ?? ''} -n ${ns}" (a pod already approved still finishes its update)${unmanaged}`,
    };
  }
  if (current === undefined) return { patch: undefined, message: `${id} was not paused; nothing changed${unmanaged}` };
  return {
    patch: { metadata: { ...guard, annotations: { [PAUSED_ANNOTATION]: null } } },
    message: `resumed ${id}: removed ${PAUSED_ANNOTATION}=${JSON.stringify(current)}; sts-pilot manages its rollout again${unmanaged}`,
  };
}
