import { expect } from 'chai';
import { elasticsearchProbe } from '../../lib/probes/elasticsearch.ts';
import { applicationHealthy, applicationReady } from '../../lib/probes/verdict.ts';
import { clusterUuid, type EsClusterHandle, type EsDistribution, esDistribution, esOk, startEsCluster } from '../es/es-cluster.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { createPilot, createPod, PilotProcess, readPilotStatus } from '../pilot/harness.ts';
import { cluster, namespace, waitUntil } from './harness.ts';

// Both by default; STS_PILOT_PROBE_FLAVORS=opensearch (say) to run one.
const flavors = (process.env.STS_PILOT_PROBE_FLAVORS ?? 'opensearch,elasticsearch').split(',').filter(Boolean) as ('opensearch' | 'elasticsearch')[];

async function distribution(flavor: 'opensearch' | 'elasticsearch'): Promise<EsDistribution> {
  const before = process.env.STS_PILOT_ES_DIST;
  process.env.STS_PILOT_ES_DIST = flavor;
  try {
    return await esDistribution();
  } finally {
    if (before === undefined) delete process.env.STS_PILOT_ES_DIST;
    else process.env.STS_PILOT_ES_DIST = before;
  }
}

/**
 * One node on a random port block away from the default 19200: other suites start
 * clusters there, and the restart below must find its ports still free.
 */
async function startNode(dist: EsDistribution): Promise<EsClusterHandle> {
  for (let attempt = 1; ; attempt++) {
    const basePort = 20_000 + Math.floor(Math.random() * 40) * 200;
    try {
      return await startEsCluster({ nodes: 1, nodeNames: ['es-0'], clusterName: 'pilot-probe', dist, basePort });
    } catch (err) {
      if (attempt >= 5 || !/are not all free/.test((err as Error).message)) throw err;
    }
  }
}

const probeOnce = (url: string) => elasticsearchProbe({ url, timeoutMs: 5000 }).probe(AbortSignal.timeout(15_000));

