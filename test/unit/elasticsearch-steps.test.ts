import { expect } from 'chai';
import type { ExplainAnswer } from '../../hooks/elasticsearch/answers.ts';
import {
  compareVersions,
  type Decision,
  decideDrain,
  decideRestart,
  decideShutdown,
  diskShortfall,
  explainText,
  resolveStrategy,
  shutdownReason,
  stepHealthy,
  type StepContext,
} from '../../hooks/elasticsearch/decide.ts';
import { withClusterLock, lockedClusters } from '../../hooks/elasticsearch/lock.ts';
import type { NodeRef } from '../../hooks/elasticsearch/node-ref.ts';
import { encodeMarker, markerKey, ownerOfMarkerKey } from '../../hooks/elasticsearch/settings.ts';
import { type Answers, type ClusterView, clusterView, parseWatermark } from '../../hooks/elasticsearch/view.ts';

// The decisions added for clusters of several StatefulSets, upgrades, the node
// shutdown API and large clusters, as tables over compact clusters.

type Role = 'm' | 'd' | 'md';
interface Spec {
  status?: 'green' | 'yellow' | 'red';
  unassigned?: number;
  relocating?: number;
  initializing?: number;
  /** name -> roles (m: master-eligible, d: data) and version */
  nodes?: Record<string, { roles?: Role; version?: string }>;
  master?: string;
  /** node names in the committed voting configuration (a name not among nodes is a voter that is away) */
  voters?: string[];
  flavor?: 'elasticsearch' | 'opensearch';
  /** shard copies of the node read: "index/shard" + p|r, optional ":STATE" */
  copies?: Record<string, string[]>;
  unassignedCopies?: string[];
  replicas?: Record<string, number>;
  shutdowns?: { node: string; type?: string; reason?: string; status: 'NOT_STARTED' | 'IN_PROGRESS' | 'STALLED' | 'COMPLETE'; explanation?: string }[] | null;
  persistent?: Record<string, unknown>;
  disk?: { node: string; indices: number; used: number; total: number }[];
  /** what include_defaults says (the nodes' own config) */
  diskDefaults?: { threshold_enabled?: string; high?: string };
}

const KEY = markerKey('db', 'data');
const GB = 2 ** 30;

