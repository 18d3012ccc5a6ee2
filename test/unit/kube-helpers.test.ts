import { KubeConfig, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { goJson, guardedPatch, isFailedTest, pointer } from '../../lib/kube/guarded-patch.ts';
import { continueToken, Informer, trim } from '../../lib/kube/informer.ts';
import { createLogger } from '../../lib/log.ts';
import { OwnerIndex } from '../../lib/kube/owner-index.ts';

describe('informer helpers', () => {
  it('reads the next-page token of typed lists (_continue) and raw lists (continue)', () => {
    expect(continueToken({ metadata: { _continue: 'typed' }, items: [] } as never)).to.equal('typed');
    // CustomObjectsApi returns the JSON as is: before this the Pilot cache stopped after 500.
    expect(continueToken({ metadata: { continue: 'raw' }, items: [] } as never)).to.equal('raw');
    expect(continueToken({ metadata: { continue: '' }, items: [] } as never)).to.equal(undefined);
    expect(continueToken({ items: [] } as never)).to.equal(undefined);
  });

  it('projects each list page before asking for the next (the whole list as read is never held at once)', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const pod = (name: string): V1Pod => ({ metadata: { name, namespace: 'ns', managedFields: [{ manager: 'm' }] }, spec: { containers: [] } });
    const projected: string[] = [];
    let projectedBeforePage2: string[] | undefined;
    let listed = (): void => {};
    const done = new Promise<void>((r) => (listed = r));
    const informer = new Informer<V1Pod>({
      kc,
      path: '/api/v1/pods',
      log: createLogger({ level: 'silent', name: 'test' }),
      listPage: async (token) => {
        if (token === undefined) return { metadata: { _continue: 'p2' }, items: [pod('a'), pod('b')] };
        projectedBeforePage2 = [...projected];
        listed();
        return { metadata: { resourceVersion: '9' }, items: [pod('c')] };
      },
      transform: (p) => {
        projected.push(p.metadata?.name ?? '');
        return { metadata: { name: p.metadata?.name, namespace: p.metadata?.namespace } };
      },
      onChange: () => {},
    });
    void informer.start();
    await done;
    await informer.stop();
    expect(projectedBeforePage2).to.deep.equal(['a', 'b']);
    expect(projected).to.deep.equal(['a', 'b', 'c']);
    expect(informer.get('a', 'ns')).to.deep.equal({ metadata: { name: 'a', namespace: 'ns' } });
  });

  it('drops managedFields and nothing else', () => {
    const pod = { metadata: { name: 'p', labels: { a: 'b' }, managedFields: [{ manager: 'x' }] }, spec: {} } as unknown as V1Pod;
    expect(trim(pod)).to.equal(pod);
    expect(pod).to.deep.equal({ metadata: { name: 'p', labels: { a: 'b' } }, spec: {} });
  });
});

describe('OwnerIndex', () => {
  const pod = (name: string, owner: string | undefined, ns = 'ns'): V1Pod => ({
    metadata: { name, namespace: ns, ownerReferences: owner ? [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'x', uid: owner, controller: true }] : [] },
  });

  it('files objects under their controller, refiles on update and forgets on delete', () => {
    const idx = new OwnerIndex<V1Pod>();
    idx.onChange(pod('a-0', 'u1'), 'add');
    idx.onChange(pod('a-1', 'u1'), 'add');
    idx.onChange(pod('b-0', 'u2'), 'add');
    idx.onChange(pod('orphan', undefined), 'add');
    expect(idx.of('u1').map((p) => p.metadata?.name).sort()).to.deep.equal(['a-0', 'a-1']);
    expect(idx.of('u2').map((p) => p.metadata?.name)).to.deep.equal(['b-0']);
    const newer = pod('a-1', 'u1');
    newer.metadata!.resourceVersion = '2';
    idx.onChange(newer, 'update');
    expect(idx.of('u1').find((p) => p.metadata?.name === 'a-1')).to.equal(newer);
    idx.onChange(pod('b-0', 'u3'), 'update');
    expect(idx.of('u2')).to.deep.equal([]);
    expect(idx.of('u3')).to.have.length(1);
    idx.onChange(pod('a-0', 'u1'), 'delete');
    expect(idx.of('u1').map((p) => p.metadata?.name)).to.deep.equal(['a-1']);
    expect(idx.of(undefined)).to.deep.equal([]);
  });

  it('keeps same-named pods of two namespaces apart', () => {
    const idx = new OwnerIndex<V1Pod>();
    idx.onChange(pod('a-0', 'u1', 'one'), 'add');
    idx.onChange(pod('a-0', 'u2', 'two'), 'add');
    idx.onChange(pod('a-0', 'u1', 'one'), 'delete');
    expect(idx.of('u2')).to.have.length(1);
    expect(idx.of('u1')).to.have.length(0);
  });
});