for (const flavor of flavors) {
  describe(`pilot: the Elasticsearch probe against a real ${flavor} node`, function () {
    this.timeout(180_000);
    let es: EsClusterHandle;

    before(async function () {
      this.timeout(15 * 60_000);
      const started = Date.now();
      es = await startNode(await distribution(flavor));
      console.log(`      [figures] ${flavor} ${es.dist.version} node up in ${((Date.now() - started) / 1000).toFixed(1)}s`);
      await esOk(es.url, 'PUT', '/books', { settings: { number_of_shards: 3, number_of_replicas: 0 } });
      const bulk = Array.from({ length: 25 }, (_, i) => `{"index":{}}\n{"n":${i}}\n`).join('');
      await esOk(es.url, 'POST', '/books/_bulk?refresh=true', bulk);
    });

    after(async () => {
      await es?.stop();
    });

    it('reports who the node is, its cluster, version, roles, health, shard copies and documents, as the node itself says', async () => {
      await probeOnce(es.url); // warm the connection
      const t = performance.now();
      const s = await probeOnce(es.url);
      console.log(`      [figures] one probe of the ${flavor} node (4 requests in parallel, a 5th where GET / is missing): ${(performance.now() - t).toFixed(0)} ms`);
      const nodes = await esOk<{ nodes: Record<string, { name: string; roles: string[] }> }>(es.url, 'GET', '/_nodes/_local');
      const [id, node] = Object.entries(nodes.nodes)[0] ?? [];
      expect(s).to.deep.include({
        probe: 'elasticsearch',
        distribution: flavor,
        version: es.dist.version,
        nodeName: 'es-0',
        nodeId: id,
        clusterName: 'pilot-probe',
        clusterUUID: await clusterUuid(es.url),
        health: 'green',
        shards: { started: 3, relocating: 0, initializing: 0 },
        documents: 25,
      });
      expect(s.roles).to.deep.equal([...(node?.roles ?? [])].sort());
      expect(s.error).to.equal(undefined);
      expect(applicationReady(s).ok && applicationHealthy(s).ok).to.equal(true);
    });

    it('reports yellow when replicas cannot be placed', async () => {
      await esOk(es.url, 'PUT', '/replicated', { settings: { number_of_shards: 1, number_of_replicas: 1 } });
      try {
        const s = await waitUntil('health yellow', 30_000, async () => {
          const r = await probeOnce(es.url);
          return r.health === 'yellow' ? r : undefined;
        });
        expect(s.shards?.started).to.equal(4);
        expect(applicationHealthy(s).ok, 'yellow is healthy enough to move on').to.equal(true);
      } finally {
        await esOk(es.url, 'DELETE', '/replicated');
      }
    });

    it('reports red, and a hook would hold, when a primary is lost', async () => {
      // A primary that can never be assigned: required on a node attribute no node has.
      await esOk(es.url, 'PUT', '/lost?wait_for_active_shards=0', {
        settings: { number_of_shards: 1, number_of_replicas: 0, 'index.routing.allocation.require._name': 'no-such-node' },
      });
      try {
        const s = await waitUntil('health red', 30_000, async () => {
          const r = await probeOnce(es.url);
          return r.health === 'red' ? r : undefined;
        });
        expect(applicationReady(s).ok, 'the node itself is up').to.equal(true);
        expect(applicationHealthy(s)).to.deep.equal({ ok: false, reason: 'cluster pilot-probe is red' });
      } finally {
        await esOk(es.url, 'DELETE', '/lost');
      }
    });

    it('a node that is down: nothing known, the reason given, not ready', async () => {
      const s = await probeOnce('http://127.0.0.1:1');
      expect(Object.keys(s).sort()).to.deep.equal(['error', 'probe']);
      expect(s.error).to.match(/ECONNREFUSED/);
      expect(applicationReady(s).ok).to.equal(false);
    });

    it('the pilot around the node: Running with the node in its Pilot, /readyz following the node down and up', async () => {
      const c = await cluster();
      await installPilotCrd(c);
      const ns = await namespace(c, `pilot-${flavor.slice(0, 2)}`);
      const pod = await createPod(c, ns, 'es-0');
      await createPilot(c, ns, pod);
      // The child is a stand-in process (the node runs under the test harness, as another user);
      // what is real here is the node the probe reads, the Pilot and the API server.
      const p = await PilotProcess.start({
        c,
        ns,
        pod: 'es-0',
        revision: 'r1',
        flags: ['--app', 'elasticsearch', '--app-url', es.url, '--probe-interval', '1', '--heartbeat', '5'],
      });
      try {
        const st = await waitUntil('the node in the Pilot', 30_000, async () => {
          const s = await readPilotStatus(c, ns, 'es-0');
          return s?.phase === 'Running' && s.application?.health === 'green' ? s : undefined;
        });
        expect(st.application).to.deep.include({ nodeName: 'es-0', version: es.dist.version, distribution: flavor, clusterName: 'pilot-probe' });
        expect(st.conditions?.map((x) => `${x.type}=${x.status}`)).to.deep.equal(['Ready=True', 'Healthy=True']);
        expect((await p.get('/readyz')).status).to.equal(200);

        const node = es.nodes[0];
        if (!node) throw new Error('no node');
        await node.stop();
        await waitUntil('/readyz 503 with the node down', 20_000, async () => (await p.get('/readyz')).status === 503);
        // A stopping node can answer /_nodes/_local after it has left its cluster: Ready=False
        // "has not joined a cluster" is a true report on the way down, so wait for the node gone.
        const down = await waitUntil('the Pilot to say the node is down', 20_000, async () => {
          const s = await readPilotStatus(c, ns, 'es-0');
          const ready = s?.conditions?.find((x) => x.type === 'Ready');
          return ready?.status === 'False' && /does not report itself/.test(ready.message ?? '') ? s : undefined;
        });
        expect(down.application?.nodeId).to.equal(undefined);
        expect(down.conditions?.find((x) => x.type === 'Ready')?.message).to.match(/does not report itself/);
        expect(p.exit, 'the pilot does not exit because the application it reads is down').to.equal(undefined);

        await node.start();
        await waitUntil('/readyz 200 with the node back', 60_000, async () => (await p.get('/readyz')).status === 200);
      } finally {
        p.signal('SIGTERM');
        await p.exited;
      }
      expect((await readPilotStatus(c, ns, 'es-0'))?.phase).to.equal('Stopped');
    });
  });
}