function view(s: Spec): ClusterView {
  const nodes = s.nodes ?? { 'es-0': {}, 'es-1': {}, 'es-2': {} };
  const roles = (r: Role = 'md') => [...(r.includes('m') ? ['master'] : []), ...(r.includes('d') ? ['data'] : []), 'ingest'];
  const a: Answers = {
    health: {
      status: s.status ?? 'green',
      number_of_nodes: Object.keys(nodes).length,
      relocating_shards: s.relocating ?? 0,
      initializing_shards: s.initializing ?? 0,
      unassigned_shards: s.unassigned ?? 0,
    },
    settings: { persistent: s.persistent ?? {}, transient: {} },
    state: {
      cluster_uuid: 'U',
      ...(s.master ? { master_node: `id-${s.master}` } : {}),
      nodes: Object.fromEntries(Object.keys(nodes).map((n) => [`id-${n}`, { name: n }])),
    },
    nodesInfo: {
      nodes: Object.fromEntries(
        Object.entries(nodes).map(([n, v]) => [
          `id-${n}`,
          { name: n, version: v.version ?? '8.19.21', roles: roles(v.roles), ...((s.flavor ?? 'elasticsearch') === 'elasticsearch' ? { build_flavor: 'default' } : {}) },
        ]),
      ),
    },
    ...(s.voters ? { coordination: { metadata: { cluster_coordination: { last_committed_config: s.voters.map((v) => `id-${v}`) } } } } : {}),
    copies: {
      routing_nodes: {
        nodes: Object.fromEntries(
          Object.entries(s.copies ?? {}).map(([n, list]) => [
            `id-${n}`,
            list.map((tok) => {
              const m = /^([^/]+)\/(\d+)([pr])(?::(\w+))?$/.exec(tok) as RegExpExecArray;
              return { index: m[1] as string, shard: Number(m[2]), primary: m[3] === 'p', state: (m[4] ?? 'STARTED') as 'STARTED' };
            }),
          ]),
        ),
        unassigned: (s.unassignedCopies ?? []).map((tok) => {
          const m = /^([^/]+)\/(\d+)([pr])$/.exec(tok) as RegExpExecArray;
          return { index: m[1] as string, shard: Number(m[2]), primary: m[3] === 'p' };
        }),
      },
    },
    ...(s.replicas ? { replicas: s.replicas } : {}),
    ...(s.shutdowns !== undefined
      ? {
          shutdowns:
            s.shutdowns === null
              ? null
              : { nodes: s.shutdowns.map((r) => ({ node_id: `id-${r.node}`, type: r.type ?? 'RESTART', ...(r.reason ? { reason: r.reason } : {}), status: r.status, ...(r.explanation ? { shard_migration: { status: r.status, explanation: r.explanation } } : {}) })) },
        }
      : {}),
    ...(s.disk
      ? { allocation: s.disk.map((d) => ({ node: d.node, shards: 1, 'disk.indices': d.indices, 'disk.used': d.used, 'disk.avail': d.total - d.used, 'disk.total': d.total })) }
      : {}),
    ...(s.diskDefaults
      ? {
          diskDefaults: {
            defaults: {
              cluster: {
                routing: {
                  allocation: {
                    disk: {
                      ...(s.diskDefaults.threshold_enabled ? { threshold_enabled: s.diskDefaults.threshold_enabled } : {}),
                      ...(s.diskDefaults.high ? { watermark: { high: s.diskDefaults.high } } : {}),
                    },
                  },
                },
              },
            },
          },
        }
      : {}),
  };
  const r = clusterView(a, KEY, true);
  if (!r.ok) throw new Error(r.error);
  return r.view;
}

const ref = (name: string, more: Partial<NodeRef> = {}): NodeRef => ({ pod: name, name, ready: true, ...more });
const pods = (...names: string[]): NodeRef[] => names.map((n) => ref(n));
const holdOf = (d: Decision): string => {
  expect(d.kind, JSON.stringify(d)).to.equal('hold');
  return d.kind === 'hold' ? d.reason : '';
};

describe('elasticsearch hook: every node of the StatefulSet must be a member', () => {
  const step: StepContext = { pods: pods('es-0', 'es-1', 'es-2') };
  it('holds when a pod other than prev and next is Ready but its node has not joined', () => {
    const v = view({ nodes: { 'es-1': {}, 'es-2': {} } });
    for (const decide of [decideDrain, decideRestart, decideShutdown]) {
      expect(holdOf(decide(v, null, ref('es-2'), 'green', step))).to.equal('es-0 has not joined the cluster: every node of the StatefulSet must be a member before a step');
    }
    // at the end too
    expect(holdOf(decideDrain(v, ref('es-1'), null, 'green', step))).to.match(/^es-0 has not joined/);
  });
  it('names the pod when the node name differs, and lists several', () => {
    const v = view({ nodes: { 'es-2': {} } });
    const s: StepContext = { pods: [ref('data-0', { name: 'node-a' }), ref('data-1', { name: 'node-b' }), ref('es-2')] };
    expect(holdOf(decideDrain(v, null, ref('es-2'), 'green', s))).to.match(/^node-a \(pod data-0\), node-b \(pod data-1\) have not joined/);
  });
});

