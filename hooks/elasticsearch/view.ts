import type { HealthAnswer, SettingsAnswer, StateAnswer } from './answers.ts';
import type { Health } from './options.ts';
import {
  ALLOCATION_ENABLE,
  effectiveLayer,
  EXCLUDE_NAME,
  type Layer,
  type Marker,
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

/** Everything a decision looks at, read afresh on every call. */
export interface ClusterView {
  uuid: string;
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
  nodes: { id: string; name: string; version?: string }[];
  /** Every assigned shard copy; undefined when the call did not need it. */
  shards?: ShardCopy[];
  settings: SettingsLayers;
  /** The node names excluded from allocation, as in force (transient over persistent). */
  exclusion: string[];
  /** Where `cluster.routing.allocation.enable` is set, if it is, and its value. */
  allocation?: { value: string; layer: Layer };
  markerKey: string;
  marker: Marker;
}

export interface Answers {
  health: HealthAnswer;
  redIndices?: string[];
  settings: SettingsAnswer;
  state: StateAnswer;
}

/** The cluster UUID of a cluster that has not formed (no elected master has committed one). */
const NO_UUID = '_na_';

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

  let allocation: ClusterView['allocation'];
  for (const layer of ['transient', 'persistent'] as const) {
    const v = settings[layer][ALLOCATION_ENABLE];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return { ok: false, error: `${layer} setting ${ALLOCATION_ENABLE} is ${JSON.stringify(v).slice(0, 100)}` };
    allocation = { value: v.toLowerCase(), layer };
    break;
  }

  const nodes = Object.entries(a.state.nodes).map(([id, n]) => ({ id, name: n.name, ...(n.version ? { version: n.version } : {}) }));
  let shards: ShardCopy[] | undefined;
  if (withShards) {
    shards = [];
    for (const [nodeId, copies] of Object.entries(a.state.routing_nodes?.nodes ?? {})) {
      for (const c of copies) shards.push({ index: c.index, shard: c.shard, primary: c.primary, state: c.state, nodeId });
    }
  }
  const h = a.health;
  return {
    ok: true,
    view: {
      uuid: a.state.cluster_uuid,
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
      ...(shards ? { shards } : {}),
      settings,
      exclusion: exclusion.names,
      ...(allocation ? { allocation } : {}),
      markerKey,
      marker: marker.marker,
    },
  };
}
