import { expect } from 'chai';
import { type Action, APPROVAL_TTL_MS, ORDER_RETRY_MS, ORDER_TTL_MS, orderKey, plan } from '../../lib/rollout/planner.ts';
import type { Snapshot } from '../../lib/rollout/snapshot.ts';
import { snap, type SnapOpts } from './fixtures.ts';

/** One line per action, so a table row reads like the rollout it describes. */
function show(a: Action): string {
  switch (a.kind) {
    case 'none':
      return `none(${a.phase})`;
    case 'hold':
      return `hold(${a.phase}): ${a.reason}`;
    case 'callHook':
      return `hook(${a.prev?.name ?? 'null'} -> ${a.next?.name ?? 'null'})`;
    case 'patch': {
      const mark = a.mark === undefined ? '' : a.mark === null ? ' mark=clear' : ` mark=${a.mark.revision}/${a.mark.partition}`;
      const part = a.partition === undefined ? '' : ` P=${a.partition}`;
      return `patch(${a.why}${part}${mark})`;
    }
    case 'deletePod':
      return `delete(${a.pod.name} mark=${a.mark.revision}/${a.mark.partition})`;
    case 'askOrder':
      return `askOrder(${a.stale.map((p) => p.name).join(' ')})`;
    case 'pause':
      return `pause(${a.policy}): ${a.reason}`;
    case 'callRemoval':
      return `removal(${a.call} ${a.pod.pod})`;
  }
}

/** Plans once without an approval; when that asks the hook, plans again as if it approved. */
function approveAndPlan(o: SnapOpts): string {
  const first = plan(snap(o));
  if (first.kind !== 'callHook') throw new Error(`expected a hook call, got ${show(first)}`);
  return show(plan(snap({ ...o, approval: { key: first.key, at: o.now ?? 1_000_000 } })));
}

type Row = [name: string, opts: SnapOpts, expected: string | RegExp];

function table(rows: Row[]): void {
  for (const [name, opts, expected] of rows) {
    it(name, () => {
      const got = show(plan(snap(opts)));
      if (expected instanceof RegExp) expect(got).to.match(expected);
      else expect(got).to.equal(expected);
    });
  }
}

