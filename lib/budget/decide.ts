import type { BudgetHolder } from './record.ts';

// Pure rules of the disruption budget: when a holder's slot is free again, and
// whether one more fits. The facts come from the controller's caches.

/** A holder whose StatefulSet has not recorded its step yet is given this long before it counts as never taken. */
export const UNCLAIMED_GRACE_MS = 60_000;

/** What the caches say about one holder. */
export interface HolderFacts {
  holder: BudgetHolder;
  /** The StatefulSet exists and carries the subscribe label. */
  subscribed: boolean;
  /** Its status annotation names the holder's pod uid (the rollout mark, or the removal record). */
  claimed: boolean;
  /** The pod of that name now, if any. */
  pod?: { uid: string; ready: boolean; revision: string | undefined; terminating: boolean } | undefined;
  now: number;
}

export type Release = { release: true; why: string; gone: boolean } | { release: false; back: boolean; why: string };

/**
 * Is the slot free again? Gone holders (StatefulSet deleted or unsubscribed; a
 * step never taken) are released at once, with an Event. A step is over when
 * the pod of that name is a new pod and Ready (at whatever revision: a rollback
 * may have changed it); a removal when the pod is gone. `back` asks the caller for the application's
 * own word (the hook's podRejoined) before it releases.
 */
export function judgeHolder(f: HolderFacts): Release {
  const h = f.holder;
  if (!f.subscribed) return { release: true, gone: true, why: `${h.statefulSet} is no longer managed (deleted or unsubscribed)` };
  const age = f.now - Date.parse(h.at);
  if (!f.claimed && !(age < UNCLAIMED_GRACE_MS)) {
    const moved = f.pod === undefined || f.pod.uid !== h.uid;
    // The StatefulSet moved on (its mark names a later pod) after the pod came back: nothing is away.
    if (!moved) return { release: true, gone: true, why: `the step of ${h.pod} it was taken for was never taken` };
  }
  if (h.kind === 'removal') {
    if (f.pod && f.pod.uid === h.uid) return { release: false, back: false, why: `${h.pod} is being removed` };
    return { release: false, back: true, why: `${h.pod} was removed` };
  }
  if (!f.pod || f.pod.uid === h.uid || f.pod.terminating) return { release: false, back: false, why: `${h.pod} is restarting` };
  if (!f.pod.ready) return { release: false, back: false, why: `${h.pod} is back but not Ready` };
  // Back at another revision (the template was rolled back while it restarted) is back all the same:
  // the slot bounds what is away, and waiting for a revision that will never come would hold the cluster for ever.
  const other = h.revision !== undefined && f.pod.revision !== h.revision ? ` (at ${f.pod.revision ?? 'no revision'}, not ${h.revision})` : '';
  return { release: false, back: true, why: `${h.pod} is back and Ready${other}` };
}

/** The same pod of the same StatefulSet: the same incarnation (asked again after a restart), or the pod that replaced it. */
export const samePod = (h: BudgetHolder, self: { statefulSet: string; uid: string; pod?: string | undefined }): boolean =>
  h.statefulSet === self.statefulSet && (h.uid === self.uid || (self.pod !== undefined && h.pod === self.pod));

/**
 * Whether one more holder fits: the smallest budget among the holders and the
 * newcomer counts. A holder for the very pod asked about is the newcomer
 * itself, not another: the same pod asked again after a restart, or the pod
 * that replaced it (a broken release's pod, replaced in a rollback, is already
 * away: replacing it again takes nothing more away).
 */
export function fits(holders: readonly BudgetHolder[], limit: number, self: { statefulSet: string; uid: string; pod?: string | undefined }): { ok: true } | { ok: false; why: string } {
  const others = holders.filter((h) => !samePod(h, self));
  const min = Math.min(limit, ...others.map((h) => h.limit));
  if (others.length < min) return { ok: true };
  const names = others.map((h) => `${h.pod} of ${h.statefulSet} (${h.kind === 'removal' ? 'leaving' : 'restarting'} since ${h.at})`);
  return { ok: false, why: `${names.length === 1 ? names[0] : names.join(', ')} ${names.length === 1 ? 'holds' : 'hold'} the disruption budget (${min})` };
}

/**
 * Whether a hook may be asked about `self` (admission, before the call): as `fits`, except that a
 * holder for the pod this StatefulSet moved last (`self.prev`) does not count. That call is what
 * finishes the holder's step (the elasticsearch restart strategy re-enables replica allocation in
 * it, and until then the holder cannot be back): gating it on the slot would hold both for ever.
 * Taking a slot still needs `fits`, so the approval waits until the holder is released.
 */
export function admits(holders: readonly BudgetHolder[], limit: number, self: { statefulSet: string; uid: string; pod?: string | undefined; prev?: string | undefined }): { ok: true } | { ok: false; why: string } {
  const finishing = (h: BudgetHolder): boolean => self.prev !== undefined && h.kind === 'step' && h.statefulSet === self.statefulSet && h.pod === self.prev;
  return fits(holders.filter((h) => !finishing(h)), limit, self);
}
