import type { AllocationAnswer, CoordinationAnswer, DiskDefaultsAnswer, HealthAnswer, NodeCopiesAnswer, NodesInfoAnswer, SettingsAnswer, ShutdownAnswer, StateAnswer } from './answers.ts';
import type { Health } from './options.ts';
import {
  ALLOCATION_ENABLE,
  effectiveLayer,
  EXCLUDE_NAME,
  type Layer,
  type Marker,
  MARKER_PREFIX,
  ownerOfMarkerKey,
  parseMarker,
  parseNames,
  type SettingsLayers,
} from './settings.ts';

export interface ShardCopy {
  index: string;
  shard: number;
  primary: boolean;
  state: 'STARTED' | 'RELOCATING' | 'INITIALIZING';
  nodeId: string;
}

export interface NodeInfo {
  id: string;
  name: string;
  version?: string;
  /** From the nodes info; undefined when it was not read. */
  roles?: string[];
}

export interface ShutdownRecord {
  nodeId: string;
  type: string;
  reason?: string;
  status: 'NOT_STARTED' | 'IN_PROGRESS' | 'STALLED' | 'COMPLETE';
  explanation?: string;
}

/** Free room per node, from `_cat/allocation`, and the high watermark in force. */
export interface DiskView {
  nodes: { name: string; indicesBytes?: number; usedBytes?: number; availBytes?: number; totalBytes?: number }[];
  /** undefined: the disk threshold decider is off. */
  high?: Watermark;
}
export type Watermark = { kind: 'used-fraction'; value: number; text: string } | { kind: 'free-bytes'; value: number; text: string };

/** Everything a decision looks at, read afresh on every call. */
export interface ClusterView {
  uuid: string;
  /** From the nodes info (`build_flavor` is Elasticsearch's); undefined when not read. */
  flavor?: 'elasticsearch' | 'opensearch';
  health: {
    status: Health;
    nodes: number;
    relocating: number;
    initializing: number;
    unassigned: number;
    unassignedPrimaries?: number;
    /** Red indices, when the cluster is red and we could learn them. */
    redIndices?: string[];
  };
  /** The members, as the elected master lists them. */
  nodes: NodeInfo[];
  /** The elected master's node id. */
  masterId?: string;
  /** Node ids of the last committed voting configuration: the master-eligible nodes a quorum is counted over. */
  voters?: string[];
  /** The voting configuration exclusions in force (nodes on their way out). */
  votingExclusions?: { id?: string; name?: string }[];
  /** Shard copies read (the hook reads those of `next`'s node only); undefined when the call did not need them. */
  shards?: ShardCopy[];
  /** Unassigned copies, when shards were read. */
  unassigned?: { index: string; shard: number; primary: boolean }[];
  /** number_of_replicas per index, when read (restart and shutdown strategies). */
  replicas?: Record<string, number>;
  /** Node shutdown records; undefined when not read, null when the cluster has no shutdown API. */
  shutdowns?: ShutdownRecord[] | null;
  disk?: DiskView;
  settings: SettingsLayers;
  /** The node names excluded from allocation, as in force (transient over persistent). */
  exclusion: string[];
  /** Where `cluster.routing.allocation.enable` is set, if it is, and its value. */
  allocation?: { value: string; layer: Layer };
  markerKey: string;
  marker: Marker;
  /** The markers of other StatefulSets of this cluster (ones that parse). */
  others: { key: string; owner: string; marker: Marker }[];
}

export interface Answers {
  health: HealthAnswer;
  redIndices?: string[];
  settings: SettingsAnswer;
  state: StateAnswer;
  nodesInfo?: NodesInfoAnswer;
  coordination?: CoordinationAnswer;
  copies?: NodeCopiesAnswer;
  replicas?: Record<string, number>;
  shutdowns?: ShutdownAnswer | null;
  allocation?: AllocationAnswer;
  diskDefaults?: DiskDefaultsAnswer;
}

