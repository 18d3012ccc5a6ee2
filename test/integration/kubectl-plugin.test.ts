import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from '../cluster/controlplane.ts';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  namespace,
  partitionOf,
  PodWatcher,
  podsOf,
  readSts,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The real kubectl finding bin/kubectl-sts_pilot on PATH (kubectl's plugin
 * convention) and passing it the flags after the plugin's name.
 */
describe('kubectl plugin: kubectl sts-pilot status|pause|resume|approve|undo|hooks with the real kubectl', function () {
  this.timeout(5 * 60_000);
  let c: Cluster;
  let ns: string;
  let kubectl: string;
  let ctrl: ControllerProcess;
  let multi: string;

  const kc = (args: string[], env: Record<string, string> = {}): Promise<Run> =>
    new Promise((resolve) => {
      execFile(kubectl, args, { env: { ...process.env, PATH: `${join(root, 'bin')}:${process.env.PATH ?? ''}`, ...env } }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const plugin = (...args: string[]): Promise<Run> => kc(['sts-pilot', ...args, '--kubeconfig', c.kubeconfigPath]);
  const ok = async (r: Promise<Run>): Promise<string> => {
    const x = await r;
    expect(x.code, `${x.stdout}${x.stderr}`).to.equal(0);
    return x.stdout;
  };

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    kubectl = c.cp ? join(c.cp.binDir, 'kubectl') : 'kubectl';
    ns = await namespace(c, 'plugin');
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    await createAndSettle(c, ns, statefulSet('web', { replicas: 3, hook: 'manual' }));
    // A kubeconfig whose current context leads nowhere; "real" is the test cluster, "real-ns" also sets the namespace.
    const admin = new KubeConfig();
    admin.loadFromFile(c.kubeconfigPath);
    const cl = admin.getCurrentCluster();
    const user = admin.getCurrentUser();
    if (!cl || !user) throw new Error('no cluster or user in the admin kubeconfig');
    const k = new KubeConfig();
    k.loadFromOptions({
      clusters: [cl, { name: 'nowhere', server: `https://127.0.0.1:${await freePort()}`, skipTLSVerify: true }], // nothing listens there
      users: [user],
      contexts: [
        { name: 'broken', cluster: 'nowhere', user: user.name },
        { name: 'real', cluster: cl.name, user: user.name },
        { name: 'real-ns', cluster: cl.name, user: user.name, namespace: ns },
      ],
      currentContext: 'broken',
    });
    multi = join(mkdtempSync(join(tmpdir(), 'sts-pilot-plugin-')), 'kubeconfig');
    writeFileSync(multi, k.exportConfig(), { mode: 0o600 });
  });

  after(async () => {
    await ctrl?.kill();
  });

  it('kubectl finds it (kubectl plugin list) and runs it: --version, hooks', async () => {
    const list = await kc(['plugin', 'list']);
    expect(list.stdout).to.include(join(root, 'bin', 'kubectl-sts_pilot'));
    expect((await ok(kc(['sts-pilot', '--version']))).trim()).to.match(/^sts-pilot \d+\.\d+\.\d+$/);
    expect(await ok(kc(['sts-pilot', 'hooks']))).to.match(/^manual\b/m);
    const help = await ok(kc(['sts-pilot', 'status', '--help']));
    expect(help).to.match(/^Usage: kubectl sts-pilot status/);
  });

  it('honours --kubeconfig, --context, -n (and the context\'s namespace) and -A', async () => {
    const header = new RegExp(`^${ns}/web  hook manual  RollingUpdate  partition 3, replicas 3$`, 'm');
    expect(await ok(plugin('status', '-n', ns))).to.match(header);
    expect(await ok(kc(['sts-pilot', 'status', '-A', '--kubeconfig', c.kubeconfigPath]))).to.match(header);
    // The current context of `multi` leads nowhere: only --context makes it work.
    const broken = await kc(['sts-pilot', 'status', '-n', ns, '--kubeconfig', multi]);
    expect(broken.code).to.equal(1);
    expect(broken.stderr).to.match(/^sts-pilot: fetch failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/m);
    expect(await ok(kc(['sts-pilot', 'status', '-n', ns, '--kubeconfig', multi, '--context', 'real']))).to.match(header);
    expect(await ok(kc(['sts-pilot', 'status', '--kubeconfig', multi, '--context', 'real-ns']))).to.match(header);
    // KUBECONFIG, as kubectl itself reads it.
    expect(await ok(kc(['sts-pilot', 'status', '--context', 'real', '-n', ns], { KUBECONFIG: multi }))).to.match(header);
    // A flag error names the flag and what it takes.
    const bad = await kc(['sts-pilot', 'undo', 'web', '-n', ns, '--to-revision', 'two', '--kubeconfig', c.kubeconfigPath]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('--to-revision must be a revision number (1 or more)');
  });

  it('pause and resume', async () => {
    expect(await ok(plugin('pause', 'web', '-n', ns))).to.match(/^paused .*\/web/);
    expect((await readSts(c, ns, 'web')).metadata?.annotations?.['sts-pilot.io/paused']).to.equal('true');
    expect(await ok(plugin('resume', 'web', '-n', ns))).to.match(/^resumed .*\/web/);
    expect((await readSts(c, ns, 'web')).metadata?.annotations?.['sts-pilot.io/paused']).to.equal(undefined);
  });

  it('approve one pod, then undo: the template goes back with the partition held, and the updated pod returns only when approved', async () => {
    const watcher = await new PodWatcher().start(c, ns);
    try {
      const good = (await readSts(c, ns, 'web')).status?.updateRevision ?? '';
      await setImage(c, ns, 'web', 'example/app:bad');
      await waitUntil('the manual hook to ask about web-2', 30_000, async () => (await ok(plugin('status', 'web', '-n', ns))).includes('waiting for approval'));
      expect(await ok(plugin('approve', 'web', '-n', ns))).to.match(/approved pod web-2/);
      const bad = (await readSts(c, ns, 'web')).status?.updateRevision ?? '';
      await waitUntil('web-2 on the new revision, Ready', 30_000, async () => {
        const p = (await podsOf(c, ns, 'web')).find((x) => x.metadata?.name === 'web-2');
        return p?.metadata?.labels?.['controller-revision-hash'] === bad && p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
      });
      await waitUntil('the hook to ask about web-1', 30_000, async () => (await ok(plugin('status', 'web', '-n', ns))).includes('pod web-1 to revision'));

      const out = await ok(plugin('undo', 'web', '-n', ns));
      expect(out).to.match(new RegExp(`^${ns}/web: template of revision 1 \\(${good}\\) restored; partition held at 3 in the same write$`, 'm'));
      const after = await readSts(c, ns, 'web');
      expect(partitionOf(after)).to.equal(3);
      expect(after.spec?.template.spec?.containers[0]?.image).to.equal('example/app:1');
      // Nothing moves by itself: web-2 stays on the bad revision until approved.
      const deletionsBefore = watcher.deletions.length;
      await sleep(3000);
      expect(watcher.deletions.length, 'pods deleted without an approval').to.equal(deletionsBefore);
      expect((await podsOf(c, ns, 'web')).find((x) => x.metadata?.name === 'web-2')?.metadata?.labels?.['controller-revision-hash']).to.equal(bad);
      await waitUntil('the hook to ask about web-2 going back', 30_000, async () => (await ok(plugin('status', 'web', '-n', ns))).includes(`pod web-2 to revision ${good}`));
      expect(await ok(plugin('approve', 'web', '-n', ns))).to.match(/approved pod web-2/);
      await waitUntil('the final step to be asked', 60_000, async () => (await ok(plugin('status', 'web', '-n', ns))).includes('the end of the rollout to revision'));
      expect(await ok(plugin('approve', 'web', '-n', ns))).to.match(/approved the end of the rollout/);
      await waitUntil('every pod back on the old revision, partition at replicas', 60_000, async () => {
        const s = await readSts(c, ns, 'web');
        const pods = await podsOf(c, ns, 'web');
        return partitionOf(s) === 3 && s.status?.currentRevision === good && pods.length === 3 && pods.every((p) => p.metadata?.labels?.['controller-revision-hash'] === good);
      });
      // Only web-2 was ever replaced: once forward, once back.
      expect(watcher.deletions.map((d) => d.name)).to.deep.equal(['web-2', 'web-2']);
      // A revision that does not exist: refused, exit code 1, with what there is.
      const none = await plugin('undo', 'web', '-n', ns, '--to-revision', '99');
      expect(none.code).to.equal(1);
      expect(none.stderr).to.match(/^sts-pilot: .*\/web has no revision 99; its revisions: \d/);
    } finally {
      await watcher.stop();
    }
  });
});
