import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { z } from 'zod';
import { hookOptionPrefix } from './names.ts';
import type { Egress } from './egress.ts';
import type { Logger } from './log.ts';
import type { PilotReader } from './pilot/reader.ts';

/**
 * Thrown by a hook to hold the rollout; the message is shown to people as the reason.
 * `routine`: a wait that ends by itself (a drain in progress, a pod starting, shards
 * recovering, a budget slot held by a pod coming back): its Event is Normal. Left
 * unset, the hold may need someone (an impossible drain, a misconfiguration): a
 * Warning, which event exporters page on. When in doubt, leave it unset.
 */
export class HookNotReady extends Error {
  override name = 'HookNotReady';
  readonly routine: boolean;

  constructor(message: string, opts: { routine?: boolean } = {}) {
    super(message);
    this.routine = opts.routine === true;
  }
}

/** The Event type of a hook's answer that is not an approval: Normal only for a hold its hook called routine. */
export function holdEventType(err: unknown): 'Normal' | 'Warning' {
  return err instanceof HookNotReady && err.routine ? 'Normal' : 'Warning';
}

/**
 * Reads a Secret in the StatefulSet's namespace; values decoded to UTF-8. Only
 * Secrets the installer allowed (labelled sts-pilot.io/credentials: "true")
 * are given; any other name rejects with a HookNotReady that says how to allow it.
 */
export type SecretReader = (name: string) => Promise<Record<string, string>>;

export interface HookContext<O> {
  statefulSet: V1StatefulSet;
  /** The hook's options, parsed by its own schema from `<hook>.sts-pilot.io/<option>` annotations. */
  options: O;
  /** Aborted at the call's deadline or at shutdown: pass it to every request. */
  signal: AbortSignal;
  log: Logger;
  secrets: SecretReader;
  /**
   * The only way out to the network: every URL or address a hook calls goes
   * through it, so the controller's address policy (--hook-allow,
   * --hook-allow-loopback; never link-local or the API server) holds for all.
   */
  egress: Egress;
  /** The Pilots of the StatefulSet's namespace, from the controller's cache. */
  pilots: PilotReader;
  /**
   * Something people should know although the hook goes on (a topic that no
   * restart can keep available, a quorum too small to keep a majority): the
   * controller writes it as a Warning Event `HookWarning` after the call, and
   * logs it. Optional for callers other than the controller.
   */
  warn?: (message: string) => void;
  /**
   * Whether `next` is Ready (null when next is null). Every other pod is Ready
   * before a step, but `next` need not be: a release whose pods never become
   * Ready must be replaceable by a rollback or a fix, and the hook decides
   * whether replacing an unready pod is safe.
   */
  nextReady: boolean | null;
}

/**
 * What a hook may ask of a pod's pilot: run an action the pilot was given a
 * command for (docs/pilot.md, "Requests"), once. The request goes into the
 * pod's Pilot (spec.actions); the pilot reports it in status.actions, which
 * the hook reads through `pilots` on its next call.
 */
export interface PilotActions {
  /**
   * Append the request to the Pilot of `pod` (guarded by that Pilot's uid).
   * 'requested': the API server has it now; 'already': a request of this id
   * was there. Rejects when the pod has no Pilot, its list is full, or the
   * write fails: hold and ask again on the next call.
   */
  request(pod: string, request: { id: string; action: string; reason?: string }): Promise<'requested' | 'already'>;
}

/** What a scale-down does with a leaving pod's volumes (spec.persistentVolumeClaimRetentionPolicy.whenScaled). */
export type LeavingVolumes = 'kept' | 'deleted';

/** What `podRemoval` and `podRemoved` are given. */
export type RemovalContext<O> = Omit<HookContext<O>, 'nextReady'> & {
  /** Whether the pod is Ready: an unready pod leaving takes no working node away, and the hook is told. */
  podReady: boolean;
  /**
   * Kept: the PersistentVolumeClaims stay, and a later scale-up brings the pod
   * back on its old data (as a pod move, through podUpdateTransition if its
   * revision is not the update one). Deleted: the data goes with the pod.
   */
  volumes: LeavingVolumes;
  /** The size the StatefulSet is going to (the person's request). */
  requestedReplicas: number;
  /** Requests to the leaving pod's pilot (a decommission run on the node itself); absent for callers without a control plane. */
  pilotActions?: PilotActions;
};