/** The cluster UUID of a cluster that has not formed (no elected master has committed one). */
const NO_UUID = '_na_';

const DISK_ENABLED = 'cluster.routing.allocation.disk.threshold_enabled';
const DISK_HIGH = 'cluster.routing.allocation.disk.watermark.high';

const UNITS: Record<string, number> = { b: 1, kb: 1 << 10, mb: 1 << 20, gb: 1 << 30, tb: 2 ** 40, pb: 2 ** 50 };

/** A disk watermark as Elasticsearch reads it: a percentage or ratio of used disk, or an absolute free space. */
export function parseWatermark(v: string): Watermark | undefined {
  const t = v.trim().toLowerCase();
  let m = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (m) return { kind: 'used-fraction', value: Number(m[1]) / 100, text: v };
  m = /^(0(?:\.\d+)?|1(?:\.0+)?)$/.exec(t);
  if (m) return { kind: 'used-fraction', value: Number(m[1]), text: v };
  m = /^(\d+(?:\.\d+)?)(b|kb|mb|gb|tb|pb)$/.exec(t);
  if (m) return { kind: 'free-bytes', value: Number(m[1]) * (UNITS[m[2] as string] as number), text: v };
  return undefined;
}

function settingIn(s: SettingsLayers, key: string): unknown {
  return s.transient[key] ?? s.persistent[key];
}

