import { Admin } from '@platformatic/kafka';
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NodeAgent } from '../cluster/node-agent.ts';
import { AwayWatcher } from '../kafka/away-watcher.ts';
import { kafkaDist } from '../kafka/kafka-dist.ts';
import { KafkaPodRuntime } from '../kafka/pod-runtime.ts';
import { ConsumeLoop, ProduceLoop } from '../kafka/workload.ts';
import { installPilotCrd } from '../pilot/helpers.ts';
import { cluster, type Cluster, ControllerProcess, mergePatch, namespace, partitionOf, podsOf, readSts, rolloutFinished, statefulSet, waitUntil } from './harness.ts';

// Issue 22: one KRaft Kafka cluster spread over two StatefulSets (two zones,
// kafka-a and kafka-b, two pods each), each subscribed on its own, both
// templates changed in the same second. The StatefulSets share one disruption
// budget (the cluster is its cluster.id), so an independent watcher of the pods
// and of Kafka itself must never see two brokers away at once. Three of the
// four nodes are controller voters (kafka-a-0, kafka-a-1, kafka-b-0, combined
// broker+controller), kafka-b-1 is a broker only: a quorum of three, as Kafka
// advises (an odd count; four voters tolerate one loss, like three, and need
// one more node caught up for every step). An RF 2 / min.insync.replicas 2
// topic on brokers 1 and 3 does not block the rollout and is named in a
// Warning Event of each StatefulSet. An idempotent acks=all producer writes
// throughout: no acknowledged record may be lost.

