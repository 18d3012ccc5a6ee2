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
import type { ExplainAnswer } from './answers.ts';
import type { Strategy, StrategyOption } from './options.ts';
import type { ClusterView, ShardCopy, ShutdownRecord } from './view.ts';
import { inFlight, soleCopies } from './away.ts';
import { compareVersions, healthText, healthy, holdsData, listOf, masterEligible, plural, redReason, stepHealthy, upgrading, versionsOf } from './facts.ts';

// Re-exported: the rest of the hook and its tests read them from here.
export { inFlight, soleCopies } from './away.ts';
export { compareVersions, healthText, healthy, listOf, masterEligible, redReason, stepHealthy, upgrading, versionParts, versionsOf } from './facts.ts';

// The decisions of the hook, as pure functions of what it read: one call of the
// hook is read -> decide -> (write -> read -> decide)* -> approve or hold. A
// decision never depends on an earlier call: what the hook did before is in the
// cluster settings (its marker), so a restarted controller decides the same.

/** A copy that does not move off a draining node: the hook asks `_cluster/allocation/explain` why. */
export interface StuckCopy {
  index: string;
  shard: number;
  primary: boolean;
  nodeId: string;
}

export type Decision =
  | { kind: 'approve'; note: string; /** restart strategy: POST _flush before the node stops */ flush: boolean }
  /** routine: a wait that ends by itself (lib/hook.ts HookNotReady): a Normal Event, not a Warning. */
  | { kind: 'hold'; reason: string; explain?: StuckCopy; routine?: true }
  | { kind: 'write'; write: SettingsWrite; why: string }
  /** Any other change (node shutdown records): one request, then read and decide again. */
  | { kind: 'request'; method: 'PUT' | 'POST' | 'DELETE'; path: string; body?: unknown; why: string };

/**
 * What a step knows beyond the cluster: every pod of the StatefulSet (their
 * nodes must all be members), the version its template runs (for the order of
 * an upgrade), and who is asking (the reason of a shutdown record names it).
 */
export interface StepContext {
  /** Every pod of the StatefulSet, prev and next included. */
  pods?: readonly NodeRef[];
  /** The version the pod template runs, when known. */
  target?: string;
  /** `namespace/statefulset`, for records the hook leaves in the cluster. */
  owner?: string;
  /** Shutdown strategy: `allocation_delay` of the restart record. */
  allocationDelay?: string;
}

const hold = (reason: string, explain?: StuckCopy): Decision => (explain ? { kind: 'hold', reason, explain } : { kind: 'hold', reason });
/** A hold that ends by itself: shards moving or recovering, a node coming back. */
const wait = (reason: string): Decision => ({ kind: 'hold', reason, routine: true });
/** Waiting for health: routine while the cluster is only yellow (copies recovering); red is for people. */
const healthWait = (view: ClusterView, reason: string): Decision => (view.health.status === 'red' ? hold(reason) : wait(reason));
/** notRejoined words the stages of a node coming back as "waiting for …"; anything else (another cluster's node) is for people. */
const rejoinHold = (why: string): Decision => (why.startsWith('waiting for') ? wait(why) : hold(why));
const approve = (note: string, flush = false): Decision => ({ kind: 'approve', note, flush });
const NO_WRITE: SettingsWrite = { persistent: {}, transient: {} };

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

/**
 * Holds that come before any write, for every strategy: red; the previous
 * pod's node not back; any other pod's node not a member (a node that is
 * Ready but has not joined counts for nothing); a master-eligible `next` while
 * a voter is missing (restarting it could lose the quorum); a master-eligible
 * `next` in an upgrade while nodes of other tiers still run an older version
 * (master-eligible nodes go last).
 */
