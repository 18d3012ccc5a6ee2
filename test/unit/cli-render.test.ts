import { expect } from 'chai';
import { hooks } from '../../hooks/index.ts';
import { columns, formatDuration, progressBar, shortRevision } from '../../lib/cli/format.ts';
import { describeOptions, renderHooks } from '../../lib/cli/hooks.ts';
import { overrideTarget } from '../../lib/cli/approve.ts';
import { snapshotOf, type StatusItem } from '../../lib/cli/model.ts';
import { orderKey } from '../../lib/rollout/planner.ts';
import { renderStatus } from '../../lib/cli/render.ts';
import { watchFrame } from '../../lib/cli/watch.ts';
import type { RolloutHook } from '../../lib/hook.ts';
import { LABEL, T0, type World, world } from './cli-fixtures.ts';

const render = (w: World, ages = true): string[] => renderStatus([world(w)], { labelKey: LABEL, now: T0, ages });

const cases: { what: string; w: World }[] = [
  { what: 'steady', w: { pods: 'A A A', partition: 3, status: { state: 'Steady', message: 'rollout to web-aaaa1111x finished; hook approved the end', sinceAgoMs: 5000 } } },
  {
    what: 'first step held by the hook',
    w: { pods: 'A A A', partition: 3, upd: 'B', status: { state: 'Rolling', message: 'manual holds pod web-2: waiting for approval', sinceAgoMs: 192_000 } },
  },
  {
    what: 'approved pod in flight',
    w: { pods: 'A A B~', partition: 2, upd: 'B', status: { state: 'Rolling', rollout: { revision: 'B', partition: 2 }, message: 'hook approved pod web-2; partition 3 -> 2', sinceAgoMs: 1000 } },
  },
  {
    what: 'second step, updated pod not Ready yet',
    w: { pods: 'A A B!', partition: 2, upd: 'B', status: { state: 'Rolling', rollout: { revision: 'B', partition: 2 }, message: 'hook approved pod web-2; partition 3 -> 2', sinceAgoMs: 2000 } },
  },
  {
    what: 'final call',
    w: { pods: 'B B B', partition: 0, cur: 'B', upd: 'B', status: { state: 'Rolling', rollout: { revision: 'B', partition: 0 }, message: 'manual holds the end of the rollout: waiting', sinceAgoMs: 7_500_000 } },
  },
  { what: 'partition lowered by hand (guard)', w: { pods: 'A A A', partition: 1, upd: 'B' } },
  { what: 'paused', w: { pods: 'A A A', partition: 3, upd: 'B', annotations: { 'sts-pilot.io/paused': 'true' } } },
  { what: 'unknown hook', w: { pods: 'A A A', partition: 3, upd: 'B', hook: 'nope' } },
  { what: 'no label', w: { pods: 'A A', replicas: 2, partition: 2, hook: null } },
  { what: 'scale-down leftovers and a missing pod', w: { replicas: 2, pods: 'A - B B', partition: 1, upd: 'B' } },
  { what: 'OnDelete', w: { pods: 'A A B', upd: 'B', strategy: 'OnDelete' } },
  {
    what: 'scale-down, the hook asked about the highest pod',
    w: {
      pods: 'A A A',
      partition: 3,
      annotations: { 'sts-pilot.io/requested-replicas': '1' },
      status: { state: 'Rolling', removal: { pod: 'web-2', uid: 'pod-2-A', index: 2, state: 'asked' }, message: 'http holds the removal of pod web-2: no', sinceAgoMs: 4000 },
    },
  },
];

