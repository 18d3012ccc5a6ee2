import { expect } from 'chai';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  converged,
  createAndSettle,
  namespace,
  partitionOf,
  PartitionRecorder,
  readSts,
  setImage,
  statefulSet,
  snapshots,
  waitUntil,
} from './harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const expectSnapshot = snapshots('cli');

interface Run {
  args: string[];
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * What varies from run to run, made fixed: the namespace, revision hashes
 * (each replaced by a token of the same width as the CLI's short hash, so
 * columns stay aligned), ages and clock times.
 */
function normalise(text: string, ns: string, revisions: Map<string, string>): string {
  let out = text.split(ns).join('<ns>');
  for (const [revision, token] of revisions) {
    const hash = revision.slice(revision.lastIndexOf('-') + 1);
    out = out.split(hash).join(token).split(hash.slice(0, 8)).join(token);
  }
  return out
    .replace(/ for \d+[dhms](\d\d[hms])?(?=:)/g, ' for <age>')
    .replace(/^--- \d\d:\d\d:\d\d UTC ---$/gm, '--- <time> ---');
}

describe('cli: status, approve, pause/resume, hooks and --watch on a real control plane', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let ns: string;
  let ctrl: ControllerProcess;
  let partitions: PartitionRecorder;
  const revisions = new Map<string, string>();
  const watchers: ChildProcess[] = [];

  before(async function () {
    this.timeout(80 * 60_000); // a first run builds the control plane
    c = await cluster();
    ns = await namespace(c, 'cli');
    partitions = await new PartitionRecorder().start(c, ns);
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
  });

  after(async () => {
    for (const w of watchers) w.kill('SIGKILL');
    await ctrl?.kill('SIGTERM');
    await partitions?.stop();
  });

  /** The real CLI, as a person runs it: a separate process with the admin kubeconfig. */
  const cli = (args: string[], kube = true): Promise<Run> =>
    new Promise((resolve) => {
      const argv = ['--disable-warning=ExperimentalWarning', 'cmd/sts-pilot.ts', ...args, ...(kube ? ['--kubeconfig', c.kubeconfigPath] : [])];
      execFile(process.execPath, argv, { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ args, stdout, stderr, code });
      });
    });

  /** One snapshot file: the command line, what it printed (stdout, then stderr), and a non-zero exit code. */
  const transcript = (r: Run): string =>
    normalise(`$ sts-pilot ${r.args.join(' ')}\n${r.stdout}${r.stderr}${r.code !== 0 ? `[exit ${r.code}]\n` : ''}`, ns, revisions);

  const snapshot = async (name: string, args: string[], code = 0): Promise<Run> => {
    const r = await cli(args);
    expect(r.code, `sts-pilot ${args.join(' ')}:\n${r.stdout}${r.stderr}`).to.equal(code);
    expectSnapshot(name, transcript(r));
    return r;
  };

  const statusMessage = async (name: string): Promise<string> => {
    const raw = (await readSts(c, ns, name)).metadata?.annotations?.['sts-pilot.io/status'] ?? '{}';
    return (JSON.parse(raw) as { message?: string }).message ?? '';
  };

  const heldOn = (name: string, what: string): Promise<string> =>
    waitUntil(`${name}: the manual hook holding ${what}`, 60_000, async () => {
      const m = await statusMessage(name);
      return m.startsWith(`manual holds ${what}:`) ? m : undefined;
    });

  /** Nothing moves without an approval: the partition stays where it is for a while. */
  const expectStaysAt = async (name: string, p: number): Promise<void> => {
    expect(partitionOf(await readSts(c, ns, name))).to.equal(p);
    await sleep(1500);
    expect(partitionOf(await readSts(c, ns, name)), `${name}: partition moved without an approval`).to.equal(p);
  };

  const newRevision = async (name: string, token: string): Promise<void> => {
    const sts = await waitUntil(`${name}: new updateRevision`, 30_000, async () => {
      const s = await readSts(c, ns, name);
      return s.status?.observedGeneration === s.metadata?.generation && s.status?.updateRevision && !revisions.has(s.status.updateRevision) ? s : undefined;
    });
    revisions.set(sts.status?.updateRevision ?? '', token);
  };

  it('status draws a steady StatefulSet', async () => {
    const since = Date.now();
    const sts = await createAndSettle(c, ns, statefulSet('web', { replicas: 3, hook: 'manual' }));
    revisions.set(sts.status?.updateRevision ?? '', 'REV1HASH');
    // Created held by the API server (partition = replicas), it leaves the controller nothing to write.
    await ctrl.reconciled(`${ns}/web`, since, /^all 3 pods run /);
    expect(await statusMessage('web')).to.equal('');
    await snapshot('status-steady', ['status', '-n', ns]);
    await snapshot('status-not-found', ['status', 'nope', '-n', ns], 1);
  });

  it('approve moves a manual rollout one pod per approval, and only then', async () => {
    await setImage(c, ns, 'web', 'example/app:2');
    await newRevision('web', 'REV2HASH');

    await heldOn('web', 'pod web-2');
    await expectStaysAt('web', 3);
    await snapshot('status-1-first-step-held', ['status', '-n', ns]);
    await snapshot('approve-wrong-pod', ['approve', 'web', '-n', ns, '--pod', 'web-1'], 1);
    await expectStaysAt('web', 3);
    await snapshot('approve-web-2', ['approve', 'web', '-n', ns]);
    await waitUntil('partition 2', 30_000, async () => partitionOf(await readSts(c, ns, 'web')) === 2);

    await heldOn('web', 'pod web-1');
    await expectStaysAt('web', 2);
    await snapshot('status-2-second-step-held', ['status', 'web', '-n', ns]);
    await snapshot('approve-web-1', ['approve', 'web', '-n', ns, '--pod', 'web-1']);
    await waitUntil('partition 1', 30_000, async () => partitionOf(await readSts(c, ns, 'web')) === 1);

    await heldOn('web', 'pod web-0');
    await expectStaysAt('web', 1);
    await cli(['approve', 'web', '-n', ns, '--pod', 'web-0']);
    await waitUntil('partition 0', 30_000, async () => partitionOf(await readSts(c, ns, 'web')) === 0);

    await heldOn('web', 'the end of the rollout');
    await expectStaysAt('web', 0);
    await snapshot('status-3-end-held', ['status', '-n', ns]);
    await snapshot('approve-end', ['approve', 'web', '-n', ns, '--pod', 'end']);
    await waitUntil('the rollout to finish', 60_000, async () => {
      const s = await converged(c, ns, 'web');
      return s && partitionOf(s) === 3;
    });
    await waitUntil('the controller to record the finish', 30_000, async () => (await statusMessage('web')).includes('finished'));
    // Created without a partition; then held at 3, one step per approval, and back to 3.
    expect(partitions.of('web').filter((p) => p !== undefined)).to.deep.equal([3, 2, 1, 0, 3]);
    await snapshot('status-4-finished', ['status', '-n', ns]);
    await snapshot('approve-nothing-pending', ['approve', 'web', '-n', ns], 1);
  });

  it('approve refuses a StatefulSet that does not use the manual hook', async () => {
    await createAndSettle(c, ns, statefulSet('plain', { replicas: 1, hook: 'noop' }));
    await snapshot('approve-not-manual', ['approve', 'plain', '-n', ns], 1);
  });

  it('pause holds a new rollout, approve refuses it, resume lets the hook ask again', async () => {
    await snapshot('pause', ['pause', 'web', '-n', ns]);
    await snapshot('pause-again', ['pause', 'web', '-n', ns]);
    const before = await statusMessage('web');
    await setImage(c, ns, 'web', 'example/app:3');
    await newRevision('web', 'REV3HASH');
    await expectStaysAt('web', 3);
    expect(await statusMessage('web'), 'paused: the controller writes nothing').to.equal(before);
    await snapshot('status-paused', ['status', '-n', ns, 'web']);
    await snapshot('approve-paused', ['approve', 'web', '-n', ns], 1);
    await snapshot('resume', ['resume', 'web', '-n', ns]);
    await snapshot('resume-again', ['resume', 'web', '-n', ns]);
    await heldOn('web', 'pod web-2');
  });

  it('status --watch redraws when the rollout moves, and only then', async () => {
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', 'cmd/sts-pilot.ts', 'status', 'web', '-n', ns, '--watch', '--kubeconfig', c.kubeconfigPath],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    watchers.push(child);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const frames = (): string[] =>
      normalise(out, ns, revisions)
        .split(/^--- <time> ---\n/m)
        .filter(Boolean);

    await waitUntil('the first frame', 30_000, async () => frames().length >= 1 && out.endsWith('\n'));
    // Nothing changes while the hook holds: no new frame, however long we wait.
    await sleep(2500);
    expect(frames(), `stderr: ${err}`).to.have.length(1);
    expectSnapshot('watch-first-frame', frames()[0] ?? '');

    expect((await cli(['approve', 'web', '-n', ns, '--pod', 'web-2'])).code).to.equal(0);
    await waitUntil('a frame with partition 2 and web-1 next', 60_000, async () =>
      frames().some((f) => f.includes('partition 2, replicas 3') && f.includes('web-1  REV2HASH  Ready  <- next')),
    );
    child.kill('SIGINT');
    expect(await exited, 'status --watch exits cleanly on SIGINT').to.equal(0);

    const all = frames();
    expect(all.length).to.be.at.least(2);
    expect(all[0]).to.contain('partition 3, replicas 3');
    for (let i = 1; i < all.length; i++) {
      expect(all[i]?.replace(/ for <age>/g, ''), 'a frame printed without a change').to.not.equal(all[i - 1]?.replace(/ for <age>/g, ''));
    }
    expect(out, 'no ANSI escapes when stdout is not a terminal').to.not.match(/\x1b/);
  });

  it('hooks lists every registered hook and its options', async () => {
    const r = await cli(['hooks'], false);
    expect(r.code).to.equal(0);
    expectSnapshot('hooks', transcript(r));
  });
});
