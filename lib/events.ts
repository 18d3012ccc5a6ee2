import type { CoreV1Api, V1StatefulSet } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { describeError } from './errors.ts';
import type { Logger } from './log.ts';

export type EventType = 'Normal' | 'Warning';

/** How long an identical Event is not repeated: holds retry often, people read once. */
const DEDUPE_MS = 10 * 60_000;

/**
 * Kubernetes Events on the StatefulSet. The same reason and message (numbers
 * aside, so "12 shards left" and "11 shards left" count as one) are written once
 * per DEDUPE_MS; a failure to write one is logged and never fails a reconcile.
 */
export class EventRecorder {
  private readonly recent = new Map<string, number>();
  /** Events waiting for their time (emitLater); flush() writes them at once. */
  private readonly pending = new Set<{ timer: NodeJS.Timeout; write: () => Promise<void> }>();
  private readonly core: CoreV1Api;
  private readonly log: Logger;
  private readonly component: string;

  constructor(core: CoreV1Api, log: Logger, component = 'sts-pilot') {
    this.core = core;
    this.log = log;
    this.component = component;
  }

  /** `dedupe: false` for Events that record a one-off fact (a step taken), not a state. */
  async emit(sts: V1StatefulSet, type: EventType, reason: string, message: string, opts: { dedupe?: boolean; at?: number } = {}): Promise<void> {
    const ns = sts.metadata?.namespace ?? 'default';
    const name = sts.metadata?.name ?? '';
    const key = `${ns}/${name}|${reason}|${message.replace(/[0-9]+/g, '#')}`; // as sameSituation() folds
    const now = Date.now();
    const last = this.recent.get(key);
    const dedupe = opts.dedupe ?? true;
    if (dedupe && last !== undefined && now - last < DEDUPE_MS) return;
    if (dedupe) this.recent.set(key, now);
    if (this.recent.size > 10_000) this.prune(now);
    const time = new Date(opts.at ?? now);
    try {
      await this.core.createNamespacedEvent({
        namespace: ns,
        body: {
          metadata: { name: `${name}.${randomBytes(8).toString('hex')}`, namespace: ns },
          involvedObject: {
            apiVersion: 'apps/v1',
            kind: 'StatefulSet',
            name,
            namespace: ns,
            uid: sts.metadata?.uid,
            resourceVersion: sts.metadata?.resourceVersion,
          },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: this.component },
          reportingComponent: this.component,
          reportingInstance: process.env.HOSTNAME ?? this.component,
          firstTimestamp: time,
          lastTimestamp: time,
          count: 1,
        },
      });
    } catch (err) {
      this.recent.delete(key);
      this.log.warn({ statefulSet: `${ns}/${name}`, reason, err: describeError(err) }, 'could not write Event');
    }
  }

  /**
   * emit(), `delayMs` from now, without holding the caller. For the Event of a
   * step: written at once, it reached kube-apiserver and etcd in the few ms
   * kube-controller-manager takes to act on the step (bench/trace-step.ts: before
   * its DELETE of the next pod in 16 of 38 steps), on the same cores. Later, it
   * says the same and competes with nothing. It carries the time of the call,
   * so Events still read in the order things happened.
   */
  emitLater(delayMs: number, sts: V1StatefulSet, type: EventType, reason: string, message: string, opts: { dedupe?: boolean } = {}): void {
    const at = Date.now();
    const entry = {
      timer: undefined as unknown as NodeJS.Timeout,
      write: (): Promise<void> => {
        clearTimeout(entry.timer);
        this.pending.delete(entry);
        return this.emit(sts, type, reason, message, { ...opts, at });
      },
    };
    entry.timer = setTimeout(() => void entry.write(), delayMs);
    entry.timer.unref();
    this.pending.add(entry);
  }

  /** Write every Event still waiting (shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending].map((e) => e.write()));
  }

  /** Forget dedupe state for one StatefulSet (it changed hands or went away). */
  forget(ns: string, name: string): void {
    const prefix = `${ns}/${name}|`;
    for (const k of this.recent.keys()) if (k.startsWith(prefix)) this.recent.delete(k);
  }

  private prune(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= DEDUPE_MS) this.recent.delete(k);
  }
}
