import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childPids, procStat } from '../../lib/pilot/zombies.ts';
import { canUnshare, installPilotCrd, root } from '../pilot/helpers.ts';
import { appEvents, bindPilotRole, createPilot, createPod, G, PilotProcess, PilotWatch, readPilotStatus } from '../pilot/harness.ts';
import { applyManifest, type Cluster, cluster, namespace, serviceAccountKubeconfig, waitUntil } from './harness.ts';

/** Alive and not a zombie. */
const alive = (pid: number): boolean => {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
};

describe('pilot: the in-pod pilot as a real process, writing its Pilot on a real control plane', function () {
  this.timeout(120_000);
  let c: Cluster;
  let ns: string;
  let dir: string;
  let seq = 0;
  const running: PilotProcess[] = [];
  const watches: PilotWatch[] = [];

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'pilot-proc');
    dir = mkdtempSync(join(tmpdir(), 'sts-pilot-pilot-'));
  });

  afterEach(async function () {
    for (const w of watches.splice(0)) w.stop();
    const left = running.splice(0);
    if (this.currentTest?.state === 'failed') for (const p of left) console.log(`      --- pilot output:\n${p.tail(40)}`);
    await Promise.all(left.map((p) => p.kill()));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A pod, its Pilot (unless told not to), a watch on it, and an events file for the app. */
  async function setup(o: { pilot?: boolean; serviceAccount?: string } = {}): Promise<{ pod: V1Pod; name: string; uid: string; events: string; watch: PilotWatch }> {
    const name = `app-${++seq}`;
    const pod = await createPod(c, ns, name, 'r1', o.serviceAccount);
    if (o.pilot !== false) await createPilot(c, ns, pod);
    const watch = await PilotWatch.start(c, ns, name);
    watches.push(watch);
    return { pod, name, uid: pod.metadata?.uid ?? '', events: join(dir, `${name}.events`), watch };
  }

  async function start(o: Omit<Parameters<typeof PilotProcess.start>[0], 'c' | 'ns'>): Promise<PilotProcess> {
    const p = await PilotProcess.start({ c, ns, ...o });
    running.push(p);
    return p;
  }

  const phaseIs = (name: string, phase: string) => async () => (await readPilotStatus(c, ns, name))?.phase === phase;
  /** The application's pid, once it has written its first line. */
  const appStarted = (events: string) =>
    waitUntil('the application to start', 5000, async () => Number(appEvents(events)[0]?.split(' ')[1]) || undefined);

  it('waits for its Pilot (Initializing), then runs the application and reports Running, revision and heartbeat', async () => {
    const s = await setup({ pilot: false });
    const p = await start({ pod: s.name, podUid: s.uid, flags: ['--heartbeat', '2', '--probe-interval', '1'], env: { EVENTS_FILE: s.events } });
    await p.waitForServer();
    console.log(`      [figures] pilot process spawned to serving /healthz: ${Date.now() - p.startedAt} ms`);
    await sleep(1000);
    expect(appEvents(s.events), 'the application must not start before the Pilot exists').to.deep.equal([]);
    expect((await p.get('/readyz')).status).to.equal(503);
    expect((await p.get('/healthz')).status).to.equal(200);

    const created = Date.now();
    await createPilot(c, ns, s.pod);
    await waitUntil('phase Running', 20_000, phaseIs(s.name, 'Running'));
    const startupMs = Date.now() - created;
    const st = await readPilotStatus(c, ns, s.name);
    // The pilot read the revision from its Pod (no --revision given).
    expect(st).to.deep.include({ phase: 'Running', revision: 'r1', message: 'application running' });
    expect(Date.now() - Date.parse(st?.heartbeatTime ?? '')).to.be.below(10_000);
    expect(st?.application).to.deep.equal({ probe: 'none' });
    expect(st?.conditions?.map((x) => `${x.type}=${x.status}`)).to.deep.equal(['Ready=True', 'Healthy=True']);
    await appStarted(s.events);
    expect(appEvents(s.events)[0]).to.match(/^started \d+ \d+$/);
    expect((await p.get('/readyz')).status).to.equal(200);
    expect(await p.metric('sts_pilot_pilot_phase{phase="Running"}')).to.equal(1);
    console.log(`      [figures] from Pilot created to status Running on the server: ${startupMs} ms`);
  });

  it('passes SIGHUP, SIGUSR1 and SIGUSR2 on to the application', async () => {
    const s = await setup();
    const p = await start({ pod: s.name, revision: 'r1', env: { EVENTS_FILE: s.events } });
    await waitUntil('phase Running', 20_000, phaseIs(s.name, 'Running'));
    await appStarted(s.events);
    for (const sig of ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) {
      p.signal(sig);
      await waitUntil(`the app to get ${sig}`, 5000, async () => appEvents(s.events).includes(`signal ${sig}`));
    }
    expect(p.exit, 'the pilot keeps running').to.equal(undefined);
    expect(await p.metric('sts_pilot_pilot_signals_forwarded_total{signal="SIGUSR1"}')).to.equal(1);
  });

  it('on SIGTERM runs the pre-stop hook, then stops the application, reports Stopped and exits with its code', async () => {
    const s = await setup();
    const hookOut = join(dir, `${s.name}.prestop`);
    const p = await start({
      pod: s.name,
      revision: 'r1',
      flags: ['--pre-stop', `echo "$STS_PILOT_PHASE $STS_PILOT_STOP_SIGNAL $STS_PILOT_APP_PID" > ${hookOut}; sleep 1`, '--stop-timeout', '10'],
      env: { EVENTS_FILE: s.events, TERM_EXIT_CODE: '0', TERM_DELAY_MS: '300' },
    });
    await waitUntil('phase Running', 20_000, phaseIs(s.name, 'Running'));
    const appPid = await appStarted(s.events);
    p.signal('SIGTERM');
    const t = Date.now();
    // The application gets SIGTERM only after the hook.
    await waitUntil('phase PreStop', 5000, phaseIs(s.name, 'PreStop'));
    expect(appEvents(s.events)).to.not.include('signal SIGTERM');
    const exit = await p.exited;
    expect(exit).to.deep.equal({ code: 0, signal: null });
    expect(Date.now() - t).to.be.within(1000, 8000);
    expect(appEvents(s.events)).to.include.members(['signal SIGTERM', 'exit 0']);
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(hookOut, 'utf8').trim()).to.equal(`PreStop SIGTERM ${appPid}`);
    const st = await readPilotStatus(c, ns, s.name);
    expect(st).to.deep.include({ phase: 'Stopped', exitCode: 0, message: 'the application exited with code 0 after SIGTERM' });
    expect(s.watch.phases().slice(-3)).to.deep.equal(['Running', 'PreStop', 'Stopped']);
    expect(alive(appPid)).to.equal(false);
  });

  it('kills an application that ignores SIGTERM once --stop-timeout has passed, and says so', async () => {
    const s = await setup();
    const p = await start({ pod: s.name, revision: 'r1', flags: ['--stop-timeout', '2'], env: { EVENTS_FILE: s.events, IGNORE_TERM: '1' } });
    await waitUntil('phase Running', 20_000, phaseIs(s.name, 'Running'));
    await appStarted(s.events);
    const t = Date.now();
    p.signal('SIGTERM');
    const exit = await p.exited;
    const took = Date.now() - t;
    expect(exit.code).to.equal(137);
    expect(took).to.be.within(1900, 6000);
    expect(appEvents(s.events)).to.include('signal SIGTERM').and.not.include('exit 0');
    const st = await readPilotStatus(c, ns, s.name);
    expect(st).to.deep.include({ phase: 'Stopped', exitCode: 137 });
    expect(st?.message).to.equal('the application did not stop within 2s of SIGTERM; killed');
  });

  it('SIGINT stops it the same way, passing SIGINT on', async () => {
    const s = await setup();
    const p = await start({ pod: s.name, revision: 'r1', env: { EVENTS_FILE: s.events, TERM_EXIT_CODE: '130' } });
    await waitUntil('phase Running', 20_000, phaseIs(s.name, 'Running'));
    await appStarted(s.events);
    p.signal('SIGINT');
    expect((await p.exited).code).to.equal(130);
    expect(appEvents(s.events)).to.include('signal SIGINT');
  });

  it('an application that exits by itself: Failed with its code, and what it left in its process group is killed', async () => {
    const s = await setup();
    const p = await start({ pod: s.name, revision: 'r1', env: { EVENTS_FILE: s.events, EXIT_AFTER_MS: '1500', EXIT_CODE: '3', BACKGROUND: '1' } });
    const exit = await p.exited;
    expect(exit.code).to.equal(3);
    const bg = Number(appEvents(s.events).find((l) => l.startsWith('background'))?.split(' ')[1]);
    expect(bg).to.be.above(0);
    await waitUntil('the background process to be gone', 5000, async () => !alive(bg));
    const st = await readPilotStatus(c, ns, s.name);
    expect(st).to.deep.include({ phase: 'Failed', exitCode: 3, message: 'the application exited with code 3' });
    expect(st?.conditions?.find((x) => x.type === 'Ready')).to.include({ status: 'False', reason: 'Failed' });
  });

  it('a failing pre-start hook: the application never starts, Failed with the hook code', async () => {
    const s = await setup();
    const p = await start({ pod: s.name, revision: 'r1', flags: ['--pre-start', 'echo preparing; exit 4'], env: { EVENTS_FILE: s.events } });
    expect((await p.exited).code).to.equal(4);
    expect(appEvents(s.events)).to.deep.equal([]);
    const st = await readPilotStatus(c, ns, s.name);
    expect(st).to.deep.include({ phase: 'Failed', exitCode: 4, message: 'the pre-start hook exited with code 4; the application was not started' });
  });

  it('a pre-start hook that succeeds runs before the application, in phase PreStart', async () => {
    const s = await setup();
    const p = await start({ pod: s.name, revision: 'r1', flags: ['--pre-start', 'sleep 2'], env: { EVENTS_FILE: s.events } });
    await waitUntil('phase PreStart', 10_000, phaseIs(s.name, 'PreStart'));
    expect(appEvents(s.events)).to.deep.equal([]);
    await waitUntil('phase Running', 10_000, phaseIs(s.name, 'Running'));
    await waitUntil('the application to start', 5000, async () => appEvents(s.events).length === 1);
    p.signal('SIGTERM');
    expect((await p.exited).code).to.equal(0);
  });

  it('a command that cannot be started: Failed, 127', async () => {
    const s = await setup();
    const p = await start({ pod: s.name, revision: 'r1', command: ['/nonexistent/app'] });
    expect((await p.exited).code).to.equal(127);
    const st = await readPilotStatus(c, ns, s.name);
    expect(st).to.deep.include({ phase: 'Failed', exitCode: 127 });
    expect(st?.message).to.match(/could not start \/nonexistent\/app: .*ENOENT/);
  });

  it('SIGTERM while waiting for its Pilot: exits 143 without starting the application', async () => {
    const s = await setup({ pilot: false });
    const p = await start({ pod: s.name, revision: 'r1', env: { EVENTS_FILE: s.events } });
    await p.waitForServer();
    p.signal('SIGTERM');
    expect((await p.exited).code).to.equal(143);
    expect(appEvents(s.events)).to.deep.equal([]);
  });

  it('never writes into the Pilot of an earlier pod of the same name; writes ours once it exists', async () => {
    const s = await setup({ pilot: false });
    // What a Pilot left by the previous pod of this name looks like: owned by another uid.
    // (The garbage collector removes it soon, since that owner does not exist.)
    const stale = await createPilot(c, ns, s.pod, 'uid-of-an-earlier-pod');
    const p = await start({ pod: s.name, podUid: s.uid, revision: 'r1', env: { EVENTS_FILE: s.events }, flags: ['--pilot-timeout', '0'] });
    await p.waitForServer();
    await sleep(1500);
    expect(s.watch.events.filter((e) => e.uid === stale.uid && e.status), 'status written into the stale Pilot').to.deep.equal([]);
    const api = c.kc.makeApiClient(CustomObjectsApi);
    await api.deleteNamespacedCustomObject({ ...G, namespace: ns, name: s.name }).catch(() => undefined);
    await waitUntil('the stale Pilot to be gone', 10_000, async () => !(await readPilotStatus(c, ns, s.name).then(() => true, () => false)));
    const ours = await createPilot(c, ns, s.pod);
    await waitUntil('phase Running in our Pilot', 20_000, phaseIs(s.name, 'Running'));
    expect(s.watch.events.filter((e) => e.status).every((e) => e.uid === ours.uid)).to.equal(true);
  });

  it('finds its Pilot again when it is deleted and re-created, and writes a full status into it', async () => {
    const s = await setup();
    const p = await start({ pod: s.name, podUid: s.uid, revision: 'r1', flags: ['--heartbeat', '2'], env: { EVENTS_FILE: s.events } });
    await waitUntil('phase Running', 20_000, phaseIs(s.name, 'Running'));
    const api = c.kc.makeApiClient(CustomObjectsApi);
    await api.deleteNamespacedCustomObject({ ...G, namespace: ns, name: s.name });
    const again = await createPilot(c, ns, s.pod);
    await waitUntil('status in the new Pilot', 20_000, async () => (await readPilotStatus(c, ns, s.name))?.phase === 'Running');
    expect(s.watch.events.at(-1)?.uid).to.equal(again.uid);
    expect(p.exit).to.equal(undefined);
  });

  it('writes only on change or heartbeat: the write count at steady state is bounded', async () => {
    const s = await setup();
    const heartbeat = 2;
    const p = await start({ pod: s.name, revision: 'r1', flags: ['--heartbeat', String(heartbeat), '--probe-interval', '1'], env: { EVENTS_FILE: s.events } });
    await waitUntil('phase Running', 20_000, phaseIs(s.name, 'Running'));
    await sleep(1500); // past the start-up writes
    const from = Date.now();
    const window = 12_000;
    await sleep(window);
    const writes = s.watch.statusWrites(from);
    const perMinute = (writes * 60_000) / window;
    console.log(`      [figures] steady state, --heartbeat ${heartbeat}s, probe every 1s: ${writes} writes in ${window / 1000}s (${perMinute.toFixed(0)}/min; at the default 20s heartbeat: 3/min)`);
    // One per heartbeat: 6 in 12 s, give or take one at the edges; 12 probes changed nothing.
    expect(writes).to.be.within(window / 1000 / heartbeat - 1, window / 1000 / heartbeat + 1);
    const total = s.watch.statusWrites();
    const reported = await p.metric('sts_pilot_pilot_status_writes_total{why="heartbeat"}');
    expect(reported, 'the pilot counts the heartbeats the server saw').to.be.at.least(writes - 1);
    expect(total).to.be.below(20);
  });

  it('needs no more than manifests/rbac-pilot.yaml: runs on it, and cannot write a Pilot spec', async () => {
    await applyManifest(c.kc, join(root, 'manifests', 'rbac-pilot.yaml'));
    await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
    await bindPilotRole(c, ns, 'app');
    const s = await setup({ serviceAccount: 'app' });
    // A pod's projected token is bound to the pod: admission-pilot.yaml requires it.
    const kubeconfig = await serviceAccountKubeconfig(c.kc, c.core, ns, 'app', { name: s.name, uid: s.uid });
    // No --revision: the pilot reads it from its Pod, which the role allows.
    const p = await start({ pod: s.name, podUid: s.uid, kubeconfig, env: { EVENTS_FILE: s.events } });
    await waitUntil('phase Running', 20_000, phaseIs(s.name, 'Running'));
    expect((await readPilotStatus(c, ns, s.name))?.revision).to.equal('r1');
    const sa = new KubeConfig();
    sa.loadFromFile(kubeconfig);
    const denied = await sa
      .makeApiClient(CustomObjectsApi)
      .patchNamespacedCustomObject({ ...G, namespace: ns, name: s.name, body: { spec: { application: 'x' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
      .then(() => 'allowed', (err: unknown) => (err as { code?: number }).code);
    expect(denied, 'the pilot may write the status only').to.equal(403);
    await appStarted(s.events); // its SIGTERM handler is in place
    p.signal('SIGTERM');
    expect((await p.exited).code).to.equal(0);
    expect((await readPilotStatus(c, ns, s.name))?.phase).to.equal('Stopped');
  });

  it('as PID 1 (a PID namespace): reaps the application, counts the orphans it cannot reap, and exits with the code', async function () {
    if (!(await canUnshare())) throw new Error('needs root and /usr/bin/unshare (a PID namespace makes the pilot PID 1): cannot test it here');
    const s = await setup();
    const p = await start({
      pod: s.name,
      revision: 'r1',
      wrapper: ['/usr/bin/unshare', '--pid', '--fork', '--mount-proc', '--kill-child'],
      flags: ['--probe-interval', '1', '--stop-timeout', '5'],
      env: { EVENTS_FILE: s.events, ORPHAN_SECONDS: '1', TERM_EXIT_CODE: '0' },
    });
    await waitUntil('phase Running', 20_000, phaseIs(s.name, 'Running'));
    await appStarted(s.events);
    const events = appEvents(s.events);
    expect(events[0]?.split(' ')[2], "the application's parent, the pilot, is PID 1").to.equal('1');
    // The orphan was re-parented to the pilot (PID 1); once it exits it stays a zombie: Node cannot wait for it.
    await waitUntil('the pilot to count the exited orphan', 10_000, async () => (await p.metric('sts_pilot_pilot_zombies')) === 1);
    // unshare passes no signal on: signal the pilot, its child, directly (as the kubelet signals PID 1).
    const [pilotPid] = childPids(p.pid);
    expect(pilotPid).to.be.above(0);
    process.kill(pilotPid as number, 'SIGTERM');
    const exit = await p.exited;
    expect(exit.code).to.equal(0);
    const st = await readPilotStatus(c, ns, s.name);
    expect(st).to.deep.include({ phase: 'Stopped', exitCode: 0 });
  });
});
