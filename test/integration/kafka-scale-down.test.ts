import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pino } from 'pino';
import { kafkaHook } from '../../hooks/kafka/index.ts';
import { HookNotReady, parseHookOptions } from '../../lib/hook.ts';
import { type KafkaAdmin, openKafkaAdmin } from '../../lib/kafka/admin.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { NodeAgent } from '../cluster/node-agent.ts';
import { kafkaDist } from '../kafka/kafka-dist.ts';
import { KafkaPodRuntime } from '../kafka/pod-runtime.ts';
import { movesOff, reassign } from '../kafka/reassign.ts';
import { ConsumeLoop, ProduceLoop } from '../kafka/workload.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { cluster, type Cluster, ControllerProcess, eventsFor, mergePatch, namespace, PodWatcher, podsOf, readSts, statefulSet, waitUntil } from './harness.ts';
import { loopbackEgress } from '../egress.ts';

// Issue "Scale-down moves the data first", item 4: the kafka hook guards a
// scale-down on a real KRaft cluster. 4 pods, each a real Kafka 4.4 node under
// the in-pod pilot: kafka-0..2 combined broker+controller (a static quorum of
// 3 voters), kafka-3 a broker only. A topic with replicas on broker 3 and an
// acks=all producer running; a request for 3 replicas must hold while broker 3
// hosts replicas, naming the topic, and proceed once the test has moved them
// off through the Admin API; the broker is then unregistered. A request for 2
// would remove a voter: it holds with the remove-controller command, and is
// withdrawn. Audit: the only pod deleted is kafka-3, after the hook approved it.

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const NAMES = ['kafka-0', 'kafka-1', 'kafka-2', 'kafka-3'];
const TOPIC = 'orders';
const REQUESTED = 'sts-pilot.io/requested-replicas';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;
const at = (r: Record<string, unknown>): number => new Date(String(r.time ?? 0)).getTime();

