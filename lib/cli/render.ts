import { readCheckConfig } from '../checks/schema.ts';
import { formatSeconds } from '../rollout/policies/duration.ts';
import { POLICY_ANNOTATIONS, STATUS_ANNOTATION } from '../names.ts';
import type { PodView } from '../rollout/snapshot.ts';
import { parseStatusAnnotation } from '../rollout/status.ts';
import { columns, formatDuration, progressBar, shortRevision } from './format.ts';
import { type Action, plan } from '../rollout/planner.ts';
import { policyReport, POLICY_NAMES } from '../rollout/policies/index.ts';
import type { Snapshot } from '../rollout/snapshot.ts';
import { peersOf, planned, type StatusItem } from './model.ts';

const optional = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : ({ [k]: v } as { [P in K]?: V }));

/**
 * Each configured rollout policy and where it stands: the next window opening,
 * step-delay remaining, the peer waited for, held time against the timeout, an
 * override pending or applied, the hook errors toward a halt.
 */
function policyLines(snapshot: Snapshot, action: Action, item: StatusItem, o: RenderOptions): string[] {
  // The step the policies are about: the one the plan would take with none of them.
  const free = plan({ ...snapshot, policy: { ...snapshot.policy, disabled: POLICY_NAMES } });
  const step = free.kind === 'callHook' && free.next && snapshot.sts.updateRevision ? { next: free.next, upd: snapshot.sts.updateRevision } : undefined;
  const waiting = free.kind === 'callHook' || (free.kind === 'hold' && free.phase === 'Rolling');
  const verdicts = policyReport(snapshot, step, waiting);
  const lines = verdicts.map((v) => {
    const text = o.ages ? v.text : v.text.replace(/\b[0-9]+[dhms]([0-9]{2}[hms])?\b/g, '…');
    return `${v.policy}: ${v.says === 'go' ? '' : `${v.says.toUpperCase()}: `}${text}`;
  });
  const applied = snapshot.sts.override;
  if (applied && !verdicts.some((v) => v.policy === 'override')) {
    lines.push(`override: applied: pod ${applied.pod} at ${applied.revision} by ${applied.by} at ${applied.appliedAt ?? applied.at}: ${applied.reason}`);
  }
  const checks = readCheckConfig(snapshot.sts.policyAnnotations);
  if (!checks.ok) lines.push(`metric-checks: INVALID: ${checks.error}; holding`);
  else if (checks.config) {
    const c = checks.config;
    const back = c.rolledBack ? `; rolled back from ${c.rolledBack.from} to ${c.rolledBack.to} after a failed check` : '';
    lines.push(`metric-checks: ${c.names.join(', ')} (bake ${formatSeconds(c.bakeSeconds)}, on failure ${c.onFailure})${back}`);
  }
  if (action.kind === 'pause') lines.push(`the controller pauses the rollout now: ${action.reason}`);
  const pending = verdicts.some((v) => v.policy === 'override' && (v.says !== 'go' || v.text.includes('pending')));
  if (item.gateEnforced === undefined && pending && snapshot.sts.policyAnnotations?.[POLICY_ANNOTATIONS.override] !== undefined) {
    lines.push('override: (the controller applies it only while the admission gate is in force)');
  }
  return lines;
}

export interface RenderOptions {
  labelKey: string;
  /** ms since epoch: ages are measured against it, and the planner uses it for minReadySeconds. */
  now: number;
  /**
   * false renders every age as "…". `status --watch` compares frames rendered
   * so, to redraw when something happened, not because a second went by.
   */
  ages: boolean;
}

const LABEL_WIDTH = 10;
const field = (label: string, text: string): string => `  ${label.padEnd(LABEL_WIDTH)}${text}`;
const continuation = (text: string): string => `  ${' '.repeat(LABEL_WIDTH)}${text}`;

/** Every StatefulSet, sorted by namespace and name, one block each, blank lines between. */
export function renderStatus(items: readonly StatusItem[], o: RenderOptions): string[] {
  const key = (i: StatusItem): string => `${i.sts.metadata?.namespace ?? ''}/${i.sts.metadata?.name ?? ''}`;
  const sorted = [...items].sort((a, b) => key(a).localeCompare(key(b)));
  // Peers named by `after` are read from the same listing the controller's caches hold.
  const withPeers = sorted.map((item) => (item.peers === undefined ? { ...item, ...optional('peers', peersOf(item, items)) } : item));
  return withPeers.flatMap((item, i) => [...(i > 0 ? [''] : []), ...renderStatefulSet(item, o)]);
}

