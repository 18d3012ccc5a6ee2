import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childPids, procStat } from '../../lib/pilot/zombies.ts';
import { canUnshare, installPilotCrd } from '../pilot/helpers.ts';
import { appEvents, createPilot, createPod, PilotProcess, readPilotStatus } from '../pilot/harness.ts';
import { tiniStatic } from '../tools/tools.ts';
import { type Cluster, cluster, namespace, waitUntil } from './harness.ts';

const proc = (pid: number, what: 'comm' | 'cmdline'): string => {
  try {
    return readFileSync(`/proc/${pid}/${what}`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
};

/**
 * The image runs `tini -- node sts-pilot.ts ...` (and the init container copies
 * tini with the pilot): Node cannot wait for orphans it did not spawn, tini as PID 1
 * reaps them. test/integration/pilot-process.test.ts shows the pilot alone as PID 1
 * leaving the zombie; here the same orphan is reaped.
 */
describe('pilot under tini: full zombie reaping as PID 1, signals passed through both', function () {
  this.timeout(120_000);
  let c: Cluster;
  let ns: string;
  let dir: string;
  let tini: string;
  let p: PilotProcess | undefined;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'pilot-tini');
    dir = mkdtempSync(join(tmpdir(), 'sts-pilot-tini-'));
    tini = await tiniStatic((l) => console.log(`      [tini] ${l}`));
  });

  after(async () => {
    await p?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tini is PID 1 and the pilot its child: an orphaned grandchild that exits is reaped, no zombie left; SIGHUP, SIGUSR1 and SIGTERM reach the application', async function () {
    if (!(await canUnshare())) throw new Error('this test needs unshare --pid (a PID namespace) to make tini PID 1; unshare failed here');
    const pod = await createPod(c, ns, 'app-0', 'r1');
    await createPilot(c, ns, pod);
    const events = join(dir, 'app-0.events');
    p = await PilotProcess.start({
      c,
      ns,
      pod: 'app-0',
      revision: 'r1',
      wrapper: ['/usr/bin/unshare', '--pid', '--fork', '--mount-proc', '--kill-child', tini, '--'],
      flags: ['--probe-interval', '1', '--stop-timeout', '5'],
      env: { EVENTS_FILE: events, ORPHAN_SECONDS: '3', TERM_EXIT_CODE: '0' },
    });
    const pilot = p;
    await waitUntil('phase Running', 30_000, async () => (await readPilotStatus(c, ns, 'app-0'))?.phase === 'Running');
    await waitUntil('the application and its orphan', 10_000, async () => appEvents(events).some((l) => l.startsWith('orphan')));
    const [tiniPid] = childPids(pilot.pid); // unshare forks tini into the new PID namespace
    expect(proc(tiniPid as number, 'comm')).to.equal('tini-static');
    // In the namespace: tini is 1, the pilot 2, the application's parent is the pilot.
    const started = appEvents(events).find((l) => l.startsWith('started'))?.split(' ');
    expect(started?.[2], "the application's parent (the pilot) in the PID namespace").to.equal('2');
    // The orphan's parent died at once: it was re-parented to tini, not to the pilot.
    const underTini = () => childPids(tiniPid as number).filter((x) => !proc(x, 'cmdline').includes('sts-pilot.ts'));
    expect(underTini().length, 'the orphan, re-parented to tini (PID 1)').to.be.at.least(1);
    // It exits after 3 s; tini waits for it: gone, not a zombie.
    await waitUntil('the orphan to exit and be reaped', 15_000, async () => underTini().length === 0);
    const zombies = [tiniPid as number, ...childPids(tiniPid as number)].flatMap((x) => [x, ...childPids(x)]).filter((x) => procStat(x)?.state === 'Z');
    expect(zombies, 'zombies left in the container').to.deep.equal([]);
    await sleep(1500); // a probe interval: the pilot counts its own zombies
    expect(await pilot.metric('sts_pilot_pilot_zombies')).to.equal(0);

    // Signals: the kubelet signals PID 1 (tini), which passes them to the pilot, which passes them on.
    for (const sig of ['SIGHUP', 'SIGUSR1'] as const) {
      process.kill(tiniPid as number, sig);
      await waitUntil(`${sig} at the application`, 10_000, async () => appEvents(events).includes(`signal ${sig}`));
    }
    process.kill(tiniPid as number, 'SIGTERM');
    const exit = await pilot.exited;
    expect(appEvents(events)).to.include('signal SIGTERM');
    expect(exit.code, 'tini exits with the pilot\'s code, the pilot with the application\'s').to.equal(0);
    expect(await readPilotStatus(c, ns, 'app-0')).to.deep.include({ phase: 'Stopped', exitCode: 0 });
  });
});
