// The in-pod pilot on a real Cassandra ring: three CassandraDaemon JVMs (Maven
// Central, test/cassandra/cluster.ts) on 127.0.0.1-3, one rack each, each run
// by `sts-pilot pilot --app cassandra` for a bare pod of the test cluster
// (test/cassandra/pod-runtime.ts), its Pilot written by that pilot. What it
// proves, each figure measured:
// - the Pilot's cassandra block says what nodetool says (host id, DC, rack,
//   cluster name, version, schema, peers);
// - a peer stopped turns `shutdown` and then alive=false in a survivor's Pilot
//   (within the liveness window), and back NORMAL and alive when it returns;
// - writes at ONE while it is down: the coordinator's Pilot lists hint files
//   for its host id (a file still being written), gone once it is back;
// - SIGTERM to a pilot drains its node (nodetool drain, its pre-stop) before
//   the JVM gets its signal, and the next start replays 0 mutations; the
//   contrast that shows the check can fail: a pilot with `--pre-stop true` and a
//   stop timeout (1 s) shorter than the JVM's own shutdown kills the JVM, and its
//   next start replays mutations from its commit log.

import type { V1Pod } from '@kubernetes/client-node';
import cassandra from 'cassandra-driver';
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { statfs } from 'node:fs/promises';
import * as path from 'node:path';
import type { CassandraPeer, CassandraStatus, PilotStatus } from '../../lib/pilot/schema.ts';
import { LIVENESS_WINDOW_MS } from '../../lib/probes/cassandra-liveness.ts';
import { parseStatus, prepareCassandraNodes, type PreparedNodes } from '../cassandra/cluster.ts';
import { CassandraPodRuntime, preStopRecord } from '../cassandra/pod-runtime.ts';
import { podPilotReady } from '../cluster/pilot-processes.ts';
import { createPilot, createPod, PilotWatch, readPilotStatus } from '../pilot/harness.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { cluster, type Cluster, namespace, waitUntil } from './harness.ts';

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const PODS = ['cass-0', 'cass-1', 'cass-2'];
const ROWS = 200;

/** Mutations replayed at each start of a node after its first (0 when no commit log was replayed). */
export function replaysPerStart(systemLog: string): number[] {
  return fs
    .readFileSync(systemLog, 'utf8')
    .split(/Node configuration:/)
    .slice(2)
    .map((t) => Number(/Log replay complete, (\d+) replayed mutations/.exec(t)?.[1] ?? (/Replaying /.test(t) ? -1 : 0)));
}