describe('elasticsearch hook: master quorum and order', () => {
  const masters = { 'master-0': { roles: 'm' as Role }, 'master-1': { roles: 'm' as Role }, 'master-2': { roles: 'm' as Role } };
  const step: StepContext = { pods: pods('master-0', 'master-1', 'master-2') };

  it('holds a master-eligible next while a voter is out of the cluster (master-0 Ready but not joined)', () => {
    // master-0 is not a member; its pod is prev here, so the membership rule does not catch it: the quorum rule does.
    const v = view({ nodes: { 'master-1': { roles: 'm' }, 'master-2': { roles: 'm' } }, voters: ['master-0', 'master-1', 'master-2'], master: 'master-1' });
    const r = holdOf(decideShutdown(v, null, ref('master-1'), 'green', { pods: [ref('master-1'), ref('master-2')] }));
    expect(r).to.equal('master-1 is master-eligible and 1 voting master-eligible node of 3 is not in the cluster (id-master-0): restarting master-1 now could lose the master quorum; waiting for it to rejoin');
  });
  it('does not hold a data-only next for a missing voter', () => {
    const v = view({ nodes: { 'master-1': { roles: 'm' }, 'master-2': { roles: 'm' }, 'data-0': { roles: 'd' } }, voters: ['master-0', 'master-1', 'master-2'], shutdowns: [] });
    const d = decideShutdown(v, null, ref('data-0'), 'green', { pods: pods('data-0'), owner: 'db/data' });
    expect(d.kind).to.equal('request');
  });
  it('holds master-eligible nodes in an upgrade while data nodes of another StatefulSet run an older version', () => {
    const v = view({ nodes: { ...masters, 'data-0': { roles: 'd', version: '8.18.0' }, 'data-1': { roles: 'd', version: '8.19.21' } }, voters: ['master-0', 'master-1', 'master-2'] });
    const r = holdOf(decideDrain(v, null, ref('master-2'), 'green', { ...step, target: '8.19.21' }));
    expect(r).to.equal('master-eligible nodes go last in an upgrade to 8.19.21: data-0 (8.18.0) of another StatefulSet still runs an older version');
    // without a known target, the newest version in the cluster is the target
    expect(holdOf(decideDrain(v, null, ref('master-2'), 'green', step))).to.match(/^master-eligible nodes go last in an upgrade to 8\.19\.21/);
    // once the data nodes run it, the masters go
    const after = view({ nodes: { ...masters, 'data-0': { roles: 'd', version: '8.19.21' } }, voters: ['master-0', 'master-1', 'master-2'] });
    expect(decideDrain(after, null, ref('master-2'), 'green', { ...step, target: '8.19.21' }).kind).to.equal('write');
  });
  it('never holds master+data nodes of two StatefulSets against each other (no deadlock)', () => {
    const v = view({ nodes: { 'a-0': { version: '8.18.0' }, 'b-0': { version: '8.19.21' } } });
    expect(decideDrain(v, null, ref('a-0'), 'green', { pods: pods('a-0'), target: '8.19.21' }).kind).to.equal('write');
  });
});

