import type { Logger } from '../log.ts';
import { admits, fits, type HolderFacts, judgeHolder, samePod } from './decide.ts';
import { type BudgetHolder, budgetLeaseName } from './record.ts';
import type { BudgetStore } from './store.ts';

/** Which budget a call counts against: the Lease of one application cluster of one hook. */
export interface BudgetRef {
  hook: string;
  cluster: string;
  lease: string;
  /** This StatefulSet's disruption budget. */
  limit: number;
}

export const budgetRef = (hook: string, cluster: string, limit: number): BudgetRef => ({ hook, cluster, limit, lease: budgetLeaseName(hook, cluster) });

export interface BudgetParts {
  store: BudgetStore;
  /** What the caches say of a holder (its StatefulSet, its pod now). */
  facts: (holder: BudgetHolder) => Omit<HolderFacts, 'now'>;
  /** The application's own word that a holder's pod is back (its hook's podRejoined): true, or why not. */
  rejoined: (holder: BudgetHolder) => Promise<true | string>;
  log: Logger;
  now?: () => number;
}

const MAX_TRIES = 5;

/**
 * The disruption budget of application clusters that span StatefulSets
 * (docs/rollout.md, "One disruption at a time per application cluster"):
 * before a hook is asked about a pod that would go away, `admit` frees the
 * slots whose pods are back and says whether one more fits; the approved write
 * `take`s a slot first, guarded, so two StatefulSets can never both take the last.
 */
export class DisruptionBudget {
  private readonly p: BudgetParts;

  constructor(p: BudgetParts) {
    this.p = p;
  }

  /**
   * Release what is free, then: may `asking` take a slot? `asking` undefined only
   * releases (a call that moves no pod: the final call, a removal's clean-up).
   */
  async admit(
    ref: BudgetRef,
    asking: { statefulSet: string; uid: string; pod?: string; /** the pod this StatefulSet moved last: its own slot does not keep the call that finishes its step from being made */ prev?: string } | undefined,
  ): Promise<({ ok: true } | { ok: false; why: string }) & { released: { holder: BudgetHolder; why: string }[] }> {
    const released: { holder: BudgetHolder; why: string }[] = [];
    for (let i = 0; i < MAX_TRIES; i++) {
      const { record, resourceVersion } = await this.p.store.read(ref.lease, ref.cluster);
      const keep: BudgetHolder[] = [];
      // Why each kept holder is still away, in the application's words when it gave some.
      const notBack = new Map<BudgetHolder, string>();
      const gone: { holder: BudgetHolder; why: string; gone: boolean }[] = [];
      for (const holder of record.holders) {
        const verdict = judgeHolder({ ...this.p.facts(holder), holder, now: this.now() });
        if (verdict.release) gone.push({ holder, why: verdict.why, gone: verdict.gone });
        else if (verdict.back) {
          const word = await this.p.rejoined(holder).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
          if (word === true) gone.push({ holder, why: `${verdict.why}, and rejoined`, gone: false });
          else {
            keep.push(holder);
            notBack.set(holder, `${verdict.why}, but ${word}`);
          }
        } else {
          keep.push(holder);
          notBack.set(holder, verdict.why);
        }
      }
      if (gone.length > 0) {
        const outcome = await this.p.store.write(ref.lease, ref.hook, { cluster: ref.cluster, holders: keep }, resourceVersion);
        if (outcome === 'conflict') continue;
        for (const g of gone) {
          this.p.log.info({ cluster: ref.cluster, holder: g.holder, why: g.why }, 'disruption budget slot released');
          // A pod back or removed is the normal end; a holder gone is news to people (an Event).
          if (g.gone) released.push({ holder: g.holder, why: g.why });
        }
      }
      if (!asking) return { ok: true, released };
      const f = admits(keep, ref.limit, asking);
      if (f.ok) return { ...f, released };
      const words = keep.map((h) => notBack.get(h)).filter((w): w is string => w !== undefined);
      return { ok: false, why: `application cluster ${ref.cluster}: ${f.why}${words.length ? ` (${words.join('; ').slice(0, 400)})` : ''}`, released };
    }
    return { ok: false, why: `the budget Lease of application cluster ${ref.cluster} kept changing under us; asking again`, released };
  }

  /** Take a slot for an approved step or removal; 'full' when another took the last one since. */
  async take(ref: BudgetRef, holder: Omit<BudgetHolder, 'limit' | 'at'>): Promise<'taken' | 'full'> {
    for (let i = 0; i < MAX_TRIES; i++) {
      const { record, resourceVersion } = await this.p.store.read(ref.lease, ref.cluster);
      if (!fits(record.holders, ref.limit, holder).ok) return 'full';
      const next: BudgetHolder = { ...holder, limit: ref.limit, at: new Date(this.now()).toISOString() };
      // The pod's earlier slot (before a restart, or for the pod it replaces) becomes this one.
      const holders = [...record.holders.filter((h) => !samePod(h, holder)), next];
      if ((await this.p.store.write(ref.lease, ref.hook, { cluster: ref.cluster, holders }, resourceVersion)) === 'written') return 'taken';
    }
    return 'full';
  }

  /** Give back a slot whose step was not taken after all (its write failed); best effort, it expires anyway. */
  async drop(ref: BudgetRef, holder: { statefulSet: string; uid: string }): Promise<void> {
    for (let i = 0; i < MAX_TRIES; i++) {
      const { record, resourceVersion } = await this.p.store.read(ref.lease, ref.cluster);
      const holders = record.holders.filter((h) => !(h.statefulSet === holder.statefulSet && h.uid === holder.uid));
      if (holders.length === record.holders.length) return;
      if ((await this.p.store.write(ref.lease, ref.hook, { cluster: ref.cluster, holders }, resourceVersion)) === 'written') return;
    }
  }

  private now(): number {
    return (this.p.now ?? Date.now)();
  }
}
