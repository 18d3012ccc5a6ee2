import type { PartitionState } from './view.ts';

// How the kafka hook's reasons name things: short lists, counts, node ids.

/** "a, b, c and 4 more": names in a reason stay short. */
export function listOf(names: readonly string[], max = 5): string {
  if (names.length === 0) return 'none';
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
export const partitionName = (p: PartitionState): string => `${p.topic}-${p.partition}`;
export const ids = (xs: readonly number[]): string => (xs.length === 0 ? 'none' : [...xs].sort((a, b) => a - b).join(','));

export function describePartitions(ps: readonly PartitionState[], detail: (p: PartitionState) => string): string {
  return listOf(ps.map((p) => `${partitionName(p)} (${detail(p)})`), 4);
}
