import { z } from 'zod';
import { STATUS_ANNOTATION } from '../names.ts';
import { parseStatusAnnotation } from '../rollout/status.ts';
import { HEALTHS, REASONS, rolloutHealth } from './health.ts';
import { planned, type StatusItem } from './model.ts';

/**
 * `sts-pilot status -o json|yaml`: the rollout state for scripts, versioned.
 * Version 1 only grows: a field is added (optional or with a meaning for old
 * readers), never renamed, retyped or removed; anything else is version 2 under
 * a new `apiVersion`. docs/cli.md, "status -o json".
 */
export const STATUS_REPORT_VERSION = 'sts-pilot.io/status/v1';

export const PodReportSchema = z.strictObject({
  name: z.string(),
  /** controller-revision-hash, null before the StatefulSet controller set it. */
  revision: z.string().nullable(),
  updated: z.boolean(),
  ready: z.boolean(),
  terminating: z.boolean(),
});

export const StatefulSetReportSchema = z.strictObject({
  namespace: z.string(),
  name: z.string(),
  /** The subscribe label's value; null: not managed. */
  hook: z.string().nullable(),
  strategy: z.string(),
  replicas: z.number().int(),
  /** spec.updateStrategy.rollingUpdate.partition; null when unset or OnDelete. */
  partition: z.number().int().nullable(),
  paused: z.boolean(),
  currentRevision: z.string().nullable(),
  updateRevision: z.string().nullable(),
  updatedReplicas: z.number().int(),
  readyReplicas: z.number().int(),
  /** The verdict `wait`, Argo CD and Flux give (docs/gitops.md). */
  health: z.enum(HEALTHS),
  reason: z.enum(REASONS),
  message: z.string(),
  /** What the controller would do now: the planner run on what was read. */
  now: z.strictObject({ phase: z.string(), message: z.string() }),
  /** The controller's record (`sts-pilot.io/status`); null when there is none or it cannot be read. */
  recorded: z.strictObject({ state: z.string().nullable(), message: z.string().nullable(), since: z.string().nullable() }).nullable(),
  /** The pod the hook is asked about; "end" for the final call; null when no hook call is due. */
  next: z.string().nullable(),
  /** Highest ordinal first, as a rollout goes. */
  pods: z.array(PodReportSchema),
});
export type StatefulSetReport = z.infer<typeof StatefulSetReportSchema>;

export const StatusReportSchema = z.strictObject({
  apiVersion: z.literal(STATUS_REPORT_VERSION),
  kind: z.literal('RolloutStatusList'),
  items: z.array(StatefulSetReportSchema),
});
export type StatusReport = z.infer<typeof StatusReportSchema>;

function itemReport(item: StatusItem, labelKey: string, now: number): StatefulSetReport {
  const { snapshot, action } = planned(item, now);
  const v = snapshot.sts;
  const h = rolloutHealth(item.sts, item.pods, labelKey);
  const parsed = parseStatusAnnotation(item.sts.metadata?.annotations?.[STATUS_ANNOTATION]);
  const rec = parsed.ok && Object.keys(parsed.status).length > 0 ? parsed.status : undefined;
  const hook = item.sts.metadata?.labels?.[labelKey] ?? null;
  const next = hook !== null && action.kind === 'callHook' ? (action.next?.name ?? 'end') : null;
  return {
    namespace: v.namespace,
    name: v.name,
    hook,
    strategy: v.strategy,
    replicas: v.replicas,
    partition: v.strategy === 'RollingUpdate' ? (v.partition ?? null) : null,
    paused: v.paused !== undefined && v.paused !== 'false',
    currentRevision: v.currentRevision ?? null,
    updateRevision: v.updateRevision ?? null,
    updatedReplicas: item.sts.status?.updatedReplicas ?? 0,
    readyReplicas: item.sts.status?.readyReplicas ?? 0,
    health: h.health,
    reason: h.reason,
    message: h.message,
    now: { phase: action.phase, message: action.kind === 'hold' || action.kind === 'pause' ? action.reason : action.message },
    recorded: rec ? { state: rec.state ?? null, message: rec.message ?? null, since: rec.since ?? null } : null,
    next,
    pods: [...snapshot.pods]
      .sort((a, b) => b.ordinal - a.ordinal)
      .map((p) => ({ name: p.name, revision: p.revision ?? null, updated: v.updateRevision !== undefined && p.revision === v.updateRevision, ready: p.ready, terminating: p.terminating })),
  };
}

/** The report for what `status` read, sorted like its text (namespace, name); checked against its own schema. */
export function statusReport(items: readonly StatusItem[], labelKey: string, now: number): StatusReport {
  const key = (i: StatusItem): string => `${i.sts.metadata?.namespace ?? ''}/${i.sts.metadata?.name ?? ''}`;
  const sorted = [...items].sort((a, b) => key(a).localeCompare(key(b)));
  return StatusReportSchema.parse({ apiVersion: STATUS_REPORT_VERSION, kind: 'RolloutStatusList', items: sorted.map((i) => itemReport(i, labelKey, now)) });
}
