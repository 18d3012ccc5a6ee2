import { readdirSync, readFileSync } from 'node:fs';

/**
 * Zombies among our children, read from /proc. As PID 1 the pilot inherits
 * every orphan of its container, and Node (libuv) waits only for the pids it
 * spawned itself: an orphan that exits stays a zombie. We cannot reap it from
 * JavaScript, so we count it (a metric and a log line) instead of hiding it.
 * See docs/pilot.md for how to get full reaping (shareProcessNamespace).
 */

/** State letter and parent of a process, from /proc/<pid>/stat; undefined if it is gone. */
export function procStat(pid: number): { state: string; ppid: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const ppid = Number(rest[1]);
  return state === undefined || Number.isNaN(ppid) ? undefined : { state, ppid };
}

/** Pids of the children of `pid`: /proc/<pid>/task/<tid>/children where the kernel has it, else a scan of /proc. */
export function childPids(pid: number = process.pid): number[] {
  try {
    const out: number[] = [];
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
    return out;
  } catch {
    // no CONFIG_PROC_CHILDREN: scan
  }
  try {
    return readdirSync('/proc')
      .filter((d) => /^[0-9]+$/.test(d))
      .map(Number)
      .filter((p) => procStat(p)?.ppid === pid);
  } catch {
    return []; // no /proc at all
  }
}

/** Children of `pid` in state Z, other than the ones Node is about to reap itself. */
export function zombieChildren(known: ReadonlySet<number> = new Set(), pid: number = process.pid): number[] {
  return childPids(pid).filter((c) => !known.has(c) && procStat(c)?.state === 'Z');
}
