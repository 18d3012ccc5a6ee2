import { z } from 'zod';

// The cluster settings this hook reads and writes. They are its only state: every
// call reads them afresh, so a controller restart loses nothing.
export const EXCLUDE_NAME = 'cluster.routing.allocation.exclude._name';
export const ALLOCATION_ENABLE = 'cluster.routing.allocation.enable';

/**
 * What the hook has changed in the cluster for one StatefulSet, kept in the
 * cluster itself: the node names it added to the exclusion (a person's own
 * exclusions are never listed, so never removed), and, for the restart
 * strategy, the node whose restart it set replica allocation to `primaries`
 * for (so a repeated call for the same step does not undo it, and the call
 * for the step after knows to re-enable it).
 */
export const Marker = z.strictObject({
  exclude: z.array(z.string().min(1)).default([]),
  primariesFor: z.string().min(1).optional(),
  /** Scale-down: the master-eligible nodes the hook excluded from the voting configuration (hooks/elasticsearch/removal.ts). */
  voting: z.array(z.string().min(1)).optional(),
});
export type Marker = z.infer<typeof Marker>;

export const EMPTY_MARKER: Marker = { exclude: [] };

/**
 * The marker's setting. `cluster.metadata.*` is the one settings namespace both
 * Elasticsearch and OpenSearch accept free values under (any other unknown key
 * is refused); its suffix may hold only letters, digits, -, _ and dots. A
 * namespace has no dots and no _, and a StatefulSet name no _: so `_` separates,
 * and a dot in the name becomes `_`, without two StatefulSets ever sharing a key.
 * Dots are avoided because they would nest the key when settings are shown unflattened.
 */
export const MARKER_PREFIX = 'cluster.metadata.sts-pilot_';

export function markerKey(namespace: string, statefulSet: string): string {
  return `${MARKER_PREFIX}${namespace}_${statefulSet.replaceAll('.', '_')}`;
}

/** `namespace/statefulset` of a marker key (a `.` of the name reads as `_`: the key cannot tell them apart). */
export function ownerOfMarkerKey(key: string): string {
  const rest = key.slice(MARKER_PREFIX.length);
  const i = rest.indexOf('_');
  return i < 0 ? rest : `${rest.slice(0, i)}/${rest.slice(i + 1)}`;
}

export type Layer = 'persistent' | 'transient';

/** Flat settings, as `GET _cluster/settings?flat_settings=true` shows them. */
export interface SettingsLayers {
  persistent: Record<string, unknown>;
  transient: Record<string, unknown>;
}

/** A `PUT _cluster/settings` body: null removes a setting. */
export interface SettingsWrite {
  persistent: Record<string, string | null>;
  transient: Record<string, string | null>;
}

/** A node-name list setting: comma-separated (an array is accepted, as the API is). */
const NameList = z.union([z.string(), z.array(z.string())]);

export function parseNames(value: unknown): { ok: true; names: string[] } | { ok: false; error: string } {
  if (value === undefined || value === null) return { ok: true, names: [] };
  const r = NameList.safeParse(value);
  if (!r.success) return { ok: false, error: `is ${JSON.stringify(value).slice(0, 100)}, not a list of names` };
  const parts = (typeof r.data === 'string' ? r.data.split(',') : r.data).map((s) => s.trim()).filter((s) => s !== '');
  return { ok: true, names: [...new Set(parts)] };
}

export function joinNames(names: readonly string[]): string | null {
  return names.length === 0 ? null : names.join(',');
}

/**
 * Transient settings override persistent ones, key by key: the layer that
 * decides a key's value is the transient one when it has the key.
 */
export function effectiveLayer(s: SettingsLayers, key: string): Layer {
  return s.transient[key] !== undefined && s.transient[key] !== null ? 'transient' : 'persistent';
}

export function parseMarker(value: unknown, key: string): { ok: true; marker: Marker } | { ok: false; error: string } {
  if (value === undefined || value === null) return { ok: true, marker: EMPTY_MARKER };
  let json: unknown;
  try {
    json = JSON.parse(String(value));
  } catch {
    return { ok: false, error: `setting ${key} is not what sts-pilot writes (not JSON); remove it once no rollout is running` };
  }
  const r = Marker.safeParse(json);
  if (!r.success) return { ok: false, error: `setting ${key} is not what sts-pilot writes (${z.prettifyError(r.error).replace(/\s+/g, ' ')})` };
  return { ok: true, marker: r.data };
}

/** The marker's value; null (remove the setting) when the hook has nothing left in the cluster. */
export function encodeMarker(m: Marker): string | null {
  const voting = m.voting?.length ? { voting: m.voting } : {};
  if (m.exclude.length === 0 && m.primariesFor === undefined && !m.voting?.length) return null;
  return JSON.stringify(m.primariesFor === undefined ? { exclude: m.exclude, ...voting } : { exclude: m.exclude, primariesFor: m.primariesFor, ...voting });
}

/**
 * The exclusion change that adds `add` to the layer in force (in any other it
 * would have no effect) and takes `remove` out. The hook only ever adds to the
 * layer in force, so that is where its names are taken from; only a name that
 * layer lacks (a person moved the list between layers since) is taken from the
 * other one. So a person's own copy of a name in the layer not in force is
 * never touched. Names not in `remove` stay as they are, whoever set them.
 * Empty when nothing changes.
 */
export function exclusionWrite(s: SettingsLayers, add: readonly string[], remove: readonly string[]): SettingsWrite {
  const out: SettingsWrite = { persistent: {}, transient: {} };
  const target = effectiveLayer(s, EXCLUDE_NAME);
  const other: Layer = target === 'transient' ? 'persistent' : 'transient';
  const before: Record<Layer, string[] | undefined> = { persistent: undefined, transient: undefined };
  for (const layer of ['persistent', 'transient'] as const) {
    const parsed = parseNames(s[layer][EXCLUDE_NAME]);
    // An unreadable value is reported by the caller before it gets here; never overwrite it.
    before[layer] = parsed.ok ? parsed.names : undefined;
  }
  const after = { persistent: [...(before.persistent ?? [])], transient: [...(before.transient ?? [])] };
  for (const n of remove) {
    const from = after[target].includes(n) ? target : after[other].includes(n) ? other : undefined;
    if (from) after[from] = after[from].filter((x) => x !== n);
  }
  for (const n of add) if (!after[target].includes(n)) after[target].push(n);
  for (const layer of ['persistent', 'transient'] as const) {
    const was = before[layer];
    if (!was) continue;
    // Only a real change is written: a layer we do not touch keeps its exact text.
    const now = after[layer];
    if (now.length !== was.length || now.some((n, i) => n !== was[i])) out[layer][EXCLUDE_NAME] = joinNames(now);
  }
  return out;
}

export function mergeWrites(...ws: SettingsWrite[]): SettingsWrite {
  const out: SettingsWrite = { persistent: {}, transient: {} };
  for (const w of ws) {
    Object.assign(out.persistent, w.persistent);
    Object.assign(out.transient, w.transient);
  }
  return out;
}

export function isEmptyWrite(w: SettingsWrite): boolean {
  return Object.keys(w.persistent).length === 0 && Object.keys(w.transient).length === 0;
}