const expected: Record<string, string[]> = {
  steady: [
    'db/web  hook manual  RollingUpdate  partition 3, replicas 3',
    '  revision  aaaa1111, 3/3 pods',
    '  now       Steady: all 3 pods run web-aaaa1111x',
    '  status    Steady for 5s: rollout to web-aaaa1111x finished; hook approved the end',
    '  pods      web-2  aaaa1111  Ready',
    '            web-1  aaaa1111  Ready',
    '            web-0  aaaa1111  Ready',
  ],
  'first step held by the hook': [
    'db/web  hook manual  RollingUpdate  partition 3, replicas 3',
    '  rollout   aaaa1111 -> bbbb2222  [---] 0/3 pods updated',
    '  next      web-2 (step 1 of 3): the manual hook is asked to approve it',
    '  now       Rolling: asking the hook to approve pod web-2 (1/3) moving to web-bbbb2222x',
    '  status    held for 3m12s: manual holds pod web-2: waiting for approval',
    '  pods      ----- partition 3 -----',
    '            web-2  aaaa1111  Ready  <- next',
    '            web-1  aaaa1111  Ready',
    '            web-0  aaaa1111  Ready',
  ],
  'approved pod in flight': [
    'db/web  hook manual  RollingUpdate  partition 2, replicas 3',
    '  rollout   aaaa1111 -> bbbb2222  [---] 0/3 pods updated',
    '  next      web-2 was approved and is being updated',
    '  now       Rolling: waiting for pod web-2 to be updated to web-bbbb2222x',
    '  status    Rolling for 1s: hook approved pod web-2; partition 3 -> 2',
    '  pods      web-2  bbbb2222  Terminating  approved, being updated',
    '            ----- partition 2 -----',
    '            web-1  aaaa1111  Ready',
    '            web-0  aaaa1111  Ready',
  ],
  'second step, updated pod not Ready yet': [
    'db/web  hook manual  RollingUpdate  partition 2, replicas 3',
    '  rollout   aaaa1111 -> bbbb2222  [#--] 1/3 pods updated',
    '  now       Rolling: waiting for pod web-2 to be Ready',
    '  status    Rolling for 2s: hook approved pod web-2; partition 3 -> 2',
    '  pods      web-2  bbbb2222  not Ready  updated',
    '            ----- partition 2 -----',
    '            web-1  aaaa1111  Ready',
    '            web-0  aaaa1111  Ready',
  ],
  'final call': [
    'db/web  hook manual  RollingUpdate  partition 0, replicas 3',
    '  revision  bbbb2222, 3/3 pods',
    '  next      end of the rollout: the manual hook is asked to approve it',
    '  now       Rolling: all 3 pods run web-bbbb2222x; asking the hook to approve the end of the rollout',
    '  status    held for 2h05m: manual holds the end of the rollout: waiting',
    '  pods      web-2  bbbb2222  Ready',
    '            web-1  bbbb2222  Ready',
    '            web-0  bbbb2222  Ready',
  ],
  'partition lowered by hand (guard)': [
    'db/web  hook manual  RollingUpdate  partition 1, replicas 3',
    '  rollout   aaaa1111 -> bbbb2222  [---] 0/3 pods updated',
    "  now       Rolling: pod web-2 would move to web-bbbb2222x without the hook's approval; raising the partition 1 -> 3",
    '  status    nothing recorded by the controller yet',
    '  pods      web-2  aaaa1111  Ready  above the partition, not approved',
    '            web-1  aaaa1111  Ready  above the partition, not approved',
    '            ----- partition 1 -----',
    '            web-0  aaaa1111  Ready',
  ],
  paused: [
    'db/web  hook manual  RollingUpdate  partition 3, replicas 3  PAUSED',
    '  rollout   aaaa1111 -> bbbb2222  [---] 0/3 pods updated',
    '  now       Paused: paused by annotation sts-pilot.io/paused',
    '  status    nothing recorded by the controller yet',
    '  pods      ----- partition 3 -----',
    '            web-2  aaaa1111  Ready',
    '            web-1  aaaa1111  Ready',
    '            web-0  aaaa1111  Ready',
  ],
  'unknown hook': [
    'db/web  hook nope  RollingUpdate  partition 3, replicas 3',
    '  rollout   aaaa1111 -> bbbb2222  [---] 0/3 pods updated',
    `  now       Held: unknown hook "nope" in label sts-pilot.io/hook; known hooks: ${[...hooks.keys()].join(', ')}`,
    '  status    nothing recorded by the controller yet',
    '  pods      ----- partition 3 -----',
    '            web-2  aaaa1111  Ready',
    '            web-1  aaaa1111  Ready',
    '            web-0  aaaa1111  Ready',
  ],
  'no label': [
    'db/web  hook -  RollingUpdate  partition 2, replicas 2',
    '  revision  aaaa1111, 2/2 pods',
    '  now       not managed: no label sts-pilot.io/hook, so sts-pilot leaves it alone',
    '  status    nothing recorded by the controller yet',
    '  pods      web-1  aaaa1111  Ready',
    '            web-0  aaaa1111  Ready',
  ],
  'scale-down leftovers and a missing pod': [
    'db/web  hook manual  RollingUpdate  partition 1, replicas 2',
    '  rollout   aaaa1111 -> bbbb2222  [--] 0/2 pods updated',
    "  now       Rolling: pod web-1 would be recreated at web-bbbb2222x without the hook's approval; raising the partition 1 -> 2",
    '  status    nothing recorded by the controller yet',
    '  pods      web-3  bbbb2222  Ready    leaving (scale-down)',
    '            web-2  bbbb2222  Ready    leaving (scale-down)',
    '            web-1  -         missing',
    '            ----- partition 1 -----',
    '            web-0  aaaa1111  Ready',
  ],
  'scale-down, the hook asked about the highest pod': [
    'db/web  hook manual  RollingUpdate  partition 3, replicas 3 (scale-down to 1 requested)',
    '  revision  aaaa1111, 3/3 pods',
    '  next      web-2 leaves (scale-down 3 -> 1): the manual hook is asked to approve its removal',
    '  now       Rolling: asking the hook to approve the removal of pod web-2 (scale-down 3 -> 1)',
    '  status    held for 4s: http holds the removal of pod web-2: no',
    '  pods      web-2  aaaa1111  Ready  leaving: the hook is asked (scale-down)',
    '            web-1  aaaa1111  Ready',
    '            web-0  aaaa1111  Ready',
  ],
  OnDelete: [
    'db/web  hook manual  OnDelete  replicas 3',
    '  rollout   aaaa1111 -> bbbb2222  [#--] 1/3 pods updated',
    '  next      web-1 (step 2 of 3): the manual hook is asked to approve it',
    '  now       Rolling: asking the hook to approve pod web-1 (2/3) moving to web-bbbb2222x',
    '  status    nothing recorded by the controller yet',
    '  pods      web-2  bbbb2222  Ready  updated',
    '            web-1  aaaa1111  Ready  <- next',
    '            web-0  aaaa1111  Ready',
  ],
};

