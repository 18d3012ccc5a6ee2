import { REQUESTED_REPLICAS_ANNOTATION } from '../names.ts';
import { type Action, approved, hold, indexPods, notAvailable } from './planner.ts';
import type { Snapshot } from './snapshot.ts';
import type { RemovalRecord } from './status.ts';

// Scale-down, one approved pod at a time (docs/rollout.md, "Scale-down"). The
// admission policy keeps spec.replicas where it was and records the size a
// person asked for in sts-pilot.io/requested-replicas; here the controller
// lowers spec.replicas by one after the hook approved the removal of the
// highest pod, waits for it to be gone, tells the hook, and goes on.

export type RequestedReplicas = { ok: true; value: number | undefined } | { ok: false; error: string };

/** The requested size from its annotation: absent, a whole number, or why not. */
export function parseRequested(raw: string | undefined): RequestedReplicas {
  if (raw === undefined) return { ok: true, value: undefined };
  if (/^(0|[1-9][0-9]{0,8})$/.test(raw)) return { ok: true, value: Number(raw) };
  const shown = JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);
  return { ok: false, error: `annotation ${REQUESTED_REPLICAS_ANNOTATION} must be a whole number of replicas, got ${shown}` };
}

/**
 * What an approval of a removal is valid for: this pod as the hook saw it, at
 * this place, the spec as it is (replicas), and the hook's configuration.
 */
function removalKey(s: Snapshot, call: string, uid: string, resourceVersion: string, index: number): string {
  return [call, uid, resourceVersion, index, s.sts.generation, s.hookConfig].join('|');
}

/**
 * The scale-down's next action, or undefined when none is pending (the rollout
 * planner goes on). Runs after the guard and after the StatefulSet controller
 * has observed the spec. A removal goes before the next rollout step (a pod about
 * to leave is not worth moving), but never while another pod is away: every pod
 * but the leaving one must be Ready, as for a step.
 */
export function planScaleDown(s: Snapshot, upd: string): Action | undefined {
  const { sts } = s;
  const n = sts.replicas;
  const rec = sts.removal;
  const req = parseRequested(sts.requestedReplicas);
  const pods = indexPods(s, upd);

  if (rec) {
    const pod = s.pods.find((p) => p.uid === rec.uid);
    if (rec.state === 'approved') {
      // Scaled back up after the approval, before the StatefulSet controller deleted it: it stays.
      if (pod && !pod.terminating && rec.index < n) return removedCall(s, rec, 'withdrawn');
      if (pod) return hold('Rolling', `waiting for pod ${rec.pod} to be removed (scale-down to ${n})`);
      return removedCall(s, rec, 'removed');
    }
    const stillLeaving = req.ok && req.value !== undefined && req.value < n && rec.index === n - 1 && pod !== undefined && !pod.terminating;
    if (!stillLeaving) return removedCall(s, rec, 'withdrawn');
  }

  if (!req.ok) {
    return hold('Held', `${req.error}: fix it, or remove it to cancel the scale-down (kubectl annotate statefulset ${sts.name} -n ${sts.namespace} ${REQUESTED_REPLICAS_ANNOTATION}-)`);
  }
  const want = req.value;
  if (want === undefined) return undefined;
  if (want >= n) {
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'request',
      partition: undefined,
      mark: undefined,
      clearRequest: true,
      message: want === n ? `scale-down to ${want} done` : `the requested size ${want} is not below replicas (${n}): nothing to remove; clearing the request`,
    };
  }
  if (want === 0) {
    return hold(
      'Held',
      `scale-down to 0 requested: that removes every pod of the application, which no hook can approve pod by pod. ` +
        `To do it anyway: sts-pilot pause ${sts.name} -n ${sts.namespace}, then scale to 0; to cancel: scale back to ${n}`,
    );
  }
  if (s.hookProblem) return hold('Held', s.hookProblem);
  const i = n - 1;
  const wait = notAvailable(s, pods, i);
  if (wait) return hold('Rolling', `scale-down to ${want}: ${wait.reason}`, wait.retryAfterMs);
  const pod = pods.byIndex.get(i);
  if (!pod) return hold('Rolling', `scale-down to ${want}: waiting for pod ${pods.name(i)} to be created`);
  const leaving = { pod: pod.name, uid: pod.uid, index: i };
  if (!rec || rec.uid !== pod.uid) {
    // Recorded before the hook may prepare anything: a withdrawal, even after a restart, gets its clean-up call.
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'removal',
      partition: undefined,
      mark: undefined,
      removal: { ...leaving, state: 'asked' },
      message: `scale-down ${n} -> ${want} requested: asking the hook before removing pod ${pod.name}`,
    };
  }
  const key = removalKey(s, 'remove', pod.uid, pod.resourceVersion, i);
  if (approved(s, key)) {
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'remove',
      partition: undefined,
      mark: undefined,
      replicas: i,
      removal: { ...leaving, state: 'approved' },
      clearRequest: want === i,
      message: `hook approved the removal of pod ${pod.name}; replicas ${n} -> ${i}${want < i ? ` (requested ${want})` : ''}`,
    };
  }
  return {
    kind: 'callRemoval',
    phase: 'Rolling',
    key,
    call: 'removal',
    pod: leaving,
    podReady: pod.ready,
    requested: want,
    message: `asking the hook to approve the removal of pod ${pod.name} (scale-down ${n} -> ${want})${pod.ready ? '' : ' (it is not Ready)'}`,
  };
}

/** The hook is told the pod is gone, or that its removal was withdrawn; its approval clears the record. */
function removedCall(s: Snapshot, rec: RemovalRecord, outcome: 'removed' | 'withdrawn'): Action {
  const key = removalKey(s, outcome, rec.uid, '', rec.index);
  const what = outcome === 'removed' ? `pod ${rec.pod} is gone` : `the removal of pod ${rec.pod} was withdrawn`;
  if (approved(s, key)) {
    return {
      kind: 'patch',
      phase: 'Rolling',
      why: 'removed',
      partition: undefined,
      mark: undefined,
      removal: null,
      message: `${what}; the hook has cleaned up after it`,
    };
  }
  const pod = s.pods.find((p) => p.uid === rec.uid);
  const req = parseRequested(s.sts.requestedReplicas);
  return {
    kind: 'callRemoval',
    phase: 'Rolling',
    key,
    call: outcome,
    pod: { pod: rec.pod, uid: rec.uid, index: rec.index },
    podReady: pod?.ready ?? false,
    requested: req.ok && req.value !== undefined ? req.value : s.sts.replicas,
    message: `${what}: telling the hook, so that it can clean up`,
  };
}
