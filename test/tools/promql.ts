// Enough of PromQL to say which metrics and labels an expression reads: the
// dashboard and the alerts must not name a series the controller does not export.

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'inf', 'nan', 'Inf', 'NaN']);

export interface Selectors {
  metrics: string[];
  labels: string[];
}

/** Metric names (selectors) and label names (matchers, by/without/on/ignoring lists) in a PromQL expression. Pure. */
export function selectorsOf(expr: string): Selectors {
  const labels = new Set<string>();
  // Strings first: they may hold anything, braces included.
  let e = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  for (const m of e.matchAll(/\{([^}]*)\}/g)) {
    for (const l of (m[1] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) if (l[1] && l[1] !== '__name__') labels.add(l[1]);
  }
  for (const m of e.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    for (const l of (m[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) labels.add(l);
  }
  e = e
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\b/g, ' ')
    .replace(/\boffset\s+-?[0-9a-z]+/g, ' ')
    .replace(/\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?/g, ' '); // Grafana variables
  const metrics = new Set<string>();
  for (const m of e.matchAll(/(?<![0-9A-Za-z_:.])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = m[0];
    if (KEYWORDS.has(name)) continue;
    if (e.slice((m.index ?? 0) + name.length).trimStart().startsWith('(')) continue; // a function or an aggregation
    metrics.add(name);
  }
  return { metrics: [...metrics].sort(), labels: [...labels].sort() };
}

export interface Exposition {
  /** Metric family -> its type. */
  families: Map<string, string>;
  /** Sample name (with _bucket/_sum/_count) -> the label names seen on it. */
  samples: Map<string, Set<string>>;
}

/** Parse Prometheus' text exposition format (what /metrics serves). */
export function parseExposition(text: string): Exposition {
  const families = new Map<string, string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)/.exec(line);
    if (t?.[1] && t[2]) families.set(t[1], t[2]);
    if (!line || line.startsWith('#')) continue;
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s/.exec(line);
    if (!s?.[1]) continue;
    const set = samples.get(s[1]) ?? new Set<string>();
    for (const l of (s[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) if (l[1]) set.add(l[1]);
    samples.set(s[1], set);
  }
  return { families, samples };
}

/** The family a sample name belongs to (histograms and summaries expose name_bucket, _sum, _count). */
export function familyOf(name: string, families: ReadonlyMap<string, string>): string | undefined {
  if (families.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m?.[1] && ['histogram', 'summary'].includes(families.get(m[1]) ?? '') ? m[1] : undefined;
}
