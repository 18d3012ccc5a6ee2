import {
  type Configuration,
  CoordinationV1Api,
  type KubeConfig,
  Observable,
  type RequestContext,
  type ResponseContext,
  type V1Lease,
} from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, statusCode } from './errors.ts';
import type { Logger } from './log.ts';

export interface LeaderElectionOptions {
  kc: KubeConfig;
  namespace: string;
  name: string;
  identity: string;
  log: Logger;
  /** How long others wait, after the last renewal they saw, before taking the lease. */
  leaseDurationMs?: number;
  /** A leader that could not renew for this long stops acting, before others may take over. */
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /**
   * Milliseconds from a monotonic source: every expiry and deadline is judged
   * with it, so a step of the wall clock (NTP) cannot make two replicas act at
   * once. The wall clock only fills the Lease's own timestamps.
   */
  clock?: () => number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

/** Per-call options that give one request its own deadline (client-node passes the signal to fetch). */
function deadline(ms: number): Configuration {
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(AbortSignal.timeout(ms));
          return new Observable(Promise.resolve(ctx));
        },
        post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: 'append',
  } as unknown as Configuration;
}

/** MicroTime must carry six fractional digits; client-node would send three. */
const microTime = (d: Date): Date => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;

/** The Lease as `identity` renews it, or takes it over, at `now`. */
function renewed(lease: V1Lease, identity: string, durationSeconds: number, now: Date): V1Lease {
  const spec = lease.spec ?? {};
  const takeover = spec.holderIdentity !== identity;
  return {
    ...lease,
    spec: {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: microTime(now),
      acquireTime: takeover || !spec.acquireTime ? microTime(now) : microTime(new Date(spec.acquireTime)),
      leaseTransitions: (spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
    },
  };
}

/**
 * Lease-based leader election (coordination.k8s.io/v1), as client-go does it:
 * expiry is judged by the time *we observed* the lease change, never by the
 * holder's clock, and every write is resourceVersion-guarded, so two
 * candidates cannot both win. A leader stops calling itself leader
 * renewDeadline after the moment it *sent* its last successful renewal (a
 * renewal that took long counts from its start), which is before
 * leaseDuration, when anyone else may take over. Every Lease request has a
 * deadline shorter than the renew deadline, and a leader that misses the
 * renew deadline steps down for good (onStoppedLeading), even if a late
 * answer says the renewal went through. All times are monotonic.
 */
export class LeaderElector {
  private readonly o: Required<LeaderElectionOptions>;
  private readonly api: CoordinationV1Api;
  private observed: { record: string; at: number } | undefined;
  /** Monotonic time the last successful renewal was sent. */
  private lastRenew = 0;
  /** Deadline of one Lease request: well inside the renew deadline. */
  private readonly requestMs: number;
  /** The Lease as our last write left it: a leader renews from it without reading first. */
  private written: V1Lease | undefined;
  private leading = false;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(o: LeaderElectionOptions) {
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, clock: () => performance.now(), ...o };
    if (this.o.renewDeadlineMs >= this.o.leaseDurationMs) throw new Error('renewDeadline must be shorter than leaseDuration');
    this.api = o.kc.makeApiClient(CoordinationV1Api);
    this.requestMs = Math.max(500, Math.min(this.o.renewDeadlineMs / 2, this.o.renewDeadlineMs - this.o.retryPeriodMs));
  }

  /** True only while the last renewal was sent less than the renew deadline ago. */
  isLeader(): boolean {
    return this.leading && this.o.clock() - this.lastRenew < this.o.renewDeadlineMs;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stop; a leader hands the lease back so the next one need not wait for it to expire. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    if (this.leading) {
      this.setLeading(false);
      await this.release();
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.tryAcquireOrRenew();
      } catch (err) {
        this.o.log.warn({ lease: this.o.name, err: describeError(err) }, 'lease request failed');
      }
      if (this.leading && !this.isLeader()) {
        this.o.log.error({ lease: this.o.name }, `could not renew the lease within ${this.o.renewDeadlineMs / 1000}s; stopping leading`);
        this.setLeading(false);
      }
      await sleep(this.o.retryPeriodMs);
    }
  }

  /** Checked after every Lease answer: an answer that came back past the renew deadline changes nothing. */
  private renewedAt(sent: number): void {
    if (this.leading && this.o.clock() - this.lastRenew >= this.o.renewDeadlineMs) return;
    this.lastRenew = sent;
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.o.log.info({ lease: this.o.name, identity: this.o.identity }, leading ? 'became leader' : 'stopped leading');
    if (leading) this.o.onStartedLeading();
    else this.o.onStoppedLeading();
  }

  /**
   * client-go's fast path: a leader updates the record it wrote last, guarded by
   * its resourceVersion, and reads only when that fails. Half the requests of
   * read-then-write; just as safe, since a stale resourceVersion is refused.
   */
  private async renewFromWritten(): Promise<boolean> {
    const { namespace, name } = this.o;
    const last = this.written;
    this.written = undefined;
    if (!this.leading || !last?.spec || last.spec.holderIdentity !== this.o.identity) return false;
    const sent = this.o.clock();
    const body = renewed(last, this.o.identity, Math.ceil(this.o.leaseDurationMs / 1000), new Date());
    try {
      this.written = await this.api.replaceNamespacedLease({ name, namespace, body }, deadline(this.requestMs));
    } catch (err) {
      if (statusCode(err) === 409) return false; // someone wrote since: read it and decide
      throw err;
    }
    this.renewedAt(sent);
    return true;
  }

  private async tryAcquireOrRenew(): Promise<void> {
    if (await this.renewFromWritten()) return;
    const { namespace, name, identity } = this.o;
    const durationSeconds = Math.ceil(this.o.leaseDurationMs / 1000);
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace }, deadline(this.requestMs));
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      const sent = this.o.clock();
      const now = new Date();
      this.written = await this.api.createNamespacedLease(
        {
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
          },
        },
        deadline(this.requestMs),
      );
      this.lastRenew = sent;
      this.setLeading(true);
      return;
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.acquireTime, spec.leaseDurationSeconds]);
    if (this.observed?.record !== record) this.observed = { record, at: this.o.clock() };
    const holder = spec.holderIdentity ?? '';
    const expired = this.o.clock() > this.observed.at + (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== identity && holder !== '' && !expired) {
      this.setLeading(false);
      return;
    }
    const takeover = holder !== identity;
    const sent = this.o.clock();
    const body = renewed(lease, identity, durationSeconds, new Date());
    try {
      this.written = await this.api.replaceNamespacedLease({ name, namespace, body }, deadline(this.requestMs));
    } catch (err) {
      if (statusCode(err) === 409) return; // someone else wrote first: read again next round
      throw err;
    }
    // A leader past its renew deadline has stepped down (or is about to): it does not come back by this answer.
    if (this.leading && this.o.clock() - this.lastRenew >= this.o.renewDeadlineMs) return;
    this.lastRenew = sent;
    if (takeover) this.o.log.info({ lease: name, previous: holder || '(released)' }, 'acquired the lease');
    this.setLeading(true);
  }

  private async release(): Promise<void> {
    const { namespace, name } = this.o;
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      const spec = lease.spec;
      await this.api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...lease,
          spec: {
            ...spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: microTime(new Date()),
            acquireTime: spec.acquireTime ? microTime(new Date(spec.acquireTime)) : undefined,
          },
        },
      });
    } catch (err) {
      this.o.log.warn({ lease: name, err: describeError(err) }, 'could not release the lease');
    }
  }
}
