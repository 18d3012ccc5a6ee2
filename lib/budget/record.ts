import { createHash } from 'node:crypto';
import { z } from 'zod';

// The disruption budget of an application cluster (docs/budget.md): one Lease
// per cluster in the controller's namespace, whose annotation lists who holds
// a slot. An approval of a hook takes a slot; it is released once the moved
// pod is back (or gone, for a removal), or when its holder is gone.

/** The annotation on the Lease that holds the record (JSON). */
export const BUDGET_RECORD_ANNOTATION = 'sts-pilot.io/budget';
/** The label every budget Lease carries, for `sts-pilot status` and for people. */
export const BUDGET_LABEL = 'sts-pilot.io/budget';
/** Names the application cluster of any hook's StatefulSets (StatefulSets with the same value share one budget). */
export const APPLICATION_CLUSTER_ANNOTATION = 'sts-pilot.io/application-cluster';
/** How many pods of the application cluster may be away at once (default 1). */
export const DISRUPTION_BUDGET_ANNOTATION = 'sts-pilot.io/disruption-budget';

export const BudgetHolder = z.object({
  /** namespace/name of the StatefulSet that took the slot. */
  statefulSet: z.string().min(1),
  /** The pod approved, as it was when approved: its uid changes when it is recreated. */
  pod: z.string().min(1),
  uid: z.string().min(1),
  kind: z.enum(['step', 'removal']),
  /** For a step: the revision the pod moves to. */
  revision: z.string().optional(),
  /** The budget of its StatefulSet when it took the slot: the smallest of the holders' counts. */
  limit: z.number().int().min(1),
  at: z.string(),
});
export type BudgetHolder = z.infer<typeof BudgetHolder>;

export const BudgetRecord = z.object({
  /** The application cluster, as its hook names it (e.g. an Elasticsearch cluster UUID). */
  cluster: z.string().min(1),
  holders: z.array(BudgetHolder).max(1000),
});
export type BudgetRecord = z.infer<typeof BudgetRecord>;

/** The Lease of one application cluster: the hook's name keeps two applications that share an id apart. */
export function budgetLeaseName(hook: string, cluster: string): string {
  return `sts-pilot-budget-${createHash('sha256').update(`${hook}\u0000${cluster}`).digest('hex').slice(0, 20)}`;
}

export type ParsedLimit = { ok: true; limit: number } | { ok: false; error: string };

/** The disruption-budget annotation: absent is 1; a whole number from 1 to 100; anything else is an error (hold). */
export function parseLimit(raw: string | undefined): ParsedLimit {
  if (raw === undefined) return { ok: true, limit: 1 };
  if (/^[1-9][0-9]?$|^100$/.test(raw)) return { ok: true, limit: Number(raw) };
  return { ok: false, error: `annotation ${DISRUPTION_BUDGET_ANNOTATION} must be a whole number from 1 to 100, got ${JSON.stringify(raw.slice(0, 40))}` };
}

export function parseRecord(raw: string | undefined, cluster: string): { ok: true; record: BudgetRecord } | { ok: false; error: string } {
  if (raw === undefined || raw === '') return { ok: true, record: { cluster, holders: [] } };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, error: `annotation ${BUDGET_RECORD_ANNOTATION} is not JSON` };
  }
  const r = BudgetRecord.safeParse(json);
  if (!r.success) return { ok: false, error: `annotation ${BUDGET_RECORD_ANNOTATION}: ${z.prettifyError(r.error).replace(/\s+/g, ' ').slice(0, 200)}` };
  if (r.data.cluster !== cluster) return { ok: false, error: `the Lease records cluster ${JSON.stringify(r.data.cluster.slice(0, 80))}, not ${JSON.stringify(cluster.slice(0, 80))} (a hash collision)` };
  return { ok: true, record: r.data };
}
