import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { brokerRefOf, podOrdinal } from '../../hooks/kafka/broker-ref.ts';
import { type BrokerRef, decide, type StepPolicy } from '../../hooks/kafka/decide.ts';
import { caughtUpVoters } from '../../hooks/kafka/quorum.ts';
import { listOf } from '../../hooks/kafka/words.ts';
import { kafkaHook } from '../../hooks/kafka/index.ts';
import { kafkaView } from '../../hooks/kafka/view.ts';
import { parseHookOptions } from '../../lib/hook.ts';
import { ClusterAnswer, ConfigsAnswer, MetadataAnswer, QuorumAnswer } from '../../lib/kafka/admin.ts';
import { parseMetaProperties } from '../../lib/probes/kafka.ts';
import { applicationHealthy, applicationReady } from '../../lib/probes/verdict.ts';
import { type Spec, view } from './kafka-fixtures.ts';

const ref = (id: number, o: Partial<BrokerRef> = {}): BrokerRef => ({ pod: `kafka-${id}`, id, ready: true, last: id === 0, ...o });
const holdOf = (d: ReturnType<typeof decide>): string => (d.kind === 'hold' ? d.reason : `approved: ${d.note}`);
const rolling: StepPolicy = { activeController: 'in-turn', strictMinIsr: false, strategy: 'RollingUpdate', now: 0 };

