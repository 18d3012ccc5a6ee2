// npm run bench:kafka — what one kafka hook call costs on the wire (requests,
// bytes sent and received) and in time, on a real 3-node KRaft cluster with
// 10,000 partitions: the hook as it is (a kept connection; min.insync.replicas
// of the moving broker's topics only), its first call (a new connection) and
// later ones, beside the previous version's way replayed with the same
// lib/kafka/admin.ts primitives (a new connection per call, DescribeConfigs of
// every topic). Median of 5 rounds, the three taking turns. Not part of npm test.
//
//   STS_PILOT_BENCH_TOPICS       topics (default 100; 10000 with PARTITIONS=1: most topics not on the moving broker)
//   STS_PILOT_BENCH_PARTITIONS   partitions per topic (default 100)
//   STS_PILOT_BENCH_RF           replication factor (default 2)
//   STS_PILOT_BENCH_HEAP         heap of each node (default 512m)
//   STS_PILOT_BENCH_ROUNDS       rounds (default 5)
//   STS_PILOT_KAFKA_VERSION      as for the tests (default 4.4.0)

import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { Admin } from '@platformatic/kafka';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeConnections, connectionStats } from '../hooks/kafka/client.ts';
import { decide } from '../hooks/kafka/decide.ts';
import { kafkaHook } from '../hooks/kafka/index.ts';
import type { Options } from '../hooks/kafka/options.ts';
import { FETCH_TIMEOUT, kafkaView, MIN_ISR } from '../hooks/kafka/view.ts';
import { type HookContext, HookNotReady, parseHookOptions } from '../lib/hook.ts';
import { type KafkaUsage, openKafkaAdmin, RESOURCE_BROKER, RESOURCE_TOPIC } from '../lib/kafka/admin.ts';
import type { Logger } from '../lib/log.ts';
import { staticPilotReader } from '../lib/pilot/reader.ts';
import { loopbackEgress } from '../test/egress.ts';
import { freePortBlock } from '../test/es/pod-runtime.ts';
import { javaCommand, kafkaDist, type KraftNode, LOG4J2, writeKraftProperties } from '../test/kafka/kafka-dist.ts';

const topics = Number(process.env.STS_PILOT_BENCH_TOPICS ?? 100);
const perTopic = Number(process.env.STS_PILOT_BENCH_PARTITIONS ?? 100);
const rf = Number(process.env.STS_PILOT_BENCH_RF ?? 2);
const heap = process.env.STS_PILOT_BENCH_HEAP ?? '512m';
const rounds = Number(process.env.STS_PILOT_BENCH_ROUNDS ?? 5);
const t0 = Date.now();
const say = (s: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-bench-kafka-'));
const procs: ChildProcess[] = [];
let stopping = false;
async function stopAll(): Promise<void> {
  stopping = true;
  await closeConnections();
  const alive = procs.filter((p) => p.exitCode === null && p.signalCode === null);
  for (const p of alive) p.kill('SIGTERM');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && alive.some((p) => p.exitCode === null && p.signalCode === null)) await sleep(200);
  for (const p of alive) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  fs.rmSync(work, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void stopAll().finally(() => process.exit(130)));

/** A Kafka process under `setpriv --pdeathsig KILL` (nothing outlives the bench), its output to `log`. */
function run(argv: string[], log: string): ChildProcess {
  const out = fs.openSync(log, 'a');
  const env = { ...process.env, KAFKA_HEAP_OPTS: '', KAFKA_OPTS: '', JAVA_TOOL_OPTIONS: '', _JAVA_OPTIONS: '' };
  const p = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...argv], { stdio: ['ignore', out, out], env });
  fs.closeSync(out);
  procs.push(p);
  return p;
}

async function waitFor<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(1000);
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last: ${last})` : ''}`);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

