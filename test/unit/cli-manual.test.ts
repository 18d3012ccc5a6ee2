import { expect } from 'chai';
import { hooks } from '../../hooks/index.ts';
import { APPROVE_ANNOTATION, approvalValue, decide } from '../../hooks/manual/index.ts';
import { approvalTarget } from '../../lib/cli/approve.ts';
import { pauseChange } from '../../lib/cli/pause.ts';
import { HookNotReady, parseHookOptions, type RolloutHook } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { LABEL, rev, T0, type World, world } from './cli-fixtures.ts';
import { loopbackEgress } from '../egress.ts';

const manual = hooks.get('manual') as RolloutHook;
const R = 'web-7d9f6b8c5';

describe('manual hook: the decision (pure)', () => {
  const base = { namespace: 'db', name: 'web', updateRevision: R };
  const ask = (what: string, value: string): string =>
    `waiting for approval: sts-pilot approve web -n db (${what}; or annotate manual.sts-pilot.io/approve=${value})`;

  for (const [what, input, out] of [
    ['approves the exact pod and revision', { next: 'web-3', approval: `web-3@${R}` }, { approved: true }],
    ['approves the end with end@revision', { next: null, approval: `end@${R}` }, { approved: true }],
    ['holds without an approval, saying what to run', { next: 'web-3', approval: undefined }, { approved: false, reason: ask(`pod web-3 to revision ${R}`, `web-3@${R}`) }],
    ['holds on an empty approval', { next: 'web-3', approval: '' }, { approved: false, reason: ask(`pod web-3 to revision ${R}`, `web-3@${R}`) }],
    [
      'holds on the previous pod\'s approval',
      { next: 'web-2', approval: `web-3@${R}` },
      { approved: false, reason: `manual.sts-pilot.io/approve=web-3@${R} is for another step; ${ask(`pod web-2 to revision ${R}`, `web-2@${R}`)}` },
    ],
    [
      'holds on the same pod at another revision (an older rollout)',
      { next: 'web-3', approval: 'web-3@web-0ld' },
      { approved: false, reason: `manual.sts-pilot.io/approve=web-3@web-0ld is for another step; ${ask(`pod web-3 to revision ${R}`, `web-3@${R}`)}` },
    ],
    ['holds the end on a pod approval', { next: null, approval: `web-0@${R}` }, { approved: false, reason: `manual.sts-pilot.io/approve=web-0@${R} is for another step; ${ask(`the end of the rollout to revision ${R}`, `end@${R}`)}` }],
    ['holds a pod on the end approval', { next: 'web-0', approval: `end@${R}` }, { approved: false }],
    ['does not approve a prefix', { next: 'web-3', approval: `web-3@${R}x` }, { approved: false }],
    ['does not approve with spaces around', { next: 'web-3', approval: ` web-3@${R}` }, { approved: false }],
  ] as const) {
    it(what, () => {
      const d = decide({ ...base, ...input });
      if ('reason' in out) expect(d).to.deep.equal(out);
      else expect(d.approved).to.equal(out.approved);
    });
  }

  it('holds when the StatefulSet reports no update revision', () => {
    expect(decide({ ...base, updateRevision: undefined, next: 'web-3', approval: 'web-3@' })).to.deep.equal({
      approved: false,
      reason: 'the StatefulSet reports no updateRevision yet',
    });
  });

  it('cuts a huge wrong value short in the reason', () => {
    const d = decide({ ...base, next: 'web-3', approval: 'x'.repeat(500) });
    expect(!d.approved && d.reason.length).to.be.below(400);
  });

  it('approvalValue names the pod, or end, and the revision', () => {
    expect(approvalValue('web-3', R)).to.equal(`web-3@${R}`);
    expect(approvalValue(null, R)).to.equal(`end@${R}`);
    expect(APPROVE_ANNOTATION).to.equal('manual.sts-pilot.io/approve');
  });
});

describe('manual hook: options and calls through the registry', () => {
  const log = createLogger({ level: 'silent' });
  const sts = (approve?: string) => ({
    metadata: { name: 'web', namespace: 'db', annotations: approve === undefined ? {} : { [APPROVE_ANNOTATION]: approve } },
    status: { replicas: 3, updateRevision: R },
  });
  const call = async (next: string | null, approve?: string): Promise<void> => {
    const s = sts(approve);
    const parsed = parseHookOptions(manual, s.metadata.annotations);
    if (!parsed.ok) throw new Error(parsed.error);
    await manual.podUpdateTransition(null, next ? { metadata: { name: next } } : null, {
      statefulSet: s,
      options: parsed.options,
      signal: new AbortController().signal,
      log,
      secrets: async () => ({}),
      egress: loopbackEgress,
      nextReady: next ? true : null,
      pilots: staticPilotReader([]),
    });
  };

  it('accepts its approve annotation, and no other option', () => {
    expect(parseHookOptions(manual, { [APPROVE_ANNOTATION]: 'anything' })).to.deep.equal({ ok: true, options: { approve: 'anything' } });
    expect(parseHookOptions(manual, {})).to.deep.equal({ ok: true, options: {} });
    const r = parseHookOptions(manual, { 'manual.sts-pilot.io/aprove': `web-1@${R}` });
    expect(!r.ok && r.error).to.match(/invalid manual hook options: .*manual\.sts-pilot\.io\/aprove/);
  });

  it('resolves for the approved step and throws HookNotReady otherwise', async () => {
    await call('web-2', `web-2@${R}`);
    await call(null, `end@${R}`);
    for (const [next, approve] of [['web-2', undefined], ['web-1', `web-2@${R}`], [null, `web-0@${R}`]] as const) {
      let err: unknown;
      await call(next, approve).catch((e: unknown) => (err = e));
      expect(err, `${next} with ${approve}`).to.be.instanceOf(HookNotReady);
      expect((err as Error).message).to.contain('sts-pilot approve web -n db');
    }
  });
});

