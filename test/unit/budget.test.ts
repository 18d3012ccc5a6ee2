import { expect } from 'chai';
import { DisruptionBudget, budgetRef } from '../../lib/budget/budget.ts';
import { fits, judgeHolder, UNCLAIMED_GRACE_MS } from '../../lib/budget/decide.ts';
import { type BudgetHolder, type BudgetRecord, budgetLeaseName, parseLimit, parseRecord } from '../../lib/budget/record.ts';
import type { BudgetStore } from '../../lib/budget/store.ts';
import { createLogger } from '../../lib/log.ts';

const T0 = Date.parse('2026-12-07T10:00:00Z');
const holder = (o: Partial<BudgetHolder> = {}): BudgetHolder => ({
  statefulSet: 'db/a',
  pod: 'a-2',
  uid: 'u-old',
  kind: 'step',
  revision: 'r2',
  limit: 1,
  at: new Date(T0).toISOString(),
  ...o,
});

describe('disruption budget: the rules (lib/budget/decide.ts)', () => {
  it('a step is over once a new pod of that name is Ready, at whatever revision (a rollback while it restarted)', () => {
    const h = holder();
    const facts = { holder: h, subscribed: true, claimed: true, now: T0 + 1000 };
    expect(judgeHolder({ ...facts })).to.deep.include({ release: false, back: false });
    expect(judgeHolder({ ...facts, pod: { uid: 'u-old', ready: true, revision: 'r1', terminating: true } })).to.deep.include({ back: false });
    expect(judgeHolder({ ...facts, pod: { uid: 'u-new', ready: false, revision: 'r2', terminating: false } })).to.deep.include({ back: false });
    expect(judgeHolder({ ...facts, pod: { uid: 'u-new', ready: true, revision: 'r2', terminating: false } })).to.deep.include({ release: false, back: true });
    // Waiting for r2 would hold the whole application cluster for ever once the template went back to r1.
    const rolledBack = judgeHolder({ ...facts, claimed: false, now: T0 + 10 * UNCLAIMED_GRACE_MS, pod: { uid: 'u-new', ready: true, revision: 'r1', terminating: false } });
    expect(rolledBack).to.deep.include({ release: false, back: true });
    expect(rolledBack.why).to.equal('a-2 is back and Ready (at r1, not r2)');
  });

  it('a removal is over once the pod is gone', () => {
    const h = holder({ kind: 'removal' });
    expect(judgeHolder({ holder: h, subscribed: true, claimed: true, now: T0, pod: { uid: 'u-old', ready: true, revision: 'r1', terminating: true } })).to.deep.include({ back: false });
    expect(judgeHolder({ holder: h, subscribed: true, claimed: true, now: T0 })).to.deep.include({ back: true });
  });

  it('a holder whose StatefulSet is gone or unsubscribed is released at once, as gone', () => {
    expect(judgeHolder({ holder: holder(), subscribed: false, claimed: false, now: T0 })).to.deep.include({ release: true, gone: true });
  });

  it('a slot whose step was never taken (no mark names it, the pod never moved) is released after the grace, not before', () => {
    const pod = { uid: 'u-old', ready: true, revision: 'r1', terminating: false };
    expect(judgeHolder({ holder: holder(), subscribed: true, claimed: false, now: T0 + UNCLAIMED_GRACE_MS - 1, pod })).to.deep.include({ release: false });
    expect(judgeHolder({ holder: holder(), subscribed: true, claimed: false, now: T0 + UNCLAIMED_GRACE_MS, pod })).to.deep.include({ release: true, gone: true });
    // Unclaimed because the StatefulSet moved on, its pod back: judged as any step.
    const back = judgeHolder({ holder: holder(), subscribed: true, claimed: false, now: T0 + UNCLAIMED_GRACE_MS, pod: { ...pod, uid: 'u-new', revision: 'r2' } });
    expect(back).to.deep.include({ release: false, back: true });
  });

  it('fits: the smallest budget among the holders counts; the pod asked about again is not another', () => {
    expect(fits([], 1, { statefulSet: 'db/b', uid: 'x' }).ok).to.equal(true);
    const one = [holder()];
    const full = fits(one, 1, { statefulSet: 'db/b', uid: 'x' });
    expect(full.ok).to.equal(false);
    expect(!full.ok && full.why).to.match(/^a-2 of db\/a \(restarting since .*\) holds the disruption budget \(1\)$/);
    expect(fits(one, 2, { statefulSet: 'db/b', uid: 'x' }).ok, 'the holder took it with a budget of 1').to.equal(false);
    expect(fits([holder({ limit: 2 })], 2, { statefulSet: 'db/b', uid: 'x' }).ok).to.equal(true);
    expect(fits(one, 1, { statefulSet: 'db/a', uid: 'u-old' }).ok, 'itself, asked again after a restart').to.equal(true);
    // A broken pod that replaced the holder's, replaced again in a rollback: already away, nothing more.
    expect(fits(one, 1, { statefulSet: 'db/a', uid: 'u-broken', pod: 'a-2' }).ok, 'the pod that replaced it').to.equal(true);
    expect(fits(one, 1, { statefulSet: 'db/a', uid: 'u-1', pod: 'a-1' }).ok, 'another pod of the same StatefulSet').to.equal(false);
  });

  it('reads the annotations strictly', () => {
    expect(parseLimit(undefined)).to.deep.equal({ ok: true, limit: 1 });
    expect(parseLimit('3')).to.deep.equal({ ok: true, limit: 3 });
    for (const bad of ['0', '-1', '1.5', 'two', '101', '']) expect(parseLimit(bad).ok, bad).to.equal(false);
    expect(parseRecord(undefined, 'c')).to.deep.equal({ ok: true, record: { cluster: 'c', holders: [] } });
    expect(parseRecord('{', 'c').ok).to.equal(false);
    expect(parseRecord(JSON.stringify({ cluster: 'other', holders: [] }), 'c').ok, 'another cluster under the same name').to.equal(false);
    expect(budgetLeaseName('elasticsearch', 'u1')).to.match(/^sts-pilot-budget-[0-9a-f]{20}$/);
    expect(budgetLeaseName('elasticsearch', 'u1')).to.not.equal(budgetLeaseName('kafka', 'u1'));
  });
});

