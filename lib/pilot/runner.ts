import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Server } from 'node:http';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { REVISION_LABEL } from '../names.ts';
import type { ApplicationProbe } from '../probes/types.ts';
import { applicationReady, NO_PROBE } from '../probes/verdict.ts';
import { serveProbes } from '../serve.ts';
import { createPilotMetrics, type PilotMetrics } from './metrics.ts';
import { type ActionCommands, adoptStatuses, nextAction, outputTail, withStatus } from './actions.ts';
import { Child, type ChildExit, describeExit, exitCodeOf, runCommand } from './process.ts';
import { PilotReporter } from './reporter.ts';
import type { Pilot, PilotActionRequest, PilotPhase } from './schema.ts';
import { desiredStatus, type PilotState } from './status.ts';
import { zombieChildren } from './zombies.ts';

export interface RunnerOptions {
  /** The application and its arguments. */
  command: string[];
  kc: KubeConfig;
  namespace: string;
  podName: string;
  podUid?: string;
  /** The pod's controller-revision-hash; read from the Pod when not given. */
  revision?: string;
  /** Undefined: run the application without reading it (probe "none"). */
  probe?: ApplicationProbe;
  preStart?: string;
  preStop?: string;
  preStartTimeoutMs: number;
  preStopTimeoutMs: number;
  /** From the stop signal sent to the application to SIGKILL. */
  stopTimeoutMs: number;
  heartbeatMs: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  /** How long Initializing waits for the Pilot before starting the application anyway; 0: for ever. */
  pilotTimeoutMs: number;
  probeHost: string;
  probePort: number;
  /** The actions the controller may request through spec.actions, by name; any other is refused. */
  actions?: ActionCommands;
  log: Logger;
  metrics?: PilotMetrics;
}

/** Signals passed on to the application as they come. SIGTERM and SIGINT start the stop sequence instead. */
const PASSED_ON: NodeJS.Signals[] = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'];
const STOPPING: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
/** The last status write on the way out; the kubelet's grace period covers it. */
const FINAL_FLUSH_MS = 3000;
/** An action starts only once its Running status is on the server: so that a restart never runs it again. */
const ACTION_CLAIM_MS = 10_000;
/** No deadline of the pilot's own for an action (a decommission streams for hours); the pod's stop ends it. */
const ACTION_TIMEOUT_MS = 2 ** 31 - 1;

const signalCode = (sig: NodeJS.Signals): number => 128 + (constants.signals[sig] ?? 0);

/**
 * The in-pod pilot: PID 1 of the application container. It waits for its
 * Pilot (Initializing), runs the pre-start hook (PreStart), starts the
 * application as its child and reads it with the probe (Running); on SIGTERM
 * or SIGINT runs the pre-stop hook and stops the application within the stop
 * timeout (PreStop); and reports how it ended (Stopped, Failed) before exiting
 * with the application's code. Every state change goes to the reporter, which
 * decides when to write.
 */
export class PilotRunner {
  private readonly o: RunnerOptions;
  private readonly log: Logger;
  readonly metrics: PilotMetrics;
  private readonly reporter: PilotReporter;
  private readonly state: PilotState;
  private readonly stopping = new AbortController();
  private stopSignal: NodeJS.Signals | undefined;
  private child: Child | undefined;
  private server: Server | undefined;
  private probing: Promise<void> | undefined;
  private readonly probingStop = new AbortController();
  private readonly stopActions = new AbortController();
  private zombies = 0;
  /** The controller's requests, as the Pilot last read showed them; the uid of that Pilot. */
  private requests: PilotActionRequest[] | undefined;
  private requestsOf: string | undefined;
  private acting = false;
  private readonly actionsDone: Promise<void>[] = [];

  constructor(o: RunnerOptions) {
    this.o = o;
    this.log = o.log;
    this.metrics = o.metrics ?? createPilotMetrics();
    this.reporter = new PilotReporter({
      api: o.kc.makeApiClient(CustomObjectsApi),
      namespace: o.namespace,
      name: o.podName,
      ...(o.podUid ? { podUid: o.podUid } : {}),
      log: o.log,
      metrics: this.metrics,
      heartbeatMs: o.heartbeatMs,
      onPilot: (p) => this.onPilot(p),
    });
    this.state = {
      phase: 'Initializing',
      revision: o.revision,
      // A probe's block exists from the start, empty (unknown) until it has read the application.
      application: { probe: o.probe?.name ?? NO_PROBE },
      exitCode: undefined,
      message: 'waiting for the Pilot of this pod',
      actions: [],
    };
  }

