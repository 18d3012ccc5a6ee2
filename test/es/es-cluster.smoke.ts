// Smoke run of the real-cluster harness (a plain script, not a mocha test):
//   npx node test/es/es-cluster.smoke.ts            # OpenSearch (default)
//   STS_PILOT_ES_DIST=elasticsearch npx node test/es/es-cluster.smoke.ts
// Env: ES_SMOKE_VERBOSE=1 prints every node log line; ES_SMOKE_DOCS (default 10000).
// Starts 3 nodes, loads two indices, drains one node with allocation.exclude._name,
// restarts it, checks it rejoined the same cluster, clears the exclusion, checks the data.

import * as fs from 'node:fs';
import { startEsCluster, esDistribution, esCall, esOk, clusterUuid } from './es-cluster.ts';
import type { EsClusterHandle } from './es-cluster.ts';

const verbose = process.env.ES_SMOKE_VERBOSE === '1';
const DOCS = Number(process.env.ES_SMOKE_DOCS ?? 10_000);
const figures: Record<string, string> = {};
const t = () => performance.now();
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const say = (s: string) => console.log(`[smoke] ${s}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface CatShard { index: string; shard: string; prirep: string; state: string; docs: string | null; node: string | null }

async function shards(url: string): Promise<CatShard[]> {
  return esOk<CatShard[]>(url, 'GET', '/_cat/shards?format=json&h=index,shard,prirep,state,docs,node');
}

function perNode(list: CatShard[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const s of list) {
    // a relocating shard shows "from -> ip id to" in node; count it against its source
    const node = (s.node ?? 'UNASSIGNED').split(' ')[0]!;
    m[node] = (m[node] ?? 0) + 1;
  }
  return m;
}

async function main(): Promise<void> {
  let t0 = t();
  const dist = await esDistribution();
  figures['fetch (this run)'] = secs(t() - t0);
  say(`distribution ${dist.flavor} ${dist.version} at ${dist.home}, java ${dist.javaHome}`);

  let cluster: EsClusterHandle | undefined;
  try {
    t0 = t();
    cluster = await startEsCluster({
      nodes: 3,
      log: verbose ? (l) => console.log(l) : (l) => { if (/\b(ERROR|WARN)\b|started|exited|sts-pilot/.test(l)) console.log(l.slice(0, 300)); },
    });
    figures['start 3 nodes to green'] = secs(t() - t0);
    const c = cluster;
    const url = c.url;
    say(`green: ${c.urls.join(' ')} (work dir ${c.workDir})`);

    const root = await esCall(url, 'GET', '/');
    say(`GET / -> ${root.status} ${root.status === 200 ? `version ${root.body.version?.number}, distribution ${root.body.version?.distribution ?? 'elasticsearch'}` : JSON.stringify(root.body)}`);
    const uuid0 = await clusterUuid(url);
    say(`cluster UUID ${uuid0}`);
    const catNodes = await esOk<Array<Record<string, string>>>(url, 'GET', '/_cat/nodes?format=json');
    say(`_cat/nodes columns: ${Object.keys(catNodes[0] ?? {}).join(',')}`);
    const nodesInfo = await esOk(url, 'GET', '/_nodes?filter_path=nodes.*.name,nodes.*.version,nodes.*.roles');
    say(`_nodes: ${JSON.stringify(nodesInfo)}`);

    // --- data
    for (const [index, replicas] of [['smoke-r1', 1], ['smoke-r0', 0]] as const) {
      await esOk(url, 'PUT', `/${index}`, { settings: { number_of_shards: 3, number_of_replicas: replicas } });
    }
    await c.waitForHealth('wait_for_status=green', 60_000);
    t0 = t();
    const batch = 1000;
    for (let i = 0; i < DOCS; i += batch) {
      let nd = '';
      for (let j = i; j < Math.min(DOCS, i + batch); j++) {
        const index = j % 2 === 0 ? 'smoke-r1' : 'smoke-r0';
        nd += JSON.stringify({ index: { _index: index, _id: String(j) } }) + '\n';
        nd += JSON.stringify({ n: j, name: `doc-${j}`, at: new Date(1_700_000_000_000 + j * 1000).toISOString() }) + '\n';
      }
      const r = await esOk(url, 'POST', '/_bulk', nd);
      if (r.errors) throw new Error(`bulk had errors: ${JSON.stringify(r.items.find((x: any) => x.index?.error))}`);
    }
    await esOk(url, 'POST', '/smoke-*/_refresh');
    await esOk(url, 'POST', '/_flush');
    figures[`bulk ${DOCS} docs + refresh + flush`] = secs(t() - t0);
    const count0 = (await esOk(url, 'GET', '/smoke-*/_count')).count as number;
    say(`indexed ${count0} docs; shards per node: ${JSON.stringify(perNode(await shards(url)))}`);
    if (count0 !== DOCS) throw new Error(`expected ${DOCS} docs, found ${count0}`);

    for (const n of c.nodes) figures[`RSS ${n.name} (heap 256m)`] = `${(n.rssBytes() / 2 ** 20).toFixed(0)} MiB`;

    // --- drain es-2
    const victim = c.nodes[2]!;
    t0 = t();
    const put = await esOk(url, 'PUT', '/_cluster/settings', { persistent: { 'cluster.routing.allocation.exclude._name': victim.name } });
    say(`exclude -> ${JSON.stringify(put.persistent)}`);
    let polls = 0;
    for (;;) {
      const list = await shards(url);
      const on = list.filter((s) => (s.node ?? '').split(' ').includes(victim.name)).length;
      const unassigned = list.filter((s) => s.state === 'UNASSIGNED').length;
      const relocating = list.filter((s) => s.state === 'RELOCATING').length;
      if (polls++ % 10 === 0) say(`drain: ${on} shards still on ${victim.name}, ${relocating} relocating, ${unassigned} unassigned`);
      if (on === 0 && unassigned === 0 && relocating === 0) break;
      if (t() - t0 > 180_000) throw new Error(`drain of ${victim.name} did not finish in 180 s`);
      await sleep(250);
    }
    figures[`drain ${victim.name} (exclude -> 0 shards)`] = secs(t() - t0);
    say(`drained; shards per node: ${JSON.stringify(perNode(await shards(url)))}`);
    const health = await c.waitForHealth('wait_for_status=green', 30_000);
    say(`health after drain: ${health.status}`);

    // --- rolling restart of es-2
    const idBefore = Object.keys((await esOk(victim.url, 'GET', '/_nodes/_local?filter_path=nodes.*.name')).nodes)[0];
    t0 = t();
    await victim.stop();
    figures[`stop ${victim.name} (SIGTERM -> exit)`] = secs(t() - t0);
    const t1 = t();
    await victim.start();
    figures[`start ${victim.name} -> rejoined`] = secs(t() - t1);
    figures[`restart ${victim.name} total`] = secs(t() - t0);
    const uuid1 = await clusterUuid(victim.url);
    const idAfter = Object.keys((await esOk(victim.url, 'GET', '/_nodes/_local?filter_path=nodes.*.name')).nodes)[0];
    say(`after restart: cluster UUID ${uuid1} (${uuid1 === uuid0 ? 'same' : 'DIFFERENT'}), node id ${idAfter} (${idAfter === idBefore ? 'same' : 'DIFFERENT'})`);
    if (uuid1 !== uuid0) throw new Error('restarted node is in a different cluster');

    // --- clear the exclusion (null removes the setting)
    t0 = t();
    await esOk(url, 'PUT', '/_cluster/settings', { persistent: { 'cluster.routing.allocation.exclude._name': null } });
    const after = await esOk(url, 'GET', '/_cluster/settings?flat_settings=true');
    say(`settings after clearing: ${JSON.stringify(after)}`);
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 180_000);
    figures['clear exclusion -> green, rebalanced'] = secs(t() - t0);
    say(`shards per node after rebalance: ${JSON.stringify(perNode(await shards(url)))}`);

    // --- crash one node (SIGKILL) and bring it back
    const crash = c.nodes[1]!;
    t0 = t();
    crash.kill('SIGKILL');
    await crash.exited();
    const yellow = await c.waitForHealth('wait_for_nodes=2', 60_000);
    say(`after SIGKILL of ${crash.name}: ${yellow.status}, ${yellow.number_of_nodes} nodes`);
    await crash.start();
    await c.waitForHealth('wait_for_nodes=3&wait_for_status=green', 180_000);
    figures[`SIGKILL ${crash.name} -> back to green`] = secs(t() - t0);

    await esOk(url, 'POST', '/smoke-*/_refresh');
    const count1 = (await esOk(url, 'GET', '/smoke-*/_count')).count as number;
    say(`doc count at the end: ${count1}`);
    if (count1 !== DOCS) throw new Error(`expected ${DOCS} docs, found ${count1}`);

    const pids = c.nodes.map((n) => n.pid);
    t0 = t();
    await c.stop();
    figures['stop cluster'] = secs(t() - t0);
    const work = c.workDir;
    const leftovers = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(work); } catch { return false; }
    });
    say(`after stop: pids ${pids.join(',')} gone, leftover processes: ${leftovers.length}, work dir removed: ${!fs.existsSync(work)}`);
    if (leftovers.length) throw new Error(`leftover processes: ${leftovers.join(',')}`);
    cluster = undefined;
  } finally {
    if (cluster) await cluster.stop();
  }
  console.log('\n[smoke] figures');
  for (const [k, v] of Object.entries(figures)) console.log(`  ${k.padEnd(42)} ${v}`);
  console.log('[smoke] OK');
}

main().catch((e) => {
  console.error('[smoke] FAILED:', e instanceof Error ? e.stack ?? e.message : e);
  process.exitCode = 1;
});
