import type { NodeRef } from './node-ref.ts';
import type { Health } from './options.ts';
import {
  ALLOCATION_ENABLE,
  encodeMarker,
  exclusionWrite,
  isEmptyWrite,
  type Marker,
  mergeWrites,
  type SettingsWrite,
} from './settings.ts';
import type { ClusterView, ShardCopy } from './view.ts';

// The decisions of the hook, as pure functions of what it read: one call of the
// hook is read -> decide -> (write -> read -> decide)* -> approve or hold. A
// decision never depends on an earlier call: what the hook did before is in the
// cluster settings (its marker), so a restarted controller decides the same.

export type Decision =
  | { kind: 'approve'; note: string; /** restart strategy: POST _flush before the node stops */ flush: boolean }
  | { kind: 'hold'; reason: string }
  | { kind: 'write'; write: SettingsWrite; why: string };

const hold = (reason: string): Decision => ({ kind: 'hold', reason });
const approve = (note: string, flush = false): Decision => ({ kind: 'approve', note, flush });
const NO_WRITE: SettingsWrite = { persistent: {}, transient: {} };

const RANK: Record<Health, number> = { red: 0, yellow: 1, green: 2 };
export const healthy = (view: ClusterView, required: Health): boolean => RANK[view.health.status] >= RANK[required];

