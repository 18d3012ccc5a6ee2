import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { BUDGET_LABEL, BUDGET_RECORD_ANNOTATION, BudgetRecord } from '../budget/record.ts';
import { describeError, statusCode } from '../errors.ts';
import { formatDuration } from './format.ts';

export type BudgetsRead = { ok: true; records: BudgetRecord[] } | { ok: false; why: string; forbidden?: boolean };

/** The disruption budgets the controller keeps (one Lease per application cluster in its namespace). */
export async function readBudgets(kc: KubeConfig, namespace: string): Promise<BudgetsRead> {
  try {
    const leases = await kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace, labelSelector: BUDGET_LABEL });
    const records: BudgetRecord[] = [];
    for (const l of leases.items) {
      try {
        const r = BudgetRecord.safeParse(JSON.parse(l.metadata?.annotations?.[BUDGET_RECORD_ANNOTATION] ?? ''));
        if (r.success) records.push(r.data);
      } catch {
        // not ours to judge here: the controller says so when it reads it
      }
    }
    return { ok: true, records };
  } catch (err) {
    const code = statusCode(err);
    return code === 403 ? { ok: false, why: `not allowed to list Leases in ${namespace}`, forbidden: true } : { ok: false, why: describeError(err, 200) };
  }
}

/**
 * `status`: each application cluster's budget that concerns the namespaces
 * shown (all with -A), and who holds a slot since when. Pure.
 */
export function renderBudgets(read: BudgetsRead, o: { namespace: string | undefined; now: number; budgetNamespace: string }): string[] {
  // Most people who read a rollout may not read the controller's namespace: nothing to say then.
  if (!read.ok) return read.forbidden ? [] : [`disruption budgets: cannot read them (${read.why}; --budget-namespace names where the controller keeps them)`];
  const mine = read.records.filter((r) => o.namespace === undefined || r.holders.some((h) => h.statefulSet.startsWith(`${o.namespace}/`)));
  if (mine.length === 0) return [];
  const out = ['disruption budgets (application clusters with a pod away):'];
  for (const r of mine.sort((a, b) => a.cluster.localeCompare(b.cluster))) {
    const limit = Math.min(...r.holders.map((h) => h.limit));
    out.push(`  ${r.cluster}: ${r.holders.length}/${Number.isFinite(limit) ? limit : 1} taken`);
    for (const h of r.holders) {
      const since = Date.parse(h.at);
      out.push(`    ${h.statefulSet} pod ${h.pod} ${h.kind === 'removal' ? 'leaving' : `restarting${h.revision ? ` to ${h.revision}` : ''}`}${Number.isNaN(since) ? '' : ` for ${formatDuration(o.now - since)}`}`);
    }
  }
  return out;
}
