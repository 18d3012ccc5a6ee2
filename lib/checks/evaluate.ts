import { formatDuration } from '../rollout/policies/duration.ts';
import type { MetricCheckSpec, Operator } from './schema.ts';

/** One sample of an instant vector (or a scalar, with no labels). NaN is kept: it is inconclusive, not a number to compare. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** One series of a range query. */
export interface Series {
  labels: Record<string, string>;
  /** [unix seconds, value] */
  points: [number, number][];
}

export type Condition = MetricCheckSpec['successCondition'];

export type Judgement = { result: 'pass' | 'fail' | 'inconclusive'; text: string; value?: number };

export function meets(value: number, c: Condition): boolean {
  const t = c.threshold;
  const ops: Record<Operator, boolean> = { '<': value < t, '<=': value <= t, '>': value > t, '>=': value >= t, '==': value === t, '!=': value !== t };
  return ops[c.operator];
}

export const conditionText = (c: Condition): string => `${c.operator} ${c.threshold}`;

/** `{pod="web-2"}`: the labels that tell which series a value came from, short. */
export function labelText(labels: Record<string, string>): string {
  const e = Object.entries(labels).filter(([k]) => k !== '__name__');
  if (e.length === 0) return '';
  const s = `{${e.map(([k, v]) => `${k}="${v}"`).join(',')}}`;
  return s.length > 160 ? `${s.slice(0, 159)}…}` : s;
}

const show = (v: number): string => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4))));

/**
 * An instant query's answer: every sample must meet the condition. No sample,
 * or a NaN among them (0/0: no traffic), is inconclusive: the query cannot say
 * the release behaves, so it never passes. Pure.
 */
export function judgeInstant(samples: readonly Sample[], c: Condition): Judgement {
  if (samples.length === 0) return { result: 'inconclusive', text: 'no data (the query returned no series)' };
  const failed = samples.find((s) => !Number.isNaN(s.value) && !meets(s.value, c));
  if (failed) return { result: 'fail', value: failed.value, text: `${show(failed.value)}${labelText(failed.labels)}, not ${conditionText(c)}` };
  const nan = samples.find((s) => Number.isNaN(s.value));
  if (nan) return { result: 'inconclusive', text: `NaN${labelText(nan.labels)} (no data to divide, e.g. no traffic)` };
  const worst = samples.reduce((w, s) => (Math.abs(s.value - c.threshold) < Math.abs(w.value - c.threshold) ? s : w));
  return { result: 'pass', value: worst.value, text: `${show(worst.value)}${samples.length > 1 ? ` (closest of ${samples.length} series)` : ''} ${conditionText(c)}` };
}

/** What a bake's range query saw, sample time by sample time. */
export interface BakeCount {
  passed: number;
  failed: number;
  inconclusive: number;
  /** The first failed sample. */
  firstFailure?: { at: number; value: number; labels: Record<string, string> } | undefined;
}

/**
 * Count a range query's sample times from `from` to `to` (unix seconds) every
 * `step`: a time fails when any series fails there, passes when every series
 * there has a number that meets the condition, and is inconclusive otherwise
 * (no series has a point, or a NaN). Pure.
 */
export function countBake(series: readonly Series[], c: Condition, from: number, to: number, step: number): BakeCount {
  const out: BakeCount = { passed: 0, failed: 0, inconclusive: 0 };
  const at = new Map<number, { labels: Record<string, string>; value: number }[]>();
  for (const s of series) {
    for (const [t, v] of s.points) {
      const key = Math.round(t * 1000);
      const list = at.get(key) ?? [];
      list.push({ labels: s.labels, value: v });
      at.set(key, list);
    }
  }
  for (let t = from; t <= to + 1e-9; t += step) {
    const here = at.get(Math.round(t * 1000)) ?? [];
    const bad = here.find((x) => !Number.isNaN(x.value) && !meets(x.value, c));
    if (bad) {
      out.failed++;
      out.firstFailure ??= { at: t, value: bad.value, labels: bad.labels };
    } else if (here.length === 0 || here.some((x) => Number.isNaN(x.value))) out.inconclusive++;
    else out.passed++;
  }
  return out;
}

export type BakeVerdict = { says: 'pass' | 'fail' | 'hold'; text: string; retryAfterMs?: number; /** the bake is still running: a routine wait */ baking?: boolean };

/**
 * The bake of the pod moved last: its samples since it became Ready must meet
 * the condition for `bakeSeconds`, with at most `failureLimit` failures. It
 * fails as soon as the limit is passed (no need to wait out the bake). Samples
 * without data are tolerated only if the value now is conclusive and passes:
 * the bake window is fixed, so waiting would not bring them back. Pure.
 */
export function bakeVerdict(o: {
  pod: string;
  count: BakeCount;
  failureLimit: number;
  readyAt: number;
  bakeSeconds: number;
  now: number;
  intervalSeconds: number;
  condition: Condition;
  /** The instant value now, asked only once the bake time is over. */
  latest?: Judgement | undefined;
}): BakeVerdict {
  const { count: n } = o;
  const tally = `${n.passed} passed, ${n.failed} failed (limit ${o.failureLimit}), ${n.inconclusive} without data`;
  if (n.failed > o.failureLimit) {
    const f = n.firstFailure;
    const when = f ? ` at ${new Date(f.at * 1000).toISOString()}` : '';
    return { says: 'fail', text: `pod ${o.pod} failed its bake: ${f ? `${show(f.value)}${labelText(f.labels)}${when}` : 'a sample'}, not ${conditionText(o.condition)}; ${tally}` };
  }
  const end = o.readyAt + o.bakeSeconds * 1000;
  if (o.now < end) {
    return { says: 'hold', baking: true, text: `pod ${o.pod} is baking: ${formatDuration(end - o.now)} left of ${formatDuration(o.bakeSeconds * 1000)}; ${tally}`, retryAfterMs: Math.min(end - o.now, o.intervalSeconds * 1000) };
  }
  if (n.inconclusive === 0) return { says: 'pass', text: `pod ${o.pod} baked ${formatDuration(o.bakeSeconds * 1000)}: ${tally}` };
  const l = o.latest;
  if (l?.result === 'pass') return { says: 'pass', text: `pod ${o.pod} baked ${formatDuration(o.bakeSeconds * 1000)}: ${tally}; the value now passes (${l.text})` };
  if (l?.result === 'fail') return { says: 'fail', text: `pod ${o.pod} failed its bake: the value now is ${l.text}; ${tally}` };
  return { says: 'hold', text: `pod ${o.pod} baked ${formatDuration(o.bakeSeconds * 1000)} with samples without data (${tally}), and the value now is inconclusive: ${l?.text ?? 'not asked'}`, retryAfterMs: o.intervalSeconds * 1000 };
}

/** {{namespace}} {{statefulset}} {{pod}} {{ordinal}} {{revision}}, each escaped as PromQL double-quoted string content. */
export function renderQuery(query: string, vars: Readonly<Record<'namespace' | 'statefulset' | 'pod' | 'ordinal' | 'revision', string>>): { ok: true; query: string } | { ok: false; error: string } {
  let unknown: string | undefined;
  const out = query.replace(/\{\{\s*([a-zA-Z]+)\s*\}\}/g, (m, name: string) => {
    if (!(name in vars)) {
      unknown ??= name;
      return m;
    }
    return (vars as Record<string, string>)[name]!.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  });
  if (unknown !== undefined) return { ok: false, error: `the query uses {{${unknown}}}; known: {{namespace}} {{statefulset}} {{pod}} {{ordinal}} {{revision}}` };
  return { ok: true, query: out };
}
