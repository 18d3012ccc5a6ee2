import type { PodView } from '../snapshot.ts';
import { formatDuration, formatSeconds, parseDuration } from './duration.ts';
import type { Verdict } from './types.ts';

/** `sts-pilot.io/step-delay`: up to a week. */
export const parseStepDelay = (raw: string): ReturnType<typeof parseDuration> => parseDuration(raw, { min: 0, max: 7 * 86_400 });

/**
 * Pacing: the next step waits until the pod that became Ready at the update
 * revision last has been Ready for minReadySeconds + the delay. Pure.
 */
export function checkStepDelay(seconds: number, o: { pods: readonly PodView[]; upd: string; minReadySeconds: number; now: number }): Verdict {
  let last: PodView | undefined;
  for (const p of o.pods) {
    if (p.revision !== o.upd || !p.ready || p.terminating || p.readySince === undefined) continue;
    if (!last || (p.readySince ?? 0) > (last.readySince ?? 0)) last = p;
  }
  const cfg = `step-delay ${formatSeconds(seconds)}`;
  if (!last || last.readySince === undefined) return { policy: 'step-delay', says: 'go', text: `${cfg}: no pod is Ready at ${o.upd} yet` };
  const until = last.readySince + (o.minReadySeconds + seconds) * 1000;
  if (o.now < until) {
    const extra = o.minReadySeconds > 0 ? ` (after minReadySeconds ${o.minReadySeconds}s)` : '';
    return {
      policy: 'step-delay',
      says: 'hold',
      text: `${cfg}${extra}: pod ${last.name} became Ready at ${o.upd} ${formatDuration(o.now - last.readySince)} ago; next step in ${formatDuration(until - o.now + 999)}`,
      retryAfterMs: until - o.now,
    };
  }
  return { policy: 'step-delay', says: 'go', text: `${cfg}: passed` };
}
