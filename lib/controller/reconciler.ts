import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { EventRecorder } from '../events.ts';
import { hookConfigOf, parseHookOptions, type RolloutHook } from '../hook.ts';
import type { Logger } from '../log.ts';
import { STATUS_ANNOTATION } from '../names.ts';
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
}

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
    const snapshot: Snapshot = {
      sts: view,
      pods: pods.map((p) => podView(p, name, view.ordinalsStart)).filter((p): p is PodView => p !== undefined),
      now: Date.now(),
      approval: hooks.approval(key),
      hookProblem: choice.problem,
      hookConfig: hookConfigOf(sts.metadata?.labels?.[this.p.labelKey] ?? '', sts.metadata?.annotations),
      hookOrders: typeof choice.hook?.podUpdateOrder === 'function',
    };
    const action = plan(snapshot);
    this.track(key, action, `${view.updateRevision}|${view.partition}|${view.mark?.partition}`);
    hooks.settle(key, action);
    await this.dispatch(key, sts, pods, choice, action, log);
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

  private track(key: string, action: Action, step: string): void {
    if (action.phase !== 'Rolling') {
      this.inProgress.delete(key);
      return;
    }
    if (this.inProgress.get(key)?.step !== step) this.inProgress.set(key, { step, since: Date.now() });
  }

  private async dispatch(key: string, sts: V1StatefulSet, pods: V1Pod[], choice: HookChoice, action: Action, log: Logger): Promise<void> {
    const { queue, writer, hooks, events } = this.p;
    switch (action.kind) {
      case 'none':
        log.debug(action.message);
        queue.forget(key);
        return;
      case 'hold':
        log.info({ phase: action.phase }, action.reason);
        if (action.retryAfterMs !== undefined) queue.addAfter(key, action.retryAfterMs);
        if (action.phase !== 'Rolling' && action.phase !== 'Waiting') {
          // Paused means hands off: Events only, not even our own annotation.
          if (action.phase !== 'Paused') await writer.recordHold(sts, action.phase, action.reason, log);
          await events.emit(sts, 'Warning', action.phase === 'Paused' ? 'Paused' : 'Held', action.reason);
        }
        return;
      case 'callHook':
        // The planner never asks without a usable hook (hookProblem holds first).
        if (choice.hook) hooks.ask(key, sts, pods, choice.hook, choice.options, action, log);
        return;
      case 'askOrder':
        if (choice.hook) hooks.askOrder(key, sts, pods, choice.hook, choice.options, action, log);
        return;
      case 'patch':
      case 'deletePod': {
        const outcome = action.kind === 'patch' ? await writer.patch(sts, action, log) : await writer.deletePod(sts, pods, action, log);
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