describe('cli: status rendering (pure)', () => {
  for (const c of cases) {
    it(`draws: ${c.what}`, () => {
      expect(render(c.w)).to.deep.equal(expected[c.what]);
    });
  }

  it('says why the status annotation cannot be read, on one line', () => {
    const lines = render({ pods: 'A A A', annotations: { 'sts-pilot.io/status': '{oops' } });
    expect(lines[3]).to.match(/^ {2}status {4}unreadable sts-pilot\.io\/status annotation: not JSON: [^\n]+$/);
  });

  it('names the invalid option of the manual hook as the controller would', () => {
    const lines = render({ pods: 'A A A', partition: 3, upd: 'B', annotations: { 'manual.sts-pilot.io/colour': 'blue' } });
    expect(lines[2]).to.match(/^ {2}now {7}Held: invalid manual hook options: manual\.sts-pilot\.io\/colour/);
  });

  it('draws several StatefulSets sorted by namespace and name, a blank line between', () => {
    const a = world({ pods: 'A' , replicas: 1, partition: 1 });
    const b = world({ pods: 'A', replicas: 1, partition: 1 });
    (b.sts.metadata as { namespace: string }).namespace = 'app';
    const lines = renderStatus([a, b], { labelKey: LABEL, now: T0, ages: true });
    expect(lines.filter((l) => /^\S/.test(l))).to.deep.equal(['app/web  hook manual  RollingUpdate  partition 1, replicas 1', 'db/web  hook manual  RollingUpdate  partition 1, replicas 1']);
    expect(lines).to.include('');
  });

  it('without ages, a frame does not change as time passes; with them, it does', () => {
    const item = world({ pods: 'A A A', partition: 3, upd: 'B', status: { state: 'Rolling', message: 'manual holds pod web-2: waiting', sinceAgoMs: 1000 } });
    const at = (now: number) => watchFrame([item], { labelKey: LABEL, now, empty: 'none' });
    expect(at(T0).key).to.equal(at(T0 + 60_000).key);
    expect(at(T0).lines).to.not.deep.equal(at(T0 + 60_000).lines);
    expect(at(T0).key).to.contain('held for …: manual holds pod web-2');
    expect(at(T0).lines.join('\n')).to.contain('held for 1s: manual holds pod web-2');
    expect(watchFrame([], { labelKey: LABEL, now: T0, empty: 'nothing here' })).to.deep.equal({ lines: ['nothing here'], key: 'nothing here' });
  });

  it('a change of the rollout changes the frame key', () => {
    const before = world({ pods: 'A A A', partition: 3, upd: 'B' });
    const after = world({ pods: 'A A A', partition: 2, upd: 'B', status: { rollout: { revision: 'B', partition: 2 } } });
    const key = (i: StatusItem) => watchFrame([i], { labelKey: LABEL, now: T0, empty: '' }).key;
    expect(key(before)).to.not.equal(key(after));
  });

  it('contains no ANSI escape: readable without color, in a file', () => {
    for (const c of cases) expect(render(c.w).join('\n')).to.not.match(/\x1b/);
  });
});