function precheck(view: ClusterView, prev: NodeRef | null, next: NodeRef | null, step: StepContext): Decision | undefined {
  const nextNode = next ? view.nodes.find((n) => n.name === next.name) : undefined;
  // A broken release being rolled back or fixed: the pod is not Ready and its node is not a
  // member, so replacing it takes nothing away, red or not (the replacement may be what
  // brings a red index back). ECK replaces such a pod whatever the health.
  if (next && !next.ready && !nextNode && (!prev || !notRejoined(view, prev))) {
    return approve(
      `${next.name}'s pod is not Ready and its node is not in the cluster: replacing it takes nothing away` +
        (view.health.status === 'red' ? ` (the cluster is ${healthText(view)}; the replacement may be what brings it back)` : ''),
    );
  }
  // A cluster of one node cannot stay available through that node's restart: rolling it
  // is an outage by design, not something to wait out (documented in docs/elasticsearch.md).
  if (next && nextNode && view.nodes.length === 1 && (step.pods?.length ?? 1) === 1 && (view.voters ?? [nextNode.id]).every((v) => v === nextNode.id) && view.health.status !== 'red') {
    return approve(`${next.name} is the only node of the cluster: it is unavailable while it restarts (a single-node cluster has no other way to roll)`);
  }
  if (view.health.status === 'red') return hold(redReason(view));
  if (prev) {
    const why = notRejoined(view, prev);
    if (why) return rejoinHold(why);
  }
  const absent = (step.pods ?? []).filter((p) => p.pod !== next?.pod && p.pod !== prev?.pod && !view.nodes.some((n) => n.name === p.name));
  if (absent.length) {
    return hold(
      `${listOf(absent.map((p) => (p.name === p.pod ? p.name : `${p.name} (pod ${p.pod})`)))} ${absent.length === 1 ? 'has' : 'have'} not joined the cluster: ` +
        'every node of the StatefulSet must be a member before a step',
    );
  }
  const node = next ? view.nodes.find((n) => n.name === next.name) : undefined;
  if (next && node && masterEligible(node)) {
    const ids = new Set(view.nodes.map((n) => n.id));
    const missing = (view.voters ?? []).filter((v) => !ids.has(v));
    if (missing.length) {
      const n = view.voters?.length ?? 0;
      return hold(
        `${next.name} is master-eligible and ${plural(missing.length, 'voting master-eligible node')} of ${n} ${missing.length === 1 ? 'is' : 'are'} not in the cluster (${listOf(missing)}): ` +
          `restarting ${next.name} now could lose the master quorum; waiting for ${missing.length === 1 ? 'it' : 'them'} to rejoin`,
      );
    }
    // A voter about to go counts as gone: two restarts at once could lose the quorum as surely.
    // prev has rejoined (checked above); what is left of its step is this hook's to clear.
    const going = inFlight(view, next.name, prev?.name).filter((f) => view.nodes.some((m) => m.name === f.name && (view.voters ?? []).includes(m.id)));
    if (going.length) {
      return wait(
        `${next.name} is master-eligible and ${listOf(going.map((f) => `${f.name} (${f.why})`))}, also a voter, ${going.length === 1 ? 'is' : 'are'} on the way out: ` +
          `restarting ${next.name} too could lose the master quorum; waiting for ${going.length === 1 ? 'it' : 'them'} to be back`,
      );
    }
    const others = (step.pods ?? []).map((p) => p.name);
    const target = step.target ?? versionsOf(view).at(-1);
    if (target && others.length) {
      const older = view.nodes.filter(
        (n) => !others.includes(n.name) && !masterEligible(n) && n.roles !== undefined && n.version && (compareVersions(n.version, target) ?? 0) < 0,
      );
      if (older.length) {
        return hold(
          `master-eligible nodes go last in an upgrade to ${target}: ${listOf(older.map((n) => `${n.name} (${n.version})`).sort())} ` +
            `of another StatefulSet still ${older.length === 1 ? 'runs' : 'run'} an older version`,
        );
      }
    }
  }
  return undefined;
}