describe('elasticsearch hook: yellow during a version upgrade', () => {
  const mixed = { 'es-0': { version: '8.18.0' }, 'es-1': { version: '8.19.21' }, 'es-2': { version: '8.19.21' } };
  it('accepts yellow with nothing in flight when members run two versions, and only then', () => {
    expect(stepHealthy(view({ status: 'yellow', unassigned: 2, nodes: mixed }), 'green')).to.equal(true);
    expect(stepHealthy(view({ status: 'yellow', unassigned: 2, initializing: 1, nodes: mixed }), 'green')).to.equal(false);
    expect(stepHealthy(view({ status: 'yellow', unassigned: 2 }), 'green')).to.equal(false);
    expect(stepHealthy(view({ status: 'red', nodes: mixed }), 'green')).to.equal(false);
  });
  it('drains and approves the next old node while yellow in an upgrade', () => {
    const s: Spec = { status: 'yellow', unassigned: 2, nodes: mixed, persistent: { 'cluster.routing.allocation.exclude._name': 'es-0', [KEY]: encodeMarker({ exclude: ['es-0'] }) } };
    const d = decideDrain(view(s), ref('es-1'), ref('es-0'), 'green', { pods: pods('es-0', 'es-1', 'es-2') });
    expect(d).to.deep.include({ kind: 'approve' });
    expect(d.kind === 'approve' && d.note).to.match(/yellow accepted: an upgrade is under way/);
  });
  it('lets a node go in an upgrade when only replicas that no node can take are left on it, and not primaries', () => {
    const ex = { 'cluster.routing.allocation.exclude._name': 'es-1', [KEY]: encodeMarker({ exclude: ['es-1'] }) };
    const mixedOld = { 'es-0': { version: '8.18.0' }, 'es-1': { version: '8.18.0' }, 'es-2': { version: '8.19.21' } };
    const only = decideDrain(view({ status: 'yellow', unassigned: 0, nodes: mixedOld, persistent: ex, copies: { 'es-1': ['live/0r'] } }), ref('es-2'), ref('es-1'), 'green');
    expect(only).to.deep.include({ kind: 'approve' });
    expect(only.kind === 'approve' && only.note).to.match(/^es-1 holds only 1 replica that no node can take during the upgrade/);
    // a primary left, or no upgrade, or copies still moving: hold
    expect(decideDrain(view({ nodes: mixedOld, persistent: ex, copies: { 'es-1': ['live/0p'] } }), ref('es-2'), ref('es-1'), 'green').kind).to.equal('hold');
    expect(decideDrain(view({ persistent: ex, copies: { 'es-1': ['live/0r'] } }), ref('es-2'), ref('es-1'), 'green').kind).to.equal('hold');
    expect(decideDrain(view({ nodes: mixedOld, relocating: 1, persistent: ex, copies: { 'es-1': ['live/0r'] } }), ref('es-2'), ref('es-1'), 'green').kind).to.equal('hold');
  });
  it('compares versions by number', () => {
    expect(compareVersions('8.9.0', '8.19.0')).to.be.below(0);
    expect(compareVersions('9.0.0', '8.19.21')).to.be.above(0);
    expect(compareVersions('7.15.2', '7.15.2-SNAPSHOT')).to.equal(0);
    expect(compareVersions('x', '1.0.0')).to.equal(undefined);
  });
});

describe('elasticsearch hook: strategy auto', () => {
  it('is shutdown on Elasticsearch >= 7.15.2 with the shutdown API, drain otherwise', () => {
    const es = (version: string, shutdowns: Spec['shutdowns']) => view({ nodes: { 'es-0': { version } }, shutdowns });
    expect(resolveStrategy('auto', es('8.19.21', []))).to.equal('shutdown');
    expect(resolveStrategy('auto', es('7.15.2', []))).to.equal('shutdown');
    expect(resolveStrategy('auto', es('7.15.1', []))).to.equal('drain');
    expect(resolveStrategy('auto', es('8.19.21', null)), 'no shutdown module').to.equal('drain');
    expect(resolveStrategy('auto', view({ flavor: 'opensearch', nodes: { 'es-0': { version: '2.19.6' } } }))).to.equal('drain');
    // mixed versions: the oldest decides
    expect(resolveStrategy('auto', view({ nodes: { a: { version: '7.14.0' }, b: { version: '8.19.21' } }, shutdowns: [] }))).to.equal('drain');
    expect(resolveStrategy('restart', es('8.19.21', []))).to.equal('restart');
  });
});