describe('cli: text helpers', () => {
  for (const [ms, text] of [
    [0, '0s'],
    [-5000, '0s'],
    [999, '0s'],
    [59_999, '59s'],
    [60_000, '1m00s'],
    [192_000, '3m12s'],
    [3_600_000, '1h00m'],
    [7_500_000, '2h05m'],
    [86_400_000 + 4 * 3_600_000, '1d04h'],
  ] as const) {
    it(`formatDuration(${ms}) = ${text}`, () => expect(formatDuration(ms)).to.equal(text));
  }

  it('shortRevision drops the StatefulSet name and keeps 8 characters', () => {
    expect(shortRevision('web-7d9f6b8c5d', 'web')).to.equal('7d9f6b8c');
    expect(shortRevision('other-7d9f', 'web')).to.equal('other-7d');
    expect(shortRevision(undefined, 'web')).to.equal('?');
  });

  it('progressBar has one mark per pod, and none for huge StatefulSets', () => {
    expect(progressBar(2, 5)).to.equal('[##---]');
    expect(progressBar(0, 1)).to.equal('[-]');
    expect(progressBar(3, 41)).to.equal('');
  });

  it('columns aligns cells and trims trailing spaces', () => {
    expect(columns([['a', 'bb', ''], ['ccc', 'd', 'e']])).to.deep.equal(['a    bb', 'ccc  d   e']);
  });
});

describe('cli: hooks listing from the zod schemas', () => {
  const hook = (name: string): RolloutHook => hooks.get(name) as RolloutHook;

  it('reads option names, types, defaults and descriptions', () => {
    expect(describeOptions(hook('noop'))).to.deep.equal([]);
    expect(describeOptions(hook('http'))).to.deep.equal([
      { annotation: 'http.sts-pilot.io/url', type: 'string (url)', required: true, default: undefined, description: undefined },
      { annotation: 'http.sts-pilot.io/timeout', type: 'string', required: false, default: '10', description: undefined },
    ]);
    const [approve] = describeOptions(hook('manual'));
    expect(approve).to.include({ annotation: 'manual.sts-pilot.io/approve', type: 'string', required: false, default: undefined });
    expect(approve?.description).to.match(/sts-pilot approve/);
  });

  it('lists every registered hook, with the label that selects it', () => {
    const text = renderHooks(hooks.values(), LABEL).join('\n');
    for (const name of hooks.keys()) expect(text).to.contain(`  use: label ${LABEL}: ${name}`);
    expect(text).to.contain('    http.sts-pilot.io/timeout  string        default 10');
  });
});