describe('kafka hook: decisions', () => {
  const cases: { name: string; spec: Spec; prev: BrokerRef | null; next: BrokerRef | null; policy?: Partial<StepPolicy>; want: RegExp }[] = [
    { name: 'healthy cluster, first step', spec: {}, prev: null, next: ref(2), want: /^approved: broker 2 may restart/ },
    { name: 'end of the rollout, all back', spec: {}, prev: ref(0), next: null, want: /^approved: broker 0 rejoined/ },
    {
      name: 'RF 1 topic on next, strict-min-isr: held with its name',
      spec: { topics: { orders: ['0,1,2/0,1,2'], single: ['2/2'] }, minIsr: { single: 1 } },
      prev: null,
      next: ref(2),
      policy: { strictMinIsr: true },
      want: /^restarting broker 2 \(pod kafka-2\) would take 1 partition below min\.insync\.replicas \(1 partition would go offline\): single-0 \(replicas 2, in sync 2, min\.insync\.replicas 1: its only replica\); kafka\.sts-pilot\.io\/strict-min-isr is "true": without it the step would go on with a warning/,
    },
    {
      name: 'RF 1 topic on next, by default: rolled (Strimzi skips what no rolling can spare)',
      spec: { topics: { orders: ['0,1,2/0,1,2'], single: ['2/2'] }, minIsr: { single: 1 } },
      prev: null,
      next: ref(2),
      want: /^approved: broker 2 may restart: every partition it hosts with more replicas than min\.insync\.replicas keeps it, the quorum keeps a caught-up majority$/,
    },
    {
      name: 'RF 1 topic elsewhere: not in the way',
      spec: { topics: { orders: ['0,1,2/0,1,2'], single: ['1/1'] }, minIsr: { single: 1 } },
      prev: null,
      next: ref(2),
      want: /^approved/,
    },
    {
      name: 'ISR at min.insync.replicas already: next would take it below',
      spec: { topics: { orders: ['0,1,2/0,1,2', '1,2,0/1,2'] } },
      prev: null,
      next: ref(2),
      // partition 1 is under-replicated (0 out of sync), which is not next's own: that holds first
      want: /^1 partition under-replicated: orders-1 \(replicas 0,1,2, in sync 1,2\)$/,
    },
    {
      name: 'only next is out of sync (a broken pod being replaced): allowed',
      spec: { topics: { orders: ['0,1,2/0,1', '1,2,0/1,0'] } },
      prev: null,
      next: ref(2, { ready: false }),
      want: /^approved/,
    },
    {
      name: 'RF 2 with min.insync.replicas 2, strict-min-isr: acks=all would fail',
      spec: { topics: { pairs: ['1,2/1,2'] }, minIsr: { pairs: 2 } },
      prev: null,
      next: ref(2),
      policy: { strictMinIsr: true },
      want: /^restarting broker 2 .* \(producers with acks=all would fail\): pairs-0 \(replicas 1,2, in sync 1,2, min\.insync\.replicas 2\); kafka\.sts-pilot\.io\/strict-min-isr/,
    },
    {
      name: 'offline partition anywhere',
      spec: { topics: { orders: ['0,1,2/0,1,2'], lost: ['1/'] }, minIsr: { lost: 1 } },
      prev: null,
      next: ref(2),
      want: /^1 partition under-replicated \(1 offline\): lost-0 \(replicas 1, in sync none, no leader\)$/,
    },
    {
      name: 'many partitions named briefly',
      spec: { topics: { t: ['0,1,2/0,1', '0,1,2/0,1', '0,1,2/0,1', '0,1,2/0,1', '0,1,2/0,1', '0,1,2/0,1'] } },
      prev: null,
      next: ref(1),
      want: /^6 partitions under-replicated: t-0 \(.*\), t-1 .* and 2 more$/,
    },
    {
      name: 'prev not registered yet',
      spec: { brokers: '0 1' },
      prev: ref(2),
      next: ref(1),
      want: /^waiting for broker 2 \(pod kafka-2\) to register with the controller$/,
    },
    { name: 'prev fenced', spec: { brokers: '0 1 2f' }, prev: ref(2), next: ref(1), want: /^waiting for broker 2 \(pod kafka-2\) to be unfenced/ },
    {
      name: 'prev not back in sync: names the partitions',
      spec: { topics: { orders: ['0,1,2/0,1', '1,2,0/1,0', '1,0/1,0'] } },
      prev: ref(2),
      next: ref(1),
      want: /^waiting for broker 2 \(pod kafka-2\) to catch up: 2 partitions not back in sync: orders-0, orders-1$/,
    },
    {
      name: 'prev controller behind the leader',
      spec: { behind: { 2: 5000 } },
      prev: ref(2),
      next: ref(1),
      want: /^waiting for controller 2 \(pod kafka-2\) to catch up with the metadata log \(more than 2000 ms behind the active controller 0\)$/,
    },
    {
      name: 'another voter lagging: no caught-up majority without next',
      spec: { behind: { 1: 5000 } },
      prev: null,
      next: ref(2),
      want: /^restarting controller 2 \(pod kafka-2\) would leave 1 caught-up voters \(0\) of 3, fewer than a majority of 2/,
    },
    { name: 'a voter that never caught up counts as behind', spec: { behind: { 1: -1 } }, prev: null, next: ref(2), want: /would leave 1 caught-up voters/ },
    { name: 'lag within the fetch timeout is caught up', spec: { behind: { 1: 1500 } }, prev: null, next: ref(2), want: /^approved/ },
    {
      name: 'active controller under RollingUpdate, by default: restarted in its turn',
      spec: { leader: 2 },
      prev: null,
      next: ref(2),
      want: /^approved: broker 2 \(the active controller, in its turn\) may restart: every partition it hosts keeps min\.insync\.replicas, the quorum keeps a caught-up majority$/,
    },
    {
      name: 'active controller in its turn still needs a caught-up majority of the others',
      spec: { leader: 2, behind: { 1: 5000 } },
      prev: null,
      next: ref(2),
      want: /^restarting controller 2 \(pod kafka-2\) would leave 1 caught-up voters \(0\) of 3/,
    },
    {
      name: 'active controller, active-controller last, not the last pod: held',
      spec: { leader: 2 },
      prev: null,
      next: ref(2),
      policy: { activeController: 'last' },
      want: /^broker 2 \(pod kafka-2\) is the active controller and kafka\.sts-pilot\.io\/active-controller is "last": its step waits until leadership moves/,
    },
    { name: 'active controller, last pod: allowed', spec: { leader: 0 }, prev: ref(1), next: ref(0), policy: { activeController: 'last' }, want: /^approved: broker 0 \(the active controller, last\)/ },
    {
      name: 'active controller under OnDelete with last: the order put it last, not held',
      spec: { leader: 2 },
      prev: null,
      next: ref(2),
      policy: { activeController: 'last', strategy: 'OnDelete' },
      want: /^approved: broker 2 \(the active controller, last\)/,
    },
    { name: 'no quorum leader', spec: { leader: -1 }, prev: null, next: ref(2), want: /^the controller quorum has no leader$/ },
    {
      name: 'next unknown to the cluster but Ready: the id mapping is wrong',
      spec: {},
      prev: null,
      next: ref(7),
      want: /^pod kafka-7 is Ready, but node 7 is neither a registered broker nor a controller voter .*node-id-offset$/,
    },
    { name: 'next unknown and not Ready (never started): replaceable', spec: {}, prev: null, next: ref(7, { ready: false }), want: /^approved/ },
    {
      name: 'dedicated controller (voter, not a broker): quorum rules only',
      spec: { voters: [100, 101, 102], leader: 100 },
      prev: null,
      next: ref(102),
      want: /^approved/,
    },
    {
      name: 'dedicated controller prev: rejoined means caught up in the quorum',
      spec: { voters: [100, 101, 102], leader: 100, behind: { 102: 9000 } },
      prev: ref(102),
      next: ref(101),
      want: /^waiting for controller 102/,
    },
  ];
  for (const t of cases) {
    it(t.name, () => {
      expect(holdOf(decide(view(t.spec), t.prev, t.next, { ...rolling, ...t.policy }))).to.match(t.want);
    });
  }

  it('a broker on its way back is a routine hold; anything else may need someone', () => {
    const back = decide(view({ voters: [100, 101, 102], leader: 100, behind: { 102: 9000 } }), ref(102), ref(101), rolling);
    expect(back.kind === 'hold' && back.routine).to.equal(true);
    const unknown = decide(view({}), null, ref(7), rolling);
    expect(unknown.kind === 'hold' && unknown.routine).to.not.equal(true);
  });

  it('counts voters as caught up on the leader clock, the leader always', () => {
    expect(caughtUpVoters(view({ behind: { 0: 0, 1: 2000, 2: 2001 } }))).to.deep.equal([0, 1]);
    expect(caughtUpVoters(view({ leader: 9 }))).to.deep.equal([]);
  });

  it('lists long names briefly', () => {
    expect(listOf([])).to.equal('none');
    expect(listOf(['a', 'b', 'c'], 2)).to.equal('a, b and 1 more');
  });
});

