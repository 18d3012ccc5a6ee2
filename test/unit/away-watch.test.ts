import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { awayOf } from '../es/away-watch.ts';

// The judgement of the independent watcher of test/integration/elasticsearch-zones.test.ts:
// a count that cannot see a node away would pass a budget that lets two go.

const sts = (name: string, partition: number, update = 'r2'): V1StatefulSet => ({
  metadata: { name },
  spec: { replicas: 2, selector: {}, serviceName: name, template: {}, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition } } },
  status: { replicas: 2, updateRevision: update },
});
const pod = (name: string, o: { rev?: string; ready?: boolean; deleting?: boolean } = {}): V1Pod => ({
  metadata: { name, labels: { 'controller-revision-hash': o.rev ?? 'r1' }, ...(o.deleting ? { deletionTimestamp: new Date() } : {}) },
  status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
});
const all = new Set(['a-0', 'a-1', 'b-0', 'b-1']);

describe('the away watcher of the zones test (test/es/away-watch.ts)', () => {
  it('nothing away while both partitions hold and every pod is Ready and a member', () => {
    expect([...awayOf([sts('a', 2), sts('b', 2)], [pod('a-0'), pod('a-1'), pod('b-0'), pod('b-1')], [all, all]).keys()]).to.deep.equal([]);
  });

  it('an approved pod still at the old revision is away; once Ready at the new one it is not', () => {
    const pods = [pod('a-0'), pod('a-1'), pod('b-0'), pod('b-1')];
    expect([...awayOf([sts('a', 1), sts('b', 2)], pods, [all, all]).keys()]).to.deep.equal(['a-1']);
    expect([...awayOf([sts('a', 1), sts('b', 2)], [pod('a-0'), pod('a-1', { rev: 'r2' }), pod('b-0'), pod('b-1')], [all, all]).keys()]).to.deep.equal([]);
  });

  it('missing, terminating and unready pods are away, whichever StatefulSet', () => {
    const away = awayOf([sts('a', 2), sts('b', 2)], [pod('a-0', { deleting: true }), pod('b-0', { ready: false }), pod('b-1')], [all, all]);
    expect([...away.keys()].sort()).to.deep.equal(['a-0', 'a-1', 'b-0']);
    expect(away.get('a-1')).to.equal('no pod');
  });

  it('a node away from the cluster counts only when both member reads miss it; a failed read judges from the pods alone', () => {
    const pods = [pod('a-0'), pod('a-1'), pod('b-0'), pod('b-1')];
    const noB1 = new Set(['a-0', 'a-1', 'b-0']);
    expect([...awayOf([sts('a', 2), sts('b', 2)], pods, [noB1, noB1]).keys()]).to.deep.equal(['b-1']);
    expect([...awayOf([sts('a', 2), sts('b', 2)], pods, [noB1, all]).keys()]).to.deep.equal([]);
    expect([...awayOf([sts('a', 2), sts('b', 2)], pods, [noB1, undefined]).keys()]).to.deep.equal([]);
  });
});
