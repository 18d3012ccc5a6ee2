import { z } from 'zod';
import { API_GROUP } from '../names.ts';
import { parseDuration } from '../rollout/policies/duration.ts';

/**
 * A MetricCheck (sts-pilot.io/v1alpha1, namespaced): one Prometheus query and
 * the condition its every sample must meet. StatefulSets name checks of their
 * namespace in `sts-pilot.io/metric-checks`; one check can serve many (like an
 * Argo Rollouts AnalysisTemplate). docs/metric-checks.md; docs/decisions.md says
 * why a resource and not annotations.
 *
 * The CRD's OpenAPI schema refuses the same shapes at admission; this schema is
 * the one the controller trusts (an object written before a CRD upgrade, or
 * through a path that skipped validation, still gets a clear reason).
 */
const Duration = (o: { min: number; max: number }, what: string) =>
  z
    .string()
    .regex(/^([0-9]{1,9}|([0-9]{1,5}d)?([0-9]{1,6}h)?([0-9]{1,7}m)?([0-9]{1,9}s)?)$/, `${what} must be a duration such as 30 (seconds), 30s, 5m or 1h`)
    .transform((s, ctx) => {
    const d = parseDuration(s, o);
    if (!d.ok) {
      ctx.addIssue({ code: 'custom', message: `${what} ${d.error}` });
      return z.NEVER;
    }
    return d.seconds;
  });

export const OPERATORS = ['<', '<=', '>', '>=', '==', '!='] as const;
export type Operator = (typeof OPERATORS)[number];

export const MetricCheckSpec = z.strictObject({
  prometheus: z.strictObject({
    /** The Prometheus HTTP API's base, e.g. http://prometheus.monitoring:9090 (Thanos, Mimir, VictoriaMetrics: their PromQL endpoint). */
    address: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), 'must not carry credentials: name a Secret in credentialsSecret'),
    /** Seconds to wait for an answer. */
    timeoutSeconds: z.number().int().min(1).max(300).default(10),
    /** A Secret labelled sts-pilot.io/credentials: "true" with `token` (bearer) or `username` and `password` (basic). */
    credentialsSecret: z.string().min(1).max(253).optional(),
    /** A Secret labelled sts-pilot.io/credentials: "true" with the PEM CA under `ca.crt`. */
    caSecret: z.string().min(1).max(253).optional(),
  }),
  /**
   * PromQL, with {{namespace}}, {{statefulset}}, {{pod}}, {{ordinal}} and
   * {{revision}} replaced (as PromQL string contents): the pod about to move
   * before a step, the pod moved last during its bake.
   */
  query: z.string().min(1).max(8192),
  /** Every sample must satisfy `value <operator> threshold`. */
  successCondition: z.strictObject({ operator: z.enum(OPERATORS), threshold: z.number() }),
  /** before: the pod about to move and the set are healthy (hold while not). bake: the moved pod stays healthy for the StatefulSet's bake time. */
  phases: z.array(z.enum(['before', 'bake'])).min(1).max(2).default(['before', 'bake']),
  /** How often a bake samples the query (the range query's step). */
  interval: Duration({ min: 1, max: 3600 }, 'interval').default(30),
  /** Failed samples a bake tolerates; one more fails the step. */
  failureLimit: z.number().int().min(0).max(1000).default(0),
});
export type MetricCheckSpec = z.infer<typeof MetricCheckSpec>;

export const METRIC_CHECK_KIND = 'MetricCheck';
export const METRIC_CHECK_PLURAL = 'metricchecks';

/** The StatefulSet's annotations for metric checks. */
export const CHECK_ANNOTATIONS = {
  checks: `${API_GROUP}/metric-checks`,
  bake: `${API_GROUP}/bake`,
  onFailure: `${API_GROUP}/on-check-failure`,
  /** Written by the controller with a rollback it made: that rollback's steps are not checked (it goes back to a revision that ran before). */
  rolledBack: `${API_GROUP}/check-rollback`,
} as const;

export const ON_FAILURE = ['halt', 'hold', 'rollback'] as const;
export type OnFailure = (typeof ON_FAILURE)[number];

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export interface CheckConfig {
  names: string[];
  bakeSeconds: number;
  onFailure: OnFailure;
  /** The rollback this controller made, if any: {from: the failed revision, to: the revision it went back to}. */
  rolledBack?: { from: string; to: string } | undefined;
}

/** The StatefulSet's check annotations; undefined when it names no checks. Pure; never throws. */
export function readCheckConfig(annotations: Record<string, string> | undefined): { ok: true; config: CheckConfig | undefined } | { ok: false; error: string } {
  const a = annotations ?? {};
  const raw = a[CHECK_ANNOTATIONS.checks];
  if (raw === undefined || raw.trim() === '') return { ok: true, config: undefined };
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = names.find((n) => !NAME.test(n));
  if (bad !== undefined) return { ok: false, error: `annotation ${CHECK_ANNOTATIONS.checks}: ${JSON.stringify(bad.slice(0, 60))} is not a MetricCheck name` };
  if (new Set(names).size !== names.length) return { ok: false, error: `annotation ${CHECK_ANNOTATIONS.checks} names a check twice` };
  if (names.length > 20) return { ok: false, error: `annotation ${CHECK_ANNOTATIONS.checks} names ${names.length} checks; at most 20` };
  let bakeSeconds = 0;
  const bake = a[CHECK_ANNOTATIONS.bake];
  if (bake !== undefined) {
    const d = parseDuration(bake, { min: 0, max: 7 * 86_400 });
    if (!d.ok) return { ok: false, error: `annotation ${CHECK_ANNOTATIONS.bake} ${d.error}` };
    bakeSeconds = d.seconds;
  }
  const on = (a[CHECK_ANNOTATIONS.onFailure] ?? 'halt').trim();
  if (!(ON_FAILURE as readonly string[]).includes(on)) return { ok: false, error: `annotation ${CHECK_ANNOTATIONS.onFailure} must be halt, hold or rollback, got ${JSON.stringify(on.slice(0, 40))}` };
  let rolledBack: CheckConfig['rolledBack'];
  const rb = a[CHECK_ANNOTATIONS.rolledBack];
  if (rb) {
    const r = z.strictObject({ from: z.string(), to: z.string() }).safeParse(safeJson(rb));
    if (r.success) rolledBack = r.data;
  }
  return { ok: true, config: { names, bakeSeconds, onFailure: on as OnFailure, rolledBack } };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return undefined;
  }
}

/** A MetricCheck object as read: its spec parsed, or why it cannot be. */
export function parseMetricCheck(name: string, obj: unknown): { ok: true; spec: MetricCheckSpec } | { ok: false; error: string } {
  const spec = (obj as { spec?: unknown } | undefined)?.spec;
  const r = MetricCheckSpec.safeParse(spec);
  if (r.success) return { ok: true, spec: r.data };
  return { ok: false, error: `MetricCheck ${name} is invalid: ${z.prettifyError(r.error).replace(/\s+/g, ' ').slice(0, 400)}` };
}
