import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level: the same value always gives the same text. */
function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined && x !== null) // absent and null mean the same to the API
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
}

/**
 * A short fingerprint of a StatefulSet's pod template. sts-pilot records the one
 * its partition was last set for, so a template change is seen on the very
 * first watch event, before the StatefulSet controller has observed it and
 * named its revision (planner rule "guard", docs/rollout.md).
 */
export function templateHash(template: unknown): string {
  return createHash('sha256').update(canonical(template ?? null)).digest('hex').slice(0, 16);
}
