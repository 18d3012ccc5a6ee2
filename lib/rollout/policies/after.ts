import type { PodView, StatefulSetView } from '../snapshot.ts';
import type { PeerView, Verdict } from './types.ts';

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `sts-pilot.io/after: data-hot,data-warm`: StatefulSet names of the same namespace. */
export function parseAfter(raw: string): { ok: true; value: string[] } | { ok: false; error: string } {
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) return { ok: false, error: 'names no StatefulSet: write names separated by commas, e.g. "data-hot,data-warm"' };
  if (names.length > 20) return { ok: false, error: 'names more than 20 StatefulSets' };
  const bad = names.find((n) => !NAME.test(n));
  if (bad !== undefined) return { ok: false, error: `${JSON.stringify(bad.slice(0, 70))} is not a StatefulSet name` };
  return { ok: true, value: [...new Set(names)] };
}

/**
 * Is a peer done: no rollout in progress and none pending? Its spec observed,
 * every pod at the update revision and Ready, and no rollout mark left (a
 * rollout sts-pilot stepped through still owes its hook the final call). Pure.
 */
export function peerState(sts: StatefulSetView, pods: readonly PodView[], after: string | undefined): PeerView {
  const base = { after };
  if (sts.observedGeneration === undefined || sts.observedGeneration < sts.generation || !sts.updateRevision) {
    return { ...base, settled: false, why: 'the StatefulSet controller has not observed its latest spec yet' };
  }
  const upd = sts.updateRevision;
  const inside = pods.filter((p) => p.index >= 0 && p.index < sts.replicas);
  const stale = inside.filter((p) => p.revision !== upd).length;
  if (stale > 0) return { ...base, settled: false, why: `${stale} of ${sts.replicas} pods are not at its update revision ${upd}` };
  if (inside.length < sts.replicas) return { ...base, settled: false, why: `${inside.length} of ${sts.replicas} pods exist` };
  const unready = inside.find((p) => !p.ready || p.terminating);
  if (unready) return { ...base, settled: false, why: `pod ${unready.name} is not Ready` };
  if (sts.mark && sts.mark.revision === upd) return { ...base, settled: false, why: 'its rollout is finishing (the final hook call)' };
  return { ...base, settled: true, why: `all ${sts.replicas} pods run ${upd}` };
}

/** A cycle through `after` that leads back to `self`, as "a -> b -> a", if there is one. */
export function findCycle(self: string, first: readonly string[], peers: Readonly<Record<string, PeerView | null>>): string | undefined {
  const seen = new Set<string>();
  const walk = (name: string, path: string[]): string | undefined => {
    if (name === self) return [...path, name].join(' -> ');
    if (seen.has(name)) return undefined;
    seen.add(name);
    const raw = peers[name]?.after;
    const next = raw === undefined ? undefined : parseAfter(raw);
    for (const n of next?.ok ? next.value : []) {
      const c = walk(n, [...path, name]);
      if (c) return c;
    }
    return undefined;
  };
  for (const n of first) {
    const c = walk(n, [self]);
    if (c) return c;
  }
  return undefined;
}

/** Poll peers: their changes queue only themselves. */
export const AFTER_RETRY_MS = 5_000;

/** Ordering across StatefulSets: a step only once every named peer is settled. Pure. */
export function checkAfter(self: string, names: readonly string[], peers: Readonly<Record<string, PeerView | null>>): Verdict {
  if (names.includes(self)) return { policy: 'after', says: 'invalid', text: `names this StatefulSet itself (${self})` };
  const cycle = findCycle(self, names, peers);
  if (cycle) return { policy: 'after', says: 'invalid', text: `the StatefulSets wait for each other in a cycle (${cycle}): none could ever step` };
  for (const n of names) {
    const p = peers[n];
    if (p === undefined || p === null) {
      return { policy: 'after', says: 'hold', text: `waiting for StatefulSet ${n}: no StatefulSet of that name is managed by sts-pilot in this namespace`, retryAfterMs: AFTER_RETRY_MS };
    }
    if (!p.settled) return { policy: 'after', says: 'hold', text: `waiting for StatefulSet ${n}: ${p.why}`, retryAfterMs: AFTER_RETRY_MS };
  }
  return { policy: 'after', says: 'go', text: `after ${names.join(', ')}: all settled` };
}
