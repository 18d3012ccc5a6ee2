import { expect } from 'chai';
import { MockAgent } from 'undici';
import { elasticsearchProbe, localShards } from '../../lib/probes/elasticsearch.ts';

// The probe against real Elasticsearch and OpenSearch nodes is in
// test/integration/pilot-es.test.ts; here only the pure parts and error paths.

describe('Elasticsearch probe: shard copies of the local node', () => {
  it('counts started, relocating away and initializing (a copy relocating here included) from its routing_nodes entry', () => {
    const copies = ['STARTED', 'STARTED', 'RELOCATING', 'INITIALIZING', 'INITIALIZING'].map((state) => ({ state }));
    expect(localShards(copies)).to.deep.equal({ started: 2, relocating: 1, initializing: 2 });
    expect(localShards([])).to.deep.equal({ started: 0, relocating: 0, initializing: 0 });
  });
});

describe('Elasticsearch probe: error paths (undici MockAgent)', () => {
  const url = 'http://es.test:9200';
  let agent: MockAgent;
  beforeEach(() => {
    agent = new MockAgent();
    agent.disableNetConnect();
  });
  afterEach(() => agent.close());

  const nodes = { cluster_name: 'logs', nodes: { n0: { name: 'es-0', version: '8.19.21', roles: ['master', 'data'], build_flavor: 'default' } } };

  it('answers what it can when health fails, and says why the rest is unknown', async () => {
    const pool = agent.get(url);
    pool.intercept({ path: '/' }).reply(405, { error: 'Incorrect HTTP method' });
    pool.intercept({ path: (p) => p.startsWith('/_nodes/_local') }).reply(200, nodes);
    pool.intercept({ path: '/_cluster/health' }).reply(503, { error: 'master_not_discovered_exception' });
    pool.intercept({ path: (p) => p.startsWith('/_cluster/state/routing_nodes') }).reply(200, { routing_nodes: { nodes: { n0: [{ state: 'STARTED' }, { state: 'RELOCATING' }] } } });
    pool.intercept({ path: (p) => p.startsWith('/_nodes/_local/stats') }).reply(200, { nodes: { n0: { indices: { docs: { count: 4 } } } } });
    pool.intercept({ path: (p) => p.startsWith('/_cluster/state/metadata') }).reply(200, { metadata: { cluster_uuid: 'U', cluster_uuid_committed: true } });
    const s = await elasticsearchProbe({ url, dispatcher: agent }).probe(new AbortController().signal);
    expect(s).to.deep.include({ probe: 'elasticsearch', nodeName: 'es-0', nodeId: 'n0', clusterUUID: 'U', version: '8.19.21', distribution: 'elasticsearch', documents: 4 });
    expect(s.shards).to.deep.equal({ started: 1, relocating: 1, initializing: 0 });
    expect(s.health).to.equal(undefined);
    expect(s.error).to.match(/GET \/_cluster\/health answered 503/);
  });

  it('treats an uncommitted or placeholder cluster UUID as unknown', async () => {
    const pool = agent.get(url);
    pool.intercept({ path: '/' }).reply(200, { cluster_uuid: '_na_', version: { number: '2.19.6', distribution: 'opensearch' } });
    pool.intercept({ path: (p) => p.startsWith('/_nodes/_local') }).reply(200, nodes);
    pool.intercept({ path: '/_cluster/health' }).reply(200, { status: 'green' });
    pool.intercept({ path: (p) => p.startsWith('/_cluster/state/routing_nodes') }).reply(200, {});
    pool.intercept({ path: (p) => p.startsWith('/_nodes/_local/stats') }).reply(200, { nodes: { n0: { indices: { docs: { count: 0 } } } } });
    pool.intercept({ path: (p) => p.startsWith('/_cluster/state/metadata') }).reply(200, { metadata: { cluster_uuid: '_na_', cluster_uuid_committed: false } });
    const s = await elasticsearchProbe({ url, dispatcher: agent }).probe(new AbortController().signal);
    expect(s.clusterUUID).to.equal(undefined);
    expect(s.distribution).to.equal('opensearch');
  });

  it('rejects answers of the wrong shape instead of guessing', async () => {
    const pool = agent.get(url);
    pool.intercept({ path: '/' }).reply(404, {});
    pool.intercept({ path: (p) => p.startsWith('/_nodes/_local') }).reply(200, { nodes: { n0: { version: 8 } } });
    pool.intercept({ path: '/_cluster/health' }).reply(200, { status: 'purple' });

    const s = await elasticsearchProbe({ url, dispatcher: agent }).probe(new AbortController().signal);
    expect(s).to.not.have.any.keys('nodeId', 'nodeName', 'health', 'shards');
    expect(s.error).to.match(/_nodes\/_local answered unexpectedly/).and.match(/_cluster\/health answered unexpectedly/);
  });

  it('sends credentials from the URL as basic auth, never in the URL', async () => {
    const pool = agent.get(url);
    let auth: unknown;
    pool
      .intercept({ path: (p) => p.startsWith('/_nodes/_local') })
      .reply((opts) => {
        auth = (opts.headers as Record<string, string>).authorization;
        return { statusCode: 200, data: nodes };
      });
    for (const p of ['/', '/_cluster/health']) pool.intercept({ path: p }).reply(500, {});
    pool.intercept({ path: (p) => p.startsWith('/_cluster/state') }).reply(500, {}).persist();
    pool.intercept({ path: (p) => p.startsWith('/_nodes/_local/stats') }).reply(500, {});
    await elasticsearchProbe({ url: 'http://elastic:s%40cret@es.test:9200', dispatcher: agent }).probe(new AbortController().signal);
    expect(auth).to.equal(`Basic ${Buffer.from('elastic:s@cret').toString('base64')}`);
  });
});