/** A Lease in memory, with resourceVersions, and a hook for writing between a read and a write. */
function memoryStore(): BudgetStore & { record: BudgetRecord | undefined; rv: number; beforeWrite?: () => void } {
  const s = {
    record: undefined as BudgetRecord | undefined,
    rv: 0,
    beforeWrite: undefined as (() => void) | undefined,
    async read(_name: string, cluster: string) {
      return { record: structuredClone(s.record ?? { cluster, holders: [] }), resourceVersion: s.record ? String(s.rv) : undefined };
    },
    async write(_name: string, _hook: string, record: BudgetRecord, resourceVersion: string | undefined) {
      const f = s.beforeWrite;
      s.beforeWrite = undefined;
      f?.();
      if ((resourceVersion ?? undefined) !== (s.record ? String(s.rv) : undefined)) return 'conflict' as const;
      s.record = structuredClone(record);
      s.rv++;
      return 'written' as const;
    },
  };
  return s as never;
}

describe('disruption budget: take, admit, drop (lib/budget/budget.ts)', () => {
  const log = createLogger({ level: 'silent' });
  const ref = budgetRef('elasticsearch', 'uuid-1', 1);
  const slot = (sts: string, uid: string) => ({ statefulSet: sts, pod: `${sts.split('/')[1]}-2`, uid, kind: 'step' as const, revision: 'r2' });

  it('two StatefulSets take the last slot at once: one gets it, the other is told it is full', async () => {
    const store = memoryStore();
    const b = new DisruptionBudget({ store, facts: (holder) => ({ holder, subscribed: true, claimed: true }), rejoined: async () => true, log, now: () => T0 });
    const [x, y] = await Promise.all([b.take(ref, slot('db/a', 'ua')), b.take(ref, slot('db/b', 'ub'))]);
    expect([x, y].sort()).to.deep.equal(['full', 'taken']);
    expect(store.record?.holders.length).to.equal(1);
  });

  it('a write between the read and the write is a conflict: read again, decide again', async () => {
    const store = memoryStore();
    const b = new DisruptionBudget({ store, facts: (holder) => ({ holder, subscribed: true, claimed: true }), rejoined: async () => true, log, now: () => T0 });
    store.beforeWrite = () => {
      store.record = { cluster: 'uuid-1', holders: [{ ...slot('db/b', 'ub'), limit: 1, at: new Date(T0).toISOString() }] };
      store.rv++;
    };
    expect(await b.take(ref, slot('db/a', 'ua'))).to.equal('full');
  });

  it('admit frees a slot whose pod is back and rejoined, holds while the application says it is not', async () => {
    const store = memoryStore();
    let word: true | string = 'node a-2 has not rejoined';
    const b = new DisruptionBudget({
      store,
      facts: (holder) => ({ holder, subscribed: true, claimed: true, pod: { uid: 'new', ready: true, revision: 'r2', terminating: false } }),
      rejoined: async () => word,
      log,
      now: () => T0,
    });
    expect(await b.take(ref, slot('db/a', 'ua'))).to.equal('taken');
    const held = await b.admit(ref, { statefulSet: 'db/b', uid: 'ub' });
    expect(held.ok).to.equal(false);
    expect(!held.ok && held.why).to.match(/^application cluster uuid-1: a-2 of db\/a .* holds the disruption budget \(1\) \(a-2 is back and Ready, but node a-2 has not rejoined\)$/);
    word = true;
    const r = await b.admit(ref, { statefulSet: 'db/b', uid: 'ub' });
    expect(r).to.deep.equal({ ok: true, released: [] });
    expect(store.record?.holders).to.deep.equal([]);
  });

  it("the holder's own StatefulSet may ask about its next pod (the call that finishes the holder's step), but not take a slot while it is held", async () => {
    // The elasticsearch restart strategy re-enables replica allocation in that very call: until then the
    // cluster stays yellow and the holder is never "back"; gating the call on the slot held both for ever.
    const store = memoryStore();
    const b = new DisruptionBudget({
      store,
      facts: (holder) => ({ holder, subscribed: true, claimed: true, pod: { uid: 'new', ready: true, revision: 'r2', terminating: false } }),
      rejoined: async () => 'waiting for health green: cluster is yellow',
      log,
      now: () => T0,
    });
    expect(await b.take(ref, slot('db/a', 'ua'))).to.equal('taken');
    const own = await b.admit(ref, { statefulSet: 'db/a', uid: 'u-a1', pod: 'a-1', prev: 'a-2' });
    expect(own.ok, 'the call with prev = the holder').to.equal(true);
    expect(await b.take(ref, { ...slot('db/a', 'u-a1'), pod: 'a-1' }), 'its approval still needs the slot').to.equal('full');
    expect((await b.admit(ref, { statefulSet: 'db/b', uid: 'ub', pod: 'b-2', prev: 'a-2' })).ok, 'another StatefulSet').to.equal(false);
    expect((await b.admit(ref, { statefulSet: 'db/a', uid: 'u-a1', pod: 'a-1' })).ok, 'no prev').to.equal(false);
  });

  it('admit releases a holder whose StatefulSet is gone, and says so; drop gives back a slot never used', async () => {
    const store = memoryStore();
    let subscribed = true;
    const b = new DisruptionBudget({ store, facts: (holder) => ({ holder, subscribed, claimed: subscribed }), rejoined: async () => true, log, now: () => T0 });
    await b.take(ref, slot('db/a', 'ua'));
    subscribed = false;
    const r = await b.admit(ref, undefined);
    expect(r.ok).to.equal(true);
    expect(r.released.map((x) => x.why)).to.deep.equal(['db/a is no longer managed (deleted or unsubscribed)']);
    await b.take(ref, slot('db/c', 'uc'));
    await b.drop(ref, { statefulSet: 'db/c', uid: 'uc' });
    expect(store.record?.holders).to.deep.equal([]);
  });
});

