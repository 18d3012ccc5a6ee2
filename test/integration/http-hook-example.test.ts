import { expect } from 'chai';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  eventsFor,
  mergePatch,
  namespace,
  partitionOf,
  PodWatcher,
  podsOf,
  readSts,
  rolloutFinished,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

const root = new URL('../../', import.meta.url).pathname;

/** One answer of the example server, as it logs it. */
interface Answer {
  at: number;
  status: number;
  why: string;
}

/**
 * docs/examples/http-hook/server.mjs — the example a hook author starts from
 * (docs/hooks-http.md) — driving a real rollout and a real scale-down: what the
 * guide promises is what a real control plane does with it.
 */
describe('http hook: the documented example server against a real control plane', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let ns: string;
  let dir: string;
  let server: ChildProcess;
  let ctrl: ControllerProcess;
  let watcher: PodWatcher;
  const answers: Answer[] = [];

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    dir = mkdtempSync(join(tmpdir(), 'http-hook-example-'));
    server = spawn(process.execPath, [join(root, 'docs/examples/http-hook/server.mjs')], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HOLD_FILE: join(dir, 'hold'), DRAINED_FILE: join(dir, 'drained') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let port = 0;
    let buf = '';
    server.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, i)) as { listening?: number; status?: number; why?: string };
        buf = buf.slice(i + 1);
        if (line.listening) port = line.listening;
        else answers.push({ at: Date.now(), status: line.status ?? 0, why: line.why ?? '' });
      }
    });
    await waitUntil('the example server to listen', 10_000, async () => port > 0);
    ns = await namespace(c, 'http-example');
    watcher = await new PodWatcher().start(c, ns);
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    await createAndSettle(c, ns, statefulSet('web', { replicas: 3, hook: 'http', annotations: { 'http.sts-pilot.io/url': `http://127.0.0.1:${port}/` } }));
  });
  after(async () => {
    await ctrl?.kill('SIGTERM');
    await watcher?.stop();
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Pods deleted with no approval naming them answered before. */
  const unapproved = (verb: string): string[] =>
    watcher.deletions
      .filter((d) => d.name.startsWith('web-'))
      .filter((d) => !answers.some((a) => a.status === 204 && a.why === `${ns}/web: ${d.name} ${verb}` && a.at <= d.at))
      .map((d) => d.name);

  it('holds a rollout with the hold file\'s reason, then rolls every pod after its approval', async () => {
    writeFileSync(join(dir, 'hold'), 'change freeze until Monday\n');
    const from = (await readSts(c, ns, 'web')).status?.updateRevision ?? '';
    await setImage(c, ns, 'web', 'example/app:2');
    const held = await waitUntil('a HookHeld Event with the server\'s reason', 60_000, async () =>
      (await eventsFor(c, ns, 'web')).find((e) => e.reason === 'HookHeld' && e.message.includes('change freeze until Monday')),
    );
    expect(held.message).to.include('answered 409');
    expect(partitionOf(await readSts(c, ns, 'web'))).to.equal(3);
    expect(watcher.deletions, 'no pod moved while held').to.deep.equal([]);

    rmSync(join(dir, 'hold'));
    await waitUntil('the rollout to finish', 180_000, () => rolloutFinished(c, ns, 'web', from));
    expect(watcher.deletions.map((d) => d.name)).to.deep.equal(['web-2', 'web-1', 'web-0']);
    expect(unapproved('may move'), 'pods moved without an approval naming them').to.deep.equal([]);
    expect(answers.some((a) => a.why === `${ns}/web: (final call) may move`), 'the final call was asked').to.equal(true);
  });

  it('holds a scale-down until the pod is listed as drained, then removes only that pod', async () => {
    const before = watcher.deletions.length;
    await mergePatch(c, ns, 'web', { spec: { replicas: 2 } });
    const held = await waitUntil('a HookHeld Event for the removal', 60_000, async () =>
      (await eventsFor(c, ns, 'web')).find((e) => e.reason === 'HookHeld' && e.message.includes('web-2 is not drained yet')),
    );
    expect(held.message).to.match(/removal of pod web-2/);
    expect((await podsOf(c, ns, 'web')).length, 'held in the API server and by the hook: nothing left').to.equal(3);

    writeFileSync(join(dir, 'drained'), 'web-2\n');
    await waitUntil('replicas 2 and web-2 gone', 120_000, async () => {
      const s = await readSts(c, ns, 'web');
      return s.spec?.replicas === 2 && (await podsOf(c, ns, 'web')).filter((p) => !p.metadata?.deletionTimestamp).length === 2;
    });
    expect(watcher.deletions.slice(before).map((d) => d.name)).to.deep.equal(['web-2']);
    const removedAt = watcher.deletions.slice(before)[0]!.at;
    expect(answers.some((a) => a.status === 204 && a.why === `${ns}/web: web-2 may leave` && a.at <= removedAt), 'web-2 removed after its approval').to.equal(true);
    await waitUntil('the example server told web-2 is removed', 30_000, async () => answers.some((a) => a.why === `${ns}/web: web-2 removed`));
  });
});
