import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Child processes of the in-pod pilot. Each runs in its own process group
 * (`detached`: setsid), so that whatever it leaves behind can be signalled as
 * one: processes that outlive the child are killed with its group rather than
 * left to re-parent to PID 1 (the pilot), which cannot reap them: Node waits
 * only for the pids it spawned itself. See docs/pilot.md.
 */

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** As a shell reports it: the exit code, or 128 + the number of the signal that killed it. */
export function exitCodeOf(e: ChildExit): number {
  if (e.code !== null) return e.code;
  const n = e.signal ? constants.signals[e.signal] : undefined;
  return n !== undefined ? 128 + n : 255;
}

export function describeExit(e: ChildExit): string {
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

/** Signal a whole process group; false when none of it is left. */
export function signalGroup(pgid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Default: inherit, so the application writes straight to the container's log. 'pipe': stdout and stderr to the caller (stdin ignored). */
  stdio?: 'inherit' | 'ignore' | 'pipe';
}

export class Child {
  readonly pid: number;
  readonly command: string;
  /** Resolves when the child has exited and been reaped. */
  readonly exited: Promise<ChildExit>;
  private exit: ChildExit | undefined;
  private readonly proc: ChildProcess;

  private constructor(proc: ChildProcess, command: string) {
    this.proc = proc;
    this.command = command;
    this.pid = proc.pid as number;
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /** Resolves once the process runs; rejects when it cannot be started (ENOENT, EACCES). */
  static start(argv: readonly string[], o: SpawnOptions = {}): Promise<Child> {
    const [file, ...args] = argv;
    if (!file) return Promise.reject(new Error('no command to run'));
    return new Promise((resolve, reject) => {
      const stdio = o.stdio === 'pipe' ? (['ignore', 'pipe', 'pipe'] as const) : (o.stdio ?? 'inherit');
      const proc = spawn(file, args, { stdio: [...(typeof stdio === 'string' ? [stdio, stdio, stdio] : stdio)], detached: true, env: o.env ?? process.env, cwd: o.cwd });
      proc.once('error', (err) => reject(err));
      proc.once('spawn', () => resolve(new Child(proc, argv.join(' '))));
    });
  }

  /** With stdio 'pipe': each chunk the child writes to stdout or stderr. */
  onOutput(f: (chunk: string) => void): void {
    this.proc.stdout?.on('data', (d: Buffer) => f(d.toString()));
    this.proc.stderr?.on('data', (d: Buffer) => f(d.toString()));
  }

  /** Resolves once its stdio is closed (after 'exit', the last output may still be on its way). */
  closed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.stdout === null || this.proc.stdout.closed) resolve();
      else this.proc.once('close', () => resolve());
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get exitStatus(): ChildExit | undefined {
    return this.exit;
  }

  /** Signal the child itself (as tini does by default): it decides what to tell its own children. */
  signal(sig: NodeJS.Signals): boolean {
    if (!this.running) return false;
    try {
      return this.proc.kill(sig);
    } catch {
      return false;
    }
  }

  /** Signal the child's whole process group, the child included if it still runs. */
  signalGroup(sig: NodeJS.Signals): boolean {
    return signalGroup(this.pid, sig);
  }

  /**
   * Stop: `sig` to the child, then SIGKILL to its group after `timeoutMs`.
   * Resolves with how it exited and whether it had to be killed.
   */
  async stop(sig: NodeJS.Signals, timeoutMs: number): Promise<{ exit: ChildExit; killed: boolean }> {
    if (this.exit) return { exit: this.exit, killed: false };
    this.signal(sig);
    const ac = new AbortController();
    const deadline = sleep(timeoutMs, 'timeout' as const, { signal: ac.signal }).catch(() => 'cancelled' as const);
    const first = await Promise.race([this.exited, deadline]);
    ac.abort();
    if (first !== 'timeout' && first !== 'cancelled') return { exit: first, killed: false };
    this.signalGroup('SIGKILL');
    return { exit: await this.exited, killed: true };
  }
}

export interface CommandResult {
  /** Exit code as a shell reports it; 127 when /bin/sh could not be started. */
  code: number;
  exit: ChildExit | undefined;
  timedOut: boolean;
  aborted: boolean;
  error?: string;
  durationMs: number;
}

export interface RunCommandOptions extends SpawnOptions {
  timeoutMs: number;
  /** Stops the command early (the pod is being stopped). */
  signal?: AbortSignal;
  /** Between SIGTERM and SIGKILL when the command overruns or is aborted. */
  graceMs?: number;
  /** Its output, chunk by chunk (stdio 'pipe'); otherwise it goes where stdio says. */
  onOutput?: (chunk: string) => void;
}

/**
 * Run a lifecycle hook with /bin/sh -c, in its own process group, within a
 * deadline. When it exits, whatever it started in the background is killed
 * with its group: a hook must finish its work before it returns.
 */
export async function runCommand(command: string, o: RunCommandOptions): Promise<CommandResult> {
  const started = Date.now();
  let child: Child;
  try {
    child = await Child.start(['/bin/sh', '-c', command], o.onOutput ? { ...o, stdio: 'pipe' } : o);
  } catch (err) {
    return { code: 127, exit: undefined, timedOut: false, aborted: false, error: (err as Error).message, durationMs: Date.now() - started };
  }
  if (o.onOutput) child.onOutput(o.onOutput);
  const ac = new AbortController();
  const overrun = sleep(o.timeoutMs, 'timeout' as const, { signal: ac.signal }).catch(() => 'cancelled' as const);
  const aborted = new Promise<'aborted'>((resolve) => {
    if (o.signal?.aborted) resolve('aborted');
    o.signal?.addEventListener('abort', () => resolve('aborted'), { once: true, signal: ac.signal });
  });
  const first = await Promise.race([child.exited, overrun, aborted]);
  ac.abort();
  let timedOut = false;
  let wasAborted = false;
  if (first === 'timeout' || first === 'aborted') {
    timedOut = first === 'timeout';
    wasAborted = first === 'aborted';
    child.signalGroup('SIGTERM');
    const gc = new AbortController();
    const grace = sleep(o.graceMs ?? 2000, 'grace' as const, { signal: gc.signal }).catch(() => 'cancelled' as const);
    if ((await Promise.race([child.exited, grace])) === 'grace') child.signalGroup('SIGKILL');
    gc.abort();
  }
  const exit = await child.exited;
  signalGroup(child.pid, 'SIGKILL');
  if (o.onOutput) await Promise.race([child.closed(), sleep(1000)]);
  return { code: exitCodeOf(exit), exit, timedOut, aborted: wasAborted, durationMs: Date.now() - started };
}