describe('cli: status lists the disruption budgets that concern it', () => {
  it('each cluster with a pod away, its holders and for how long; nothing when forbidden', async () => {
    const { renderBudgets } = await import('../../lib/cli/budgets.ts');
    const records: BudgetRecord[] = [
      { cluster: 'uuid-1', holders: [holder({ statefulSet: 'db/a', pod: 'a-2', at: new Date(T0 - 65_000).toISOString() })] },
      { cluster: 'other', holders: [holder({ statefulSet: 'web/x', pod: 'x-1', kind: 'removal' })] },
    ];
    expect(renderBudgets({ ok: true, records }, { namespace: 'db', now: T0, budgetNamespace: 'sts-pilot-system' })).to.deep.equal([
      'disruption budgets (application clusters with a pod away):',
      '  uuid-1: 1/1 taken',
      '    db/a pod a-2 restarting to r2 for 1m05s',
    ]);
    expect(renderBudgets({ ok: true, records }, { namespace: undefined, now: T0, budgetNamespace: 's' }).filter((l) => l.includes('leaving'))).to.deep.equal(['    web/x pod x-1 leaving for 0s']);
    expect(renderBudgets({ ok: false, why: 'no', forbidden: true }, { namespace: 'db', now: T0, budgetNamespace: 's' })).to.deep.equal([]);
    expect(renderBudgets({ ok: false, why: 'timeout' }, { namespace: 'db', now: T0, budgetNamespace: 's' })[0]).to.match(/cannot read them \(timeout/);
  });
});
