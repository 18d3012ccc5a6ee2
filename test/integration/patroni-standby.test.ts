import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NodeAgent, type PodRuntime } from '../cluster/node-agent.ts';
import { type Dcs, patroniInstall, podAddresses, startDcs } from '../patroni/patroni.ts';
import { PatroniPodRuntime } from '../patroni/pod-runtime.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { cluster, type Cluster, ControllerProcess, mergePatch, namespace, PodWatcher, podsOf, readSts, rolloutFinished, statefulSet, waitUntil } from './harness.ts';

// Issue "Safe for the whole application cluster", the Patroni parts, on a real
// standby cluster: a source cluster of one member (StatefulSet `src`, hook noop: its pod
// gets a Pilot)
// and a Patroni standby cluster replicating from it (StatefulSet `sb`, 2 pods,
// hook patroni, OnDelete), each pod a real member under the in-pod pilot, one
// etcd as the DCS of both scopes. The standby leader streams from the source:
// Patroni reports it `streaming`, which the hook once took for "no running
// leader" and held on for ever. Now the rollout must go: the replica first, a
// switchover of the standby leader (Patroni allows it in a standby cluster),
// then the old standby leader; every slot of the disruption budget named by
// the standby cluster's scope and system identifier.

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const figure = (line: string): void => console.log(`      [figures] ${line}`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;
const timeOf = (l: Record<string, unknown>): number => new Date(String(l.time)).getTime();
const SB = ['sb-0', 'sb-1'];

interface Member {
  name: string;
  role: string;
  state: string;
  lag?: number | string;
}

describe('patroni standby cluster: a StatefulSet of a standby cluster rolls, its standby leader switched over first', function () {
  this.timeout(20 * 60_000);

  let c: Cluster;
  let ns: string;
  let workDir: string;
  let dcs: Dcs | undefined;
  let src: PatroniPodRuntime | undefined;
  let sb: PatroniPodRuntime | undefined;
  let agent: NodeAgent | undefined;
  let ctrl: ControllerProcess | undefined;
  let psql = '';
  const scope = `pgsb-${process.pid}`;
  const pw = { superuser: randomBytes(12).toString('hex'), replication: randomBytes(12).toString('hex'), rest: randomBytes(12).toString('hex') };
  const restAuth = `Basic ${Buffer.from(`patroni:${pw.rest}`).toString('base64')}`;

  const members = async (rt: PatroniPodRuntime, names: string[]): Promise<Member[]> => {
    for (const n of names) {
      try {
        const r = await fetch(`${rt.restUrl(n)}/cluster`, { headers: { authorization: restAuth }, signal: AbortSignal.timeout(10_000) });
        if (r.ok) return ((await r.json()) as { members: Member[] }).members;
      } catch {
        // next
      }
    }
    throw new Error('no member answers /cluster');
  };
  const sql = (rt: PatroniPodRuntime, name: string, q: string): string => execFileSync(psql, [rt.dsn(name), '-Atqc', q], { encoding: 'utf8', timeout: 60_000 }).trim();
  const standbyLeader = (ms: Member[]): string | undefined => ms.find((m) => m.role === 'standby_leader')?.name;
  /** The standby leader replicating from the source, the other member streaming from it, both pods Ready. */
  const settled = async (): Promise<Member[] | undefined> => {
    const ms = await members(sb as PatroniPodRuntime, SB);
    const pods = await podsOf(c, ns, 'sb');
    const leader = ms.find((m) => m.role === 'standby_leader');
    const ok = ms.length === 2 && leader?.state === 'streaming' && ms.some((m) => m.role === 'replica' && m.state === 'streaming') && pods.length === 2 && pods.every(isReady);
    return ok ? ms : undefined;
  };

  before(async function () {
    this.timeout(15 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'pg-standby');
    c.agent.ignoreNamespace(ns);
    const install = await patroniInstall(say);
    psql = path.join(install.pgBin, 'psql');
    figure(`${install.postgresVersion}, Patroni ${install.patroniVersion}`);
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-patroni-standby-'));
    // The members run as nobody (as root): the runtimes' folders below must be reachable.
    fs.chmodSync(workDir, 0o755);
    dcs = await startDcs(path.join(workDir, 'etcd'), say);
    for (const d of ['src', 'sb']) fs.mkdirSync(path.join(workDir, d));
    const srcAddr = await podAddresses(1);
    // The source keeps a permanent slot for the standby cluster's leader (Patroni's docs, "Standby cluster").
    src = new PatroniPodRuntime({
      c, install, dcs: dcs.hostPort, workDir: path.join(workDir, 'src'), names: ['src-0'], ...srcAddr, scope: `${scope}-src`, secrets: pw, log: say,
      bootstrapDcs: { synchronous_mode: false, slots: { standby: { type: 'physical' } } },
    });
    const sbAddr = await podAddresses(SB.length);
    sb = new PatroniPodRuntime({
      c, install, dcs: dcs.hostPort, workDir: path.join(workDir, 'sb'), names: SB, ...sbAddr, scope, secrets: pw, log: say,
      bootstrapDcs: { synchronous_mode: false, standby_cluster: { host: srcAddr.ips[0], port: srcAddr.pgPort, primary_slot_name: 'standby', create_replica_methods: ['basebackup'] } },
    });
    // One node agent for the namespace: each StatefulSet's pods backed by its own runtime.
    const of = (pod: V1Pod): PatroniPodRuntime => ((pod.metadata?.name ?? '').startsWith('src-') ? src : sb) as PatroniPodRuntime;
    const runtime: PodRuntime = { start: (p) => of(p).start(p), stop: (p) => of(p).stop(p), ready: (p) => of(p).ready(p), podIP: (p) => of(p).podIP(p) };
    agent = new NodeAgent({ kc: c.kc, nodeName: `pg-standby-node-${process.pid}`, namespaces: [ns], runtime, readyDelayMs: 0, terminationDelayMs: 0, workers: 3 });
    await agent.start();
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'patroni-rest', labels: { 'sts-pilot.io/credentials': 'true' } }, stringData: { username: 'patroni', password: pw.rest } } });
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, '--hook-retry-max', '5']);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await ctrl?.kill('SIGTERM').catch(() => {});
    for (const name of ['sb', 'src']) await c?.apps.deleteNamespacedStatefulSet({ name, namespace: ns }).catch(() => {});
    await agent?.stop().catch(() => {});
    await sb?.stopAll().catch(() => {});
    await src?.stopAll().catch(() => {});
    await dcs?.stop().catch(() => {});
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`      --- src-0 (last lines)\n${src?.tail('src-0', 30)}`);
      for (const n of SB) console.log(`      --- ${n} (last lines)\n${sb?.tail(n, 40)}`);
      for (const l of ctrl?.logs.filter((x) => typeof x.msg === 'string' && /hook|switch|budget/.test(x.msg)).slice(-30) ?? []) {
        console.log(`      [controller] ${String(l.time).slice(11, 23)} ${String(l.msg)} ${JSON.stringify({ next: l.next, reason: l.reason, note: l.note, from: l.from, to: l.to, cluster: l.cluster })}`);
      }
    }
  });

  it('OnDelete: the replica first, one switchover of the standby leader, then the old standby leader; the budget is the standby scope and its system', async () => {
    const t0 = Date.now();
    const port = (rt: PatroniPodRuntime): string => String(rt.endpoints()[0]?.rest.split(':').at(-1));
    await c.apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSet('src', { replicas: 1, hook: 'noop' }) });
    await waitUntil('the source leader', 5 * 60_000, async () => (await members(src as PatroniPodRuntime, ['src-0'])).some((m) => m.role === 'leader' && m.state === 'running'));
    sql(src as PatroniPodRuntime, 'src-0', 'CREATE TABLE marks (id int primary key); INSERT INTO marks VALUES (1)');
    await c.apps.createNamespacedStatefulSet({
      namespace: ns,
      body: statefulSet('sb', {
        replicas: 2,
        hook: 'patroni',
        onDelete: true,
        annotations: { 'patroni.sts-pilot.io/port': port(sb as PatroniPodRuntime), 'patroni.sts-pilot.io/credentials-secret': 'patroni-rest', 'patroni.sts-pilot.io/timeout': '3' },
      }),
    });
    const before = await waitUntil('the standby leader streaming from the source, the replica from it, 2 pods Ready', 10 * 60_000, settled);
    const leaderBefore = standbyLeader(before) as string;
    const replica = SB.find((n) => n !== leaderBefore) as string;
    const system = sql(src as PatroniPodRuntime, 'src-0', 'SELECT system_identifier FROM pg_control_system()');
    figure(`source + standby cluster up in ${secs(Date.now() - t0)}: ${before.map((m) => `${m.name} ${m.role} ${m.state}`).join(', ')}`);

    const watcher = await new PodWatcher().start(c, ns);
    const from = (await readSts(c, ns, 'sb')).status?.updateRevision ?? '';
    const tRoll = Date.now();
    await mergePatch(c, ns, 'sb', { spec: { template: { metadata: { annotations: { 'e2e.sts-pilot.io/rev': '2' } } } } });
    // Writes on the source meanwhile: the standby cluster must go on replicating them.
    let id = 1;
    // Who leads the standby cluster, as /cluster says, polled with the rollout.
    const leading: { at: number; leader: string | undefined }[] = [{ at: tRoll, leader: leaderBefore }];
    await waitUntil('the rollout to finish', 10 * 60_000, async () => {
      await ctrl?.keepAlive();
      sql(src as PatroniPodRuntime, 'src-0', `INSERT INTO marks VALUES (${++id})`);
      const now = await members(sb as PatroniPodRuntime, SB).then(standbyLeader, () => undefined);
      if (now !== leading.at(-1)?.leader) leading.push({ at: Date.now(), leader: now });
      return rolloutFinished(c, ns, 'sb', from);
    });
    const rolloutMs = Date.now() - tRoll;
    await watcher.stop();
    const after = await waitUntil('the standby cluster settled again', 120_000, settled);
    const leaderAfter = standbyLeader(after) as string;
    await waitUntil('the last mark on the new standby leader', 60_000, async () => sql(sb as PatroniPodRuntime, leaderAfter, 'SELECT max(id) FROM marks') === String(id));

    const logs = (ctrl as ControllerProcess).logs.filter((l) => timeOf(l) >= tRoll);
    const switching = logs.filter((l) => l.msg === 'switching over');
    const approvals = logs.filter((l) => l.msg === 'hook approved' && typeof l.next === 'string');
    const released = logs.filter((l) => l.msg === 'disruption budget slot released');
    const holds = [...new Set(logs.filter((l) => l.msg === 'hook holds the rollout').map((l) => String(l.reason).replace(/[0-9.]+ [KM]iB|\d+ B/g, 'N')))];
    const deletions = watcher.deletions.filter((d) => d.at >= tRoll);
    figure(`rollout ${secs(rolloutMs)}; deletions ${deletions.map((d) => `${d.name} +${secs(d.at - tRoll)}`).join(', ')}; switchovers ${switching.map((l) => `${String(l.from)} -> ${String(l.to)} +${secs(timeOf(l) - tRoll)}`).join(', ')}`);
    figure(`standby leader ${leaderBefore} -> ${leaderAfter}; ${id - 1} rows written on the source during the rollout, all on the new standby leader`);
    figure(`budget slots released: ${released.map((l) => `${JSON.stringify(l.cluster)}: ${String(l.why)}`).join(' | ') || 'none'}`);
    for (const h of holds.slice(0, 6)) figure(`held: ${h}`);

    expect(deletions.map((d) => d.name), 'the replica first, the standby leader last').to.deep.equal([replica, leaderBefore]);
    expect(switching.map((l) => `${String(l.from)} -> ${String(l.to)}`), 'one switchover, by the hook').to.deep.equal([`${leaderBefore} -> ${replica}`]);
    expect(leaderAfter, 'the standby leadership moved').to.equal(replica);
    figure(`standby leader as /cluster said it: ${leading.map((x) => `${x.leader ?? 'none'} +${secs(x.at - tRoll)}`).join(', ')}`);
    for (const d of deletions) {
      const led = leading.filter((x) => x.at <= d.at).at(-1)?.leader;
      expect(led, `${d.name} was not the standby leader when its pod was deleted`).to.not.equal(d.name);
    }
    for (const d of deletions) {
      const a = approvals.find((x) => x.next === d.name);
      expect(timeOf(a ?? {}), `${d.name} approved before it was deleted`).to.be.at.most(d.at);
    }
    expect(released.length, 'budget slots released once each pod rejoined').to.be.greaterThan(0);
    for (const l of released) expect(l.cluster, 'the standby scope and the source\'s system identifier').to.equal(`${scope} (system ${system})`);
  });
});
