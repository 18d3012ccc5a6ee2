import type { ClusterView, ShardCopy } from './view.ts';

// What is away, or about to be: the only-copy and quorum checks count a node on
// its way out (another StatefulSet's step, a shutdown record, a removal) as gone
// before it leaves. Pure.

/**
 * Shard copies on a node whose (index, shard) has no other active copy:
 * restarting the node takes them offline. With `view.replicas` (what the hook
 * reads: one node's copies), a copy is alone when its index has as many
 * unassigned copies of that shard as it has replicas; without (every copy of
 * the cluster given), when no other node holds an active copy.
 */
export function soleCopies(view: Pick<ClusterView, 'shards' | 'replicas' | 'unassigned'>, nodeId: string, away: ReadonlySet<string> = new Set()): ShardCopy[] {
  const shards = view.shards ?? [];
  const key = (s: { index: string; shard: number }) => `${s.index}\u0000${s.shard}`;
  const active = (s: ShardCopy) => s.state === 'STARTED' || s.state === 'RELOCATING';
  const on = shards.filter((s) => s.nodeId === nodeId && active(s));
  const replicas = view.replicas;
  if (!replicas) {
    const elsewhere = new Set(shards.filter((s) => s.nodeId !== nodeId && !away.has(s.nodeId) && active(s)).map(key));
    return on.filter((s) => !elsewhere.has(key(s)));
  }
  const unassigned = new Map<string, number>();
  for (const u of view.unassigned ?? []) unassigned.set(key(u), (unassigned.get(key(u)) ?? 0) + 1);
  // A copy on a node on its way out (read with next's: ReadPlan.alsoRead) counts for nothing.
  const leaving = new Map<string, number>();
  for (const c of shards) if (away.has(c.nodeId) && c.nodeId !== nodeId && active(c)) leaving.set(key(c), (leaving.get(key(c)) ?? 0) + 1);
  // An index unknown to the replica read was created since: count it alone until the next read.
  return on.filter((s) => (replicas[s.index] ?? 0) - (unassigned.get(key(s)) ?? 0) - (leaving.get(key(s)) ?? 0) <= 0);
}

/**
 * Nodes on their way out, other than `except`: a step of another StatefulSet
 * has excluded them from allocation (drain) or set allocation to primaries for
 * them (restart), they have a node shutdown record, or they are excluded from
 * the voting configuration (a removal). They count as away in the quorum and
 * the only-copy checks before they actually leave. Names, with why.
 */
export function inFlight(view: ClusterView, ...except: (string | undefined)[]): { name: string; why: string }[] {
  const out = new Map<string, string>();
  const add = (name: string | undefined, why: string): void => {
    if (name && !except.includes(name) && !out.has(name)) out.set(name, why);
  };
  for (const o of view.others) {
    for (const n of o.marker.exclude) add(n, `being drained for ${o.owner}`);
    add(o.marker.primariesFor, `restarting for ${o.owner}`);
  }
  for (const r of view.shutdowns ?? []) add(view.nodes.find((n) => n.id === r.nodeId)?.name, `has a node shutdown record (${r.type})`);
  for (const x of view.votingExclusions ?? []) add(x.name ?? view.nodes.find((n) => n.id === x.id)?.name, 'is excluded from the voting configuration');
  return [...out].map(([name, why]) => ({ name, why }));
}

