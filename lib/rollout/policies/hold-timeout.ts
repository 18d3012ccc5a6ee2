import { z } from 'zod';
import { formatDuration, formatSeconds, parseDuration } from './duration.ts';
import type { Verdict } from './types.ts';

/** `sts-pilot.io/hold-timeout`: a minute to 30 days. */
export const parseHoldTimeout = (raw: string): ReturnType<typeof parseDuration> => parseDuration(raw, { min: 60, max: 30 * 86_400 });

export const OnHoldTimeout = z.enum(['pause', 'keep-waiting']);
export type OnHoldTimeout = z.infer<typeof OnHoldTimeout>;

/**
 * Since when the current step has waited: what the controller remembers
 * (`memory`: since it first saw this step waiting, or since a maintenance
 * window last held it); without a memory (a restart), from the step sts-pilot
 * took last, recorded in the status annotation, while the rollout waits right
 * after it; else undefined. A restart never makes a timeout come earlier.
 */
export function heldSinceOf(
  sts: { stepSince?: number | undefined; mark?: { revision: string; partition: number } | undefined; updateRevision: string | undefined; partition: number | undefined; strategy: string },
  memory: number | undefined,
): number | undefined {
  const afterOurStep =
    sts.stepSince !== undefined && sts.mark !== undefined && sts.mark.revision === sts.updateRevision && (sts.strategy === 'OnDelete' || sts.mark.partition === sts.partition);
  if (memory !== undefined) return memory;
  return afterOurStep ? sts.stepSince : undefined;
}

/**
 * A step held longer than the timeout pauses the StatefulSet (or, with
 * keep-waiting, is only reported overdue). `heldSince` is kept in memory by the
 * controller, so after a restart it starts again: a timeout can come later than
 * configured, never earlier. Pure.
 */
export function checkHoldTimeout(seconds: number, onTimeout: OnHoldTimeout, heldSince: number | undefined, now: number): Verdict {
  const cfg = `hold-timeout ${formatSeconds(seconds)}, then ${onTimeout}`;
  if (heldSince === undefined) return { policy: 'hold-timeout', says: 'go', text: `${cfg}: no step waiting` };
  const held = Math.max(0, now - heldSince);
  if (held < seconds * 1000) return { policy: 'hold-timeout', says: 'go', text: `${cfg}: held ${formatDuration(held)} of ${formatSeconds(seconds)}` };
  const what = `this step has been held ${formatDuration(held)}, longer than hold-timeout ${formatSeconds(seconds)}`;
  if (onTimeout === 'keep-waiting') return { policy: 'hold-timeout', says: 'overdue', text: `${what}; on-hold-timeout is keep-waiting` };
  return { policy: 'hold-timeout', says: 'pause', text: `${what}; pausing (on-hold-timeout: pause)`, event: 'HoldTimeout' };
}
