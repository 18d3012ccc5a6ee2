import { expect } from 'chai';
import type { Decision } from '../../hooks/elasticsearch/decide.ts';
import type { NodeRef } from '../../hooks/elasticsearch/node-ref.ts';
import { CLEAR_VOTING_EXCLUSIONS, decideRemoval, decideRemovalCleanup } from '../../hooks/elasticsearch/removal.ts';
import { EXCLUDE_NAME, markerKey, type SettingsWrite } from '../../hooks/elasticsearch/settings.ts';
import { type ClusterView, clusterView } from '../../hooks/elasticsearch/view.ts';

// A cluster of master-eligible nodes m-0..m-2 and data nodes d-0..d-2, written
// compactly and parsed by the hook's own view builder.

const KEY = markerKey('db', 'd');
interface Spec {
  status?: 'green' | 'yellow' | 'red';
  nodes?: string[];
  /** Voter ids (id-<name>); default: every m-*. */
  voters?: string[];
  exclusions?: { node_id?: string; node_name?: string }[];
  /** Shards on a node: count of STARTED copies. */
  shards?: Record<string, number>;
  persistent?: Record<string, unknown>;
}

const roles = (n: string): string[] => (n.startsWith('m-') ? ['master'] : ['data', 'ingest']);

function view(s: Spec): ClusterView {
  const names = s.nodes ?? ['m-0', 'm-1', 'm-2', 'd-0', 'd-1', 'd-2'];
  const routing: Record<string, { state: string; index: string; shard: number; primary: boolean }[]> = {};
  for (const [n, count] of Object.entries(s.shards ?? {})) routing[`id-${n}`] = Array.from({ length: count }, (_, i) => ({ state: 'STARTED', index: 'docs', shard: i, primary: i % 2 === 0 }));
  const r = clusterView(
    {
      health: { status: s.status ?? 'green', number_of_nodes: names.length, relocating_shards: 0, initializing_shards: 0, unassigned_shards: 0 },
      settings: { persistent: s.persistent ?? {}, transient: {} },
      state: { cluster_uuid: 'uuid-A', nodes: Object.fromEntries(names.map((n) => [`id-${n}`, { name: n, version: '2.19.0' }])), routing_nodes: { nodes: routing } },
      nodesInfo: { nodes: Object.fromEntries(names.map((n) => [`id-${n}`, { name: n, version: '2.19.0', roles: roles(n) }])) },
      coordination: {
        metadata: {
          cluster_coordination: {
            last_committed_config: s.voters ?? names.filter((n) => n.startsWith('m-')).map((n) => `id-${n}`),
            ...(s.exclusions ? { voting_config_exclusions: s.exclusions } : {}),
          },
        },
      },
    } as never,
    KEY,
    true,
  );
  if (!r.ok) throw new Error(r.error);
  return r.view;
}

const ref = (name: string, ready = true): NodeRef => ({ pod: name, name, ready });
const marker = (m: object): Record<string, unknown> => ({ [KEY]: JSON.stringify({ exclude: [], ...m }) });
const written = (d: Decision): SettingsWrite['persistent'] => (d.kind === 'write' ? d.write.persistent : {});
const reason = (d: Decision): string => (d.kind === 'hold' ? d.reason : `not a hold: ${JSON.stringify(d)}`);
const pods = (...names: string[]) => ({ pods: names.map((n) => ref(n)) });

