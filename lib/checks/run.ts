import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { Egress } from '../egress.ts';
import type { SecretReader } from '../hook.ts';
import { HookNotReady } from '../hook.ts';
import { describeError } from '../errors.ts';
import { REVISION_LABEL } from '../names.ts';
import { bakeVerdict, countBake, judgeInstant, renderQuery } from './evaluate.ts';
import { instantQuery, type PrometheusTarget, QueryError, rangeQuery } from './prometheus.ts';
import { type CheckConfig, type MetricCheckSpec, parseMetricCheck } from './schema.ts';

/** What the checks say about one step. fail: a bake failed, and the StatefulSet's on-check-failure decides what follows. */
export type ChecksOutcome = { says: 'pass'; text: string } | { says: 'hold'; text: string; retryAfterMs?: number; routine?: boolean } | { says: 'fail'; check: string; text: string };

export interface CheckDeps {
  /** The MetricCheck object of the StatefulSet's namespace, or undefined when there is none by that name. */
  readCheck(namespace: string, name: string): Promise<unknown>;
  secrets: SecretReader;
  egress: Egress;
  signal: AbortSignal;
  now: () => number;
  /** Counted per check and result, for the metrics. */
  observe?: (check: string, phase: 'before' | 'bake', result: 'pass' | 'fail' | 'inconclusive' | 'error') => void;
}

/** Most points one range query asks for (Prometheus refuses past 11,000 per series). */
const MAX_POINTS = 10_000;

const ordinalOf = (pod: string): string => /-([0-9]+)$/.exec(pod)?.[1] ?? '';

function readyAt(pod: V1Pod): number | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === 'Ready');
  if (c?.status !== 'True') return undefined;
  const t = c.lastTransitionTime ? new Date(c.lastTransitionTime).getTime() : NaN;
  return Number.isFinite(t) ? t : undefined;
}

async function target(spec: MetricCheckSpec, secrets: SecretReader): Promise<PrometheusTarget> {
  const p = spec.prometheus;
  let authorization: string | undefined;
  if (p.credentialsSecret) {
    const d = await secrets(p.credentialsSecret);
    if (d.token) authorization = `Bearer ${d.token.trim()}`;
    else if (d.username !== undefined && d.password !== undefined) authorization = `Basic ${Buffer.from(`${d.username}:${d.password}`).toString('base64')}`;
    else throw new HookNotReady(`Secret ${p.credentialsSecret} has neither token, nor username and password`);
  }
  let ca: string | undefined;
  if (p.caSecret) {
    const d = await secrets(p.caSecret);
    ca = d['ca.crt'];
    if (!ca?.includes('-----BEGIN CERTIFICATE-----')) throw new HookNotReady(`Secret ${p.caSecret} has no PEM certificate under ca.crt`);
  }
  return { address: p.address, timeoutSeconds: p.timeoutSeconds, authorization, ca };
}

/**
 * The metric checks of one step (prev, next): first the bake of `prev`, the pod
 * moved last (only while it runs the update revision), then the `before` checks
 * of `next`. A query that errs, a missing or invalid MetricCheck and an
 * inconclusive answer each hold with their own reason: nothing passes that the
 * metrics did not say. Reads Prometheus; decides through evaluate.ts.
 */