describe('guardedPatch', () => {
  const sts = (md: Partial<NonNullable<V1StatefulSet['metadata']>>, rollingUpdate = true): V1StatefulSet => ({
    metadata: { name: 'web', namespace: 'ns', uid: 'u', generation: 3, labels: { 'sts-pilot.io/hook': 'noop' }, annotations: { 'a/b': 'c' }, ...md },
    spec: { selector: {}, serviceName: 'web', template: {}, updateStrategy: rollingUpdate ? { type: 'RollingUpdate', rollingUpdate: { partition: 5 } } : { type: 'RollingUpdate' } },
  });

  it('tests uid, generation, labels and annotations, then writes the annotation and the partition', () => {
    expect(guardedPatch(sts({}), { 'sts-pilot.io/status': '{}' }, 4)).to.deep.equal([
      { op: 'test', path: '/metadata/uid', value: 'u' },
      { op: 'test', path: '/metadata/generation', value: 3 },
      { op: 'test', path: '/metadata/labels', value: { 'sts-pilot.io/hook': 'noop' } },
      { op: 'test', path: '/metadata/annotations', value: { 'a/b': 'c' } },
      { op: 'add', path: '/metadata/annotations/sts-pilot.io~1status', value: '{}' },
      { op: 'add', path: '/spec/updateStrategy/rollingUpdate/partition', value: 4 },
    ]);
  });

  it('creates rollingUpdate when the strategy has none, and leaves the partition alone when not asked', () => {
    expect(guardedPatch(sts({}, false), {}, 2)?.at(-1)).to.deep.equal({ op: 'add', path: '/spec/updateStrategy/rollingUpdate', value: { partition: 2 } });
    expect(guardedPatch(sts({}), { k: 'v' })?.filter((o) => o.op === 'add')).to.deep.equal([{ op: 'add', path: '/metadata/annotations/k', value: 'v' }]);
  });

  it('declines when the guard cannot be expressed (test cannot assert an absent path)', () => {
    expect(guardedPatch(sts({ annotations: undefined }), {}, 1)).to.equal(undefined);
    expect(guardedPatch(sts({ annotations: {} }), {}, 1)).to.equal(undefined);
    expect(guardedPatch(sts({ uid: undefined }), {}, 1)).to.equal(undefined);
    expect(guardedPatch(sts({ generation: undefined }), {}, 1)).to.equal(undefined);
    expect(guardedPatch(sts({ labels: undefined }), {}, 1)).to.equal(undefined);
  });

  it('escapes JSON Pointer segments', () => {
    expect(pointer('a/b~c')).to.equal('a~1b~0c');
  });

  it('tells a failed test from other 422s', () => {
    // What kube-apiserver v1.37 answers to a failed test op (bench/guarded-patch.ts prints it).
    const refusal = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server rejected our request due to an error in our request","reason":"Invalid","details":{},"code":422}';
    expect(isFailedTest({ code: 422, body: refusal })).to.equal(true);
    expect(isFailedTest({ code: 422, body: JSON.parse(refusal) })).to.equal(true);
    expect(isFailedTest({ code: 422, body: { message: 'StatefulSet.apps "web" is invalid: spec.replicas: Invalid value: -1' } })).to.equal(false);
    expect(isFailedTest(new Error('boom'))).to.equal(false);
  });
});

describe('goJson', () => {
  it('escapes what Go escapes, so a test op matches the server encoding byte for byte', () => {
    const value = { message: 'partition 2 -> 1', url: 'http://h/?a=1&b=<2>', sep: '\u2028\u2029', plain: 'é ✓ "q" \\' };
    const text = goJson(JSON.stringify(value));
    expect(text).to.not.match(/[<>&\u2028\u2029]/);
    expect(text).to.include('-\\u003e 1').and.include('a=1\\u0026b=\\u003c2\\u003e');
    expect(JSON.parse(text)).to.deep.equal(value);
  });
});

describe('describeError: the cause of a failed connection is said', () => {
  it('"fetch failed" with its cause', async () => {
    const { describeError } = await import('../../lib/errors.ts');
    const err = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) });
    expect(describeError(err)).to.equal('fetch failed: connect ECONNREFUSED 127.0.0.1:1');
    expect(describeError(new Error('plain'))).to.equal('plain');
  });
});
