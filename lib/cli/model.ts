import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { hookConfigOf, parseHookOptions, type RolloutHook } from '../hook.ts';
import { type Action, plan } from '../rollout/planner.ts';
import { POLICY_ANNOTATIONS, STATUS_ANNOTATION } from '../names.ts';
import { parseAfter, peerState } from '../rollout/policies/after.ts';
import { heldSinceOf } from '../rollout/policies/hold-timeout.ts';
import type { PeerView } from '../rollout/policies/types.ts';
import { podView, type PodView, type Snapshot, statefulSetView } from '../rollout/snapshot.ts';
import { parseStatusAnnotation } from '../rollout/status.ts';

/** Since when the controller has recorded the rollout waiting ("Rolling"), from the status annotation. */
function recordedHoldSince(sts: V1StatefulSet): number | undefined {
  const parsed = parseStatusAnnotation(sts.metadata?.annotations?.[STATUS_ANNOTATION]);
  if (!parsed.ok || parsed.status.state !== 'Rolling' || parsed.status.since === undefined) return undefined;
  const t = Date.parse(parsed.status.since);
  return Number.isNaN(t) ? undefined : t;
}

/** One managed StatefulSet as the CLI read it: the object, its pods, and whether its hook is usable. */
export interface StatusItem {
  sts: V1StatefulSet;
  /** The pods it owns (see ownedPods). */
  pods: readonly V1Pod[];
  /** Why the controller could not call the hook (unknown name, invalid options), as it would say it. */
  hookProblem: string | undefined;
  /** The StatefulSets its `sts-pilot.io/after` reaches, when the CLI read them (see peersOf). */
  peers?: Record<string, PeerView | null>;
  /** Whether the admission gate is in force, when known; the CLI assumes it is (the controller checks). */
  gateEnforced?: boolean;
}

/**
 * The peers of one StatefulSet among those read (same namespace), as the
 * controller's reconciler sees them in its caches; undefined without `after`.
 */
export function peersOf(item: StatusItem, all: readonly StatusItem[]): Record<string, PeerView | null> | undefined {
  const ns = item.sts.metadata?.namespace;
  const raw = item.sts.metadata?.annotations?.[POLICY_ANNOTATIONS.after];
  if (raw === undefined) return undefined;
  const byName = new Map(all.filter((i) => i.sts.metadata?.namespace === ns).map((i) => [i.sts.metadata?.name ?? '', i]));
  const peers: Record<string, PeerView | null> = {};
  const first = parseAfter(raw);
  const todo = first.ok ? [...first.value] : [];
  while (todo.length > 0 && Object.keys(peers).length < 50) {
    const name = todo.shift() as string;
    if (name in peers || name === item.sts.metadata?.name) continue;
    const peer = byName.get(name);
    if (!peer) {
      peers[name] = null;
      continue;
    }
    const view = statefulSetView(peer.sts);
    const after = peer.sts.metadata?.annotations?.[POLICY_ANNOTATIONS.after];
    peers[name] = peerState(view, peer.pods.map((p) => podView(p, name, view.ordinalsStart)).filter((p): p is PodView => p !== undefined), after);
    const next = after === undefined ? undefined : parseAfter(after);
    if (next?.ok) todo.push(...next.value);
  }
  return peers;
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
    // The controller's memory is not visible from outside: what its status annotation records stands in.
    policy: {
      peers: item.peers ?? {},
      heldSince: heldSinceOf(sts, recordedHoldSince(item.sts)),
      hookErrors: sts.hookErrors ? { count: sts.hookErrors, last: '(see the HookHeld Events)' } : undefined,
      gateEnforced: item.gateEnforced ?? true,
    },
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
  | { ok: true; next: PodView | null; revision: string; hook: string; message: string; removal?: { pod: string; uid: string } }
  | { ok: false; reason: string };

export function pendingStep(item: StatusItem, labelKey: string, now: number): PendingStep {
  const { snapshot, action } = planned(item, now);
  if (action.kind === 'callRemoval' && action.call === 'removal') {
    const next = snapshot.pods.find((p) => p.uid === action.pod.uid) ?? null;
    return { ok: true, next, revision: snapshot.sts.updateRevision ?? '', hook: item.sts.metadata?.labels?.[labelKey] ?? '', message: action.message, removal: { pod: action.pod.pod, uid: action.pod.uid } };
  }
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
