import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hooks } from '../../hooks/index.ts';
import { HttpHookRequest } from '../../hooks/http/schema.ts';
import { checkUpdateOrder, HookNotReady, parseHookOptions, type RolloutHook } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { loopbackEgress } from '../egress.ts';

const log = createLogger({ level: 'silent' });
const hook = (name: string): RolloutHook => hooks.get(name) as RolloutHook;

describe('hook registry and options', () => {
  it('registers noop and http by name', () => {
    expect([...hooks.keys()]).to.include.members(['noop', 'http']);
  });

  it('noop takes no options and rejects unknown ones by their annotation name', () => {
    expect(parseHookOptions(hook('noop'), { 'other.io/x': '1' })).to.deep.equal({ ok: true, options: {} });
    const r = parseHookOptions(hook('noop'), { 'noop.sts-pilot.io/colour': 'blue' });
    expect(r.ok).to.equal(false);
    expect(!r.ok && r.error).to.match(/invalid noop hook options: .*noop\.sts-pilot\.io\/colour/);
  });

  it('http requires a URL and parses the timeout', () => {
    const missing = parseHookOptions(hook('http'), {});
    expect(!missing.ok && missing.error).to.match(/http\.sts-pilot\.io\/url/);
    const ok = parseHookOptions(hook('http'), { 'http.sts-pilot.io/url': 'http://127.0.0.1:1/x', 'http.sts-pilot.io/timeout': '3' });
    expect(ok).to.deep.equal({ ok: true, options: { url: 'http://127.0.0.1:1/x', timeout: 3 } });
    const def = parseHookOptions(hook('http'), { 'http.sts-pilot.io/url': 'https://hooks.example/x' });
    expect(def.ok && def.options).to.deep.equal({ url: 'https://hooks.example/x', timeout: 10 });
  });

  for (const [what, ann] of [
    ['a non-URL', { 'http.sts-pilot.io/url': 'not a url' }],
    ['a file URL', { 'http.sts-pilot.io/url': 'file:///etc/passwd' }],
    ['a negative timeout', { 'http.sts-pilot.io/url': 'http://x/', 'http.sts-pilot.io/timeout': '-1' }],
    ['a huge timeout', { 'http.sts-pilot.io/url': 'http://x/', 'http.sts-pilot.io/timeout': '99999999999' }],
    ['a fractional timeout', { 'http.sts-pilot.io/url': 'http://x/', 'http.sts-pilot.io/timeout': '1.5' }],
  ] as const) {
    it(`http rejects ${what} with a clear error`, () => {
      const r = parseHookOptions(hook('http'), ann);
      expect(r.ok).to.equal(false);
      expect(!r.ok && r.error).to.match(/^invalid http hook options: http\.sts-pilot\.io\//);
    });
  }
});

describe('http hook against a real local server', () => {
  let server: Server;
  let url: string;
  let answer: { status: number; body: string; delayMs?: number };
  const received: unknown[] = [];

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(JSON.parse(body));
        setTimeout(() => res.writeHead(answer.status).end(answer.body), answer.delayMs ?? 0);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/step`;
  });
  after(() => server.close());

  const call = (timeout = 5, signal = new AbortController().signal) =>
    hook('http').podUpdateTransition(
      null,
      { metadata: { name: 'web-4' } },
      { statefulSet: { metadata: { name: 'web' } }, options: { url, timeout }, signal, log, secrets: async () => ({}), egress: loopbackEgress, pilots: staticPilotReader([]), nextReady: true },
    );

  it('2xx approves and the body carries the StatefulSet, prev and next', async () => {
    answer = { status: 204, body: '' };
    await call();
    expect(received.at(-1)).to.deep.equal({
      apiVersion: 'sts-pilot.io/v1alpha1',
      kind: 'PodUpdateTransition',
      statefulSet: { metadata: { name: 'web' } },
      prev: null,
      next: { metadata: { name: 'web-4' } },
      nextReady: true,
    });
    expect(HttpHookRequest.safeParse(received.at(-1)).error).to.equal(undefined);
  });

  it('a removal is a versioned PodRemoval request: the pod, whether it is Ready, its volumes, the size asked for', async () => {
    answer = { status: 200, body: 'ok' };
    const ctx = { statefulSet: { metadata: { name: 'web' } }, options: { url, timeout: 5 }, signal: new AbortController().signal, log, secrets: async () => ({}), egress: loopbackEgress, pilots: staticPilotReader([]) };
    const h = hook('http');
    await h.podRemoval?.({ metadata: { name: 'web-4', uid: 'u4' } }, { ...ctx, podReady: false, volumes: 'deleted', requestedReplicas: 3 });
    expect(received.at(-1)).to.deep.equal({
      apiVersion: 'sts-pilot.io/v1alpha1',
      kind: 'PodRemoval',
      call: 'removal',
      statefulSet: { metadata: { name: 'web' } },
      pod: { metadata: { name: 'web-4', uid: 'u4' } },
      podReady: false,
      volumes: 'deleted',
      requestedReplicas: 3,
    });
    await h.podRemoved?.({ metadata: { name: 'web-4', uid: 'u4' } }, 'withdrawn', { ...ctx, podReady: false, volumes: 'kept', requestedReplicas: 5 });
    expect(received.at(-1)).to.include({ kind: 'PodRemoval', call: 'withdrawn', volumes: 'kept', requestedReplicas: 5 });
    for (const body of received) expect(HttpHookRequest.safeParse(body).error, JSON.stringify(body)).to.equal(undefined);
    answer = { status: 409, body: 'shards still on it' };
    const err = await h.podRemoval?.({ metadata: { name: 'web-4', uid: 'u4' } }, { ...ctx, podReady: true, volumes: 'kept', requestedReplicas: 3 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HookNotReady);
    expect((err as Error).message).to.equal(`${url} answered 409: shards still on it`);
  });

  it('a non-2xx answer holds with its body as the reason', async () => {
    answer = { status: 409, body: 'cluster is yellow' };
    const err = await call().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HookNotReady);
    expect((err as Error).message).to.equal(`${url} answered 409: cluster is yellow`);
  });

  it('a slow answer holds at the timeout', async () => {
    answer = { status: 200, body: '', delayMs: 3000 };
    const err = await call(1).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HookNotReady);
    expect((err as Error).message).to.match(/did not answer/);
  });

  it('an unreachable URL holds', async () => {
    const err = await hook('http')
      .podUpdateTransition(null, null, {
        statefulSet: {},
        options: { url: 'http://127.0.0.1:1/', timeout: 2 },
        signal: new AbortController().signal,
        log,
        secrets: async () => ({}),
        egress: loopbackEgress,
        pilots: staticPilotReader([]),
        nextReady: null,
      })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HookNotReady);
    expect((err as Error).message).to.match(/127\.0\.0\.1:1\/ did not answer: .*ECONNREFUSED|connect/);
  });
});

describe('checkUpdateOrder: a hook must name each stale pod exactly once', () => {
  const stale = ['db-2', 'db-1', 'db-0'];
  const rows: [string, unknown, string | RegExp][] = [
    ['a permutation is taken', { pods: ['db-1', 'db-2', 'db-0'], reason: ' leader last ' }, 'ok db-1,db-2,db-0 leader last'],
    ['a pod it was not asked about', { pods: ['db-1', 'db-2', 'db-0', 'db-9'], reason: '' }, /names "db-9", which is not one of the stale pods/],
    ['a pod twice', { pods: ['db-1', 'db-1', 'db-0', 'db-2'], reason: '' }, /names db-1 twice/],
    ['a pod left out', { pods: ['db-1', 'db-0'], reason: '' }, /leaves out db-2/],
    ['not an object', 'db-1,db-2', /is not \{pods: string\[\], reason: string\}/],
    ['pods not strings', { pods: [1, 2, 3], reason: '' }, /is not \{pods/],
    ['no reason', { pods: ['db-1', 'db-2', 'db-0'] }, /is not \{pods/],
    ['extra fields', { pods: ['db-1', 'db-2', 'db-0'], reason: '', uids: [] }, /is not \{pods/],
  ];
  for (const [name, answer, want] of rows) {
    it(name, () => {
      const r = checkUpdateOrder(answer, stale);
      const got = r.ok ? `ok ${r.order.pods.join(',')} ${r.order.reason}` : r.error;
      if (want instanceof RegExp) expect(got).to.match(want);
      else expect(got).to.equal(want);
    });
  }
});