describe('cli: status shows the order a hook chose (OnDelete, podUpdateOrder)', () => {
  /** An OnDelete rollout of the patroni hook whose status annotation records an order (for these pods, or another key). */
  const ordered = (pods: string[], key?: string): StatusItem => {
    const item = world({ pods: 'A A A', upd: 'B', strategy: 'OnDelete', hook: 'patroni' });
    const s = snapshotOf(item, T0);
    const k = key ?? orderKey(s, s.sts.updateRevision ?? '', s.pods);
    const order = { key: k, at: new Date(T0 - 2000).toISOString(), pods, reason: 'replicas first (web-2, web-0); web-1 is the leader and goes last' };
    item.sts.metadata!.annotations!['sts-pilot.io/status'] = JSON.stringify({ state: 'Rolling', message: 'x', since: new Date(T0 - 2000).toISOString(), order });
    return item;
  };

  it('the next pod is the first of the order, and why', () => {
    const text = renderStatus([ordered(['web-2', 'web-0', 'web-1'])], { labelKey: LABEL, now: T0, ages: true }).join('\n');
    expect(text).to.contain('next      web-2 (step 1 of 3): the patroni hook is asked to approve it');
    expect(text).to.contain("why: first in the hook's order (web-2, web-0, web-1): replicas first (web-2, web-0); web-1 is the leader and goes last");
  });

  it('an order that skips the highest ordinal is shown as it is', () => {
    const text = renderStatus([ordered(['web-0', 'web-2', 'web-1'])], { labelKey: LABEL, now: T0, ages: true }).join('\n');
    expect(text).to.match(/next {6}web-0 \(step 1 of 3\)/);
    expect(text).to.match(/web-0 +[0-9a-z]+ +Ready +<- next/);
  });

  it('an order for other pods: the hook is being asked', () => {
    const text = renderStatus([ordered(['web-2', 'web-0', 'web-1'], 'an-old-key')], { labelKey: LABEL, now: T0, ages: true }).join('\n');
    expect(text).to.contain('next      chosen by the patroni hook: it is asked which of web-2, web-1, web-0 moves next');
  });
});

