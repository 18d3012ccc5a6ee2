// The elasticsearch hook against a real 3-node cluster on loopback
// (OpenSearch 2.19 by default; STS_PILOT_ES_DIST=elasticsearch for
// Elasticsearch 8.19 — see test/es/es-cluster.ts). The hook's
// podUpdateTransition is called directly, as the controller calls it, with pods
// named like the nodes and a real HookContext; the nodes are really restarted
// between steps. The hook reaches the cluster through a small TCP proxy that
// plays the Kubernetes Service: it spreads connections over the running nodes,
// so the hook's URL stays up while any one node restarts.
//
// Env: STS_PILOT_ES_DOCS (default 20000) documents of ~1 kB (random, so ~20 MiB) in the data set;
// STS_PILOT_TEST_VERBOSE=1 prints every hold reason and the nodes' warnings.

import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { randomBytes, randomUUID } from 'node:crypto';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../../hooks/elasticsearch/client.ts';
import { elasticsearchHook } from '../../hooks/elasticsearch/index.ts';
import { readCluster } from '../../hooks/elasticsearch/read.ts';
import type { Options } from '../../hooks/elasticsearch/options.ts';
import { type HookContext, HookNotReady, parseHookOptions, type RolloutHook } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { clusterUuid, type EsClusterHandle, type EsNodeHandle, esCall, startEsCluster } from '../es/es-cluster.ts';
import { loopbackEgress } from '../egress.ts';

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const DOCS = Number(process.env.STS_PILOT_ES_DOCS ?? 20_000);
const DOC_BYTES = 1000;
const NS = 'db';
const EXCLUDE = 'cluster.routing.allocation.exclude._name';
const ENABLE = 'cluster.routing.allocation.enable';
const MARKER = `cluster.metadata.sts-pilot_${NS}_es`;
const log = createLogger({ level: process.env.LOG_LEVEL ?? (verbose ? 'info' : 'silent'), name: 'es-hook-test' });
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------
// the Service: a TCP proxy over the running nodes

interface Service {
  url: string;
  close(): Promise<void>;
}

