// The cassandra hook's reads against a node older than 4.1 (no
// system_views.gossip_info): a hold that names the version, never a crash. A
// fake client here, for this error path only: the reads themselves are proven
// on real 4.1 and 5.0 rings (test/integration/cassandra*.test.ts, the matrix).
import type cassandra from 'cassandra-driver';
import { expect } from 'chai';
import { readRing } from '../../hooks/cassandra/read.ts';
import { HookNotReady } from '../../lib/hook.ts';

const row = (o: Record<string, unknown>) => ({ get: (k: string) => o[k] });

/** A client whose nodes answer as Cassandra 4.1 (gossip_info) or 4.0 ("table gossip_info does not exist"). */
function client(nodes: { address: string; release: string }[]): cassandra.Client {
  const hosts = nodes.map((n) => ({ address: `${n.address}:9042`, hostId: `id-${n.address}`, isUp: () => true }));
  const execute = async (cql: string, _params?: unknown, opts?: { host?: { address: string } }) => {
    const n = nodes.find((x) => opts?.host && `${x.address}:9042` === opts.host.address) ?? nodes[0]!;
    if (cql.includes('cluster_name')) return { rows: [row({ cluster_name: 'ring' })] };
    if (cql.includes('release_version')) return { rows: [row({ release_version: n.release })] };
    if (n.release.startsWith('4.0')) {
      const table = /system_views\.(\w+)/.exec(cql)?.[1];
      if (table !== 'streaming') throw new Error(`table ${table} does not exist`);
      return { rows: [] };
    }
    if (cql.includes('gossip_info')) {
      return { rows: [row({ host_id: `id-${n.address}`, address: n.address, dc: 'dc1', rack: 'r1', status_with_port: 'NORMAL,1', schema: 's', release_version: n.release, generation: 1 })] };
    }
    return { rows: [] };
  };
  return { execute, hosts: { values: () => hosts }, metadata: { getTokenRanges: () => new Set(), keyspaces: {} } } as unknown as cassandra.Client;
}

describe('cassandra hook reads: nodes before 4.1', () => {
  it('a ring of 4.0 nodes holds, naming each node, its version and the 4.1 floor', async () => {
    const err = await readRing(client([{ address: '10.0.0.1', release: '4.0.19' }, { address: '10.0.0.2', release: '4.0.19' }]), []).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HookNotReady);
    expect((err as Error).message).to.equal(
      'no node of Cassandra cluster ring can be read: 10.0.0.1: Cassandra 4.0.19 has no system_views.gossip_info: the cassandra hook reads Cassandra 4.1 and later; ' +
        '10.0.0.2: Cassandra 4.0.19 has no system_views.gossip_info: the cassandra hook reads Cassandra 4.1 and later',
    );
  });

  it('a 4.0 node in a 4.1 ring (an upgrade under way) is read as unreadable, with why', async () => {
    const view = await readRing(client([{ address: '10.0.0.1', release: '4.1.10' }, { address: '10.0.0.2', release: '4.0.19' }]), []);
    expect(view.nodes.map((n) => n.address)).to.deep.equal(['10.0.0.1']);
    expect(view.unread).to.deep.equal(['10.0.0.2 (Cassandra 4.0.19 has no system_views.gossip_info: the cassandra hook reads Cassandra 4.1 and later)']);
  });
});
