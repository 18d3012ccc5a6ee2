import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../lib/log.ts';
import { PilotManager } from '../../lib/pilot/manager.ts';
import type { PilotActionStatus } from '../../lib/pilot/schema.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { createPilot, createPod, G, PilotProcess, readPilotStatus } from '../pilot/harness.ts';
import { type Cluster, cluster, namespace, waitUntil } from './harness.ts';

// The request channel from the controller to a pod's pilot (docs/pilot.md,
// "Requests"), with real processes: a real control plane, the controller's own
// PilotManager writing requests into spec.actions, and `sts-pilot pilot` as a
// real process running the action's command (a small shell command here: the
// channel does not care what the application is).

const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('pilot requests: the controller asks, the pilot runs it once and reports', function () {
  this.timeout(180_000);
  let c: Cluster;
  let ns: string;
  let dir: string;
  let manager: PilotManager;
  let seq = 0;
  const running: PilotProcess[] = [];

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'pilot-actions');
    dir = mkdtempSync(join(tmpdir(), 'sts-pilot-actions-'));
    manager = new PilotManager({ kc: c.kc, log: createLogger({ level: 'silent' }), namespace: ns });
    await manager.start();
  });

  afterEach(async function () {
    const left = running.splice(0);
    if (this.currentTest?.state === 'failed') for (const p of left) console.log(`      --- pilot output:\n${p.tail(40)}`);
    await Promise.all(left.map((p) => p.kill()));
  });

  after(async () => {
    await manager?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function setup(): Promise<{ pod: V1Pod; name: string; uid: string; file: string }> {
    const name = `act-${++seq}`;
    const pod = await createPod(c, ns, name);
    await createPilot(c, ns, pod);
    await waitUntil('the Pilot in the manager\'s cache', 10_000, async () => manager.get(ns, name) !== undefined);
    return { pod, name, uid: pod.metadata?.uid ?? '', file: join(dir, `${name}.runs`) };
  }

  async function start(name: string, uid: string, actions: string[]): Promise<PilotProcess> {
    const p = await PilotProcess.start({ c, ns, pod: name, podUid: uid, revision: 'r1', flags: ['--heartbeat', '1', ...actions.flatMap((a) => ['--action', a])] });
    running.push(p);
    return p;
  }

  const actionStatus = async (name: string, id: string): Promise<PilotActionStatus | undefined> => (await readPilotStatus(c, ns, name))?.actions?.find((a) => a.id === id);
  const until = (name: string, id: string, state: PilotActionStatus['state'], ms = 30_000) =>
    waitUntil(`request ${id} ${state}`, ms, async () => {
      const s = await actionStatus(name, id);
      return s?.state === state ? s : undefined;
    });
  /** The request in the manager's cache before the next one: requestAction appends to what it has. */
  const cached = (name: string, id: string) => waitUntil(`request ${id} in the cache`, 10_000, async () => manager.get(ns, name)?.spec.actions?.some((a) => a.id === id));

  it('runs a request once, reports Running then Succeeded with times, exit code and output; asking again changes nothing', async () => {
    const s = await setup();
    await start(s.name, s.uid, [`decommission=echo "run $STS_PILOT_ACTION_ID" >> ${s.file}; echo "streaming 3 ranges"; sleep 2; echo "left the ring"`]);
    await waitUntil('phase Running', 20_000, async () => (await readPilotStatus(c, ns, s.name))?.phase === 'Running');
    const asked = Date.now();
    expect(await manager.requestAction(ns, s.name, { id: 'decommission-1', action: 'decommission', reason: 'test' })).to.equal('requested');
    const r = await until(s.name, 'decommission-1', 'Running');
    const seenMs = Date.now() - asked;
    expect(r.message).to.match(/^running: echo/);
    const done = await until(s.name, 'decommission-1', 'Succeeded');
    expect(done).to.deep.include({ id: 'decommission-1', action: 'decommission', exitCode: 0, message: 'done' });
    expect(done.output).to.equal('streaming 3 ranges\nleft the ring');
    expect(Date.parse(done.endTime ?? '') - Date.parse(done.startTime ?? '')).to.be.within(1900, 10_000);
    // Asked again (cache or server refusing the duplicate id): 'already', and never run twice.
    await cached(s.name, 'decommission-1');
    expect(await manager.requestAction(ns, s.name, { id: 'decommission-1', action: 'decommission' })).to.equal('already');
    await sleep(3000);
    expect(lines(s.file)).to.deep.equal(['run decommission-1']);
    console.log(`      [figures] request written to the pilot reporting it Running: ${seenMs} ms (heartbeat 1 s)`);
  });

  it('a failing command: Failed, with its exit code and the last lines of its output', async () => {
    const s = await setup();
    await start(s.name, s.uid, ['decommission=echo "error: Not enough live nodes to maintain replication factor in keyspace app" >&2; exit 2']);
    await waitUntil('phase Running', 20_000, async () => (await readPilotStatus(c, ns, s.name))?.phase === 'Running');
    await manager.requestAction(ns, s.name, { id: 'decommission-1', action: 'decommission' });
    const f = await until(s.name, 'decommission-1', 'Failed');
    expect(f).to.deep.include({ exitCode: 2, message: 'exited with code 2', output: 'error: Not enough live nodes to maintain replication factor in keyspace app' });
  });

  it('a pilot restarted while the command runs does not run it again: the request is reported Failed, interrupted', async () => {
    const s = await setup();
    const cmd = `decommission=echo start >> ${s.file}; sleep 60`;
    const first = await start(s.name, s.uid, [cmd]);
    await waitUntil('phase Running', 20_000, async () => (await readPilotStatus(c, ns, s.name))?.phase === 'Running');
    await manager.requestAction(ns, s.name, { id: 'decommission-1', action: 'decommission' });
    await until(s.name, 'decommission-1', 'Running');
    await waitUntil('the command to start', 10_000, async () => lines(s.file).length === 1);
    await first.kill();
    const second = await start(s.name, s.uid, [cmd]);
    const f = await until(s.name, 'decommission-1', 'Failed');
    expect(f.message).to.match(/^interrupted: the pilot restarted while it ran; not run again/);
    // Several heartbeats later (each returns the spec with the request): still run once.
    await sleep(4000);
    expect(lines(s.file)).to.deep.equal(['start']);
    expect(second.exit).to.equal(undefined);
    // A new request (new id) is the way to run it again.
    await cached(s.name, 'decommission-1');
    await manager.requestAction(ns, s.name, { id: 'decommission-2', action: 'decommission' });
    await until(s.name, 'decommission-2', 'Running');
    await waitUntil('the second run', 10_000, async () => lines(s.file).length === 2);
  });

  it('an unknown action is refused with a clear status and never run; the next request still runs', async () => {
    const s = await setup();
    await start(s.name, s.uid, [`decommission=echo ran >> ${s.file}`]);
    await waitUntil('phase Running', 20_000, async () => (await readPilotStatus(c, ns, s.name))?.phase === 'Running');
    await manager.requestAction(ns, s.name, { id: 'wipe-1', action: 'wipe-disk' });
    const r = await until(s.name, 'wipe-1', 'Refused');
    expect(r.message).to.equal('this pilot has no command for the action wipe-disk (it knows decommission): not run');
    expect(r).to.not.have.property('exitCode');
    await cached(s.name, 'wipe-1');
    await manager.requestAction(ns, s.name, { id: 'decommission-1', action: 'decommission' });
    await until(s.name, 'decommission-1', 'Succeeded');
    expect(lines(s.file)).to.deep.equal(['ran']);
  });

  it('a cache behind the pilot\'s own status writes: the first request reads the Pilot again and is written once (CI saw a 422 here)', async () => {
    const s = await setup();
    // A manager whose cache stops at this version of the Pilot, as a cache a status write ahead of it.
    const frozen = new PilotManager({ kc: c.kc, log: createLogger({ level: 'silent' }), namespace: ns });
    await frozen.start();
    await waitUntil('the Pilot in the frozen cache', 10_000, async () => frozen.get(ns, s.name) !== undefined);
    await frozen.stop();
    const seen = frozen.get(ns, s.name)?.metadata.resourceVersion;
    const api = c.kc.makeApiClient(CustomObjectsApi);
    await api.patchNamespacedCustomObjectStatus(
      { ...G, namespace: ns, name: s.name, body: { status: { phase: 'Running', heartbeatTime: new Date().toISOString() } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const now = ((await api.getNamespacedCustomObject({ ...G, namespace: ns, name: s.name })) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    expect(now, 'the status write moved the version past the cache').to.not.equal(seen);
    expect(await frozen.requestAction(ns, s.name, { id: 'decommission-1', action: 'decommission' })).to.equal('requested');
    // Again, on the same stale cache: the server's list has it, so 'already', and one request stays.
    expect(await frozen.requestAction(ns, s.name, { id: 'decommission-1', action: 'decommission' })).to.equal('already');
    const spec = ((await api.getNamespacedCustomObject({ ...G, namespace: ns, name: s.name })) as { spec: { actions: { id: string }[] } }).spec;
    expect(spec.actions.map((a) => a.id)).to.deep.equal(['decommission-1']);
  });

  it('the server keeps the channel honest: a second request of one id is refused (422), and the uid guard refuses an earlier pod\'s Pilot', async () => {
    const s = await setup();
    await manager.requestAction(ns, s.name, { id: 'decommission-1', action: 'decommission' });
    const api = c.kc.makeApiClient(CustomObjectsApi);
    const patch = (body: unknown[]) =>
      api.patchNamespacedCustomObject({ ...G, namespace: ns, name: s.name, body }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)).then(
        () => 0,
        (e: { code?: number }) => e.code ?? -1,
      );
    expect(await patch([{ op: 'add', path: '/spec/actions/-', value: { id: 'decommission-1', action: 'decommission' } }])).to.equal(422);
    expect(await patch([{ op: 'test', path: '/metadata/uid', value: 'someone-else' }, { op: 'add', path: '/spec/actions/-', value: { id: 'x-1', action: 'decommission' } }])).to.be.oneOf([409, 422]);
    expect(await patch([{ op: 'add', path: '/spec/actions/-', value: { id: 'x-2', action: 'rm -rf /' } }]), 'a command line is no action name').to.equal(422);
    const spec = ((await api.getNamespacedCustomObject({ ...G, namespace: ns, name: s.name })) as { spec: { actions: { id: string }[] } }).spec;
    expect(spec.actions.map((a) => a.id)).to.deep.equal(['decommission-1']);
  });
});
