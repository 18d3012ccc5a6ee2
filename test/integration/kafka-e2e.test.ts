import type { V1Pod } from '@kubernetes/client-node';
import { Admin } from '@platformatic/kafka';
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { kafkaHook } from '../../hooks/kafka/index.ts';
import { HookNotReady, parseHookOptions } from '../../lib/hook.ts';
import { openKafkaAdmin } from '../../lib/kafka/admin.ts';
import { pino } from 'pino';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { parsePilot, type Pilot } from '../../lib/pilot/schema.ts';
import { NodeAgent } from '../cluster/node-agent.ts';
import { kafkaDist } from '../kafka/kafka-dist.ts';
import { KafkaPodRuntime } from '../kafka/pod-runtime.ts';
import { ConsumeLoop, ProduceLoop, spread } from '../kafka/workload.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { G } from '../pilot/harness.ts';
import { cluster, type Cluster, ControllerProcess, mergePatch, namespace, partitionOf, podsOf, readSts, rolloutFinished, statefulSet, waitUntil } from './harness.ts';
import { loopbackEgress } from '../egress.ts';

// Issue 18: a StatefulSet `kafka` of 3 pods on the local control plane, each a
// real Kafka 4.4 node (KRaft, broker and controller in one process) under the
// in-pod pilot, rolled through the kafka hook by the real controller while an
// idempotent acks=all producer writes and a consumer reads everything back.
// On the way: a topic with one replica holds the rollout with its name (with
// strict-min-isr; by default it is rolled with a warning, checked by direct
// calls after the rollout), and a broker frozen by hand mid-rollout holds it
// until it is back. The active controller restarts in its turn, wherever it is.

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const NAMES = ['kafka-0', 'kafka-1', 'kafka-2'];
const TOPIC = 'orders';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;