export async function runStepChecks(cfg: CheckConfig, sts: V1StatefulSet, prev: V1Pod | null, next: V1Pod | null, nextReady: boolean | null, deps: CheckDeps): Promise<ChecksOutcome> {
  const ns = sts.metadata?.namespace ?? '';
  const name = sts.metadata?.name ?? '';
  const upd = sts.status?.updateRevision ?? '';
  if (cfg.rolledBack && cfg.rolledBack.to === upd) return { says: 'pass', text: `a rollback from ${cfg.rolledBack.from} to ${cfg.rolledBack.to} made after a failed check: its steps are not checked` };
  const checks: { name: string; spec: MetricCheckSpec }[] = [];
  for (const n of cfg.names) {
    let obj: unknown;
    try {
      obj = await deps.readCheck(ns, n);
    } catch (err) {
      return { says: 'hold', text: `cannot read MetricCheck ${n}: ${describeError(err, 200)}` };
    }
    if (obj === undefined) return { says: 'hold', text: `MetricCheck ${n} does not exist in namespace ${ns}` };
    const p = parseMetricCheck(n, obj);
    if (!p.ok) return { says: 'hold', text: p.error };
    checks.push({ name: n, spec: p.spec });
  }
  const vars = (pod: string, revision: string) => ({ namespace: ns, statefulset: name, pod, ordinal: ordinalOf(pod), revision });
  const holds: string[] = [];
  let baking = 0;
  let retryAfterMs: number | undefined;
  const passes: string[] = [];

  const prevName = prev?.metadata?.name ?? '';
  const bakeChecks = checks.filter((c) => c.spec.phases.includes('bake'));
  if (prev && bakeChecks.length > 0 && prev.metadata?.labels?.[REVISION_LABEL] === upd) {
    const ready = readyAt(prev);
    if (ready === undefined) return { says: 'hold', text: `metric checks: pod ${prevName} is not Ready, so its bake has not started` };
    for (const c of bakeChecks) {
      const q = renderQuery(c.spec.query, vars(prevName, upd));
      if (!q.ok) return { says: 'hold', text: `MetricCheck ${c.name}: ${q.error}` };
      try {
        const t = await target(c.spec, deps.secrets);
        const now = deps.now();
        let verdict;
        if (cfg.bakeSeconds === 0) {
          const j = judgeInstant(await instantQuery(t, q.query, deps.egress, deps.signal), c.spec.successCondition);
          verdict = { says: j.result === 'inconclusive' ? ('hold' as const) : j.result, text: `pod ${prevName}: ${j.text}` };
        } else {
          const step = Math.max(c.spec.interval, Math.ceil(cfg.bakeSeconds / MAX_POINTS));
          const start = Math.ceil(ready / 1000);
          const end = Math.floor(Math.min(now, ready + cfg.bakeSeconds * 1000) / 1000);
          const count =
            end >= start ? countBake(await rangeQuery(t, q.query, { start, end, step }, deps.egress, deps.signal), c.spec.successCondition, start, end, step) : { passed: 0, failed: 0, inconclusive: 0 };
          const over = now >= ready + cfg.bakeSeconds * 1000;
          const latest = over && count.inconclusive > 0 && count.failed <= c.spec.failureLimit ? judgeInstant(await instantQuery(t, q.query, deps.egress, deps.signal), c.spec.successCondition) : undefined;
          verdict = bakeVerdict({ pod: prevName, count, failureLimit: c.spec.failureLimit, readyAt: ready, bakeSeconds: cfg.bakeSeconds, now, intervalSeconds: step, condition: c.spec.successCondition, latest });
          if (verdict.says === 'hold' && verdict.retryAfterMs !== undefined) retryAfterMs = Math.min(retryAfterMs ?? Infinity, verdict.retryAfterMs);
        }
        deps.observe?.(c.name, 'bake', verdict.says === 'hold' ? 'inconclusive' : verdict.says);
        if (verdict.says === 'fail') return { says: 'fail', check: c.name, text: `MetricCheck ${c.name} (${q.query}): ${verdict.text}` };
        if (verdict.says === 'hold') {
          holds.push(`MetricCheck ${c.name}: ${verdict.text}`);
          if ('baking' in verdict && verdict.baking) baking++;
        }
        else passes.push(`${c.name}: ${verdict.text}`);
      } catch (err) {
        deps.observe?.(c.name, 'bake', 'error');
        return { says: 'hold', text: `MetricCheck ${c.name}: ${err instanceof QueryError || err instanceof HookNotReady ? err.message : describeError(err, 200)}` };
      }
    }
  }
  // Holds only of bakes still in progress are routine; one without data is not.
  if (holds.length > 0) return { says: 'hold', text: holds.join('; '), routine: baking === holds.length, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };

  // An unready `next` is a broken pod being replaced: it serves nothing to measure, and replacing it is the fix.
  const nextName = next?.metadata?.name ?? '';
  if (next && nextReady !== false) {
    for (const c of checks.filter((x) => x.spec.phases.includes('before'))) {
      const q = renderQuery(c.spec.query, vars(nextName, next.metadata?.labels?.[REVISION_LABEL] ?? ''));
      if (!q.ok) return { says: 'hold', text: `MetricCheck ${c.name}: ${q.error}` };
      try {
        const j = judgeInstant(await instantQuery(await target(c.spec, deps.secrets), q.query, deps.egress, deps.signal), c.spec.successCondition);
        deps.observe?.(c.name, 'before', j.result);
        if (j.result !== 'pass') return { says: 'hold', text: `MetricCheck ${c.name} before ${nextName} moves (${q.query}): ${j.result === 'fail' ? '' : 'inconclusive: '}${j.text}` };
        passes.push(`${c.name}: ${j.text}`);
      } catch (err) {
        deps.observe?.(c.name, 'before', 'error');
        return { says: 'hold', text: `MetricCheck ${c.name}: ${err instanceof QueryError || err instanceof HookNotReady ? err.message : describeError(err, 200)}` };
      }
    }
  }
  return { says: 'pass', text: passes.join('; ') || 'no check applies to this step' };
}

/** A bake failed: thrown through the hook call so the runner can halt, hold or roll back as the StatefulSet says. */
export class CheckFailed extends Error {
  override name = 'CheckFailed';
  readonly check: string;
  constructor(check: string, message: string) {
    super(message);
    this.check = check;
  }
}

/** A hold of the metric checks that knows when to ask again (a bake ends at a known time). */
export class ChecksHold extends HookNotReady {
  readonly retryAfterMs: number | undefined;
  /** routine: a bake in progress (a Normal Event); anything else (inconclusive, an error, a failing before-check) needs someone. */
  constructor(message: string, retryAfterMs?: number, opts: { routine?: boolean } = {}) {
    super(message, opts);
    this.retryAfterMs = retryAfterMs;
  }
}