/** What `podRemoved` is told: the pod is gone, or its removal was withdrawn (a scale-up) after podRemoval was asked. */
export type RemovalOutcome = 'removed' | 'withdrawn';

/** What `podUpdateOrder` is given: the context of a hook call, without a `next` to speak of. */
export type OrderContext<O> = Omit<HookContext<O>, 'nextReady'>;

/** A hook's answer to `podUpdateOrder`. */
export interface UpdateOrder {
  /** The names of the stale pods, each exactly once, in the order they should move. */
  pods: string[];
  /** Why this order, for people: `sts-pilot status` shows it beside the next pod. */
  reason: string;
}

export interface RolloutHook<O = unknown> {
  readonly name: string;
  readonly description: string;
  /** Schema of the hook's options: an object whose keys are the option names. */
  readonly options: z.ZodType<O>;
  /**
   * Resolves when it is safe to move `next` to the update revision; throws
   * (HookNotReady, with a reason) to hold. prev: the pod updated last, or null at
   * the start; next: the pod about to move, or null after the last one. Called
   * again after any restart, so it must be idempotent.
   */
  podUpdateTransition(prev: V1Pod | null, next: V1Pod | null, ctx: HookContext<O>): Promise<void>;
  /**
   * Optional, OnDelete only: which stale pod moves next (e.g. the leader last).
   * Asked before every step with the pods not yet at the update revision, since
   * the answer (leadership) can change between steps; podUpdateTransition is
   * still asked about the pod chosen. Throws (HookNotReady) to hold. Without it,
   * the highest ordinal goes first.
   */
  podUpdateOrder?(stalePods: V1Pod[], ctx: OrderContext<O>): Promise<UpdateOrder>;
  /**
   * Optional: resolves when `pod` may leave for good (a scale-down removes the
   * highest ordinal first, one pod at a time): its data moved off, its votes
   * handed over. Throws (HookNotReady) to hold. Called again until it resolves,
   * and again after a restart: idempotent. Without it, a removal is approved at
   * once, and `sts-pilot hooks` and `status` say the hook does not guard scale-down.
   */
  podRemoval?(pod: V1Pod, ctx: RemovalContext<O>): Promise<void>;
  /**
   * Optional: after a pod podRemoval approved is gone ('removed'), or after a
   * removal it was asked about was withdrawn by a scale-up ('withdrawn'): undo
   * what podRemoval prepared (exclusions, drains). `pod` is the pod as it was
   * last seen (it may no longer exist). Throws (HookNotReady) to be asked again;
   * the controller does not start another removal before it resolves.
   */
  podRemoved?(pod: V1Pod, outcome: RemovalOutcome, ctx: RemovalContext<O>): Promise<void>;
  /**
   * Optional: the application cluster this StatefulSet's pods belong to (an
   * Elasticsearch cluster UUID, a Kafka cluster id, a Patroni scope).
   * StatefulSets whose hook names the same cluster share one disruption budget
   * (docs/rollout.md, "One disruption at a time per application cluster"): a
   * pod of one is not asked about while a pod of another is away. Throws
   * (HookNotReady) when it cannot tell: the step holds. Asked before a call and
   * remembered for a minute. Without it, and without the annotation
   * sts-pilot.io/application-cluster, a StatefulSet is a cluster of its own.
   */
  applicationCluster?(ctx: OrderContext<O>): Promise<string>;
  /**
   * Optional: resolves once `pod`, moved by a step of this hook, is back in the
   * application in its own terms (node rejoined, shards recovered); throws
   * (HookNotReady) while it is not. Its slot of the disruption budget is held
   * until then. Without it, Ready at the new revision is enough.
   */
  podRejoined?(pod: V1Pod, ctx: OrderContext<O>): Promise<void>;
  /**
   * What the pods and ctx.statefulSet given to the hook are. 'full' (the
   * default): read whole from the API server when the call is made. 'cached':
   * copies of what the controller keeps (a pod's name, uid, labels, owner,
   * deletion, phase and Ready condition; the StatefulSet without its pod
   * template), which saves three reads per call for a hook that needs no more.
   */
  readonly objects?: 'full' | 'cached';
  /**
   * Optional: release what the hook keeps between calls (connections), at
   * process stop. Calls after it may open them again.
   */
  close?(): Promise<void>;
}