function markerWrite(view: ClusterView, next: Marker): SettingsWrite {
  const now = encodeMarker(view.marker);
  // A scale-down's voting exclusions are not a step's to drop (hooks/elasticsearch/removal.ts).
  const then = encodeMarker(next.voting === undefined && view.marker.voting !== undefined ? { ...next, voting: view.marker.voting } : next);
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

/**
 * drain: before `next` moves, its node is excluded from allocation and holds no
 * shard; after `prev` moved, its node must be back before anything else
 * happens, and then stops being excluded. At the end no exclusion of ours is
 * left and health is as required.
 */
export function decideDrain(view: ClusterView, prev: NodeRef | null, next: NodeRef | null, required: Health, step: StepContext = {}): Decision {
  const blocked = precheck(view, prev, next, step);
  if (blocked) return blocked;

  const ours = view.marker.exclude;
  // A name a person excluded stays theirs: we neither claim it nor ever remove it.
  const theirs = view.exclusion.filter((n) => !ours.includes(n));
  const want = next && !theirs.includes(next.name) ? [next.name] : [];
  // Every name of ours but next's goes: prev's (it is back), and any left by an
  // earlier step or rollout (removing an exclusion never puts data at risk).
  const remove = ours.filter((n) => !want.includes(n));
  const add = want.filter((n) => !view.exclusion.includes(n));
  // Before a drain starts: can the rest take the node's data under the high watermark?
  if (next && add.includes(next.name)) {
    const full = diskShortfall(view, next.name);
    if (full) {
      // Nothing else of ours may stay excluded meanwhile; the hold itself writes nothing new.
      const cleanup = mergeWrites(exclusionWrite(view.settings, [], remove), markerWrite(view, { exclude: ours.filter((n) => !remove.includes(n)) }));
      if (!isEmptyWrite(cleanup)) return { kind: 'write', write: cleanup, why: `stop excluding ${listOf(remove)}` };
      return hold(full);
    }
  }
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
    if (!healthy(view, required)) return healthWait(view, `no exclusion of sts-pilot's is left; waiting for health ${required}: cluster is ${healthText(view)}`);
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
    // Nothing moves anywhere and copies stay: ask the cluster why one of them stays.
    const stuck = relocating === 0 && initializing === 0 && view.health.relocating === 0 && view.health.initializing === 0;
    // In an upgrade a replica whose primary is on a newer node can go to no older node (and not
    // beside its primary): it stays. Its primary is active elsewhere (a started replica implies
    // it), so the node may go with only such replicas left: redundancy drops, nothing goes offline.
    if (stuck && upgrading(view) && on.every((s) => !s.primary && s.state === 'STARTED') && view.exclusion.includes(next.name) && stepHealthy(view, required)) {
      return approve(
        `${next.name} holds only ${plural(on.length, 'replica')} that no node can take during the upgrade (their primaries are on newer nodes); ` +
          `their primaries are active elsewhere; cluster is ${view.health.status}`,
      );
    }
    const sample = on.find((s) => s.state === 'STARTED');
    // A drain that moves, with nothing in its way, is routine; a stuck one or one with a hint above is for people.
    if (!stuck && reason.indexOf(';') < 0) return wait(reason);
    return hold(reason, stuck && sample ? { index: sample.index, shard: sample.shard, primary: sample.primary, nodeId: sample.nodeId } : undefined);
  }
  const gone = node ? '' : ` (not in the cluster: pod ${next.pod} is not Ready)`;
  if (view.health.relocating || view.health.initializing) {
    return wait(`${next.name} holds no shards${gone}; waiting for the cluster to settle: ${healthText(view)}`);
  }
  // "yellow" is for clusters that are yellow by design: there an unassigned replica is expected.
  if (required === 'green' && view.health.unassigned && !stepHealthy(view, required)) {
    return hold(`${next.name} holds no shards${gone}, but the cluster has ${plural(view.health.unassigned, 'unassigned shard')}: ${healthText(view)}`);
  }
  if (!stepHealthy(view, required)) return healthWait(view, `${next.name} holds no shards${gone}; waiting for health ${required}: cluster is ${healthText(view)}`);
  if (!view.exclusion.includes(next.name)) return wait(`${next.name} is not excluded from allocation yet`);
  const upgradeNote = healthy(view, required) ? '' : ' (yellow accepted: an upgrade is under way and nothing is moving)';
  return approve(`${next.name} holds no shards${gone}; cluster is ${view.health.status}${upgradeNote}`);
}