describe('kafka hook: what it reads', () => {
  it('refuses answers that make no sense, with the reason', () => {
    const good = {
      metadata: MetadataAnswer.parse({ clusterId: 'c', brokers: [], topics: [{ errorCode: 0, name: 't', isInternal: false, partitions: [] }] }),
      cluster: ClusterAnswer.parse({ clusterId: 'c', brokers: [] }),
      quorum: QuorumAnswer.parse({ topics: [{ topicName: '__cluster_metadata', partitions: [] }] }),
      configs: ConfigsAnswer.parse({ results: [] }),
    };
    // min.insync.replicas must be known for the topics on the moving broker (read.ts asks for those only), not for the others
    const onBroker0 = { ...good, metadata: MetadataAnswer.parse({ clusterId: 'c', brokers: [], topics: [{ errorCode: 0, name: 't', isInternal: false, partitions: [{ errorCode: 0, partitionIndex: 0, leaderId: 0, replicaNodes: [0, 1], isrNodes: [0, 1], offlineReplicas: [] }] }] }) };
    expect(kafkaView(onBroker0, 0)).to.deep.equal({ ok: false, error: 'no min.insync.replicas known for topic t, which has a replica on broker 0' });
    expect(kafkaView(onBroker0, 2)).to.deep.equal({ ok: false, error: 'DescribeQuorum returned no partition for the metadata log' });
    expect(kafkaView(onBroker0, null)).to.deep.equal({ ok: false, error: 'DescribeQuorum returned no partition for the metadata log' });
    const bad = {
      ...good,
      configs: ConfigsAnswer.parse({ results: [{ errorCode: 0, errorMessage: null, resourceType: 2, resourceName: 't', configs: [{ name: 'min.insync.replicas', value: 'two' }] }] }),
    };
    expect(kafkaView(bad)).to.deep.equal({ ok: false, error: 'topic t has min.insync.replicas="two", not a positive number' });
    const noQuorum = { ...good, configs: ConfigsAnswer.parse({ results: [{ errorCode: 0, errorMessage: null, resourceType: 2, resourceName: 't', configs: [{ name: 'min.insync.replicas', value: '1' }] }] }) };
    expect(kafkaView(noQuorum)).to.deep.equal({ ok: false, error: 'DescribeQuorum returned no partition for the metadata log' });
    // the schemas themselves
    expect(MetadataAnswer.safeParse({ clusterId: null, brokers: [], topics: [{ errorCode: 0, name: 't', isInternal: false, partitions: [{ partitionIndex: -1 }] }] }).success).to.equal(false);
    expect(QuorumAnswer.safeParse({ topics: [] }).success).to.equal(false);
  });

  it('reads node.id and cluster.id from meta.properties', () => {
    expect(parseMetaProperties('#\n#Wed Dec 02\nnode.id=2\ndirectory.id=x\nversion=1\ncluster.id=abc_-1\n')).to.deep.equal({ nodeId: 2, clusterId: 'abc_-1' });
    expect(parseMetaProperties('node.id=two\n')).to.deep.equal({});
  });
});

