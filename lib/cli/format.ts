// Small text helpers shared by the CLI's renderers. Pure, so they are table-tested.

// One duration format for the CLI and the policies' messages.
export { formatDuration } from '../rollout/policies/duration.ts';

/** Width of the revision column: enough to tell revisions apart, like a short git hash. */
export const SHORT_REVISION = 8;

/**
 * `controller-revision-hash` values are `<statefulset>-<hash>`; the name repeats
 * on every row, so show only the start of the hash.
 */
export function shortRevision(revision: string | undefined, stsName: string): string {
  if (!revision) return '?';
  const hash = revision.startsWith(`${stsName}-`) ? revision.slice(stsName.length + 1) : revision;
  return hash.slice(0, SHORT_REVISION);
}

/** "[##---]": one mark per pod, so a person sees the rollout's shape; none past 40 pods. */
export function progressBar(done: number, total: number): string {
  if (total <= 0 || total > 40) return '';
  return `[${'#'.repeat(Math.min(done, total))}${'-'.repeat(Math.max(0, total - done))}]`;
}

/** Rows of cells, left-aligned in columns; trailing spaces trimmed. */
export function columns(rows: readonly (readonly string[])[], gap = 2): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + gap))).join('').trimEnd());
}
