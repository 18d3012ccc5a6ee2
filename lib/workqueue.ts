/**
 * A keyed work queue in the manner of client-go's: a key is queued at most
 * once, never processed by two workers at once (an add while it runs makes it
 * run again afterwards), and can be retried with per-key capped exponential
 * backoff. An immediate add always wins over a pending delayed one.
 */
export interface WorkQueueOptions {
  workers: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called with the key; a throw counts as a failure and retries with backoff. */
  handler: (key: string) => Promise<void>;
  onError?: (key: string, err: unknown) => void;
  /** Told of adds, retries and timings (lib/metrics.ts addWorkQueue). */
  observer?: WorkQueueObserver;
}

/** What a queue reports as it goes, in the manner of client-go's workqueue metrics. */
export interface WorkQueueObserver {
  added(): void;
  retried(): void;
  /** Seconds a key waited between its add and a worker taking it. */
  waited(seconds: number): void;
  /** Seconds a worker spent on a key. */
  worked(seconds: number): void;
}

/** The queue at one instant, read at scrape time. */
export interface WorkQueueStats {
  depth: number;
  /** Sum over running handlers of how long each has run. */
  unfinishedSeconds: number;
  longestSeconds: number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  /** When each waiting key was added, and when each running key was taken (ms). */
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly idle: (() => void)[] = [];
  private active = 0;
  private stopped = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  private readonly opts: WorkQueueOptions;

  constructor(opts: WorkQueueOptions) {
    this.opts = opts;
    this.baseDelayMs = opts.baseDelayMs ?? 1000;
    this.maxDelayMs = opts.maxDelayMs ?? 5 * 60_000;
  }

  add(key: string): void {
    if (this.stopped) return;
    this.clearTimer(key);
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.addedAt.set(key, Date.now());
    this.opts.observer?.added();
    this.pump();
  }

  /** Run the key after `ms`, unless something adds it sooner. Keeps the earliest of two timers. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    this.clearTimer(key);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Retry after the key's next backoff delay: base * 2^failures, capped. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.opts.observer?.retried();
    const delay = Math.min(this.baseDelayMs * 2 ** n, this.maxDelayMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Reset the key's backoff: it made progress. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  get length(): number {
    return this.queue.length;
  }

  stats(now: number): WorkQueueStats {
    let unfinished = 0;
    let longest = 0;
    for (const at of this.startedAt.values()) {
      unfinished += now - at;
      longest = Math.max(longest, now - at);
    }
    return { depth: this.queue.length, unfinishedSeconds: unfinished / 1000, longestSeconds: longest / 1000 };
  }

  /** Stop taking work and wait for the handlers that run to finish. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.addedAt.clear();
    if (this.active === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private clearTimer(key: string): void {
    const t = this.timers.get(key);
    if (t) {
      clearTimeout(t.timer);
      this.timers.delete(key);
    }
  }

  private pump(): void {
    while (!this.stopped && this.active < this.opts.workers && this.queue.length > 0) {
      const key = this.queue.shift() as string;
      this.queued.delete(key);
      const now = Date.now();
      this.opts.observer?.waited((now - (this.addedAt.get(key) ?? now)) / 1000);
      this.addedAt.delete(key);
      this.startedAt.set(key, now);
      this.running.add(key);
      this.active++;
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.opts.handler(key);
    } catch (err) {
      this.opts.onError?.(key, err);
      if (!this.stopped) this.addRateLimited(key);
    } finally {
      this.opts.observer?.worked((Date.now() - (this.startedAt.get(key) ?? Date.now())) / 1000);
      this.startedAt.delete(key);
      this.running.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      if (this.stopped && this.active === 0) this.idle.splice(0).forEach((resolve) => resolve());
      this.pump();
    }
  }
}