const UpdateOrderAnswer = z.strictObject({
  pods: z.array(z.string()).max(10_000),
  reason: z.string().max(2000),
});

/**
 * Check a hook's order against the stale pods it was asked about: each named
 * exactly once, nothing else. A bad answer is the hook's bug, and holds the
 * rollout with this error rather than guessing what it meant.
 */
export function checkUpdateOrder(answer: unknown, stale: readonly string[]): { ok: true; order: UpdateOrder } | { ok: false; error: string } {
  const r = UpdateOrderAnswer.safeParse(answer);
  if (!r.success) return { ok: false, error: `the order is not {pods: string[], reason: string}: ${z.prettifyError(r.error).replace(/\s+/g, ' ').slice(0, 300)}` };
  const { pods, reason } = r.data;
  const asked = new Set(stale);
  const seen = new Set<string>();
  for (const p of pods) {
    if (!asked.has(p)) return { ok: false, error: `the order names ${JSON.stringify(p.slice(0, 253))}, which is not one of the stale pods (${stale.join(', ')})` };
    if (seen.has(p)) return { ok: false, error: `the order names ${p} twice` };
    seen.add(p);
  }
  const missing = stale.filter((p) => !seen.has(p));
  if (missing.length > 0) return { ok: false, error: `the order leaves out ${missing.join(', ')}: it must name every stale pod` };
  return { ok: true, order: { pods, reason: reason.trim() } };
}

/** Lets hooks with different option types share one registry. */
export const defineHook = <O>(hook: RolloutHook<O>): RolloutHook<unknown> => hook as RolloutHook<unknown>;

/** The option annotations of one hook, with their prefix removed. */
export function hookOptionAnnotations(annotations: Record<string, string> | undefined, hook: string): Record<string, string> {
  const prefix = hookOptionPrefix(hook);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations ?? {})) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

export type ParsedOptions = { ok: true; options: unknown } | { ok: false; error: string };

/**
 * The hook's name and raw options in one string: an approval is valid only for
 * the configuration it was given under (sorted, so the same options always match).
 */
export function hookConfigOf(hook: string, annotations: Record<string, string> | undefined): string {
  const options = Object.entries(hookOptionAnnotations(annotations, hook)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([hook, options]);
}

/** Parse a hook's options; the error names the annotations, as people wrote them. */
export function parseHookOptions(hook: RolloutHook, annotations: Record<string, string> | undefined): ParsedOptions {
  const raw = hookOptionAnnotations(annotations, hook.name);
  let r: ReturnType<typeof hook.options.safeParse>;
  try {
    r = hook.options.safeParse(raw);
  } catch (err) {
    // zod runs refinements even after a base check failed: `new URL()` in one throws on a non-URL.
    return { ok: false, error: `invalid ${hook.name} hook options: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (r.success) return { ok: true, options: r.data };
  const prefix = hookOptionPrefix(hook.name);
  const issues = r.error.issues.map((i) => {
    const where = i.path.length > 0 ? `${prefix}${i.path.join('.')}` : (i as { keys?: string[] }).keys?.map((k) => prefix + k).join(', ');
    return `${where ? `${where}: ` : ''}${i.message}`;
  });
  return { ok: false, error: `invalid ${hook.name} hook options: ${issues.join('; ')}` };
}

/** A whole number of seconds written as an annotation string, with a default. */
export const secondsOption = (dflt: number) =>
  z
    .string()
    .regex(/^[1-9][0-9]{0,5}$/, 'must be a whole number of seconds, 1 to 999999')
    .transform(Number)
    .default(dflt);
