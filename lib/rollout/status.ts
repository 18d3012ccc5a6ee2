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
  /** Partition after the approved step; for OnDelete, the ordinal deleted. */
  partition: z.number().int().min(0),
});
export type RolloutMark = z.infer<typeof RolloutMarkSchema>;

/** Value of the `sts-pilot.io/status` annotation (JSON). */
export const StatusAnnotationSchema = z.object({
  rollout: RolloutMarkSchema.optional(),
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