describe('planner: RollingUpdate', () => {
  describe('holding when no rollout is in progress', () => {
    table([
      ['steady at P=N does nothing', { cur: 'B', upd: 'B', partition: 5, pods: 'B B B B B' }, 'none(Steady)'],
      ['newly subscribed, partition unset: raise to N', { cur: 'B', upd: 'B', pods: 'B B B B B' }, 'patch(hold P=5)'],
      ['newly subscribed, partition 0: raise to N', { cur: 'B', upd: 'B', partition: 0, pods: 'B B B B B' }, 'patch(hold P=5)'],
      ['scale up while steady raises P with N', { replicas: 7, cur: 'B', upd: 'B', partition: 5, pods: 'B B B B B B! -' }, 'patch(hold P=7)'],
      ['scale down while steady lowers P to N', { replicas: 3, cur: 'B', upd: 'B', partition: 5, pods: 'B B B B+ B+' }, 'patch(hold P=3)'],
      ['replicas 0 is steady at P=0', { replicas: 0, cur: 'B', upd: 'B', partition: 3, pods: '' }, 'patch(hold P=0)'],
      ['replicas 0, P=0: nothing', { replicas: 0, cur: 'B', upd: 'B', partition: 0, pods: '' }, 'none(Steady)'],
      ['a stale mark from an abandoned rollout is cleared', { cur: 'B', upd: 'B', partition: 5, pods: 'B B B B B', mark: { revision: 'C', partition: 3 } }, 'patch(hold mark=clear)'],
    ]);
  });

  describe('start, middle and end of a rollout', () => {
    table([
      ['start: ask for the highest pod, prev null', { partition: 5, pods: 'A A A A A' }, 'hook(null -> web-4)'],
      ['in flight: approved pod not yet deleted', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A A' }, /^hold\(Rolling\): waiting for pod web-4 to be updated to B/],
      ['in flight: approved pod terminating', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A A~' }, /waiting for pod web-4 to be updated/],
      ['in flight: approved pod gone', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A -' }, /waiting for pod web-4 to be updated/],
      ['in flight: updated pod not Ready yet', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B!' }, /waiting for pod web-4 to be Ready/],
      ['middle: next is P-1, prev is P', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B' }, 'hook(web-4 -> web-3)'],
      ['middle: later step', { partition: 2, mark: { revision: 'B', partition: 2 }, pods: 'A A B B B' }, 'hook(web-2 -> web-1)'],
      ['last pod: next is web-0', { partition: 1, mark: { revision: 'B', partition: 1 }, pods: 'A B B B B' }, 'hook(web-1 -> web-0)'],
      ['all updated, status not converged yet', { partition: 0, mark: { revision: 'B', partition: 0 }, cur: 'A', pods: 'B B B B B' }, /^hold\(Rolling\): all pods run B; waiting for the StatefulSet status/],
      ['end: final hook call with prev web-0 and next null', { partition: 0, mark: { revision: 'B', partition: 0 }, cur: 'B', pods: 'B B B B B' }, 'hook(web-0 -> null)'],
      ['end: final call waits for every pod to be Ready', { partition: 0, mark: { revision: 'B', partition: 0 }, cur: 'B', pods: 'B B B! B B' }, /waiting for pod web-2 to be Ready/],
    ]);

    it('an approval moves the partition by exactly one and marks the step', () => {
      expect(approveAndPlan({ partition: 5, pods: 'A A A A A' })).to.equal('patch(step P=4 mark=B/4)');
      expect(approveAndPlan({ partition: 2, mark: { revision: 'B', partition: 2 }, pods: 'A A B B B' })).to.equal(
        'patch(step P=1 mark=B/1)',
      );
      expect(approveAndPlan({ partition: 1, mark: { revision: 'B', partition: 1 }, pods: 'A B B B B' })).to.equal(
        'patch(step P=0 mark=B/0)',
      );
    });

    it('the final approval restores P=N and clears the mark', () => {
      expect(approveAndPlan({ partition: 0, mark: { revision: 'B', partition: 0 }, cur: 'B', pods: 'B B B B B' })).to.equal(
        'patch(finish P=5 mark=clear)',
      );
    });

    it('an approval for another step is ignored', () => {
      const o: SnapOpts = { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B' };
      const stale = plan(snap({ partition: 5, pods: 'A A A A A' }));
      if (stale.kind !== 'callHook') throw new Error('expected hook call');
      expect(show(plan(snap({ ...o, approval: { key: stale.key, at: 1_000_000 } })))).to.equal('hook(web-4 -> web-3)');
    });

    it('an approval for the same ordinal but a recreated pod is ignored', () => {
      const a = plan(snap({ partition: 5, pods: 'A A A A A' }));
      if (a.kind !== 'callHook') throw new Error('expected hook call');
      const recreated = snap({ partition: 5, pods: 'A A A A A', approval: { key: a.key, at: 1_000_000 } });
      recreated.pods[4] = { ...recreated.pods[4]!, uid: 'another-uid' };
      expect(show(plan(recreated))).to.equal('hook(null -> web-4)');
    });

    it('an approval older than the TTL is asked again', () => {
      const o: SnapOpts = { partition: 5, pods: 'A A A A A', now: 5_000_000 };
      const a = plan(snap(o));
      if (a.kind !== 'callHook') throw new Error('expected hook call');
      expect(show(plan(snap({ ...o, approval: { key: a.key, at: 5_000_000 - APPROVAL_TTL_MS - 1 } })))).to.equal(
        'hook(null -> web-4)',
      );
    });

    it('the final call is keyed to the last approved pod', () => {
      const a = plan(snap({ partition: 0, mark: { revision: 'B', partition: 0 }, cur: 'B', pods: 'B B B B B' }));
      // Bound to the revision, the mark, the generation, the hook's configuration and the pods as seen.
      expect(a.kind === 'callHook' && a.key).to.equal('final|B|0|2|["noop",[]]|uid-0-B@rv-0-B|-');
    });
  });

  describe('restart at every point: the answer depends only on the cluster', () => {
    // The controller's memory is the approval alone; dropping it (a restart) at any
    // point may repeat a hook call, never a partition move.
    const points: Row[] = [
      ['before the first call', { partition: 5, pods: 'A A A A A' }, 'hook(null -> web-4)'],
      ['after a patch, before the StatefulSet controller acted', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A A' }, /waiting for pod web-4/],
      ['while the pod is recreated', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A -' }, /waiting for pod web-4/],
      ['after the pod is Ready', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B' }, 'hook(web-4 -> web-3)'],
      ['before the final call', { partition: 0, mark: { revision: 'B', partition: 0 }, cur: 'B', pods: 'B B B B B' }, 'hook(web-0 -> null)'],
      ['after the final patch', { partition: 5, cur: 'B', pods: 'B B B B B' }, 'none(Steady)'],
    ];
    table(points);
  });

  describe('pods not ready or missing hold the step', () => {
    table([
      ['a not-Ready pod below the partition', { partition: 5, pods: 'A A! A A A' }, /^hold\(Rolling\): waiting for pod web-1 to be Ready/],
      ['a missing pod', { partition: 5, pods: 'A - A A A' }, /waiting for pod web-1 to be created/],
      ['a terminating pod', { partition: 5, pods: 'A A A~ A A' }, /waiting for pod web-2 to finish terminating/],
      ['a pod without a revision label', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A ?' }, /waiting for pod web-4 to be updated/],
      ['minReadySeconds not yet elapsed', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B', minReadySeconds: 7200 }, /minReadySeconds=7200/],
    ]);

    it('minReadySeconds asks to be called again when it elapses', () => {
      const now = 1_000_000;
      const s = snap({ partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B', minReadySeconds: 10, now });
      s.pods[4] = { ...s.pods[4]!, readySince: now - 4_000 };
      const a = plan(s);
      expect(a.kind === 'hold' && a.retryAfterMs).to.equal(6_000);
    });
  });

  describe('scale up and down during a rollout', () => {
    table([
      ['scale up: new pods above the partition come at the update revision', { replicas: 7, partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A B B B B' }, 'hook(web-3 -> web-2)'],
      ['scale up: waits for the new pods', { replicas: 7, partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A B B B! -' }, /waiting for pod web-6 to be created/],
      ['scale down below the partition: leftovers block', { replicas: 3, partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A B+ B+' }, /waiting for scale-down to remove web-3, web-4/],
      ['scale down done: next is N-1, prev gone', { replicas: 3, partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A' }, 'hook(null -> web-2)'],
      ['scale down below updated pods: skip over them', { replicas: 3, partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A' }, 'patch(skip P=3)'],
    ]);
  });

  describe('paused, generation, strategy, hook problems', () => {
    table([
      ['paused holds before anything', { partition: 5, paused: 'true' }, /^hold\(Paused\)/],
      ['paused "false" is not paused', { partition: 5, paused: 'false' }, 'hook(null -> web-4)'],
      ['a malformed paused value holds', { partition: 5, paused: 'yes please' }, /^hold\(Held\): annotation sts-pilot.io\/paused must be "true" or "false", got "yes please"/],
      ['observedGeneration behind holds', { partition: 5, generation: 3, observedGeneration: 2 }, /^hold\(Waiting\): .*observe generation 3 \(observed 2\)/],
      ['observedGeneration missing holds', { partition: 5, observedGeneration: undefined }, /observed none/],
      ['no updateRevision yet holds', { partition: 5, upd: '' }, /status.updateRevision/],
      ['unknown strategy is unmanageable', { strategy: 'Surprise' }, /^hold\(Unmanageable\)/],
      ['a hook problem holds the step', { partition: 5, hookProblem: 'unknown hook "nope"' }, 'hold(Held): unknown hook "nope"'],
      ['a hook problem still holds P at N when steady', { cur: 'B', upd: 'B', partition: 0, pods: 'B B B B B', hookProblem: 'x' }, 'patch(hold P=5)'],
      ['a hook problem holds the final call', { partition: 0, mark: { revision: 'B', partition: 0 }, cur: 'B', pods: 'B B B B B', hookProblem: 'bad option' }, 'hold(Held): bad option'],
    ]);
  });

  describe('partition changed by someone else', () => {
    table([
      ['lowered by hand below the in-flight pod: raised back', { partition: 2, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B' }, 'patch(guard P=4)'],
      ['lowered by hand with no mark: raised to the frontier', { partition: 0, pods: 'A A A B B' }, 'patch(guard P=3)'],
      ['lowered to 0 at the start: raised to N', { partition: 0, pods: 'A A A A A' }, 'patch(guard P=5)'],
      ['raised by hand above updated pods: lowered without a hook call', { partition: 5, mark: { revision: 'B', partition: 3 }, pods: 'A A A B B' }, 'patch(skip P=3)'],
      ['adopting a native rollout in flight: pod being replaced is stopped', { partition: 0, pods: 'A A A~ B B' }, 'patch(guard P=3)'],
      ['a missing pod above the frontier is waited for, not skipped over', { partition: 5, pods: 'A A A A -' }, /^hold\(Rolling\): waiting for pod web-4 to be created/],
      ['a missing pod is not guarded against: it has nothing to move', { partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A B -' }, /waiting for pod web-4 to be created/],
      ['a terminating old pod above the partition is guarded', { partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A B A~' }, 'patch(guard P=5)'],
      ['the guard acts even with a hook problem', { partition: 0, pods: 'A A A B B', hookProblem: 'x' }, 'patch(guard P=3)'],
      // Deleted by the StatefulSet controller, not yet recreated: it would come back at B.
      ['a missing pod below where sts-pilot left P is guarded', { partition: 1, mark: { revision: 'B', partition: 3 }, pods: 'A A - B B' }, 'patch(guard P=3)'],
      ['a missing pod with no mark is guarded up to N', { partition: 3, pods: 'A A A A -' }, 'patch(guard P=5)'],
      ['a missing pod below updated ones, no mark: guarded just above it', { partition: 3, pods: 'A A A - B' }, 'patch(guard P=4)'],
    ]);

    it('the guard message names the pod it protects', () => {
      const a = plan(snap({ partition: 2, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B' }));
      expect(a.kind === 'patch' && a.message).to.match(/pod web-3 would move to B without the hook's approval; raising the partition 2 -> 4/);
      const gone = plan(snap({ partition: 1, mark: { revision: 'B', partition: 3 }, pods: 'A A - B B' }));
      expect(gone.kind === 'patch' && gone.message).to.match(/pod web-2 would be recreated at B without the hook's approval; raising the partition 1 -> 3/);
    });
  });

  describe('a new template mid-rollout and a rollback', () => {
    table([
      ['new revision C mid-rollout: pods on B are not moved without approval', { cur: 'A', upd: 'C', partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A B B' }, 'patch(guard P=5)'],
      ['then the rollout to C starts at the top', { cur: 'A', upd: 'C', partition: 5, mark: { revision: 'B', partition: 3 }, pods: 'A A A B B' }, 'hook(null -> web-4)'],
      ['rollback (template reverted to A): pods on B are guarded', { cur: 'A', upd: 'A', partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A B B' }, 'patch(guard P=5)'],
      ['rollback: each reverted pod needs an approval', { cur: 'A', upd: 'A', partition: 5, mark: { revision: 'B', partition: 3 }, pods: 'A A A B B' }, 'hook(null -> web-4)'],
      ['rollback: pods already at A are skipped without a hook call', { cur: 'A', upd: 'A', partition: 3, mark: { revision: 'A', partition: 3 }, pods: 'A A A A A' }, 'hook(web-3 -> null)'],
      // Re-created over its orphaned pods: the status knows one revision only (currentRevision ==
      // updateRevision == B), the pods still run A. Their own revisions decide, not the status.
      ['re-created over orphans, partition lowered: the pods at A are guarded', { cur: 'B', upd: 'B', replicas: 3, partition: 0, pods: 'A A A' }, 'patch(guard P=3)'],
      ['re-created over orphans, held: each pod moves after its approval', { cur: 'B', upd: 'B', replicas: 3, partition: 3, pods: 'A A A' }, 'hook(null -> web-2)'],
      ['re-created over orphans, one moved: the next is asked', { cur: 'B', upd: 'B', replicas: 3, partition: 2, mark: { revision: 'B', partition: 2 }, pods: 'A A B' }, /^hook\(web-2 -> web-1\)/],
    ]);

    it('a rollback walks back pod by pod, then finishes', () => {
      const o: SnapOpts = { cur: 'A', upd: 'A', partition: 4, mark: { revision: 'A', partition: 4 }, pods: 'A A A B A' };
      expect(show(plan(snap(o)))).to.equal('hook(web-4 -> web-3)');
      expect(approveAndPlan(o)).to.equal('patch(step P=3 mark=A/3)');
    });
  });

  describe('the guard acts before the StatefulSet controller has observed the spec', () => {
    // generation 3, observed 2: its status still speaks of the old spec.
    const unobserved: SnapOpts = { generation: 3, observedGeneration: 2 };
    table([
      ['a new template mid-rollout: raised to N on the first event', { ...unobserved, template: 'tC', heldTemplate: 'tB', partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A B B' }, 'patch(guard P=5)'],
      ['a new template with the partition already at N: nothing at risk', { ...unobserved, template: 'tC', heldTemplate: 'tB', partition: 5, pods: 'A A A A A' }, /waiting for the StatefulSet controller to observe generation 3/],
      ['our own step, not yet observed: the pod in flight is not at risk', { ...unobserved, heldRevision: 'B', partition: 3, mark: { revision: 'B', partition: 3, uid: 'uid-3-A' }, pods: 'A A A A B' }, /waiting for the StatefulSet controller to observe/],
      ['a pod above the partition runs another revision than the one it was set for: raised', { ...unobserved, heldRevision: 'B', partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A A C' }, 'patch(guard P=5)'],
      ['another pod replaced the approved one at the partition: not in flight any more', { ...unobserved, heldRevision: 'B', partition: 3, mark: { revision: 'B', partition: 3, uid: 'someone-else' }, pods: 'A A A A B' }, 'patch(guard P=5)'],
      ['the partition lowered after a guard that could not name the revision: raised', { ...unobserved, heldRevision: undefined, partition: 2, pods: 'A A A A A' }, 'patch(guard P=5)'],
      ['a hand-lowered partition, observed: raised just above the stale pod', { partition: 1, pods: 'A A A A B' }, 'patch(guard P=4)'],
      ['a stale pod a scale-down left: the partition goes above it (a scale-up would bring it back)', { replicas: 3, partition: 3, pods: 'A A A A' }, 'patch(guard P=4)'],
      ['a missing pod is no risk when both revisions are the same: it comes back at B either way', { cur: 'B', upd: 'B', partition: 3, pods: 'B B B - B' }, 'patch(hold P=5)'],
    ]);
  });

  describe('a broken release (its pods never Ready) can be rolled back or fixed', () => {
    table([
      ['the broken pod at the top holds the release itself', { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B!' }, /waiting for pod web-4 to be Ready/],
      ['rolled back (upd back to A, partition held at N): the broken pod is next, unready', { cur: 'A', upd: 'A', partition: 5, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B!' }, 'hook(null -> web-4)'],
      ['fixed forward to C: the same', { cur: 'A', upd: 'C', partition: 5, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B!' }, 'hook(null -> web-4)'],
      ['approved and unready: OrderedReady never replaces it, sts-pilot does', { cur: 'A', upd: 'C', partition: 4, mark: { revision: 'C', partition: 4, uid: 'uid-4-B' }, pods: 'A A A A B!' }, 'delete(web-4 mark=C/4)'],
      ['Parallel replaces it itself: wait', { podManagementPolicy: 'Parallel', cur: 'A', upd: 'C', partition: 4, mark: { revision: 'C', partition: 4 }, pods: 'A A A A B!' }, /waiting for pod web-4 to be updated to C/],
      ['another pod not Ready at the update revision holds it', { cur: 'A', upd: 'C', partition: 4, mark: { revision: 'C', partition: 4 }, pods: 'A A A C! B!' }, /waiting for pod web-3 to be Ready/],
      ['a pod left unready at an abandoned revision below: a person decides, told how', { cur: 'A', upd: 'C', partition: 5, pods: 'B! A A A A' }, /delete pod web-0 and it is recreated at A/],
      ['a pod missing above the broken one cannot be created (OrderedReady): the partition goes over it', { replicas: 2, cur: 'B', upd: 'C', partition: 2, pods: 'X! -' }, 'patch(skip P=1)'],
      ['then the broken pod is next', { replicas: 2, cur: 'B', upd: 'C', partition: 1, pods: 'X! -' }, 'hook(null -> web-0)'],
    ]);

    it('the hook is told next is not Ready', () => {
      const a = plan(snap({ cur: 'A', upd: 'A', partition: 5, pods: 'A A A A B!' }));
      expect(a.kind === 'callHook' && a.nextReady).to.equal(false);
      expect(a.kind === 'callHook' && a.message).to.match(/not Ready: replacing a broken pod/);
    });
  });

  describe('spec.ordinals.start', () => {
    table([
      ['start 1: the top pod is web-5', { start: 1, partition: 5, pods: 'A A A A A' }, 'hook(null -> web-5)'],
      ['start 3: in the middle', { start: 3, partition: 3, mark: { revision: 'B', partition: 3 }, pods: 'A A A B B' }, 'hook(web-6 -> web-5)'],
      ['start 3: a missing pod is named by its ordinal', { start: 3, partition: 2, mark: { revision: 'B', partition: 2 }, pods: 'A - B B B' }, /waiting for pod web-4 to be created/],
      ['start 1: the end', { start: 1, cur: 'B', partition: 0, mark: { revision: 'B', partition: 0 }, pods: 'B B B B B' }, 'hook(web-1 -> null)'],
    ]);
  });

  describe('an approval holds only for the state it was given in', () => {
    const o: SnapOpts = { partition: 4, mark: { revision: 'B', partition: 4 }, pods: 'A A A A B' };
    const approvedAgain = (change: SnapOpts): string => {
      const first = plan(snap(o));
      if (first.kind !== 'callHook') throw new Error('expected a hook call');
      return show(plan(snap({ ...o, ...change, approval: { key: first.key, at: 1_000_000 } })));
    };
    it('the same state: the step', () => expect(approvedAgain({})).to.equal('patch(step P=3 mark=B/3)'));
    it('another generation (the spec changed): asked again', () => expect(approvedAgain({ generation: 3, observedGeneration: 3 })).to.equal('hook(web-4 -> web-3)'));
    it('other hook options: asked again', () => expect(approvedAgain({ hookConfig: '["noop",[["x","1"]]]' })).to.equal('hook(web-4 -> web-3)'));
    it('next changed (its resourceVersion): asked again', () => expect(approvedAgain({ pods: 'A A A A! B' })).to.match(/^hold|^hook/));
  });

  describe('replicas 1', () => {
    table([
      ['start', { replicas: 1, partition: 1, pods: 'A' }, 'hook(null -> web-0)'],
      ['in flight', { replicas: 1, partition: 0, mark: { revision: 'B', partition: 0 }, pods: 'A~' }, /waiting for pod web-0 to be updated/],
      ['end', { replicas: 1, partition: 0, mark: { revision: 'B', partition: 0 }, cur: 'B', pods: 'B' }, 'hook(web-0 -> null)'],
    ]);
    it('finish restores P=1', () => {
      expect(approveAndPlan({ replicas: 1, partition: 0, mark: { revision: 'B', partition: 0 }, cur: 'B', pods: 'B' })).to.equal(
        'patch(finish P=1 mark=clear)',
      );
    });
  });
});

describe('planner: OnDelete', () => {
  const od = (o: SnapOpts): SnapOpts => ({ strategy: 'OnDelete', ...o });
  table([
    ['steady', od({ cur: 'A', upd: 'B', pods: 'B B B B B' }), 'none(Steady)'],
    ['start: highest pod first', od({ pods: 'A A A A A' }), 'hook(null -> web-4)'],
    ['waits for the deleted pod to come back', od({ mark: { revision: 'B', partition: 4 }, pods: 'A A A A -' }), /waiting for pod web-4 to be created/],
    ['waits while it terminates', od({ mark: { revision: 'B', partition: 4 }, pods: 'A A A A A~' }), /web-4 to finish terminating/],
    ['middle', od({ mark: { revision: 'B', partition: 4 }, pods: 'A A A A B' }), 'hook(web-4 -> web-3)'],
    ['end: final call', od({ mark: { revision: 'B', partition: 0 }, pods: 'B B B B B' }), 'hook(web-0 -> null)'],
    ['a stale mark is cleared', od({ mark: { revision: 'Z', partition: 0 }, pods: 'B B B B B' }), 'patch(hold mark=clear)'],
  ]);
  it('an approval deletes exactly the next pod and marks it', () => {
    expect(approveAndPlan(od({ mark: { revision: 'B', partition: 4 }, pods: 'A A A A B' }))).to.equal('delete(web-3 mark=B/3)');
  });
  it('the final approval clears the mark and leaves the partition alone', () => {
    expect(approveAndPlan(od({ mark: { revision: 'B', partition: 0 }, pods: 'B B B B B' }))).to.equal('patch(finish mark=clear)');
  });
});

describe('planner: OnDelete in the order the hook chooses (podUpdateOrder)', () => {
  const NOW = 1_000_000;
  const iso = (t: number): string => new Date(t).toISOString();
  const base = (o: SnapOpts): SnapOpts => ({ strategy: 'OnDelete', hookOrders: true, now: NOW, ...o });
  /** The key the planner expects for this snapshot's stale pods, so an order can be recorded for it. */
  const keyOf = (o: SnapOpts): string => {
    const s: Snapshot = snap(base(o));
    return orderKey(s, 'B', s.pods.filter((p) => p.revision !== 'B' && p.index < s.sts.replicas));
  };
  const ordered = (o: SnapOpts, pods: string[], extra: { at?: number; key?: string } = {}): SnapOpts =>
    base({ ...o, order: { key: extra.key ?? keyOf(o), at: iso(extra.at ?? NOW - 1000), pods, reason: 'replicas first, the leader last' } });
  const failed = (o: SnapOpts, error: string, at = NOW - 1000): SnapOpts => base({ ...o, order: { key: keyOf(o), at: iso(at), error } });

  table([
    ['no order yet: ask for one about every stale pod', base({ pods: 'A A A' , replicas: 3 }), 'askOrder(web-2 web-1 web-0)'],
    ['the first pod of the order is next, prev null at the start', ordered({ replicas: 3, pods: 'A A A' }, ['web-1', 'web-2', 'web-0']), 'hook(null -> web-1)'],
    ['the order may put the highest ordinal last', ordered({ replicas: 3, pods: 'A A A' }, ['web-0', 'web-1', 'web-2']), 'hook(null -> web-0)'],
    [
      'prev is the pod approved last (the mark), wherever the order put it',
      ordered({ replicas: 3, pods: 'A B A', mark: { revision: 'B', partition: 1 } }, ['web-2', 'web-0']),
      'hook(web-1 -> web-2)',
    ],
    ['an order for other stale pods (a step since) is asked again', ordered({ replicas: 3, pods: 'A B A', mark: { revision: 'B', partition: 1 } }, ['web-1', 'web-2', 'web-0'], { key: 'old-key' }), 'askOrder(web-2 web-0)'],
    ['an order older than its TTL is asked again', ordered({ replicas: 3, pods: 'A A A' }, ['web-1', 'web-2', 'web-0'], { at: NOW - ORDER_TTL_MS - 1 }), 'askOrder(web-2 web-1 web-0)'],
    ['an order from the future (a clock off by more than the TTL) is asked again', ordered({ replicas: 3, pods: 'A A A' }, ['web-1', 'web-2', 'web-0'], { at: NOW + ORDER_TTL_MS + 1 }), 'askOrder(web-2 web-1 web-0)'],
    ['an unreadable order time is asked again', base({ replicas: 3, pods: 'A A A', order: { key: keyOf({ replicas: 3, pods: 'A A A' }), at: 'yesterday', pods: ['web-0', 'web-1', 'web-2'] } }), 'askOrder(web-2 web-1 web-0)'],
    ['the hook could not order: hold with its reason', failed({ replicas: 3, pods: 'A A A' }, 'Patroni REST API unreachable'), /^hold\(Rolling\): the hook gave no order for the stale pods: Patroni REST API unreachable/],
    ['a failed order is asked again after the retry delay', failed({ replicas: 3, pods: 'A A A' }, 'unreachable', NOW - ORDER_RETRY_MS - 1), 'askOrder(web-2 web-1 web-0)'],
    ['no order is asked while a pod is not Ready (the updated one coming up)', base({ replicas: 3, pods: 'A B! A', mark: { revision: 'B', partition: 1 } }), /^hold\(Rolling\): waiting for pod web-1 to be Ready/],
    ['no order is asked while the deleted pod terminates', base({ replicas: 3, pods: 'A A~ A', mark: { revision: 'B', partition: 1 } }), /web-1 to finish terminating/],
    ['a broken stale pod goes first, whatever the order', ordered({ replicas: 3, pods: 'A A A!' }, ['web-0', 'web-1', 'web-2']), 'hook(null -> web-2)'],
    ['a broken stale pod is replaced without asking for an order', base({ replicas: 3, pods: 'A A! A' }), 'hook(null -> web-1)'],
    ['all updated: the final call, prev the pod approved last', base({ replicas: 3, pods: 'B B B', mark: { revision: 'B', partition: 1 } }), 'hook(web-1 -> null)'],
    ['a hook problem holds before any order is asked', base({ replicas: 3, pods: 'A A A', hookProblem: 'invalid patroni hook options' }), /^hold\(Held\): invalid patroni hook options/],
    ['paused: no order is asked', base({ replicas: 3, pods: 'A A A', paused: 'true' }), /^hold\(Paused\)/],
    ['a RollingUpdate StatefulSet ignores the order', { ...ordered({ replicas: 3, pods: 'A A A' }, ['web-0', 'web-1', 'web-2']), strategy: 'RollingUpdate', partition: 3 }, 'hook(null -> web-2)'],
    ['without podUpdateOrder a recorded order is ignored', { ...ordered({ replicas: 3, pods: 'A A A' }, ['web-0', 'web-1', 'web-2']), hookOrders: false }, 'hook(null -> web-2)'],
  ]);

  it('an approval deletes exactly the pod the order chose, and marks its index', () => {
    expect(approveAndPlan(ordered({ replicas: 3, pods: 'A A A' }, ['web-1', 'web-2', 'web-0']))).to.equal('delete(web-1 mark=B/1)');
    expect(approveAndPlan(ordered({ replicas: 3, pods: 'A B A', mark: { revision: 'B', partition: 1 } }, ['web-2', 'web-0']))).to.equal('delete(web-2 mark=B/2)');
  });

  it('the order is part of the approved step: a new order that chooses another pod asks the hook again', () => {
    const o = ordered({ replicas: 3, pods: 'A A A' }, ['web-1', 'web-2', 'web-0']);
    const first = plan(snap(o));
    if (first.kind !== 'callHook') throw new Error(`expected a hook call, got ${show(first)}`);
    const reordered = ordered({ replicas: 3, pods: 'A A A' }, ['web-2', 'web-1', 'web-0']);
    expect(show(plan(snap({ ...reordered, approval: { key: first.key, at: NOW } })))).to.equal('hook(null -> web-2)');
  });

  it('the key names the stale pods, not their order or the time', () => {
    const a = keyOf({ replicas: 3, pods: 'A A A' });
    expect(keyOf({ replicas: 3, pods: 'A A A', now: NOW + 5000 })).to.equal(a);
    expect(keyOf({ replicas: 3, pods: 'A B A' })).to.not.equal(a);
    expect(keyOf({ replicas: 3, pods: 'A A A', generation: 3 })).to.not.equal(a);
  });

  it('the hook call says why the pod is next', () => {
    const a = plan(snap(ordered({ replicas: 3, pods: 'A A A' }, ['web-1', 'web-2', 'web-0'])));
    expect(a.kind === 'callHook' && a.why).to.equal("first in the hook's order (web-1, web-2, web-0): replicas first, the leader last");
    expect(a.kind === 'callHook' && a.message).to.match(/web-1 \(1\/3\)/);
  });
});
