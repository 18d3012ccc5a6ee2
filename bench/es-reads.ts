// npm run bench:es — what the elasticsearch hook and the pilot's probe read
// from a real cluster with 5,000 shard copies, before (the reads of the
// previous version, replayed request by request) and after (the hook's own
// read code, counting its requests and bytes). Not part of npm test.
//
//   STS_PILOT_BENCH_SHARDS   copies to create (default 5000: 100 indices x 25 shards x (1+1))
//   STS_PILOT_BENCH_INDICES  indices instead (e.g. 5000), each of STS_PILOT_BENCH_SHARDS_PER_INDEX (default 1) shards x (1+1)
//   STS_PILOT_BENCH_HEAP     heap of each node (default 512m)
//   STS_PILOT_ES_DIST / STS_PILOT_ES_VERSION   as for the tests

import { connect } from '../hooks/elasticsearch/client.ts';
import { Options } from '../hooks/elasticsearch/options.ts';
import { readCluster } from '../hooks/elasticsearch/read.ts';
import { markerKey } from '../hooks/elasticsearch/settings.ts';
import type { HookContext } from '../lib/hook.ts';
import { httpRequest } from '../lib/http.ts';
import { createLogger } from '../lib/log.ts';
import { staticPilotReader } from '../lib/pilot/reader.ts';
import { esCall, startEsCluster } from '../test/es/es-cluster.ts';
import { loopbackEgress } from '../test/egress.ts';