async function service(nodes: EsNodeHandle[]): Promise<Service> {
  let rr = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    // Like kube-proxy with endpoints of running pods: try each once, from the next in turn.
    const candidates = nodes.filter((n) => n.running);
    const start = rr++;
    const attempt = (i: number): void => {
      const node = candidates[(start + i) % Math.max(1, candidates.length)];
      if (!node || i >= candidates.length) {
        client.destroy();
        return;
      }
      const up = net.connect(node.httpPort, '127.0.0.1');
      sockets.add(up);
      up.on('close', () => sockets.delete(up));
      let connected = false;
      up.once('connect', () => {
        connected = true;
        client.pipe(up);
        up.pipe(client);
      });
      up.on('error', () => {
        if (connected) client.destroy();
        else attempt(i + 1);
      });
      client.on('close', () => up.destroy());
    };
    attempt(0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------
// calls to the cluster made by the test itself (never through the hook's code)

/** A JSON call that retries a few times: a kept-alive connection may point at a node that restarted. */
async function es<T = any>(url: string, method: string, path: string, body?: unknown): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 5; i++) {
    try {
      const r = await esCall<T>(url, method, path, body);
      if (r.status >= 200 && r.status < 300) return r.body;
      last = new Error(`${method} ${path} -> ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
      if (r.status < 500) break;
    } catch (err) {
      last = err;
    }
    await sleep(300);
  }
  throw last;
}

interface CatShard {
  index: string;
  shard: string;
  prirep: string;
  state: string;
  node: string | null;
}

/** Shard copies per node name, from _cat/shards (a relocating copy counts on its source). */
async function shardsByNode(url: string, indices = '*'): Promise<Record<string, CatShard[]>> {
  const rows = await es<CatShard[]>(url, 'GET', `/_cat/shards/${indices}?format=json&h=index,shard,prirep,state,node`);
  const out: Record<string, CatShard[]> = {};
  for (const r of rows) {
    const node = (r.node ?? 'UNASSIGNED').split(' ')[0] as string;
    (out[node] ??= []).push(r);
  }
  return out;
}

async function flatSettings(url: string): Promise<{ persistent: Record<string, string>; transient: Record<string, string> }> {
  return es(url, 'GET', '/_cluster/settings?flat_settings=true');
}

async function count(url: string, indices: string): Promise<number> {
  await es(url, 'POST', `/${indices}/_refresh`);
  return (await es<{ count: number }>(url, 'GET', `/${indices}/_count`)).count;
}

// ---------------------------------------------------------------------------
// background: health every 200 ms, and a writer that counts acknowledged documents

class HealthWatch {
  readonly seen: Record<string, number> = { green: 0, yellow: 0, red: 0, error: 0 };
  readonly reds: string[] = [];
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  start(url: string): this {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          const r = await esCall<{ status: string; unassigned_shards: number }>(url, 'GET', '/_cluster/health', undefined, 2000);
          const s = r.status === 200 ? r.body.status : 'error';
          this.seen[s] = (this.seen[s] ?? 0) + 1;
          if (s === 'red') this.reds.push(`${new Date().toISOString()} ${JSON.stringify(r.body)}`);
        } catch {
          this.seen.error = (this.seen.error ?? 0) + 1;
        }
        await sleep(200);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

class Writer {
  /** id -> index, for every document the cluster acknowledged */
  readonly acked = new Map<string, string>();
  failedBulks = 0;
  failedItems = 0;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private n = 0;
  private readonly indices: string[];

  constructor(indices: string[]) {
    this.indices = indices;
  }

  start(url: string): this {
    this.loop = (async () => {
      while (!this.stopped) {
        const batch: [string, string][] = [];
        let nd = '';
        for (let i = 0; i < 20; i++) {
          const id = `w-${this.n++}`;
          const index = this.indices[this.n % this.indices.length] as string;
          batch.push([id, index]);
          nd += `${JSON.stringify({ index: { _index: index, _id: id } })}\n${JSON.stringify({ n: this.n, at: new Date().toISOString() })}\n`;
        }
        try {
          const r = await esCall<{ items: { index: { _id: string; status: number } }[] }>(url, 'POST', '/_bulk', nd, 10_000);
          if (r.status !== 200) this.failedBulks++;
          else
            for (const item of r.body.items) {
              if (item.index.status === 200 || item.index.status === 201) {
                const pair = batch.find(([id]) => id === item.index._id);
                if (pair) this.acked.set(pair[0], pair[1]);
              } else this.failedItems++;
            }
        } catch {
          this.failedBulks++;
        }
        await sleep(25);
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Acknowledged documents the cluster does not have. */
  async missing(url: string): Promise<string[]> {
    await es(url, 'POST', `/${this.indices.join(',')}/_refresh`);
    const out: string[] = [];
    const all = [...this.acked.entries()];
    for (let i = 0; i < all.length; i += 500) {
      const docs = all.slice(i, i + 500).map(([id, index]) => ({ _index: index, _id: id }));
      const r = await es<{ docs: { _id: string; found: boolean }[] }>(url, 'POST', '/_mget?_source=false', { docs });
      for (const d of r.docs) if (!d.found) out.push(d._id);
    }
    return out;
  }
}

/**
 * Starts a stopped node. The harness gives a node 180 s to rejoin; on a loaded
 * machine Elasticsearch 8 can take longer. A node still running past that is
 * not a failure here: the hook's own rejoin check is what the test waits on.
 */
async function startNode(node: EsNodeHandle): Promise<void> {
  try {
    await node.start();
  } catch (err) {
    if (!node.running) throw err;
    say(`${node.name} is slow to rejoin (${String(err).split('\n')[0]}); waiting on the hook`);
  }
}

// ---------------------------------------------------------------------------
// the hook, called as the controller calls it

function statefulSet(annotations: Record<string, string>): V1StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'es', namespace: NS, uid: randomUUID(), labels: { 'sts-pilot.io/hook': 'elasticsearch' }, annotations },
    spec: {
      replicas: 3,
      serviceName: 'es',
      selector: { matchLabels: { app: 'es' } },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 3 } },
      template: { metadata: { labels: { app: 'es' } }, spec: { containers: [{ name: 'elasticsearch', image: 'opensearchproject/opensearch:2.19.6' }] } },
    },
  };
}

/** One uid per pod name: the same pod across calls, as in a real rollout step. */
const uids = new Map<string, string>();
const uidOf = (name: string): string => uids.get(name) ?? (uids.set(name, randomUUID()).get(name) as string);

function pod(name: string, ready = true): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: NS,
      uid: uidOf(name),
      labels: { app: 'es', 'controller-revision-hash': 'es-5d8f7c9b4', 'statefulset.kubernetes.io/pod-name': name, 'apps.kubernetes.io/pod-index': name.slice(3) },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'es', uid: 'sts-uid', controller: true }],
    },
    spec: { containers: [{ name: 'elasticsearch', image: 'opensearchproject/opensearch:2.19.6' }] },
    status: {
      phase: 'Running',
      podIP: '127.0.0.1',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    },
  };
}

interface Outcome {
  approved: boolean;
  reason?: string;
}

interface CallOpts {
  hook?: RolloutHook;
  /** more of the context, e.g. a `pilots` reader */
  extra?: Record<string, unknown>;
  timeoutMs?: number;
}

async function call(prev: string | null, next: string | null, annotations: Record<string, string>, o: CallOpts = {}): Promise<Outcome> {
  const hook = o.hook ?? elasticsearchHook;
  const parsed = parseHookOptions(hook, annotations);
  if (!parsed.ok) throw new Error(parsed.error);
  const ctx: HookContext<Options> = {
    statefulSet: statefulSet(annotations),
    options: parsed.options as Options,
    // The controller's deadline for one call.
    signal: AbortSignal.timeout(60_000),
    log,
    egress: loopbackEgress,
    secrets: async (name) => {
      throw new Error(`no Secret ${name} in this test`);
    },
    // No Pilots unless a test gives some: the hook then goes by pod names.
    pilots: staticPilotReader([]),
    nextReady: next === null ? null : true,
    ...o.extra,
  };
  try {
    await (hook as RolloutHook<Options>).podUpdateTransition(prev ? pod(prev) : null, next ? pod(next) : null, ctx);
    return { approved: true };
  } catch (err) {
    if (!(err instanceof HookNotReady)) throw err;
    return { approved: false, reason: err.message };
  }
}

interface Run {
  ms: number;
  calls: number;
  reasons: string[];
  /** from the first call that did not wait for prev to rejoin, to the approval */
  afterRejoinMs: number;
}

/** Calls the hook every 250 ms until it approves, as a controller retrying would. */
async function untilApproved(prev: string | null, next: string | null, annotations: Record<string, string>, o: CallOpts = {}): Promise<Run> {
  const timeoutMs = o.timeoutMs ?? 300_000;
  const t0 = performance.now();
  let rejoinedAt: number | undefined;
  const reasons: string[] = [];
  for (let calls = 1; ; calls++) {
    const tCall = performance.now();
    const r = await call(prev, next, annotations, o);
    if (!r.reason || !/rejoin/.test(r.reason)) rejoinedAt ??= tCall;
    if (r.approved) {
      const t = performance.now();
      return { ms: t - t0, calls, reasons, afterRejoinMs: t - (rejoinedAt ?? t) };
    }
    if (reasons.at(-1) !== r.reason) {
      reasons.push(r.reason as string);
      say(`(${prev ?? 'null'}, ${next ?? 'null'}) holds: ${r.reason}`);
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`(${prev}, ${next}) not approved in ${timeoutMs / 1000} s; reasons: ${reasons.join(' | ')}`);
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------

describe('elasticsearch hook against a real 3-node cluster', function () {
  this.timeout(10 * 60_000);
  let c: EsClusterHandle;
  let svc: Service;
  let url: string;
  const ann = (more: Record<string, string> = {}): Record<string, string> => {
    const out: Record<string, string> = { 'elasticsearch.sts-pilot.io/url': url, 'elasticsearch.sts-pilot.io/timeout': '5' };
    for (const [k, v] of Object.entries(more)) out[`elasticsearch.sts-pilot.io/${k}`] = v;
    return out;
  };
  const figures: [string, string][] = [];
  const figure = (k: string, v: string): void => {
    figures.push([k, v]);
    say(`${k}: ${v}`);
  };

  const DATA = [
    { index: 'data-r1-a', shards: 3, replicas: 1 },
    { index: 'data-r1-b', shards: 2, replicas: 1 },
    { index: 'data-r0-a', shards: 3, replicas: 0 },
    { index: 'data-r0-b', shards: 1, replicas: 0 },
  ];

  before(async function () {
    this.timeout(10 * 60_000);
    const t0 = performance.now();
    c = await startEsCluster({ nodes: 3, log: verbose ? (l) => { if (/\b(WARN|ERROR)\b|sts-pilot/.test(l)) console.log(`      [es] ${l.slice(0, 300)}`); } : undefined });
    figure('cluster', `${c.dist.flavor} ${c.dist.version}, 3 nodes, started in ${secs(performance.now() - t0)}`);
    svc = await service(c.nodes);
    url = svc.url;
    for (const d of DATA) await es(url, 'PUT', `/${d.index}`, { settings: { number_of_shards: d.shards, number_of_replicas: d.replicas } });
    const t1 = performance.now();
    for (let i = 0; i < DOCS; i += 2000) {
      let nd = '';
      for (let j = i; j < Math.min(DOCS, i + 2000); j++) {
        // random bytes: a data set that compresses as little as real data does
        const blob = randomBytes(DOC_BYTES / 2).toString('hex');
        nd += `${JSON.stringify({ index: { _index: (DATA[j % DATA.length] as { index: string }).index, _id: String(j) } })}\n`;
        nd += `${JSON.stringify({ n: j, blob, at: new Date(1_700_000_000_000 + j * 1000).toISOString() })}\n`;
      }
      const r = await es<{ errors: boolean }>(url, 'POST', '/_bulk', nd);
      expect(r.errors, 'bulk load had errors').to.equal(false);
    }
    await es(url, 'POST', '/data-*/_refresh');
    await es(url, 'POST', '/_flush');
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
    const cat = await es<{ 'store.size': string }[]>(url, 'GET', '/_cat/indices/data-*?format=json&bytes=b&h=index,store.size');
    const bytes = cat.reduce((s, r) => s + Number(r['store.size']), 0);
    const copies = DATA.reduce((s, d) => s + d.shards * (1 + d.replicas), 0);
    figure('data set', `${DOCS} docs in ${DATA.length} indices (replicas 0 and 1), ${copies} shard copies, ${(bytes / 2 ** 20).toFixed(1)} MiB on disk; loaded in ${secs(performance.now() - t1)}`);
  });

  after(async function () {
    this.timeout(120_000);
    await svc?.close();
    await c?.stop();
    if (figures.length) {
      console.log('\n      elasticsearch hook figures');
      for (const [k, v] of figures) console.log(`        ${k.padEnd(44)} ${v}`);
    }
  });

  /** No test leaves anything of the hook's (or its own) in the settings. */
  async function expectCleanSettings(): Promise<void> {
    const s = await flatSettings(url);
    expect(s.persistent[EXCLUDE], 'persistent exclusion').to.equal(undefined);
    expect(s.transient[EXCLUDE], 'transient exclusion').to.equal(undefined);
    expect(s.persistent[MARKER], 'marker').to.equal(undefined);
    expect(s.persistent[ENABLE] ?? s.transient[ENABLE], 'allocation enable').to.equal(undefined);
  }

  it('drains a node holding data (replicas 0 and 1): every copy moves off, then the exclusion goes', async () => {
    await expectCleanSettings();
    const before = await shardsByNode(url, 'data-*');
    const onEs2 = before['es-2'] ?? [];
    expect(onEs2.length, 'es-2 holds shards before the drain').to.be.above(0);
    expect(onEs2.filter((s) => s.index.includes('-r0-')).length, 'es-2 holds a shard of an index without replicas').to.be.above(0);

    const run = await untilApproved(null, 'es-2', ann());
    figure('drain es-2 (first test, no writer)', `${secs(run.ms)}, ${onEs2.length} shard copies, ${run.calls} calls`);
    expect(run.reasons.some((r) => /^draining: \d+ shards? left on es-2 \(\d+ relocating away/.test(r)), run.reasons.join(' | ')).to.equal(true);
    const after = await shardsByNode(url, 'data-*');
    expect(after['es-2'] ?? [], 'copies left on es-2').to.deep.equal([]);
    expect(after.UNASSIGNED ?? []).to.deep.equal([]);
    const s = await flatSettings(url);
    expect(s.persistent[EXCLUDE]).to.equal('es-2');
    expect(JSON.parse(s.persistent[MARKER] ?? 'null')).to.deep.equal({ exclude: ['es-2'] });
    expect(await count(url, 'data-*')).to.equal(DOCS);

    // the end of a rollout: es-2 is still in the cluster; the exclusion goes, health green
    const end = await untilApproved('es-2', null, ann());
    expect(end.calls).to.equal(1);
    await expectCleanSettings();
  });

  it("keeps a person's own exclusions, in the transient layer too, and drains through the layer in force", async () => {
    // nodes that do not exist, so they do not change where shards can go
    await es(url, 'PUT', '/_cluster/settings', { persistent: { [EXCLUDE]: 'retired-7' }, transient: { [EXCLUDE]: 'retired-8' } });
    try {
      const run = await untilApproved(null, 'es-1', ann());
      figure('drain es-1 (transient layer)', secs(run.ms));
      let s = await flatSettings(url);
      // transient overrides persistent: the exclusion only works there
      expect(s.transient[EXCLUDE]).to.equal('retired-8,es-1');
      expect(s.persistent[EXCLUDE]).to.equal('retired-7');
      expect((await shardsByNode(url))['es-1'] ?? []).to.deep.equal([]);
      await untilApproved('es-1', null, ann());
      s = await flatSettings(url);
      expect(s.transient[EXCLUDE]).to.equal('retired-8');
      expect(s.persistent[EXCLUDE]).to.equal('retired-7');
      expect(s.persistent[MARKER]).to.equal(undefined);
    } finally {
      await es(url, 'PUT', '/_cluster/settings', { persistent: { [EXCLUDE]: null }, transient: { [EXCLUDE]: null } });
    }
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
    await expectCleanSettings();
  });

  it('holds while the cluster is red, naming the red index, and changes nothing', async () => {
    await es(url, 'PUT', '/red-index?wait_for_active_shards=0', {
      settings: { number_of_shards: 1, number_of_replicas: 0, 'index.routing.allocation.require._name': 'no-such-node' },
    });
    try {
      await c.waitForHealth('wait_for_status=red', 30_000).catch(() => undefined);
      const r = await call(null, 'es-1', ann());
      expect(r.approved).to.equal(false);
      expect(r.reason).to.match(/^cluster is red: 1 shard unassigned.*red indices: red-index$/);
      // also at the end of a rollout, and for the restart strategy
      expect((await call('es-0', null, ann())).reason).to.match(/^cluster is red/);
      expect((await call(null, 'es-1', ann({ strategy: 'restart' }))).reason).to.match(/^cluster is red/);
      await expectCleanSettings();
    } finally {
      await es(url, 'DELETE', '/red-index');
    }
    const after = await call(null, 'es-1', ann());
    expect(after.reason ?? '').to.not.match(/red/);
    await untilApproved('es-1', null, ann());
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
    await expectCleanSettings();
  });

  it('reads what its checks stand on from this version: members, versions, roles, the voting configuration, the elected master, the flavor', async () => {
    const parsed = parseHookOptions(elasticsearchHook, ann());
    if (!parsed.ok) throw new Error(parsed.error);
    const ctx = { options: parsed.options as Options, signal: AbortSignal.timeout(60_000), secrets: async () => ({}), egress: loopbackEgress, pilots: staticPilotReader([]), log } as unknown as HookContext<Options>;
    const es = await connect(ctx);
    const { view, strategy } = await readCluster(es, { markerKey: MARKER, strategy: 'auto', timeoutSeconds: 5, next: 'es-1' });
    const ids = view.nodes.map((n) => n.id).sort();
    expect(view.nodes.map((n) => n.name).sort()).to.deep.equal(['es-0', 'es-1', 'es-2']);
    expect(view.nodes.every((n) => n.version === c.dist.version), JSON.stringify(view.nodes)).to.equal(true);
    expect(view.nodes.every((n) => (n.roles ?? []).some((r) => r === 'master' || r === 'cluster_manager'))).to.equal(true);
    expect([...(view.voters ?? [])].sort(), 'the voting configuration: every node, by id').to.deep.equal(ids);
    expect(ids).to.include(view.masterId);
    expect(view.flavor).to.equal(c.dist.flavor);
    // auto on these builds: drain (OpenSearch has no shutdown API; Elasticsearch's integ-test build lacks its module)
    expect(strategy).to.equal('drain');
    expect(view.shards, "es-1's copies were read").to.be.an('array');
    figure('one read of a drain step', `${es.stats.requests} requests, ${es.stats.bytes} bytes`);
  });

  it('holds when the cluster is unreachable, within the timeout', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const t0 = performance.now();
    const r = await call(null, 'es-1', { ...ann(), 'elasticsearch.sts-pilot.io/url': `http://127.0.0.1:${port}` });
    expect(r.approved).to.equal(false);
    expect(r.reason).to.match(new RegExp(`^Elasticsearch at http://127\\.0\\.0\\.1:${port}: GET /_\\S+: unreachable \\(.*ECONNREFUSED`));
    expect(performance.now() - t0).to.be.below(5000);
    await expectCleanSettings();
  });

  it('decides the same after a controller restart mid-drain: no duplicate exclusion, no lost one', async () => {
    const first = await call(null, 'es-1', ann());
    expect(first.approved, 'the first call should find shards to drain').to.equal(false);
    expect(first.reason).to.match(/^draining: \d+ shards? left on es-1/);
    const written = await flatSettings(url);
    expect(written.persistent[EXCLUDE]).to.equal('es-1');

    // A new controller process: a fresh instance of the hook module, nothing in memory.
    const fresh = ((await import(`../../hooks/elasticsearch/index.ts?restart=${Date.now()}`)) as { elasticsearchHook: RolloutHook }).elasticsearchHook;
    expect(fresh).to.not.equal(elasticsearchHook);
    const second = await call(null, 'es-1', ann(), { hook: fresh });
    const again = await flatSettings(url);
    expect(again.persistent[EXCLUDE]).to.equal('es-1');
    expect(again.persistent[MARKER]).to.equal(written.persistent[MARKER]);
    if (!second.approved) expect(second.reason).to.match(/es-1/);

    const run = await untilApproved(null, 'es-1', ann(), { hook: fresh });
    expect((await flatSettings(url)).persistent[EXCLUDE]).to.equal('es-1');
    expect((await shardsByNode(url))['es-1'] ?? []).to.deep.equal([]);
    figure('drain es-1 (across a controller restart)', `${secs(run.ms)} after the restart`);
    await untilApproved('es-1', null, ann(), { hook: fresh });
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
    await expectCleanSettings();
  });

  it("with Pilots: drains the node the Pilot names, and waits until prev's Pilot agrees with the cluster", async () => {
    const uuid = await clusterUuid(url);
    const info = await es<{ nodes: Record<string, { name: string; version: string }> }>(url, 'GET', '/_nodes?filter_path=nodes.*.name,nodes.*.version');
    const version = Object.values(info.nodes)[0]?.version as string;
    // A Pilot as the controller caches it: owned by its pod, status written by the in-pod pilot.
    const pilot = (podName: string, application: Record<string, unknown> | undefined) => ({
      apiVersion: 'sts-pilot.io/v1alpha1',
      kind: 'Pilot',
      metadata: { name: podName, namespace: NS, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: podName, uid: uidOf(podName), controller: true }] },
      spec: { application: 'elasticsearch' },
      status: { phase: 'Running', heartbeatTime: new Date().toISOString(), ...(application ? { application: { probe: 'elasticsearch', ...application } } : {}) },
    });
    const pilots = new Map<string, unknown>();
    const extra = { pilots: { get: (name: string) => pilots.get(name) } };

    // The pod is "data-1", its node is es-1: only the Pilot knows.
    pilots.set('data-1', pilot('data-1', { nodeName: 'es-1', clusterUUID: uuid, version, health: 'green' }));
    const drained = await untilApproved(null, 'data-1', ann(), { extra });
    figure('drain es-1 (name from its Pilot)', secs(drained.ms));
    expect((await flatSettings(url)).persistent[EXCLUDE]).to.equal('es-1');
    expect((await shardsByNode(url))['es-1'] ?? []).to.deep.equal([]);

    // After the update: the new pod's Pilot has not reported yet, then reports another cluster, then agrees.
    pilots.set('data-1', pilot('data-1', {}));
    expect((await call('data-1', null, ann(), { extra })).reason).to.equal("waiting for the Pilot of data-1 to report its node's name");
    pilots.set('data-1', pilot('data-1', { nodeName: 'es-1', version }));
    expect((await call('data-1', null, ann(), { extra })).reason).to.equal('waiting for the Pilot of data-1 to report the cluster UUID of es-1');
    pilots.set('data-1', pilot('data-1', { nodeName: 'es-1', clusterUUID: 'Xq3-another-cluster', version }));
    expect((await call('data-1', null, ann(), { extra })).reason).to.equal(
      `the Pilot of data-1 reports node es-1 in cluster Xq3-another-cluster, but the cluster at the url is ${uuid}: the node is not in this cluster`,
    );
    expect((await flatSettings(url)).persistent[EXCLUDE], 'nothing changes while the Pilot disagrees').to.equal('es-1');
    // Versions are compared where the cluster's member list carries them (Elasticsearch 8 does, OpenSearch 2 does not).
    const state = await es<{ nodes: Record<string, { version?: string }> }>(url, 'GET', '/_cluster/state/nodes?filter_path=nodes.*.version');
    const listsVersions = Object.values(state.nodes ?? {}).some((n) => n.version);
    say(`the cluster's member list ${listsVersions ? 'carries' : 'does not carry'} versions`);
    if (listsVersions) {
      pilots.set('data-1', pilot('data-1', { nodeName: 'es-1', clusterUUID: uuid, version: '0.0.1' }));
      expect((await call('data-1', null, ann(), { extra })).reason).to.equal(`the Pilot of data-1 reports version 0.0.1, the cluster lists es-1 at ${version}: waiting for them to agree`);
    }
    pilots.set('data-1', pilot('data-1', { nodeName: 'es-1', clusterUUID: uuid, version }));
    await untilApproved('data-1', null, ann(), { extra });
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
    await expectCleanSettings();
  });

  it('rolls all three nodes, each restarted, while a writer indexes: never red, no acknowledged document lost', async function () {
    this.timeout(20 * 60_000);
    await es(url, 'PUT', '/live-r1', { settings: { number_of_shards: 2, number_of_replicas: 1 } });
    await es(url, 'PUT', '/live-r0', { settings: { number_of_shards: 2, number_of_replicas: 0 } });
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
    await es(url, 'PUT', '/_cluster/settings', { persistent: { [EXCLUDE]: 'retired-7' } });
    const health = new HealthWatch().start(url);
    const writer = new Writer(['live-r1', 'live-r0']).start(url);
    const byName = (n: string) => c.nodes.find((x) => x.name === n) as EsNodeHandle;
    const exclusionNow = async () => (await flatSettings(url)).persistent[EXCLUDE];
    let restarting: Promise<void> | undefined;
    let finished = false;
    try {
      const t0 = performance.now();
      const steps: [string | null, string | null][] = [[null, 'es-2'], ['es-2', 'es-1'], ['es-1', 'es-0'], ['es-0', null]];
      for (const [prev, next] of steps) {
        const run = await untilApproved(prev, next, ann(), { timeoutMs: 600_000 });
        await restarting;
        if (prev) expect(run.reasons.some((r) => r.startsWith(`waiting for ${prev} (pod ${prev}) to rejoin`)), run.reasons.join(' | ')).to.equal(true);
        expect(await exclusionNow(), `after (${prev}, ${next})`).to.equal(next ? `retired-7,${next}` : 'retired-7');
        if (!next) break;
        figure(`step (${prev ?? 'null'}, ${next}): drain ${next}`, `${secs(run.afterRejoinMs)} (hook call to approval ${secs(run.ms)})`);
        expect((await shardsByNode(url))[next] ?? [], `copies left on ${next}`).to.deep.equal([]);
        // The pod is updated: its node stops, and comes back while the hook is asked about the next step.
        const node = byName(next);
        const tStop = performance.now();
        await node.stop();
        const stopMs = performance.now() - tStop;
        const tStart = performance.now();
        restarting = startNode(node).then(() => figure(`restart ${next}`, `stop ${secs(stopMs)}, start to rejoined ${secs(performance.now() - tStart)}`));
      }
      figure('whole rollout (3 drains + 3 restarts)', secs(performance.now() - t0));
      finished = true;
    } finally {
      await writer.stop();
      await health.stop();
      if (!finished) {
        // Leave the cluster usable for the next test: all nodes up, nothing excluded.
        await restarting?.catch(() => undefined);
        await es(url, 'PUT', '/_cluster/settings', { persistent: { [EXCLUDE]: null, [MARKER]: null } }).catch(() => undefined);
      }
    }
    const missing = await writer.missing(url);
    figure('writer during the rollout', `${writer.acked.size} docs acknowledged, ${writer.failedBulks} bulk requests failed, ${writer.failedItems} items refused, ${missing.length} acknowledged missing`);
    figure('health polls (200 ms) during the rollout', JSON.stringify(health.seen));
    expect(health.reds, 'health went red').to.deep.equal([]);
    expect(health.seen.green, 'health was polled').to.be.above(10);
    expect(writer.acked.size, 'the writer wrote').to.be.above(100);
    expect(missing, 'acknowledged documents missing').to.deep.equal([]);
    expect(await count(url, 'live-*')).to.be.at.least(writer.acked.size);
    expect(await count(url, 'data-*')).to.equal(DOCS);
    const s = await flatSettings(url);
    expect(s.persistent[EXCLUDE]).to.equal('retired-7');
    expect(s.persistent[MARKER]).to.equal(undefined);
    await es(url, 'PUT', '/_cluster/settings', { persistent: { [EXCLUDE]: null } });
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 180_000);
    await expectCleanSettings();
  });

  it('restart strategy: refuses a node with the only copy of a shard, then primaries-only, flush, restart, re-enable, green', async function () {
    this.timeout(15 * 60_000);
    const restart = ann({ strategy: 'restart' });
    const sole = await call(null, 'es-1', restart);
    expect(sole.reason).to.match(/^es-1 holds the only copy of \d+ shards? \(.*-r0.*\): restarting it would take them offline/);
    await expectCleanSettings();

    // Give every index a replica: now a node can go without taking data offline.
    await es(url, 'PUT', '/_all/_settings', { index: { number_of_replicas: 1 } });
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 180_000);
    const health = new HealthWatch().start(url);
    try {
      const t0 = performance.now();
      const go = await untilApproved(null, 'es-1', restart);
      let s = await flatSettings(url);
      expect(s.persistent[ENABLE]).to.equal('primaries');
      expect(JSON.parse(s.persistent[MARKER] ?? 'null')).to.deep.equal({ exclude: [], primariesFor: 'es-1' });
      // the same call again (a controller restart) keeps it, and approves again
      expect((await call(null, 'es-1', restart)).approved).to.equal(true);
      const node = c.nodes.find((x) => x.name === 'es-1') as EsNodeHandle;
      await node.stop();
      const starting = startNode(node);
      const end = await untilApproved('es-1', null, restart, { timeoutMs: 600_000 });
      await starting;
      figure('restart strategy: es-1', `approve ${secs(go.ms)}; rejoin + back to green ${secs(end.ms)}; total ${secs(performance.now() - t0)}`);
      expect(end.reasons.some((r) => /rejoin/.test(r)), end.reasons.join(' | ')).to.equal(true);
      s = await flatSettings(url);
      expect(s.persistent[ENABLE]).to.equal(undefined);
      expect(s.persistent[MARKER]).to.equal(undefined);
      expect((await es<{ status: string }>(url, 'GET', '/_cluster/health')).status).to.equal('green');
    } finally {
      await health.stop();
    }
    figure('health polls (restart strategy)', JSON.stringify(health.seen));
    expect(health.reds, 'health went red').to.deep.equal([]);
    expect(await count(url, 'data-*')).to.equal(DOCS);
    await expectCleanSettings();
  });
});