/**
 * One StatefulSet's rollout as lines of plain text (no color: it must read the
 * same in a log file). The "next" pod and the "now" line come from the planner
 * itself, run on what the CLI read, so they name exactly what the controller acts on.
 */
export function renderStatefulSet(item: StatusItem, o: RenderOptions): string[] {
  const { snapshot, action } = planned(item, o.now);
  const v = snapshot.sts;
  const n = v.replicas;
  const upd = v.updateRevision;
  const hook = item.sts.metadata?.labels?.[o.labelKey];
  const rollingUpdate = v.strategy === 'RollingUpdate';
  const p = v.partition ?? 0;
  const short = (rev: string | undefined): string => shortRevision(rev, v.name);
  // Pods by their place in the StatefulSet (index = ordinal - spec.ordinals.start): what the partition counts.
  const byIndex = new Map<number, PodView>(snapshot.pods.map((pod) => [pod.index, pod]));
  const stale = (pod: PodView): boolean => upd !== undefined && pod.revision !== upd;
  const rolling = upd !== undefined && (v.currentRevision !== upd || snapshot.pods.some((pod) => pod.index < n && stale(pod)));
  const updated = snapshot.pods.filter((pod) => pod.index >= 0 && pod.index < n && !pod.terminating && pod.revision === upd).length;

  // The pod at the partition was approved and is on its way (planner rule 6): the mark says so.
  const mark = v.mark;
  const atP = byIndex.get(p);
  const inFlight =
    rollingUpdate && mark !== undefined && mark.revision === upd && mark.partition === p && p < n && (!atP || atP.terminating || stale(atP))
      ? p
      : -1;
  const next = action.kind === 'callHook' ? action.next : null;

  const out: string[] = [];
  const where = rollingUpdate ? `partition ${v.partition ?? 'unset'}, replicas ${n}` : `replicas ${n}`;
  const paused = v.paused === 'true' ? '  PAUSED' : '';
  const requested = v.requestedReplicas !== undefined ? ` (scale-down to ${v.requestedReplicas} requested)` : '';
  out.push(`${v.namespace}/${v.name}  hook ${hook ?? '-'}  ${v.strategy}  ${where}${requested}${paused}`);

  if (upd === undefined) out.push(field('revision', 'not reported yet'));
  else if (!rolling) out.push(field('revision', `${short(upd)}, ${updated}/${n} pods`));
  else {
    const bar = progressBar(updated, n);
    out.push(field('rollout', `${short(v.currentRevision)} -> ${short(upd)}  ${bar ? `${bar} ` : ''}${updated}/${n} pods updated`));
  }

  if (action.kind === 'callHook' && hook !== undefined) {
    // With OnDelete the hook's order may choose any stale pod: count the steps taken.
    const step = rollingUpdate || !snapshot.hookOrders ? n - (next?.index ?? 0) : updated + 1;
    out.push(
      field(
        'next',
        next
          ? `${next.name} (step ${step} of ${n}): the ${hook} hook is asked to approve it${next.ready ? '' : ' (it is not Ready: a broken pod is being replaced)'}`
          : `end of the rollout: the ${hook} hook is asked to approve it`,
      ),
    );
    if (next && action.why) out.push(continuation(`why: ${action.why}`));
  } else if (action.kind === 'callRemoval' && hook !== undefined) {
    const what =
      action.call === 'removal'
        ? `${action.pod.pod} leaves (scale-down ${n} -> ${action.requested}): the ${hook} hook is asked to approve its removal${action.podReady ? '' : ' (it is not Ready)'}`
        : `${action.pod.pod} ${action.call === 'removed' ? 'is gone' : 'stays (the scale-down was withdrawn)'}: the ${hook} hook is told, to clean up`;
    out.push(field('next', what));
  } else if (action.kind === 'askOrder' && hook !== undefined) {
    out.push(field('next', `chosen by the ${hook} hook: it is asked which of ${action.stale.map((p) => p.name).join(', ')} moves next`));
  } else if (inFlight >= 0) {
    out.push(field('next', `${v.name}-${v.ordinalsStart + inFlight} was approved and is being updated`));
  }

  // Without the label the controller never sees it: what the planner would do is beside the point.
  if (hook === undefined) out.push(field('now', `not managed: no label ${o.labelKey}, so sts-pilot leaves it alone`));
  else out.push(field('now', `${action.phase}: ${action.kind === 'hold' || action.kind === 'pause' ? action.reason : action.message}`));
  const status = statusLine(item, o);
  if (status) out.push(field('status', status));
  if (hook !== undefined) policyLines(snapshot, action, item, o).forEach((line, i) => out.push(i === 0 ? field('policies', line) : continuation(line)));

  // Pods from the highest ordinal down, the order a rollout takes; a rule marks the partition.
  const top = Math.max(n, ...snapshot.pods.map((pod) => pod.index + 1));
  const showPartition = rollingUpdate && rolling;
  const rows: string[][] = [];
  const rule = `----- partition ${v.partition ?? 'unset (0)'} -----`;
  let ruled = false;
  const bottom = Math.min(0, ...snapshot.pods.map((pod) => pod.index));
  for (let i = top - 1; i >= bottom; i--) {
    if (showPartition && !ruled && i < p) {
      rows.push([rule]);
      ruled = true;
    }
    const removing = action.kind === 'callRemoval' && action.call === 'removal' ? action.pod.uid : undefined;
    rows.push(podRow(v.name, v.ordinalsStart, i, byIndex.get(i), { n, upd, p, rollingUpdate, rolling, inFlight, next, removing }));
  }
  if (showPartition && !ruled) rows.push([rule]);
  // The rule is one cell: align the pod rows among themselves only.
  const podLines = columns(rows.filter((r) => r.length > 1));
  let k = 0;
  const lines = rows.map((r) => (r.length > 1 ? (podLines[k++] ?? '') : (r[0] ?? '')));
  if (lines.length === 0) out.push(field('pods', 'none'));
  lines.forEach((line, i) => out.push(i === 0 ? field('pods', line) : continuation(line)));
  return out;
}