describe('cli: approve picks the step the controller asks about (pure)', () => {
  const target = (w: World, pod?: string) => approvalTarget(world(w), { labelKey: LABEL, hookName: 'manual', now: T0, pod });
  const B = rev('B');

  for (const [what, w, pod, out] of [
    ['the first pod of a rollout', { pods: 'A A A', partition: 3, upd: 'B' }, undefined, { ok: true, next: 'web-2', revision: B, step: 'pod web-2 (step 1 of 3)' }],
    ['the same, when --pod agrees', { pods: 'A A A', partition: 3, upd: 'B' }, 'web-2', { ok: true, next: 'web-2', revision: B, step: 'pod web-2 (step 1 of 3)' }],
    [
      'the next pod after one was updated',
      { pods: 'A A B', partition: 2, upd: 'B', status: { rollout: { revision: 'B', partition: 2 } } },
      undefined,
      { ok: true, next: 'web-1', revision: B, step: 'pod web-1 (step 2 of 3)' },
    ],
    [
      'the end, once every pod is updated',
      { pods: 'B B B', partition: 0, cur: 'B', upd: 'B', status: { rollout: { revision: 'B', partition: 0 } } },
      'end',
      { ok: true, next: null, revision: B, step: 'the end of the rollout' },
    ],
    [
      'nothing when --pod names another pod',
      { pods: 'A A B', partition: 2, upd: 'B', status: { rollout: { revision: 'B', partition: 2 } } },
      'web-2',
      { ok: false, reason: 'the step of db/web waiting for approval is pod web-1, not web-2; nothing approved' },
    ],
    ['nothing without a rollout', { pods: 'A A A', partition: 3 }, undefined, { ok: false, reason: 'no step of db/web is waiting for approval: all 3 pods run web-aaaa1111x' }],
    [
      'nothing while the approved pod is in flight',
      { pods: 'A A B~', partition: 2, upd: 'B', status: { rollout: { revision: 'B', partition: 2 } } },
      undefined,
      { ok: false, reason: `no step of db/web is waiting for approval: waiting for pod web-2 to be updated to ${B}` },
    ],
    [
      'nothing while a pod is not Ready',
      { pods: 'A A! A', partition: 3, upd: 'B' },
      undefined,
      { ok: false, reason: 'no step of db/web is waiting for approval: waiting for pod web-1 to be Ready' },
    ],
    [
      'nothing while paused',
      { pods: 'A A A', partition: 3, upd: 'B', annotations: { 'sts-pilot.io/paused': 'true' } },
      undefined,
      { ok: false, reason: 'no step of db/web is waiting for approval: paused by annotation sts-pilot.io/paused' },
    ],
    ['nothing for another hook', { pods: 'A A A', partition: 3, upd: 'B', hook: 'noop' }, undefined, { ok: false, reason: 'db/web uses the "noop" hook, not manual: its steps are not approved by a person' }],
    ['nothing without the label', { pods: 'A A A', partition: 3, upd: 'B', hook: null }, undefined, { ok: false, reason: 'db/web has no label sts-pilot.io/hook: sts-pilot does not manage it' }],
  ] as const) {
    it(what, () => expect(target(w, pod)).to.deep.equal(out));
  }

  it('nothing when the manual hook\'s options are invalid: the controller holds', () => {
    const r = target({ pods: 'A A A', partition: 3, upd: 'B', annotations: { 'manual.sts-pilot.io/x': '1' } });
    expect(r.ok).to.equal(false);
    expect(!r.ok && r.reason).to.match(/^no step of db\/web is waiting for approval: invalid manual hook options/);
  });
});

describe('cli: pause and resume (pure)', () => {
  const change = (w: World, pause: boolean) => pauseChange(world(w).sts, pause, LABEL);

  it('pause writes "true", guarded by the resourceVersion read', () => {
    const c = change({}, true);
    expect(c.patch).to.deep.equal({ metadata: { resourceVersion: '7', annotations: { 'sts-pilot.io/paused': 'true' } } });
    expect(c.message).to.match(/^paused db\/web: set sts-pilot\.io\/paused="true"; .* "sts-pilot resume web -n db"/);
  });

  it('pause of a paused StatefulSet writes nothing', () => {
    expect(change({ annotations: { 'sts-pilot.io/paused': 'true' } }, true)).to.deep.equal({ patch: undefined, message: 'db/web was already paused; nothing changed' });
  });

  it('resume removes the annotation, whatever its value', () => {
    for (const v of ['true', 'yes']) {
      const c = change({ annotations: { 'sts-pilot.io/paused': v } }, false);
      expect(c.patch).to.deep.equal({ metadata: { resourceVersion: '7', annotations: { 'sts-pilot.io/paused': null } } });
      expect(c.message).to.equal(`resumed db/web: removed sts-pilot.io/paused=${JSON.stringify(v)}; sts-pilot manages its rollout again`);
    }
  });

  it('resume of a running StatefulSet writes nothing', () => {
    expect(change({}, false)).to.deep.equal({ patch: undefined, message: 'db/web was not paused; nothing changed' });
  });

  it('says when the StatefulSet is not managed at all', () => {
    expect(change({ hook: null }, true).message).to.match(/note: it has no label sts-pilot\.io\/hook/);
  });
});