const byIndices = process.env.STS_PILOT_BENCH_INDICES !== undefined;
const perIndex = byIndices ? Number(process.env.STS_PILOT_BENCH_SHARDS_PER_INDEX ?? 1) : 25;
const indices = byIndices ? Number(process.env.STS_PILOT_BENCH_INDICES) : Math.max(1, Math.round(Number(process.env.STS_PILOT_BENCH_SHARDS ?? 5000) / 50));
const heap = process.env.STS_PILOT_BENCH_HEAP ?? '512m';
const t0 = Date.now();
const say = (s: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}`);

say(`starting 3 nodes (heap ${heap}); then ${indices} indices x ${perIndex} shards x 2 copies = ${indices * perIndex * 2} shard copies`);
const c = await startEsCluster({ nodes: 3, heap, settings: {
  'cluster.max_shards_per_node': Math.max(4000, indices * perIndex),
  // Setup only: empty replicas of thousands of indices recover 2 at a time per node by default (20 min at 5,000).
  'cluster.routing.allocation.node_concurrent_recoveries': 8,
},  startTimeoutMs: 900_000 });
try {
  const url = c.url;
  if (byIndices) {
    // Auto-created by bulk writes, 500 indices a request: Elasticsearch (8.1 on) applies the creations of
    // one request as one batched cluster-state update; PUT per index would take an hour on this machine.
    const t = await esCall(url, 'PUT', '/_index_template/bench', { index_patterns: ['bench-*'], template: { settings: { number_of_shards: perIndex, number_of_replicas: 1 } } });
    if (t.status !== 200) throw new Error(`index template: ${t.status} ${JSON.stringify(t.body).slice(0, 300)}`);
    for (let from = 0; from < indices; from += 500) {
      let nd = '';
      for (let i = from; i < Math.min(indices, from + 500); i++) nd += `{"index":{"_index":"bench-${String(i).padStart(4, '0')}"}}\n{"i":${i}}\n`;
      const r = await esCall(url, 'POST', '/_bulk?wait_for_active_shards=0', nd, 900_000);
      if (r.status !== 200) throw new Error(`bulk create: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      say(`${Math.min(indices, from + 500)} indices created`);
    }
  } else {
    for (let i = 0; i < indices; i++) {
      const r = await esCall(url, 'PUT', `/bench-${String(i).padStart(4, '0')}?wait_for_active_shards=0`, { settings: { number_of_shards: perIndex, number_of_replicas: 1 } }, 120_000);
      if (r.status !== 200) throw new Error(`create index: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    }
  }
  say('indices created; waiting for green');
  await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true&wait_for_no_initializing_shards=true', 1_800_000);
  const h = (await esCall<{ active_shards: number }>(url, 'GET', '/_cluster/health')).body;
  say(`green with ${h.active_shards} active shard copies`);

  // `GET /` is answered 405 by builds without the rest-root module (Elasticsearch 8's integ-test zip): the probe
  // takes that as expected and asks the cluster state's metadata for the cluster uuid instead (lib/probes/elasticsearch.ts).
  const rootFallback = '/_cluster/state/metadata?local=true&filter_path=metadata.cluster_uuid,metadata.cluster_uuid_committed';
  const measure = async (paths: string[], base = url): Promise<{ requests: number; bytes: number; ms: number }> => {
    let bytes = 0;
    let requests = 0;
    const t = performance.now();
    const get = async (p: string): Promise<number> => {
      const r = await httpRequest(base + p, { timeoutMs: 60_000, maxBytes: 256 << 20 });
      requests++;
      bytes += Buffer.byteLength(r.text);
      if (r.status !== 200 && p !== '/') throw new Error(`${p}: ${r.status} ${r.text.slice(0, 200)}`);
      return r.status;
    };
    await Promise.all(paths.map(async (p) => ((await get(p)) !== 200 && p === '/' ? get(rootFallback) : undefined)));
    return { requests, bytes, ms: performance.now() - t };
  };
  const avg = async (f: () => Promise<{ requests: number; bytes: number; ms: number }>, n = 5) => {
    const runs = [];
    for (let i = 0; i < n; i++) runs.push(await f());
    const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
    return { requests: runs[0]?.requests ?? 0, bytes: runs[0]?.bytes ?? 0, medianMs: ms[Math.floor(ms.length / 2)] ?? 0 };
  };

  // Each figure is said as soon as it is measured: a later failure does not lose it.
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const row = (what: string, r: { requests: number; bytes: number; medianMs: number }) => `| ${what} | ${r.requests} | ${kb(r.bytes)} | ${r.medianMs.toFixed(0)} ms |`;
  const got = <T extends { requests: number; bytes: number; medianMs: number }>(name: string, r: T): T => (say(`measured ${row(name, r)}`), r);

  // Before: the hook's reads of the previous version (every copy of the cluster, with a node about to go).
  const mt = 'master_timeout=5s';
  const oldFilter = ['cluster_uuid', 'nodes.*.name', 'nodes.*.version', ...['state', 'index', 'shard', 'primary'].map((f) => `routing_nodes.nodes.*.${f}`)];
  const hookBefore = got('hookBefore', await avg(() =>
    measure([`/_cluster/health?${mt}`, `/_cluster/settings?flat_settings=true&${mt}`, `/_cluster/state/nodes,routing_nodes?${mt}&filter_path=${oldFilter.join(',')}`]),
  ));

  // After: the hook's own read code, with a client that counts.
  const parsed = Options.parse({ url, timeout: '10' });
  const ctx = {
    options: parsed,
    signal: AbortSignal.timeout(600_000),
    log: createLogger({ level: 'silent', name: 'bench' }),
    secrets: async () => ({}),
    egress: loopbackEgress,
    pilots: staticPilotReader([]),
  } as unknown as HookContext<typeof parsed>;
  const hookAfter = async (next: string | undefined, strategy: 'drain' | 'restart') => {
    return avg(async () => {
      const es = await connect(ctx);
      const t = performance.now();
      await readCluster(es, { markerKey: markerKey('db', 'es'), strategy, timeoutSeconds: 10, ...(next ? { next } : {}) });
      return { requests: es.stats.requests, bytes: es.stats.bytes, ms: performance.now() - t };
    });
  };
  const drainStep = got('drainStep', await hookAfter('es-1', 'drain'));
  const restartStep = got('restartStep', await hookAfter('es-1', 'restart'));
  const endStep = got('endStep', await hookAfter(undefined, 'drain'));

  // The probe, every 10 s in every pod: before (_cat/shards of the whole cluster) and after (its own entry, its own stats).
  const node0 = c.nodes[0]?.url as string;
  const probeBefore = got('probeBefore', await avg(() =>
    measure(['/', '/_nodes/_local?filter_path=cluster_name,nodes.*.name,nodes.*.version,nodes.*.roles,nodes.*.build_flavor', '/_cluster/health', '/_cat/shards?format=json&h=state,docs,node'], node0),
  ));
  const id = Object.keys((await esCall<{ nodes: Record<string, unknown> }>(node0, 'GET', '/_nodes/_local?filter_path=nodes.*.name')).body.nodes)[0];
  const probeAfter = got('probeAfter', await avg(() =>
    measure(
      [
        '/',
        '/_nodes/_local?filter_path=cluster_name,nodes.*.name,nodes.*.version,nodes.*.roles,nodes.*.build_flavor',
        '/_cluster/health',
        `/_cluster/state/routing_nodes?local=true&filter_path=routing_nodes.nodes.${id}.state`,
        '/_nodes/_local/stats/indices/docs?filter_path=nodes.*.indices.docs.count',
      ],
      node0,
    ),
  ));
  const catShards = got('catShards', await avg(() => measure(['/_cat/shards?format=json&h=state,docs,node'], node0)));

  console.log(`\n${c.dist.flavor} ${c.dist.version}, 3 nodes, ${h.active_shards} shard copies (${indices} indices x ${perIndex} shards x 2); median of 5; machine shared\n`);
  console.log('| read | requests | bytes | time |\n|---|---|---|---|');
  console.log(row('hook, a drain step, before (every copy of the cluster)', hookBefore));
  console.log(row('hook, a drain step, after (next node\'s copies + allocation summary)', drainStep));
  console.log(row('hook, a restart step, after (+ replicas per index)', restartStep));
  console.log(row('hook, the end / waiting for a rejoin, after (no copies)', endStep));
  console.log(row('probe, before (_cat/shards)', probeBefore));
  console.log(row('probe, after (local routing entry + local doc stats)', probeAfter));
  console.log(row('of which _cat/shards alone', catShards));
} finally {
  await c.stop();
}
