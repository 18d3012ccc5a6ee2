import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { DisruptionBudget } from '../budget/budget.ts';
import type { BudgetHolder } from '../budget/record.ts';
import { describeError } from '../errors.ts';
import type { EventRecorder } from '../events.ts';
import { hookConfigOf, parseHookOptions, type RolloutHook } from '../hook.ts';
import { type Logger, traceNow } from '../log.ts';
import { POLICY_ANNOTATIONS, STATUS_ANNOTATION } from '../names.ts';
import { parseAfter, peerState } from '../rollout/policies/after.ts';
import { heldSinceOf } from '../rollout/policies/hold-timeout.ts';
import type { PeerView, PolicyInputs, PolicyName } from '../rollout/policies/types.ts';
import { type Action, plan } from '../rollout/planner.ts';
import { podView, type PodView, type Snapshot, statefulSetView } from '../rollout/snapshot.ts';
import type { WorkQueue } from '../workqueue.ts';
import type { Caches } from './caches.ts';
import type { HookRunner } from './hook-runner.ts';
import type { PilotProvisioner } from './pilots.ts';
import type { Subscriptions } from './subscriptions.ts';
import { EXPECTATION_TTL_MS, type StatefulSetWriter } from './writer.ts';

export interface ReconcilerParts {
  caches: Caches;
  subscriptions: Subscriptions;
  writer: StatefulSetWriter;
  hooks: HookRunner;
  pilots: PilotProvisioner;
  events: EventRecorder;
  queue: WorkQueue;
  registry: ReadonlyMap<string, RolloutHook>;
  labelKey: string;
  log: Logger;
  isLeader: () => boolean;
  /** Controller-wide rollout policy settings (flags). */
  policy?: { defaultWindow?: string | undefined; disabled?: readonly PolicyName[]; gateEnforced?: () => boolean };
  /** The disruption budgets of application clusters (lib/budget). */
  budget?: DisruptionBudget;
}

/** At most this many StatefulSets are read following `after` (cycles included). */
const MAX_PEERS = 50;

/** The hook a StatefulSet names, its parsed options, or why it cannot be used. */
interface HookChoice {
  hook: RolloutHook | undefined;
  options: unknown;
  problem: string | undefined;
}

/**
 * One reconcile of one StatefulSet: read the caches into a snapshot, plan,
 * dispatch the one action to the part that does it. Nothing else: the planner
 * decides (lib/rollout/planner.ts), the writer writes, the hook runner asks.
 */
export class Reconciler {
  private readonly p: ReconcilerParts;
  /** Keys skipped while not leader: queued again the moment this replica leads. */
  private readonly dropped = new Set<string>();
  /** Rollouts in progress, and since when each has been at its current step (sts_pilot_step_wait_seconds). */
  readonly inProgress = new Map<string, { step: string; since: number }>();
  /** StatefulSets this process has planned once: only the first look takes the held time from the status annotation. */
  private readonly looked = new Set<string>();

  constructor(parts: ReconcilerParts) {
    this.p = parts;
  }

  /** Leadership (re)gained: everything skipped meanwhile is looked at now. */
  takeDropped(): string[] {
    const keys = [...this.dropped];
    this.dropped.clear();
    return keys;
  }

