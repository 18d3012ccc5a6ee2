// One real cluster of two StatefulSets: 3 dedicated master-eligible nodes
// (masters-0..2) and 3 data nodes (data-0..2), on loopback (OpenSearch 2.19 by
// default; STS_PILOT_ES_DIST=elasticsearch for Elasticsearch). The hook is
// called as the controller calls it, for both StatefulSets at once, and the
// nodes are really restarted. See test/es/hook-driver.ts.

import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { esCall, type EsClusterHandle, type EsNodeHandle, startEsCluster } from '../es/es-cluster.ts';
import { callHook, callRemoval, NS, startNode, type StsSpec, untilApproved, untilHeldWith, untilRemovalApproved } from '../es/hook-driver.ts';
import { es, HealthWatch, type Service, tcpService, Writer } from '../es/workload.ts';

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const EXCLUDE = 'cluster.routing.allocation.exclude._name';
const MASTERS = ['masters-0', 'masters-1', 'masters-2'];
const DATA = ['data-0', 'data-1', 'data-2'];

async function flat(url: string): Promise<{ persistent: Record<string, string>; transient: Record<string, string> }> {
  return es(url, 'GET', '/_cluster/settings?flat_settings=true');
}
const excluded = async (url: string): Promise<string[]> => ((await flat(url)).persistent[EXCLUDE] ?? '').split(',').filter(Boolean).sort();