describe('elasticsearch hook: shutdown strategy', () => {
  const owner = 'db/data';
  const step: StepContext = { pods: pods('es-0', 'es-1', 'es-2'), owner, allocationDelay: '20m' };
  const ours = (node: string, status: 'IN_PROGRESS' | 'STALLED' | 'COMPLETE', explanation?: string) => ({ node, reason: shutdownReason(owner, node), status, ...(explanation ? { explanation } : {}) });
  const base: Spec = { replicas: { logs: 1 }, copies: { 'es-2': ['logs/0p', 'logs/1r'] } };

  it('registers a restart record with the allocation delay, then approves when COMPLETE', () => {
    const d = decideShutdown(view({ ...base, shutdowns: [] }), null, ref('es-2'), 'green', step);
    expect(d).to.deep.equal({
      kind: 'request',
      method: 'PUT',
      path: '/_nodes/id-es-2/shutdown',
      body: { type: 'restart', reason: 'sts-pilot db/data: rolling restart of es-2', allocation_delay: '20m' },
      why: 'register the restart of es-2 with the node shutdown API',
    });
    expect(holdOf(decideShutdown(view({ ...base, shutdowns: [ours('es-2', 'IN_PROGRESS')] }), null, ref('es-2'), 'green', step))).to.equal(
      'waiting for the cluster to prepare the restart of es-2 (node shutdown: IN_PROGRESS)',
    );
    expect(decideShutdown(view({ ...base, shutdowns: [ours('es-2', 'COMPLETE')] }), null, ref('es-2'), 'green', step).kind).to.equal('approve');
  });
  it('explains STALLED with the cluster own words', () => {
    const r = holdOf(decideShutdown(view({ ...base, shutdowns: [ours('es-2', 'STALLED', 'shard [0] of [logs] cannot be moved')] }), null, ref('es-2'), 'green', step));
    expect(r).to.equal('the node shutdown of es-2 is STALLED: shard [0] of [logs] cannot be moved');
  });
  it("removes prev's record only after it rejoined, then registers next's", () => {
    const away = view({ ...base, nodes: { 'es-0': {}, 'es-1': {} }, shutdowns: [ours('es-2', 'COMPLETE')] });
    expect(holdOf(decideShutdown(away, ref('es-2'), ref('es-1'), 'green', step))).to.match(/^waiting for es-2 \(pod es-2\) to rejoin/);
    const back = view({ ...base, copies: { 'es-1': ['logs/0r'] }, shutdowns: [ours('es-2', 'COMPLETE')] });
    expect(decideShutdown(back, ref('es-2'), ref('es-1'), 'green', step)).to.deep.include({ kind: 'request', method: 'DELETE', path: '/_nodes/id-es-2/shutdown' });
    // at the end as well
    expect(decideShutdown(back, ref('es-2'), null, 'green', step)).to.deep.include({ kind: 'request', method: 'DELETE' });
    expect(decideShutdown(view({ ...base, shutdowns: [] }), ref('es-2'), null, 'green', step).kind).to.equal('approve');
  });
  it("leaves a person's record and another StatefulSet's alone, and holds on one for next", () => {
    const theirs = { node: 'es-1', reason: 'hardware swap', status: 'COMPLETE' as const, type: 'REMOVE' };
    const other = { node: 'es-0', reason: shutdownReason('db/masters', 'es-0'), status: 'COMPLETE' as const };
    expect(decideShutdown(view({ ...base, shutdowns: [theirs, other] }), null, ref('es-2'), 'green', step).kind).to.equal('request');
    expect(holdOf(decideShutdown(view({ ...base, copies: {}, shutdowns: [theirs] }), null, ref('es-1'), 'green', step))).to.equal(
      'es-1 already has a node shutdown record of type remove ("hardware swap"), not sts-pilot\'s restart: remove it, or let whoever made it finish',
    );
  });
  it('holds on a sole copy, and on a shard whose other copies are unassigned', () => {
    expect(holdOf(decideShutdown(view({ replicas: { logs: 0 }, copies: { 'es-2': ['logs/0p'] }, shutdowns: [] }), null, ref('es-2'), 'green', step))).to.match(
      /^es-2 holds the only copy of 1 shard \(logs\[0\]\)/,
    );
    const yellow = view({ status: 'yellow', unassigned: 1, replicas: { logs: 1 }, copies: { 'es-2': ['logs/0p'] }, unassignedCopies: ['logs/0r'], shutdowns: [] });
    expect(holdOf(decideShutdown(yellow, null, ref('es-2'), 'yellow', step))).to.match(/^es-2 holds the only copy of 1 shard \(logs\[0\]\)/);
  });
  it('holds with a reason when the cluster has no shutdown API, and undoes drain leftovers first', () => {
    expect(holdOf(decideShutdown(view({ shutdowns: null }), null, ref('es-2'), 'green', step))).to.match(/^this cluster has no node shutdown API/);
    const left = view({ ...base, shutdowns: [], persistent: { 'cluster.routing.allocation.exclude._name': 'es-1', [KEY]: encodeMarker({ exclude: ['es-1'] }) } });
    expect(decideShutdown(left, null, ref('es-2'), 'green', step)).to.deep.include({ kind: 'write', why: 'undo what the drain or restart strategy left' });
  });
});