describe('elasticsearch hook: scale-down (removal.ts)', () => {
  it('a data node: excluded from allocation, held while it holds shards, approved once empty', () => {
    const first = decideRemoval(view({ shards: { 'd-2': 3 } }), ref('d-2'), 'green', pods('d-0', 'd-1', 'd-2'));
    expect(written(first)[EXCLUDE_NAME]).to.equal('d-2');
    const draining = decideRemoval(view({ shards: { 'd-2': 3 }, persistent: { [EXCLUDE_NAME]: 'd-2', ...marker({ exclude: ['d-2'] }) } }), ref('d-2'), 'green', pods('d-0', 'd-1', 'd-2'));
    expect(reason(draining)).to.match(/draining: 3 shards left on d-2/);
    const empty = decideRemoval(view({ persistent: { [EXCLUDE_NAME]: 'd-2', ...marker({ exclude: ['d-2'] }) } }), ref('d-2'), 'green', pods('d-0', 'd-1', 'd-2'));
    expect(empty.kind).to.equal('approve');
    expect(empty.kind === 'approve' && empty.note).to.match(/holds no shards.*it may leave/);
  });

  it('never while red, nor while another node of the StatefulSet is not a member', () => {
    expect(reason(decideRemoval(view({ status: 'red' }), ref('d-2'), 'green'))).to.match(/^cluster is red/);
    const absent = decideRemoval(view({ nodes: ['m-0', 'm-1', 'm-2', 'd-0', 'd-2'] }), ref('d-2'), 'green', pods('d-0', 'd-1', 'd-2'));
    expect(reason(absent)).to.match(/d-1 has not joined the cluster/);
  });

  it('a master-eligible node: its voting exclusion is recorded as ours, then asked for, then waited on, then the drain', () => {
    const s: Spec = {};
    const record = decideRemoval(view(s), ref('m-2'), 'green', { ...pods('m-0', 'm-1', 'm-2'), timeoutSeconds: 10 });
    expect(JSON.parse(String(written(record)[KEY]))).to.deep.equal({ exclude: [], voting: ['m-2'] });
    const ask = decideRemoval(view({ persistent: marker({ voting: ['m-2'] }) }), ref('m-2'), 'green', { ...pods('m-0', 'm-1', 'm-2'), timeoutSeconds: 10 });
    expect(ask).to.deep.include({ kind: 'request', method: 'POST', path: '/_cluster/voting_config_exclusions?node_names=m-2&timeout=5s' });
    const wait = decideRemoval(view({ persistent: marker({ voting: ['m-2'] }), exclusions: [{ node_id: 'id-m-2', node_name: 'm-2' }] }), ref('m-2'), 'green', pods('m-0', 'm-1', 'm-2'));
    expect(reason(wait)).to.match(/waiting for the elected master to take m-2 out of the voting configuration/);
    const out = view({ persistent: marker({ voting: ['m-2'] }), exclusions: [{ node_id: 'id-m-2', node_name: 'm-2' }], voters: ['id-m-0', 'id-m-1', '{m-2}'] });
    const drain = decideRemoval(out, ref('m-2'), 'green', pods('m-0', 'm-1', 'm-2'));
    // A master-only node holds no data: its drain is the exclusion alone, which keeps our voting record.
    expect(written(drain)[EXCLUDE_NAME]).to.equal('m-2');
    expect(JSON.parse(String(written(drain)[KEY]))).to.deep.equal({ exclude: ['m-2'], voting: ['m-2'] });
  });

  it('never the last master-eligible node, nor while another voter is missing', () => {
    expect(reason(decideRemoval(view({ nodes: ['m-0', 'd-0'] }), ref('m-0'), 'green'))).to.match(/last master-eligible node/);
    const missing = decideRemoval(view({ nodes: ['m-0', 'm-2', 'd-0'], voters: ['id-m-0', 'id-m-1', 'id-m-2'] }), ref('m-2'), 'green');
    expect(reason(missing)).to.match(/a voting node is not in the cluster \(id-m-1\): removing it now could lose the master quorum/);
  });

  it('after the removal: waits for the node to leave, then clears the voting exclusion, then forgets it, then the allocation exclusion', () => {
    const gone = ref('m-2', false);
    const still = decideRemovalCleanup(view({ persistent: marker({ exclude: ['m-2'], voting: ['m-2'] }) }), gone, 'removed', 'green');
    expect(reason(still)).to.match(/node m-2 is still a member/);
    const left = ['m-0', 'm-1', 'd-0', 'd-1', 'd-2'];
    const clear = decideRemovalCleanup(view({ nodes: left, persistent: { [EXCLUDE_NAME]: 'm-2', ...marker({ exclude: ['m-2'], voting: ['m-2'] }) }, exclusions: [{ node_id: 'id-m-2', node_name: 'm-2' }] }), gone, 'removed', 'green');
    expect(clear).to.deep.include({ kind: 'request', method: 'DELETE', path: CLEAR_VOTING_EXCLUSIONS });
    const forget = decideRemovalCleanup(view({ nodes: left, persistent: { [EXCLUDE_NAME]: 'm-2', ...marker({ exclude: ['m-2'], voting: ['m-2'] }) } }), gone, 'removed', 'green');
    expect(JSON.parse(String(written(forget)[KEY]))).to.deep.equal({ exclude: ['m-2'] });
    const unexclude = decideRemovalCleanup(view({ nodes: left, persistent: { [EXCLUDE_NAME]: 'm-2', ...marker({ exclude: ['m-2'] }) } }), gone, 'removed', 'green');
    expect(written(unexclude)[EXCLUDE_NAME]).to.equal(null);
    expect(decideRemovalCleanup(view({ nodes: left }), gone, 'removed', 'green').kind).to.equal('approve');
  });

  it("never clears someone else's voting exclusion of a node still in the cluster", () => {
    const both = [{ node_id: 'id-m-2', node_name: 'm-2' }, { node_id: 'id-m-1', node_name: 'm-1' }];
    const withdrawn = decideRemovalCleanup(view({ persistent: marker({ voting: ['m-2'] }), exclusions: both }), ref('m-2'), 'withdrawn', 'green');
    expect(reason(withdrawn)).to.match(/clears all exclusions at once, and m-1 is excluded too and still in the cluster/);
    // Ours is of a node that left: keep the others, forget ours.
    const removed = decideRemovalCleanup(view({ nodes: ['m-0', 'm-1', 'd-0'], persistent: marker({ voting: ['m-2'] }), exclusions: both }), ref('m-2', false), 'removed', 'green');
    expect(removed.kind).to.equal('write');
    expect(removed.kind === 'write' && removed.why).to.match(/left in place/);
  });

  it('a drain step of a rollout keeps the voting record of a scale-down', () => {
    const v = view({ persistent: { [EXCLUDE_NAME]: 'd-2', ...marker({ exclude: ['d-2'], voting: ['m-2'] }) } });
    const cleanup = decideRemovalCleanup(v, ref('d-2', false), 'withdrawn', 'green');
    // voting first: no exclusions in force, so ours is forgotten; the drain's clean-up comes on the next call.
    expect(JSON.parse(String(written(cleanup)[KEY]))).to.deep.equal({ exclude: ['d-2'] });
  });
});