describe('elasticsearch hook: a cluster of two StatefulSets (3 master-eligible + 3 data nodes)', function () {
  this.timeout(20 * 60_000);
  let c: EsClusterHandle;
  let svc: Service;
  let url: string;
  let masters: StsSpec;
  let data: StsSpec;
  const byName = (n: string) => c.nodes.find((x) => x.name === n) as EsNodeHandle;

  before(async function () {
    this.timeout(10 * 60_000);
    const t0 = performance.now();
    c = await startEsCluster({
      nodeNames: [...MASTERS, ...DATA],
      masterNodes: MASTERS,
      // a shared 2-core machine can take minutes to start six JVMs
      startTimeoutMs: 600_000,
      heap: '256m',
      nodeSettings: (name) => {
        const flavor = process.env.STS_PILOT_ES_DIST === 'elasticsearch' ? 'elasticsearch' : 'opensearch';
        // OpenSearch renamed the role in 2.0.
        const master = flavor === 'opensearch' && !(process.env.STS_PILOT_ES_VERSION ?? '').startsWith('1.') ? 'cluster_manager' : 'master';
        return { 'node.roles': name.startsWith('masters') ? [master] : ['data', 'ingest'] };
      },
    });
    console.log(`      [figures] ${c.dist.flavor} ${c.dist.version}: 3 master-eligible + 3 data nodes up in ${secs(performance.now() - t0)}`);
    svc = await tcpService(() => c.nodes.filter((n) => n.running).map((n) => n.httpPort));
    url = svc.url;
    masters = { name: 'masters', replicas: 3, options: { url, timeout: '5' } };
    data = { name: 'data', replicas: 3, options: { url, timeout: '5' } };
    for (const [index, replicas] of [['docs-r1', 1], ['docs-r0', 0]] as const) {
      await es(url, 'PUT', `/${index}`, { settings: { number_of_shards: 3, number_of_replicas: replicas } });
      let nd = '';
      for (let i = 0; i < 3000; i++) nd += `{"index":{"_id":"seed-${i}"}}\n${JSON.stringify({ i, pad: 'x'.repeat(300) })}\n`;
      await es(url, 'POST', `/${index}/_bulk?refresh=true`, nd);
    }
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
  });

  after(async function () {
    this.timeout(3 * 60_000);
    await svc?.close().catch(() => {});
    await c?.stop();
  });

  it('many concurrent calls of both StatefulSets starting their drains lose no exclusion, and keep a person\'s', async () => {
    await es(url, 'PUT', '/_cluster/settings', { persistent: { [EXCLUDE]: 'retired-7' } });
    // 10 calls of each StatefulSet at once, interleaved: every one reads, decides and (the first of each) writes.
    const calls = [];
    for (let i = 0; i < 10; i++) calls.push(callHook(masters, null, 'masters-2'), callHook(data, null, 'data-2'));
    await Promise.all(calls);
    expect(await excluded(url)).to.deep.equal(['data-2', 'masters-2', 'retired-7']);
    // and both end at once: only their own names go
    await Promise.all([untilApproved(masters, 'masters-2', null, 600_000, say), untilApproved(data, 'data-2', null, 600_000, say)]);
    expect(await excluded(url)).to.deep.equal(['retired-7']);
    const s = await flat(url);
    expect(Object.keys(s.persistent).filter((k) => k.startsWith('cluster.metadata.sts-pilot'))).to.deep.equal([]);
  });

  it('holds a master step while a master-eligible pod is Ready but its node has not joined (quorum), and goes on when it is back', async () => {
    const m0 = byName('masters-0');
    await m0.stop();
    try {
      const r = await untilHeldWith(masters, null, 'masters-1', /has not joined/);
      expect(r).to.equal('masters-0 has not joined the cluster: every node of the StatefulSet must be a member before a step');
      // The data StatefulSet's own nodes are all there: it may go on (a data node does not count for the quorum).
      const d = await callHook(data, null, 'data-1');
      expect(d.reason ?? '').to.not.match(/quorum|has not joined/);
    } finally {
      await startNode(m0, say);
    }
    await untilApproved(masters, null, 'masters-1', 600_000, say);
    await Promise.all([untilApproved(masters, 'masters-1', null, 600_000, say), untilApproved(data, 'data-1', null, 600_000, say)]);
    expect(await excluded(url)).to.deep.equal(['retired-7']);
  });

  it('explains a drain that cannot finish: three copies on three data nodes (same_shard)', async () => {
    await es(url, 'PUT', '/three-copies', { settings: { number_of_shards: 1, number_of_replicas: 2 } });
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
    try {
      const r = await untilHeldWith(data, null, 'data-1', /cannot move/, 120_000);
      say(r);
      expect(r).to.match(/^draining: \d+ shards? left on data-1 .*; the drain cannot finish: three-copies\[0\] \((primary|replica)\) cannot move: data-[02]: same_shard \(/);
      console.log(`      [figures] hold reason of an impossible drain: ${r}`);
    } finally {
      await es(url, 'DELETE', '/three-copies');
    }
    await untilApproved(data, null, 'data-1', 600_000, say);
    await untilApproved(data, 'data-1', null, 600_000, say);
  });

  it('rolls both StatefulSets at the same time, each node restarted, under a writer: never red, nothing lost, no exclusion leaked or lost', async function () {
    this.timeout(30 * 60_000);
    await es(url, 'PUT', '/live', { settings: { number_of_shards: 3, number_of_replicas: 1 } });
    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
    const health = new HealthWatch().start(url);
    const writer = new Writer(['live']).start(url);
    // A watcher of the exclusion: only a person's name and the nodes being drained, ever.
    const seen = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        try {
          const r = await esCall<{ persistent: Record<string, string> }>(url, 'GET', '/_cluster/settings?flat_settings=true', undefined, 2000);
          if (r.status === 200) for (const n of (r.body.persistent[EXCLUDE] ?? '').split(',').filter(Boolean)) seen.add(n);
        } catch {
          /* a node restarting behind the proxy */
        }
        await sleep(300);
      }
    })();
    const roll = async (s: StsSpec, names: string[]): Promise<string[]> => {
      const figures: string[] = [];
      let restarting: Promise<void> | undefined;
      const order = [...names].reverse();
      const steps: [string | null, string | null][] = order.map((n, i) => [i === 0 ? null : (order[i - 1] as string), n]);
      steps.push([order.at(-1) as string, null]);
      for (const [prev, next] of steps) {
        const run = await untilApproved(s, prev, next, 600_000, say);
        await restarting;
        if (!next) break;
        const node = byName(next);
        const t = performance.now();
        await node.stop();
        restarting = startNode(node, say).then(() => void figures.push(`${next}: step ${secs(run.ms)}, restart ${secs(performance.now() - t)}`));
      }
      return figures;
    };
    const t0 = performance.now();
    let figures: string[][];
    try {
      figures = await Promise.all([roll(masters, MASTERS), roll(data, DATA)]);
    } finally {
      watching = false;
      await watch;
      await writer.stop();
      await health.stop();
    }
    const missing = await writer.missing(url);
    console.log(`      [figures] both StatefulSets rolled at once in ${secs(performance.now() - t0)}: ${figures.flat().join('; ')}`);
    console.log(`      [figures] writer ${writer.acked.size} acknowledged, ${missing.length} missing; health ${JSON.stringify(health.seen)}; names ever excluded: ${[...seen].sort().join(', ')}`);
    expect(health.reds, 'health went red').to.deep.equal([]);
    expect(missing, 'acknowledged documents missing').to.deep.equal([]);
    expect(writer.acked.size).to.be.above(100);
    expect([...seen].every((n) => n === 'retired-7' || MASTERS.includes(n) || DATA.includes(n))).to.equal(true);
    expect(await excluded(url), "only the person's exclusion is left").to.deep.equal(['retired-7']);
    const s = await flat(url);
    expect(Object.keys(s.persistent).filter((k) => k.startsWith('cluster.metadata.sts-pilot')), 'markers left').to.deep.equal([]);
    expect((await es<{ status: string }>(url, 'GET', '/_cluster/health')).status).to.equal('green');
    expect(NS).to.equal('db');
  });

  it('holds before a drain when the other nodes cannot take the data under the high disk watermark', async () => {
    const alloc = await es<{ node: string; 'disk.percent': string }[]>(url, 'GET', '/_cat/allocation?format=json&h=node,disk.percent');
    const pct = Number(alloc.find((r) => r.node === 'data-1')?.['disk.percent']);
    expect(pct, `disk use of this machine (${pct}%) too low to put the watermark under it`).to.be.above(5);
    // Every node shares this machine's disk: a high watermark under its use leaves no room anywhere.
    const high = `${pct - 5}%`;
    const keys = ['threshold_enabled', 'watermark.low', 'watermark.high', 'watermark.flood_stage'].map((k) => `cluster.routing.allocation.disk.${k}`);
    await es(url, 'PUT', '/_cluster/settings', { transient: { [keys[0] as string]: true, [keys[1] as string]: high, [keys[2] as string]: high, [keys[3] as string]: '99%' } });
    try {
      const r = await untilHeldWith(data, null, 'data-1', /high disk watermark/, 60_000);
      console.log(`      [figures] hold reason before a drain with no room: ${r}`);
      expect(r).to.match(new RegExp(`^data-1 holds [\\d.]+ (MiB|GiB) of shard data, but the other nodes \\(data-[02], data-[02]\\) can take only 0\\.0 MiB before the high disk watermark \\(${pct - 5}%\\)`));
      expect(await excluded(url), 'nothing excluded').to.deep.equal(['retired-7']);
    } finally {
      await es(url, 'PUT', '/_cluster/settings', { transient: Object.fromEntries(keys.map((k) => [k, null])) });
    }
  });

  // Last: it takes data-2 and masters-2 away for good.
  it('scale-down: a withdrawn removal leaves nothing behind; data-2 leaves drained and masters-2 out of the voting configuration, under a writer: never red, never without a master, nothing lost, nothing left', async function () {
    this.timeout(20 * 60_000);
    const votingExclusions = async (): Promise<string[]> =>
      ((await es<{ metadata?: { cluster_coordination?: { voting_config_exclusions?: { node_name: string }[] } } }>(
        url,
        'GET',
        '/_cluster/state/metadata?filter_path=metadata.cluster_coordination.voting_config_exclusions',
      )).metadata?.cluster_coordination?.voting_config_exclusions ?? []).map((x) => x.node_name).sort();
    const markers = async (): Promise<string[]> => Object.keys((await flat(url)).persistent).filter((k) => k.startsWith('cluster.metadata.sts-pilot'));

    // Withdrawn: the drain it started is undone.
    const first = await callRemoval(data, 'data-1', 'removal');
    expect(first.approved, 'data-1 holds shards: not at once').to.equal(false);
    expect(await excluded(url)).to.include('data-1');
    await untilRemovalApproved(data, 'data-1', 'withdrawn', 120_000, say);
    expect(await excluded(url)).to.deep.equal(['retired-7']);
    expect(await markers()).to.deep.equal([]);

    await c.waitForHealth('wait_for_status=green&wait_for_no_relocating_shards=true', 120_000);
    const health = new HealthWatch().start(url);
    const writer = new Writer(['live']).start(url);
    // An answer without a master (503), as opposed to a node going away under the proxy.
    let masterless = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        try {
          const r = await esCall(url, 'GET', '/_cat/master?format=json', undefined, 2000);
          if (r.status === 503) masterless++;
        } catch {
          /* a node stopping behind the proxy */
        }
        await sleep(200);
      }
    })();
    const t0 = performance.now();
    try {
      const d = await untilRemovalApproved(data, 'data-2', 'removal', 600_000, say);
      const left = await es<{ node?: string }[]>(url, 'GET', '/_cat/shards?format=json&h=node');
      expect(left.filter((r) => (r.node ?? '').split(' ')[0] === 'data-2'), 'shards left on data-2 at the approval').to.deep.equal([]);
      await byName('data-2').stop();
      await untilRemovalApproved({ ...data, replicas: 2 }, 'data-2', 'removed', 300_000, say);
      expect(await excluded(url)).to.deep.equal(['retired-7']);

      const m = await untilRemovalApproved(masters, 'masters-2', 'removal', 600_000, say);
      expect(await votingExclusions()).to.deep.equal(['masters-2']);
      const master = await es<{ node: string }[]>(url, 'GET', '/_cat/master?format=json');
      expect(master[0]?.node, 'masters-2 no longer the elected master').to.not.equal('masters-2');
      await byName('masters-2').stop();
      await untilRemovalApproved({ ...masters, replicas: 2 }, 'masters-2', 'removed', 300_000, say);
      expect(await votingExclusions()).to.deep.equal([]);
      console.log(`      [figures] scale-down: data-2 drained and approved in ${secs(d.ms)} (${d.calls} calls), masters-2 out of the voting configuration in ${secs(m.ms)}; total ${secs(performance.now() - t0)}`);
    } finally {
      polling = false;
      await poll;
      await writer.stop();
      await health.stop();
    }
    const missing = await writer.missing(url);
    console.log(`      [figures] writer ${writer.acked.size} acknowledged, ${missing.length} missing; health ${JSON.stringify(health.seen)}; answers without a master: ${masterless}`);
    expect(health.reds, 'health went red').to.deep.equal([]);
    expect(missing, 'acknowledged documents missing').to.deep.equal([]);
    expect(masterless, 'answers without an elected master').to.equal(0);
    expect(await excluded(url)).to.deep.equal(['retired-7']);
    expect(await markers(), 'markers left').to.deep.equal([]);
    expect((await es<{ status: string; number_of_nodes: number }>(url, 'GET', '/_cluster/health')).number_of_nodes).to.equal(4);
  });
});