describe('cli: status shows each rollout policy and where it stands', () => {
  const lines = (w: World): string[] => {
    const out = render(w);
    const at = out.findIndex((l) => l.startsWith('  policies'));
    const end = out.findIndex((l) => l.startsWith('  pods'));
    return at < 0 ? [] : out.slice(at, end);
  };
  it('window closed (next opening), step-delay, hold-timeout, halt count', () => {
    const got = lines({
      pods: 'A A A',
      partition: 3,
      upd: 'B',
      annotations: {
        'sts-pilot.io/window': 'Sat 01:00-05:00 Europe/Berlin',
        'sts-pilot.io/step-delay': '5m',
        'sts-pilot.io/hold-timeout': '1h',
        'sts-pilot.io/halt-after-errors': '3',
      },
      status: { state: 'Rolling', message: 'manual holds pod web-2: waiting for approval', sinceAgoMs: 600_000 },
    });
    expect(got).to.deep.equal([
      '  policies  window: HOLD: outside the maintenance window Sat 01:00-05:00 Europe/Berlin: closed; opens Sat 2026-11-07 01:00 GMT+1 (in 3d12h)',
      '            step-delay: step-delay 5m: no pod is Ready at web-bbbb2222x yet',
      '            halt: hook errors in a row: 0 of 3',
      '            hold-timeout: hold-timeout 1h, then pause: held 10m00s of 1h',
    ]);
    expect(got.join('\n')).to.match(/hold-timeout: hold-timeout 1h, then pause: held 10m00s of 1h/);
    expect(got.join('\n')).to.match(/halt: hook errors in a row: 0 of 3/);
  });
  it('metric checks: the checks, the bake and what a failure does; a bad annotation says so', () => {
    const got = lines({ pods: 'A A A', partition: 3, upd: 'B', annotations: { 'sts-pilot.io/metric-checks': 'error-rate, p99', 'sts-pilot.io/bake': '5m', 'sts-pilot.io/on-check-failure': 'rollback' } });
    expect(got).to.deep.equal(['  policies  metric-checks: error-rate, p99 (bake 5m, on failure rollback)']);
    const bad = lines({ pods: 'A A A', partition: 3, upd: 'B', annotations: { 'sts-pilot.io/metric-checks': 'error-rate', 'sts-pilot.io/bake': 'a while' } });
    expect(bad[0]).to.match(/policies {2}metric-checks: INVALID: annotation sts-pilot.io\/bake "a while" is not a duration.*; holding$/);
  });
  it('a bad value says so', () => {
    expect(lines({ pods: 'A A A', partition: 3, upd: 'B', annotations: { 'sts-pilot.io/step-delay': 'soon' } })[0]).to.match(/policies {2}step-delay: INVALID: annotation sts-pilot.io\/step-delay "soon" is not a duration/);
  });
  it('after: the peer waited for, from the same listing', () => {
    const data = world({ pods: 'A A B', partition: 2, upd: 'B' });
    (data.sts.metadata as { name: string }).name = 'data';
    for (const p of data.pods) (p.metadata as { name: string }).name = (p.metadata?.name ?? '').replace(/^web/, 'data');
    const web = world({ pods: 'A A A', partition: 3, upd: 'B', annotations: { 'sts-pilot.io/after': 'data' } });
    const out = renderStatus([web, data], { labelKey: LABEL, now: T0, ages: true }).join('\n');
    expect(out).to.match(/policies {2}after: HOLD: waiting for StatefulSet data: 2 of 3 pods are not at its update revision/);
  });
  it('an override pending for a pod not next, and one applied', () => {
    const pending = world({ pods: 'A A A', partition: 3, upd: 'B' });
    const uid = pending.pods[1]?.metadata?.uid ?? '';
    const ann = { 'sts-pilot.io/override': JSON.stringify({ pod: 'web-1', uid, revision: pending.sts.status?.updateRevision, reason: 'checked by hand', at: '2026-11-03T11:00:00Z' }), 'sts-pilot.io/override-by': 'alice' };
    Object.assign(pending.sts.metadata?.annotations ?? {}, ann);
    const out = renderStatus([pending], { labelKey: LABEL, now: T0, ages: true }).join('\n');
    expect(out).to.match(/override: override of pod web-1 at web-bbbb2222x by alice is pending: the next pod is web-2, not web-1/);
  });
});

describe('cli: approve --override names one exact pod at the update revision', () => {
  const now = T0;
  it('the next pod by default, with its uid, the revision and the reason', () => {
    const item = world({ pods: 'A A A', partition: 3, upd: 'B' });
    const t = overrideTarget(item, { labelKey: LABEL, now, pod: undefined, reason: 'hook broken, checked by hand' });
    if (!t.ok) throw new Error(t.reason);
    expect(t.pod).to.equal('web-2');
    expect(JSON.parse(t.value)).to.deep.equal({ pod: 'web-2', uid: item.pods[2]?.metadata?.uid, revision: item.sts.status?.updateRevision, reason: 'hook broken, checked by hand', at: new Date(now).toISOString() });
  });
  it('a stale pod further down with --pod: pending until it is next', () => {
    const t = overrideTarget(world({ pods: 'A A A', partition: 3, upd: 'B' }), { labelKey: LABEL, now, pod: 'web-0', reason: 'why not' });
    expect(t.ok && t.step).to.equal('pod web-0 (once it is next; the next is web-2)');
  });
  it('refuses: nothing waiting for the hook, a pod already updated, no such pod, not managed', () => {
    const r = (w: World, pod?: string): string => {
      const t = overrideTarget(world(w), { labelKey: LABEL, now, pod, reason: 'x y z' });
      return t.ok ? 'ok' : t.reason;
    };
    expect(r({ pods: 'A A A', partition: 3 })).to.match(/nothing to override/);
    expect(r({ pods: 'A A B', partition: 2, upd: 'B' }, 'web-2')).to.match(/already runs the update revision/);
    expect(r({ pods: 'A A A', partition: 3, upd: 'B' }, 'web-9')).to.match(/has no pod web-9/);
    expect(r({ pods: 'A A A', partition: 3, upd: 'B', hook: null })).to.match(/does not manage it/);
  });
});
