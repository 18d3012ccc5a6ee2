import { PatchStrategy, setHeaderOptions, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../cluster/controlplane.ts';
import {
  auditViolations,
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  eventsFor,
  mergePatch,
  namespace,
  partitionOf,
  podsOf,
  readSts,
  RecordingHook,
  RolloutAudit,
  rolloutFinished,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

/**
 * A catalogue of bad input, all at once in one namespace under one controller,
 * beside one healthy rollout that must finish regardless. Each case asserts:
 * the rollout is held (no pod of that StatefulSet changed, the partition where
 * it must be), an Event and a log line say why, and nothing else was touched.
 * Input the API server itself refuses is listed at the end: it never reaches
 * the controller.
 */

const HOOK_TIMEOUT_S = 3; // the controller's own deadline for one hook call (--hook-timeout)
const KiB = 1024;

interface Urls {
  /** RecordingHook: says no to every case, yes to the healthy rollout. */
  refuse: string;
  hang: string;
  big500: string;
  nonsense: string;
  reset: string;
  redirect: string;
  slowBody: string;
  closed: string;
  tlsToPlain: string;
}

interface Ctx {
  c: Cluster;
  ns: string;
  urls: Urls;
  hook: RecordingHook;
}

interface Case {
  name: string;
  what: string;
  /** Value of the sts-pilot.io/hook label; undefined: created without it. */
  hook: string | undefined;
  replicas?: number;
  onDelete?: boolean;
  annotations?: (x: Ctx) => Record<string, string>;
  /** After the pods are up and the partition is held, before the template changes. */
  afterSettle?: (x: Ctx) => Promise<void>;
  /** The template was changed by afterSettle already. */
  noTemplateChange?: boolean;
  /** After the template change, concurrently with every other case; may move the baseline of pods. */
  during?: (x: Ctx, state: CaseState) => Promise<void>;
  /** An Event of this reason whose message matches. */
  event: { reason: string; message: RegExp } | undefined;
  /** A log line about this StatefulSet (any field) matches. */
  log: RegExp;
  /** Partition at the end; default: replicas. */
  partition?: number;
  /** 'never': the hook must never be asked (it cannot be used). */
  hookCalls?: 'never';
  /** Pods of the case that may change (documented races); default 0. */
  maxPodChanges?: number;
}

interface CaseState {
  baseline: string[];
  /** When `during` made its change, for the reaction time printed. */
  changedAt?: number;
}

const url = (x: Ctx, u: string, extra: Record<string, string> = {}): Record<string, string> => ({ 'http.sts-pilot.io/url': u, ...extra });
const patchPartition = (x: Ctx, name: string, partition: number): Promise<V1StatefulSet> =>
  mergePatch(x.c, x.ns, name, { spec: { updateStrategy: { rollingUpdate: { partition } } } });
const refusedOnce = async (x: Ctx, name: string): Promise<void> => {
  await waitUntil(`${name}: a refusal by the hook`, 60_000, async () => x.hook.calls.some((c) => c.sts === `${x.ns}/${name}` && !c.approved));
};

const HOLD_FINALIZER = 'sts-pilot.io/test-hold';
const setFinalizers = async (x: Ctx, pod: string, finalizers: string[] | null): Promise<void> => {
  await x.c.core.patchNamespacedPod({ name: pod, namespace: x.ns, body: { metadata: { finalizers } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)).catch((e: unknown) => {
    if ((e as { code?: number }).code !== 404) throw e;
  });
};

const unknownHook = (label: string): RegExp => new RegExp(`unknown hook ${JSON.stringify(label.slice(0, 63)).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} in label sts-pilot\\.io/hook`);
const held = (message: RegExp): { reason: string; message: RegExp } => ({ reason: 'Held', message });
const hookHeld = (message: RegExp): { reason: string; message: RegExp } => ({ reason: 'HookHeld', message });
const REFUSED = /answered 503: test hook says no/;
const UNREADABLE_STATUS = /ignoring unreadable sts-pilot\.io\/status annotation/;
const statusGarbage = (value: string) => async (x: Ctx, name: string) => {
  await mergePatch(x.c, x.ns, name, { metadata: { annotations: { 'sts-pilot.io/status': value } } });
};

const CASES: Case[] = [
  // --- the hook label
  { name: 'unknown-hook', what: 'unknown hook name', hook: 'no-such-hook', event: held(unknownHook('no-such-hook')), log: unknownHook('no-such-hook'), hookCalls: 'never' },
  { name: 'empty-hook', what: 'empty hook label', hook: '', event: held(unknownHook('')), log: unknownHook(''), hookCalls: 'never' },
  { name: 'weird-hook', what: 'hook label with every punctuation a label allows', hook: 'A.b_c-D.9', event: held(unknownHook('A.b_c-D.9')), log: unknownHook('A.b_c-D.9'), hookCalls: 'never' },
  { name: 'long-hook', what: 'hook label of 63 characters', hook: `h${'x'.repeat(61)}h`, event: held(/unknown hook "hx{61}h"/), log: /unknown hook "hx{61}h"/, hookCalls: 'never' },
  { name: 'case-hook', what: 'hook name in the wrong case (HTTP)', hook: 'HTTP', event: held(unknownHook('HTTP')), log: unknownHook('HTTP'), hookCalls: 'never' },
  { name: 'digit-hook', what: 'hook label "0"', hook: '0', event: held(unknownHook('0')), log: unknownHook('0'), hookCalls: 'never' },
  // --- the http hook's options
  { name: 'no-url', what: 'http hook without its url', hook: 'http', event: held(/invalid http hook options: http\.sts-pilot\.io\/url/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'not-a-url', what: 'url that is not a URL', hook: 'http', annotations: (x) => url(x, 'not a url'), event: held(/http\.sts-pilot\.io\/url: must be an http/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'ftp-url', what: 'url with another scheme', hook: 'http', annotations: (x) => url(x, 'ftp://127.0.0.1/step'), event: held(/http\.sts-pilot\.io\/url: must be an http/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'empty-url', what: 'empty url', hook: 'http', annotations: (x) => url(x, ''), event: held(/http\.sts-pilot\.io\/url/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'timeout-ten', what: 'timeout "ten" (wrong type)', hook: 'http', annotations: (x) => url(x, x.urls.refuse, { 'http.sts-pilot.io/timeout': 'ten' }), event: held(/http\.sts-pilot\.io\/timeout: must be a whole number of seconds/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'timeout-zero', what: 'timeout "0"', hook: 'http', annotations: (x) => url(x, x.urls.refuse, { 'http.sts-pilot.io/timeout': '0' }), event: held(/http\.sts-pilot\.io\/timeout/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'timeout-negative', what: 'timeout "-5"', hook: 'http', annotations: (x) => url(x, x.urls.refuse, { 'http.sts-pilot.io/timeout': '-5' }), event: held(/http\.sts-pilot\.io\/timeout/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'timeout-fraction', what: 'timeout "2.5"', hook: 'http', annotations: (x) => url(x, x.urls.refuse, { 'http.sts-pilot.io/timeout': '2.5' }), event: held(/http\.sts-pilot\.io\/timeout/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'timeout-too-big', what: 'timeout "9999999" (past the 6-digit bound)', hook: 'http', annotations: (x) => url(x, x.urls.refuse, { 'http.sts-pilot.io/timeout': '9999999' }), event: held(/http\.sts-pilot\.io\/timeout/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'unknown-option', what: 'an option the hook does not have', hook: 'http', annotations: (x) => url(x, x.urls.refuse, { 'http.sts-pilot.io/retries': '3' }), event: held(/http\.sts-pilot\.io\/retries/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'conflicting-url', what: 'url and URL, both set', hook: 'http', annotations: (x) => url(x, x.urls.refuse, { 'http.sts-pilot.io/URL': x.urls.hang }), event: held(/http\.sts-pilot\.io\/URL/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'huge-option', what: 'a 200 KiB timeout annotation', hook: 'http', annotations: (x) => url(x, x.urls.refuse, { 'http.sts-pilot.io/timeout': '9'.repeat(200 * KiB) }), event: held(/http\.sts-pilot\.io\/timeout/), log: /invalid http hook options/, hookCalls: 'never' },
  { name: 'huge-url', what: 'a 200 KiB url to a closed port', hook: 'http', annotations: (x) => url(x, `${x.urls.closed}${'a'.repeat(200 * KiB)}`), event: hookHeld(/did not answer/), log: /did not answer/ },
  { name: 'other-hooks-option', what: 'noop hook given an option', hook: 'noop', annotations: () => ({ 'noop.sts-pilot.io/url': 'http://127.0.0.1/' }), event: held(/invalid noop hook options: noop\.sts-pilot\.io\/url/), log: /invalid noop hook options/, hookCalls: 'never' },
  { name: 'manual-garbage', what: 'manual hook with a garbage approval', hook: 'manual', annotations: () => ({ 'manual.sts-pilot.io/approve': '../../etc/passwd\u0000' }), event: hookHeld(/manual holds pod manual-garbage-0: manual\.sts-pilot\.io\/approve=/), log: /hook holds the rollout/ },
  { name: 'manual-typo', what: 'manual hook option misspelt (approved)', hook: 'manual', annotations: () => ({ 'manual.sts-pilot.io/approved': 'x' }), event: held(/manual\.sts-pilot\.io\/approved/), log: /invalid manual hook options/, hookCalls: 'never' },
  // --- the controller's own annotations
  { name: 'paused-maybe', what: 'paused: "maybe"', hook: 'http', annotations: (x) => url(x, x.urls.refuse), afterSettle: (x) => mergePatch(x.c, x.ns, 'paused-maybe', { metadata: { annotations: { 'sts-pilot.io/paused': 'maybe' } } }).then(() => {}), event: held(/must be "true" or "false", got "maybe"/), log: /got "maybe"/, hookCalls: 'never' },
  { name: 'paused-upper', what: 'paused: "TRUE"', hook: 'http', annotations: (x) => url(x, x.urls.refuse), afterSettle: (x) => mergePatch(x.c, x.ns, 'paused-upper', { metadata: { annotations: { 'sts-pilot.io/paused': 'TRUE' } } }).then(() => {}), event: held(/got "TRUE"/), log: /got "TRUE"/, hookCalls: 'never' },
  { name: 'paused-empty', what: 'paused: ""', hook: 'http', annotations: (x) => url(x, x.urls.refuse), afterSettle: (x) => mergePatch(x.c, x.ns, 'paused-empty', { metadata: { annotations: { 'sts-pilot.io/paused': '' } } }).then(() => {}), event: held(/got ""/), log: /got ""/, hookCalls: 'never' },
  { name: 'paused-huge', what: 'paused: 100 KiB of text', hook: 'http', annotations: (x) => url(x, x.urls.refuse), afterSettle: (x) => mergePatch(x.c, x.ns, 'paused-huge', { metadata: { annotations: { 'sts-pilot.io/paused': 'y'.repeat(100 * KiB) } } }).then(() => {}), event: held(/got "y{64}…"/), log: /got "y{64}…"/, hookCalls: 'never' },
  { name: 'status-not-json', what: 'status annotation "{"', hook: 'http', annotations: (x) => url(x, x.urls.refuse), afterSettle: (x) => statusGarbage('{')(x, 'status-not-json'), event: hookHeld(REFUSED), log: UNREADABLE_STATUS },
  { name: 'status-array', what: 'status annotation a JSON array', hook: 'http', annotations: (x) => url(x, x.urls.refuse), afterSettle: (x) => statusGarbage('[1,2,3]')(x, 'status-array'), event: hookHeld(REFUSED), log: UNREADABLE_STATUS },
  { name: 'status-types', what: 'status mark with wrong types', hook: 'http', annotations: (x) => url(x, x.urls.refuse), afterSettle: (x) => statusGarbage('{"rollout":{"revision":7,"partition":"0"}}')(x, 'status-types'), event: hookHeld(REFUSED), log: UNREADABLE_STATUS },
  { name: 'status-negative', what: 'status mark with partition -1', hook: 'http', annotations: (x) => url(x, x.urls.refuse), afterSettle: (x) => statusGarbage('{"rollout":{"revision":"x","partition":-1}}')(x, 'status-negative'), event: hookHeld(REFUSED), log: UNREADABLE_STATUS },
  { name: 'status-deep', what: 'status annotation: 200 KB of nested JSON', hook: 'http', annotations: (x) => url(x, x.urls.refuse), afterSettle: (x) => statusGarbage('['.repeat(100 * KiB) + ']'.repeat(100 * KiB))(x, 'status-deep'), event: hookHeld(REFUSED), log: UNREADABLE_STATUS },
  // --- strategies and the partition
  { name: 'ondelete-unknown', what: 'OnDelete with an unknown hook', hook: 'nope', onDelete: true, event: held(unknownHook('nope')), log: unknownHook('nope'), hookCalls: 'never' },
  { name: 'ondelete-refused', what: 'OnDelete, the hook says no', hook: 'http', onDelete: true, annotations: (x) => url(x, x.urls.refuse), event: hookHeld(REFUSED), log: /hook holds the rollout/ },
  {
    name: 'replicas-zero',
    what: 'replicas 0: nothing to roll, nothing to ask',
    hook: 'http',
    replicas: 0,
    annotations: (x) => url(x, x.urls.refuse),
    event: undefined,
    log: /all 0 pods run/,
    hookCalls: 'never',
  },
  {
    name: 'adopted',
    what: 'labelled while a template change waits behind a hand-held partition',
    hook: undefined,
    replicas: 2,
    noTemplateChange: true,
    afterSettle: async (x) => {
      await patchPartition(x, 'adopted', 2);
      await setImage(x.c, x.ns, 'adopted', 'example/app:2');
      await waitUntil('adopted: the new revision', 30_000, async () => {
        const s = await readSts(x.c, x.ns, 'adopted');
        return s.status?.updateRevision !== s.status?.currentRevision;
      });
      await mergePatch(x.c, x.ns, 'adopted', { metadata: { labels: { 'sts-pilot.io/hook': 'http' }, annotations: { 'http.sts-pilot.io/url': x.urls.refuse } } });
    },
    event: hookHeld(REFUSED),
    log: /hook holds the rollout/,
  },
  {
    name: 'partition-above',
    what: 'partition raised past replicas by hand at rest',
    hook: 'http',
    annotations: (x) => url(x, x.urls.refuse),
    afterSettle: async (x) => {
      await patchPartition(x, 'partition-above', 7);
      await waitUntil('partition-above: back to replicas', 30_000, async () => partitionOf(await readSts(x.c, x.ns, 'partition-above')) === 1);
    },
    event: { reason: 'PartitionHeld', message: /holding partition at replicas \(1\)/ },
    log: /holding partition at replicas \(1\)/,
  },
  {
    name: 'partition-lowered',
    what: 'partition lowered to 0 by hand while the hook holds',
    hook: 'http',
    replicas: 2,
    annotations: (x) => url(x, x.urls.refuse),
    // A finalizer plays the pods' graceful termination (seconds in a real cluster, 0-200 ms for the
    // test node agent): the StatefulSet controller may start deleting pod 1 at once, but the pod is
    // still there, terminating, when the guard raises the partition above it.
    afterSettle: async (x) => {
      for (const p of await podsOf(x.c, x.ns, 'partition-lowered')) await setFinalizers(x, p.metadata?.name ?? '', [HOLD_FINALIZER]);
    },
    during: async (x, state) => {
      await refusedOnce(x, 'partition-lowered');
      state.changedAt = Date.now();
      await patchPartition(x, 'partition-lowered', 0);
      await waitUntil('partition-lowered: guarded', 30_000, async () => partitionOf(await readSts(x.c, x.ns, 'partition-lowered')) === 2).finally(async () => {
        for (const p of await podsOf(x.c, x.ns, 'partition-lowered')) await setFinalizers(x, p.metadata?.name ?? '', null);
      });
    },
    event: { reason: 'PartitionGuarded', message: /partition-lowered-1 .* without the hook's approval; raising the partition 0 -> 2/ },
    log: /raising the partition 0 -> 2/,
    // The StatefulSet controller sees the lowered partition as soon as sts-pilot does: it may delete
    // pod 1 before the guard raises the partition again (docs/rollout.md, "Guard"), never more, and
    // pod 1 comes back at the old revision.
    maxPodChanges: 1,
  },
  {
    name: 'partition-raised',
    what: 'partition raised by hand after a step',
    hook: 'http',
    replicas: 2,
    annotations: (x) => url(x, x.urls.refuse),
    during: async (x, state) => {
      await waitUntil('partition-raised: one step', 60_000, async () => {
        const s = await readSts(x.c, x.ns, 'partition-raised');
        return partitionOf(s) === 1 && s.status?.updatedReplicas === 1 && s.status.readyReplicas === 2;
      });
      await refusedOnce(x, 'partition-raised');
      state.baseline = (await podsOf(x.c, x.ns, 'partition-raised')).map((p) => p.metadata?.uid ?? '');
      state.changedAt = Date.now();
      await patchPartition(x, 'partition-raised', 2);
    },
    event: { reason: 'PartitionLowered', message: /pods partition-raised-1\.\.partition-raised-1 already run .*; lowering partition to 1/ },
    log: /lowering partition to 1/,
    partition: 1,
  },
  // --- the hook endpoint misbehaves
  { name: 'hook-hangs', what: 'hook URL that never answers (timeout 1s)', hook: 'http', annotations: (x) => url(x, x.urls.hang, { 'http.sts-pilot.io/timeout': '1' }), event: hookHeld(/did not answer/), log: /did not answer/ },
  {
    name: 'hook-hangs-long',
    what: `hook URL that never answers, timeout 999999s: the controller's own ${HOOK_TIMEOUT_S}s deadline`,
    hook: 'http',
    annotations: (x) => url(x, x.urls.hang, { 'http.sts-pilot.io/timeout': '999999' }),
    event: hookHeld(new RegExp(`gave no answer within ${HOOK_TIMEOUT_S}s`)),
    log: new RegExp(`gave no answer within ${HOOK_TIMEOUT_S}s`),
  },
  { name: 'hook-500-1mib', what: 'hook answers 500 with a 1 MiB body', hook: 'http', annotations: (x) => url(x, x.urls.big500), event: hookHeld(/answered 500: E{100}/), log: /answered 500/ },
  { name: 'hook-nonsense', what: 'hook answers bytes that are not HTTP', hook: 'http', annotations: (x) => url(x, x.urls.nonsense), event: hookHeld(/did not answer/), log: /did not answer/ },
  { name: 'hook-resets', what: 'hook closes the connection at once', hook: 'http', annotations: (x) => url(x, x.urls.reset), event: hookHeld(/did not answer/), log: /did not answer/ },
  { name: 'hook-refused', what: 'nothing listens at the hook URL', hook: 'http', annotations: (x) => url(x, x.urls.closed), event: hookHeld(/did not answer: .*ECONNREFUSED/), log: /ECONNREFUSED/ },
  { name: 'hook-redirect', what: 'hook answers a redirect to an approving URL', hook: 'http', annotations: (x) => url(x, x.urls.redirect), event: hookHeld(/answered 302/), log: /answered 302/ },
  { name: 'hook-slow-body', what: 'hook sends 200 and then trickles its body forever (timeout 1s)', hook: 'http', annotations: (x) => url(x, x.urls.slowBody, { 'http.sts-pilot.io/timeout': '1' }), event: hookHeld(/did not answer/), log: /did not answer/ },
  { name: 'hook-tls-mismatch', what: 'https:// URL to a plain HTTP server', hook: 'http', annotations: (x) => url(x, x.urls.tlsToPlain), event: hookHeld(/did not answer/), log: /did not answer/ },
];

/** Input the API server refuses: it never reaches the controller. */
const REJECTED: { what: string; apply: (x: Ctx) => Promise<unknown> }[] = [
  { what: 'hook label with a space', apply: (x) => x.c.apps.createNamespacedStatefulSet({ namespace: x.ns, body: statefulSet('rej-space', { replicas: 1, hook: 'my hook' }) }) },
  { what: 'hook label with a slash', apply: (x) => x.c.apps.createNamespacedStatefulSet({ namespace: x.ns, body: statefulSet('rej-slash', { replicas: 1, hook: 'http/../noop' }) }) },
  { what: 'hook label of 64 characters', apply: (x) => x.c.apps.createNamespacedStatefulSet({ namespace: x.ns, body: statefulSet('rej-long', { replicas: 1, hook: 'h'.repeat(64) }) }) },
  { what: 'hook label with non-ASCII letters', apply: (x) => x.c.apps.createNamespacedStatefulSet({ namespace: x.ns, body: statefulSet('rej-unicode', { replicas: 1, hook: 'élastique' }) }) },
  {
    what: 'OnDelete with a rollingUpdate partition',
    apply: (x) => {
      const body = statefulSet('rej-ondelete', { replicas: 1, hook: 'http', onDelete: true });
      (body.spec as NonNullable<V1StatefulSet['spec']>).updateStrategy = { type: 'OnDelete', rollingUpdate: { partition: 3 } };
      return x.c.apps.createNamespacedStatefulSet({ namespace: x.ns, body });
    },
  },
  { what: 'negative partition', apply: (x) => patchPartition(x, 'healthy', -1) },
  { what: 'partition "abc"', apply: (x) => mergePatch(x.c, x.ns, 'healthy', { spec: { updateStrategy: { rollingUpdate: { partition: 'abc' } } } }) },
  { what: 'negative replicas', apply: (x) => mergePatch(x.c, x.ns, 'healthy', { spec: { replicas: -1 } }) },
  {
    what: 'annotations over 256 KiB in total',
    apply: (x) => mergePatch(x.c, x.ns, 'healthy', { metadata: { annotations: { 'http.sts-pilot.io/x': 'z'.repeat(257 * KiB) } } }),
  },
];

/** A log record as text: string fields as they are (not JSON-escaped), the rest as JSON. */
const logText = (l: Record<string, unknown>): string => Object.values(l).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(' ');

async function listen(server: Server | TcpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('bad input: a catalogue held safely, with an Event and a log line each, beside a healthy rollout', function () {
  this.timeout(5 * 60_000);
  let x: Ctx;
  let ctrl: ControllerProcess;
  let audit: RolloutAudit;
  let pid: number | undefined;
  let healthyFrom = '';
  const servers: (Server | TcpServer)[] = [];
  const sockets = new Set<Socket>();
  const states = new Map<string, CaseState>();
  const created = new Map<string, V1StatefulSet>();
  const during: Promise<void>[] = [];
  let deadline = 0;
  let t0 = Date.now();

  before(async function () {
    this.timeout(80 * 60_000);
    t0 = Date.now();
    const c = await cluster();
    const ns = await namespace(c, 'bad-input', { gate: false }); // hand-edited partitions reach the guard here
    const hook = await new RecordingHook().start();
    hook.decide = (call) => call.sts === `${ns}/healthy` || (call.sts === `${ns}/partition-raised` && call.prev === null);

    const track = (s: Server | TcpServer): Server | TcpServer => {
      s.on('connection', (sock: Socket) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
      });
      servers.push(s);
      return s;
    };
    const hang = track(createHttpServer(() => {}));
    const big500 = track(
      createHttpServer((req, res) => {
        req.resume();
        res.writeHead(500, { 'content-type': 'text/plain' }).end('E'.repeat(1024 * KiB));
      }),
    );
    const nonsense = track(
      createTcpServer((sock) => {
        sock.on('error', () => {});
        sock.once('data', () => sock.end('SPDY/9 banana\r\n\u0000\u0001\u0002 not HTTP at all\r\n\r\n'));
      }),
    );
    const reset = track(createTcpServer((sock) => sock.resetAndDestroy()));
    const redirect = track(
      createHttpServer((req, res) => {
        req.resume();
        res.writeHead(302, { location: hook.url }).end();
      }),
    );
    const slowBody = track(
      createHttpServer((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain' });
        const t = setInterval(() => res.write('.'), 200);
        res.on('close', () => clearInterval(t));
      }),
    );
    const plain = track(createHttpServer((req, res) => res.writeHead(200).end('plain')));
    const ports = {
      hang: await listen(hang),
      big500: await listen(big500),
      nonsense: await listen(nonsense),
      reset: await listen(reset),
      redirect: await listen(redirect),
      slowBody: await listen(slowBody),
      plain: await listen(plain),
    };
    const urls: Urls = {
      refuse: hook.url,
      hang: `http://127.0.0.1:${ports.hang}/step`,
      big500: `http://127.0.0.1:${ports.big500}/step`,
      nonsense: `http://127.0.0.1:${ports.nonsense}/step`,
      reset: `http://127.0.0.1:${ports.reset}/step`,
      redirect: `http://127.0.0.1:${ports.redirect}/step`,
      slowBody: `http://127.0.0.1:${ports.slowBody}/step`,
      closed: `http://127.0.0.1:${await freePort()}/`,
      tlsToPlain: `https://127.0.0.1:${ports.plain}/step`,
    };
    x = { c, ns, urls, hook };
    audit = await new RolloutAudit().start(c, ns);
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, '--hook-timeout', String(HOOK_TIMEOUT_S)], 'bad-input-controller');
    pid = ctrl.pid;

    // Every StatefulSet of the catalogue, and the healthy one, at once.
    const all = [
      ...CASES.map((k) => {
        const sts = statefulSet(k.name, { replicas: k.replicas ?? 1, hook: k.hook, onDelete: k.onDelete, annotations: k.annotations?.(x) ?? {} });
        if (k.hook === '') (sts.metadata as { labels: Record<string, string> }).labels = { 'sts-pilot.io/hook': '' };
        return sts;
      }),
      statefulSet('healthy', { replicas: 3, hook: 'http', annotations: { 'http.sts-pilot.io/url': hook.url } }),
    ];
    await Promise.all(
      all.map(async (s) => {
        if (s.spec?.replicas !== 0) return createAndSettle(c, ns, s);
        await c.apps.createNamespacedStatefulSet({ namespace: ns, body: s });
        return waitUntil(`${s.metadata?.name} to be observed`, 60_000, async () => {
          const live = await readSts(c, ns, s.metadata?.name ?? '');
          return live.status?.observedGeneration === live.metadata?.generation && partitionOf(live) === 0;
        });
      }),
    );
    healthyFrom = (await readSts(c, ns, 'healthy')).status?.updateRevision ?? '';
    for (const k of CASES) await k.afterSettle?.(x);
    for (const k of CASES) {
      states.set(k.name, { baseline: (await podsOf(c, ns, k.name)).map((p) => p.metadata?.uid ?? '') });
      created.set(k.name, await readSts(c, ns, k.name));
    }
    // The rollouts: every template changes at once.
    await Promise.all([...CASES.filter((k) => !k.noTemplateChange).map((k) => setImage(c, ns, k.name, 'example/app:2')), setImage(c, ns, 'healthy', 'example/app:2')]);
    for (const k of CASES) if (k.during) during.push(k.during(x, states.get(k.name) as CaseState));
    deadline = Date.now() + 90_000;
    console.log(`      ${CASES.length} cases and 1 healthy rollout set up in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  });

  after(async () => {
    await ctrl?.kill('SIGKILL');
    x?.hook.stop();
    await audit?.stop();
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
  });

  it('the healthy rollout beside the catalogue finishes, every step approved', async () => {
    await waitUntil('the healthy rollout', 120_000, async () => rolloutFinished(x.c, x.ns, 'healthy', healthyFrom));
    await audit.caughtUp(x.c, x.ns);
    expect(auditViolations(audit, x.hook.calls, x.ns, ['healthy'], t0)).to.deep.equal([]);
    await Promise.all(during);
  });

  for (const k of CASES) {
    it(`${k.name}: ${k.what}`, async () => {
      const key = `${x.ns}/${k.name}`;
      const remaining = (): number => Math.max(2000, deadline - Date.now());
      if (k.event) {
        const ev = k.event;
        await waitUntil(`an Event ${ev.reason} matching ${ev.message}`, remaining(), async () =>
          (await eventsFor(x.c, x.ns, k.name)).some((e) => e.reason === ev.reason && ev.message.test(e.message)),
        ).catch(async (err: Error) => {
          const seen = (await eventsFor(x.c, x.ns, k.name)).map((e) => `${e.reason}: ${e.message.slice(0, 200)}`);
          throw new Error(`${err.message}; Events: ${JSON.stringify(seen)}`);
        });
      }
      await waitUntil(`a log line matching ${k.log}`, remaining(), async () =>
        ctrl.logs.some((l) => l.statefulSet === key && k.log.test(logText(l))),
      );
      const n = k.replicas ?? 1;
      const state = states.get(k.name) as CaseState;
      if (state.changedAt !== undefined) {
        const reaction = ctrl.logs.find((l) => l.statefulSet === key && k.log.test(logText(l)));
        console.log(`      (${k.name}: the controller reacted ${new Date(String(reaction?.time)).getTime() - state.changedAt} ms after the change)`);
      }
      const now = (await podsOf(x.c, x.ns, k.name)).map((p: V1Pod) => p.metadata?.uid ?? '');
      const changed = state.baseline.filter((uid) => !now.includes(uid)).length;
      expect(changed, `pods of ${k.name} that changed`).to.be.at.most(k.maxPodChanges ?? 0);
      const sts = await readSts(x.c, x.ns, k.name);
      if (!k.onDelete) expect(partitionOf(sts), 'partition').to.equal(k.partition ?? n);
      // No pod moved to the new revision without an approval.
      const moved = audit.deletions.filter((d) => d.owner === k.name);
      for (const d of moved) {
        const approved = x.hook.calls.some((c) => c.sts === key && c.approved && c.next?.uid === d.oldUid && c.answeredAt <= d.at);
        if (approved) continue;
        const pod = await waitUntil(`${d.name} to be back`, 30_000, async () =>
          (await podsOf(x.c, x.ns, k.name)).find((p) => p.metadata?.name === d.name && p.metadata.uid !== d.oldUid && !p.metadata.deletionTimestamp),
        );
        expect(pod.metadata?.labels?.['controller-revision-hash'], `${d.name} was replaced without an approval: it must come back at the old revision`).to.equal(d.oldRevision);
      }
      if (k.hookCalls === 'never') expect(x.hook.calls.filter((c) => c.sts === key), 'hook calls').to.deep.equal([]);
    });
  }

  it('the controller is still the same process, alive and ready', async () => {
    expect(ctrl.alive).to.equal(true);
    expect(ctrl.pid).to.equal(pid);
    expect((await fetch(`http://127.0.0.1:${ctrl.probePort}/readyz`)).status).to.equal(200);
  });

  it('nothing else was touched: labels, annotations, templates and pods as the test left them', async () => {
    for (const k of CASES) {
      const before = created.get(k.name) as V1StatefulSet;
      const now = await readSts(x.c, x.ns, k.name);
      const strip = (a: Record<string, string> | undefined): Record<string, string> => {
        const { 'sts-pilot.io/status': _status, ...rest } = a ?? {};
        return rest;
      };
      expect(now.metadata?.labels, `${k.name}: labels`).to.deep.equal(before.metadata?.labels);
      expect(strip(now.metadata?.annotations), `${k.name}: annotations`).to.deep.equal(strip(before.metadata?.annotations));
      expect(now.spec?.template.spec?.containers?.[0]?.image, `${k.name}: image`).to.equal('example/app:2');
      expect(now.spec?.replicas, `${k.name}: replicas`).to.equal(k.replicas ?? 1);
    }
    const approved = (uid: string): boolean => x.hook.calls.some((c) => c.approved && c.next?.uid === uid);
    await audit.caughtUp(x.c, x.ns);
    const unexpected = audit.deletions.filter((d) => !approved(d.oldUid) && !CASES.some((k) => k.name === d.owner && (k.maxPodChanges ?? 0) > 0));
    expect(unexpected.map((d) => d.name), 'pods that went away').to.deep.equal([]);
  });

  for (const r of REJECTED) {
    it(`refused by the API server, never seen by the controller: ${r.what}`, async () => {
      const err = await r.apply(x).then(
        () => undefined,
        (e: unknown) => e as { code?: number; body?: unknown },
      );
      expect(err, `${r.what} was accepted`).to.not.equal(undefined);
      expect([400, 413, 422]).to.include(err?.code);
    });
  }

  after(() => {
    console.log(`      ${CASES.length} bad inputs held, ${REJECTED.length} refused by the API server; ${x?.hook.calls.length ?? 0} hook calls in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  });
});