describe('kafka e2e: a StatefulSet of real KRaft brokers rolls through the kafka hook', function () {
  this.timeout(30 * 60_000);

  let c: Cluster;
  let ns: string;
  let workDir: string;
  let runtime: KafkaPodRuntime | undefined;
  let agent: NodeAgent | undefined;
  let ctrl: ControllerProcess | undefined;
  let admin: Admin | undefined;
  let producer: ProduceLoop | undefined;
  let consumer: ConsumeLoop | undefined;

  const leader = async (): Promise<number> => {
    const a = await openKafkaAdmin({ bootstrap: (runtime as KafkaPodRuntime).bootstrap().split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })), timeoutMs: 5000 });
    try {
      return (await a.quorum()).topics[0]?.partitions[0]?.leaderId ?? -1;
    } finally {
      await a.close();
    }
  };
  /** The JVM of a pod: the pilot's child (setpriv execs it). */
  const jvmPid = (pod: string): number => {
    const pilotPid = (runtime as KafkaPodRuntime).node(pod).pilot?.pid ?? 0;
    const out = execFileSync('pgrep', ['-P', String(pilotPid)], { encoding: 'utf8' }).trim().split('\n')[0];
    return Number(out);
  };
  const allReady = async (): Promise<V1Pod[] | undefined> => {
    const pods = await podsOf(c, ns, 'kafka');
    return pods.length === 3 && pods.every(isReady) ? pods : undefined;
  };
  /** Every partition of every topic with all its replicas in sync. */
  const fullyInSync = async (): Promise<boolean> => {
    const m = await (admin as Admin).metadata({ topics: [TOPIC] });
    return [...m.topics.values()].every((t) => t.partitions.every((p) => p.isr.length === p.replicas.length));
  };

  before(async function () {
    this.timeout(15 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'kafka-e2e');
    c.agent.ignoreNamespace(ns);
    const dist = await kafkaDist();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-kafka-e2e-'));
    // A lagging replica leaves the ISR after 10 s (default 30 s), so a frozen broker costs producers less time.
    runtime = await KafkaPodRuntime.create({ c, dist, workDir, names: NAMES, heap: '384m', settings: { 'replica.lag.time.max.ms': 10_000 }, log: say });
    const rt = runtime;
    agent = new NodeAgent({ kc: c.kc, nodeName: `kafka-e2e-node-${process.pid}`, namespaces: [ns], runtime: rt, readyDelayMs: 0, terminationDelayMs: 0, workers: 4 });
    await agent.start();
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await kafkaHook.close?.(); // the connections the direct hook calls kept
    await producer?.stop().catch(() => {});
    await consumer?.stop().catch(() => {});
    await admin?.close().catch(() => {});
    await ctrl?.kill('SIGTERM').catch(() => {});
    await c?.apps.deleteNamespacedStatefulSet({ name: 'kafka', namespace: ns }).catch(() => {});
    await agent?.stop().catch(() => {});
    await runtime?.stopAll().catch(() => {});
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('updates kafka-2, kafka-1, kafka-0 after approvals; an RF 1 topic and a frozen broker hold it; no acknowledged record lost', async () => {
    const rt = runtime as KafkaPodRuntime;
    const t0 = Date.now();
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    // strict-min-isr: the RF 1 topic below holds the first step (by default it would be rolled with a warning), so that a broker can be frozen while it holds.
    const sts = statefulSet('kafka', { replicas: 3, hook: 'kafka', annotations: { 'kafka.sts-pilot.io/bootstrap': rt.bootstrap(), 'kafka.sts-pilot.io/strict-min-isr': 'true' } });
    // A static quorum of three needs two voters up to elect a leader: the pods start together.
    (sts.spec as { podManagementPolicy?: string }).podManagementPolicy = 'Parallel';
    await c.apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
    await waitUntil('3 Kafka pods ready and the partition held at 3', 5 * 60_000, async () => {
      const s = await readSts(c, ns, 'kafka');
      return (await allReady()) && partitionOf(s) === 3 ? s : undefined;
    });
    console.log(`      [figures] 3 pods (Kafka ${(await kafkaDist()).version} under the pilot) up in ${secs(Date.now() - t0)}`);

    // The Pilots report what the probe read.
    const pilots = await waitUntil('every Pilot to report its broker, registered and unfenced', 60_000, async () => {
      const out: Pilot[] = [];
      for (const name of NAMES) {
        const raw = await c.kc.makeApiClient((await import('@kubernetes/client-node')).CustomObjectsApi).getNamespacedCustomObject({ ...G, namespace: ns, name });
        const p = parsePilot(raw);
        if (!('pilot' in p)) return undefined;
        const k = p.pilot.status?.application?.kafka;
        if (!k || k.registered !== true || k.fenced !== false || k.activeController === undefined) return undefined;
        out.push(p.pilot);
      }
      return out;
    });
    for (const [i, p] of pilots.entries()) {
      const app = p.status?.application;
      say(`Pilot ${p.metadata.name}: ${JSON.stringify(app)}`);
      expect(app?.kafka?.brokerId, `${p.metadata.name} broker id`).to.equal(i);
      expect(app?.roles).to.deep.equal(['broker', 'controller']);
      expect(app?.clusterUUID).to.equal(rt.clusterId);
    }

    admin = new Admin({ clientId: 'sts-pilot-test-admin', bootstrapBrokers: rt.bootstrap().split(',') });
    await admin.createTopics({ topics: [TOPIC], partitions: 6, replicas: 3, configs: [{ name: 'min.insync.replicas', value: '2' }] });
    await waitUntil(`topic ${TOPIC} in sync`, 60_000, fullyInSync);

    // The active controller is wherever the quorum elected it: under RollingUpdate it restarts in its turn.
    const leaderBefore = await leader();
    say(`active controller before the rollout: ${leaderBefore}`);

    // A topic whose only replica is on broker 2: its step must hold, naming it.
    await admin.createTopics({ topics: ['single'], partitions: -1, replicas: -1, assignments: [{ partition: 0, brokers: [2] }] });

    producer = new ProduceLoop(rt.bootstrap(), TOPIC).start(20);
    consumer = await new ConsumeLoop(rt.bootstrap(), `verify-${Date.now()}`).start(TOPIC);
    await sleep(3000);

    const before = await readSts(c, ns, 'kafka');
    const fromRev = before.status?.updateRevision ?? '';
    const uids = new Map((await podsOf(c, ns, 'kafka')).map((p) => [p.metadata?.name ?? '', p.metadata?.uid ?? '']));
    const deletedAt = new Map<string, number>();
    const readyAt = new Map<string, number>();
    // The quorum leader, sampled every 2 s during the rollout: how many elections it cost.
    const leaders: number[] = [leaderBefore];
    let leaderAt = 0;
    const track = async (): Promise<void> => {
      if (Date.now() - leaderAt >= 2000) {
        leaderAt = Date.now();
        const l = await leader().catch(() => -1);
        if (l >= 0 && l !== leaders.at(-1)) leaders.push(l);
      }
      for (const p of await podsOf(c, ns, 'kafka')) {
        const name = p.metadata?.name ?? '';
        if ((p.metadata?.deletionTimestamp || p.metadata?.uid !== uids.get(name)) && !deletedAt.has(name)) deletedAt.set(name, Date.now());
        if (p.metadata?.uid !== uids.get(name) && isReady(p) && !readyAt.has(name)) readyAt.set(name, Date.now());
      }
      await ctrl?.keepAlive();
    };
    const holdsFor = (pod: string, since: number): string[] =>
      (ctrl as ControllerProcess).logs
        .filter((r) => r.msg === 'hook holds the rollout' && r.next === pod && new Date(String(r.time)).getTime() >= since)
        .map((r) => String(r.reason));

    const tRoll = Date.now();
    await mergePatch(c, ns, 'kafka', { spec: { template: { metadata: { annotations: { 'e2e.sts-pilot.io/rev': '2' } } } } });

    // 1. held on the RF 1 topic, with its name
    const rf1 = await waitUntil('the hook to hold kafka-2 on topic single', 60_000, async () => holdsFor('kafka-2', tRoll).find((r) => r.includes('single-0')));
    say(`hold: ${rf1}`);
    expect(rf1).to.match(/restarting broker 2 \(pod kafka-2\) would take 1 partition below min\.insync\.replicas \(1 partition would go offline\): single-0 \(replicas 2, in sync 2, min\.insync\.replicas 1: its only replica\)/);
    expect(partitionOf(await readSts(c, ns, 'kafka')), 'partition while held').to.equal(3);

    // 2. while it holds, kafka-1's broker is frozen by hand (SIGSTOP); then the RF 1 topic goes away:
    // the step must still hold until kafka-1 is back
    const tFreeze = Date.now();
    const pid1 = jvmPid('kafka-1');
    say(`freezing kafka-1's JVM (pid ${pid1})`);
    process.kill(pid1, 'SIGSTOP');
    let tSingleGone = 0;
    try {
      await sleep(12_000); // past replica.lag.time.max.ms: kafka-1 leaves the ISRs
      await admin.deleteTopics({ topics: ['single'] });
      tSingleGone = Date.now();
      while (Date.now() < tFreeze + 40_000) {
        await track();
        expect(partitionOf(await readSts(c, ns, 'kafka')), 'partition while kafka-1 is frozen').to.equal(3);
        expect(deletedAt.size, 'pods deleted while kafka-1 is frozen').to.equal(0);
        await sleep(1000);
      }
    } finally {
      process.kill(pid1, 'SIGCONT');
    }
    const tThaw = Date.now();
    const frozenHolds = [...new Set(holdsFor('kafka-2', tSingleGone).map((r) => r.replace(/\d+ ms/g, 'N ms')))];
    say(`hook holds while kafka-1 was frozen: ${JSON.stringify(frozenHolds)}`);

    // 3. the rest
    await waitUntil('the rollout to finish', 10 * 60_000, async () => {
      await track();
      return rolloutFinished(c, ns, 'kafka', fromRev);
    });
    const rolloutMs = Date.now() - tRoll;
    await producer.stop();
    await consumer.stop();
    // The verdict: a consumer of a new group reads the whole topic once the rollout is over.
    const verifier = await new ConsumeLoop(rt.bootstrap(), `verify-after-${Date.now()}`).start(TOPIC);
    const missing = await verifier.missing(producer.acked, 90_000);
    await verifier.stop();

    const logs = ctrl.logs;
    const at = (r: Record<string, unknown>): number => new Date(String(r.time ?? 0)).getTime();
    const approvals = logs.filter((r) => r.msg === 'hook approved' && typeof r.next === 'string').map((r) => ({ pod: r.next as string, at: at(r) }));
    expect(approvals.map((a) => a.pod), 'approvals in order').to.deep.equal(['kafka-2', 'kafka-1', 'kafka-0']);
    for (const a of approvals) {
      expect(deletedAt.get(a.pod), `${a.pod} replaced`).to.be.a('number');
      expect(a.at, `${a.pod}: approval before its update`).to.be.at.most(deletedAt.get(a.pod) as number);
    }
    expect(approvals[0]?.at, 'kafka-2 approved only after kafka-1 was thawed').to.be.at.least(tThaw);
    // While frozen the controller sees kafka-1 unready, or the hook sees it out of sync: held either way, as the partition shows.
    const controllerSaid = [...new Set(logs.filter((r) => at(r) >= tSingleGone && at(r) <= tThaw).map((r) => String(r.msg)))];
    say(`controller while kafka-1 was frozen: ${JSON.stringify(controllerSaid)}`);
    console.log(`      [figures] held while kafka-1 was frozen (${secs(tThaw - tFreeze)}): hook reasons ${JSON.stringify(frozenHolds)}; kafka-2 approved ${secs((approvals[0]?.at ?? 0) - tThaw)} after the thaw`);

    const failed = producer.sends.filter((s) => !s.ok).length;
    console.log(
      `      [figures] producer (acks=all, idempotent): ${producer.acked.size} records acknowledged, ${failed} sends failed after the client's retries ${JSON.stringify(Object.fromEntries(producer.errors))}; consumer during the rollout read ${consumer.seen.size} distinct (${consumer.errors} errors); consumer after it read ${verifier.records} records, ${verifier.seen.size} distinct; acknowledged but not in the topic: ${missing.length}`,
    );
    expect(missing, 'acknowledged records not in the topic').to.deep.equal([]);
    expect(producer.acked.size).to.be.greaterThan(100);

    const base = spread(producer.latencies(tRoll - 3000, tRoll));
    console.log(`      [figures] produce latency before the rollout: ${base}`);
    for (const a of approvals) {
      const del = deletedAt.get(a.pod) as number;
      const rdy = readyAt.get(a.pod) ?? del;
      const first = logs.find((r) => r.next === a.pod && r.hook === 'kafka' && at(r) >= tRoll);
      const holds = logs.filter((r) => r.next === a.pod && r.msg === 'hook holds the rollout').length;
      console.log(
        `      [figures] ${a.pod}: step (first hook call naming it -> approved) ${secs(a.at - (first ? at(first) : a.at))}, ${holds} holds; pod deleted -> Ready ${secs(rdy - del)}; produce latency while it restarted: ${spread(producer.latencies(del, rdy + 5000))}`,
      );
    }
    console.log(`      [figures] rollout (template change -> finished) ${secs(rolloutMs)}, of which held on topic single and frozen kafka-1 ${secs(tThaw - tRoll)}`);
    const inTurn = logs.filter((r) => r.msg === 'approved' && String(r.note ?? '').includes('the active controller')).map((r) => String(r.note));
    console.log(`      [figures] quorum leaders seen during the rollout (sampled every 2 s): ${leaders.join(' -> ')} (${leaders.length - 1} elections); active controller approvals: ${JSON.stringify(inTurn)}`);
    expect(await fullyInSync(), 'every partition back in sync').to.equal(true);
  });

  it('direct calls: the active controller in its turn (or last), an RF 1 topic rolled with a warning (or held), the budget and the OnDelete order; a step that would leave the quorum without a caught-up majority holds', async () => {
    const rt = runtime as KafkaPodRuntime;
    const sts = await readSts(c, ns, 'kafka');
    const pods = new Map((await podsOf(c, ns, 'kafka')).map((p) => [p.metadata?.name ?? '', p]));
    const options = (annotations: Record<string, string> = {}) => {
      const parsed = parseHookOptions(kafkaHook, { 'kafka.sts-pilot.io/bootstrap': rt.bootstrap(), ...annotations });
      if (!parsed.ok) throw new Error(parsed.error);
      return parsed.options;
    };
    const warned: string[] = [];
    const base = (annotations: Record<string, string> = {}, s = sts) => ({
      statefulSet: s,
      options: options(annotations),
      signal: AbortSignal.timeout(20_000),
      log: pino({ level: 'warn' }),
      // The hook's warnings (a Warning Event HookWarning under the controller): kept here to be read.
      warn: (m: string) => void warned.push(m),
      secrets: async () => ({}),
      egress: loopbackEgress,
      pilots: staticPilotReader([]),
    });
    const call = async (next: string, annotations: Record<string, string> = {}): Promise<string> => {
      try {
        await kafkaHook.podUpdateTransition(null, pods.get(next) ?? null, { ...base(annotations), nextReady: true });
        return 'approved';
      } catch (err) {
        if (!(err instanceof HookNotReady)) throw err;
        return `held: ${err.message}`;
      }
    };
    await waitUntil(`topic ${TOPIC} in sync`, 60_000, fullyInSync);
    const l = await leader();
    say(`active controller after the rollout: ${l}`);
    const other = l === 1 ? 2 : 1;
    expect(await call(`kafka-${l}`), 'the active controller, in its turn').to.equal('approved');
    expect(await call(`kafka-${l}`, { 'kafka.sts-pilot.io/active-controller': 'any' }), '"any", the former name of in-turn').to.equal('approved');
    const last = await call(`kafka-${l}`, { 'kafka.sts-pilot.io/active-controller': 'last' });
    if (l === 0) expect(last, 'kafka-0 is the last pod: its turn under "last" too').to.equal('approved');
    else expect(last).to.match(new RegExp(`^held: broker ${l} \\(pod kafka-${l}\\) is the active controller and kafka\\.sts-pilot\\.io/active-controller is "last"`));

    // The budget: the application cluster is Kafka's cluster.id; a pod is back once its broker is in every ISR.
    const rctx = base();
    expect(await kafkaHook.applicationCluster?.(rctx), 'applicationCluster').to.equal(rt.clusterId);
    await kafkaHook.podRejoined?.(pods.get('kafka-0') as V1Pod, rctx);
    // OnDelete: the hook's order, the active controller after the others.
    const order = await kafkaHook.podUpdateOrder?.([...pods.values()], base({}, { ...sts, spec: { ...sts.spec, updateStrategy: { type: 'OnDelete' } } } as typeof sts));
    say(`podUpdateOrder: ${JSON.stringify(order)}`);
    expect(order?.pods.at(-1), 'the active controller last').to.equal(`kafka-${l}`);
    expect(order?.reason).to.match(/^controllers first \(kafka-\d, kafka-\d\), then the active controller/);

    // A topic with one replica, on a broker that is not the leader: rolled with a warning naming it, held with strict-min-isr.
    await (admin as Admin).createTopics({ topics: ['lonely'], partitions: -1, replicas: -1, assignments: [{ partition: 0, brokers: [other] }] });
    try {
      await waitUntil('topic lonely has a leader', 30_000, async () => {
        const m = await (admin as Admin).metadata({ topics: ['lonely'] });
        return m.topics.get('lonely')?.partitions[0]?.leader === other;
      });
      warned.length = 0;
      expect(await call(`kafka-${other}`), 'RF 1 topic, by default').to.equal('approved');
      say(`warned: ${JSON.stringify(warned)}`);
      expect(warned.join('\n')).to.match(new RegExp(`^restarting broker ${other} \\(pod kafka-${other}\\) takes topics .*: lonely \\(replication factor 1, min\\.insync\\.replicas 1, 1 partition on broker ${other}: offline while it restarts\\); rolled anyway, as Strimzi does`));
      expect(await call(`kafka-${other}`, { 'kafka.sts-pilot.io/strict-min-isr': 'true' })).to.match(/^held: restarting broker \d \(pod kafka-\d\) would take 1 partition below min\.insync\.replicas \(1 partition would go offline\): lonely-0 /);
    } finally {
      await (admin as Admin).deleteTopics({ topics: ['lonely'] });
    }

    // A voter frozen past the quorum fetch timeout: restarting another voter would leave the leader alone.
    const pid = jvmPid(`kafka-${other}`);
    process.kill(pid, 'SIGSTOP');
    let answer: string;
    try {
      await sleep(4000);
      answer = await call('kafka-0');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    say(`with kafka-${other} frozen: ${answer}`);
    expect(answer).to.match(/^held: (restarting controller 0 \(pod kafka-0\) would leave 1 caught-up voters \(\d\) of 3, fewer than a majority of 2|\d+ partitions? under-replicated)/);
    // thawed, it catches up and the same step is approved
    await waitUntil('kafka-0 approved once the frozen voter caught up', 60_000, async () => (await call('kafka-0')) === 'approved');
  });
});
