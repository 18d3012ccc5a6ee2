import type { AppsV1Api, CoreV1Api, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { z } from 'zod';
import type { HookRunnerOptions } from '../../lib/controller/hook-runner.ts';
import { HookRunner } from '../../lib/controller/hook-runner.ts';
import { defineHook, HookNotReady, type RolloutHook } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { createMetrics } from '../../lib/metrics.ts';
import type { PodView } from '../../lib/rollout/snapshot.ts';
import { loopbackEgress } from '../egress.ts';

// What a hook is given: whole objects read when the call is made, or, for a hook
// that says `objects: 'cached'`, copies of the cache without a read. The API is
// a stub that counts reads (the real reads run in every http-hook integration test).

const sts: V1StatefulSet = { metadata: { name: 'web', namespace: 'ns', uid: 'sts-uid' }, spec: { replicas: 2, selector: {}, serviceName: 'web', template: {} } };
const pod = (i: number, uid: string, extra: Partial<V1Pod['spec']> = {}): V1Pod => ({
  metadata: { name: `web-${i}`, namespace: 'ns', uid },
  spec: { containers: [{ name: 'app', image: 'example/app:1' }], ...extra },
});
const view = (i: number, uid: string): PodView => ({ name: `web-${i}`, uid, resourceVersion: '1', ordinal: i, index: i, revision: 'A', ready: true, readySince: 0, terminating: false });

function runner(live: V1Pod[]) {
  const reads: string[] = [];
  const added: string[] = [];
  const events: { type: string; reason: string; message: string }[] = [];
  const apps = { readNamespacedStatefulSet: async () => (reads.push('sts'), { ...sts, spec: { ...sts.spec, template: { metadata: { labels: { full: 'yes' } } } } }) };
  const core = {
    readNamespacedPod: async ({ name }: { name: string }) => {
      reads.push(name);
      const p = live.find((x) => x.metadata?.name === name);
      if (!p) throw new Error(`pod ${name} not found`);
      return p;
    },
  };
  const queue = { add: (k: string) => added.push(k), addRateLimited: () => 10, addAfter: () => {}, forget: () => {} };
  const o = {
    apps: apps as unknown as AppsV1Api,
    core: core as unknown as CoreV1Api,
    events: { emit: async (_o: unknown, type: string, reason: string, message: string) => void events.push({ type, reason, message }) },
    writer: { recordHold: async () => {} },
    metrics: createMetrics(),
    queue,
    pilots: () => ({}),
    secrets: () => async () => ({}),
    egress: loopbackEgress,
    isLeader: () => true,
    timeoutMs: 5000,
  } as unknown as HookRunnerOptions;
  return { r: new HookRunner(o), reads, added, events };
}

function recording(objects: 'full' | 'cached' | undefined) {
  const seen: { prev: V1Pod | null; next: V1Pod | null; sts: V1StatefulSet }[] = [];
  const hook = defineHook({
    name: 'rec',
    description: 'records what it was given',
    options: z.strictObject({}),
    ...(objects ? { objects } : {}),
    async podUpdateTransition(prev, next, ctx) {
      seen.push({ prev, next, sts: ctx.statefulSet });
    },
  }) as RolloutHook;
  return { hook, seen };
}

const action = (prev: PodView | null, next: PodView | null) => ({ kind: 'callHook' as const, phase: 'Rolling' as const, key: 'k1', prev, next, nextReady: true, message: 'asking' });
const log = createLogger({ level: 'silent' });

describe('hook runner: the objects a hook is given', () => {
  const cachedPods = [{ metadata: { name: 'web-1', namespace: 'ns', uid: 'u1' } }, { metadata: { name: 'web-0', namespace: 'ns', uid: 'u0' } }];

  it('by default reads the StatefulSet and both pods whole, when the call is made', async () => {
    const { r, reads, added } = runner([pod(1, 'u1'), pod(0, 'u0')]);
    const { hook, seen } = recording(undefined);
    r.ask('ns/web', sts, cachedPods, hook, {}, action(view(1, 'u1'), view(0, 'u0')), log);
    await r.stop();
    expect(reads.sort()).to.deep.equal(['sts', 'web-0', 'web-1']);
    expect(seen[0]?.next?.spec?.containers?.[0]?.image, 'the whole pod').to.equal('example/app:1');
    expect(seen[0]?.sts.spec?.template.metadata?.labels?.full, 'the whole StatefulSet').to.equal('yes');
    expect(r.approval('ns/web')?.key).to.equal('k1');
    expect(added).to.deep.equal(['ns/web']);
  });

  it('does not ask the hook when a pod read is another pod than the one planned on', async () => {
    const { r, reads } = runner([pod(1, 'u1'), pod(0, 'u0-replaced')]);
    const { hook, seen } = recording('full');
    r.ask('ns/web', sts, cachedPods, hook, {}, action(view(1, 'u1'), view(0, 'u0')), log);
    await r.stop();
    expect(reads.length).to.equal(3);
    expect(seen, 'the hook was not asked').to.deep.equal([]);
    expect(r.approval('ns/web')).to.equal(undefined);
  });

  it("objects: 'cached' gives copies of the cache without a read", async () => {
    const { r, reads } = runner([]);
    const { hook, seen } = recording('cached');
    r.ask('ns/web', sts, cachedPods, hook, {}, action(view(1, 'u1'), view(0, 'u0')), log);
    await r.stop();
    expect(reads, 'no read').to.deep.equal([]);
    expect(seen[0]?.prev?.metadata?.uid).to.equal('u1');
    expect(seen[0]?.next?.metadata?.uid).to.equal('u0');
    expect(seen[0]?.next, 'a copy, not the cached object').to.not.equal(cachedPods[1]);
    expect(r.approval('ns/web')?.key).to.equal('k1');
  });
});

describe('hook runner: what a hook says besides its answer', () => {
  it('ctx.warn becomes a Warning Event HookWarning after the call, approved or held', async () => {
    const { r, events } = runner([pod(1, 'u1'), pod(0, 'u0')]);
    let hold = false;
    const hook = defineHook({
      name: 'warns',
      description: 'approves, and warns',
      options: z.strictObject({}),
      objects: 'cached',
      async podUpdateTransition(_prev, _next, ctx) {
        ctx.warn?.('topic t1 (replication factor 2, min.insync.replicas 2) is offline during any restart');
        if (hold) throw new HookNotReady('not yet');
      },
    }) as RolloutHook;
    const cachedPods = [{ metadata: { name: 'web-1', namespace: 'ns', uid: 'u1' } }, { metadata: { name: 'web-0', namespace: 'ns', uid: 'u0' } }];
    r.ask('ns/web', sts, cachedPods, hook, {}, action(view(1, 'u1'), view(0, 'u0')), log);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(r.approval('ns/web')?.key).to.equal('k1');
    expect(events).to.deep.equal([{ type: 'Warning', reason: 'HookWarning', message: 'warns: topic t1 (replication factor 2, min.insync.replicas 2) is offline during any restart' }]);
    hold = true;
    r.ask('ns/web', sts, cachedPods, hook, {}, { ...action(view(1, 'u1'), view(0, 'u0')), key: 'k2' }, log);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events.map((e) => e.reason)).to.deep.equal(['HookWarning', 'HookWarning', 'HookHeld']);
    await r.stop();
  });
});

