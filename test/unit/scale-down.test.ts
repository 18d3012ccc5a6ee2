import { expect } from 'chai';
import { type Action, plan } from '../../lib/rollout/planner.ts';
import { parseRequested } from '../../lib/rollout/scale-down.ts';
import { snap, type SnapOpts } from './fixtures.ts';

type Removal = Extract<Action, { kind: 'callRemoval' }>;
type Patch = Extract<Action, { kind: 'patch' }>;

const steady: SnapOpts = { replicas: 5, partition: 5, cur: 'A', upd: 'A', pods: 'A A A A A' };

/** Plan; if it asks the hook, plan again as if the hook approved that very question. */
function approveAndPlan(o: SnapOpts): Action {
  const first = plan(snap(o));
  if (first.kind !== 'callRemoval') return first;
  return plan(snap({ ...o, approval: { key: first.key, at: (o.now ?? 1_000_000) - 1 } }));
}

describe('planner: scale-down, one approved pod at a time', () => {
  it('reads the requested size: absent, a whole number, or a clear error', () => {
    expect(parseRequested(undefined)).to.deep.equal({ ok: true, value: undefined });
    expect(parseRequested('3')).to.deep.equal({ ok: true, value: 3 });
    expect(parseRequested('0')).to.deep.equal({ ok: true, value: 0 });
    for (const bad of ['', '-1', '03', '3.0', ' 3', 'three', '1e3']) expect(parseRequested(bad).ok, bad).to.equal(false);
  });

  it('records the leaving pod before the hook is asked, so that a withdrawal is always cleaned up', () => {
    const a = plan(snap({ ...steady, requested: '3' })) as Patch;
    expect(a.kind).to.equal('patch');
    expect(a.why).to.equal('removal');
    expect(a.removal).to.deep.equal({ pod: 'web-4', uid: 'uid-4-A', index: 4, state: 'asked' });
    expect(a.replicas).to.equal(undefined);
    expect(a.partition).to.equal(undefined);
  });

  it('asks the hook about the highest pod, and lowers replicas by exactly one after its approval', () => {
    const o: SnapOpts = { ...steady, requested: '3', removal: { pod: 'web-4', uid: 'uid-4-A', index: 4, state: 'asked' } };
    const ask = plan(snap(o)) as Removal;
    expect(ask.kind).to.equal('callRemoval');
    expect(ask.call).to.equal('removal');
    expect(ask.pod).to.deep.equal({ pod: 'web-4', uid: 'uid-4-A', index: 4 });
    expect(ask.requested).to.equal(3);
    const step = approveAndPlan(o) as Patch;
    expect(step).to.include({ kind: 'patch', why: 'remove', replicas: 4, clearRequest: false });
    expect(step.removal).to.deep.equal({ pod: 'web-4', uid: 'uid-4-A', index: 4, state: 'approved' });
  });

  it('an approval for another pod, another spec or another hook configuration approves nothing', () => {
    const o: SnapOpts = { ...steady, requested: '3', removal: { pod: 'web-4', uid: 'uid-4-A', index: 4, state: 'asked' } };
    const ask = plan(snap(o)) as Removal;
    for (const other of [{ generation: 3 }, { hookConfig: '["http",[]]' }, { pods: 'A A A A A!' }]) {
      const a = plan(snap({ ...o, ...other, approval: { key: ask.key, at: 999_999 } }));
      expect(a.kind, JSON.stringify(other)).to.not.equal('patch');
    }
    // Old approvals are asked again, as for steps.
    expect(plan(snap({ ...o, approval: { key: ask.key, at: 0 } })).kind).to.equal('callRemoval');
  });

  it('clears the request in the write that reaches it', () => {
    const o: SnapOpts = { ...steady, replicas: 4, partition: 5, pods: 'A A A A', requested: '3', removal: undefined };
    const rec = plan(snap(o)) as Patch;
    expect(rec.removal?.pod).to.equal('web-3');
    const step = approveAndPlan({ ...o, removal: rec.removal as never }) as Patch;
    expect(step).to.include({ why: 'remove', replicas: 3, clearRequest: true });
  });

  it('waits for the approved pod to be gone, then tells the hook once, then clears the record', () => {
    const removal = { pod: 'web-4', uid: 'uid-4-A', index: 4, state: 'approved' as const };
    const leaving = plan(snap({ ...steady, replicas: 4, pods: 'A A A A A~', requested: '3', removal }));
    expect(leaving).to.deep.include({ kind: 'hold', phase: 'Rolling' });
    expect((leaving as { reason: string }).reason).to.match(/waiting for pod web-4 to be removed/);
    const o: SnapOpts = { ...steady, replicas: 4, pods: 'A A A A', requested: '3', removal };
    const told = plan(snap(o)) as Removal;
    expect(told).to.include({ kind: 'callRemoval', call: 'removed' });
    const cleared = approveAndPlan(o) as Patch;
    expect(cleared).to.include({ kind: 'patch', why: 'removed', removal: null });
  });

  it('does not start the next removal while a pod is not Ready or a step is away', () => {
    for (const p of ['A A A! A A', 'A A A~ A A', 'A A - A A']) {
      const a = plan(snap({ ...steady, pods: p, requested: '3' }));
      expect(a.kind, p).to.equal('hold');
      expect((a as { reason: string }).reason, p).to.match(/^scale-down to 3: waiting for pod web-2/);
    }
  });

  it('removes an unready leaving pod through the hook, and says it is not Ready', () => {
    const o: SnapOpts = { ...steady, pods: 'A A A A A!', requested: '3', removal: { pod: 'web-4', uid: 'uid-4-A', index: 4, state: 'asked' } };
    const a = plan(snap(o)) as Removal;
    expect(a).to.include({ kind: 'callRemoval', podReady: false });
    expect(a.message).to.match(/not Ready/);
  });

  it('a scale-up withdraws an asked removal: the hook is told before anything else', () => {
    const removal = { pod: 'web-4', uid: 'uid-4-A', index: 4, state: 'asked' as const };
    for (const o of [{ requested: undefined }, { requested: '5' }, { requested: '6', replicas: 6, pods: 'A A A A A A' }]) {
      const a = plan(snap({ ...steady, ...o, removal })) as Removal;
      expect(a, JSON.stringify(o)).to.include({ kind: 'callRemoval', call: 'withdrawn' });
      expect(a.pod.pod).to.equal('web-4');
    }
    const done = approveAndPlan({ ...steady, removal }) as Patch;
    expect(done).to.include({ why: 'removed', removal: null });
  });

  it('a scale-up after the approval, before the pod went, withdraws it too', () => {
    const removal = { pod: 'web-4', uid: 'uid-4-A', index: 4, state: 'approved' as const };
    const a = plan(snap({ ...steady, replicas: 5, pods: 'A A A A A', removal })) as Removal;
    expect(a).to.include({ kind: 'callRemoval', call: 'withdrawn' });
  });

  it('a request at or above replicas is cleared without a hook call', () => {
    for (const r of ['5', '7']) {
      const a = plan(snap({ ...steady, requested: r })) as Patch;
      expect(a).to.include({ kind: 'patch', why: 'request', clearRequest: true });
      expect(a.replicas).to.equal(undefined);
    }
  });

  it('holds, with the way out, on 0 and on a malformed request', () => {
    const zero = plan(snap({ ...steady, requested: '0' }));
    expect(zero).to.include({ kind: 'hold', phase: 'Held' });
    expect((zero as { reason: string }).reason).to.match(/sts-pilot pause web -n default/);
    const bad = plan(snap({ ...steady, requested: 'three' }));
    expect(bad).to.include({ kind: 'hold', phase: 'Held' });
    expect((bad as { reason: string }).reason).to.match(/requested-replicas must be a whole number.*kubectl annotate/);
  });

  it('a paused StatefulSet is left alone, and an unusable hook holds', () => {
    expect(plan(snap({ ...steady, requested: '3', paused: 'true' }))).to.include({ kind: 'hold', phase: 'Paused' });
    expect(plan(snap({ ...steady, requested: '3', removal: { pod: 'web-4', uid: 'uid-4-A', index: 4, state: 'asked' }, hookProblem: 'unknown hook' }))).to.include({ kind: 'hold', phase: 'Held' });
  });

  it('goes before the next rollout step, and only once the step in flight is back', () => {
    // Mid-rollout: web-4 updated (B), partition 4; a scale-down to 4 removes web-4 before web-3 moves.
    const mid: SnapOpts = { replicas: 5, partition: 4, cur: 'A', upd: 'B', pods: 'A A A A B', mark: { revision: 'B', partition: 4, uid: 'uid-4-B' }, requested: '4' };
    expect((plan(snap(mid)) as Patch).removal?.pod).to.equal('web-4');
    // The pod approved last (web-3) is still away: web-4 waits for it.
    const away = plan(snap({ ...mid, partition: 3, mark: { revision: 'B', partition: 3, uid: 'uid-3-B' }, pods: 'A A A B! B', requested: '3' }));
    expect(away.kind).to.equal('hold');
    expect((away as { reason: string }).reason).to.match(/^scale-down to 3: waiting for pod web-3 to be Ready/);
  });

  it('the guard still acts first', () => {
    const a = plan(snap({ replicas: 5, partition: 2, cur: 'A', upd: 'B', pods: 'A A A A A', requested: '3' }));
    expect(a).to.include({ kind: 'patch', why: 'guard' });
  });
});
