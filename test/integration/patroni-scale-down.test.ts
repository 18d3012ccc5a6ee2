import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parseStatusAnnotation } from '../../lib/rollout/status.ts';
import { NodeAgent } from '../cluster/node-agent.ts';
import { type Dcs, patroniInstall, podAddresses, startDcs } from '../patroni/patroni.ts';
import { PatroniPodRuntime } from '../patroni/pod-runtime.ts';
import { LeaderEndpoint, Writer } from '../patroni/workload.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { cluster, type Cluster, ControllerProcess, mergePatch, namespace, PodWatcher, podsOf, readSts, statefulSet, waitUntil } from './harness.ts';

// Issue "Scale-down moves the data first", item 5, on a real cluster: the
// patroni hook's podRemoval/podRemoved under the controller. A StatefulSet `db`
// of 3 real Patroni members (started as in patroni-e2e: PostgreSQL 15, Patroni
// from PyPI, the test etcd as DCS, synchronous mode on, the in-pod pilot), the
// leader on db-2, a writer committing through the leader endpoint; then a
// request for 2 (the annotation the admission policy writes). The hook must
// switch over once, to a member that stays, approve db-2 only then, and hold
// the next removal until db-2's member has left /cluster.

const REQUESTED = 'sts-pilot.io/requested-replicas';
const NAMES = ['db-0', 'db-1', 'db-2'];
const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const figure = (line: string): void => console.log(`      [figures] ${line}`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;
const timeOf = (l: Record<string, unknown>): number => new Date(String(l.time)).getTime();

interface Member {
  name: string;
  role: string;
  state: string;
}

describe('patroni scale-down: 3 -> 2 with the leader on the leaving pod, a writer running', function () {
  this.timeout(20 * 60_000);

  let c: Cluster;
  let ns: string;
  let workDir: string;
  let dcs: Dcs | undefined;
  let runtime: PatroniPodRuntime | undefined;
  let agent: NodeAgent | undefined;
  let ctrl: ControllerProcess | undefined;
  let endpoint: LeaderEndpoint | undefined;
  let writer: Writer | undefined;
  let psql = '';
  let python = '';
  const pw = { superuser: randomBytes(12).toString('hex'), replication: randomBytes(12).toString('hex'), rest: randomBytes(12).toString('hex') };
  const restAuth = `Basic ${Buffer.from(`patroni:${pw.rest}`).toString('base64')}`;
  const rt = (): PatroniPodRuntime => runtime as PatroniPodRuntime;

  const rest = async (name: string, p: string, init: RequestInit = {}): Promise<{ status: number; text: string }> => {
    const r = await fetch(`${rt().restUrl(name)}${p}`, { ...init, headers: { authorization: restAuth, 'content-type': 'application/json' }, signal: AbortSignal.timeout(30_000) });
    return { status: r.status, text: await r.text() };
  };
  /** /cluster from the first member that answers. */
  const members = async (): Promise<Member[]> => {
    for (const n of NAMES) {
      try {
        const r = await rest(n, '/cluster');
        if (r.status === 200) return (JSON.parse(r.text) as { members: Member[] }).members;
      } catch {
        // next
      }
    }
    throw new Error('no member answers /cluster');
  };
  const leaderOf = (ms: Member[]): string | undefined => ms.find((m) => m.role === 'leader' && m.state === 'running')?.name;
  /** A leader, the others streaming, a synchronous standby, every pod Ready. */
  const settled = async (n: number, leader?: string): Promise<Member[] | undefined> => {
    const ms = await members();
    const pods = await podsOf(c, ns, 'db');
    const ok =
      ms.length === n && leaderOf(ms) !== undefined && (leader === undefined || leaderOf(ms) === leader) &&
      ms.filter((m) => m.state === 'streaming').length === n - 1 && ms.some((m) => m.role === 'sync_standby') &&
      pods.length === n && pods.every(isReady);
    return ok ? ms : undefined;
  };
  const leaderDsn = (): string => `host=127.0.0.1 port=${endpoint?.port} user=postgres password=${pw.superuser} dbname=postgres connect_timeout=3`;

  before(async function () {
    this.timeout(15 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'pg-scale');
    c.agent.ignoreNamespace(ns);
    const install = await patroniInstall(say);
    psql = path.join(install.pgBin, 'psql');
    python = path.join(install.venv, 'bin', 'python');
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-patroni-scale-'));
    dcs = await startDcs(path.join(workDir, 'etcd'), say);
    const addr = await podAddresses(NAMES.length);
    runtime = new PatroniPodRuntime({ c, install, dcs: dcs.hostPort, workDir, names: NAMES, ...addr, scope: `pgs-${process.pid}`, secrets: pw, log: say });
    agent = new NodeAgent({ kc: c.kc, nodeName: `pg-scale-node-${process.pid}`, namespaces: [ns], runtime, readyDelayMs: 0, terminationDelayMs: 0, workers: 4 });
    await agent.start();
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'patroni-rest', labels: { 'sts-pilot.io/credentials': 'true' } }, stringData: { username: 'patroni', password: pw.rest } } });
    endpoint = await new LeaderEndpoint(() => rt().endpoints()).start();
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, '--hook-retry-max', '5']);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await writer?.stop().catch(() => {});
    await ctrl?.kill('SIGTERM').catch(() => {});
    await c?.apps.deleteNamespacedStatefulSet({ name: 'db', namespace: ns }).catch(() => {});
    await agent?.stop().catch(() => {});
    await runtime?.stopAll().catch(() => {});
    await endpoint?.stop().catch(() => {});
    await dcs?.stop().catch(() => {});
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && runtime) {
      for (const n of NAMES) console.log(`      --- ${n} (last lines)\n${runtime.tail(n, 40)}`);
      for (const l of ctrl?.logs.filter((x) => x.removal !== undefined).slice(-30) ?? []) console.log(`      [controller] ${String(l.time).slice(11, 23)} ${String(l.msg)} ${JSON.stringify({ call: l.call, reason: l.reason, note: l.note })}`);
    }
  });

  it('one switchover to a member that stays, then db-2 removed after its approval; no acknowledged transaction lost; its member gone from /cluster', async () => {
    const tStart = Date.now();
    const sts = statefulSet('db', {
      replicas: 3,
      hook: 'patroni',
      annotations: {
        'patroni.sts-pilot.io/port': String(rt().endpoints()[0]?.rest.split(':').at(-1)),
        'patroni.sts-pilot.io/credentials-secret': 'patroni-rest',
        'patroni.sts-pilot.io/max-lag': '1MB',
        'patroni.sts-pilot.io/timeout': '3',
      },
    });
    await c.apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
    await waitUntil('a leader, 2 streaming replicas, a synchronous standby, 3 pods Ready', 10 * 60_000, () => settled(3));
    const tFormed = Date.now();

    // The leader on db-2, the pod that leaves: the hook must switch over first. In
    // synchronous mode Patroni switches over only to the synchronous standby, so
    // switch with synchronous mode off for a moment when db-2 is not that standby.
    const ep = endpoint as LeaderEndpoint;
    let ms = await members();
    if (leaderOf(ms) !== 'db-2') {
      const leader = leaderOf(ms) as string;
      const viaAsync = ms.find((m) => m.name === 'db-2')?.role !== 'sync_standby';
      if (viaAsync) expect((await rest(leader, '/config', { method: 'PATCH', body: JSON.stringify({ synchronous_mode: false }) })).status).to.equal(200);
      await waitUntil('the switchover to db-2 to be accepted', 60_000, async () => {
        const r = await rest(leader, '/switchover', { method: 'POST', body: JSON.stringify({ leader, candidate: 'db-2' }) });
        say(`switchover ${leader} -> db-2: ${r.status} ${r.text}`);
        return r.status === 200;
      });
      await waitUntil('db-2 to lead', 60_000, async () => leaderOf(await members()) === 'db-2');
      if (viaAsync) expect((await rest('db-2', '/config', { method: 'PATCH', body: JSON.stringify({ synchronous_mode: true }) })).status).to.equal(200);
    }
    ms = await waitUntil('db-2 leading, the others streaming, a synchronous standby', 120_000, () => settled(3, 'db-2'));
    await waitUntil('the leader endpoint to follow', 10_000, async () => ep.leader === 'db-2');
    figure(`3 members in ${secs(tFormed - tStart)}; before the scale-down: ${ms.map((m) => `${m.name} ${m.role}`).join(', ')} (${secs(Date.now() - tFormed)} to put the leader on db-2)`);

    writer = new Writer().start(python, leaderDsn(), 0.005);
    await waitUntil('the writer to commit', 30_000, async () => writer!.acked.size > 50);

    const watcher = await new PodWatcher().start(c, ns);
    const changesBefore = ep.changes.length;
    const t0 = Date.now();
    await mergePatch(c, ns, 'db', { metadata: { annotations: { [REQUESTED]: '2' } } });
    await waitUntil('replicas 2, the request and the removal record gone', 5 * 60_000, async () => {
      await ctrl?.keepAlive();
      const s = await readSts(c, ns, 'db');
      const st = parseStatusAnnotation(s.metadata?.annotations?.['sts-pilot.io/status']);
      return s.spec?.replicas === 2 && !s.metadata?.annotations?.[REQUESTED] && st.ok && !st.status.removal;
    });
    const tDone = Date.now();
    const after = await waitUntil('2 members, one leading, one streaming', 60_000, () => settled(2));
    await writer.stop();
    await watcher.stop();

    // What the controller and the hook said, from the controller's own log.
    const logs = (ctrl as ControllerProcess).logs.filter((l) => l.removal === 'db-2' && timeOf(l) >= t0);
    const approved = (call: string) => logs.find((l) => l.msg === 'hook approved' && l.call === call);
    const removalApproved = approved('removal');
    const removedApproved = approved('removed');
    const switching = logs.filter((l) => l.msg === 'switching over');
    const removedHolds = logs.filter((l) => l.msg === 'hook holds the rollout' && l.call === 'removed');
    const removalHolds = logs.filter((l) => l.msg === 'hook holds the rollout' && l.call === 'removal');
    const deletions = watcher.deletions.filter((d) => d.at >= t0);
    const changes = ep.changes.slice(changesBefore);
    const switchovers = changes.filter((x) => x.to !== undefined);
    const gaps = writer.gaps(200, t0, tDone);

    figure(`request -> done ${secs(tDone - t0)}; switchover at +${secs((switchovers[0]?.at ?? t0) - t0)}; removal approved at +${secs(timeOf(removalApproved ?? {}) - t0)}; db-2 deleted at +${secs((deletions[0]?.at ?? t0) - t0)}; its member gone (podRemoved approved) at +${secs(timeOf(removedApproved ?? {}) - t0)}`);
    figure(`leader changes: ${changes.map((x) => `${x.from ?? 'none'} -> ${x.to ?? 'none'} +${secs(x.at - t0)}`).join(', ') || 'none'}; the hook's switchovers: ${switching.map((l) => `${String(l.from)} -> ${String(l.to)}`).join(', ') || 'none'}`);
    for (const h of removalHolds.slice(0, 3)) figure(`podRemoval held: ${String(h.reason)}`);
    figure(`podRemoved held ${removedHolds.length} times, e.g.: ${String(removedHolds[0]?.reason ?? 'never')}`);
    figure(`writer: ${writer.acked.size} commits acknowledged, ${writer.errors} failed attempts; gaps >= 200 ms: ${gaps.map((g) => `${g.ms} ms at +${secs(g.from - t0)}`).join(', ') || 'none'}`);
    figure(`after: ${after.map((m) => `${m.name} ${m.role} ${m.state}`).join(', ')}`);

    // Exactly one switchover, by the hook, from db-2 to a member that stays.
    expect(switching.length, 'the hook switched over once').to.equal(1);
    expect(switching[0]).to.include({ from: 'db-2' });
    expect(String(switching[0]?.to)).to.be.oneOf(['db-0', 'db-1']);
    expect(switchovers.map((x) => x.to), 'one leader change, away from db-2').to.have.length(1);
    expect(switchovers[0]?.to).to.equal(switching[0]?.to);

    // Only db-2 deleted, after the switchover, after the hook approved its removal.
    expect(deletions.map((d) => d.name), 'pods deleted').to.deep.equal(['db-2']);
    expect(removalApproved, 'the approval of the removal of db-2').to.not.equal(undefined);
    expect(timeOf(removalApproved as Record<string, unknown>), 'approved before deleted').to.be.at.most(deletions[0]?.at as number);
    expect(switchovers[0]?.at as number, 'the switchover before the deletion').to.be.lessThan(deletions[0]?.at as number);

    // podRemoved held until the member left /cluster (its key's ttl), then approved.
    expect(removedApproved, 'podRemoved approved').to.not.equal(undefined);
    expect(removedHolds.length, 'podRemoved held while /cluster still listed db-2').to.be.greaterThan(0);
    expect(String(removedHolds[0]?.reason)).to.match(/waiting for member db-2 to leave Patroni cluster .*ttl \(20 s\)/);
    expect(after.map((m) => m.name).sort(), 'db-2 gone from /cluster').to.deep.equal(['db-0', 'db-1']);
    expect(leaderOf(after)).to.equal(switching[0]?.to);

    // Not one acknowledged commit missing on the leader.
    const acked = [...writer.acked];
    const out = await waitUntil('the leader to answer SELECT', 120_000, async () =>
      (await promisify(execFile)(psql, [leaderDsn(), '-Atqc', 'SELECT id FROM acked'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 })).stdout,
    );
    const ids = new Set(out.split('\n').filter(Boolean).map(Number));
    const missing = acked.filter((id) => !ids.has(id));
    figure(`acknowledged transactions missing on the leader: ${missing.length} (of ${acked.length})`);
    expect(missing, 'acknowledged transactions lost').to.deep.equal([]);
  });
});