const verbose = process.env.STS_PILOT_TEST_VERBOSE === '1';
const say = (line: string): void => {
  if (verbose) console.log(`      | ${line}`);
};
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const STS = ['kafka-a', 'kafka-b'];
const NAMES = ['kafka-a-0', 'kafka-a-1', 'kafka-b-0', 'kafka-b-1'];
/** node.id = position in NAMES (KafkaPodRuntime): kafka-b's node-id-offset is 2. */
const IDS = new Map(NAMES.map((n, i) => [n, i]));
const POD_OF = new Map(NAMES.map((n, i) => [i, n]));
const TOPIC = 'orders';
const PAIRS = 'pairs';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('kafka zones: one KRaft cluster in two StatefulSets rolls one broker at a time', function () {
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
  let watcher: AwayWatcher | undefined;

  before(async function () {
    this.timeout(15 * 60_000);
    c = await cluster();
    await installPilotCrd(c);
    ns = await namespace(c, 'kafka-zones');
    c.agent.ignoreNamespace(ns);
    const dist = await kafkaDist();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sts-pilot-kafka-zones-'));
    runtime = await KafkaPodRuntime.create({ c, dist, workDir, names: NAMES, controllers: 3, heap: '320m', log: say });
    agent = new NodeAgent({ kc: c.kc, nodeName: `kafka-zones-node-${process.pid}`, namespaces: [ns], runtime, readyDelayMs: 0, terminationDelayMs: 0, workers: 4 });
    await agent.start();
  });

  after(async function () {
    this.timeout(5 * 60_000);
    await watcher?.stop().catch(() => {});
    await producer?.stop().catch(() => {});
    await consumer?.stop().catch(() => {});
    await admin?.close().catch(() => {});
    await ctrl?.kill('SIGTERM').catch(() => {});
    for (const name of STS) await c?.apps.deleteNamespacedStatefulSet({ name, namespace: ns }).catch(() => {});
    await agent?.stop().catch(() => {});
    await runtime?.stopAll().catch(() => {});
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('both templates changed at once: never two brokers away, the RF 2 topic warned about, the active controller in its turn, no acknowledged record lost', async () => {
    const rt = runtime as KafkaPodRuntime;
    const t0 = Date.now();
    // One replica, no Lease: leader election is not what this test is about, and on a loaded machine a 10 s
    // renew deadline can pass (the controller then exits, as it must). The budget's Lease is still used.
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, '--no-leader-elect']);
    for (const [i, name] of STS.entries()) {
      const sts = statefulSet(name, { replicas: 2, hook: 'kafka', annotations: { 'kafka.sts-pilot.io/bootstrap': rt.bootstrap(), 'kafka.sts-pilot.io/node-id-offset': String(i * 2) } });
      // A static quorum needs two of its three voters up to elect a leader: all pods start together.
      (sts.spec as { podManagementPolicy?: string }).podManagementPolicy = 'Parallel';
      await c.apps.createNamespacedStatefulSet({ namespace: ns, body: sts });
    }
    const isReady = (p: { status?: { conditions?: { type: string; status: string }[] } }): boolean => p.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;
    await waitUntil('4 Kafka pods ready and both partitions held at 2', 6 * 60_000, async () => {
      for (const name of STS) {
        const pods = await podsOf(c, ns, name);
        if (pods.length !== 2 || !pods.every(isReady) || partitionOf(await readSts(c, ns, name)) !== 2) return undefined;
      }
      return true;
    });
    const upMs = Date.now() - t0;

    admin = new Admin({ clientId: 'sts-pilot-test-admin', bootstrapBrokers: rt.bootstrap().split(',') });
    await admin.createTopics({ topics: [TOPIC], partitions: 6, replicas: 3, configs: [{ name: 'min.insync.replicas', value: '2' }] });
    // RF 2 with min.insync.replicas 2: no restart of broker 1 or 3 can keep it writable (Strimzi rolls it; so does the hook, with a Warning).
    await admin.createTopics({ topics: [PAIRS], partitions: -1, replicas: -1, assignments: [{ partition: 0, brokers: [1, 3] }], configs: [{ name: 'min.insync.replicas', value: '2' }] });
    const inSync = async (): Promise<boolean> => {
      const m = await (admin as Admin).metadata({ topics: [TOPIC, PAIRS] });
      return [...m.topics.values()].every((t) => t.partitions.every((p) => p.isr.length === p.replicas.length));
    };
    await waitUntil('topics in sync', 60_000, inSync);

    producer = new ProduceLoop(rt.bootstrap(), TOPIC).start(20);
    consumer = await new ConsumeLoop(rt.bootstrap(), `during-${Date.now()}`).start(TOPIC);
    const bootstrap = rt.bootstrap().split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) }));
    watcher = new AwayWatcher({ c, ns, statefulSets: STS, ids: IDS, bootstrap, intervalMs: 1000 }).start();
    await waitUntil('the watcher to see every broker in place', 60_000, async () => {
      const s = watcher?.samples.at(-1);
      return s && s.leader >= 0 && s.away.size === 0;
    });
    const leaderBefore = watcher.samples.at(-1)?.leader ?? -1;
    say(`active controller before the rollout: ${leaderBefore} (${POD_OF.get(leaderBefore)})`);

    const from = new Map<string, string>();
    for (const name of STS) from.set(name, (await readSts(c, ns, name)).status?.updateRevision ?? '');
    const deletedAt = new Map<string, number>();
    const uids = new Map((await Promise.all(STS.map((s) => podsOf(c, ns, s)))).flat().map((p) => [p.metadata?.name ?? '', p.metadata?.uid ?? '']));
    const track = async (): Promise<void> => {
      for (const p of (await Promise.all(STS.map((s) => podsOf(c, ns, s)))).flat()) {
        const name = p.metadata?.name ?? '';
        if ((p.metadata?.deletionTimestamp || p.metadata?.uid !== uids.get(name)) && !deletedAt.has(name)) deletedAt.set(name, Date.now());
      }
      await ctrl?.keepAlive();
    };

    // Both templates in the same second.
    const tRoll = Date.now();
    const patched = await Promise.all(
      STS.map(async (name) => {
        await mergePatch(c, ns, name, { spec: { template: { metadata: { annotations: { 'zones.sts-pilot.io/rev': '2' } } } } });
        return Date.now();
      }),
    );
    const patchSpreadMs = Math.max(...patched) - tRoll;
    await waitUntil('both rollouts to finish', 12 * 60_000, async () => {
      await track();
      for (const name of STS) if (!(await rolloutFinished(c, ns, name, from.get(name) ?? ''))) return undefined;
      return true;
    });
    const rolloutMs = Date.now() - tRoll;
    await sleep(3000); // the watcher sees the last broker back in every ISR
    await waitUntil('every partition back in sync', 60_000, inSync);
    await watcher.stop();
    await producer.stop();
    await consumer.stop();
    const verifier = await new ConsumeLoop(rt.bootstrap(), `verify-after-${Date.now()}`).start(TOPIC);
    const missing = await verifier.missing(producer.acked, 90_000);
    await verifier.stop();

    // --- what the witness saw
    const worst = watcher.worst;
    const most = worst?.away.size ?? 0;
    const spells = watcher.spells(POD_OF);
    say(`away spells: ${spells.join('; ')}`);
    if (most > 1) say(`two or more away at ${new Date(worst?.at ?? 0).toISOString()}: ${JSON.stringify([...(worst?.away ?? [])])}`);
    const leaders = watcher.samples.map((s) => s.leader).filter((l, i, a) => l >= 0 && l !== a.slice(0, i).filter((x) => x >= 0).at(-1));

    // --- what the controller did
    const logs = (ctrl as ControllerProcess).logs;
    const at = (r: Record<string, unknown>): number => new Date(String(r.time ?? 0)).getTime();
    // The steps taken: the planner's partition move after an approval. A hook approval alone is not a step: when the
    // other StatefulSet took the budget while its call ran, the approval is dropped ("the disruption budget was taken
    // since the hook approved; asking again"), and the pod does not move.
    const approvals = logs
      .filter((r) => at(r) >= tRoll && /^hook approved pod \S+; partition/.test(String(r.msg)))
      .map((r) => ({ pod: (/^hook approved pod (\S+);/.exec(String(r.msg)) as RegExpExecArray)[1] as string, at: at(r) }));
    const dropped = logs.filter((r) => at(r) >= tRoll && String(r.msg).startsWith('the disruption budget was taken since the hook approved')).length;
    const holds = logs.filter((r) => r.msg === 'hook holds the rollout' && at(r) >= tRoll).map((r) => String(r.reason));
    const budgetHolds = holds.filter((r) => r.startsWith('waiting for the disruption budget'));
    say(`approvals: ${approvals.map((a) => `${a.pod} +${secs(a.at - tRoll)}`).join(', ')}`);
    say(`a budget hold: ${budgetHolds[0] ?? 'none'}`);
    const failed = producer.sends.filter((s) => !s.ok).length;
    console.log(
      `      [figures] kafka zones: largest number of brokers away at once ${most} (${watcher.samples.length} samples, ${watcher.kafkaErrors} Kafka reads failed); ` +
        `4 pods up in ${secs(upMs)}; templates patched ${patchSpreadMs} ms apart; rollout ${secs(rolloutMs)}; ` +
        `steps ${approvals.map((a) => a.pod).join(', ')}; ${budgetHolds.length} budget holds, ${dropped} approvals dropped for the budget taken meanwhile; quorum leaders ${leaders.join(' -> ')}; ` +
        `records produced ${producer.sends.length}, acknowledged ${producer.acked.size}, failed ${failed}, consumed during ${consumer.seen.size}, read back ${verifier.seen.size}, acknowledged but missing ${missing.length}`,
    );

    expect(most, `brokers away at once (worst: ${JSON.stringify([...(worst?.away ?? [])])}; spells: ${spells.join('; ')})`).to.equal(1);
    expect(missing, 'acknowledged records not in the topic').to.deep.equal([]);
    expect(producer.acked.size).to.be.greaterThan(100);

    // Every pod approved once, before its deletion; within a StatefulSet the highest ordinal first (RollingUpdate).
    expect([...approvals.map((a) => a.pod)].sort()).to.deep.equal([...NAMES].sort());
    for (const a of approvals) expect(a.at, `${a.pod}: approval before its deletion`).to.be.at.most(deletedAt.get(a.pod) ?? 0);
    for (const name of STS) expect(approvals.map((a) => a.pod).filter((p) => p.startsWith(`${name}-`)), `${name} order`).to.deep.equal([`${name}-1`, `${name}-0`]);
    // The other StatefulSet waited for the budget at least once: both wanted to move at the same time.
    expect(budgetHolds.length, 'holds on the shared disruption budget').to.be.greaterThan(0);
    expect(budgetHolds[0]).to.match(/^waiting for the disruption budget: .*kafka-[ab]-\d/);

    // The RF 2 / min.insync.replicas 2 topic: rolled, with a Warning Event of each StatefulSet naming it.
    const events = (await c.core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.reason === 'HookWarning' && (e.message ?? '').includes(`${PAIRS} (replication factor 2, min.insync.replicas 2`));
    say(`HookWarning: ${events[0]?.message}`);
    expect([...new Set(events.map((e) => e.involvedObject?.name))].sort(), 'HookWarning Events naming the RF 2 topic').to.deep.equal(STS);
    expect(holds.filter((r) => r.includes(PAIRS)), 'holds naming the RF 2 topic').to.deep.equal([]);

    // The active controller (docs/kafka.md, RollingUpdate): restarted in its turn, never held for leading;
    // when its step came while it still led, the hook said so.
    expect(holds.filter((r) => r.includes('is the active controller')), 'holds for leading').to.deep.equal([]);
    // The final call of each StatefulSet (next null) is no broker's step: Number(null) would read as broker 0.
    const notes = logs.filter((r) => r.msg === 'approved' && r.hook === 'kafka' && r.next !== null && r.next !== undefined && at(r) >= tRoll).map((r) => ({ id: Number(r.next), note: String(r.note), at: at(r) }));
    const leaderPodApproval = approvals.find((a) => a.pod === POD_OF.get(leaderBefore));
    const stillLed = leaderPodApproval && watcher.leaderAt(leaderPodApproval.at) === leaderBefore;
    const note = notes.filter((n) => n.id === leaderBefore && n.at <= (leaderPodApproval?.at ?? 0)).at(-1)?.note ?? '';
    say(`the active controller's step (${POD_OF.get(leaderBefore)}, still leading: ${stillLed}): ${note}`);
    if (stillLed) expect(note).to.match(/\(the active controller, (in its turn|last)\) may restart: .*the quorum keeps a caught-up majority/);
    for (const n of notes.filter((x) => x.id !== 3)) expect(n.note, `voter ${n.id}`).to.match(/the quorum keeps a caught-up majority/);
  });
});
