import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { z } from 'zod';
import { defineHook, HookNotReady, secondsOption } from '../../lib/hook.ts';
import { heartbeatAgeMs, type PilotReader } from '../../lib/pilot/reader.ts';
import { podOwnerUid } from '../../lib/pilot/schema.ts';
import { applicationHealthy } from '../../lib/probes/verdict.ts';

const Options = z.strictObject({
  // How old a Pilot's heartbeat may be; a few of the pilot's --heartbeat periods (default 20 s).
  'max-age': secondsOption(60),
});
export type PilotReadyOptions = z.infer<typeof Options>;

/**
 * Why `prev` may not be followed by the next pod yet, or undefined when it
 * may. Every unknown holds (Navigator's lesson): no Pilot, no status, a stale
 * heartbeat, another revision, a phase other than Running, or an application
 * the pilot does not report healthy.
 */
export function pilotNotReady(prev: V1Pod, sts: V1StatefulSet, pilots: PilotReader, maxAgeMs: number, now: number = Date.now()): string | undefined {
  return pilotHold(prev, sts, pilots, maxAgeMs, now)?.reason;
}

/**
 * Why the pod updated last may not be followed yet, and whether that is routine:
 * a pod on its way up (no Pilot yet, the old revision still reported, a phase
 * before Running) ends by itself; a stale, foreign, silent or Failed Pilot needs someone.
 */
export function pilotHold(prev: V1Pod, sts: V1StatefulSet, pilots: PilotReader, maxAgeMs: number, now: number = Date.now()): { reason: string; routine: boolean } | undefined {
  const name = prev.metadata?.name ?? '';
  const routine = (reason: string): { reason: string; routine: boolean } => ({ reason, routine: true });
  const attention = (reason: string): { reason: string; routine: boolean } => ({ reason, routine: false });
  const p = pilots.get(name);
  if (!p) return routine(`pod ${name} has no Pilot yet`);
  const owner = podOwnerUid(p);
  if (owner !== prev.metadata?.uid) return routine(`the Pilot ${name} belongs to an earlier pod of that name (uid ${owner ?? 'none'}), not to this one`);
  const s = p.status;
  if (!s) return attention(`the Pilot ${name} reports no status: is the pod's container run by \`sts-pilot pilot\`?`);
  if (!pilots.isFresh(p, maxAgeMs)) {
    const age = heartbeatAgeMs(p, now);
    return attention(`the Pilot ${name} is stale: last heartbeat ${age === undefined ? 'unknown' : `${Math.round(age / 1000)}s ago`}, max age ${maxAgeMs / 1000}s`);
  }
  const update = sts.status?.updateRevision;
  if (!update) return attention('the StatefulSet reports no update revision');
  if (s.revision !== update) return routine(`the Pilot ${name} reports revision ${s.revision ?? 'unknown'}, not the update revision ${update}`);
  if (s.phase !== 'Running') {
    const why = `the Pilot ${name} is ${s.phase}, not Running${s.message ? `: ${s.message}` : ''}`;
    return STARTING.has(String(s.phase)) ? routine(why) : attention(why);
  }
  const health = applicationHealthy(s.application);
  if (!health.ok) return attention(`${name}: ${health.reason}`);
  return undefined;
}

/** Phases of a pilot on its way to Running. */
const STARTING = new Set(['Initializing', 'PreStart']);

/**
 * The next pod moves only when the pod updated last runs the update revision
 * and its Pilot, freshly, reports the application Running and healthy. At the
 * start (no pod updated yet) there is nothing to check.
 */
export const pilotReadyHook = defineHook({
  name: 'pilot-ready',
  description: "next step only when the updated pod's Pilot reports Running and healthy at the update revision",
  options: Options,
  objects: 'cached',
  async podUpdateTransition(prev, _next, ctx) {
    if (!prev) return;
    // `pilots` joins HookContext when the controller wires its PilotManager; until then, hold with a reason.
    const pilots = (ctx as { pilots?: PilotReader }).pilots;
    if (!pilots) throw new HookNotReady('this controller gives hooks no Pilot reader');
    const held = pilotHold(prev, ctx.statefulSet, pilots, ctx.options['max-age'] * 1000);
    if (held) throw new HookNotReady(held.reason, { routine: held.routine });
  },
});
