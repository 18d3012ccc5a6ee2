import { PatchStrategy, setHeaderOptions, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadYaml } from '@kubernetes/client-node';
import { type Health, rolloutHealth, stsHealth } from '../../lib/cli/health.ts';
import { goTool } from '../tools/tools.ts';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  namespace,
  partitionOf,
  podsOf,
  readSts,
  rolloutFinished,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

// Issue 25, item 1: what CI and GitOps see of a held rollout. One StatefulSet is
// driven through each phase on the real control plane and recorded; the Argo CD
// health script (in gopher-lua, as Argo CD runs it), the Flux health expressions
// (in cel-go, as Flux runs them) and the TypeScript verdict of `sts-pilot wait`
// must say the same of every recording. Then a GitOps-style server-side apply
// around a rollout step, to show who owns the partition.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const gitops = join(root, 'charts', 'sts-pilot', 'files', 'gitops');
const LABEL = 'sts-pilot.io/hook';
const FLUX: Record<Health, string> = { Healthy: 'Current', Progressing: 'InProgress', Degraded: 'Failed', Suspended: 'Failed' };

interface Recording {
  phase: string;
  expect: Health;
  sts: V1StatefulSet;
  pods: V1Pod[];
}

interface Evaluated {
  lua: { status?: string; message?: string; error?: string };
  flux: string;
  fluxError?: string;
}