describe('kafka hook: options and pods', () => {
  const opts = (a: Record<string, string>) => parseHookOptions(kafkaHook, Object.fromEntries(Object.entries(a).map(([k, v]) => [`kafka.sts-pilot.io/${k}`, v])));

  it('parses the annotations', () => {
    const r = opts({ bootstrap: 'kafka-0.kafka:9092, [::1]:9093', 'node-id-offset': '100', 'active-controller': 'last', 'strict-min-isr': 'true', tls: 'true', 'ca-secret': 'ca' });
    expect(r.ok).to.equal(true);
    expect(r.ok && r.options).to.deep.include({
      bootstrap: [
        { host: 'kafka-0.kafka', port: 9092 },
        { host: '::1', port: 9093 },
      ],
      nodeIdOffset: 100,
      activeController: 'last',
      strictMinIsr: true,
      tls: true,
      caSecret: 'ca',
      timeoutSeconds: 10,
    });
  });

  it('restarts the active controller in its turn and rolls topics that never keep min.insync.replicas, by default; "any" still reads as in-turn', () => {
    const r = opts({ bootstrap: 'k:9092' });
    expect(r.ok && r.options).to.deep.include({ activeController: 'in-turn', strictMinIsr: false });
    const any = opts({ bootstrap: 'k:9092', 'active-controller': 'any' });
    expect(any.ok && any.options).to.deep.include({ activeController: 'in-turn' });
  });

  const refused: [Record<string, string>, RegExp][] = [
    [{}, /kafka\.sts-pilot\.io\/bootstrap/],
    [{ bootstrap: 'kafka://k:9092' }, /bootstrap: "kafka:\/\/k:9092" is not host:port/],
    [{ bootstrap: 'user:pw@k:9092' }, /is not host:port/],
    [{ bootstrap: 'k:99999' }, /is not host:port/],
    [{ bootstrap: 'k:9092', 'ca-secret': 'ca' }, /ca-secret: a CA only makes sense with tls: "true"/],
    [{ bootstrap: 'k:9092', 'sasl-mechanism': 'PLAIN' }, /sasl-secret: give sasl-mechanism and sasl-secret together/],
    [{ bootstrap: 'k:9092', 'sasl-mechanism': 'GSSAPI', 'sasl-secret': 's' }, /sasl-mechanism: must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512/],
    [{ bootstrap: 'k:9092', 'node-id-offset': '-1' }, /node-id-offset: must be a whole number/],
    [{ bootstrap: 'k:9092', 'active-controller': 'first' }, /active-controller: must be in-turn or last/],
    [{ bootstrap: 'k:9092', 'strict-min-isr': 'yes' }, /strict-min-isr: must be "true" or "false"/],
    [{ bootstrap: 'k:9092', typo: 'x' }, /typo/],
  ];
  for (const [a, want] of refused) {
    it(`refuses ${JSON.stringify(a)}`, () => {
      const r = opts(a);
      expect(r.ok).to.equal(false);
      expect(!r.ok && r.error).to.match(want);
    });
  }

  const sts: V1StatefulSet = { metadata: { name: 'kafka' }, spec: { ordinals: { start: 1 } } as V1StatefulSet['spec'] };
  const pod = (name: string, uid = 'u1'): V1Pod => ({ metadata: { name, uid }, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
  const pilot = (brokerId: number, owner = 'u1') => ({ metadata: { ownerReferences: [{ uid: owner }] }, status: { application: { probe: 'kafka', kafka: { brokerId }, clusterUUID: 'c1' } } });

  const unknown = { running: undefined, source: 'nothing says whether its process runs' };

  it('maps a pod to ordinal + node-id-offset, the last one at ordinals.start', () => {
    expect(podOrdinal('kafka-12', 'kafka')).to.equal(12);
    expect(podOrdinal('kafka-01', 'kafka')).to.equal(undefined);
    expect(podOrdinal('other-1', 'kafka')).to.equal(undefined);
    expect(brokerRefOf(pod('kafka-2'), sts, 100, undefined)).to.deep.equal({ ok: true, ref: { pod: 'kafka-2', id: 102, ready: true, last: false, process: unknown } });
    expect(brokerRefOf(pod('kafka-1'), sts, 0, undefined)).to.deep.include({ ok: true, ref: { pod: 'kafka-1', id: 1, ready: true, last: true, process: unknown } });
  });

  it('checks the mapping against the Pilot of the same pod', () => {
    expect(brokerRefOf(pod('kafka-2'), sts, 0, pilot(2))).to.deep.equal({ ok: true, ref: { pod: 'kafka-2', id: 2, ready: true, last: false, process: unknown }, pilot: { brokerId: 2, clusterId: 'c1' } });
    const r = brokerRefOf(pod('kafka-2'), sts, 0, pilot(102));
    expect(r.ok).to.equal(false);
    expect(!r.ok && r.error).to.equal(
      'the Pilot of kafka-2 reports node id 102, but the hook expects 2 (ordinal 2 + node-id-offset 0): set kafka.sts-pilot.io/node-id-offset to match node.id',
    );
    // a Pilot left by the pod this one replaced says nothing about it
    expect(brokerRefOf(pod('kafka-2'), sts, 0, pilot(102, 'old'))).to.deep.equal({ ok: true, ref: { pod: 'kafka-2', id: 2, ready: true, last: false, process: unknown } });
    expect(brokerRefOf(pod('x-2'), sts, 0, undefined)).to.deep.equal({ ok: false, error: 'pod x-2 is not named kafka-<ordinal>: cannot tell its Kafka node id' });
    expect(brokerRefOf(pod('kafka-2'), sts, 0, { status: { application: { kafka: { brokerId: 'two' } } } }).ok).to.equal(false);
  });

  it('judges readiness and health from the probe block', () => {
    const app = (kafka: object, roles = ['broker', 'controller']) => ({ probe: 'kafka', roles, kafka: { brokerId: 1, ...kafka } });
    expect(applicationReady(app({ registered: true, fenced: false }))).to.deep.equal({ ok: true });
    expect(applicationReady(app({ registered: true, fenced: true }))).to.deep.equal({ ok: false, reason: 'Kafka broker 1 is fenced' });
    expect(applicationReady(app({ registered: false }))).to.deep.equal({ ok: false, reason: 'Kafka broker 1 is not registered with the controller' });
    expect(applicationReady({ probe: 'kafka', error: 'no broker' })).to.deep.equal({ ok: false, reason: 'the Kafka node does not report itself: no broker' });
    expect(applicationReady(app({ activeController: 5 }, ['controller']))).to.deep.equal({ ok: true });
    expect(applicationHealthy(app({ registered: true, fenced: false, underMinIsr: 2 }))).to.deep.equal({ ok: false, reason: 'Kafka broker 1 hosts 2 partitions below min.insync.replicas' });
    expect(applicationHealthy(app({ registered: true, fenced: false, underMinIsr: 0 }))).to.deep.equal({ ok: true });
  });
});