try {
  const dist = await kafkaDist();
  const base = await freePortBlock(3);
  const nodes: KraftNode[] = [0, 1, 2].map((id) => ({ id, brokerPort: base + id, controllerPort: base + 100 + id, dataDir: path.join(work, `kafka-${id}`, 'data'), voter: true }));
  const log4j = path.join(work, 'log4j2.properties');
  fs.writeFileSync(log4j, LOG4J2);
  const clusterId = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
  const bootstrap = nodes.map((n) => `127.0.0.1:${n.brokerPort}`).join(',');
  say(`Kafka ${dist.version}: 3 combined broker+controller nodes (heap ${heap}) on ${bootstrap}; then ${topics} topics x ${perTopic} partitions x RF ${rf}`);
  await Promise.all(
    nodes.map(async (n) => {
      const props = path.join(work, `kafka-${n.id}`, 'server.properties');
      // A broker of 512 MiB with 10,000 partitions: no time-based segment rolls or retention checks meanwhile.
      writeKraftProperties(props, n, nodes, { 'num.partitions': 1, 'log.retention.check.interval.ms': 3_600_000 });
      const fmt = run(javaCommand(dist, 'kafka.tools.StorageTool', ['format', '--ignore-formatted', '-t', clusterId, '-c', props], { heap: '128m', log4j }), path.join(work, `kafka-${n.id}.log`));
      const [code] = (await once(fmt, 'exit')) as [number | null];
      if (code !== 0) throw new Error(`format of node ${n.id} exited ${code}: ${fs.readFileSync(path.join(work, `kafka-${n.id}.log`), 'utf8').slice(-2000)}`);
      const p = run(javaCommand(dist, 'kafka.Kafka', [props], { heap, log4j }), path.join(work, `kafka-${n.id}.log`));
      p.on('exit', (c, s) => {
        if (!stopping) console.error(`node ${n.id} exited (${c ?? s}); its log: ${fs.readFileSync(path.join(work, `kafka-${n.id}.log`), 'utf8').slice(-3000)}`);
      });
    }),
  );
  const bootList = nodes.map((n) => ({ host: '127.0.0.1', port: n.brokerPort }));
  const withAdmin = async <T>(f: (a: Awaited<ReturnType<typeof openKafkaAdmin>>) => Promise<T>): Promise<T> => {
    const a = await openKafkaAdmin({ bootstrap: bootList, timeoutMs: 30_000 });
    try {
      return await f(a);
    } finally {
      await a.close();
    }
  };
  await waitFor('3 registered, unfenced brokers', 600_000, () =>
    withAdmin(async (a) => ((await a.cluster()).brokers.filter((b) => !b.isFenced).length === 3 ? true : undefined)),
  );
  say('3 brokers registered and unfenced; creating topics');

  const admin = new Admin({ clientId: 'sts-pilot-bench', bootstrapBrokers: bootstrap.split(','), timeout: 300_000 });
  try {
    // About 1,000 partitions a request (10 topics of 100, or 1,000 of 1).
    const batch = Math.max(1, Math.floor(1000 / perTopic));
    for (let from = 0; from < topics; from += batch) {
      const names = Array.from({ length: Math.min(batch, topics - from) }, (_, i) => `bench-${String(from + i).padStart(Math.max(4, String(topics - 1).length), '0')}`);
      await admin.createTopics({ topics: names, partitions: perTopic, replicas: rf });
      say(`${from + names.length} topics created`);
    }
  } finally {
    await admin.close();
  }
  const partitions = topics * perTopic;
  let seen = -1;
  await waitFor(`${partitions} partitions with a leader and every replica in sync`, 1_800_000, () =>
    withAdmin(async (a) => {
      const m = await a.metadata();
      const ps = m.topics.filter((t) => t.name?.startsWith('bench-')).flatMap((t) => t.partitions);
      const ok = ps.filter((p) => p.leaderId >= 0 && p.isrNodes.length === p.replicaNodes.length).length;
      if (ok === partitions) return true;
      if (ok !== seen) say(`${ok} of ${partitions} partitions in sync`);
      seen = ok;
      return undefined;
    }),
  );
  say(`${partitions} partitions in sync`);

  // A middle step of a RollingUpdate of kafka-0..2: kafka-2 moved last, kafka-1 next.
  const sts: V1StatefulSet = { metadata: { name: 'kafka', namespace: 'bench', uid: 's1' }, spec: { replicas: 3, updateStrategy: { type: 'RollingUpdate' } } as V1StatefulSet['spec'] };
  const pod = (i: number): V1Pod => ({ metadata: { name: `kafka-${i}`, namespace: 'bench', uid: `u${i}` }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } });
  const prev = pod(2);
  const next = pod(1);
  const parsed = parseHookOptions(kafkaHook, { 'kafka.sts-pilot.io/bootstrap': bootstrap });
  if (!parsed.ok) throw new Error(parsed.error);
  const options = parsed.options as Options;
  // The approval's log line carries the call's cost (`kafka: {requests, bytesSent, bytesReceived}`): this logger keeps it.
  let logged: KafkaUsage | undefined;
  const log = {
    child: () => log,
    info: (o: { kafka?: KafkaUsage }) => {
      if (o?.kafka) logged = o.kafka;
    },
    warn: () => {},
    debug: () => {},
    error: () => {},
  } as unknown as Logger;
  const ctx = (): HookContext<Options> => ({
    statefulSet: sts,
    options,
    signal: AbortSignal.timeout(120_000),
    log,
    secrets: async () => ({}),
    egress: loopbackEgress,
    pilots: staticPilotReader([]),
    warn: () => {},
    nextReady: true,
  });
  const hookCall = async (): Promise<KafkaUsage & { ms: number }> => {
    logged = undefined;
    const t = performance.now();
    await kafkaHook.podUpdateTransition(prev, next, ctx());
    const ms = performance.now() - t;
    const u = logged as KafkaUsage | undefined;
    if (!u) throw new Error('the approval logged no usage');
    return { ...u, ms };
  };

  // The previous version (before 7e22fcd): a connection per call, then Metadata, DescribeCluster and
  // DescribeQuorum, then DescribeConfigs of every topic's min.insync.replicas and the broker's fetch timeout.
  const oldCall = async (): Promise<KafkaUsage & { ms: number }> => {
    const t = performance.now();
    const addresses = await Promise.all(options.bootstrap.map(async (b) => ({ ...b, connectTo: await loopbackEgress.address(b.host, b.port) })));
    const a = await openKafkaAdmin({ bootstrap: addresses, timeoutMs: options.timeoutSeconds * 1000, clientId: 'sts-pilot' });
    try {
      const [metadata, cluster, quorum] = await Promise.all([a.metadata(), a.cluster(), a.quorum()]);
      const anyBroker = cluster.brokers.find((b) => !b.isFenced)?.brokerId;
      const resources = metadata.topics.map((x) => x.name).filter((n): n is string => !!n).map((name) => ({ type: RESOURCE_TOPIC, name, keys: [MIN_ISR] }));
      if (anyBroker !== undefined) resources.push({ type: RESOURCE_BROKER, name: String(anyBroker), keys: [FETCH_TIMEOUT] });
      const configs = await a.configs(resources);
      const v = kafkaView({ metadata, cluster, quorum, configs }, 1);
      if (!v.ok) throw new Error(v.error);
      const d = decide(v.view, { pod: 'kafka-2', id: 2, ready: true, last: false }, { pod: 'kafka-1', id: 1, ready: true, last: false }, {
        activeController: options.activeController,
        strictMinIsr: options.strictMinIsr,
        strategy: 'RollingUpdate',
        now: Date.now(),
      });
      if (d.kind === 'hold') throw new HookNotReady(d.reason);
      const u = a.usage();
      return { ...u, ms: performance.now() - t };
    } finally {
      await a.close();
    }
  };

  // What the step reads: topics with a replica on broker 1, of all topics.
  const shape = await withAdmin(async (a) => {
    const m = await a.metadata();
    const all = m.topics.filter((x) => !!x.name);
    return { topics: all.length, on1: all.filter((x) => x.partitions.some((p) => p.replicaNodes.includes(1))).length, parts: all.reduce((s, x) => s + x.partitions.length, 0) };
  });
  say(`cluster: ${shape.topics} topics (internal ones included), ${shape.parts} partitions; ${shape.on1} topics have a replica on broker 1 (next)`);

  // One call of each first, not counted (the JVMs' code paths warm up); then the rounds, the three taking turns.
  await oldCall();
  await closeConnections();
  await hookCall();
  const before = connectionStats();
  const runs = { old: [] as (KafkaUsage & { ms: number })[], first: [] as (KafkaUsage & { ms: number })[], later: [] as (KafkaUsage & { ms: number })[] };
  for (let r = 0; r < rounds; r++) {
    await closeConnections();
    const order = r % 2 === 0 ? (['old', 'first', 'later'] as const) : (['first', 'later', 'old'] as const);
    for (const k of order) runs[k].push(k === 'old' ? await oldCall() : await hookCall());
    say(`round ${r + 1}: ${order.map((k) => `${k} ${runs[k].at(-1)?.ms.toFixed(0)} ms`).join(', ')}`);
  }
  const after = connectionStats();
  say(`hook connections over the rounds: ${after.opened - before.opened} opened, ${after.reused - before.reused} reused, ${after.dropped - before.dropped} dropped`);

  const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;
  const row = (what: string, xs: (KafkaUsage & { ms: number })[]): string => {
    const same = (f: (x: KafkaUsage) => number): string => {
      const vs = xs.map(f);
      const m = median(vs);
      return Math.min(...vs) === Math.max(...vs) ? kib(m) : `${kib(m)} (${kib(Math.min(...vs))}–${kib(Math.max(...vs))})`;
    };
    return `| ${what} | ${median(xs.map((x) => x.requests))} | ${same((x) => x.bytesSent)} | ${same((x) => x.bytesReceived)} | ${median(xs.map((x) => x.ms)).toFixed(0)} ms (${xs.map((x) => x.ms.toFixed(0)).join(', ')}) |`;
  };
  const load = os.loadavg().map((x) => x.toFixed(1)).join(', ');
  console.log(
    `\nKafka ${dist.version}, 3 combined nodes (heap ${heap}) on loopback, ${topics} topics x ${perTopic} partitions x RF ${rf} = ${partitions} partitions ` +
      `(${shape.on1} of ${shape.topics} topics with a replica on broker 1); podUpdateTransition(kafka-2, kafka-1), approved; median of ${rounds}; load average ${load}\n`,
  );
  console.log('| one call | requests | sent | received | time (median; each round) |\n|---|---|---|---|---|');
  console.log(row('before: a new connection, DescribeConfigs of every topic', runs.old));
  console.log(row('now, first call (a new connection)', runs.first));
  console.log(row('now, later calls (the kept connection)', runs.later));
} finally {
  await stopAll();
}
