import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  eventsFor,
  mergePatch,
  namespace,
  partitionOf,
  podsOf,
  PodWatcher,
  readSts,
  RecordingHook,
  rolloutFinished,
  setImage,
  statefulSet,
  snapshots,
  waitUntil,
} from './harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const expectSnapshot = snapshots('policies');

/** 2026-12-07 (a Monday), hh:mm:ss UTC: the times the controller is made to live at. */
const at = (hms: string, day = 7): number => Date.parse(`2026-12-${String(day).padStart(2, '0')}T${hms}Z`);

describe('rollout policies on a real control plane: window, after, hold-timeout, halt, override', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let ns: string;
  let ctrl: ControllerProcess;
  let hook: RecordingHook;
  let pods: PodWatcher;
  const clockFile = join(mkdtempSync(join(tmpdir(), 'sts-pilot-clock-')), 'offset');
  /** The controller's (and the CLI's) wall clock: it reads this absolute time now, and runs on from there. */
  const setClock = (t: number): void => writeFileSync(clockFile, String(t - Date.now()));
  const clockNow = (): number => Date.now() + Number(readFileSync(clockFile, 'utf8'));
  const revisions = new Map<string, string>();
  /** Hook answers per StatefulSet: true approves, false says "not yet" (503). */
  const answer = new Map<string, (call: { next: { name: string } | null }) => boolean>();

  before(async function () {
    this.timeout(80 * 60_000); // a first run builds the control plane
    c = await cluster();
    ns = await namespace(c, 'policies');
    hook = await new RecordingHook().start();
    hook.decide = (call) => (answer.get(call.sts.split('/')[1] ?? '') ?? (() => true))(call);
    pods = await new PodWatcher().start(c, ns);
    setClock(at('00:30:00'));
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, '--no-leader-elect', '--hook-retry-max', '2'], undefined, {
      nodeArgs: ['--import', './test/cluster/file-clock.ts', '--import', './test/cluster/failing-hook.ts'],
      env: { STS_PILOT_CLOCK_FILE: clockFile },
    });
  });

  after(async () => {
    await ctrl?.kill('SIGTERM');
    hook?.stop();
    await pods?.stop();
  });

  const withHook = (extra: Record<string, string> = {}): Record<string, string> => ({ 'http.sts-pilot.io/url': hook.url, ...extra });

  /** The real CLI, with the admin kubeconfig and the controller's clock. */
  const cli = (args: string[]): Promise<{ stdout: string; stderr: string; code: number }> =>
    new Promise((resolve) => {
      const argv = ['--disable-warning=ExperimentalWarning', '--import', './test/cluster/file-clock.ts', 'cmd/sts-pilot.ts', ...args, '-n', ns, '--kubeconfig', c.kubeconfigPath];
      execFile(process.execPath, argv, { cwd: root, timeout: 60_000, env: { ...process.env, STS_PILOT_CLOCK_FILE: clockFile } }, (err, stdout, stderr) => {
        resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : -1) : 0 });
      });
    });

  const remember = async (name: string, token: string): Promise<void> => {
    const s = await waitUntil(`${name}: new updateRevision`, 30_000, async () => {
      const x = await readSts(c, ns, name);
      return x.status?.observedGeneration === x.metadata?.generation && x.status?.updateRevision && !revisions.has(x.status.updateRevision) ? x : undefined;
    });
    revisions.set(s.status?.updateRevision ?? '', token);
  };

  /** `sts-pilot status NAME`, with what varies from run to run made fixed. */
  const snapshot = async (file: string, name: string): Promise<string> => {
    const r = await cli(['status', name]);
    expect(r.code, r.stderr).to.equal(0);
    let out = r.stdout.split(ns).join('<ns>');
    for (const [revision, token] of revisions) {
      const hash = revision.slice(revision.lastIndexOf('-') + 1);
      out = out.split(hash).join(token).split(hash.slice(0, 8)).join(token);
    }
    out = out
      .replace(/127\.0\.0\.1:\d+/g, '<hook address>')
      .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>')
      .replace(/\b\d+[dhms](\d\d[hms])?\b/g, '<d>')
      .replace(/"(at|appliedAt|since|stepSince)":"[^"]+"/g, '"$1":"<t>"')
      .replace(/"uid":"[^"]+"/g, '"uid":"<uid>"');
    expectSnapshot(file, out);
    return out;
  };

  const status = async (name: string): Promise<Record<string, unknown>> => JSON.parse((await readSts(c, ns, name)).metadata?.annotations?.['sts-pilot.io/status'] ?? '{}') as Record<string, unknown>;
  const statusSays = (name: string, re: RegExp, timeoutMs = 60_000): Promise<string> =>
    waitUntil(`${name}: status annotation matching ${re}`, timeoutMs, async () => {
      const m = String((await status(name)).message ?? '');
      return re.test(m) ? m : undefined;
    });
  const eventSays = (name: string, reason: string, re: RegExp = /./): Promise<{ type: string; message: string }> =>
    waitUntil(`${name}: Event ${reason} matching ${re}`, 60_000, async () => (await eventsFor(c, ns, name)).find((e) => e.reason === reason && re.test(e.message)));
  const updatedFrom = (name: string, from: string): string[] => pods.deletions.filter((d) => d.name.startsWith(`${name}-`) && d.oldRevision === from).map((d) => d.name);
  /** Nothing moves: the partition and the pods stay as they are while the controller looks again. */
  const expectStill = async (name: string, partition: number, from: string, moved: number): Promise<void> => {
    // Log times are the controller's clock.
    await ctrl.reconciled(`${ns}/${name}`, clockNow(), /./, 30_000);
    await sleep(2500);
    expect(partitionOf(await readSts(c, ns, name)), `${name}: partition moved`).to.equal(partition);
    expect(updatedFrom(name, from), `${name}: a pod moved`).to.have.length(moved);
  };

  it('a maintenance window: no step while closed, steps while open, a closing window stops the next step', async () => {
    const name = 'win';
    const before = await createAndSettle(c, ns, statefulSet(name, { replicas: 3, hook: 'http', annotations: withHook({ 'sts-pilot.io/window': 'daily 01:00-02:00 UTC' }) }));
    const from = before.status?.updateRevision ?? '';
    revisions.set(from, 'rev1');
    // Closed (00:30): nothing is asked, nothing moves; status says when it opens.
    await setImage(c, ns, name, 'example/app:2');
    await remember(name, 'rev2');
    await statusSays(name, /^policy window: outside the maintenance window daily 01:00-02:00 UTC: closed; opens Mon 2026-12-07 01:00 UTC/);
    expect((await eventSays(name, 'PolicyHold')).type).to.equal('Normal');
    await expectStill(name, 3, from, 0);
    expect(hook.calls.filter((x) => x.sts === `${ns}/${name}`)).to.have.length(0);
    await snapshot('window-closed', name);

    // Open (01:00): the hook approves one pod and then says "not yet".
    let approvals = 0;
    answer.set(name, () => approvals++ < 1);
    setClock(at('01:00:05'));
    await waitUntil('win-2 updated', 60_000, async () => updatedFrom(name, from).length === 1 && (await podsOf(c, ns, name)).some((p) => p.metadata?.name === 'win-2' && p.metadata.labels?.['controller-revision-hash'] !== from && p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')));
    await statusSays(name, /holds pod win-1/);

    // Closed again (02:00): then the hook would approve, but no step starts.
    setClock(at('02:00:05'));
    await statusSays(name, /^policy window: outside the maintenance window .*opens Tue 2026-12-08 01:00 UTC/);
    answer.set(name, () => true);
    const asked = hook.calls.filter((x) => x.sts === `${ns}/${name}`).length;
    await expectStill(name, 2, from, 1);
    expect(hook.calls.filter((x) => x.sts === `${ns}/${name}`), 'the hook was asked outside the window').to.have.length(asked);
    await snapshot('window-closed-mid-rollout', name);

    // The next night: the rollout finishes.
    setClock(at('01:00:05', 8));
    await waitUntil('win rollout finished', 90_000, () => rolloutFinished(c, ns, name, from));
    expect(updatedFrom(name, from)).to.deep.equal(['win-2', 'win-1', 'win-0']);
  });

  it('after: a StatefulSet steps only once the one it names has no rollout in progress or pending', async () => {
    setClock(at('12:00:00'));
    const hot = await createAndSettle(c, ns, statefulSet('hot', { replicas: 2, hook: 'http', annotations: withHook() }));
    const masters = await createAndSettle(c, ns, statefulSet('masters', { replicas: 2, hook: 'noop', annotations: { 'sts-pilot.io/after': 'hot' } }));
    const hotFrom = hot.status?.updateRevision ?? '';
    const mastersFrom = masters.status?.updateRevision ?? '';
    revisions.set(hotFrom, 'hot1');
    revisions.set(mastersFrom, 'mas1');
    // hot's hook says "not yet" first: masters must wait for a pending rollout too.
    answer.set('hot', () => false);
    await setImage(c, ns, 'hot', 'example/app:2');
    await remember('hot', 'hot2');
    await setImage(c, ns, 'masters', 'example/app:2');
    await remember('masters', 'mas2');
    await statusSays('masters', /^policy after: waiting for StatefulSet hot: 2 of 2 pods are not at its update revision/);
    await expectStill('masters', 2, mastersFrom, 0);
    await snapshot('after-waiting', 'masters');
    answer.set('hot', () => true);
    await waitUntil('masters rollout finished', 120_000, () => rolloutFinished(c, ns, 'masters', mastersFrom));
    const hotDone = Math.max(...pods.deletions.filter((d) => d.name.startsWith('hot-') && d.oldRevision === hotFrom).map((d) => d.at));
    const mastersFirst = Math.min(...pods.deletions.filter((d) => d.name.startsWith('masters-') && d.oldRevision === mastersFrom).map((d) => d.at));
    expect(updatedFrom('hot', hotFrom)).to.have.length(2);
    expect(mastersFirst, 'a masters pod moved before hot had finished').to.be.greaterThan(hotDone);
    // A cycle holds with a reason.
    await mergePatch(c, ns, 'hot', { metadata: { annotations: { 'sts-pilot.io/after': 'masters' } } });
    await setImage(c, ns, 'masters', 'example/app:3');
    await remember('masters', 'mas3');
    await statusSays('masters', /^policy after: the StatefulSets wait for each other in a cycle \(masters -> hot -> masters\)/);
    expect((await eventSays('masters', 'Held', /cycle/)).type).to.equal('Warning');
  });

  it('hold-timeout: a step held longer than the timeout pauses the StatefulSet with a Warning', async () => {
    const name = 'stuck';
    const before = await createAndSettle(c, ns, statefulSet(name, { replicas: 2, hook: 'http', annotations: withHook({ 'sts-pilot.io/hold-timeout': '2m' }) }));
    const from = before.status?.updateRevision ?? '';
    revisions.set(from, 'stk1');
    answer.set(name, () => false);
    await setImage(c, ns, name, 'example/app:2');
    await remember(name, 'stk2');
    await statusSays(name, /holds pod stuck-1/);
    const wait = await waitUntil('the held-time metric', 30_000, async () => new RegExp(`^sts_pilot_step_wait_seconds\\{namespace="${ns}",statefulset="${name}"\\} ([0-9.e+-]+)$`, 'm').exec(await ctrl.metrics()) ?? undefined);
    expect(Number(wait[1])).to.be.lessThan(120);
    await snapshot('hold-timeout-held', name);
    setClock(clockNow() + 3 * 60_000);
    const paused = await waitUntil('stuck paused', 60_000, async () => {
      const s = await readSts(c, ns, name);
      return s.metadata?.annotations?.['sts-pilot.io/paused'] === 'true' ? s : undefined;
    });
    expect(partitionOf(paused)).to.equal(2);
    const ev = await eventSays(name, 'HoldTimeout', /longer than hold-timeout 2m; pausing/);
    expect(ev.type).to.equal('Warning');
    expect(String((await status(name)).message)).to.match(/^policy hold-timeout: this step has been held \d+m\d\ds, longer than hold-timeout 2m; pausing/);
    expect(updatedFrom(name, from)).to.have.length(0);
    await snapshot('hold-timeout-paused', name);
    // Resumed, the held time starts again: the hook is asked, and the rollout is not paused at once.
    const resumed = await cli(['resume', name]);
    expect(resumed.code, resumed.stderr).to.equal(0);
    await statusSays(name, /holds pod stuck-1/);
    await expectStill(name, 2, from, 0);
    expect((await readSts(c, ns, name)).metadata?.annotations?.['sts-pilot.io/paused']).to.equal(undefined);
    answer.set(name, () => true);
    await waitUntil('stuck rollout finished', 90_000, () => rolloutFinished(c, ns, name, from));
  });

  it('automatic halt: consecutive hook errors (not HookNotReady) pause the StatefulSet', async () => {
    const name = 'broken';
    const before = await createAndSettle(c, ns, statefulSet(name, { replicas: 2, hook: 'noop', annotations: { 'sts-pilot.io/halt-after-errors': '3', 'test.sts-pilot.io/fail-hook': 'true' } }));
    const from = before.status?.updateRevision ?? '';
    revisions.set(from, 'brk1');
    await setImage(c, ns, name, 'example/app:2');
    await remember(name, 'brk2');
    await waitUntil('broken paused', 60_000, async () => (await readSts(c, ns, name)).metadata?.annotations?.['sts-pilot.io/paused'] === 'true');
    const ev = await eventSays(name, 'HookErrorsHalt');
    expect(ev.type).to.equal('Warning');
    expect(ev.message).to.match(/^policy halt: the hook failed 3 times in a row \(halt-after-errors 3\); last error: hook noop failed: .*injected fault/);
    expect(ev.message).to.match(/resume with: sts-pilot resume broken$/);
    const held = (await eventsFor(c, ns, name)).filter((e) => e.reason === 'HookHeld');
    expect(held).to.have.length.of.at.least(1);
    expect(held.map((e) => e.type), 'a hook error is a Warning').to.satisfy((types: string[]) => types.every((t) => t === 'Warning'));
    expect(updatedFrom(name, from)).to.have.length(0);
    expect(partitionOf(await readSts(c, ns, name))).to.equal(2);
    await snapshot('halt-paused', name);
  });

  it('override: lets exactly one pod through without the hook, once, recorded with the user the API server stamped', async () => {
    const name = 'ovr';
    const before = await createAndSettle(c, ns, statefulSet(name, { replicas: 3, hook: 'http', annotations: withHook() }));
    const from = before.status?.updateRevision ?? '';
    revisions.set(from, 'ovr1');
    answer.set(name, () => false);
    await setImage(c, ns, name, 'example/app:2');
    await remember(name, 'ovr2');
    await statusSays(name, /holds pod ovr-2/);
    // Nobody writes a user name of their choice: the API server refuses it.
    const forged = await mergePatch(c, ns, name, { metadata: { annotations: { 'sts-pilot.io/override-by': 'mallory' } } }).then(
      () => 'accepted',
      (e: unknown) => String((e as { body?: string }).body ?? e),
    );
    expect(forged).to.match(/sts-pilot.io\/override-by records who set the override and is stamped by the API server: it must be admin, not mallory/);
    const r = await cli(['approve', name, '--override', '--reason', 'the hook is stuck on a dead node; checked by hand']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/override written for pod ovr-2 \(next\)/);
    const ev = await eventSays(name, 'OverrideApplied');
    expect(ev.type).to.equal('Warning');
    expect(ev.message).to.match(/^override by admin lets pod ovr-2 through without the hook \(reason: the hook is stuck on a dead node; checked by hand\); partition 3 -> 2$/);
    await waitUntil('ovr-2 updated', 60_000, async () => updatedFrom(name, from).length === 1);
    // With an override in place, a forged name is replaced by who wrote it.
    await mergePatch(c, ns, name, { metadata: { annotations: { 'sts-pilot.io/override-by': 'mallory' } } });
    expect((await readSts(c, ns, name)).metadata?.annotations?.['sts-pilot.io/override-by']).to.equal('admin');
    const recorded = (await status(name)).override as Record<string, string>;
    expect(recorded).to.include({ pod: 'ovr-2', by: 'admin', reason: 'the hook is stuck on a dead node; checked by hand' });
    expect(recorded.appliedAt).to.be.a('string');
    // Never again: the next pod waits for the hook, which still says no.
    await statusSays(name, /holds pod ovr-1/);
    await expectStill(name, 2, from, 1);
    expect(hook.calls.filter((x) => x.sts === `${ns}/${name}` && x.approved)).to.have.length(0);
    await snapshot('override-applied', name);
  });
});
