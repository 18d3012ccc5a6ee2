import { CustomObjectsApi, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../../hooks/patroni/client.ts';
import { switchoverTargets } from '../../hooks/patroni/decide.ts';
import { patroniHook } from '../../hooks/patroni/index.ts';
import { readCluster } from '../../hooks/patroni/read.ts';
import { atLeast, REPLICATION_STATE_SINCE, versionOf } from '../../hooks/patroni/rules.ts';
import { HookNotReady, type HookContext, parseHookOptions, type RolloutHook } from '../../lib/hook.ts';
import { renderStatefulSet } from '../../lib/cli/render.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { Pilot } from '../../lib/pilot/schema.ts';
import { parseStatusAnnotation } from '../../lib/rollout/status.ts';
import { NodeAgent } from '../cluster/node-agent.ts';
import { type Dcs, patroniInstall, podAddresses, startDcs } from '../patroni/patroni.ts';
import { PatroniPodRuntime } from '../patroni/pod-runtime.ts';
import { LeaderEndpoint, Writer } from '../patroni/workload.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { cluster, type Cluster, ControllerProcess, mergePatch, namespace, PodWatcher, podsOf, readSts, rolloutFinished, statefulSet, waitUntil } from './harness.ts';
import { loopbackEgress } from '../egress.ts';

// Issue 17, proven on a real cluster: the local control plane's StatefulSet `db`
// of 3 pods, each run by a dedicated node agent as a real Patroni member
// (PostgreSQL 15 from Debian, Patroni from PyPI, an etcd of its own as DCS)
// under the in-pod pilot, with a writer committing through the leader endpoint.
// First the hook's holds, called directly; then rollouts through the controller
// with OnDelete (the hook's order: replicas first, the leader last) and with
// RollingUpdate (a switchover before the leader's pod is approved).

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const figure = (line: string): void => console.log(`      [figures] ${line}`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const NAMES = ['db-0', 'db-1', 'db-2'];
const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;
const hook = patroniHook as RolloutHook;

interface Member {
  name: string;
  role: string;
  state: string;
  lag?: number | string;
  replay_lag?: number | string;
  timeline?: number;
}

describe('patroni e2e: a StatefulSet of real Patroni/PostgreSQL pods, holds and rollouts (OnDelete ordered, RollingUpdate)', function () {
  this.timeout(30 * 60_000);

  let c: Cluster;
  let ns: string;
  let workDir: string;
  let dcs: Dcs | undefined;
  let runtime: PatroniPodRuntime | undefined;
  let agent: NodeAgent | undefined;
  let ctrl: ControllerProcess | undefined;
  let endpoint: LeaderEndpoint | undefined;
  let writer: Writer | undefined;
  let python = '';
  let psql = '';
  /** Patroni before 3.0.4 reports a streaming replica as running. */
  let oldPatroni = false;
  const replicating = (m: Member): boolean => m.state === 'streaming' || (oldPatroni && m.state === 'running' && m.role !== 'leader');
  const pw = { superuser: randomBytes(12).toString('hex'), replication: randomBytes(12).toString('hex'), rest: randomBytes(12).toString('hex') };
  const restAuth = `Basic ${Buffer.from(`patroni:${pw.rest}`).toString('base64')}`;

  const rt = (): PatroniPodRuntime => runtime as PatroniPodRuntime;
  const rest = async <T>(name: string, p: string, init: RequestInit = {}): Promise<{ status: number; body: T }> => {
    const r = await fetch(`${rt().restUrl(name)}${p}`, { ...init, headers: { authorization: restAuth, 'content-type': 'application/json' }, signal: AbortSignal.timeout(30_000) });
    const text = await r.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // text
    }
    return { status: r.status, body: body as T };
  };
  /** /cluster from the first member that answers. */
  const members = async (): Promise<{ members: Member[]; pause?: boolean }> => {
    for (const n of NAMES) {
      try {
        const r = await rest<{ members: Member[]; pause?: boolean }>(n, '/cluster');
        if (r.status === 200) return r.body;
      } catch {
        // next
      }
    }
    throw new Error('no member answers /cluster');
  };
  const sql = (name: string, q: string): string => execFileSync(psql, [rt().dsn(name), '-Atqc', q], { encoding: 'utf8', timeout: 60_000 }).trim();
  const leaderDsn = (): string => `host=127.0.0.1 port=${endpoint?.port} user=postgres password=${pw.superuser} dbname=postgres connect_timeout=3`;

  before(async function () {
    this.timeout(15 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'pg-e2e');
    c.agent.ignoreNamespace(ns);
    const install = await patroniInstall(say);
    python = path.join(install.venv, 'bin', 'python');
    psql = path.join(install.pgBin, 'psql');
    figure(`${install.postgresVersion}, Patroni ${install.patroniVersion}`);
    oldPatroni = !atLeast(versionOf(install.patroniVersion) ?? [0, 0, 0], REPLICATION_STATE_SINCE);
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-patroni-'));
    dcs = await startDcs(path.join(workDir, 'etcd'), say);
    const addr = await podAddresses(NAMES.length);
    runtime = new PatroniPodRuntime({ c, install, dcs: dcs.hostPort, workDir, names: NAMES, ...addr, scope: `pg-${process.pid}`, secrets: pw, log: say });
    agent = new NodeAgent({ kc: c.kc, nodeName: `pg-e2e-node-${process.pid}`, namespaces: [ns], runtime, readyDelayMs: 0, terminationDelayMs: 0, workers: 4 });
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
    }
  });

  it('forms a 3-member cluster under the pilots, whose Pilots report role, timeline, lag, PostgreSQL version and system identifier', async () => {
    const t0 = Date.now();
    const sts = statefulSet('db', {
      replicas: 3,
      hook: 'patroni',
      onDelete: true,
      annotations: {
        'patroni.sts-pilot.io/port': String(rt().endpoints()[0]?.rest.split(':').at(-1)),
        'patroni.sts-pilot.io/credentials-secret': 'patroni-rest',
        'patroni.sts-pilot.io/max-lag': '256kB',
        'patroni.sts-pilot.io/timeout': '3',
      },
    });
    await c.apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
    await waitUntil('3 Patroni pods Ready', 10 * 60_000, async () => {
      const pods = await podsOf(c, ns, 'db');
      return pods.length === 3 && pods.every(isReady);
    });
    const view = await waitUntil('a leader and 2 streaming replicas', 120_000, async () => {
      const v = await members();
      return v.members.filter((m) => m.role === 'leader' && m.state === 'running').length === 1 && v.members.filter(replicating).length === 2 ? v : undefined;
    });
    figure(`3 pods (Patroni under the pilot) up, leader + 2 streaming, in ${secs(Date.now() - t0)}: ${view.members.map((m) => `${m.name} ${m.role}`).join(', ')}`);
    const api = c.kc.makeApiClient(CustomObjectsApi);
    const pilots = await waitUntil('every Pilot to report the member', 60_000, async () => {
      const list = (await api.listNamespacedCustomObject({ group: 'sts-pilot.io', version: 'v1alpha1', plural: 'pilots', namespace: ns })) as { items: unknown[] };
      const ps = list.items.map((x) => Pilot.parse(x));
      return ps.length === 3 && ps.every((p) => p.status?.application?.systemIdentifier && p.status.application.lag !== undefined) ? ps : undefined;
    });
    const apps = pilots.map((p) => p.status?.application);
    say(`Pilots: ${JSON.stringify(apps)}`);
    expect(new Set(apps.map((a) => a?.systemIdentifier)).size, 'one system identifier').to.equal(1);
    expect(apps.map((a) => a?.probe)).to.deep.equal(['patroni', 'patroni', 'patroni']);
    // Patroni 4 says primary, 3.x master.
    expect(apps.filter((a) => a?.role === 'primary' || a?.role === 'master').length, 'one primary').to.equal(1);
    expect(apps.filter((a) => a?.role === 'replica').length, 'two replicas').to.equal(2);
    for (const a of apps) {
      expect(a?.version, 'PostgreSQL version').to.match(/^15\.\d+$/);
      expect(a?.timeline).to.be.a('number');
      expect(a?.state).to.equal('running');
      expect(a?.nodeName).to.be.oneOf(NAMES);
    }
  });

  it('holds for a lagging replica (not for a delayed one), maintenance mode, a member that does not answer, and a switchover without credentials; orders the leader last', async () => {
    const log = createLogger({ level: 'silent' });
    const ctxOf = async (extra: Record<string, string> = {}, drop: string[] = []): Promise<HookContext<unknown>> => {
      const sts: V1StatefulSet = await readSts(c, ns, 'db');
      const annotations = { ...sts.metadata?.annotations, ...extra };
      for (const k of drop) delete annotations[k];
      const parsed = parseHookOptions(hook, annotations);
      if (!parsed.ok) throw new Error(parsed.error);
      const list = (await c.kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: 'sts-pilot.io', version: 'v1alpha1', plural: 'pilots', namespace: ns })) as { items: unknown[] };
      return {
        statefulSet: sts,
        options: parsed.options,
        signal: AbortSignal.timeout(60_000),
        log,
        nextReady: true,
        pilots: staticPilotReader(list.items.map((x) => Pilot.parse(x))),
        egress: loopbackEgress,
        secrets: async (name) => {
          const s = await c.core.readNamespacedSecret({ name, namespace: ns });
          return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
        },
      };
    };
    const pod = async (name: string): Promise<V1Pod> => (await podsOf(c, ns, 'db')).find((p) => p.metadata?.name === name) as V1Pod;
    const ask = async (prev: string | null, next: string | null, ctx?: HookContext<unknown>): Promise<string> => {
      const t = Date.now();
      try {
        await hook.podUpdateTransition(prev ? await pod(prev) : null, next ? await pod(next) : null, ctx ?? (await ctxOf()));
        say(`hook(${prev} -> ${next}) approved in ${Date.now() - t} ms`);
        return 'approved';
      } catch (err) {
        if (!(err instanceof HookNotReady)) throw err;
        say(`hook(${prev} -> ${next}) holds after ${Date.now() - t} ms: ${err.message}`);
        return err.message;
      }
    };
    // r1 the asynchronous replica (it may lag without blocking commits), r2 the synchronous standby.
    const roles = await waitUntil('a synchronous standby', 60_000, async () => {
      const ms = (await members()).members;
      return ms.some((m) => m.role === 'sync_standby') && ms.some((m) => m.role === 'replica') ? ms : undefined;
    });
    const leader = roles.find((m) => m.role === 'leader')?.name as string;
    const r1 = roles.find((m) => m.role === 'replica')?.name as string;
    const r2 = roles.find((m) => m.role === 'sync_standby')?.name as string;

    // Baseline: a replica may go while the others stream.
    expect(await ask(null, r2)).to.equal('approved');
    const order = await hook.podUpdateOrder?.(await podsOf(c, ns, 'db').then((ps) => ps.reverse()), await ctxOf());
    figure(`podUpdateOrder: ${JSON.stringify(order)}`);
    expect(order?.pods.at(-1), 'the leader last').to.equal(leader);
    expect(order?.reason).to.include(`${leader} is the leader and goes last`);

    sql(leader, 'CREATE TABLE IF NOT EXISTS filler (g int, pad text)');
    const fill = (): void => void sql(leader, "INSERT INTO filler SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g");
    /** The hook's own read of the cluster. */
    const hookView = async () => readCluster(await connect((await ctxOf()) as Parameters<typeof connect>[0]), [rt().restUrl(leader)]);

    // A delayed replica (recovery_min_apply_delay, Patroni's own recovery_conf, reloaded): it receives the WAL
    // and replays it an hour late. It holds no step (it holds the WAL), and is never the switchover target.
    const delay = async (conf: Record<string, string> | undefined, want: string): Promise<void> => {
      rt().setRecoveryConf(r1, conf);
      expect((await rest(r1, '/reload', { method: 'POST' })).status).to.be.oneOf([200, 202]);
      await waitUntil(`${r1} to apply recovery_min_apply_delay = ${want}`, 60_000, async () => sql(r1, 'SHOW recovery_min_apply_delay') === want);
    };
    await delay({ recovery_min_apply_delay: '1h' }, '1h');
    try {
      await waitUntil(`${r1} to replay more than 256 KiB late`, 90_000, async () => {
        // Replay stops at the first commit it must delay: keep writing until the hook sees it.
        fill();
        return ((await hookView()).members.find((x) => x.name === r1)?.replayLag ?? 0) > 256 * 1024;
      });
      // Writes stopped: /cluster's lag compares positions the members report a loop apart, so
      // right after a burst of writes every replica looks behind for a moment.
      const t = Date.now();
      await waitUntil('the delayed replica to hold no step', 30_000, async () => (await ask(null, r2)) === 'approved');
      const view = await hookView();
      const d = view.members.find((x) => x.name === r1);
      const receiver = sql(r1, "SELECT status || ' written ' || written_lsn || ' flushed ' || flushed_lsn FROM pg_stat_wal_receiver");
      const positions = sql(r1, "SELECT pg_last_wal_receive_lsn() || ' replayed ' || pg_last_wal_replay_lsn()");
      figure(`delayed replica ${r1}: no step held (approved ${Date.now() - t} ms after the last write); lag ${d?.lag} B, replay lag ${d?.replayLag} B; WAL receiver ${receiver || 'none'}; received ${positions}`);
      expect(d?.replayLag ?? 0, 'it still replays late').to.be.greaterThan(256 * 1024);
      const targets = switchoverTargets(view.members.filter((x) => x.name !== leader), 256 * 1024);
      figure(`switchover targets with ${r1} delayed: ${targets.eligible.map((x) => x.name).join(', ') || 'none'}; refused: ${targets.refused.join('; ')}`);
      expect(targets.eligible.map((x) => x.name), 'never the delayed replica').to.deep.equal([r2]);
      expect(targets.refused.join('; ')).to.match(new RegExp(`${r1} replays [0-9.]+ [KMG]iB behind the leader`));
    } finally {
      await delay(undefined, '0');
    }
    await waitUntil(`${r1} to replay again`, 60_000, async () => ((await hookView()).members.find((x) => x.name === r1)?.replayLag ?? Infinity) <= 256 * 1024);

    // Lag: r1's WAL receiver frozen (SIGSTOP) while the leader writes: it falls behind in the WAL it holds.
    const receiver = Number(sql(r1, 'SELECT pid FROM pg_stat_wal_receiver'));
    expect(receiver, `${r1}'s WAL receiver`).to.be.greaterThan(0);
    process.kill(receiver, 'SIGSTOP');
    try {
      const t = Date.now();
      await waitUntil(`${r1} to lag more than 256 KiB`, 90_000, async () => {
        fill();
        const m = (await members()).members.find((x) => x.name === r1);
        return typeof m?.lag === 'number' && m.lag > 256 * 1024;
      });
      say(`lag visible in /cluster after ${Date.now() - t} ms`);
      const held = await ask(null, r2);
      figure(`lag hold: ${held}`);
      expect(held).to.match(new RegExp(`member ${r1} is [0-9.]+ [KMG]iB behind the leader ${leader} \\(max-lag 256 KiB\\)`));
    } finally {
      process.kill(receiver, 'SIGCONT');
    }
    await waitUntil(`${r1} to catch up`, 60_000, async () => (await ask(null, r2)) === 'approved');

    // Maintenance mode.
    expect((await rest(leader, '/config', { method: 'PATCH', body: JSON.stringify({ pause: true }) })).status).to.equal(200);
    try {
      await waitUntil('the pause to show in /cluster', 30_000, async () => (await members()).pause === true);
      const held = await ask(null, r2);
      figure(`maintenance hold: ${held}`);
      expect(held).to.match(/is paused \(maintenance mode\)/);
      expect(await ask(r2, r1), 'also for the next step').to.match(/is paused \(maintenance mode\)/);
    } finally {
      await rest(leader, '/config', { method: 'PATCH', body: JSON.stringify({ pause: false }) });
    }
    await waitUntil('the pause to end', 30_000, async () => (await members()).pause !== true);

    // A member whose Patroni does not answer (frozen: its PostgreSQL still streams).
    const pids = rt().patroniPids(r1);
    expect(pids.length, `${r1}'s Patroni process`).to.be.greaterThan(0);
    for (const p of pids) process.kill(p, 'SIGSTOP');
    try {
      const t = Date.now();
      const held = await ask(null, r2);
      figure(`unreachable hold (timeout 3 s): ${held} (${Date.now() - t} ms)`);
      expect(held).to.match(new RegExp(`member ${r1} does not answer: Patroni's REST API at http://[0-9.]+:[0-9]+/patroni gave no answer within 3s`));
    } finally {
      for (const p of pids) process.kill(p, 'SIGCONT');
    }
    await waitUntil('every member to answer again', 60_000, async () => (await ask(null, r2)) === 'approved');

    // The switchover itself needs the REST API's credentials: without them, a hold and no switchover.
    const held = await ask(null, leader, await ctxOf({}, ['patroni.sts-pilot.io/credentials-secret']));
    figure(`switchover without credentials: ${held}`);
    expect(held).to.match(/refused the request \(401\)/);
    expect((await members()).members.find((m) => m.role === 'leader')?.name, 'no switchover happened').to.equal(leader);
  });

  /** Rolls `db` to a new template while the writer commits; returns what the test measures. */
  async function roll(rev: string, watchOrder: boolean) {
    const ep = endpoint as LeaderEndpoint;
    const before = await readSts(c, ns, 'db');
    const fromRev = before.status?.updateRevision ?? '';
    const watcher = await new PodWatcher().start(c, ns);
    const changesBefore = ep.changes.length;
    const leaderBefore = ep.leader;
    const orders = new Map<string, string>();
    const said = new Map<string, number>();
    let rendered: string[] | undefined;
    const tRoll = Date.now();
    await mergePatch(c, ns, 'db', { spec: { template: { metadata: { annotations: { 'e2e.sts-pilot.io/rev': rev } } } } });
    await waitUntil('the rollout to finish', 20 * 60_000, async () => {
      await ctrl?.keepAlive();
      const sts = await readSts(c, ns, 'db');
      const st = parseStatusAnnotation(sts.metadata?.annotations?.['sts-pilot.io/status']);
      const msg = st.ok ? st.status.message : undefined;
      if (msg?.startsWith('patroni holds')) said.set(msg.replace(/[0-9.]+ [KM]iB/g, 'N'), (said.get(msg.replace(/[0-9.]+ [KM]iB/g, 'N')) ?? 0) + 1);
      if (watchOrder && st.ok && st.status.order?.pods) {
        orders.set(st.status.order.key, `${st.status.order.pods.join(', ')}: ${st.status.order.reason}`);
        if (!rendered) {
          const pods = await podsOf(c, ns, 'db');
          const lines = renderStatefulSet({ sts, pods, hookProblem: undefined }, { labelKey: 'sts-pilot.io/hook', now: Date.now(), ages: true });
          if (lines.some((l) => l.includes('why:'))) rendered = lines;
        }
      }
      return rolloutFinished(c, ns, 'db', fromRev);
    });
    const rolloutMs = Date.now() - tRoll;
    await watcher.stop();
    const deletions = watcher.deletions.filter((d) => d.at >= tRoll);
    const changes = ep.changes.slice(changesBefore);
    return { tRoll, rolloutMs, deletions, changes, leaderBefore, orders, rendered, said };
  }

  /** Acknowledged ids the leader does not have. */
  async function lost(w: Writer): Promise<number[]> {
    // Acknowledged before the SELECT: the writer may still be running.
    const acked = [...w.acked];
    // Asynchronously: the leader endpoint is a proxy in this very process.
    const out = await waitUntil('the leader to answer SELECT', 120_000, async () =>
      (await promisify(execFile)(psql, [leaderDsn(), '-Atqc', 'SELECT id FROM acked'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 })).stdout,
    );
    const ids = new Set(out.split('\n').filter(Boolean).map(Number));
    return acked.filter((id) => !ids.has(id));
  }

  function report(what: string, r: Awaited<ReturnType<typeof roll>>, w: Writer, t1: number): void {
    const gaps = w.gaps(200, r.tRoll, t1);
    const maxGap = Math.max(0, ...gaps.map((g) => g.ms));
    figure(`${what}: rollout ${secs(r.rolloutMs)}; deletions ${r.deletions.map((d) => `${d.name} +${secs(d.at - r.tRoll)}`).join(', ')}`);
    figure(`${what}: leader changes ${r.changes.map((x) => `${x.from ?? 'none'} -> ${x.to ?? 'none'} +${secs(x.at - r.tRoll)}`).join(', ') || 'none'}`);
    for (const [m] of r.said) figure(`${what}: held, as the status annotation said: ${m}`);
    figure(`${what}: writer ${w.acked.size} commits acknowledged in all, ${w.errors} failed attempts; write gaps >= 200 ms during the rollout: ${gaps.map((g) => `${g.ms} ms at +${secs(g.from - r.tRoll)}`).join(', ') || 'none'}; longest ${maxGap} ms`);
  }

  /** The leader (as the endpoint saw it) at time t. */
  const leaderAt = (t: number, r: Awaited<ReturnType<typeof roll>>): string | undefined => {
    let l = r.leaderBefore;
    for (const ch of r.changes) if (ch.at <= t) l = ch.to;
    return l;
  };

  it('OnDelete: the hook orders replicas first and the leader last; one switchover; no acknowledged transaction lost', async () => {
    const ep = endpoint as LeaderEndpoint;
    // The leader on db-1, so that the hook's order differs from the ordinals'.
    if (ep.leader !== 'db-1') {
      const r = await rest(ep.leader as string, '/switchover', { method: 'POST', body: JSON.stringify({ leader: ep.leader, candidate: 'db-1' }) });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
    }
    await waitUntil('db-1 to lead, the others streaming, every pod Ready', 120_000, async () => {
      const v = await members();
      const pods = await podsOf(c, ns, 'db');
      return ep.leader === 'db-1' && v.members.filter(replicating).length === 2 && pods.length === 3 && pods.every(isReady);
    });
    writer = new Writer().start(python, leaderDsn(), 0.005);
    await waitUntil('the writer to commit', 30_000, async () => writer!.acked.size > 50);

    const r = await roll('2', true);
    const t1 = Date.now();
    await sleep(1000);
    report('OnDelete', r, writer, t1);
    for (const [k, o] of r.orders) figure(`OnDelete: order recorded (${k}): ${o}`);
    if (r.rendered) figure(`sts-pilot status during the rollout:\n${r.rendered.map((l) => `        ${l}`).join('\n')}`);

    const names = r.deletions.map((d) => d.name);
    expect(names.slice(0, 2).sort(), 'the replicas first').to.deep.equal(['db-0', 'db-2']);
    expect(names, 'replicas highest ordinal first, the leader last').to.deep.equal(['db-2', 'db-0', 'db-1']);
    const switchovers = r.changes.filter((x) => x.to !== undefined);
    expect(switchovers.length, 'one switchover').to.equal(1);
    const to = switchovers[0]?.to as string;
    expect(to, 'to an updated replica').to.be.oneOf(['db-0', 'db-2']);
    const leaderDeleted = r.deletions.find((d) => d.name === 'db-1')?.at as number;
    expect((switchovers[0]?.at as number) < leaderDeleted, 'the switchover before the old leader pod goes').to.equal(true);
    for (const d of r.deletions) expect(leaderAt(d.at, r), `${d.name} was not the leader when its pod was deleted`).to.not.equal(d.name);
    expect([...r.orders.values()].some((o) => o.includes('db-1 is the leader and goes last')), 'an order put db-1 last').to.equal(true);
    expect(r.rendered?.join('\n') ?? '', 'sts-pilot status shows the order').to.match(/why: first in the hook's order \(/);

    // approvals before deletions, from the controller's own log
    const approvals = (ctrl as ControllerProcess).logs.filter((x) => x.msg === 'hook approved' && typeof x.next === 'string' && new Date(String(x.time)).getTime() >= r.tRoll);
    expect(approvals.map((a) => a.next), 'approved in the same order').to.deep.equal(names);
    for (const d of r.deletions) {
      const a = approvals.find((x) => x.next === d.name);
      expect(new Date(String(a?.time)).getTime(), `${d.name} approved before it was deleted`).to.be.at.most(d.at);
    }
    const missing = await lost(writer);
    figure(`OnDelete: acknowledged transactions missing on the leader: ${missing.length}`);
    expect(missing, 'acknowledged transactions lost').to.deep.equal([]);
  });

  it("RollingUpdate: the leader's pod is approved only after a switchover; no acknowledged transaction lost", async () => {
    const ep = endpoint as LeaderEndpoint;
    // A strategy switch is a pause-only act (the gate refuses it on a StatefulSet that is not paused).
    await mergePatch(c, ns, 'db', { metadata: { annotations: { 'sts-pilot.io/paused': 'true' } } });
    await mergePatch(c, ns, 'db', { spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 3 } } } });
    await mergePatch(c, ns, 'db', { metadata: { annotations: { 'sts-pilot.io/paused': null } } });
    await waitUntil('the StatefulSet to be held at partition 3 under RollingUpdate', 60_000, async () => {
      const s = await readSts(c, ns, 'db');
      return s.spec?.updateStrategy?.type === 'RollingUpdate' && s.spec.updateStrategy.rollingUpdate?.partition === 3 && s.status?.observedGeneration === s.metadata?.generation;
    });
    figure(`RollingUpdate: the leader before the rollout is ${ep.leader}`);
    const r = await roll('3', false);
    const t1 = Date.now();
    await sleep(1000);
    report('RollingUpdate', r, writer as Writer, t1);
    expect(r.deletions.map((d) => d.name), 'the ordinals decide').to.deep.equal(['db-2', 'db-1', 'db-0']);
    for (const d of r.deletions) expect(leaderAt(d.at, r), `${d.name} was not the leader when its pod was deleted`).to.not.equal(d.name);
    const switchovers = r.changes.filter((x) => x.to !== undefined).length;
    expect(switchovers, 'one switchover, two when the leader is the highest ordinal').to.be.within(1, r.leaderBefore === 'db-2' ? 2 : 1);
    await (writer as Writer).stop();
    const missing = await lost(writer as Writer);
    figure(`RollingUpdate: acknowledged transactions missing on the leader: ${missing.length} (of ${(writer as Writer).acked.size})`);
    expect(missing, 'acknowledged transactions lost').to.deep.equal([]);
  });
});