  /** Runs the whole lifecycle; resolves with the exit code for the pilot. */
  async run(): Promise<number> {
    const onStop = (sig: NodeJS.Signals): void => this.onStopSignal(sig);
    const onPass = (sig: NodeJS.Signals): void => this.passOn(sig);
    for (const s of STOPPING) process.on(s, onStop);
    for (const s of PASSED_ON) process.on(s, onPass);
    try {
      return await this.lifecycle();
    } finally {
      for (const s of STOPPING) process.off(s, onStop);
      for (const s of PASSED_ON) process.off(s, onPass);
      this.server?.close();
      this.server?.closeAllConnections();
    }
  }

  /** /readyz: Running, the application alive, and the probe says it is up. */
  ready(): boolean {
    return this.state.phase === 'Running' && this.child?.running === true && applicationReady(this.state.application).ok;
  }

  get phase(): PilotPhase {
    return this.state.phase;
  }

  private onStopSignal(sig: NodeJS.Signals): void {
    if (this.stopSignal) {
      this.log.info({ signal: sig }, 'already stopping');
      return;
    }
    this.log.info({ signal: sig, phase: this.state.phase }, 'stop requested');
    this.stopSignal = sig;
    this.stopping.abort();
  }

  private passOn(sig: NodeJS.Signals): void {
    if (this.child?.running && this.child.signal(sig)) {
      this.metrics.signalsForwarded.inc({ signal: sig });
      this.log.info({ signal: sig, pid: this.child.pid }, 'passed the signal on to the application');
    } else {
      this.log.info({ signal: sig, phase: this.state.phase }, 'no application to pass the signal on to');
    }
  }

  private update(change: Partial<PilotState>): void {
    const before = this.state.phase;
    Object.assign(this.state, change);
    if (before !== this.state.phase) {
      this.metrics.phase.set({ phase: before }, 0);
      this.log.info({ phase: this.state.phase, message: this.state.message }, `phase ${this.state.phase}`);
    }
    this.metrics.phase.set({ phase: this.state.phase }, 1);
    this.reporter.set(desiredStatus(this.state));
  }

  private async lifecycle(): Promise<number> {
    this.server = await serveProbes({ host: this.o.probeHost, port: this.o.probePort, registry: this.metrics.registry, ready: () => this.ready() });
    this.reporter.start();
    this.update({});
    // In parallel with the wait below; until it is known the Pilot reports no revision, which holds hooks.
    if (this.state.revision === undefined) void this.readRevision().then((revision) => revision !== undefined && this.update({ revision }));

    // Initializing: wait for the Pilot (or give up waiting and run without it for now).
    const aborted = new Promise<'stop'>((resolve) => {
      if (this.stopping.signal.aborted) resolve('stop');
      this.stopping.signal.addEventListener('abort', () => resolve('stop'), { once: true });
    });
    const waitAc = new AbortController();
    const waits: Promise<unknown>[] = [this.reporter.found, aborted];
    if (this.o.pilotTimeoutMs > 0) waits.push(sleep(this.o.pilotTimeoutMs, 'timeout', { signal: waitAc.signal }).catch(() => undefined));
    const waited = await Promise.race(waits);
    waitAc.abort();
    if (waited === 'timeout') {
      this.log.warn({ waitedMs: this.o.pilotTimeoutMs }, 'no Pilot for this pod yet: starting the application anyway; its state is reported once the Pilot exists');
    }
    if (this.stopSignal) return this.finish('Stopped', signalCode(this.stopSignal), `stopped by ${this.stopSignal} before the application started`);

    // PreStart.
    if (this.o.preStart) {
      this.update({ phase: 'PreStart', message: 'running the pre-start hook' });
      const r = await runCommand(this.o.preStart, { timeoutMs: this.o.preStartTimeoutMs, signal: this.stopping.signal, env: this.hookEnv('PreStart') });
      const result = r.aborted ? 'aborted' : r.timedOut ? 'timeout' : r.code === 0 ? 'ok' : 'failed';
      this.metrics.hookRuns.inc({ hook: 'pre-start', result });
      this.log.info({ hook: 'pre-start', result, code: r.code, durationMs: r.durationMs, error: r.error }, 'pre-start hook done');
      if (this.stopSignal) return this.finish('Stopped', signalCode(this.stopSignal), `stopped by ${this.stopSignal} during the pre-start hook`);
      if (result !== 'ok') {
        const why = r.timedOut ? `did not finish within ${this.o.preStartTimeoutMs / 1000}s` : r.error ? `could not run: ${r.error}` : `exited with code ${r.code}`;
        return this.finish('Failed', r.code === 0 ? 1 : r.code, `the pre-start hook ${why}; the application was not started`);
      }
    }
    if (this.stopSignal) return this.finish('Stopped', signalCode(this.stopSignal), `stopped by ${this.stopSignal} before the application started`);

    // Running.
    let child: Child;
    try {
      child = await Child.start(this.o.command);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126;
      return this.finish('Failed', code, `could not start ${this.o.command.join(' ')}: ${(err as Error).message}`);
    }
    this.child = child;
    this.log.info({ pid: child.pid, command: child.command }, 'application started');
    this.update({ phase: 'Running', message: 'application running' });
    this.probing = this.probeLoop();
    this.considerActions();

    const first = await Promise.race([child.exited, aborted]);
    let exit: ChildExit;
    let killed = false;
    if (first === 'stop') {
      const sig = this.stopSignal ?? 'SIGTERM';
      if (this.o.preStop && child.running) {
        this.update({ phase: 'PreStop', message: `stopping on ${sig}: running the pre-stop hook` });
        const r = await runCommand(this.o.preStop, { timeoutMs: this.o.preStopTimeoutMs, env: this.hookEnv('PreStop') });
        const result = r.timedOut ? 'timeout' : r.code === 0 ? 'ok' : 'failed';
        this.metrics.hookRuns.inc({ hook: 'pre-stop', result });
        // A failed pre-stop hook does not keep the pod alive: Kubernetes is stopping it regardless.
        this.log.info({ hook: 'pre-stop', result, code: r.code, durationMs: r.durationMs, error: r.error }, 'pre-stop hook done');
      }
      this.update({ phase: 'PreStop', message: `stopping on ${sig}: sent ${sig} to the application, SIGKILL after ${this.o.stopTimeoutMs / 1000}s` });
      if (child.running) {
        this.metrics.signalsForwarded.inc({ signal: sig });
        // After the pre-stop hook has returned: the log shows the order (a drain finished before the signal).
        this.log.info({ signal: sig, pid: child.pid, stopTimeoutMs: this.o.stopTimeoutMs }, 'signalling the application to stop');
      }
      const r = await child.stop(sig, this.o.stopTimeoutMs);
      exit = r.exit;
      killed = r.killed;
    } else {
      exit = first;
    }
    this.probingStop.abort();
    await this.probing;
    // Whatever the application left in its process group goes with it.
    child.signalGroup('SIGKILL');
    const code = exitCodeOf(exit);
    this.log.info({ code: exit.code, signal: exit.signal, killed }, `application ${describeExit(exit)}`);
    const phase: PilotPhase = this.stopSignal || code === 0 ? 'Stopped' : 'Failed';
    const message = killed
      ? `the application did not stop within ${this.o.stopTimeoutMs / 1000}s of ${this.stopSignal}; killed`
      : `the application ${describeExit(exit)}${this.stopSignal ? ` after ${this.stopSignal}` : ''}`;
    return this.finish(phase, code, message);
  }

