import type { V1ControllerRevision, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { CliError } from '../../lib/cli/kube.ts';
import { undoPlan } from '../../lib/cli/undo.ts';

const tpl = (image: string) => ({ metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image }] } });
const sts = (image: string, o: { onDelete?: boolean; partition?: number } = {}): V1StatefulSet => ({
  metadata: { name: 'web', namespace: 'db', uid: 'sts-uid', resourceVersion: '42' },
  spec: {
    replicas: 5,
    serviceName: 'web',
    selector: { matchLabels: { app: 'web' } },
    updateStrategy: o.onDelete ? { type: 'OnDelete' } : { type: 'RollingUpdate', rollingUpdate: { partition: o.partition ?? 2 } },
    template: tpl(image),
  },
});
const rev = (n: number, image: string, owner = 'sts-uid'): V1ControllerRevision => ({
  metadata: { name: `web-${n}abc`, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: owner, controller: true }] },
  revision: n,
  data: { spec: { template: { ...tpl(image), $patch: 'replace' } } },
});

describe('sts-pilot undo (pure)', () => {
  const history = [rev(1, 'app:1'), rev(2, 'app:2'), rev(3, 'app:3'), rev(9, 'other', 'another-sts')];

  it('goes back to the revision before the newest, template and a held partition in one guarded write', () => {
    const p = undoPlan(sts('app:3'), history);
    expect(p.revision).to.equal(2);
    expect(p.partition).to.equal(5);
    expect(p.patch).to.deep.equal([
      { op: 'test', path: '/metadata/uid', value: 'sts-uid' },
      { op: 'test', path: '/metadata/resourceVersion', value: '42' },
      { op: 'replace', path: '/spec/template', value: tpl('app:2') },
      { op: 'add', path: '/spec/updateStrategy/rollingUpdate/partition', value: 5 },
    ]);
  });

  it('--to-revision picks one; a partition above replicas is never lowered', () => {
    const p = undoPlan(sts('app:3', { partition: 7 }), history, 1);
    expect(p.revision).to.equal(1);
    expect(p.partition).to.equal(7);
  });

  it('OnDelete has no partition to hold', () => {
    const p = undoPlan(sts('app:3', { onDelete: true }), history);
    expect(p.partition).to.equal(undefined);
    expect(p.patch.map((o) => o.path)).to.deep.equal(['/metadata/uid', '/metadata/resourceVersion', '/spec/template']);
  });

  for (const [what, run, msg] of [
    ['an unknown revision', () => undoPlan(sts('app:3'), history, 4), /has no revision 4; its revisions: 1, 2, 3/],
    ['no earlier revision', () => undoPlan(sts('app:1'), [rev(1, 'app:1')]), /no earlier revision/],
    ['already at that template', () => undoPlan(sts('app:2'), history, 2), /already runs the template of revision 2/],
    ['a revision of another StatefulSet', () => undoPlan(sts('app:3'), history, 9), /has no revision 9/],
  ] as const) {
    it(`refuses ${what}, saying why`, () => {
      expect(run).to.throw(CliError, msg);
    });
  }
});
