// The pilot processes a PodRuntime (test/es, test/kafka, test/patroni) starts
// for its pods: stopped as a kubelet would stop a pod's container, and asked
// for readiness. PilotProcess (test/pilot/harness.ts) keeps track of every
// pilot so that none, nor what it started, outlives the test process.

import type { V1Pod } from '@kubernetes/client-node';
import type { Cluster } from '../integration/harness.ts';
import { PilotProcess } from '../pilot/harness.ts';

/** Run on exit, after test/pilot/harness.ts has killed the pilots still running (synchronous work only). */
const atExit: (() => void)[] = [];
let exitHook = false;

/** Runs f when the test process exits, after the pilots still running were SIGKILLed. */
export function afterPilotsKilled(f: () => void): void {
  atExit.push(f);
  if (exitHook) return;
  exitHook = true;
  // Registered after harness.ts' own exit handler (imported above), so it runs after it.
  process.on('exit', () => {
    for (const f of atExit) f();
  });
}

export interface PodPilotOptions {
  c: Cluster;
  pod: V1Pod;
  /** The application (under `setpriv --pdeathsig KILL` of the caller's own). */
  command: string[];
  env: Record<string, string>;
  /** --app and --app-url of the pilot. */
  app: string;
  appUrl: string;
  /** More pilot flags, after the common ones. */
  flags?: string[];
}

/**
 * Starts a pod's pilot as its container would run it: the pod's identity,
 * under `setpriv --pdeathsig KILL` (as every PilotProcess), probing every
 * second, heartbeat 5 s, --stop-timeout 60. Resolves once the process runs,
 * before it serves.
 */
export async function startPodPilot(o: PodPilotOptions): Promise<PilotProcess> {
  const pilot = await PilotProcess.start({
    c: o.c,
    ns: o.pod.metadata?.namespace ?? '',
    pod: o.pod.metadata?.name ?? '',
    podUid: o.pod.metadata?.uid,
    revision: o.pod.metadata?.labels?.['controller-revision-hash'],
    command: o.command,
    env: o.env,
    flags: ['--app', o.app, '--app-url', o.appUrl, '--probe-interval', '1', '--heartbeat', '5', '--stop-timeout', '60', ...(o.flags ?? [])],
  });
  return pilot;
}

export function pilotRunning(pilot: PilotProcess | undefined): pilot is PilotProcess {
  return pilot !== undefined && !pilot.exit;
}

/** SIGTERM, SIGKILL if it still runs after killAfterMs; resolves when it has exited. Nothing for no pilot or an exited one. */
export async function terminatePilot(pilot: PilotProcess | undefined, killAfterMs: number): Promise<void> {
  if (!pilotRunning(pilot)) return;
  pilot.signal('SIGTERM');
  const timer = setTimeout(() => pilot.signal('SIGKILL'), killAfterMs);
  await pilot.exited;
  clearTimeout(timer);
}

/**
 * A pod's stop: SIGTERM to its pilot, SIGKILL after 90 s (a grace period
 * longer than the pilot's own --stop-timeout 60). False if no pilot ran.
 */
export async function stopPodPilot(name: string, pilot: PilotProcess | undefined, log?: (line: string) => void): Promise<boolean> {
  if (!pilotRunning(pilot)) return false;
  log?.(`${name}: stopping (SIGTERM to the pilot)`);
  await terminatePilot(pilot, 90_000);
  log?.(`${name}: pilot exited ${JSON.stringify(pilot.exit)}`);
  return true;
}

/** A pod's readiness: its pilot runs and its /readyz answers 200. */
export async function podPilotReady(pilot: PilotProcess | undefined): Promise<boolean> {
  return pilotRunning(pilot) && (await pilot.get('/readyz')).status === 200;
}

/** Stops these pilots at once (SIGKILL after 30 s). */
export async function terminatePilots(pilots: (PilotProcess | undefined)[]): Promise<void> {
  await Promise.all(pilots.map((p) => terminatePilot(p, 30_000)));
}