  private async finish(phase: 'Stopped' | 'Failed', exitCode: number, message: string): Promise<number> {
    this.probingStop.abort();
    // An action still running ends with the application (the stop signal aborts it); its end goes in the last write.
    this.stopActions.abort();
    await Promise.all(this.actionsDone);
    this.update({ phase, exitCode, message });
    const ok = await this.reporter.flush(FINAL_FLUSH_MS);
    if (!ok) this.log.warn('could not write the final Pilot status in time');
    await this.reporter.stop();
    this.log.info({ phase, exitCode, statusWrites: this.reporter.writes }, 'pilot exiting');
    return exitCode;
  }

  /**
   * A version of the Pilot, found or returned by a status write. A Pilot new
   * to this process (first found, or replaced) brings the statuses of its
   * requests: the pilot starts from them, so that a request it ran before a
   * restart is not run again.
   */
  private onPilot(p: Pilot): void {
    const uid = p.metadata.uid ?? '';
    if (uid !== this.requestsOf) {
      this.requestsOf = uid;
      if (!this.acting) this.update({ actions: adoptStatuses(p.status?.actions, new Date()) });
    }
    this.requests = p.spec.actions;
    this.considerActions();
  }

  /** Start the next request, if there is one and the application runs; one at a time. */
  private considerActions(): void {
    if (this.acting || this.state.phase !== 'Running' || this.stopSignal || this.stopActions.signal.aborted) return;
    const step = nextAction(this.requests, this.state.actions ?? [], this.o.actions ?? {});
    if (step.kind === 'none') return;
    const now = new Date().toISOString();
    const { id, action } = step.request;
    if (step.kind === 'refuse') {
      this.log.warn({ id, action }, step.message);
      this.metrics.actionRuns.inc({ action, result: 'refused' });
      this.update({ actions: withStatus(this.state.actions ?? [], { id, action, state: 'Refused', startTime: now, endTime: now, message: step.message }) });
      queueMicrotask(() => this.considerActions());
      return;
    }
    this.acting = true;
    const done = this.runAction(step.request, step.command).finally(() => {
      this.acting = false;
      this.considerActions();
    });
    this.actionsDone.push(done);
  }

