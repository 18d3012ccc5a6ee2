import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { hookConfigOf, parseHookOptions, type RolloutHook } from '../hook.ts';
import { type Action, plan } from '../rollout/planner.ts';
import { podView, type PodView, type Snapshot, statefulSetView } from '../rollout/snapshot.ts';

/** One managed StatefulSet as the CLI read it: the object, its pods, and whether its hook is usable. */
export interface StatusItem {
  sts: V1StatefulSet;
  /** The pods it owns (see ownedPods). */
  pods: readonly V1Pod[];
  /** Why the controller could not call the hook (unknown name, invalid options), as it would say it. */
  hookProblem: string | undefined;
}

/** The pods whose controlling owner is this StatefulSet: the same filter the controller uses. */
export function ownedPods(sts: V1StatefulSet, pods: readonly V1Pod[]): V1Pod[] {
  const uid = sts.metadata?.uid;
  return pods.filter((p) => p.metadata?.ownerReferences?.some((r) => r.controller && r.uid === uid));
}

/**
 * The controller's own check, repeated here so the CLI predicts exactly what it
 * would do: an unknown hook or invalid options hold the rollout (planner rule 7).
 */
export function hookProblemOf(registry: ReadonlyMap<string, RolloutHook>, sts: V1StatefulSet, labelKey: string): string | undefined {
  const name = sts.metadata?.labels?.[labelKey] ?? '';
  const hook = registry.get(name);
  if (!hook) return `unknown hook ${JSON.stringify(name.slice(0, 63))} in label ${labelKey}; known hooks: ${[...registry.keys()].join(', ')}`;
  const parsed = parseHookOptions(hook, sts.metadata?.annotations);
  return parsed.ok ? undefined : parsed.error;
}

/**
 * The planner's snapshot of what the CLI read. The controller's in-memory hook
 * approval is not visible from outside, so `approval` is always empty: the plan
 * then says which step the hook is (or will be) asked about, never "patch now".
 */
export function snapshotOf(item: StatusItem, now: number): Snapshot {
  const sts = statefulSetView(item.sts);
  return {
    sts,
    pods: item.pods.map((p) => podView(p, sts.name, sts.ordinalsStart)).filter((p): p is PodView => p !== undefined),
    now,
    approval: undefined,
    hookProblem: item.hookProblem,
    hookConfig: hookConfigOf('', item.sts.metadata?.annotations),
    // Only a hook with podUpdateOrder leaves an order in the status annotation.
    hookOrders: sts.order !== undefined,
  };
}

export interface Planned {
  snapshot: Snapshot;
  action: Action;
}

export function planned(item: StatusItem, now: number): Planned {
  const snapshot = snapshotOf(item, now);
  return { snapshot, action: plan(snapshot) };
}

/** The step a hook is being asked about, if one is: what `approve` approves. */
export type PendingStep =
  | { ok: true; next: PodView | null; revision: string; hook: string; message: string }
  | { ok: false; reason: string };

export function pendingStep(item: StatusItem, labelKey: string, now: number): PendingStep {
  const { snapshot, action } = planned(item, now);
  if (action.kind !== 'callHook') {
    const why = action.kind === 'hold' || action.kind === 'pause' ? action.reason : action.message;
    return { ok: false, reason: why };
  }
  return {
    ok: true,
    next: action.next,
    revision: snapshot.sts.updateRevision ?? '',
    hook: item.sts.metadata?.labels?.[labelKey] ?? '',
    message: action.message,
  };
}
