import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Child, exitCodeOf, runCommand } from '../../lib/pilot/process.ts';
import { childPids, procStat } from '../../lib/pilot/zombies.ts';

/** Alive and not a zombie. */
const running = (pid: number): boolean => {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
};

async function gone(pid: number, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!running(pid)) return true;
    await sleep(20);
  }
  return false;
}

/** Waits until `path` exists: a child's signal that it got there, whatever the machine's load. */
async function fileWritten(path: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} not written within ${ms} ms`);
    await sleep(10);
  }
}

describe('pilot child processes (real processes)', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'sts-pilot-proc-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reports exit codes as a shell does', () => {
    expect(exitCodeOf({ code: 3, signal: null })).to.equal(3);
    expect(exitCodeOf({ code: null, signal: 'SIGTERM' })).to.equal(143);
    expect(exitCodeOf({ code: null, signal: 'SIGKILL' })).to.equal(137);
  });

  it('refuses to start a command that does not exist', async () => {
    const err = await Child.start(['/nonexistent/app']).catch((e: NodeJS.ErrnoException) => e);
    expect((err as NodeJS.ErrnoException).code).to.equal('ENOENT');
  });

  it('runs the child in its own process group, and lists it among our children', async () => {
    const c = await Child.start(['sleep', '30'], { stdio: 'ignore' });
    expect(childPids()).to.include(c.pid);
    const pgrp = Number(readFileSync(`/proc/${c.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[2]);
    expect(pgrp).to.equal(c.pid);
    await c.stop('SIGTERM', 5000);
  });

  it('stops a child that honours SIGTERM, with its own exit code', async () => {
    const ready = join(dir, 'ready');
    const c = await Child.start(
      [process.execPath, '-e', `process.on('SIGTERM', () => process.exit(7)); require('fs').writeFileSync(${JSON.stringify(ready)}, ''); setInterval(() => {}, 1000)`],
      { stdio: 'ignore' },
    );
    await fileWritten(ready); // its handler is installed (a fixed wait lost the race on a loaded machine)
    const t = Date.now();
    const r = await c.stop('SIGTERM', 5000);
    expect(r).to.deep.equal({ exit: { code: 7, signal: null }, killed: false });
    expect(Date.now() - t).to.be.below(2000);
  });

  it('kills a child that ignores SIGTERM once the deadline passes, and what it started with it', async () => {
    const pidFile = join(dir, 'grandchild');
    const c = await Child.start(['sh', '-c', `trap '' TERM; sleep 60 & echo $! > ${pidFile}.tmp; mv ${pidFile}.tmp ${pidFile}; wait`], { stdio: 'ignore' });
    await fileWritten(pidFile);
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    const t = Date.now();
    const r = await c.stop('SIGTERM', 500);
    expect(r.killed).to.equal(true);
    expect(r.exit.signal).to.equal('SIGKILL');
    expect(exitCodeOf(r.exit)).to.equal(137);
    expect(Date.now() - t).to.be.within(450, 3000);
    expect(await gone(grandchild), 'the grandchild died with the group').to.equal(true);
  });

  it('runs a hook with sh -c and its exit code', async () => {
    expect((await runCommand('exit 3', { timeoutMs: 5000, stdio: 'ignore' })).code).to.equal(3);
    const r = await runCommand(`echo "$STS_TEST" > ${join(dir, 'out')}`, { timeoutMs: 5000, env: { ...process.env, STS_TEST: 'hello' } });
    expect(r.code).to.equal(0);
    expect(readFileSync(join(dir, 'out'), 'utf8')).to.equal('hello\n');
  });

  it('kills a hook that overruns its deadline', async () => {
    const t = Date.now();
    const r = await runCommand('sleep 30', { timeoutMs: 200, graceMs: 300, stdio: 'ignore' });
    expect(r.timedOut).to.equal(true);
    expect(r.code).to.not.equal(0);
    expect(Date.now() - t).to.be.below(2000);
  });

  it('stops a hook when aborted', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await runCommand('sleep 30', { timeoutMs: 10_000, signal: ac.signal, stdio: 'ignore' });
    expect(r.aborted).to.equal(true);
  });

  it('kills what a hook left running in the background when it returns', async () => {
    const pidFile = join(dir, 'bg');
    const r = await runCommand(`sleep 60 & echo $! > ${pidFile}`, { timeoutMs: 5000, stdio: 'ignore' });
    expect(r.code).to.equal(0);
    expect(await gone(Number(readFileSync(pidFile, 'utf8'))), 'background process of the hook').to.equal(true);
  });
});
