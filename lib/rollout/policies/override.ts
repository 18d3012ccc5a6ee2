import { z } from 'zod';
import type { PodView } from '../snapshot.ts';
import type { AppliedOverride, Verdict } from './types.ts';

/**
 * `sts-pilot.io/override`, written by `sts-pilot approve NAME --override --reason …`:
 * one exact pod (name and uid) at one exact update revision, with why. The uid
 * makes it single-use by construction: the pod it names is replaced by a pod
 * with a new uid when the step is taken, so it can never match again, also
 * after a restart.
 */
export const OverrideSchema = z.strictObject({
  pod: z.string().min(1).max(253),
  uid: z.string().min(1).max(64),
  revision: z.string().min(1).max(253),
  reason: z.string().trim().min(3, 'must say why (at least 3 characters)').max(1024),
  at: z.iso.datetime(),
});
export type Override = z.infer<typeof OverrideSchema>;

export function parseOverride(raw: string): { ok: true; value: Override } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    return { ok: false, error: `is not JSON: ${(e as Error).message}` };
  }
  const r = OverrideSchema.safeParse(json);
  return r.success ? { ok: true, value: r.data } : { ok: false, error: z.prettifyError(r.error).replace(/\n/g, '; ') };
}

/**
 * Does the override stand in for the hook's approval of this step? Only for the
 * very pod (uid) at the very revision, only with a user the API server stamped
 * (the admission gate in force), and only once (`applied`: the status annotation's
 * record; the uid already makes a replay impossible). Pure.
 */
export function checkOverride(
  o: Override,
  x: { by: string | undefined; gateEnforced: boolean; next: PodView | undefined; upd: string; pods: readonly PodView[]; applied: AppliedOverride | undefined },
): Verdict {
  const what = `override of pod ${o.pod} at ${o.revision}`;
  if (x.applied && x.applied.uid === o.uid && x.applied.revision === o.revision) {
    const when = x.applied.appliedAt ? ` at ${x.applied.appliedAt}` : '';
    return { policy: 'override', says: 'go', text: `${what} was applied${when}, set by ${x.applied.by}: ${x.applied.reason}; it is never used again` };
  }
  if (o.revision !== x.upd) return { policy: 'override', says: 'go', text: `${what} is for another revision (the update revision is ${x.upd}): ignored` };
  const pod = x.pods.find((p) => p.name === o.pod);
  if (!pod || pod.uid !== o.uid) return { policy: 'override', says: 'go', text: `${what} names a pod that is gone or was replaced (uid ${o.uid}): ignored` };
  if (pod.revision === x.upd) return { policy: 'override', says: 'go', text: `${what}: the pod already runs it; ignored` };
  if (!x.gateEnforced) {
    return { policy: 'override', says: 'hold', text: `${what} refused: the admission gate is not in force, so who set it cannot be trusted; remove the annotation or install manifests/admission-gate.yaml` };
  }
  if (!x.by) return { policy: 'override', says: 'hold', text: `${what} refused: no user was stamped in sts-pilot.io/override-by by the admission policy` };
  if (!x.next || x.next.uid !== o.uid) {
    return { policy: 'override', says: 'go', text: `${what} by ${x.by} is pending: the next pod is ${x.next?.name ?? 'none'}, not ${o.pod}` };
  }
  const override: AppliedOverride = { pod: o.pod, uid: o.uid, revision: o.revision, reason: o.reason, by: x.by, at: o.at };
  return { policy: 'override', says: 'override', text: `${what} by ${x.by}: ${o.reason}`, override };
}
