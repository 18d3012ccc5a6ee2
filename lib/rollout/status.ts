import { z } from 'zod';

/**
 * The step sts-pilot approved last in the current rollout. It is written in
 * the same patch that moves the partition, so it is never out of step with
 * it, and it is the only memory the controller keeps between reconciles:
 * it tells "pod P was approved and is in flight" from "someone lowered the
 * partition", and "this rollout was ours and still owes the final hook call"
 * from "the StatefulSet merely scaled up".
 */
export const RolloutMarkSchema = z.object({
  revision: z.string().min(1),
  /** Partition after the approved step; for OnDelete, the index deleted. */
  partition: z.number().int().min(0),
  /**
   * uid of the pod the hook approved. Only that pod is on its way: another pod at
   * that place (recreated at some revision while a template changed) was not approved.
   */
  uid: z.string().optional(),
});
export type RolloutMark = z.infer<typeof RolloutMarkSchema>;

/**
 * The hook's answer to podUpdateOrder (OnDelete), for the stale pods named by
 * `key` (see orderKey in the planner): the order, or why there is none. Kept
 * here so that it survives a restart and `sts-pilot status` shows what the
 * controller acts on.
 */
export const OrderRecordSchema = z.object({
  key: z.string().min(1),
  /** When the hook answered (ISO time): an order is asked again once it is old. */
  at: z.string(),
  pods: z.array(z.string()).optional(),
  reason: z.string().optional(),
  error: z.string().optional(),
});
export type OrderRecord = z.infer<typeof OrderRecordSchema>;

/** An override applied (see lib/rollout/policies/override.ts): who let which pod through, when and why. */
export const AppliedOverrideSchema = z.object({
  pod: z.string(),
  uid: z.string(),
  revision: z.string(),
  reason: z.string(),
  by: z.string(),
  /** When the person set it. */
  at: z.string(),
  /** When the controller applied it. */
  appliedAt: z.string().optional(),
});

/**
 * A pod leaving for good (scale-down). `asked`: the hook was asked about its
 * removal and may have prepared for it (drained it): written before the first
 * call, so that a request withdrawn meanwhile, even across a restart, still
 * gets the hook's clean-up call. `approved`: written in the very patch that
 * lowered spec.replicas past it; the hook is told once it is gone.
 */
export const RemovalRecordSchema = z.object({
  pod: z.string().min(1),
  uid: z.string().min(1),
  /** Its place in the StatefulSet (ordinal - ordinals.start). */
  index: z.number().int().min(0),
  state: z.enum(['asked', 'approved']),
});
export type RemovalRecord = z.infer<typeof RemovalRecordSchema>;

/** Value of the `sts-pilot.io/status` annotation (JSON). */
export const StatusAnnotationSchema = z.object({
  rollout: RolloutMarkSchema.optional(),
  /**
   * Fingerprint of the pod template the partition was last set for by sts-pilot.
   * A template that differs from it while the partition is below replicas is a
   * new revision nobody approved: the guard raises the partition at once.
   */
  template: z.string().optional(),
  /**
   * The update revision of that template, as the StatefulSet controller named it
   * (absent when it had not yet). Until it observes a newer spec, every pod at or
   * above the partition but the approved one runs it; one that does not moved
   * without sts-pilot, and the guard raises the partition.
   */
  revision: z.string().optional(),
  order: OrderRecordSchema.optional(),
  /** The pod a scale-down is removing, until the hook was told it is gone (or the removal was withdrawn). */
  removal: RemovalRecordSchema.optional(),
  /** The last override applied: the audit record, and what makes it single-use. */
  override: AppliedOverrideSchema.optional(),
  /** When sts-pilot last took a step (ISO): how long the next has waited survives a restart (hold-timeout). */
  stepSince: z.string().optional(),
  /** The hook's consecutive failures that were not HookNotReady, as last recorded (halt; shown by status). */
  hookErrors: z.number().int().min(0).optional(),
  state: z.string().optional(),
  message: z.string().optional(),
  since: z.string().optional(),
});
export type StatusAnnotation = z.infer<typeof StatusAnnotationSchema>;

export type ParsedStatus =
  | { ok: true; status: StatusAnnotation }
  | { ok: false; error: string };

/** Garbage in the annotation loses the mark (so: no final hook call), never the process. */
export function parseStatusAnnotation(raw: string | undefined): ParsedStatus {
  if (raw === undefined || raw === '') return { ok: true, status: {} };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}` };
  }
  const r = StatusAnnotationSchema.safeParse(json);
  if (!r.success) return { ok: false, error: z.prettifyError(r.error) };
  return { ok: true, status: r.data };
}

/** Numbers aside ("12 shards left" vs "11 shards left"), is this the same situation? */
export const sameSituation = (a: string | undefined, b: string | undefined): boolean =>
  (a ?? '').replace(/[0-9]+/g, '#') === (b ?? '').replace(/[0-9]+/g, '#');
