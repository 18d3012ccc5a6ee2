import type { Pilot } from './schema.ts';

/**
 * How a hook reads Pilots: from the controller's cache, never the API, so a
 * hook call costs no request. Scoped to the StatefulSet's namespace.
 */
export interface PilotReader {
  /** The Pilot of a pod (same name as the pod), or undefined when there is none. */
  get(podName: string): Pilot | undefined;
  /**
   * Every Pilot of the namespace that parses (a hook whose application spans
   * several StatefulSets, e.g. one Cassandra ring with one per rack, finds its
   * nodes' Pilots by what they report rather than by pod name). Optional: a
   * reader without it offers no Pilots beyond `get`.
   */
  list?(): Pilot[];
  /**
   * Whether the status heartbeat is at most maxAgeMs old. A Pilot without a
   * status or heartbeat is not fresh; nor is one whose heartbeat lies further in
   * the future than maxAgeMs (a clock that far off cannot be trusted either).
   */
  isFresh(p: Pilot, maxAgeMs: number): boolean;
}

/** Milliseconds since the Pilot's heartbeat, or undefined when it has none. */
export function heartbeatAgeMs(p: Pilot, now: number): number | undefined {
  const t = p.status?.heartbeatTime;
  if (!t) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : now - ms;
}

export function isFresh(p: Pilot, maxAgeMs: number, now: number): boolean {
  const age = heartbeatAgeMs(p, now);
  return age !== undefined && Math.abs(age) <= maxAgeMs;
}

/** A reader over a fixed set of Pilots: for tests, and for tools that listed them once. */
export function staticPilotReader(pilots: Iterable<Pilot>, now: () => number = Date.now): PilotReader {
  const byName = new Map<string, Pilot>();
  for (const p of pilots) byName.set(p.metadata.name, p);
  return {
    get: (podName) => byName.get(podName),
    list: () => [...byName.values()],
    isFresh: (p, maxAgeMs) => isFresh(p, maxAgeMs, now()),
  };
}