describe('elasticsearch hook: drains that cannot finish say why', () => {
  it('asks explain about a copy that stays when nothing moves, and not while copies move', () => {
    const s: Spec = { copies: { 'es-2': ['logs/0p', 'logs/1r'] }, persistent: { 'cluster.routing.allocation.exclude._name': 'es-2', [KEY]: encodeMarker({ exclude: ['es-2'] }) } };
    const d = decideDrain(view(s), null, ref('es-2'), 'green');
    expect(d).to.deep.include({ kind: 'hold', explain: { index: 'logs', shard: 0, primary: true, nodeId: 'id-es-2' } });
    const moving = decideDrain(view({ ...s, relocating: 1, copies: { 'es-2': ['logs/0p:RELOCATING', 'logs/1r'] } }), null, ref('es-2'), 'green');
    expect(moving.kind === 'hold' && moving.explain).to.equal(undefined);
  });
  it('turns the deciders of explain into one line', () => {
    const e: ExplainAnswer = {
      can_remain_on_current_node: 'no',
      can_move_to_other_node: 'no',
      node_allocation_decisions: [
        { node_name: 'es-0', node_decision: 'no', deciders: [{ decider: 'same_shard', decision: 'NO', explanation: 'a copy of this shard is already allocated to this node' }] },
        { node_name: 'es-1', node_decision: 'no', deciders: [{ decider: 'shards_limit', decision: 'NO', explanation: 'too many shards [1] allocated to this node, index setting [index.routing.allocation.total_shards_per_node=1]' }] },
      ],
    };
    expect(explainText(e, { index: 'logs', shard: 0, primary: false, nodeId: 'x' })).to.equal(
      'the drain cannot finish: logs[0] (replica) cannot move: es-0: same_shard (a copy of this shard is already allocated to this node); ' +
        'es-1: shards_limit (too many shards [1] allocated to this node, index setting [index.routing.allocation.total_shards_per_node=1])',
    );
    expect(explainText({ can_move_to_other_node: 'throttled' }, { index: 'a', shard: 0, primary: true, nodeId: 'x' })).to.equal(undefined);
  });
  it('holds before a drain when the others cannot take the data under the high watermark', () => {
    const disk = [
      { node: 'es-0', indices: 50 * GB, used: 80 * GB, total: 100 * GB },
      { node: 'es-1', indices: 50 * GB, used: 85 * GB, total: 100 * GB },
      { node: 'es-2', indices: 30 * GB, used: 60 * GB, total: 100 * GB },
    ];
    // room at 90%: 10 + 5 = 15 GiB < 30 GiB
    const r = holdOf(decideDrain(view({ disk, copies: { 'es-2': ['a/0p'] } }), null, ref('es-2'), 'green'));
    expect(r).to.equal(
      'es-2 holds 30.0 GiB of shard data, but the other nodes (es-0, es-1) can take only 15.0 GiB before the high disk watermark (90%): the drain could not finish; free disk, add a data node, or use strategy restart or shutdown',
    );
    // a watermark as free space (19 + 14 GiB of room), and the decider switched off
    expect(diskShortfall(view({ disk, persistent: { 'cluster.routing.allocation.disk.watermark.high': '1gb' } }), 'es-2')).to.equal(undefined);
    expect(diskShortfall(view({ disk, persistent: { 'cluster.routing.allocation.disk.threshold_enabled': 'false' } }), 'es-2')).to.equal(undefined);
    // the nodes' own config counts where the cluster settings say nothing, and the cluster settings win over it
    expect(diskShortfall(view({ disk, diskDefaults: { threshold_enabled: 'false' } }), 'es-2')).to.equal(undefined);
    expect(diskShortfall(view({ disk, diskDefaults: { high: '99%' } }), 'es-2')).to.equal(undefined);
    expect(diskShortfall(view({ disk, diskDefaults: { high: '99%' }, persistent: { 'cluster.routing.allocation.disk.watermark.high': '90%' } }), 'es-2')).to.match(/before the high disk watermark \(90%\)/);
    // enough room: the drain starts (the exclusion is written)
    expect(decideDrain(view({ disk: disk.map((d) => ({ ...d, indices: d.node === 'es-2' ? 10 * GB : d.indices })) }), null, ref('es-2'), 'green').kind).to.equal('write');
  });
  it('reads watermarks as Elasticsearch does', () => {
    expect(parseWatermark('85%')).to.deep.include({ kind: 'used-fraction', value: 0.85 });
    expect(parseWatermark('0.9')).to.deep.include({ kind: 'used-fraction', value: 0.9 });
    expect(parseWatermark('500mb')).to.deep.include({ kind: 'free-bytes', value: 500 * 2 ** 20 });
    expect(parseWatermark('lots')).to.equal(undefined);
  });
});

