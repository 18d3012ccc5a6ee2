import type { V1ControllerRevision, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { undoPlan } from '../../lib/cli/undo.ts';

const tpl = (image: string) => ({ metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image }] } });
const rev = (n: number, image: string, owner = 'uid-1'): V1ControllerRevision => ({
  metadata: { name: `web-h${n}`, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: owner, controller: true }] },
  revision: n,
  data: { spec: { template: { ...tpl(image), $patch: 'replace' } } },
});
const sts = (o: { image: string; current: string; update: string; strategy?: 'OnDelete'; partition?: number; label?: boolean; paused?: boolean }): V1StatefulSet => ({
  metadata: {
    name: 'web',
    namespace: 'db',
    uid: 'uid-1',
    resourceVersion: '42',
    labels: o.label === false ? {} : { 'sts-pilot.io/hook': 'manual' },
    annotations: o.paused ? { 'sts-pilot.io/paused': 'true' } : {},
  },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'web' } },
    serviceName: 'web',
    template: tpl(o.image),
    updateStrategy: o.strategy ? { type: o.strategy } : { type: 'RollingUpdate', rollingUpdate: { partition: o.partition ?? 2 } },
  },
  status: { replicas: 3, currentRevision: o.current, updateRevision: o.update },
});
const revisions = [rev(1, 'app:1'), rev(2, 'app:2'), rev(3, 'app:3'), rev(9, 'other', 'uid-other')];
const labelKey = 'sts-pilot.io/hook';

describe('cli: undo plans the safe rollback in one guarded write', () => {
  it('mid-rollout: back to the revision it came from, partition to replicas in the same write', () => {
    const p = undoPlan(sts({ image: 'app:3', current: 'web-h2', update: 'web-h3' }), revisions, { labelKey });
    expect(p.ok).to.equal(true);
    if (!p.ok) return;
    expect(p.patch).to.deep.equal([
      { op: 'test', path: '/metadata/resourceVersion', value: '42' },
      { op: 'replace', path: '/spec/template', value: tpl('app:2') },
      { op: 'add', path: '/spec/updateStrategy/rollingUpdate/partition', value: 3 },
    ]);
    expect(p.lines[0]).to.equal('db/web: rolling back to web-h2 (revision 2); partition held at 3 in the same write, so no pod moves until the manual hook approves it');
  });

  it('after a finished rollout: the revision before the current one', () => {
    const p = undoPlan(sts({ image: 'app:3', current: 'web-h3', update: 'web-h3' }), revisions, { labelKey });
    expect(p.ok && p.patch[1]).to.deep.equal({ op: 'replace', path: '/spec/template', value: tpl('app:2') });
  });

  it('--to-revision picks that one', () => {
    const p = undoPlan(sts({ image: 'app:3', current: 'web-h3', update: 'web-h3' }), revisions, { labelKey, toRevision: 1 });
    expect(p.ok && p.patch[1]).to.deep.equal({ op: 'replace', path: '/spec/template', value: tpl('app:1') });
  });

  it('OnDelete: only the template (there is no partition; the controller deletes each pod after the hook)', () => {
    const p = undoPlan(sts({ image: 'app:3', current: 'web-h2', update: 'web-h3', strategy: 'OnDelete' }), revisions, { labelKey });
    expect(p.ok && p.patch.length).to.equal(2);
  });

  it('a paused StatefulSet: written, and the person is told nothing moves until resume', () => {
    const p = undoPlan(sts({ image: 'app:3', current: 'web-h2', update: 'web-h3', paused: true }), revisions, { labelKey });
    expect(p.ok && p.lines.at(-1)).to.match(/is paused: nothing moves until "sts-pilot resume web -n db"/);
  });

  for (const [what, s, o, reason] of [
    ['an unmanaged StatefulSet', sts({ image: 'app:3', current: 'web-h2', update: 'web-h3', label: false }), {}, /has no label sts-pilot\.io\/hook: sts-pilot does not manage it \(kubectl rollout undo/],
    ['a revision that does not exist', sts({ image: 'app:3', current: 'web-h3', update: 'web-h3' }), { toRevision: 7 }, /has no revision 7; it has 1, 2, 3/],
    ['another StatefulSet\'s revision', sts({ image: 'app:3', current: 'web-h3', update: 'web-h3' }), { toRevision: 9 }, /has no revision 9/],
    ['the template it already has', sts({ image: 'app:3', current: 'web-h3', update: 'web-h3' }), { toRevision: 3 }, /already has the template of revision 3/],
    ['the first revision, with none before it', sts({ image: 'app:1', current: 'web-h1', update: 'web-h1' }), {}, /has no earlier revision/],
  ] as const) {
    it(`refuses ${what}`, () => {
      const p = undoPlan(s, revisions, { labelKey, ...o });
      expect(p.ok).to.equal(false);
      expect(!p.ok && p.reason).to.match(reason);
    });
  }
});
