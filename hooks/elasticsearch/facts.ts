import type { Health } from './options.ts';
import type { ClusterView } from './view.ts';

// Facts about a cluster the decisions share: health, versions, roles, and the
// words reasons are written in. Pure.

const RANK: Record<Health, number> = { red: 0, yellow: 1, green: 2 };
export const healthy = (view: ClusterView, required: Health): boolean => RANK[view.health.status] >= RANK[required];

/** "8.19.21" -> [8, 19, 21]; anything after the numbers (-SNAPSHOT) is ignored. */
export function versionParts(v: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** <0, 0, >0 as a is older, the same, newer than b; undefined when either is not a version. */
export function compareVersions(a: string, b: string): number | undefined {
  const x = versionParts(a);
  const y = versionParts(b);
  if (!x || !y) return undefined;
  for (let i = 0; i < 3; i++) if ((x[i] as number) !== (y[i] as number)) return (x[i] as number) - (y[i] as number);
  return 0;
}

/** The versions the members run, oldest first. */
export function versionsOf(view: ClusterView): string[] {
  const vs = [...new Set(view.nodes.map((n) => n.version).filter((v): v is string => !!v))];
  return vs.sort((a, b) => compareVersions(a, b) ?? (a < b ? -1 : 1));
}

/** Members run more than one version: an upgrade is under way. */
export const upgrading = (view: ClusterView): boolean => versionsOf(view).length > 1;

/**
 * Health good enough for a node to go. Also yellow while an upgrade is under
 * way (ECK's rule): replicas of shards whose primary is on a newer node cannot
 * be placed on an older one, so the cluster stays yellow until the last old
 * node is gone; yellow means every primary is assigned, and with nothing
 * initializing or relocating, no copy is in flight.
 */
export function stepHealthy(view: ClusterView, required: Health): boolean {
  if (healthy(view, required)) return true;
  return view.health.status === 'yellow' && upgrading(view) && view.health.initializing === 0 && view.health.relocating === 0;
}

const MASTER_ROLES = ['master', 'cluster_manager'];
export const masterEligible = (n: { roles?: string[] }): boolean => (n.roles ?? []).some((r) => MASTER_ROLES.includes(r));
export const holdsData = (n: { roles?: string[] }): boolean => (n.roles ?? []).some((r) => r === 'data' || r.startsWith('data_'));

/** "a, b, c and 4 more": names in a reason stay short. */
export function listOf(names: readonly string[], max = 5): string {
  if (names.length === 0) return 'none';
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

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