const GIB = 2 ** 30;
const size = (b: number): string => (b >= GIB ? `${(b / GIB).toFixed(1)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);

/**
 * Why the other nodes cannot take `name`'s data under the high disk watermark,
 * or undefined when they can (or the disk was not read, or the threshold
 * decider is off). Room on a node: what it may still fill before the high
 * watermark. Excluded nodes and nodes without data roles (when roles are known) count for nothing.
 */
export function diskShortfall(view: ClusterView, name: string): string | undefined {
  const d = view.disk;
  if (!d?.high) return undefined;
  const high = d.high;
  const mine = d.nodes.find((n) => n.name === name)?.indicesBytes;
  if (mine === undefined || mine === 0) return undefined;
  let room = 0;
  const takers: string[] = [];
  for (const n of d.nodes) {
    if (n.name === name || view.exclusion.includes(n.name)) continue;
    const member = view.nodes.find((m) => m.name === n.name);
    if (member?.roles && !holdsData(member)) continue;
    if (n.totalBytes === undefined || n.usedBytes === undefined) continue;
    const r = high.kind === 'used-fraction' ? n.totalBytes * high.value - n.usedBytes : (n.availBytes ?? n.totalBytes - n.usedBytes) - high.value;
    room += Math.max(0, r);
    takers.push(n.name);
  }
  if (mine <= room) return undefined;
  return (
    `${name} holds ${size(mine)} of shard data, but ${takers.length ? `the other nodes (${listOf(takers)}) can take only ${size(room)}` : 'no other node can take any'} ` +
    `before the high disk watermark (${high.text}): the drain could not finish; free disk, add a data node, or use strategy restart or shutdown`
  );
}

/**
 * restart (Elasticsearch's documented rolling restart, for clusters too big to
 * drain): before `next` moves, the cluster is whole, replica allocation is set
 * to `primaries` and the indices are flushed; after `prev` moved and rejoined,
 * replica allocation is re-enabled and the cluster must be whole again before
 * the next node goes. At the end allocation is re-enabled and health is as required.
 */
export function decideRestart(view: ClusterView, prev: NodeRef | null, next: NodeRef | null, required: Health, step: StepContext = {}): Decision {
  const value = view.allocation?.value;
  const ours = view.marker.primariesFor !== undefined && value === 'primaries';
  // The last step is finished before the next one is judged: once its node is a member again,
  // replica allocation goes back on whatever holds the next step. Until then the cluster cannot be
  // whole, so a hold that waits for health, or for another StatefulSet that waits for this one's
  // budget slot (which is freed at green), would never end (found by elasticsearch-zones).
  const back = view.marker.primariesFor;
  if (ours && back !== undefined && back !== next?.name && view.nodes.some((n) => n.name === back)) {
    return { kind: 'write', write: mergeWrites(allocationWrite(view, null), markerWrite(view, { exclude: view.marker.exclude })), why: `re-enable replica allocation (${back} is back)` };
  }
  const blocked = precheck(view, prev, next, step);
  if (blocked) return blocked;

  if (!ours && value !== undefined && value !== 'all') {
    const owner = value === 'primaries' ? view.others.find((o) => o.marker.primariesFor !== undefined) : undefined;
    if (owner) {
      // Another StatefulSet of this cluster is mid-restart: its own hook clears it when its node is back.
      return hold(
        `${ALLOCATION_ENABLE} is 'primaries', set by sts-pilot for ${owner.owner} while ${owner.marker.primariesFor} restarts: ` +
          'one restart at a time per cluster; waiting for that StatefulSet to finish its step',
      );
    }
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
    if (!healthy(view, required)) return healthWait(view, `replica allocation is enabled; waiting for health ${required}: cluster is ${healthText(view)}`);
    return approve(`replica allocation is enabled; cluster is ${view.health.status}`);
  }

  const ready = readyToGo(view, next, required, prev);
  if (ready) return ready;
  if (!keep) {
    return {
      kind: 'write',
      write: mergeWrites(allocationWrite(view, 'primaries'), markerWrite(view, { exclude: [], primariesFor: next.name })),
      why: `set replica allocation to primaries before ${next.name} restarts`,
    };
  }
  return approve(`replica allocation is primaries-only and the cluster is ${view.health.status}; ${next.name} may restart after a flush`, true);
}

/**
 * The node goes down with its copies (restart and shutdown): only when every
 * shard has another copy, and nothing is moving. A hold, or undefined to go on.
 */
function readyToGo(view: ClusterView, next: NodeRef, required: Health, prev: NodeRef | null): Decision | undefined {
  if (!stepHealthy(view, required) || view.health.relocating || view.health.initializing) {
    return healthWait(view, `waiting for health ${required} with nothing moving before ${next.name} restarts: cluster is ${healthText(view)}`);
  }
  const node = view.nodes.find((n) => n.name === next.name);
  if (!node && next.ready) return hold(missingNode(view, next));
  const going = inFlight(view, next.name, prev?.name);
  const away = new Set(going.map((f) => view.nodes.find((n) => n.name === f.name)?.id).filter((id): id is string => id !== undefined));
  const alone = node ? soleCopies(view, node.id) : [];
  if (alone.length) {
    return hold(
      `${next.name} holds the only copy of ${plural(alone.length, 'shard')} (${listOf(alone.map((s) => `${s.index}[${s.shard}]`))}): ` +
        'restarting it would take them offline; give those indices replicas, or use strategy drain',
    );
  }
  // Copies whose other copy is on a node about to go: restarting both at once takes them offline too.
  const sole = node ? soleCopies(view, node.id, away) : [];
  if (sole.length) {
    return wait(
      `${next.name} holds ${plural(sole.length, 'shard')} (${listOf(sole.map((s) => `${s.index}[${s.shard}]`))}) whose other copies are on nodes on their way out ` +
        `(${listOf(going.map((f) => `${f.name}: ${f.why}`))}): waiting for them to be back`,
    );
  }
  return undefined;
}

/** The reason of the shutdown records the hook registers: it says who to ask, and marks them as ours. */
export const shutdownReason = (owner: string, node: string): string => `sts-pilot ${owner}: rolling restart of ${node}`;
const isOurs = (r: ShutdownRecord, owner: string): boolean => r.reason?.startsWith(`sts-pilot ${owner}:`) ?? false;

/**
 * shutdown (Elasticsearch >= 7.15.2, as ECK restarts nodes): before `next`
 * goes, a node shutdown record of type `restart` tells the cluster it will be
 * back, so its replicas are not rebuilt elsewhere (for `allocation_delay`) and
 * nothing moves; approved when the cluster reports the shutdown prepared
 * (COMPLETE). After `prev` rejoined, its record is removed. STALLED is
 * explained with the cluster's own words.
 */
export function decideShutdown(view: ClusterView, prev: NodeRef | null, next: NodeRef | null, required: Health, step: StepContext = {}): Decision {
  const blocked = precheck(view, prev, next, step);
  if (blocked) return blocked;
  if (view.shutdowns === null) {
    return hold('this cluster has no node shutdown API (Elasticsearch >= 7.15.2 with its x-pack shutdown module): use strategy drain or restart');
  }
  const owner = step.owner ?? 'unknown';
  // Leftovers of the other strategies (the strategy was changed mid-rollout).
  const ourAllocation = view.marker.primariesFor !== undefined && view.allocation?.value === 'primaries';
  const cleanup = mergeWrites(
    exclusionWrite(view.settings, [], view.marker.exclude),
    ourAllocation ? allocationWrite(view, null) : NO_WRITE,
    markerWrite(view, { exclude: [] }),
  );
  if (!isEmptyWrite(cleanup)) return { kind: 'write', write: cleanup, why: 'undo what the drain or restart strategy left' };

  const records = view.shutdowns ?? [];
  const nextNode = next ? view.nodes.find((n) => n.name === next.name) : undefined;
  // Ours, for a node that is a member again and not the one about to go: it is back.
  const done = records.find((r) => isOurs(r, owner) && r.nodeId !== nextNode?.id && view.nodes.some((n) => n.id === r.nodeId));
  if (done) {
    const name = view.nodes.find((n) => n.id === done.nodeId)?.name ?? done.nodeId;
    return { kind: 'request', method: 'DELETE', path: `/_nodes/${encodeURIComponent(done.nodeId)}/shutdown`, why: `remove the shutdown record of ${name}: it is back` };
  }

  if (!next) {
    if (!healthy(view, required)) return healthWait(view, `no shutdown record of sts-pilot's is left; waiting for health ${required}: cluster is ${healthText(view)}`);
    return approve(`no shutdown record of sts-pilot's is left; cluster is ${view.health.status}`);
  }
  const ready = readyToGo(view, next, required, prev);
  if (ready) return ready;
  if (!nextNode) return approve(`${next.name} is not in the cluster (pod ${next.pod} is not Ready): nothing to prepare`);
  const record = records.find((r) => r.nodeId === nextNode.id);
  if (!record) {
    return {
      kind: 'request',
      method: 'PUT',
      path: `/_nodes/${encodeURIComponent(nextNode.id)}/shutdown`,
      body: { type: 'restart', reason: shutdownReason(owner, next.name), ...(step.allocationDelay ? { allocation_delay: step.allocationDelay } : {}) },
      why: `register the restart of ${next.name} with the node shutdown API`,
    };
  }
  if (!isOurs(record, owner) || record.type !== 'restart') {
    return hold(
      `${next.name} already has a node shutdown record of type ${record.type}${record.reason ? ` ("${record.reason}")` : ''}, not sts-pilot's restart: ` +
        'remove it, or let whoever made it finish',
    );
  }
  if (record.status === 'COMPLETE') return approve(`the cluster is ready for ${next.name} to restart (node shutdown: COMPLETE); cluster is ${view.health.status}`);
  if (record.status === 'STALLED') {
    return hold(`the node shutdown of ${next.name} is STALLED${record.explanation ? `: ${record.explanation}` : ''}`);
  }
  return wait(`waiting for the cluster to prepare the restart of ${next.name} (node shutdown: ${record.status})${record.explanation ? `: ${record.explanation}` : ''}`);
}