describe('elasticsearch hook: another StatefulSet of the cluster', () => {
  it("names the StatefulSet whose restart set allocation to primaries, instead of asking a person to remove it", () => {
    const other = markerKey('db', 'masters');
    expect(ownerOfMarkerKey(other)).to.equal('db/masters');
    const v = view({ persistent: { 'cluster.routing.allocation.enable': 'primaries', [other]: encodeMarker({ exclude: [], primariesFor: 'master-1' }) } });
    expect(holdOf(decideRestart(v, null, ref('es-2'), 'green'))).to.equal(
      "cluster.routing.allocation.enable is 'primaries', set by sts-pilot for db/masters while master-1 restarts: one restart at a time per cluster; waiting for that StatefulSet to finish its step",
    );
  });
});

describe('elasticsearch hook: the per-cluster lock', () => {
  it('runs the critical sections of one cluster one at a time, others in parallel, and leaves nothing behind', async () => {
    const order: string[] = [];
    const section = (key: string, tag: string, ms: number) =>
      withClusterLock(key, new AbortController().signal, async () => {
        order.push(`${tag}+`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${tag}-`);
      });
    await Promise.all([section('A', 'a1', 30), section('A', 'a2', 5), section('B', 'b1', 10)]);
    expect(order.indexOf('a1-')).to.be.below(order.indexOf('a2+'));
    expect(order.indexOf('b1+')).to.be.below(order.indexOf('a1-'));
    expect(lockedClusters()).to.equal(0);
  });
  it('gives up waiting when the call is cancelled, and the queue goes on', async () => {
    let release!: () => void;
    const first = withClusterLock('C', new AbortController().signal, () => new Promise<void>((r) => (release = r)));
    const ac = new AbortController();
    const second = withClusterLock('C', ac.signal, async () => 'ran');
    ac.abort(new Error('deadline'));
    let err: unknown;
    await second.catch((e) => (err = e));
    expect(String(err)).to.match(/deadline/);
    release();
    await first;
    expect(await withClusterLock('C', new AbortController().signal, async () => 'third')).to.equal('third');
    expect(lockedClusters()).to.equal(0);
  });
});
