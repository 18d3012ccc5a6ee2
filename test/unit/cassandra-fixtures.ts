// Rings written by hand for the cassandra hook's unit tests: node i is at
// 10.0.0.i in rack r<i> of dc1, host id h<i>, its pod cass-r<i>-0.

import type { Policy } from '../../hooks/cassandra/decide.ts';
import type { CassandraView, KeyspaceView, NodeRef, NodeView } from '../../hooks/cassandra/view.ts';

export const NOW = 1_900_000_000_000;

export const node = (i: number, o: Partial<NodeView> = {}): NodeView => ({
  hostId: `h${i}`,
  address: `10.0.0.${i}`,
  dc: 'dc1',
  rack: `r${i}`,
  up: true,
  status: 'NORMAL',
  schema: 's1',
  release: '5.0.6',
  ...o,
});

/** A keyspace: rf per dc (NetworkTopologyStrategy) or '*' (SimpleStrategy); `owners` lists, per range, the replica host ids. */
export const ks = (name: string, rf: Record<string, number>, owners: string[][], strategy = 'NetworkTopologyStrategy'): KeyspaceView => ({
  name,
  strategy,
  rf,
  ranges: owners.map((replicas, i) => ({ start: String(i * 100), end: String(i * 100 + 100), replicas })),
});

/** Three healthy nodes, no keyspace unless given. */
export const ring = (o: Partial<CassandraView> = {}): CassandraView => ({
  clusterName: 'ring',
  nodes: [node(1), node(2), node(3)],
  keyspaces: [],
  streams: [],
  hints: [],
  unread: [],
  ...o,
});

export const ref = (i: number, o: Partial<NodeRef> = {}): NodeRef => ({ pod: `cass-r${i}-0`, address: `10.0.0.${i}`, ready: true, ...o });

export const policy: Policy = { consistency: 'LOCAL_QUORUM', ignoreKeyspaces: new Set(), skip: new Set(), hintsSettleMs: 60_000, now: NOW };
