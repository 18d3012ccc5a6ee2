import type { Verdict } from './types.ts';

/** `sts-pilot.io/halt-after-errors`: how many consecutive hook failures pause the rollout. */
export function parseHaltAfter(raw: string): { ok: true; value: number } | { ok: false; error: string } {
  const s = raw.trim();
  if (!/^[0-9]{1,3}$/.test(s) || Number(s) < 1 || Number(s) > 100) return { ok: false, error: `must be a whole number from 1 to 100, got ${JSON.stringify(raw.slice(0, 40))}` };
  return { ok: true, value: Number(s) };
}

/**
 * Automatic halt: a hook that fails (throws anything but HookNotReady, the hook
 * saying "not yet") N times in a row is broken, not careful. The count is kept
 * in memory by the controller: a restart starts it again (a halt comes later,
 * never earlier). Pure.
 */
export function checkHalt(limit: number, errors: { count: number; last: string } | undefined): Verdict {
  const count = errors?.count ?? 0;
  if (count < limit) return { policy: 'halt', says: 'go', text: `hook errors in a row: ${count} of ${limit}` };
  return {
    policy: 'halt',
    says: 'pause',
    text: `the hook failed ${count} times in a row (halt-after-errors ${limit}); last error: ${errors?.last ?? ''}`,
    event: 'HookErrorsHalt',
  };
}
