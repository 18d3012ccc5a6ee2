import { expect } from 'chai';
import { decideRestart, inFlight } from '../../hooks/elasticsearch/decide.ts';
import type { NodeRef } from '../../hooks/elasticsearch/node-ref.ts';
import { markerKey } from '../../hooks/elasticsearch/settings.ts';
import { type ClusterView, clusterView } from '../../hooks/elasticsearch/view.ts';

// Nodes on their way out count as away before they leave (issue: the
// application cluster is the unit of safety): another StatefulSet's step in
// flight, a node shutdown record, a voting exclusion.

const KEY = markerKey('db', 'data');
const OTHER = markerKey('db', 'masters');

function view(o: { persistent?: Record<string, unknown>; shutdowns?: { node_id: string; type: string; status: string }[]; exclusions?: { node_name: string }[]; copies?: Record<string, [string, number, boolean][]>; replicas?: Record<string, number> }): ClusterView {
  const names = ['m-0', 'm-1', 'm-2', 'd-0', 'd-1', 'd-2'];
  const routing: Record<string, { state: string; index: string; shard: number; primary: boolean }[]> = {};
  for (const [n, list] of Object.entries(o.copies ?? {})) routing[`id-${n}`] = list.map(([index, shard, primary]) => ({ state: 'STARTED', index, shard, primary }));
  const r = clusterView(
    {
      health: { status: 'green', number_of_nodes: names.length, relocating_shards: 0, initializing_shards: 0, unassigned_shards: 0 },
      settings: { persistent: o.persistent ?? {}, transient: {} },
      state: { cluster_uuid: 'uuid-A', nodes: Object.fromEntries(names.map((n) => [`id-${n}`, { name: n, version: '8.19.0' }])) },
      nodesInfo: { nodes: Object.fromEntries(names.map((n) => [`id-${n}`, { name: n, version: '8.19.0', roles: n.startsWith('m-') ? ['master'] : ['data'], build_flavor: 'default' }])) },
      coordination: { metadata: { cluster_coordination: { last_committed_config: ['id-m-0', 'id-m-1', 'id-m-2'], ...(o.exclusions ? { voting_config_exclusions: o.exclusions } : {}) } } },
      copies: { routing_nodes: { nodes: routing, unassigned: [] } },
      ...(o.replicas ? { replicas: o.replicas } : {}),
      ...(o.shutdowns ? { shutdowns: { nodes: o.shutdowns.map((x) => ({ ...x, reason: 'someone' })) } } : {}),
    } as never,
    KEY,
    true,
  );
  if (!r.ok) throw new Error(r.error);
  return r.view;
}
const ref = (name: string): NodeRef => ({ pod: name, name, ready: true });
const reason = (d: { kind: string; reason?: string }): string => (d.kind === 'hold' ? (d.reason ?? '') : `not a hold: ${JSON.stringify(d)}`);

describe('elasticsearch hook: nodes on their way out count as away', () => {
  it('names them: another StatefulSet draining or restarting one, a shutdown record, a voting exclusion', () => {
    const v = view({
      persistent: { [OTHER]: JSON.stringify({ exclude: ['m-1'] }) },
      shutdowns: [{ node_id: 'id-d-1', type: 'RESTART', status: 'COMPLETE' }],
      exclusions: [{ node_name: 'm-0' }],
    });
    expect(inFlight(v, 'd-2')).to.deep.equal([
      { name: 'm-1', why: 'being drained for db/masters' },
      { name: 'd-1', why: 'has a node shutdown record (restart)' },
      { name: 'm-0', why: 'is excluded from the voting configuration' },
    ]);
    expect(inFlight(v, 'm-1').map((f) => f.name), 'not the node asked about').to.deep.equal(['d-1', 'm-0']);
  });

  it('a master-eligible node holds while another voter is on its way out (it has not left yet)', () => {
    const v = view({ persistent: { [OTHER]: JSON.stringify({ exclude: [], primariesFor: 'm-1' }) }, replicas: {} });
    const d = decideRestart(v, null, ref('m-2'), 'green', { pods: [ref('m-0'), ref('m-1'), ref('m-2')] });
    expect(reason(d)).to.match(/^m-2 is master-eligible and m-1 \(restarting for db\/masters\), also a voter, is on the way out: restarting m-2 too could lose the master quorum/);
  });

  it('a copy whose only other copy is on a node on its way out holds the restart', () => {
    const copies: Record<string, [string, number, boolean][]> = { 'd-2': [['logs', 0, true]], 'd-1': [['logs', 0, false]] };
    const calm = view({ copies, replicas: { logs: 1 } });
    // With d-1 staying, logs[0] has another copy: the restart goes on to its own steps (here: replica allocation to primaries).
    expect(decideRestart(calm, null, ref('d-2'), 'green').kind).to.equal('write');
    const going = view({ copies, replicas: { logs: 1 }, shutdowns: [{ node_id: 'id-d-1', type: 'RESTART', status: 'COMPLETE' }] });
    expect(reason(decideRestart(going, null, ref('d-2'), 'green'))).to.match(
      /^d-2 holds 1 shard \(logs\[0\]\) whose other copies are on nodes on their way out \(d-1: has a node shutdown record \(restart\)\): waiting for them to be back$/,
    );
  });

  it('restart: its own last node back, replica allocation goes back on before anything holds the next step (another StatefulSet draining a voter)', () => {
    // data restarted d-1 (primaries set for it); masters' drain of m-1 is on the way out; d-1 is a member again.
    const v = view({ persistent: { [KEY]: JSON.stringify({ exclude: [], primariesFor: 'd-1' }), 'cluster.routing.allocation.enable': 'primaries', [OTHER]: JSON.stringify({ exclude: ['m-1'] }) }, replicas: {} });
    const d = decideRestart({ ...v, health: { ...v.health, status: 'yellow' } }, ref('d-1'), ref('m-2'), 'green', { pods: [ref('d-0'), ref('d-1'), ref('m-2')] });
    expect(d.kind, JSON.stringify(d)).to.equal('write');
    expect(d.kind === 'write' && d.why).to.equal('re-enable replica allocation (d-1 is back)');
    expect(d.kind === 'write' && d.write.persistent['cluster.routing.allocation.enable']).to.equal(null);
    // Not while that node is still away: then the next step is judged as before.
    const away = view({ persistent: { [KEY]: JSON.stringify({ exclude: [], primariesFor: 'd-9' }), 'cluster.routing.allocation.enable': 'primaries' }, replicas: {} });
    expect(decideRestart(away, ref('d-9'), ref('d-2'), 'green').kind === 'write' && (decideRestart(away, ref('d-9'), ref('d-2'), 'green') as { why: string }).why).to.not.equal('re-enable replica allocation (d-9 is back)');
  });
});