function podRow(
  sts: string,
  start: number,
  index: number,
  pod: PodView | undefined,
  s: { n: number; upd: string | undefined; p: number; rollingUpdate: boolean; rolling: boolean; inFlight: number; next: PodView | null; removing?: string | undefined },
): string[] {
  if (!pod) return [`${sts}-${start + index}`, '-', 'missing', index === s.inFlight ? 'approved, being created' : ''];
  const ready = pod.terminating ? 'Terminating' : pod.ready ? 'Ready' : 'not Ready';
  let note = '';
  if (index >= s.n || index < 0) note = 'leaving (scale-down)';
  else if (s.removing === pod.uid) note = 'leaving: the hook is asked (scale-down)';
  else if (index === s.inFlight) note = 'approved, being updated';
  else if (s.next?.index === index) note = '<- next';
  else if (!s.rolling) note = '';
  else if (s.upd !== undefined && pod.revision === s.upd) note = pod.terminating ? '' : 'updated';
  // Stale above the partition: the StatefulSet controller would move it without the hook (rule 5 guards it).
  else if (s.rollingUpdate && s.rolling && index >= s.p) note = 'above the partition, not approved';
  return [pod.name, shortRevision(pod.revision, sts), ready, note];
}

/** The controller's last recorded word, and for how long it has stood. */
function statusLine(item: StatusItem, o: RenderOptions): string | undefined {
  const raw = item.sts.metadata?.annotations?.[STATUS_ANNOTATION];
  if (raw === undefined) return 'nothing recorded by the controller yet';
  const parsed = parseStatusAnnotation(raw);
  if (!parsed.ok) return `unreadable ${STATUS_ANNOTATION} annotation: ${parsed.error.replace(/\s+/g, ' ')}`;
  const { state, message, since } = parsed.status;
  if (state === undefined && message === undefined) return undefined;
  // The controller records a hook's refusal as "<hook> holds <what>: <why>".
  const word = message !== undefined && /^\S+ holds /.test(message) ? 'held' : (state ?? 'recorded');
  const t = since === undefined ? NaN : Date.parse(since);
  const age = Number.isNaN(t) ? '' : ` for ${o.ages ? formatDuration(o.now - t) : '…'}`;
  return `${word}${age}${message !== undefined ? `: ${message}` : ''}`;
}