/** Put the answers together; an error says what in them makes no sense. */
export function clusterView(a: Answers, markerKey: string, withShards: boolean): { ok: true; view: ClusterView } | { ok: false; error: string } {
  if (a.state.cluster_uuid === NO_UUID) return { ok: false, error: 'the cluster has not formed yet (no cluster UUID)' };
  const settings: SettingsLayers = { persistent: a.settings.persistent, transient: a.settings.transient };
  const exLayer = effectiveLayer(settings, EXCLUDE_NAME);
  const exclusion = parseNames(settings[exLayer][EXCLUDE_NAME]);
  if (!exclusion.ok) return { ok: false, error: `${exLayer} setting ${EXCLUDE_NAME} ${exclusion.error}` };
  for (const layer of ['persistent', 'transient'] as const) {
    const other = parseNames(settings[layer][EXCLUDE_NAME]);
    // A layer not in force is still written when we remove our names from it.
    if (!other.ok) return { ok: false, error: `${layer} setting ${EXCLUDE_NAME} ${other.error}` };
  }
  const marker = parseMarker(settings.persistent[markerKey], markerKey);
  if (!marker.ok) return { ok: false, error: marker.error };
  const others: ClusterView['others'] = [];
  for (const [key, value] of Object.entries(settings.persistent)) {
    if (key === markerKey || !key.startsWith(MARKER_PREFIX)) continue;
    const m = parseMarker(value, key);
    // Another StatefulSet's unreadable marker is its own hook's problem, not ours.
    if (m.ok) others.push({ key, owner: ownerOfMarkerKey(key), marker: m.marker });
  }

  let allocation: ClusterView['allocation'];
  for (const layer of ['transient', 'persistent'] as const) {
    const v = settings[layer][ALLOCATION_ENABLE];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return { ok: false, error: `${layer} setting ${ALLOCATION_ENABLE} is ${JSON.stringify(v).slice(0, 100)}` };
    allocation = { value: v.toLowerCase(), layer };
    break;
  }

  const info = a.nodesInfo?.nodes ?? {};
  const nodes: NodeInfo[] = Object.entries(a.state.nodes).map(([id, n]) => {
    const i = info[id];
    const version = n.version ?? i?.version;
    return { id, name: n.name, ...(version ? { version } : {}), ...(i?.roles ? { roles: [...i.roles].sort() } : {}) };
  });
  const infos = Object.values(info);
  const flavor = infos.length === 0 ? undefined : infos.some((i) => i.build_flavor !== undefined) ? 'elasticsearch' : 'opensearch';

  let shards: ShardCopy[] | undefined;
  let unassigned: ClusterView['unassigned'];
  if (withShards) {
    shards = [];
    const byNode = a.copies?.routing_nodes?.nodes ?? a.state.routing_nodes?.nodes ?? {};
    for (const [nodeId, copies] of Object.entries(byNode)) {
      for (const c of copies) shards.push({ index: c.index, shard: c.shard, primary: c.primary, state: c.state, nodeId });
    }
    unassigned = (a.copies?.routing_nodes?.unassigned ?? []).map((u) => ({ index: u.index, shard: u.shard, primary: u.primary }));
  }

  let disk: DiskView | undefined;
  if (a.allocation) {
    const d = a.diskDefaults?.defaults?.cluster.routing.allocation.disk;
    const enabled = String(settingIn(settings, DISK_ENABLED) ?? d?.threshold_enabled ?? 'true').toLowerCase() !== 'false';
    const highText = String(settingIn(settings, DISK_HIGH) ?? d?.watermark?.high ?? '90%');
    const high = parseWatermark(highText);
    if (enabled && !high) return { ok: false, error: `setting ${DISK_HIGH} is ${JSON.stringify(highText)}, which the hook cannot read` };
    disk = {
      nodes: a.allocation.map((r) => ({
        name: r.node,
        ...(r['disk.indices'] !== undefined ? { indicesBytes: r['disk.indices'] } : {}),
        ...(r['disk.used'] !== undefined ? { usedBytes: r['disk.used'] } : {}),
        ...(r['disk.avail'] !== undefined ? { availBytes: r['disk.avail'] } : {}),
        ...(r['disk.total'] !== undefined ? { totalBytes: r['disk.total'] } : {}),
      })),
      ...(enabled && high ? { high } : {}),
    };
  }

  const h = a.health;
  const voters = a.coordination?.metadata?.cluster_coordination?.last_committed_config;
  const votingExclusions = a.coordination?.metadata?.cluster_coordination?.voting_config_exclusions?.map((x) => ({
    ...(x.node_id && x.node_id !== '_absent_' ? { id: x.node_id } : {}),
    ...(x.node_name && x.node_name !== '_absent_' ? { name: x.node_name } : {}),
  }));
  return {
    ok: true,
    view: {
      uuid: a.state.cluster_uuid,
      ...(flavor ? { flavor } : {}),
      health: {
        status: h.status,
        nodes: h.number_of_nodes,
        relocating: h.relocating_shards,
        initializing: h.initializing_shards,
        unassigned: h.unassigned_shards,
        ...(h.unassigned_primary_shards !== undefined ? { unassignedPrimaries: h.unassigned_primary_shards } : {}),
        ...(a.redIndices ? { redIndices: a.redIndices } : {}),
      },
      nodes,
      ...(a.state.master_node ? { masterId: a.state.master_node } : {}),
      // Elasticsearch writes placeholders for excluded voters; only real ids count.
      ...(voters ? { voters: voters.filter((v) => !v.startsWith('{')) } : {}),
      ...(votingExclusions ? { votingExclusions } : {}),
      ...(shards ? { shards } : {}),
      ...(unassigned ? { unassigned } : {}),
      ...(a.replicas ? { replicas: a.replicas } : {}),
      ...(a.shutdowns !== undefined
        ? {
            shutdowns:
              a.shutdowns === null
                ? null
                : a.shutdowns.nodes.map((r) => ({
                    nodeId: r.node_id,
                    type: r.type.toLowerCase(),
                    ...(r.reason ? { reason: r.reason } : {}),
                    status: r.status,
                    ...(r.shard_migration?.explanation ? { explanation: r.shard_migration.explanation } : {}),
                  })),
          }
        : {}),
      ...(disk ? { disk } : {}),
      settings,
      exclusion: exclusion.names,
      ...(allocation ? { allocation } : {}),
      markerKey,
      marker: marker.marker,
      others,
    },
  };
}