  async reconcile(key: string): Promise<void> {
    const { caches, subscriptions, writer, hooks, pilots } = this.p;
    this.p.log.debug({ mark: 'reconcile', key, t: traceNow() }, 'trace');
    // A follower keeps its caches warm for a fast takeover, and does nothing else.
    if (!this.p.isLeader()) {
      this.dropped.add(key);
      return;
    }
    const slash = key.indexOf('/');
    const ns = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const sts = caches.statefulSet(ns, name);
    if (!sts) {
      hooks.forget(key, 'StatefulSet no longer managed');
      writer.forget(key);
      this.inProgress.delete(key);
      this.looked.delete(key);
      await subscriptions.left(ns, name);
      return;
    }
    if (subscriptions.seen(key, sts.metadata?.uid ?? '')) {
      hooks.forget(key, 'another StatefulSet of that name');
      writer.forget(key);
    }
    pilots.add(key);
    const log = this.p.log.child({ statefulSet: key });
    const pods = caches.podsOf(sts);
    if (writer.behind(sts, pods, log)) {
      log.debug('waiting for the watch to show our last write');
      this.p.queue.addAfter(key, EXPECTATION_TTL_MS);
      return;
    }
    const choice = this.hookOf(sts);
    const view = statefulSetView(sts);
    if (view.statusError) log.warn({ error: view.statusError }, `ignoring unreadable ${STATUS_ANNOTATION} annotation`);
    const stepId = `${view.updateRevision}|${view.partition}|${view.mark?.partition}`;
    const waiting = this.inProgress.get(key);
    // Held since: what this process saw; on its first look after a start, the time of our own last step if the rollout waits right after it.
    const first = !this.looked.has(key);
    this.looked.add(key);
    const heldSince = (waiting?.step === stepId ? waiting.since : undefined) ?? (first ? heldSinceOf(view, undefined) : undefined) ?? Date.now();
    const snapshot: Snapshot = {
      sts: view,
      pods: pods.map((p) => podView(p, name, view.ordinalsStart)).filter((p): p is PodView => p !== undefined),
      now: Date.now(),
      approval: hooks.approval(key),
      hookProblem: choice.problem,
      hookConfig: hookConfigOf(sts.metadata?.labels?.[this.p.labelKey] ?? '', sts.metadata?.annotations),
      hookOrders: typeof choice.hook?.podUpdateOrder === 'function',
      policy: this.policyInputs(key, sts, heldSince),
    };
    const action = plan(snapshot);
    log.debug({ mark: 'plan', kind: action.kind, t: traceNow() }, 'trace');
    this.track(key, action, stepId, heldSince);
    hooks.settle(key, action);
    await this.dispatch(key, sts, pods, choice, action, log);
  }

  /** What the rollout policies need besides the StatefulSet: flags, memory, peers. */
  private policyInputs(key: string, sts: V1StatefulSet, heldSince: number | undefined): PolicyInputs {
    const o = this.p.policy ?? {};
    return {
      defaultWindow: o.defaultWindow,
      disabled: o.disabled ?? [],
      peers: this.peersOf(sts),
      heldSince,
      hookErrors: this.p.hooks.errors(key),
      gateEnforced: o.gateEnforced?.() ?? false,
    };
  }

  /**
   * The StatefulSets reachable through `sts-pilot.io/after` (same namespace,
   * managed by this controller), read from the caches, so that the planner can
   * see whether each has settled and whether they wait for each other in a cycle.
   */
  private peersOf(sts: V1StatefulSet): Record<string, PeerView | null> | undefined {
    const raw = sts.metadata?.annotations?.[POLICY_ANNOTATIONS.after];
    if (raw === undefined) return undefined;
    const ns = sts.metadata?.namespace ?? '';
    const peers: Record<string, PeerView | null> = {};
    const first = parseAfter(raw);
    const todo = first.ok ? [...first.value] : [];
    while (todo.length > 0 && Object.keys(peers).length < MAX_PEERS) {
      const name = todo.shift() as string;
      if (name in peers || name === sts.metadata?.name) continue;
      const peer = this.p.caches.statefulSet(ns, name);
      if (!peer) {
        peers[name] = null;
        continue;
      }
      const after = peer.metadata?.annotations?.[POLICY_ANNOTATIONS.after];
      const view = statefulSetView(peer);
      const pods = this.p.caches.podsOf(peer).map((p) => podView(p, name, view.ordinalsStart)).filter((p): p is PodView => p !== undefined);
      peers[name] = peerState(view, pods, after);
      const next = after === undefined ? undefined : parseAfter(after);
      if (next?.ok) todo.push(...next.value);
    }
    return peers;
  }

  /** The budget holder an approved action would be: a step's pod, or a removal's; none for anything else. */
  private slotOf(key: string, sts: V1StatefulSet, action: Action): Omit<BudgetHolder, 'limit' | 'at'> | undefined {
    if (action.kind === 'patch' && action.why === 'step' && action.mark?.uid) {
      const start = sts.spec?.ordinals?.start ?? 0;
      return { statefulSet: key, pod: `${sts.metadata?.name ?? ''}-${start + action.mark.partition}`, uid: action.mark.uid, kind: 'step', revision: action.mark.revision };
    }
    if (action.kind === 'deletePod' && action.why === 'step') return { statefulSet: key, pod: action.pod.name, uid: action.pod.uid, kind: 'step', revision: action.mark.revision };
    if (action.kind === 'patch' && action.why === 'remove' && action.removal) return { statefulSet: key, pod: action.removal.pod, uid: action.removal.uid, kind: 'removal' };
    return undefined;
  }