describe('kafka scale-down: the kafka hook lets a broker leave only once its data has moved', function () {
  this.timeout(20 * 60_000);

  let c: Cluster;
  let ns: string;
  let workDir: string;
  let runtime: KafkaPodRuntime | undefined;
  let agent: NodeAgent | undefined;
  let ctrl: ControllerProcess | undefined;
  let watcher: PodWatcher | undefined;
  let producer: ProduceLoop | undefined;
  // Set when the suite starts: describe() bodies run when mocha loads every file.
  let tFile = Date.now();

  /** A fresh admin connection to kafka-0 (never the leaving broker). */
  const admin = async <T>(fn: (a: KafkaAdmin) => Promise<T>): Promise<T> => {
    const a = await openKafkaAdmin({ bootstrap: [{ host: '127.0.0.1', port: (runtime as KafkaPodRuntime).node('kafka-0').brokerPort }], timeoutMs: 10_000 });
    try {
      return await fn(a);
    } finally {
      await a.close();
    }
  };
  const inSync = async (): Promise<boolean> => admin(async (a) => (await a.metadata()).topics.every((t) => t.partitions.every((p) => p.isrNodes.length === p.replicaNodes.length)));
  const livePods = async (): Promise<string[]> =>
    (await podsOf(c, ns, 'kafka'))
      .filter((p) => !p.metadata?.deletionTimestamp)
      .map((p) => p.metadata?.name ?? '')
      .sort();
  const status = async (): Promise<{ removal?: { pod: string; state: string }; message?: string }> =>
    JSON.parse((await readSts(c, ns, 'kafka')).metadata?.annotations?.['sts-pilot.io/status'] ?? '{}') as { removal?: { pod: string; state: string }; message?: string };
  /** The controller's log lines about the removal of `pod` (the runner's and the hook's, which share its fields). */
  const removalLogs = (pod: string, call: string, msg: string): Record<string, unknown>[] =>
    (ctrl as ControllerProcess).logs.filter((r) => r.removal === pod && r.call === call && r.msg === msg);

  before(async function () {
    tFile = Date.now();
    this.timeout(10 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'kafka-scale-down');
    c.agent.ignoreNamespace(ns);
    const dist = await kafkaDist();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-kafka-scale-down-'));
    runtime = await KafkaPodRuntime.create({ c, dist, workDir, names: NAMES, controllers: 3, heap: '320m', log: say });
    agent = new NodeAgent({ kc: c.kc, nodeName: `kafka-scale-down-node-${process.pid}`, namespaces: [ns], runtime, readyDelayMs: 0, terminationDelayMs: 0, workers: 4 });
    await agent.start();
    watcher = await new PodWatcher().start(c, ns);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await kafkaHook.close?.(); // the connections the direct hook calls kept
    await producer?.stop().catch(() => {});
    await ctrl?.kill('SIGTERM').catch(() => {});
    await watcher?.stop().catch(() => {});
    await c?.apps.deleteNamespacedStatefulSet({ name: 'kafka', namespace: ns }).catch(() => {});
    await agent?.stop().catch(() => {});
    await runtime?.stopAll().catch(() => {});
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    console.log(`      [figures] kafka-scale-down.test.ts wall time ${secs(Date.now() - tFile)}`);
  });

  it('holds kafka-3 while broker 3 hosts replicas (naming the topic), removes it once they are moved, unregisters it; no acknowledged record lost', async () => {
    const rt = runtime as KafkaPodRuntime;
    const t0 = Date.now();
    ctrl = await ControllerProcess.start(c, ['--namespace', ns]);
    const sts = statefulSet('kafka', { replicas: 4, hook: 'kafka', annotations: { 'kafka.sts-pilot.io/bootstrap': rt.bootstrap() } });
    // A static quorum of three needs two voters up to elect a leader: the pods start together.
    (sts.spec as { podManagementPolicy?: string }).podManagementPolicy = 'Parallel';
    await c.apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
    await waitUntil('4 Kafka pods ready', 5 * 60_000, async () => {
      const pods = await podsOf(c, ns, 'kafka');
      return pods.length === 4 && pods.every(isReady);
    });
    await waitUntil('4 brokers registered and unfenced, voters 0,1,2', 60_000, async () =>
      admin(async (a) => {
        const [cl, q] = await Promise.all([a.cluster(), a.quorum()]);
        const voters = q.topics[0]?.partitions[0]?.currentVoters.map((v) => v.replicaId).sort() ?? [];
        return cl.brokers.filter((b) => !b.isFenced).length === 4 && voters.join(',') === '0,1,2';
      }),
    );
    console.log(`      [figures] 4 pods (3 broker+controller voters, 1 broker) up in ${secs(Date.now() - t0)}`);

    // A topic whose replicas include broker 3, written by an acks=all producer.
    const { Admin } = await import('@platformatic/kafka');
    const kadmin = new Admin({ clientId: 'sts-pilot-test-admin', bootstrapBrokers: rt.bootstrap().split(',') });
    try {
      const layout = [
        [3, 0, 1],
        [0, 1, 3],
        [1, 2, 3],
        [2, 0, 1],
        [3, 1, 2],
        [0, 2, 3],
      ];
      await kadmin.createTopics({
        topics: [TOPIC],
        partitions: -1,
        replicas: -1,
        assignments: layout.map((brokers, partition) => ({ partition, brokers })),
        configs: [{ name: 'min.insync.replicas', value: '2' }],
      });
    } finally {
      await kadmin.close();
    }
    await waitUntil(`topic ${TOPIC} in sync`, 60_000, inSync);
    producer = new ProduceLoop(rt.bootstrap(), TOPIC).start(20);
    await sleep(3000);

    // 1. The request: held while broker 3 hosts replicas, the reason naming the topic and how to move them.
    const tReq = Date.now();
    await mergePatch(c, ns, 'kafka', { metadata: { annotations: { [REQUESTED]: '3' } } });
    // (Another hold first, a read timed out under load say, would be a different Event: the one about the replicas is looked for.)
    const held = await waitUntil('a HookHeld Event about kafka-3 and its replicas', 60_000, async () =>
      (await eventsFor(c, ns, 'kafka')).find((e) => e.reason === 'HookHeld' && e.message.includes('removal of pod kafka-3') && e.message.includes('still hosts')),
    );
    say(`held: ${held.message}`);
    expect(held.message).to.match(/^kafka holds the removal of pod kafka-3: broker 3 \(pod kafka-3\) still hosts 5 partition replicas: orders \(5 of 6 partitions\); it may leave only once it hosts none\. /);
    expect(held.message).to.match(/kafka-reassign-partitions .*alterPartitionReassignments/);
    const st = await status();
    expect(st.removal).to.deep.include({ pod: 'kafka-3', state: 'asked' });
    expect(st.message, 'the status annotation').to.match(/^kafka holds the removal of pod kafka-3: broker 3 \(pod kafka-3\) still hosts 5 partition replicas: orders/);
    // Held for a while, asked again with backoff, while the producer writes: nothing leaves.
    while (Date.now() < tReq + 15_000) {
      expect(await livePods()).to.deep.equal(NAMES);
      expect((await readSts(c, ns, 'kafka')).spec?.replicas, 'replicas while held').to.equal(4);
      await sleep(1000);
    }
    expect(removalLogs('kafka-3', 'removal', 'hook holds the rollout').length, 'asked again while held').to.be.at.least(3);
    const heldFor = Date.now() - tReq;

    // 2. The data moves off broker 3, as a person would do it (the Admin API's AlterPartitionReassignments).
    const moves = await admin(async (a) => movesOff(await a.metadata(), 3, [0, 1, 2]));
    say(`moving ${moves.length} partitions off broker 3: ${JSON.stringify(moves)}`);
    expect(moves.map((m) => `${m.topic}-${m.partition}`)).to.deep.equal(['orders-0', 'orders-1', 'orders-2', 'orders-4', 'orders-5']);
    const tMove = Date.now();
    await reassign('127.0.0.1', rt.node('kafka-0').brokerPort, moves);

    // 3. The removal proceeds: approved, kafka-3 goes, the request and the record are cleared.
    await waitUntil('replicas 3, the request gone and the removal record cleared', 3 * 60_000, async () => {
      const s = await readSts(c, ns, 'kafka');
      return s.spec?.replicas === 3 && !s.metadata?.annotations?.[REQUESTED] && !s.metadata?.annotations?.['sts-pilot.io/status']?.includes('"removal"');
    });
    await waitUntil('kafka-3 gone', 60_000, async () => (await livePods()).length === 3);
    const tDone = Date.now();

    // 4. Broker 3 is unregistered: DescribeCluster v2 (fenced brokers included) no longer lists it.
    const brokers = await waitUntil('broker 3 unregistered', 60_000, async () =>
      admin(async (a) => {
        const ids = (await a.cluster()).brokers.map((b) => b.brokerId).sort();
        return ids.includes(3) ? undefined : ids;
      }),
    );
    expect(brokers).to.deep.equal([0, 1, 2]);
    const unregistered = removalLogs('kafka-3', 'removed', 'unregistered the broker');
    expect(unregistered, 'the hook unregistered broker 3 itself').to.have.length.at.least(1);

    // Idempotent, as after a controller restart: asked again, the hook finds broker 3 gone and is done.
    const call = async (method: 'podRemoval' | 'removed' | 'withdrawn'): Promise<{ answer: string; logs: string[] }> => {
      const parsed = parseHookOptions(kafkaHook, { 'kafka.sts-pilot.io/bootstrap': rt.bootstrap() });
      if (!parsed.ok) throw new Error(parsed.error);
      const logs: string[] = [];
      const log = pino({ level: 'info', name: 'kafka-hook-test' }, { write: (line: string) => logs.push(line) });
      const gone: V1Pod = { metadata: { name: 'kafka-3', namespace: ns, uid: 'gone' } };
      const ctx = {
        statefulSet: await readSts(c, ns, 'kafka'),
        options: parsed.options,
        signal: AbortSignal.timeout(30_000),
        log,
        secrets: async () => ({}),
        egress: loopbackEgress,
        pilots: staticPilotReader([]),
        podReady: false,
        volumes: 'kept' as const,
        requestedReplicas: 3,
      };
      try {
        if (method === 'podRemoval') await (kafkaHook.podRemoval as NonNullable<typeof kafkaHook.podRemoval>)(gone, ctx);
        else await (kafkaHook.podRemoved as NonNullable<typeof kafkaHook.podRemoved>)(gone, method, ctx);
        return { answer: 'approved', logs };
      } catch (err) {
        if (!(err instanceof HookNotReady)) throw err;
        return { answer: `held: ${err.message}`, logs };
      }
    };
    const again = await call('removed');
    expect(again.answer, 'podRemoved again').to.equal('approved');
    expect(again.logs.join('\n')).to.match(/broker already unregistered/);
    const gone = await call('podRemoval');
    expect(gone.answer, 'podRemoval of a broker already gone').to.equal('approved');
    expect(gone.logs.join('\n')).to.match(/node 3 \(pod kafka-3\) is not registered, not a voter and hosts no replica: nothing to move, it is already gone/);

    // Audit: the only pod deleted is kafka-3, after the hook's approval of its removal.
    const hookApproved = removalLogs('kafka-3', 'removal', 'approved');
    const runnerApproved = removalLogs('kafka-3', 'removal', 'hook approved');
    // One approval, or more if its patch lost a race and the hook was asked again: the first one counts.
    expect(hookApproved, "the kafka hook's approval").to.have.length.at.least(1);
    expect(runnerApproved).to.have.length.at.least(1);
    const approvedAt = at(hookApproved[0] as Record<string, unknown>);
    expect(approvedAt, 'approved after the data moved').to.be.at.least(tMove);
    const deletions = (watcher as PodWatcher).deletions.filter((d) => d.name.startsWith('kafka-'));
    expect(deletions.map((d) => d.name), 'pods deleted').to.deep.equal(['kafka-3']);
    const unapproved = deletions.filter((d) => d.at < approvedAt);
    expect(unapproved, 'pods removed without an approval').to.deep.equal([]);
    const holdLogs = removalLogs('kafka-3', 'removal', 'hook holds the rollout');
    const holds = holdLogs.filter((r) => at(r) < tMove).map((r) => String(r.reason));
    const afterMove = [...new Set(holdLogs.filter((r) => at(r) >= tMove).map((r) => String(r.reason)))];
    say(`holds after the move: ${JSON.stringify(afterMove)}`);
    console.log(
      `      [figures] kafka-3 held ${holds.length} times over ${secs(heldFor)} before the move (reason: ${JSON.stringify(holds[0]?.slice(0, 120))}…); ` +
        `move -> approved ${secs(approvedAt - tMove)}, -> kafka-3 gone and the request done ${secs(tDone - tMove)}; ${afterMove.length} distinct hold reasons after the move; ` +
        `hook note: ${JSON.stringify(hookApproved[0]?.note)}`,
    );
    console.log(`      [figures] pods deleted: ${deletions.map((d) => d.name).join(', ')}; pods removed without an approval: ${unapproved.length}; broker 3 unregistered: ${JSON.stringify(unregistered[0]?.note)}`);
  });

  it('holds the removal of a controller-quorum voter with the remove-controller command, until the request is withdrawn', async () => {
    const tReq = Date.now();
    await mergePatch(c, ns, 'kafka', { metadata: { annotations: { [REQUESTED]: '2' } } });
    const held = await waitUntil('a HookHeld Event about kafka-2, a voter', 60_000, async () =>
      (await eventsFor(c, ns, 'kafka')).find((e) => e.reason === 'HookHeld' && e.message.includes('removal of pod kafka-2') && e.message.includes('controller voter')),
    );
    say(`held: ${held.message}`);
    expect(held.message).to.match(/^kafka holds the removal of pod kafka-2: node 2 \(pod kafka-2\) is a KRaft controller voter \(voters 0,1,2\): without it the quorum runs 2 of 3 for good\. /);
    expect(held.message).to.match(/Removing a voter is a deliberate act this hook will not do: kafka-metadata-quorum --bootstrap-controller <controller> remove-controller --controller-id 2 /);
    // The harness's quorum is static (controller.quorum.voters): the reason says so.
    expect(held.message).to.match(/this static quorum \(controller\.quorum\.voters, no directory ids\) must first become dynamic/);
    expect(held.message).to.match(/; also, broker 2 \(pod kafka-2\) still hosts 6 partition replicas: orders \(6 of 6 partitions\)/);
    expect(held.message, 'whole: not cut at the 1024 characters of an Event').to.match(/the removal goes on by itself once they are moved$/);
    await sleep(5000);
    expect(await livePods()).to.deep.equal(['kafka-0', 'kafka-1', 'kafka-2']);

    // Withdrawn (what the admission policy does on a scale-up): the hook is told, and has nothing to undo.
    await mergePatch(c, ns, 'kafka', { metadata: { annotations: { [REQUESTED]: null } } });
    await waitUntil('the withdrawal told to the hook', 60_000, async () => removalLogs('kafka-2', 'withdrawn', 'hook approved').length > 0);
    await waitUntil('the removal record cleared', 30_000, async () => (await status()).removal === undefined);
    expect(await livePods()).to.deep.equal(['kafka-0', 'kafka-1', 'kafka-2']);
    expect((await readSts(c, ns, 'kafka')).spec?.replicas).to.equal(3);
    console.log(`      [figures] voter kafka-2: held, then withdrawn, in ${secs(Date.now() - tReq)}`);

    // The verdict on the data: every acknowledged record is in the topic, read back by a new consumer group.
    const p = producer as ProduceLoop;
    await p.stop();
    const verifier = await new ConsumeLoop((runtime as KafkaPodRuntime).bootstrap(), `verify-after-${Date.now()}`).start(TOPIC);
    const missing = await verifier.missing(p.acked, 90_000);
    await verifier.stop();
    const failed = p.sends.filter((s) => !s.ok).length;
    console.log(
      `      [figures] producer (acks=all, idempotent): ${p.acked.size} records acknowledged, ${failed} sends failed after the client's retries ${JSON.stringify(Object.fromEntries(p.errors))}; ` +
        `read back ${verifier.seen.size} distinct; acknowledged but not in the topic: ${missing.length}`,
    );
    expect(missing, 'acknowledged records not in the topic').to.deep.equal([]);
    expect(p.acked.size).to.be.greaterThan(100);
    expect((watcher as PodWatcher).deletions.filter((d) => d.name.startsWith('kafka-')).map((d) => d.name), 'pods deleted over the whole file').to.deep.equal(['kafka-3']);
  });
});
