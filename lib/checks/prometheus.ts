import { z } from 'zod';
import type { Egress } from '../egress.ts';
import { describeError } from '../errors.ts';
import { httpRequest } from '../http.ts';
import { shortLine } from '../sanitize.ts';
import { refusalOf } from '../url-policy.ts';
import type { Sample, Series } from './evaluate.ts';

/**
 * The provider: the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`),
 * which Thanos, Mimir and VictoriaMetrics serve too, so another backend is an
 * address, not code. Every failure is a QueryError whose message is one short
 * line people can read in an Event; nothing else leaves this module.
 */
export class QueryError extends Error {
  override name = 'QueryError';
}

export interface PrometheusTarget {
  address: string;
  timeoutSeconds: number;
  /** The Authorization header (bearer or basic), built from an allowed Secret. */
  authorization?: string | undefined;
  /** PEM bundle to trust for https. */
  ca?: string | undefined;
}

// Prometheus writes sample values as strings ("1.5", "NaN", "+Inf").
const Value = z.tuple([z.number(), z.string()]);
const Answer = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.discriminatedUnion('resultType', [
      z.object({ resultType: z.literal('vector'), result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: Value })).max(10_000) }),
      z.object({ resultType: z.literal('scalar'), result: Value }),
      z.object({ resultType: z.literal('matrix'), result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(Value).max(20_000) })).max(1000) }),
      z.object({ resultType: z.literal('string'), result: Value }),
    ]),
    warnings: z.array(z.string()).optional(),
  }),
  z.object({ status: z.literal('error'), errorType: z.string().optional(), error: z.string().optional() }),
]);

const num = (s: string): number => (s === '+Inf' ? Infinity : s === '-Inf' ? -Infinity : Number(s));

/** The address as people may see it: no userinfo, no query. */
export function displayAddress(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/$/, '')}`;
  } catch {
    return '(invalid address)';
  }
}

async function get(t: PrometheusTarget, path: string, params: Record<string, string>, egress: Egress, signal: AbortSignal): Promise<z.infer<typeof Answer> & { status: 'success' }> {
  const base = t.address.replace(/\/+$/, '');
  const url = `${base}${path}?${new URLSearchParams(params).toString()}`;
  const where = displayAddress(t.address);
  let res;
  try {
    res = await httpRequest(url, {
      timeoutMs: t.timeoutSeconds * 1000,
      signal,
      dispatcher: egress.dispatcher(t.ca),
      maxBytes: 8 << 20,
      ...(t.authorization ? { headers: { authorization: t.authorization } } : {}),
    });
  } catch (err) {
    const refused = refusalOf(err);
    if (refused) throw new QueryError(`Prometheus at ${where} is not allowed: ${refused.message}`);
    throw new QueryError(`Prometheus at ${where} did not answer: ${describeError(err, 200)}`);
  }
  if (res.truncated) throw new QueryError(`Prometheus at ${where}: the answer is larger than 8 MiB; make the query return fewer series`);
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    throw new QueryError(`Prometheus at ${where} answered ${res.status}, not JSON: ${shortLine(res.text, 120)}`);
  }
  const a = Answer.safeParse(body);
  if (!a.success) throw new QueryError(`Prometheus at ${where} answered ${res.status} with an unexpected body: ${z.prettifyError(a.error).replace(/\s+/g, ' ').slice(0, 200)}`);
  if (a.data.status === 'error') throw new QueryError(`Prometheus at ${where} refused the query (${res.status} ${a.data.errorType ?? 'error'}): ${shortLine(a.data.error ?? '', 300)}`);
  return a.data;
}

/** An instant query at `time` (unix seconds; now when omitted). */
export async function instantQuery(t: PrometheusTarget, query: string, egress: Egress, signal: AbortSignal, time?: number): Promise<Sample[]> {
  const a = await get(t, '/api/v1/query', { query, ...(time !== undefined ? { time: String(time) } : {}) }, egress, signal);
  const d = a.data;
  if (d.resultType === 'vector') return d.result.map((r) => ({ labels: r.metric, value: num(r.value[1]) }));
  if (d.resultType === 'scalar') return [{ labels: {}, value: num(d.result[1]) }];
  throw new QueryError(`the query returns a ${d.resultType}; a check needs an instant vector or a scalar`);
}

/** A range query from `start` to `end` (unix seconds) every `step` seconds. */
export async function rangeQuery(t: PrometheusTarget, query: string, range: { start: number; end: number; step: number }, egress: Egress, signal: AbortSignal): Promise<Series[]> {
  const a = await get(t, '/api/v1/query_range', { query, start: String(range.start), end: String(range.end), step: String(range.step) }, egress, signal);
  const d = a.data;
  if (d.resultType === 'matrix') return d.result.map((r) => ({ labels: r.metric, points: r.values.map(([ts, v]): [number, number] => [ts, num(v)]) }));
  if (d.resultType === 'scalar') return [{ labels: {}, points: [[d.result[0], num(d.result[1])]] }];
  throw new QueryError(`the query returns a ${d.resultType} over a range; a check needs a vector or a scalar`);
}