  private hookOf(sts: V1StatefulSet): HookChoice {
    const name = sts.metadata?.labels?.[this.p.labelKey] ?? '';
    const hook = this.p.registry.get(name);
    if (!hook) {
      const known = [...this.p.registry.keys()].join(', ');
      return { hook, options: undefined, problem: `unknown hook ${JSON.stringify(name.slice(0, 63))} in label ${this.p.labelKey}; known hooks: ${known}` };
    }
    const parsed = parseHookOptions(hook, sts.metadata?.annotations);
    return parsed.ok ? { hook, options: parsed.options, problem: undefined } : { hook, options: undefined, problem: parsed.error };
  }

  /**
   * How long each rollout has waited at its step (sts_pilot_step_wait_seconds,
   * hold-timeout), from `since`; a closed maintenance window restarts the
   * count, so a long night does not count as a stuck step, and so does a pause
   * (the entry is dropped while not Rolling).
   */
  private track(key: string, action: Action, step: string, since: number): void {
    if (action.phase !== 'Rolling') {
      this.inProgress.delete(key);
      return;
    }
    const now = Date.now();
    if (action.kind === 'hold' && action.policy === 'window') this.inProgress.set(key, { step, since: now });
    else if (this.inProgress.get(key)?.step !== step) this.inProgress.set(key, { step, since: Math.min(since, now) });
  }

  private async dispatch(key: string, sts: V1StatefulSet, pods: V1Pod[], choice: HookChoice, action: Action, log: Logger): Promise<void> {
    const { queue, writer, hooks, events } = this.p;
    switch (action.kind) {
      case 'none':
        log.debug(action.message);
        queue.forget(key);
        return;
      case 'hold':
        log.info({ phase: action.phase, ...(action.policy ? { policy: action.policy } : {}) }, action.reason);
        if (action.retryAfterMs !== undefined) queue.addAfter(key, action.retryAfterMs);
        if (action.overdue) await events.emit(sts, 'Warning', 'HoldTimeout', action.overdue);
        if (action.policy && action.phase === 'Rolling') {
          // A policy's hold is news to people (why nothing moves at night): the status annotation and an Event, both folded.
          await writer.recordHold(sts, action.phase, action.reason, log);
          await events.emit(sts, 'Normal', 'PolicyHold', action.reason);
          return;
        }
        if (action.phase !== 'Rolling' && action.phase !== 'Waiting') {
          // Paused means hands off: Events only, not even our own annotation.
          if (action.phase !== 'Paused') await writer.recordHold(sts, action.phase, action.reason, log);
          await events.emit(sts, 'Warning', action.phase === 'Paused' ? 'Paused' : 'Held', action.reason);
        }
        return;
      case 'pause': {
        const outcome = await writer.pause(sts, action, log);
        if (outcome === 'written') {
          // A person resumes it: the count and the held time start again then.
          hooks.resetErrors(key);
          this.inProgress.delete(key);
          queue.forget(key);
        } else if (outcome === 'conflict') queue.addAfter(key, 200);
        else if (outcome === 'not-leader') this.dropped.add(key);
        return;
      }
      case 'callHook':
        if (action.overdue) await events.emit(sts, 'Warning', 'HoldTimeout', action.overdue);
        // The planner never asks without a usable hook (hookProblem holds first).
        if (choice.hook) hooks.ask(key, sts, pods, choice.hook, choice.options, action, log);
        return;
      case 'askOrder':
        if (choice.hook) hooks.askOrder(key, sts, choice.hook, choice.options, action, log);
        return;
      case 'callRemoval':
        if (choice.hook) hooks.askRemoval(key, sts, choice.hook, choice.options, action, log);
        return;
      case 'patch':
      case 'deletePod': {
        // An approved pod that goes away takes its slot of the application cluster's budget first.
        const slot = this.slotOf(key, sts, action);
        const ref = hooks.approval(key)?.budget;
        if (slot && ref && this.p.budget) {
          const taken = await this.p.budget.take(ref, slot).catch((err: unknown) => {
            log.warn({ err: describeError(err) }, 'could not take a slot of the disruption budget');
            return 'full' as const;
          });
          if (taken === 'full') {
            log.info({ cluster: ref.cluster }, 'the disruption budget was taken since the hook approved; asking again');
            hooks.spend(key);
            queue.addAfter(key, 200);
            return;
          }
        }
        const outcome = action.kind === 'patch' ? await writer.patch(sts, action, log) : await writer.deletePod(sts, pods, action, log);
        if (outcome !== 'written' && slot && ref && this.p.budget) await this.p.budget.drop(ref, slot).catch(() => undefined);
        if (outcome === 'written') {
          hooks.spend(key);
          queue.forget(key);
        } else if (outcome === 'conflict') queue.addAfter(key, 200);
        else if (outcome === 'not-leader') this.dropped.add(key);
        return;
      }
    }
  }
}
