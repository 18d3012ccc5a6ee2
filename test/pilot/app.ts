// A small application for the pilot's real-process tests. Behaviour from env:
//   EVENTS_FILE     lines appended: "started <pid> <ppid>", "signal <SIG>", "exit <code>", "orphan <pid>"
//   TERM_EXIT_CODE  exit code after SIGTERM/SIGINT (default 0), TERM_DELAY_MS after it (default 100)
//   IGNORE_TERM=1   ignore SIGTERM and SIGINT (so only SIGKILL stops it)
//   EXIT_AFTER_MS   exit by itself after this long, with EXIT_CODE (default 0)
//   ORPHAN_SECONDS  leave an orphan: a process whose parent exits at once, living this long
//   BACKGROUND=1    start `sleep 600` in its own process group as a child (killed with the group)
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';

const env = process.env;
const ev = (line: string): void => {
  if (env.EVENTS_FILE) appendFileSync(env.EVENTS_FILE, `${line}\n`);
};
const exit = (code: number): void => {
  ev(`exit ${code}`);
  process.exit(code);
};

for (const sig of ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => ev(`signal ${sig}`));
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    ev(`signal ${sig}`);
    if (env.IGNORE_TERM === '1') return;
    setTimeout(() => exit(Number(env.TERM_EXIT_CODE ?? 0)), Number(env.TERM_DELAY_MS ?? 100));
  });
}
// Only now, with every handler in place: the tests signal it as soon as they read this line.
ev(`started ${process.pid} ${process.ppid}`);
if (env.EXIT_AFTER_MS) setTimeout(() => exit(Number(env.EXIT_CODE ?? 0)), Number(env.EXIT_AFTER_MS));
if (env.ORPHAN_SECONDS) {
  // The outer sh exits at once; the inner one is re-parented to PID 1 (or the nearest subreaper).
  spawn('sh', ['-c', `sh -c 'echo orphan $$ >> "$EVENTS_FILE"; sleep ${Number(env.ORPHAN_SECONDS)}' &`], { stdio: 'ignore' });
}
if (env.BACKGROUND === '1') {
  const bg = spawn('sleep', ['600'], { stdio: 'ignore' });
  ev(`background ${bg.pid}`);
}
setInterval(() => {}, 1 << 30);