/** Turns `auto` into the strategy for this cluster: shutdown on Elasticsearch >= 7.15.2 with the API, else drain. */
export function resolveStrategy(option: StrategyOption, view: ClusterView): Strategy {
  if (option !== 'auto') return option;
  if (view.flavor !== 'elasticsearch' || view.shutdowns === null) return 'drain';
  const oldest = versionsOf(view)[0];
  return oldest && (compareVersions(oldest, '7.15.2') ?? -1) >= 0 ? 'shutdown' : 'drain';
}

/** The explanation of `_cluster/allocation/explain` for a copy that stays, in one line. */
export function explainText(e: ExplainAnswer, copy: StuckCopy, max = 3): string | undefined {
  const id = `${copy.index}[${copy.shard}]${copy.primary ? ' (primary)' : ' (replica)'}`;
  if (e.can_remain_on_current_node === 'no' && e.can_move_to_other_node !== 'no') return undefined;
  if (e.can_move_to_other_node !== 'no') return undefined;
  const nodes = (e.node_allocation_decisions ?? []).filter((n) => (n.node_decision ?? 'no') === 'no');
  const why = nodes.slice(0, max).map((n) => {
    const d = (n.deciders ?? []).filter((x) => x.decision === 'NO');
    const text = d.map((x) => `${x.decider}${x.explanation ? ` (${x.explanation.replace(/\s+/g, ' ').slice(0, 160)})` : ''}`).join(', ');
    return `${n.node_name}: ${text || 'no'}`;
  });
  const more = nodes.length > max ? `; and ${nodes.length - max} more` : '';
  return `the drain cannot finish: ${id} cannot move: ${why.length ? why.join('; ') : e.move_explanation ?? 'no node can take it'}${more}`;
}
