import { expect } from 'chai';
import { POLICY_ANNOTATIONS as A } from '../../lib/names.ts';
import { type Action, plan } from '../../lib/rollout/planner.ts';
import { checkAfter, findCycle, parseAfter, peerState } from '../../lib/rollout/policies/after.ts';
import { formatSeconds, parseDuration } from '../../lib/rollout/policies/duration.ts';
import { checkHalt, parseHaltAfter } from '../../lib/rollout/policies/halt.ts';
import { checkHoldTimeout, heldSinceOf } from '../../lib/rollout/policies/hold-timeout.ts';
import { policyReport } from '../../lib/rollout/policies/index.ts';
import { checkOverride, parseOverride } from '../../lib/rollout/policies/override.ts';
import { checkStepDelay } from '../../lib/rollout/policies/step-delay.ts';
import type { AppliedOverride, PeerView } from '../../lib/rollout/policies/types.ts';
import { insideAny, nextOpening, parseWindows, windowState } from '../../lib/rollout/policies/window.ts';
import { instantsOf } from '../../lib/rollout/policies/zoned-time.ts';
import type { Snapshot } from '../../lib/rollout/snapshot.ts';
import { pods, snap, type SnapOpts } from './fixtures.ts';

const T = (iso: string): number => Date.parse(iso);
const show = (a: Action): string => {
  switch (a.kind) {
    case 'hold':
      return `hold(${a.phase}${a.policy ? `/${a.policy}` : ''}): ${a.reason}`;
    case 'pause':
      return `pause(${a.policy}/${a.event}): ${a.reason}`;
    case 'callHook':
      return `hook(${a.next?.name ?? 'end'})${a.overdue ? ` overdue: ${a.overdue}` : ''}`;
    case 'patch':
      return `patch(${a.why} P=${a.partition})`;
    case 'deletePod':
      return `delete(${a.why} ${a.pod.name})`;
    default:
      return a.kind;
  }
};
const windows = (raw: string) => {
  const r = parseWindows(raw);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

describe('policy: maintenance window', () => {
  describe('parsing', () => {
    const rows: [string, string | RegExp][] = [
      ['Mon-Fri 01:00-05:00 Europe/Berlin', 'Mon-Fri 01:00-05:00 Europe/Berlin'],
      ['Sat,Sun 22:00-02:00 UTC; daily 12:00-13:00 America/New_York', 'Sat,Sun 22:00-02:00 UTC; daily 12:00-13:00 America/New_York'],
      ['01:00-05:00 europe/berlin', '01:00-05:00 Europe/Berlin'],
      ['always', 'always'],
      ['Mon-Fri 01:00-05:00 Mars/Olympus', /not an IANA time zone/],
      ['Mon-Fri 01:00-05:00 +01:00', /not an IANA time zone/],
      ['Mon-Fry 01:00-05:00 UTC', /not a day/],
      ['Mon 25:00-05:00 UTC', /not a time range/],
      ['Mon 05:00-05:00 UTC', /is empty/],
      ['', /is empty/],
    ];
    for (const [raw, want] of rows) {
      it(JSON.stringify(raw), () => {
        const r = parseWindows(raw);
        const got = r.ok ? r.value.text : r.error;
        if (want instanceof RegExp) expect(got).to.match(want);
        else expect(got).to.equal(want);
      });
    }
  });

  describe('inside or not, and when it next opens (DST transition days table-tested)', () => {
    const rows: [name: string, spec: string, at: string, open: boolean, next: string | undefined][] = [
      ['weekday night, inside', 'Mon-Fri 01:00-05:00 Europe/Berlin', '2026-12-02T01:30:00Z', true, undefined],
      ['weekday evening: opens 01:00 CET = 00:00Z', 'Mon-Fri 01:00-05:00 Europe/Berlin', '2026-12-02T18:00:00Z', false, '2026-12-03T00:00:00.000Z'],
      ['Friday after the window: opens Monday', 'Mon-Fri 01:00-05:00 Europe/Berlin', '2026-12-04T06:00:00Z', false, '2026-12-07T00:00:00.000Z'],
      ['past midnight belongs to the day before (Fri 22:00-02:00, Sat 01:00)', 'Fri 22:00-02:00 UTC', '2026-12-05T01:00:00Z', true, undefined],
      ['past midnight: Thu 01:00 is not Fri night', 'Fri 22:00-02:00 UTC', '2026-12-03T01:00:00Z', false, '2026-12-04T22:00:00.000Z'],
      // Europe/Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST.
      ['spring forward: Sun 02:00-03:00 Berlin does not happen', 'Sun 02:00-03:00 Europe/Berlin', '2026-03-28T23:30:00Z', false, '2026-04-05T00:00:00.000Z'],
      ['spring forward: 01:00-05:00 lasts 3 real hours (00:00Z-03:00Z)', 'daily 01:00-05:00 Europe/Berlin', '2026-03-29T02:30:00Z', true, undefined],
      ['spring forward: closed at 03:00Z (05:00 CEST)', 'daily 01:00-05:00 Europe/Berlin', '2026-03-29T03:00:00Z', false, '2026-03-29T23:00:00.000Z'],
      ['spring forward: a window starting inside the gap opens at the jump', 'Sun 02:30-04:00 Europe/Berlin', '2026-03-28T23:00:00Z', false, '2026-03-29T01:00:00.000Z'],
      // Falls back 2026-10-25 03:00 CEST -> 02:00 CET: 02:00-03:00 happens twice.
      ['fall back: the repeated hour is inside both times (first)', 'Sun 02:00-03:00 Europe/Berlin', '2026-10-25T00:30:00Z', true, undefined],
      ['fall back: the repeated hour is inside both times (second)', 'Sun 02:00-03:00 Europe/Berlin', '2026-10-25T01:30:00Z', true, undefined],
      ['fall back: closed after 03:00 CET', 'Sun 02:00-03:00 Europe/Berlin', '2026-10-25T02:00:00Z', false, '2026-11-01T01:00:00.000Z'],
      // America/New_York springs forward 2026-03-08 02:00 EST -> 03:00 EDT.
      ['New York: daily 09:00 opens at 14:00Z in winter', 'daily 09:00-10:00 America/New_York', '2026-03-07T15:00:00Z', false, '2026-03-08T13:00:00.000Z'],
      ['several windows: the earliest opening wins', 'Mon 01:00-02:00 UTC; Wed 01:00-02:00 Asia/Tokyo', '2026-12-01T00:00:00Z', false, '2026-12-01T16:00:00.000Z'],
      ['Sat,Sun only', 'Sat,Sun 00:00-24:00 UTC', '2026-12-04T23:59:00Z', false, '2026-12-05T00:00:00.000Z'],
    ];
    for (const [name, spec, at, open, next] of rows) {
      it(name, () => {
        const w = windows(spec);
        if (w.always) throw new Error('always');
        expect(insideAny(w.windows, T(at)), 'inside').to.equal(open);
        if (!open) expect(new Date(nextOpening(w.windows, T(at)) ?? 0).toISOString()).to.equal(next);
      });
    }
  });

  it('instantsOf: a skipped minute maps to the jump, a repeated one to two instants', () => {
    expect(instantsOf('Europe/Berlin', 2026, 3, 29, 150)).to.deep.equal({ at: [T('2026-03-29T01:00:00Z')], skipped: true });
    expect(instantsOf('Europe/Berlin', 2026, 10, 25, 150).at).to.deep.equal([T('2026-10-25T00:30:00Z'), T('2026-10-25T01:30:00Z')]);
  });

  it('status text names the next opening in the window zone', () => {
    expect(windowState(windows('Mon-Fri 01:00-05:00 Europe/Berlin'), T('2026-12-02T18:00:00Z')).text).to.match(/^closed; opens Thu 2026-12-03 01:00 /);
    expect(windowState(windows('always'), 0).open).to.equal(true);
  });
});

describe('policy: step-delay, hold-timeout, halt, after, override (pure checks)', () => {
  it('durations', () => {
    expect(parseDuration('1h30m', { min: 0, max: 86_400 })).to.deep.equal({ ok: true, seconds: 5400 });
    expect(parseDuration('300', { min: 0, max: 86_400 })).to.deep.equal({ ok: true, seconds: 300 });
    expect(parseDuration('5 minutes', { min: 0, max: 86_400 }).ok).to.equal(false);
    expect(parseDuration('2d', { min: 0, max: 86_400 }).ok).to.equal(false);
    expect(formatSeconds(5400)).to.equal('1h30m');
  });

  it('step-delay: counts from the pod that became Ready at the update revision last, on top of minReadySeconds', () => {
    const now = 1_000_000;
    const ps = pods('A A A B B', now);
    (ps[3] as { readySince: number }).readySince = now - 100_000;
    (ps[4] as { readySince: number }).readySince = now - 20_000;
    const v = checkStepDelay(60, { pods: ps, upd: 'B', minReadySeconds: 10, now });
    expect(v).to.include({ says: 'hold', retryAfterMs: 50_000 });
    expect(v.text).to.match(/pod web-4 became Ready at B 20s ago; next step in 50s/);
    expect(checkStepDelay(60, { pods: ps, upd: 'B', minReadySeconds: 0, now: now + 40_000 }).says).to.equal('go');
    expect(checkStepDelay(60, { pods: pods('A A A A A', now), upd: 'B', minReadySeconds: 0, now }).says).to.equal('go');
  });

  it('hold-timeout: pauses, or only warns with keep-waiting; no step waiting is no timeout', () => {
    expect(checkHoldTimeout(600, 'pause', 0, 599_000).says).to.equal('go');
    expect(checkHoldTimeout(600, 'pause', 0, 600_000)).to.include({ says: 'pause', event: 'HoldTimeout' });
    expect(checkHoldTimeout(600, 'keep-waiting', 0, 700_000).says).to.equal('overdue');
    expect(checkHoldTimeout(600, 'pause', undefined, 700_000).says).to.equal('go');
  });

  it('halt: N consecutive non-HookNotReady errors pause', () => {
    expect(parseHaltAfter('3')).to.deep.equal({ ok: true, value: 3 });
    for (const bad of ['0', '101', 'three', '-1', '']) expect(parseHaltAfter(bad).ok, bad).to.equal(false);
    expect(checkHalt(3, { count: 2, last: 'x' }).says).to.equal('go');
    expect(checkHalt(3, { count: 3, last: 'connection refused' })).to.include({ says: 'pause', event: 'HookErrorsHalt' });
    expect(checkHalt(3, undefined).says).to.equal('go');
  });

  describe('after', () => {
    const settled: PeerView = { after: undefined, settled: true, why: 'all 3 pods run X' };
    const rows: [string, string[], Record<string, PeerView | null>, string | RegExp][] = [
      ['all settled: go', ['data-hot', 'data-warm'], { 'data-hot': settled, 'data-warm': settled }, 'go'],
      ['one rolling: hold naming it', ['data-hot', 'data-warm'], { 'data-hot': settled, 'data-warm': { after: undefined, settled: false, why: '2 of 3 pods are not at its update revision w2' } }, /^hold: waiting for StatefulSet data-warm: 2 of 3 pods/],
      ['missing: hold', ['data-cold'], {}, /^hold: waiting for StatefulSet data-cold: no StatefulSet of that name/],
      ['itself: invalid', ['web'], {}, /^invalid: names this StatefulSet itself/],
      ['a cycle through a peer: invalid', ['a'], { a: { after: 'b', settled: true, why: '' }, b: { after: 'web', settled: true, why: '' } }, /^invalid: .*cycle \(web -> a -> b -> web\)/],
      ['a cycle elsewhere is not ours', ['a'], { a: { after: 'b', settled: true, why: '' }, b: { after: 'a', settled: true, why: '' } }, 'go'],
    ];
    for (const [name, names, peers, want] of rows) {
      it(name, () => {
        const v = checkAfter('web', names, peers);
        const got = v.says === 'go' ? 'go' : `${v.says}: ${v.text}`;
        if (want instanceof RegExp) expect(got).to.match(want);
        else expect(got).to.equal(want);
      });
    }
    it('parses names, refuses what is not a name', () => {
      expect(parseAfter(' data-hot , data-warm,data-hot')).to.deep.equal({ ok: true, value: ['data-hot', 'data-warm'] });
      expect(parseAfter('Data_Hot').ok).to.equal(false);
      expect(parseAfter(',').ok).to.equal(false);
      expect(findCycle('x', ['y'], { y: { after: 'not a name!', settled: true, why: '' } })).to.equal(undefined);
    });
    it('peer state: pending template, rolling, finishing, settled', () => {
      const base = snap({ cur: 'A', upd: 'B', partition: 5, pods: 'A A A A A' }).sts;
      expect(peerState(base, pods('A A A A A'), undefined).settled).to.equal(false);
      const done = { ...base, currentRevision: 'B' };
      expect(peerState(done, pods('B B B B B'), undefined)).to.include({ settled: true });
      expect(peerState(done, pods('B B B B! B'), undefined).why).to.match(/web-3 is not Ready/);
      expect(peerState({ ...done, mark: { revision: 'B', partition: 0 } }, pods('B B B B B'), undefined).why).to.match(/final hook call/);
      expect(peerState({ ...done, observedGeneration: 1 }, pods('B B B B B'), undefined).why).to.match(/not observed/);
    });
  });

  describe('override', () => {
    const at = '2026-12-02T18:00:00Z';
    const good = { pod: 'web-4', uid: 'uid-4-A', revision: 'B', reason: 'hook stuck on a dead node', at };
    const ps = pods('A A A A A');
    const next = ps[4];
    const base = { by: 'alice' as string | undefined, gateEnforced: true, next, upd: 'B', pods: ps, applied: undefined as AppliedOverride | undefined };
    const rows: [string, Partial<typeof base>, object, string | RegExp][] = [
      ['applies to exactly the next pod at the revision', {}, {}, /^override: .* by alice: hook stuck/],
      ['without the admission gate: refused, holds', { gateEnforced: false }, {}, /^hold: .*admission gate is not in force/],
      ['without a stamped user: refused, holds', { by: undefined }, {}, /^hold: .*no user was stamped/],
      ['another revision: ignored', {}, { revision: 'C' }, /^go: .*another revision/],
      ['the pod was replaced (other uid): ignored', {}, { uid: 'uid-old' }, /^go: .*gone or was replaced/],
      ['not next yet: pending', { next: ps[3] }, { pod: 'web-4' }, /^go: .*pending: the next pod is web-3/],
      ['already applied: never again', { applied: { ...good, by: 'alice' } }, {}, /^go: .*was applied, set by alice: .*; it is never used again/],
    ];
    for (const [name, x, o, want] of rows) {
      it(name, () => {
        const v = checkOverride({ ...good, ...o }, { ...base, ...x });
        const got = `${v.says}: ${v.text}`;
        if (want instanceof RegExp) expect(got).to.match(want);
        else expect(got).to.equal(want);
      });
    }
    it('parsing: JSON, a reason, a timestamp, nothing else', () => {
      expect(parseOverride(JSON.stringify(good)).ok).to.equal(true);
      expect(parseOverride('{').ok).to.equal(false);
      expect(parseOverride(JSON.stringify({ ...good, reason: '' })).ok).to.equal(false);
      expect(parseOverride(JSON.stringify({ ...good, extra: 1 })).ok).to.equal(false);
    });
  });
});

describe('planner with policies: they only hold a step, or an override stands in for the hook', () => {
  // A rollout from A to B, pods 3 and 4 done, pod 2 next (P=3).
  const rolling: SnapOpts = { cur: 'A', upd: 'B', partition: 3, pods: 'A A A B B', mark: { revision: 'B', partition: 3, uid: 'uid-3-B' } };
  const winter = T('2026-12-02T18:00:00Z'); // Wed 19:00 Berlin
  const night = T('2026-12-03T01:00:00Z'); // Thu 02:00 Berlin
  const overrideOf = (pod: string, uid: string, revision = 'B'): string => JSON.stringify({ pod, uid, revision, reason: 'manual check done', at: '2026-12-02T17:00:00Z' });
  const rows: [string, SnapOpts, string | RegExp][] = [
    ['no policies: asks the hook', { ...rolling }, 'hook(web-2)'],
    ['window closed: holds, says when it opens, re-checks soon', { ...rolling, now: winter, annotations: { [A.window]: 'Mon-Fri 01:00-05:00 Europe/Berlin' } }, /^hold\(Rolling\/window\): policy window: outside the maintenance window .*opens Thu 2026-12-03 01:00 .*\(in 6h00m\)/],
    ['window open: asks the hook', { ...rolling, now: night, annotations: { [A.window]: 'Mon-Fri 01:00-05:00 Europe/Berlin' } }, 'hook(web-2)'],
    ['controller default window applies without the annotation', { ...rolling, now: winter, policy: { defaultWindow: 'daily 01:00-05:00 UTC' } }, /^hold\(Rolling\/window\).*controller default/],
    ['"always" opts out of the default', { ...rolling, now: winter, annotations: { [A.window]: 'always' }, policy: { defaultWindow: 'daily 01:00-05:00 UTC' } }, 'hook(web-2)'],
    ['disabled by flag: the window is ignored', { ...rolling, now: winter, annotations: { [A.window]: 'Mon 01:00-02:00 UTC' }, policy: { disabled: ['window'] } }, 'hook(web-2)'],
    ['a step in flight finishes outside the window', { ...rolling, now: winter, partition: 2, mark: { revision: 'B', partition: 2, uid: 'uid-2-A' }, annotations: { [A.window]: 'Mon 01:00-02:00 UTC' } }, /^hold\(Rolling\): waiting for pod web-2 to be updated/],
    ['bad window: held with the reason, nothing moves', { ...rolling, annotations: { [A.window]: 'Mon-Fri 1am-5am Berlin' } }, /^hold\(Held\/window\): policy window: annotation sts-pilot.io\/window "1am-5am" is not a time range.*; holding$/],
    ['bad step-delay: held', { ...rolling, annotations: { [A.stepDelay]: 'soon' } }, /^hold\(Held\/step-delay\): .*"soon" is not a duration/],
    ['bad on-hold-timeout: held', { ...rolling, annotations: { [A.holdTimeout]: '10m', [A.onHoldTimeout]: 'explode' } }, /^hold\(Held\/hold-timeout\): .*must be "pause" or "keep-waiting"/],
    ['step-delay not passed since the last pod became Ready (1h ago): holds', { ...rolling, annotations: { [A.stepDelay]: '2h' } }, /^hold\(Rolling\/step-delay\): .*next step in 1h00m/],
    ['step-delay passed: asks the hook', { ...rolling, annotations: { [A.stepDelay]: '30m' } }, 'hook(web-2)'],
    ['after: a peer still rolling holds', { ...rolling, annotations: { [A.after]: 'data' }, policy: { peers: { data: { after: undefined, settled: false, why: '1 of 3 pods are not at its update revision d2' } } } }, /^hold\(Rolling\/after\): policy after: waiting for StatefulSet data: 1 of 3/],
    ['after: peers settled: asks the hook', { ...rolling, annotations: { [A.after]: 'data' }, policy: { peers: { data: { after: undefined, settled: true, why: '' } } } }, 'hook(web-2)'],
    ['after: a cycle holds as invalid', { ...rolling, annotations: { [A.after]: 'data' }, policy: { peers: { data: { after: 'web', settled: true, why: '' } } } }, /^hold\(Held\/after\): .*cycle \(web -> data -> web\)/],
    ['hold-timeout exceeded while the hook says no: pause', { ...rolling, now: 2_000_000, annotations: { [A.holdTimeout]: '10m' }, policy: { heldSince: 1_000_000 } }, /^pause\(hold-timeout\/HoldTimeout\): policy hold-timeout: this step has been held 16m40s, longer than hold-timeout 10m; pausing/],
    ['hold-timeout exceeded waiting for pods: pause', { ...rolling, pods: 'A A! A B B', now: 2_000_000, annotations: { [A.holdTimeout]: '10m' }, policy: { heldSince: 1_000_000 } }, /^pause\(hold-timeout/],
    ['hold-timeout with keep-waiting: asks on, overdue', { ...rolling, now: 2_000_000, annotations: { [A.holdTimeout]: '10m', [A.onHoldTimeout]: 'keep-waiting' }, policy: { heldSince: 1_000_000 } }, /^hook\(web-2\) overdue: policy hold-timeout: .*keep-waiting/],
    ['hold-timeout does not fire while the window is closed', { ...rolling, now: winter, annotations: { [A.holdTimeout]: '10m', [A.window]: 'Mon 01:00-02:00 UTC' }, policy: { heldSince: 0 } }, /^hold\(Rolling\/window\)/],
    ['hold-timeout not reached: asks the hook', { ...rolling, now: 1_100_000, annotations: { [A.holdTimeout]: '10m' }, policy: { heldSince: 1_000_000 } }, 'hook(web-2)'],
    ['halt: 3 hook errors in a row with halt-after-errors 3: pause', { ...rolling, annotations: { [A.haltAfterErrors]: '3' }, policy: { hookErrors: { count: 3, last: 'hook noop failed: boom' } } }, /^pause\(halt\/HookErrorsHalt\): policy halt: the hook failed 3 times in a row .*last error: hook noop failed: boom/],
    ['halt: 2 of 3: asks again', { ...rolling, annotations: { [A.haltAfterErrors]: '3' }, policy: { hookErrors: { count: 2, last: 'boom' } } }, 'hook(web-2)'],
    ['paused (by a policy or a person) stays paused', { ...rolling, paused: 'true', annotations: { [A.haltAfterErrors]: '3' }, policy: { hookErrors: { count: 9, last: 'boom' } } }, /^hold\(Paused\)/],
    ['override of the next pod, gate in force, user stamped: steps without the hook', { ...rolling, annotations: { [A.override]: overrideOf('web-2', 'uid-2-A'), [A.overrideBy]: 'alice' }, policy: { gateEnforced: true } }, 'patch(override P=2)'],
    ['override: the step still waits for the window', { ...rolling, now: winter, annotations: { [A.window]: 'Mon 01:00-02:00 UTC', [A.override]: overrideOf('web-2', 'uid-2-A'), [A.overrideBy]: 'alice' }, policy: { gateEnforced: true } }, /^hold\(Rolling\/window\)/],
    ['override without the gate: refused, held', { ...rolling, annotations: { [A.override]: overrideOf('web-2', 'uid-2-A'), [A.overrideBy]: 'alice' }, policy: { gateEnforced: false } }, /^hold\(Rolling\/override\): .*admission gate is not in force/],
    ['override of a pod not next yet: the hook decides this step', { ...rolling, annotations: { [A.override]: overrideOf('web-1', 'uid-1-A'), [A.overrideBy]: 'alice' }, policy: { gateEnforced: true } }, 'hook(web-2)'],
    ['override for another revision: the hook decides', { ...rolling, annotations: { [A.override]: overrideOf('web-2', 'uid-2-A', 'C'), [A.overrideBy]: 'alice' }, policy: { gateEnforced: true } }, 'hook(web-2)'],
    ['override already applied (status record): the hook decides', { ...rolling, applied: { pod: 'web-2', uid: 'uid-2-A', revision: 'B', reason: 'x', by: 'alice', at: '' }, annotations: { [A.override]: overrideOf('web-2', 'uid-2-A'), [A.overrideBy]: 'alice' }, policy: { gateEnforced: true } }, 'hook(web-2)'],
    ['OnDelete override: deletes exactly that pod', { ...rolling, strategy: 'OnDelete', annotations: { [A.override]: overrideOf('web-2', 'uid-2-A'), [A.overrideBy]: 'alice' }, policy: { gateEnforced: true } }, 'delete(override web-2)'],
    ['OnDelete: the window holds too', { ...rolling, strategy: 'OnDelete', now: winter, annotations: { [A.window]: 'Mon 01:00-02:00 UTC' } }, /^hold\(Rolling\/window\)/],
    ['the guard is not weakened: an unapproved template is guarded whatever the policies', { ...rolling, template: 'tC', heldTemplate: 'tB', annotations: { [A.window]: 'always', [A.override]: overrideOf('web-2', 'uid-2-A'), [A.overrideBy]: 'alice' }, policy: { gateEnforced: true } }, /^patch\(guard P=5\)/],
  ];
  for (const [name, o, want] of rows) {
    it(name, () => {
      const got = show(plan(snap(o)));
      if (want instanceof RegExp) expect(got).to.match(want);
      else expect(got).to.equal(want);
    });
  }

  it('status report: every policy with its state', () => {
    const s: Snapshot = snap({ ...rolling, now: winter, annotations: { [A.window]: 'Mon-Fri 01:00-05:00 Europe/Berlin', [A.stepDelay]: '5m', [A.holdTimeout]: '1h', [A.haltAfterErrors]: '3' }, policy: { heldSince: winter - 60_000, hookErrors: { count: 1, last: 'x' } } });
    const next = s.pods[2];
    if (!next) throw new Error('no pod');
    const got = policyReport(s, { next, upd: 'B' }, true).map((v) => `${v.policy}: ${v.says}`);
    expect(got).to.deep.equal(['window: hold', 'step-delay: go', 'halt: go', 'hold-timeout: go']);
  });
});

describe('policy: hold-timeout, since when a step has waited', () => {
  const base = { updateRevision: 'B', partition: 3, strategy: 'RollingUpdate', mark: { revision: 'B', partition: 3 }, stepSince: 1000 };
  it('memory first (a closed window restarts it); without memory, the recorded time of our own step', () => {
    expect(heldSinceOf(base, undefined)).to.equal(1000);
    expect(heldSinceOf(base, 5000)).to.equal(5000);
  });
  it('first step of a rollout, or the partition moved by someone else: memory only', () => {
    expect(heldSinceOf({ ...base, mark: undefined }, 5000)).to.equal(5000);
    expect(heldSinceOf({ ...base, partition: 2 }, undefined)).to.equal(undefined);
    expect(heldSinceOf({ ...base, mark: { revision: 'A', partition: 3 } }, 7)).to.equal(7);
    expect(heldSinceOf({ ...base, mark: { revision: 'A', partition: 3 } }, undefined)).to.equal(undefined);
  });
});