describe('gitops: wait, the Argo CD and Flux health checks on recorded phases, and server-side apply around a step', function () {
  this.timeout(4 * 60_000);
  let c: Cluster;
  let ns: string;
  let ctrl: ControllerProcess;
  let evaluator: string;
  const recordings: Recording[] = [];
  const children: ChildProcess[] = [];

  before(async function () {
    this.timeout(80 * 60_000); // a first run builds the control plane and the evaluator
    c = await cluster();
    evaluator = await goTool('gitops-eval', (l) => console.log(`      ${l}`));
    ns = await namespace(c, 'gitops');
    // failing-hook: the noop hook fails (not HookNotReady) where a StatefulSet asks, so the halt policy can be shown.
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, '--no-leader-elect', '--hook-retry-max', '1'], undefined, {
      nodeArgs: ['--import', './test/cluster/failing-hook.ts'],
    });
  });

  after(async () => {
    for (const ch of children) ch.kill('SIGKILL');
    await ctrl?.kill('SIGTERM');
  });

  const cli = (args: string[]): Promise<{ stdout: string; stderr: string; code: number }> =>
    new Promise((resolve) => {
      const argv = ['--disable-warning=ExperimentalWarning', 'cmd/sts-pilot.ts', ...args, '-n', ns, '--kubeconfig', c.kubeconfigPath];
      execFile(process.execPath, argv, { cwd: root, timeout: 120_000 }, (err, stdout, stderr) => {
        resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : -1) : 0 });
      });
    });

  /** `sts-pilot wait` in the background: its output and exit code when it ends. */
  const waitInBackground = (args: string[]): { out: () => string; done: Promise<{ code: number | null; stdout: string; stderr: string }> } => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', 'cmd/sts-pilot.ts', 'wait', ...args, '-n', ns, '--kubeconfig', c.kubeconfigPath], { cwd: root });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return { out: () => stdout, done: new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr }))) };
  };

  const statusOf = async (name: string): Promise<{ state?: string; message?: string }> =>
    JSON.parse((await readSts(c, ns, name)).metadata?.annotations?.['sts-pilot.io/status'] ?? '{}') as { state?: string; message?: string };

  const heldOn = (name: string, what: string): Promise<unknown> =>
    waitUntil(`${name}: the manual hook holding ${what}`, 60_000, async () => (await statusOf(name)).message?.startsWith(`manual holds ${what}:`));

  const approve = async (name: string, pod: string): Promise<void> => {
    await heldOn(name, pod === 'end' ? 'the end of the rollout' : `pod ${pod}`);
    const r = await cli(['approve', name, '--pod', pod]);
    expect(r.code, r.stderr).to.equal(0);
  };

  /** The StatefulSet and its pods as they are now, kept for the evaluators. */
  const record = async (phase: string, name: string, health: Health): Promise<void> => {
    recordings.push({ phase, expect: health, sts: await readSts(c, ns, name), pods: await podsOf(c, ns, name) });
  };

  const evaluate = (objects: V1StatefulSet[], openLibs: boolean): Promise<Evaluated[]> => {
    const cel = (loadYaml(readFileSync(join(gitops, 'flux-healthcheckexprs.yaml'), 'utf8')) as { healthCheckExprs: Record<string, string>[] }).healthCheckExprs[0];
    const lua = readFileSync(join(gitops, 'argocd-statefulset-health.lua'), 'utf8');
    return new Promise<Evaluated[]>((resolve, reject) => {
      const child = execFile(evaluator, [], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(JSON.parse(stdout) as Evaluated[])));
      child.stdin?.end(JSON.stringify({ lua, openLibs, cel, objects }));
    });
  };

  it('wait follows a manual rollout to its end, one line per step; the phases on the way are recorded', async () => {
    const name = 'web';
    const before = await createAndSettle(c, ns, statefulSet(name, { replicas: 3, hook: 'manual' }));
    const from = before.status?.updateRevision ?? '';
    await waitUntil('web steady in its record', 30_000, async () => (await statusOf(name)).state !== 'Rolling');
    await record('steady (no rollout)', name, 'Healthy');
    const steady = await cli(['wait', name]);
    expect(steady.code, steady.stderr).to.equal(0);
    expect(steady.stdout).to.match(/rollout finished: all 3 pods run /);

    await setImage(c, ns, name, 'example/app:2');
    await heldOn(name, 'pod web-2');
    await record('held before the first pod (partition = replicas)', name, 'Progressing');
    // What kubectl rollout status and Argo CD's built-in check call done at once:
    const sts = await readSts(c, ns, name);
    expect(partitionOf(sts)).to.equal(3);
    const timedOut = await cli(['wait', name, '--timeout', '2s']);
    expect(timedOut.code).to.equal(1);
    expect(timedOut.stderr).to.match(/not finished after 2s \(--timeout\): still Progressing: 0\/3 pods at the update revision .*: manual holds pod web-2/);

    await approve(name, 'web-2');
    await heldOn(name, 'pod web-1');
    await record('held after a step', name, 'Progressing');

    expect((await cli(['pause', name])).code).to.equal(0);
    await record('paused by a person', name, 'Suspended');
    const paused = await cli(['wait', name]);
    expect(paused.code).to.equal(1);
    expect(paused.stderr).to.match(/paused \(sts-pilot.io\/paused\): 1\/3 pods .*; resume with: sts-pilot resume web/);
    expect((await cli(['resume', name])).code).to.equal(0);

    const w = waitInBackground([name]);
    // Each approval only after wait has printed the hold it ends: the lines are then there whatever the machine's speed.
    for (const [pod, what] of [['web-1', 'pod web-1'], ['web-0', 'pod web-0'], ['end', 'the end of the rollout']] as const) {
      await waitUntil(`wait printing the hold on ${what}`, 60_000, async () => w.out().includes(`manual holds ${what}:`));
      await approve(name, pod);
    }
    const end = await w.done;
    expect(end.code, end.stderr).to.equal(0);
    const lines = end.stdout.trim().split('\n');
    console.log(`      sts-pilot wait ${name}:\n${lines.map((l) => `        ${l}`).join('\n')}`);
    // One line per situation, not per event: each pod's step shows, and the end.
    for (const pod of ['web-1', 'web-0']) expect(end.stdout).to.include(`manual holds pod ${pod}`);
    expect(end.stdout).to.include('manual holds the end of the rollout');
    expect(lines.at(-1)).to.match(/rollout finished: all 3 pods run web-/);
    expect(lines.length).to.be.below(30);
    await waitUntil('web finished', 60_000, () => rolloutFinished(c, ns, name, from));
    await record('done', name, 'Healthy');
  });

  it('wait fails at once on a halt, and when the template is rolled back under it', async () => {
    const broken = 'broken';
    await createAndSettle(c, ns, statefulSet(broken, { replicas: 2, hook: 'noop', annotations: { 'sts-pilot.io/halt-after-errors': '2', 'test.sts-pilot.io/fail-hook': 'true' } }));
    await setImage(c, ns, broken, 'example/app:2');
    await waitUntil('broken halted', 90_000, async () => (await readSts(c, ns, broken)).metadata?.annotations?.['sts-pilot.io/paused'] === 'true');
    await record('halted by a policy (hook errors)', broken, 'Degraded');
    const halted = await cli(['wait', broken]);
    expect(halted.code).to.equal(1);
    expect(halted.stderr).to.match(/broken: halted: policy halt: the hook failed 2 times in a row/);

    const back = 'back';
    await createAndSettle(c, ns, statefulSet(back, { replicas: 2, hook: 'manual' }));
    await setImage(c, ns, back, 'example/app:2');
    await heldOn(back, 'pod back-1');
    const w = waitInBackground([back]);
    await waitUntil('wait has seen the rollout', 60_000, async () => w.out().includes('Progressing'));
    await setImage(c, ns, back, 'example/app:1');
    const r = await w.done;
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/back: rolled back: the template went back to revision back-\w+; the rollout to back-\w+ was abandoned/);

    const plain = 'plain';
    await createAndSettle(c, ns, statefulSet(plain, { replicas: 2 }));
    await record('not subscribed', plain, 'Healthy');
  });

  it('status -o json gives the versioned report', async () => {
    const r = await cli(['status', 'web', '-o', 'json']);
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout) as { apiVersion: string; items: { name: string; health: string; reason: string; pods: unknown[] }[] };
    expect(report.apiVersion).to.equal('sts-pilot.io/status/v1');
    expect(report.items.map((i) => [i.name, i.health, i.reason, i.pods.length])).to.deep.equal([['web', 'Healthy', 'done', 3]]);
    const y = await cli(['status', 'broken', '-o', 'yaml']);
    expect(y.stdout).to.match(/^apiVersion: sts-pilot.io\/status\/v1\n/);
    expect(y.stdout).to.match(/health: Degraded\n\s+reason: halted/);
  });

  it('Argo CD (gopher-lua), Flux (cel-go) and sts-pilot wait say the same of every recorded phase', async () => {
    const phases = ['steady (no rollout)', 'held before the first pod (partition = replicas)', 'held after a step', 'paused by a person', 'done', 'halted by a policy (hook errors)', 'not subscribed'];
    expect(recordings.map((r) => r.phase)).to.have.members(phases);
    const open = await evaluate(recordings.map((r) => r.sts), true);
    const closed = await evaluate(recordings.map((r) => r.sts), false);
    const rows: string[] = [];
    recordings.forEach((r, i) => {
      const ts = stsHealth(r.sts, LABEL);
      const withPods = rolloutHealth(r.sts, r.pods, LABEL);
      const o = open[i] as Evaluated;
      const k = closed[i] as Evaluated;
      rows.push(`${r.phase.padEnd(50)} wait ${withPods.health.padEnd(11)} Argo CD ${String(o.lua.status).padEnd(11)} Flux ${o.flux.padEnd(10)} (Argo CD without useOpenLibs: ${k.lua.status})`);
      expect(o.lua.error, `${r.phase}: Lua error`).to.equal(undefined);
      expect(o.fluxError, `${r.phase}: CEL error`).to.equal(undefined);
      expect(ts.health, `${r.phase}: sts-pilot`).to.equal(r.expect);
      expect(withPods.health, `${r.phase}: with the pods`).to.equal(r.expect);
      expect(o.lua.status, `${r.phase}: Argo CD`).to.equal(r.expect);
      expect(o.lua.message, `${r.phase}: Argo CD message`).to.equal(ts.message);
      expect(o.flux, `${r.phase}: Flux`).to.equal(FLUX[r.expect]);
      // Without the string library only the status record is out of reach: a halt looks like a pause.
      expect(k.lua.status, `${r.phase}: Argo CD without open libraries`).to.equal(r.expect === 'Degraded' ? 'Suspended' : r.expect);
    });
    console.log(`      health per phase:\n${rows.map((l) => `        ${l}`).join('\n')}`);
  });

  it('a GitOps server-side apply that omits the partition does not take it from the controller', async () => {
    const name = 'applied';
    const manifest = (image: string): V1StatefulSet => {
      const s = statefulSet(name, { replicas: 3, hook: 'manual', image });
      return { ...s, metadata: { ...s.metadata, namespace: ns } };
    };
    // As Flux (and Argo CD with ServerSideApply=true) apply: one fixed field manager, conflicts forced.
    const apply = (image: string): Promise<V1StatefulSet> =>
      c.apps.patchNamespacedStatefulSet(
        { name, namespace: ns, body: manifest(image), fieldManager: 'gitops-tool', force: true },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
    const owners = (sts: V1StatefulSet): string[] =>
      (sts.metadata?.managedFields ?? [])
        .filter((m) => JSON.stringify(m.fieldsV1 ?? {}).includes('"f:partition"'))
        .map((m) => `${m.manager}/${m.operation}`)
        .sort();
    await apply('example/app:1');
    const settled = await waitUntil('applied settled and held', 60_000, async () => {
      const s = await readSts(c, ns, name);
      return partitionOf(s) === 3 && s.status?.readyReplicas === 3 ? s : undefined;
    });
    console.log(`      partition owners after the first apply: ${owners(settled).join(', ')}`);

    await apply('example/app:2');
    await approve(name, 'applied-2');
    await heldOn(name, 'pod applied-1');
    const stepped = await readSts(c, ns, name);
    expect(partitionOf(stepped)).to.equal(2);
    const before = owners(stepped);
    console.log(`      partition owners after a step: ${before.join(', ')}`);
    expect(before).to.include('sts-pilot/Update');
    expect(before.some((o) => o.startsWith('gitops-tool/'))).to.equal(false);

    // The sync again (self-heal, the next interval), with the same manifest.
    const reapplied = await apply('example/app:2');
    expect(partitionOf(reapplied), 'the apply reverted the partition').to.equal(2);
    expect(owners(reapplied)).to.deep.equal(before);
    const pod = (await podsOf(c, ns, name)).find((p) => p.metadata?.name === 'applied-2');
    expect(pod?.metadata?.labels?.['controller-revision-hash']).to.equal(reapplied.status?.updateRevision);
  });
});