  private async runAction(request: PilotActionRequest, command: string): Promise<void> {
    const { id, action } = request;
    const startTime = new Date().toISOString();
    const before = this.state.actions ?? [];
    this.update({ actions: withStatus(before, { id, action, state: 'Running', startTime, message: `running: ${command}`.slice(0, 1024) }) });
    // Claim it first: a restart that finds it Running does not run it again.
    if (!(await this.reporter.flush(ACTION_CLAIM_MS))) {
      this.log.warn({ id, action }, 'could not write that the action runs: not starting it; it is tried again at the next read of the Pilot');
      this.update({ actions: before.filter((s) => s.id !== id) });
      return;
    }
    this.log.info({ id, action, command }, 'running a requested action');
    let out = '';
    const r = await runCommand(command, {
      timeoutMs: ACTION_TIMEOUT_MS,
      // The stop signal ends it at once: the application it acts on is about to stop.
      signal: AbortSignal.any([this.stopping.signal, this.stopActions.signal]),
      env: { ...this.hookEnv('Running'), STS_PILOT_ACTION: action, STS_PILOT_ACTION_ID: id },
      onOutput: (chunk) => {
        out = (out + chunk).slice(-16_384);
      },
    });
    const ok = r.code === 0 && !r.aborted && !r.error;
    const message = r.error
      ? `could not run: ${r.error}`
      : r.aborted
        ? 'stopped: the pod is stopping'
        : ok
          ? 'done'
          : `exited with code ${r.code}`;
    this.metrics.actionRuns.inc({ action, result: ok ? 'ok' : r.aborted ? 'aborted' : 'failed' });
    this.log.info({ id, action, code: r.code, durationMs: r.durationMs, output: outputTail(out, 5, 1000) }, `requested action ${ok ? 'succeeded' : 'failed'}`);
    const status = { id, action, state: ok ? ('Succeeded' as const) : ('Failed' as const), startTime, endTime: new Date().toISOString(), exitCode: Math.min(r.code, 255), message };
    const output = outputTail(out);
    this.update({ actions: withStatus(this.state.actions ?? [], output ? { ...status, output } : status) });
  }

  private hookEnv(phase: PilotPhase): NodeJS.ProcessEnv {
    return {
      ...process.env,
      STS_PILOT_PHASE: phase,
      POD_NAME: this.o.podName,
      POD_NAMESPACE: this.o.namespace,
      ...(this.child ? { STS_PILOT_APP_PID: String(this.child.pid) } : {}),
      ...(this.stopSignal ? { STS_PILOT_STOP_SIGNAL: this.stopSignal } : {}),
    };
  }

  /** The pod's revision label, when the downward API did not give it: needs `get` on pods. */
  private async readRevision(): Promise<string | undefined> {
    const core = this.o.kc.makeApiClient(CoreV1Api);
    for (let attempt = 1; attempt <= 3 && !this.stopSignal; attempt++) {
      try {
        const pod = await core.readNamespacedPod({ name: this.o.podName, namespace: this.o.namespace });
        const rev = pod.metadata?.labels?.[REVISION_LABEL];
        if (!rev) this.log.warn(`pod has no ${REVISION_LABEL} label: the Pilot reports no revision`);
        return rev;
      } catch (err) {
        this.log.warn({ attempt, err: describeError(err) }, 'cannot read this pod for its revision (set POD_REVISION from the downward API)');
        await sleep(1000 * attempt);
      }
    }
    return undefined;
  }

  /** Read the application every probe interval, and count zombies on the way; never two probes at once. */
  private async probeLoop(): Promise<void> {
    const stop = this.probingStop.signal;
    while (!stop.aborted) {
      if (this.o.probe) await this.probeOnce(this.o.probe, stop);
      this.countZombies();
      await sleep(this.o.probeIntervalMs, undefined, { signal: stop }).catch(() => undefined);
    }
  }

  private async probeOnce(probe: ApplicationProbe, stop: AbortSignal): Promise<void> {
    const end = this.metrics.probeDuration.startTimer();
    const signal = AbortSignal.any([stop, AbortSignal.timeout(this.o.probeTimeoutMs)]);
    let application;
    try {
      application = await probe.probe(signal);
    } catch (err) {
      if (stop.aborted) return;
      application = { probe: probe.name, error: `no answer within ${this.o.probeTimeoutMs / 1000}s: ${describeError(err, 200)}` };
    }
    end();
    const ok = applicationReady(application).ok;
    this.metrics.probes.inc({ result: application.error ? (ok ? 'partial' : 'error') : 'ok' });
    if (stop.aborted) return;
    this.update({ application });
  }

  private countZombies(): void {
    const known = new Set<number>(this.child ? [this.child.pid] : []);
    const n = zombieChildren(known).length;
    if (n > this.zombies) this.log.warn({ zombies: n }, 'exited orphans are waiting to be reaped; the pilot cannot reap them (see docs/pilot.md)');
    this.zombies = n;
    this.metrics.zombies.set(n);
  }
}
