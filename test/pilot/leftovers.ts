// Processes a test started must not outlive it. The pilot starts its
// application in a session of its own (setsid), so SIGKILL to a pilot leaves
// the application, and what the application started, running for ever. These
// helpers, on Linux's /proc, find and kill what a PilotProcess left.
//
// Every PilotProcess that runs the default test application (test/pilot/app.ts)
// carries MARK_ENV=<this test process's run id> in its environment, which the
// pilot passes on to the application and everything it starts: that is how the
// end-of-run check (test/leftovers.hooks.ts) finds leftovers of this run, and
// only of this run (another run on the machine has another id).

import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export const MARK_ENV = 'STS_PILOT_TEST_APP_RUN';
/** Unique to this test process. */
export const runId = `${process.pid}-${randomUUID()}`;

interface Stat {
  pid: number;
  state: string;
  ppid: number;
  pgid: number;
}

function stat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses.
  const [state, ppid, pgid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (state === undefined) return undefined;
  return { pid, state, ppid: Number(ppid), pgid: Number(pgid) };
}

const read = (pid: number, what: 'cmdline' | 'environ'): string => {
  try {
    return readFileSync(`/proc/${pid}/${what}`, 'utf8');
  } catch {
    return '';
  }
};

/** Live processes (zombies left out: they are dead already). */
function processes(): Stat[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  return names
    .filter((d) => /^[0-9]+$/.test(d))
    .map((d) => stat(Number(d)))
    .filter((s): s is Stat => s !== undefined && s.state !== 'Z' && s.state !== 'X');
}

const kill = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already, or not ours to signal
  }
};

/**
 * SIGKILL a process, everything under it, and the process groups they lead or
 * joined (what an application started and then left re-parented elsewhere
 * stays in its group). The process is stopped first so that it cannot start
 * more while its tree is read. Never signals this test process's own group.
 * Synchronous, so usable in an 'exit' handler.
 */
export function killTree(pid: number): void {
  if (!(pid > 1) || pid === process.pid) return;
  kill(pid, 'SIGSTOP');
  const all = processes();
  const tree: Stat[] = [];
  const root = all.find((s) => s.pid === pid);
  if (root) tree.push(root);
  for (let i = 0; i < tree.length; i++) {
    const parent = tree[i] as Stat;
    tree.push(...all.filter((s) => s.ppid === parent.pid));
  }
  const own = stat(process.pid)?.pgid;
  const groups = new Set(tree.map((s) => s.pgid).filter((g) => g > 1 && g !== own));
  for (const g of groups) kill(-g, 'SIGKILL');
  for (const s of tree) kill(s.pid, 'SIGKILL');
  kill(pid, 'SIGKILL');
}

/** Live processes carrying this run's mark: what a PilotProcess of the test application started and is still running. */
export function markedProcesses(): { pid: number; command: string }[] {
  const needle = `\0${MARK_ENV}=${runId}\0`;
  return processes()
    .filter((s) => `\0${read(s.pid, 'environ')}`.includes(needle))
    .map((s) => ({ pid: s.pid, command: read(s.pid, 'cmdline').replace(/\0/g, ' ').trim() }));
}

/** Kill every marked process with its tree (synchronous). */
export function killMarked(): void {
  for (const p of markedProcesses()) killTree(p.pid);
}

/**
 * What is still running of this run's test applications after `graceMs` (a
 * SIGKILLed pilot's application gets its parent-death signal a moment later):
 * killed, and returned as "pid command" lines for the failure message.
 */
export async function reapLeftovers(graceMs = 3000): Promise<string[]> {
  const deadline = Date.now() + graceMs;
  let left = markedProcesses();
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = markedProcesses();
  }
  for (const p of left) killTree(p.pid);
  return left.map((p) => `${p.pid} ${p.command}`);
}