describe('pilot --app cassandra: a ring of three nodes under their pilots', function () {
  this.timeout(15 * 60_000);

  let c: Cluster;
  let ns: string;
  let prepared: PreparedNodes | undefined;
  let rt: CassandraPodRuntime | undefined;
  let cql: cassandra.Client | undefined;
  let watch: PilotWatch | undefined;
  const pods = new Map<string, V1Pod>();
  const figures: string[] = [];

  const status = async (name: string): Promise<PilotStatus | undefined> => readPilotStatus(c, ns, name);
  const block = async (name: string): Promise<CassandraStatus | undefined> => (await status(name))?.application?.cassandra;
  const peerIn = async (name: string, hostId: string): Promise<CassandraPeer | undefined> => (await block(name))?.peers?.find((p) => p.hostId === hostId);

  before(async function () {
    this.timeout(10 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'pilot-cassandra');
    c.agent.ignoreNamespace(ns); // bare pods: the pilots are started here, not by a node agent
    prepared = await prepareCassandraNodes({ clusterName: 'sts-pilot-pilots' });
    rt = new CassandraPodRuntime(c, prepared, PODS, say);
    // The contrast: node 2's pilot does not drain, and kills the JVM 1 s after its SIGTERM.
    rt.extraFlags.set('cass-1', ['--pre-stop', 'true', '--stop-timeout', '1']);
    for (const name of PODS) {
      const pod = await createPod(c, ns, name);
      await createPilot(c, ns, pod);
      pods.set(name, pod);
    }
    const t0 = Date.now();
    const r = rt;
    // The first seed first: the others join its gossip.
    await r.start(pods.get('cass-0') as V1Pod);
    await waitUntil('cass-0 ready', 4 * 60_000, async () => podPilotReady(r.pilot('cass-0')));
    await Promise.all(PODS.slice(1).map((n) => r.start(pods.get(n) as V1Pod)));
    await waitUntil('every pilot ready and seeing two live peers', 5 * 60_000, async () => {
      for (const n of PODS) {
        if (!(await podPilotReady(r.pilot(n)))) return false;
        const b = await block(n);
        if (b?.peers?.length !== 2 || !b.peers.every((p) => p.alive === true && p.status === 'NORMAL')) return false;
      }
      return true;
    });
    figures.push(`ring of 3 under pilots, every Pilot NORMAL with 2 live peers: ${secs(Date.now() - t0)}`);
    watch = await PilotWatch.start(c, ns, 'cass-0');
    cql = new cassandra.Client({
      contactPoints: ['127.0.0.1'],
      localDataCenter: 'dc1',
      // Node 1 coordinates every write: the hints for a down replica are its own.
      policies: { loadBalancing: new cassandra.policies.loadBalancing.AllowListPolicy(new cassandra.policies.loadBalancing.RoundRobinPolicy(), ['127.0.0.1:9042']) },
    });
    await cql.connect();
    await cql.execute("CREATE KEYSPACE app WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}");
    await cql.execute('CREATE TABLE app.kv (k int PRIMARY KEY, v int)');
  });

  after(async function () {
    this.timeout(3 * 60_000);
    console.log(`      [figures] pilot-cassandra: ${figures.join('; ')}`);
    watch?.stop();
    await cql?.shutdown().catch(() => {});
    // SIGKILL, not a drain: nothing of the ring is kept.
    await Promise.all(rt?.pilots.map((p) => p.pilot.kill()) ?? []);
    if (prepared && !process.env.STS_PILOT_KEEP_CASSANDRA) fs.rmSync(prepared.dir, { recursive: true, force: true });
  });

  it("each Pilot's cassandra block says what nodetool says; probe time and status writes at steady state", async () => {
    const r = rt as CassandraPodRuntime;
    const n1 = r.node('cass-0');
    const ring = parseStatus(await n1.nodetool(['status']));
    const describe = await n1.nodetool(['describecluster']);
    const clusterName = /Name: (.+)/.exec(describe)?.[1]?.trim();
    const schemas = [...describe.matchAll(/([0-9a-f]{8}-[0-9a-f-]{27}): \[/g)].map((m) => m[1]);
    const version = /ReleaseVersion: (\S+)/.exec(await n1.nodetool(['version']))?.[1];
    expect(ring).to.have.length(3);
    expect(schemas).to.have.length(1);
    for (const name of PODS) {
      const s = await status(name);
      const a = s?.application;
      const b = a?.cassandra;
      const me = ring.find((x) => x.address === r.node(name).address);
      expect(me, `${name} in nodetool status`).to.not.equal(undefined);
      expect(a?.error, `${name}: probe error`).to.equal(undefined);
      expect(a?.nodeId).to.equal(me?.hostId);
      expect(a?.clusterName).to.equal(clusterName);
      expect(a?.version).to.equal(version);
      expect(b?.hostId).to.equal(me?.hostId);
      expect(b?.datacenter).to.equal(me?.dc);
      expect(b?.rack).to.equal(me?.rack);
      expect(b?.status).to.equal('NORMAL');
      expect(b?.nativeTransport).to.equal(true);
      expect(b?.schemaVersion).to.equal(schemas[0]);
      expect(b?.generation, 'gossip generation: the JVM start, in seconds').to.be.within(Math.floor(r.pilot(name)!.startedAt / 1000) - 5, Math.ceil(Date.now() / 1000));
      expect(b?.streams).to.equal(0);
      expect(b?.hints).to.deep.equal([]);
      const others = ring.filter((x) => x !== me).map((x) => ({ hostId: x.hostId, address: x.address, status: 'NORMAL', alive: true }));
      expect(b?.peers).to.deep.equal(others.sort((x, y) => x.hostId.localeCompare(y.hostId)));
    }
    // Probe time: the pilots' own histograms.
    const probe = await Promise.all(
      PODS.map(async (n) => {
        const p = r.pilot(n)!;
        return { sum: (await p.metric('sts_pilot_pilot_probe_duration_seconds_sum')) ?? 0, count: (await p.metric('sts_pilot_pilot_probe_duration_seconds_count')) ?? 0 };
      }),
    );
    figures.push(`probe call ${probe.map((p) => `${((p.sum / p.count) * 1000).toFixed(1)} ms`).join(', ')} (mean over ${probe.map((p) => p.count).join('/')} reads)`);
    // Status writes at steady state: the watch's count over at least 30 s (heartbeat 5 s in these pods: 12 a minute expected).
    const w = watch as PilotWatch;
    const from = w.events[0]?.at ?? Date.now();
    await sleep(Math.max(0, from + 30_000 - Date.now()));
    const minutes = (Date.now() - from) / 60_000;
    const writes = w.statusWrites(from + 1);
    figures.push(`status writes at steady state ${(writes / minutes).toFixed(1)}/min (${writes} in ${secs(minutes * 60_000)}, heartbeat 5 s)`);
    const changed = w.events
      .slice(-3)
      .map((e) => JSON.stringify({ ...e.status, heartbeatTime: undefined }))
      .join('\n');
    expect(writes / minutes, `writes per minute: the heartbeat only; the last three:\n${changed}`).to.be.at.most(16);
  });

  it("each Pilot reports its data directory: size and free as statfs says, load as du says, and the load grows after writes flushed", async () => {
    const r = rt as CassandraPodRuntime;
    const dirOf = (name: string): string => path.join(r.node(name).spec.dir, 'data');
    // du's apparent sizes, snapshots and backups excluded: an independent count of what the pilot sums.
    const du = (dir: string): number => Number(execFileSync('du', ['-sb', '--exclude=snapshots', '--exclude=backups', dir], { encoding: 'utf8' }).split(/\s/)[0]);
    const before = new Map<string, number>();
    for (const name of PODS) {
      const d = (await block(name))?.disk;
      const dir = dirOf(name);
      const fsNow = await statfs(dir);
      const duNow = du(dir);
      say(`${name}: disk ${JSON.stringify(d)}; statfs size ${fsNow.blocks * fsNow.bsize} free ${fsNow.bavail * fsNow.bsize}; du ${duNow}`);
      expect(d?.dataDir, `${name}: the data directory read`).to.equal(dir);
      expect(d?.size, `${name}: size`).to.equal(fsNow.blocks * fsNow.bsize);
      // The other suites on this machine write to the same disk: within 1 GiB of a statfs now (the Pilot's is up to a heartbeat old).
      expect(Math.abs((d?.free ?? 0) - fsNow.bavail * fsNow.bsize), `${name}: free`).to.be.below(1024 ** 3);
      expect(d?.load, `${name}: load (system tables at least)`).to.be.above(0);
      // Summed at most a minute ago, while the node flushes and compacts: within 10% or 2 MiB of du now.
      expect(Math.abs((d?.load ?? 0) - duNow), `${name}: load ${d?.load} vs du ${duNow}`).to.be.below(Math.max(duNow * 0.1, 2 * 1024 * 1024));
      before.set(name, d?.load ?? 0);
    }
    figures.push(`disk in the Pilot: ${PODS.map((n) => `${n} load ${before.get(n)} B`).join(', ')}, free within 1 GiB of statfs`);
    // 8 MiB at RF 3, flushed: every node's load grows by about that, seen once its pilot sums again (at most a minute).
    const client = cql as cassandra.Client;
    await client.execute('CREATE TABLE app.blob (k int PRIMARY KEY, v blob)');
    // Random bytes: LZ4 (the table's compression) leaves them as they are.
    for (let i = 0; i < 512; i += 16) await Promise.all(Array.from({ length: 16 }, (_, j) => client.execute('INSERT INTO app.blob (k, v) VALUES (?, ?)', [i + j, randomBytes(16 * 1024)], { prepare: true, consistency: cassandra.types.consistencies.all })));
    await Promise.all(PODS.map((n) => r.node(n).nodetool(['flush', 'app'])));
    const tFlushed = Date.now();
    await waitUntil('every Pilot load up by 4 MiB after 8 MiB written at RF 3 and flushed', 2 * 60_000, async () => {
      for (const n of PODS) if (((await block(n))?.disk?.load ?? 0) < (before.get(n) ?? 0) + 4 * 1024 * 1024) return false;
      return true;
    });
    const after = await Promise.all(PODS.map(async (n) => (await block(n))?.disk?.load ?? 0));
    figures.push(`8 MiB written at RF 3 and flushed: load up ${after.map((a, i) => `${((a - (before.get(PODS[i] as string) ?? 0)) / 1024 / 1024).toFixed(1)} MiB`).join(', ')}, in every Pilot within ${secs(Date.now() - tFlushed)}`);
  });

  it('a peer drained and stopped: shutdown, then alive=false in a survivor; hint files for it while it is down; back alive with its hints delivered; 0 mutations replayed', async () => {
    const r = rt as CassandraPodRuntime;
    const db = cql as cassandra.Client;
    const id3 = (await block('cass-2'))?.hostId as string;
    const n3 = r.node('cass-2');
    const pilot3 = r.pilot('cass-2')!;
    const t0 = Date.now();
    const seen: { shutdown?: number; dead?: number; hints?: number } = {};
    const stopping = r.stop(pods.get('cass-2') as V1Pod);
    let tWrites = 0;
    let wrote = 0;
    const writing = (async () => {
      // Writes at ONE from node 1 as soon as it has seen node 3 go: each is hinted for node 3.
      await waitUntil('node 3 shut down in node 1 Pilot', 60_000, async () => (await peerIn('cass-0', id3))?.status === 'shutdown');
      tWrites = Date.now();
      for (let k = 0; k < ROWS; k++) {
        await db.execute('INSERT INTO app.kv (k, v) VALUES (?, ?)', [k, k], { prepare: true, consistency: cassandra.types.consistencies.one });
        wrote++;
      }
    })();
    await waitUntil('node 3 dead, and hinted, in node 1 Pilot', LIVENESS_WINDOW_MS + 60_000, async () => {
      const b = await block('cass-0');
      const p = b?.peers?.find((x) => x.hostId === id3);
      const now = Date.now();
      if (p?.status === 'shutdown') seen.shutdown ??= now;
      if (p?.alive === false) seen.dead ??= now;
      const h = b?.hints?.find((x) => x.hostId === id3);
      if (h && h.files > 0) seen.hints ??= now;
      return seen.shutdown && seen.dead && seen.hints ? true : undefined;
    });
    await writing;
    await stopping;
    const drain = preStopRecord(pilot3);
    const signalled = pilot3.logs.find((x) => x.msg === 'signalling the application to stop');
    const log3 = fs.readFileSync(n3.log, 'utf8');
    expect(drain, 'the pilot ran its pre-stop').to.not.equal(undefined);
    expect(drain?.result, pilot3.tail()).to.equal('ok');
    expect(signalled, 'the pilot signalled the JVM').to.not.equal(undefined);
    expect(new Date(String(signalled?.time)).getTime(), 'the JVM signalled after the drain returned').to.be.at.least(drain?.at ?? Infinity);
    expect(log3, "node 3's own log: drained").to.match(/DRAINED/);
    const hinted = (await block('cass-0'))?.hints?.find((x) => x.hostId === id3);
    figures.push(
      `drain by the pilot's pre-stop ${drain?.durationMs} ms; node 3 in node 1's Pilot: shutdown +${secs((seen.shutdown ?? 0) - t0)}, alive=false +${secs((seen.dead ?? 0) - t0)} after SIGTERM (window ${secs(LIVENESS_WINDOW_MS)}); ` +
        `hint files for it listed ${secs((seen.hints ?? 0) - tWrites)} after the first of ${wrote} writes at ONE (${hinted?.files} files, ${hinted?.bytes} bytes)`,
    );
    expect(wrote).to.equal(ROWS);
    expect((seen.dead ?? 0) - t0, 'alive=false within the window plus the drain and two probe intervals').to.be.at.most(LIVENESS_WINDOW_MS + (drain?.durationMs ?? 0) + 5000);

    // Back: a new pilot for the same pod.
    const t1 = Date.now();
    await r.start(pods.get('cass-2') as V1Pod);
    const back = await waitUntil('node 3 NORMAL and alive again in node 1 Pilot', 4 * 60_000, async () => {
      const p = await peerIn('cass-0', id3);
      return p?.status === 'NORMAL' && p.alive === true ? Date.now() : undefined;
    });
    const ready = await waitUntil('cass-2 ready', 4 * 60_000, async () => ((await podPilotReady(r.pilot('cass-2'))) ? Date.now() : undefined));
    const cleared = await waitUntil('the hints for node 3 gone from node 1 Pilot', 3 * 60_000, async () =>
      (await block('cass-0'))?.hints?.some((x) => x.hostId === id3) === false ? Date.now() : undefined,
    );
    const replays = replaysPerStart(n3.log);
    figures.push(
      `node 3 restarted: ready +${secs(ready - t1)}, NORMAL and alive in node 1's Pilot +${secs(back - t1)}; its hint files gone ${secs(cleared - ready)} after it was ready; mutations replayed at its restart after the drain ${JSON.stringify(replays)}`,
    );
    expect(replays, 'mutations replayed at the restart after a drained stop').to.deep.equal([0]);
    // The hinted writes are on node 3 now: read at ALL.
    let found = 0;
    for (let k = 0; k < ROWS; k++) {
      const rs = await db.execute('SELECT v FROM app.kv WHERE k = ?', [k], { prepare: true, consistency: cassandra.types.consistencies.all });
      if (rs.rows.length === 1) found++;
    }
    expect(found).to.equal(ROWS);
  });

  it('the contrast: no drain (--pre-stop true) and a stop timeout shorter than the JVM shutdown: the JVM is killed and its next start replays mutations', async () => {
    const r = rt as CassandraPodRuntime;
    const db = cql as cassandra.Client;
    const n2 = r.node('cass-1');
    const pilot2 = r.pilot('cass-1')!;
    for (let k = ROWS; k < 2 * ROWS; k++) {
      await db.execute('INSERT INTO app.kv (k, v) VALUES (?, ?)', [k, k], { prepare: true, consistency: cassandra.types.consistencies.all });
    }
    await r.stop(pods.get('cass-1') as V1Pod);
    const exited = pilot2.logs.findLast((x) => typeof x.msg === 'string' && /^application (was killed|exited)/.test(x.msg));
    expect(exited?.killed, `the JVM was killed at the stop timeout: ${pilot2.tail()}`).to.equal(true);
    expect(preStopRecord(pilot2)?.durationMs ?? Infinity).to.be.below(1000);
    const t = Date.now();
    await r.start(pods.get('cass-1') as V1Pod);
    await waitUntil('cass-1 ready', 4 * 60_000, async () => podPilotReady(r.pilot('cass-1')));
    const replays = replaysPerStart(n2.log);
    figures.push(`without the drain (pre-stop true, JVM SIGKILLed 1 s after SIGTERM): node 2 ready again +${secs(Date.now() - t)}, mutations replayed ${JSON.stringify(replays)}`);
    expect(replays).to.have.length(1);
    expect(replays[0], 'mutations replayed after a killed, undrained JVM').to.be.greaterThan(0);
  });
});
