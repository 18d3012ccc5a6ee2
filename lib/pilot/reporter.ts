import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { describeError, statusCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import { API_GROUP, API_VERSION } from '../names.ts';
import type { PilotMetrics } from './metrics.ts';
import { parsePilot, PILOT_PLURAL, podOwnerUid, type Pilot, type PilotCondition, PilotStatus } from './schema.ts';
import { decideWrite, type DesiredStatus, stampStatus } from './status.ts';

export interface ReporterOptions {
  api: CustomObjectsApi;
  namespace: string;
  /** The pod's name, which is the Pilot's. */
  name: string;
  /** When known (downward API), only a Pilot owned by this pod is ours. */
  podUid?: string;
  log: Logger;
  metrics: PilotMetrics;
  heartbeatMs: number;
  /**
   * Every version of the Pilot the reporter sees: the one it found, and the one
   * each status write returns (the whole object, spec included). This is how
   * the pilot reads the controller's requests without a read of its own: a
   * request is seen at the next write, within one heartbeat. Called
   * synchronously, before the next write is decided.
   */
  onPilot?: (p: Pilot) => void;
  /** Floor between two writes, default 1 s. */
  minIntervalMs?: number;
  now?: () => number;
}

// While waiting for the controller to create the Pilot: a GET every 2 s at most.
const RESOLVE_BACKOFF = { baseMs: 250, maxMs: 2000 };

/**
 * Finds this pod's Pilot and keeps its status up to date: one loop, one write
 * at a time, each write decided by decideWrite (on change or when a heartbeat
 * is due). A write replaces the whole status with a JSON patch through the
 * status subresource, guarded by a test of the Pilot's uid: the pilot is the
 * status' only writer, and never writes into a Pilot other than the one it
 * found (a Pilot left by an earlier pod of the same name, say). When the
 * Pilot goes away or is replaced, it looks for it again.
 */
export class PilotReporter {
  private readonly o: ReporterOptions;
  private readonly now: () => number;
  private desired: DesiredStatus | undefined;
  private seq = 0;
  private writtenSeq = 0;
  private written: PilotStatus | undefined;
  private writtenAt: number | undefined;
  private conditions: PilotCondition[] | undefined;
  private pilotUid: string | undefined;
  /** flush() wants everything up to this seq written now, schedule aside. */
  private forceSeq = 0;
  private stopped = false;
  private readonly sleepers = new Set<{ interruptible: boolean; done: () => void }>();
  private loopDone: Promise<void> | undefined;
  private waitingLogged = '';
  private readonly flushWaiters: { seq: number; resolve: () => void }[] = [];
  private foundResolve!: (p: Pilot) => void;
  /** Resolves once this pod's Pilot has been found. */
  readonly found: Promise<Pilot>;
  /** Successful writes, for tests and figures. */
  writes = 0;

  constructor(o: ReporterOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.found = new Promise((resolve) => (this.foundResolve = resolve));
  }

  start(): void {
    this.loopDone ??= this.loop();
  }

  /** The status the pilot wants the Pilot to show; written when decideWrite says so. */
  set(desired: DesiredStatus): void {
    this.desired = desired;
    this.seq++;
    this.wake();
  }

  /** Write the current status now, schedule aside. False when it could not within timeoutMs. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (!this.desired || this.writtenSeq === this.seq) return true;
    const seq = this.seq;
    this.forceSeq = seq;
    const written = new Promise<void>((resolve) => this.flushWaiters.push({ seq, resolve }));
    this.wake();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const ok = await Promise.race([written.then(() => true as const), timeout]);
    clearTimeout(timer);
    return ok;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake(true);
    await this.loopDone;
  }

  /** Ends the sleeps that wait on the schedule (all of them at stop). */
  private wake(all = false): void {
    for (const s of [...this.sleepers]) if (all || s.interruptible) s.done();
  }

  /** Sleep; `interruptible` sleeps end early on set() and flush(); every sleep ends at stop(). */
  private sleep(ms: number, interruptible: boolean): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const s = {
        interruptible,
        done: (): void => {
          clearTimeout(t);
          this.sleepers.delete(s);
          resolve();
        },
      };
      const t = setTimeout(s.done, ms);
      this.sleepers.add(s);
    });
  }

  private async loop(): Promise<void> {
    let resolveFailures = 0;
    let writeFailures = 0;
    while (!this.stopped) {
      if (this.pilotUid === undefined) {
        if (await this.resolve()) resolveFailures = 0;
        else {
          resolveFailures++;
          await this.sleep(Math.min(RESOLVE_BACKOFF.baseMs * 2 ** (resolveFailures - 1), RESOLVE_BACKOFF.maxMs), false);
          continue;
        }
      }
      if (!this.desired) {
        await this.sleep(this.o.heartbeatMs, true);
        continue;
      }
      const forced = this.writtenSeq < this.forceSeq;
      const decision = forced
        ? ({ write: true, why: 'final' } as const)
        : decideWrite({
            written: this.written,
            writtenAt: this.writtenAt,
            desired: this.desired,
            now: this.now(),
            heartbeatMs: this.o.heartbeatMs,
            minIntervalMs: this.o.minIntervalMs ?? 1000,
          });
      if (!decision.write) {
        await this.sleep(decision.retryInMs, true);
        continue;
      }
      const seq = this.seq;
      try {
        await this.write(this.desired, decision.why);
        writeFailures = 0;
        this.writtenSeq = seq;
        for (const w of this.flushWaiters.filter((x) => x.seq <= seq)) w.resolve();
        this.flushWaiters.splice(0, this.flushWaiters.length, ...this.flushWaiters.filter((x) => x.seq > seq));
      } catch (err) {
        const code = statusCode(err);
        this.o.metrics.statusWriteErrors.inc({ code: String(code ?? 'none') });
        writeFailures++;
        const delay = Math.min(1000 * 2 ** (writeFailures - 1), this.o.heartbeatMs);
        // 404: the Pilot is gone; 409/422: the uid test failed (replaced) or the
        // server refused the status. Look for it again, after the backoff either way.
        if (code === 404 || code === 409 || code === 422) {
          this.pilotUid = undefined;
          this.written = undefined;
        }
        this.o.log.warn({ pilot: this.id, code, err: describeError(err), retryInMs: delay }, 'could not write the Pilot status');
        await this.sleep(delay, false);
      }
    }
  }

  private get id(): string {
    return `${this.o.namespace}/${this.o.name}`;
  }

  /** Look for our Pilot once; true when found. */
  private async resolve(): Promise<boolean> {
    const once = (why: string, extra: Record<string, unknown> = {}): void => {
      if (this.waitingLogged === why) return;
      this.waitingLogged = why;
      this.o.log.info({ pilot: this.id, ...extra }, why);
    };
    let raw: unknown;
    try {
      raw = await this.o.api.getNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: this.o.namespace, plural: PILOT_PLURAL, name: this.o.name });
    } catch (err) {
      if (statusCode(err) === 404) once('waiting for the Pilot of this pod to be created by the sts-pilot controller');
      else once('cannot read the Pilot of this pod', { err: describeError(err) });
      return false;
    }
    const parsed = parsePilot(raw);
    if ('error' in parsed) {
      once('the Pilot of this pod does not parse; waiting', { error: parsed.error });
      return false;
    }
    const owner = podOwnerUid(parsed.pilot);
    if (this.o.podUid && owner !== this.o.podUid) {
      once('the Pilot of this name belongs to an earlier pod; waiting for ours', { owner, podUid: this.o.podUid });
      return false;
    }
    this.pilotUid = parsed.pilot.metadata.uid ?? '';
    // Keep condition transition times across a restart of the container.
    this.conditions ??= parsed.pilot.status?.conditions;
    this.waitingLogged = '';
    this.o.log.info({ pilot: this.id, uid: this.pilotUid }, 'found the Pilot of this pod');
    this.foundResolve(parsed.pilot);
    this.o.onPilot?.(parsed.pilot);
    return true;
  }

  private async write(desired: DesiredStatus, why: string): Promise<void> {
    const status = PilotStatus.parse(stampStatus(desired, this.written?.conditions ?? this.conditions, new Date(this.now())));
    const returned: unknown = await this.o.api.patchNamespacedCustomObjectStatus(
      {
        group: API_GROUP,
        version: API_VERSION,
        namespace: this.o.namespace,
        plural: PILOT_PLURAL,
        name: this.o.name,
        body: [
          { op: 'test', path: '/metadata/uid', value: this.pilotUid },
          { op: 'add', path: '/status', value: status },
        ],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    this.written = status;
    this.writtenAt = this.now();
    this.conditions = status.conditions;
    this.writes++;
    this.o.metrics.statusWrites.inc({ why });
    this.o.log.debug({ pilot: this.id, why, phase: status.phase }, 'wrote the Pilot status');
    const parsed = parsePilot(returned);
    if ('pilot' in parsed) this.o.onPilot?.(parsed.pilot);
  }
}