describe('hook runner: a hold by what it asks of a person', () => {
  const cachedPods = [{ metadata: { name: 'web-1', namespace: 'ns', uid: 'u1' } }, { metadata: { name: 'web-0', namespace: 'ns', uid: 'u0' } }];
  const answering = (fail: () => never) =>
    defineHook({
      name: 'h',
      description: 'holds as told',
      options: z.strictObject({}),
      objects: 'cached',
      async podUpdateTransition() {
        fail();
      },
    }) as RolloutHook;

  for (const [what, fail, type] of [
    ['a routine wait (a drain in progress) is Normal', () => { throw new HookNotReady('draining: 3 shards left on es-2', { routine: true }); }, 'Normal'],
    ['a hold its hook did not call routine is a Warning', () => { throw new HookNotReady('the cluster is red'); }, 'Warning'],
    ['a hook error is a Warning', () => { throw new Error('boom'); }, 'Warning'],
  ] as const) {
    it(what, async () => {
      const { r, events } = runner([]);
      r.ask('ns/web', sts, cachedPods, answering(fail), {}, action(view(1, 'u1'), view(0, 'u0')), log);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await r.stop();
      expect(events.map((e) => [e.type, e.reason])).to.deep.equal([[type, 'HookHeld']]);
    });
  }
});