/** "a, b, c and 4 more": names in a reason stay short. */
export function listOf(names: readonly string[], max = 5): string {
  if (names.length === 0) return 'none';
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** "yellow: 3 shards unassigned (1 primary), 2 initializing; 3 nodes" — the numbers behind a health. */
export function healthText(view: ClusterView): string {
  const h = view.health;
  const parts: string[] = [];
  if (h.unassigned) parts.push(`${plural(h.unassigned, 'shard')} unassigned${h.unassignedPrimaries ? ` (${plural(h.unassignedPrimaries, 'primary', 'primaries')})` : ''}`);
  if (h.initializing) parts.push(`${h.initializing} initializing`);
  if (h.relocating) parts.push(`${h.relocating} relocating`);
  return `${h.status}: ${parts.length ? `${parts.join(', ')}; ` : ''}${plural(h.nodes, 'node')}`;
}

export function redReason(view: ClusterView): string {
  const red = view.health.redIndices;
  return `cluster is ${healthText(view)}${red?.length ? `; red indices: ${listOf(red)}` : ''}`;
}

/**
 * Why `ref`'s node is not back in the cluster yet, or undefined when it is:
 * the cluster's own member list has it, and its Pilot (when the Pilot reports
 * anything) agrees on name, cluster UUID and version.
 */
export function notRejoined(view: ClusterView, ref: NodeRef): string | undefined {
  const p = ref.pilot;
  // Without it the name is only the pod's guess: say what is really missing.
  if (p && !p.nodeName) return `waiting for the Pilot of ${ref.pod} to report its node's name`;
  const node = view.nodes.find((n) => n.name === ref.name);
  if (!node) {
    return `waiting for ${ref.name} (pod ${ref.pod}) to rejoin the cluster: it is not among its ${plural(view.nodes.length, 'node')} (${listOf(view.nodes.map((n) => n.name).sort())})`;
  }
  if (!p) return undefined;
  if (!p.clusterUUID) return `waiting for the Pilot of ${ref.pod} to report the cluster UUID of ${ref.name}`;
  if (p.clusterUUID !== view.uuid) {
    return `the Pilot of ${ref.pod} reports node ${ref.name} in cluster ${p.clusterUUID}, but the cluster at the url is ${view.uuid}: the node is not in this cluster`;
  }
  if (p.version && node.version && p.version !== node.version) {
    return `the Pilot of ${ref.pod} reports version ${p.version}, the cluster lists ${ref.name} at ${node.version}: waiting for them to agree`;
  }
  return undefined;
}

function missingNode(view: ClusterView, ref: NodeRef): string {
  return (
    `pod ${ref.pod} is Ready, but the cluster has no node named ${ref.name} (its nodes: ${listOf(view.nodes.map((n) => n.name).sort())}): ` +
    `the hook cannot make safe a node it cannot find; make node.name the pod's name, or run the pilot in the pod`
  );
}

/** Red holds everything; so does a previous pod whose node has not come back. */
function precheck(view: ClusterView, prev: NodeRef | null): Decision | undefined {
  if (view.health.status === 'red') return hold(redReason(view));
  if (prev) {
    const why = notRejoined(view, prev);
    if (why) return hold(why);
  }
  return undefined;
}

function markerWrite(view: ClusterView, next: Marker): SettingsWrite {
  const now = encodeMarker(view.marker);
  const then = encodeMarker(next);
  return now === then ? NO_WRITE : { persistent: { [view.markerKey]: then }, transient: {} };
}

/**
 * Replica allocation to `primaries` (in the layer in force), or back to the
 * default: the layers holding our `primaries` are cleared, nothing else.
 */
function allocationWrite(view: ClusterView, want: 'primaries' | null): SettingsWrite {
  const out: SettingsWrite = { persistent: {}, transient: {} };
  if (want === 'primaries') {
    if (view.allocation?.value !== 'primaries') out[view.allocation?.layer ?? 'persistent'][ALLOCATION_ENABLE] = 'primaries';
    return out;
  }
  for (const layer of ['persistent', 'transient'] as const) {
    const v = view.settings[layer][ALLOCATION_ENABLE];
    if (typeof v === 'string' && v.toLowerCase() === 'primaries') out[layer][ALLOCATION_ENABLE] = null;
  }
  return out;
}

/** Shard copies on a node whose (index, shard) has no other active copy: restarting the node takes them offline. */
export function soleCopies(shards: readonly ShardCopy[], nodeId: string): ShardCopy[] {
  const active = (s: ShardCopy) => s.state === 'STARTED' || s.state === 'RELOCATING';
  const elsewhere = new Set(shards.filter((s) => s.nodeId !== nodeId && active(s)).map((s) => `${s.index}\u0000${s.shard}`));
  return shards.filter((s) => s.nodeId === nodeId && active(s) && !elsewhere.has(`${s.index}\u0000${s.shard}`));
}

/**
 * drain: before `next` moves, its node is excluded from allocation and holds no
 * shard; after `prev` moved, its node must be back before anything else
 * happens, and then stops being excluded. At the end no exclusion of ours is
 * left and health is as required.
 */
export function decideDrain(view: ClusterView, prev: NodeRef | null, next: NodeRef | null, required: Health): Decision {
  const blocked = precheck(view, prev);
  if (blocked) return blocked;

  const ours = view.marker.exclude;
  // A name a person excluded stays theirs: we neither claim it nor ever remove it.
  const theirs = view.exclusion.filter((n) => !ours.includes(n));
  const want = next && !theirs.includes(next.name) ? [next.name] : [];
  // Every name of ours but next's goes: prev's (it is back), and any left by an
  // earlier step or rollout (removing an exclusion never puts data at risk).
  const remove = ours.filter((n) => !want.includes(n));
  const add = want.filter((n) => !view.exclusion.includes(n));
  const write = mergeWrites(
    exclusionWrite(view.settings, add, remove),
    // A leftover of the restart strategy (the strategy was changed mid-rollout).
    view.marker.primariesFor !== undefined ? allocationWrite(view, null) : NO_WRITE,
    markerWrite(view, { exclude: want }),
  );
  if (!isEmptyWrite(write)) {
    const what = [
      add.length ? `exclude ${listOf(add)} from shard allocation` : '',
      remove.length ? `stop excluding ${listOf(remove)}` : '',
      view.marker.primariesFor !== undefined ? 're-enable replica allocation' : '',
    ].filter((s) => s !== '');
    return { kind: 'write', write, why: what.length ? what.join('; ') : 'record what sts-pilot excluded' };
  }

  if (!next) {
    if (!healthy(view, required)) return hold(`no exclusion of sts-pilot's is left; waiting for health ${required}: cluster is ${healthText(view)}`);
    return approve(`no exclusion of sts-pilot's is left; cluster is ${view.health.status}`);
  }

  const node = view.nodes.find((n) => n.name === next.name);
  if (!node && next.ready) return hold(missingNode(view, next));
  const on = node ? (view.shards ?? []).filter((s) => s.nodeId === node.id) : [];
  if (on.length > 0) {
    const relocating = on.filter((s) => s.state === 'RELOCATING').length;
    const initializing = on.filter((s) => s.state === 'INITIALIZING').length;
    // Recoveries are throttled (cluster.routing.allocation.node_concurrent_recoveries): the rest waits its turn.
    const notes = [`${relocating} relocating away`];
    if (on.length - relocating - initializing > 0) notes.push(`${on.length - relocating - initializing} waiting to move`);
    if (initializing) notes.push(`${initializing} initializing onto it`);
    let reason = `draining: ${plural(on.length, 'shard')} left on ${next.name} (${notes.join(', ')})`;
    // Hints for a drain that cannot finish by itself.
    if (view.allocation && view.allocation.value !== 'all') reason += `; ${ALLOCATION_ENABLE} is '${view.allocation.value}', which keeps shards in place`;
    // Only exclusions of members take capacity away; others (retired nodes) are noise here.
    const members = theirs.filter((n) => view.nodes.some((x) => x.name === n));
    if (members.length) reason += `; also excluded, not by sts-pilot: ${listOf(members)}`;
    if (!view.nodes.some((x) => !view.exclusion.includes(x.name))) reason += '; every node is excluded: no node can take them';
    if (view.health.unassigned) reason += `; ${plural(view.health.unassigned, 'shard')} unassigned in the cluster`;
    return hold(reason);
  }
  const gone = node ? '' : ` (not in the cluster: pod ${next.pod} is not Ready)`;
  if (view.health.relocating || view.health.initializing) {
    return hold(`${next.name} holds no shards${gone}; waiting for the cluster to settle: ${healthText(view)}`);
  }
  // "yellow" is for clusters that are yellow by design: there an unassigned replica is expected.
  if (required === 'green' && view.health.unassigned) {
    return hold(`${next.name} holds no shards${gone}, but the cluster has ${plural(view.health.unassigned, 'unassigned shard')}: ${healthText(view)}`);
  }
  if (!healthy(view, required)) return hold(`${next.name} holds no shards${gone}; waiting for health ${required}: cluster is ${healthText(view)}`);
  if (!view.exclusion.includes(next.name)) return hold(`${next.name} is not excluded from allocation yet`);
  return approve(`${next.name} holds no shards${gone}; cluster is ${view.health.status}`);
}

/**
 * restart (Elasticsearch's documented rolling restart, for clusters too big to
 * drain): before `next` moves, the cluster is whole, replica allocation is set
 * to `primaries` and the indices are flushed; after `prev` moved and rejoined,
 * replica allocation is re-enabled and the cluster must be whole again before
 * the next node goes. At the end allocation is re-enabled and health is as required.
 */
export function decideRestart(view: ClusterView, prev: NodeRef | null, next: NodeRef | null, required: Health): Decision {
  const blocked = precheck(view, prev);
  if (blocked) return blocked;

  const value = view.allocation?.value;
  const ours = view.marker.primariesFor !== undefined && value === 'primaries';
  if (!ours && value !== undefined && value !== 'all') {
    return hold(`${ALLOCATION_ENABLE} is '${value}', set by someone else: the restart strategy sets and clears it itself; remove it to go on`);
  }
  // Ours and set for this very step: a repeated call (e.g. after a controller
  // restart) must not undo it. Set for an earlier step: that node is back.
  const keep = ours && next !== null && view.marker.primariesFor === next.name;
  const reenable = ours && !keep;
  const write = mergeWrites(
    // Leftovers of the drain strategy (the strategy was changed mid-rollout).
    exclusionWrite(view.settings, [], view.marker.exclude),
    reenable ? allocationWrite(view, null) : NO_WRITE,
    markerWrite(view, keep ? { exclude: [], primariesFor: next.name } : { exclude: [] }),
  );
  if (!isEmptyWrite(write)) {
    const what = [
      reenable ? `re-enable replica allocation (${view.marker.primariesFor} is back)` : '',
      view.marker.exclude.length ? `stop excluding ${listOf(view.marker.exclude)}` : '',
    ].filter((s) => s !== '');
    return { kind: 'write', write, why: what.length ? what.join('; ') : 'record what sts-pilot changed' };
  }

  if (!next) {
    if (!healthy(view, required)) return hold(`replica allocation is enabled; waiting for health ${required}: cluster is ${healthText(view)}`);
    return approve(`replica allocation is enabled; cluster is ${view.health.status}`);
  }

  // The node goes down with its copies: only when every shard has another copy, and nothing is moving.
  if (!healthy(view, required) || view.health.relocating || view.health.initializing) {
    return hold(`waiting for health ${required} with nothing moving before ${next.name} restarts: cluster is ${healthText(view)}`);
  }
  const node = view.nodes.find((n) => n.name === next.name);
  if (!node && next.ready) return hold(missingNode(view, next));
  const sole = node ? soleCopies(view.shards ?? [], node.id) : [];
  if (sole.length) {
    return hold(
      `${next.name} holds the only copy of ${plural(sole.length, 'shard')} (${listOf(sole.map((s) => `${s.index}[${s.shard}]`))}): ` +
        'restarting it would take them offline; give those indices replicas, or use strategy drain',
    );
  }
  if (!keep) {
    return {
      kind: 'write',
      write: mergeWrites(allocationWrite(view, 'primaries'), markerWrite(view, { exclude: [], primariesFor: next.name })),
      why: `set replica allocation to primaries before ${next.name} restarts`,
    };
  }
  return approve(`replica allocation is primaries-only and the cluster is ${view.health.status}; ${next.name} may restart after a flush`, true);
}
