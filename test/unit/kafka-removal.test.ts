import { expect } from 'chai';
import { kafkaHook } from '../../hooks/kafka/index.ts';
import { decideRemoval, decideUnregister, type LeavingRef, reassignmentsInvolving, topicsBriefly, replicasOn } from '../../hooks/kafka/removal.ts';
import { directoryIdText, type Reassignment, reassignmentsOf } from '../../hooks/kafka/view.ts';
import { ReassignmentsAnswer } from '../../lib/kafka/admin.ts';
import { type Spec, view } from './kafka-fixtures.ts';

// The kafka hook's scale-down decisions (hooks/kafka/removal.ts), on clusters
// written compactly (kafka-fixtures.ts): 4 brokers 0-3, voters 0-2, kafka-3 leaving.

const four: Spec = { brokers: '0 1 2 3', voters: [0, 1, 2], topics: { orders: ['0,1,2/0,1,2', '1,2,0/1,2,0', '2,0,1/2,0,1'] } };
const leaving = (id = 3, o: Partial<LeavingRef> = {}): LeavingRef => ({ pod: `kafka-${id}`, id, ready: true, confirmed: false, ...o });
const moving = (topic: string, partition: number, replicas: number[], adding: number[], removing: number[]): Reassignment => ({ topic, partition, replicas, adding, removing });
const answer = (s: Spec, rs: Reassignment[] = [], ref = leaving()): string => {
  const d = decideRemoval(view(s), rs, ref);
  return d.kind === 'hold' ? d.reason : `approved: ${d.note}`;
};

describe('kafka hook: may a broker leave (scale-down)', () => {
  it('approves an empty broker of a healthy cluster', () => {
    expect(answer(four)).to.equal(
      'approved: broker 3 (pod kafka-3, registered) hosts no partition replica, no reassignment involves it, it is not a voter, and nothing is under-replicated',
    );
    expect(answer({ ...four, brokers: '0 1 2 3f' })).to.match(/^approved: broker 3 \(pod kafka-3, registered, fenced\)/);
  });

  it('holds while it hosts replicas, naming the topics briefly (people first) and how to move them', () => {
    const s: Spec = {
      ...four,
      topics: { orders: ['0,1,3/0,1,3', '1,3,0/1,3,0', '2,0,1/2,0,1'], __consumer_offsets: ['3,0,1/3,0,1', '0,1,2/0,1,2'], audit: ['3/3'] },
      minIsr: { audit: 1 },
    };
    expect(answer(s)).to.equal(
      'broker 3 (pod kafka-3) still hosts 4 partition replicas: orders (2 of 3 partitions), audit (1 of 1), __consumer_offsets (1 of 2); it may leave only once it hosts none. ' +
        'Move them with kafka-reassign-partitions (--generate with a --broker-list without 3, then --execute), ' +
        "Cruise Control's remove_broker, or the Admin API's alterPartitionReassignments; the removal goes on by itself once they are moved",
    );
  });

  it('names many topics briefly', () => {
    const topics = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((t) => [t, ['3,0,1/3,0,1']]));
    const v = view({ ...four, topics });
    expect(topicsBriefly(v, replicasOn(v, 3))).to.equal('a (1 of 1 partition), b (1 of 1), c (1 of 1), d (1 of 1) and 2 more topics');
  });

  it('holds while a broker that is not registered any more is still named as a replica (its data is not moved)', () => {
    expect(answer({ ...four, brokers: '0 1 2', topics: { orders: ['0,1,3/0,1'] } }, [], leaving(3, { ready: false }))).to.match(/^broker 3 \(pod kafka-3\) still hosts 1 partition replica: orders/);
  });

  it('holds while a reassignment involving it runs, and says that rather than "move them"', () => {
    const s: Spec = { ...four, topics: { orders: ['0,1,3,2/0,1,3', '0,1,2/0,1,2'] } };
    const rs = [moving('orders', 0, [0, 1, 3, 2], [2], [3]), moving('other', 4, [0, 1, 2], [2], [0])];
    expect(reassignmentsInvolving(rs, 3)).to.have.length(1);
    expect(answer(s, rs)).to.equal(
      '1 partition reassignment in progress involves broker 3 (pod kafka-3): orders-0 (moving off 3); waiting for it to finish (kafka-reassign-partitions --verify shows progress)',
    );
    expect(answer(s, [moving('orders', 0, [0, 1, 2, 3], [3], [2])])).to.match(/orders-0 \(moving onto 3\)/);
  });

  it('holds on the cluster health the rollout checks: offline, under-replicated (a reassignment elsewhere), no quorum leader', () => {
    expect(answer({ ...four, topics: { orders: ['0,1,2/0,1,2'], lost: ['1/'] }, minIsr: { lost: 1 } })).to.equal(
      '1 partition under-replicated (1 offline): lost-0 (replicas 1, in sync none, no leader)',
    );
    expect(answer({ ...four, topics: { orders: ['0,1,2/0,1'] } })).to.equal('1 partition under-replicated: orders-0 (replicas 0,1,2, in sync 0,1)');
    expect(answer({ ...four, leader: -1 })).to.equal('the controller quorum has no leader');
  });

  it('holds a voter of a static quorum: a deliberate act, with the command, and the way to a dynamic quorum', () => {
    expect(answer({ ...four, topics: {} }, [], leaving(2))).to.equal(
      'node 2 (pod kafka-2) is a KRaft controller voter (voters 0,1,2): without it the quorum runs 2 of 3 for good. ' +
        'Removing a voter is a deliberate act this hook will not do: kafka-metadata-quorum --bootstrap-controller <controller> remove-controller --controller-id 2 --controller-directory-id <id>; ' +
        'this static quorum (controller.quorum.voters, no directory ids) must first become dynamic (kafka-features upgrade --feature kraft.version=1, Kafka 4.1+)',
    );
  });

  it('gives a dynamic quorum voter the command with its directory id, as Kafka prints it', () => {
    const r = answer({ ...four, topics: {}, dirs: { 2: '8cfe2a2e-1f1a-4c36-9a4f-08e6d2b1a0c1' } }, [], leaving(2));
    expect(r).to.match(/remove-controller --controller-id 2 --controller-directory-id jP4qLh8aTDaaTwjm0rGgwQ; the removal goes on once it is no longer a voter$/);
  });

  it('a voter that also hosts replicas: both in one reason, the voter first, short enough for an Event (1024 characters)', () => {
    const r = answer(four, [], leaving(2));
    expect(r).to.match(/^node 2 \(pod kafka-2\) is a KRaft controller voter .*; also, broker 2 \(pod kafka-2\) still hosts 3 partition replicas: orders \(3 of 3 partitions\); /);
    expect(`kafka holds the removal of pod kafka-2: ${r}`.length).to.be.at.most(1024);
  });

  it('a dedicated controller (voter, no broker) holds for the quorum', () => {
    expect(answer({ voters: [100, 101, 102], leader: 100 }, [], leaving(102))).to.match(/^node 102 \(pod kafka-102\) is a KRaft controller voter \(voters 100,101,102\)/);
  });

  it('a node the cluster does not know: approved when already gone, held when it is Ready and the mapping is unconfirmed', () => {
    expect(answer(four, [], leaving(7, { ready: false }))).to.equal(
      'approved: node 7 (pod kafka-7) is not registered, not a voter and hosts no replica: nothing to move, it is already gone',
    );
    expect(answer(four, [], leaving(7))).to.match(/^pod kafka-7 is Ready, but node 7 is neither a registered broker nor a controller voter \(brokers 0,1,2,3, voters 0,1,2\): .*node-id-offset/);
    // its own Pilot says it is node 7 (a controller that left the quorum, an observer): nothing to move
    expect(answer(four, [], leaving(7, { confirmed: true }))).to.match(/^approved: node 7/);
    // gone, but the cluster is unhealthy: the hook cannot tell whether this pod is behind it
    expect(answer({ ...four, topics: { orders: ['0,1,2/0,1'] } }, [], leaving(7, { ready: false }))).to.match(/^node 7 \(pod kafka-7\) is not in the cluster, but the cluster is not healthy: 1 partition under-replicated/);
  });
});

describe('kafka hook: after a broker left', () => {
  const gone = { pod: 'kafka-3', id: 3 };
  it('unregisters a gone, fenced broker', () => {
    expect(decideUnregister(view({ ...four, brokers: '0 1 2 3f' }), gone)).to.deep.equal({
      kind: 'unregister',
      note: 'broker 3 (pod kafka-3) is gone and fenced: unregistering it',
      warnings: [],
    });
  });
  it('is done when the broker is not registered (idempotent: already unregistered)', () => {
    expect(decideUnregister(view(four), { pod: 'kafka-4', id: 4 })).to.deep.equal({ kind: 'done', note: 'broker 4 (pod kafka-4) is not registered: nothing to unregister', warnings: [] });
  });
  it('holds while the broker is still unfenced: a process with its id still runs, or it stopped uncleanly moments ago', () => {
    const c = decideUnregister(view(four), gone);
    expect(c.kind).to.equal('hold');
    expect(c.kind === 'hold' && c.reason).to.match(/^pod kafka-3 is gone, but broker 3 is still registered and unfenced: .*kafka-cluster unregister --bootstrap-server <a broker> --id 3$/);
  });
  it('says what is left behind: replicas still naming it, a voter still in the quorum', () => {
    const c = decideUnregister(view({ ...four, brokers: '0 1 2 3f', voters: [0, 1, 3], topics: { late: ['3,0/0'] } }), gone);
    expect(c.kind).to.equal('unregister');
    expect(c.kind !== 'hold' && c.warnings).to.deep.equal([
      'broker 3 is gone but still named as a replica of late (1 of 1 partition): those partitions are under-replicated until they are reassigned',
      'node 3 is gone but still a voter of the controller quorum: remove it with kafka-metadata-quorum remove-controller, or the quorum runs one voter short',
    ]);
  });
});

describe('kafka hook: what a removal reads', () => {
  it('prints directory ids as Kafka does; the zero id is none', () => {
    expect(directoryIdText('8cfe2a2e-1f1a-4c36-9a4f-08e6d2b1a0c1')).to.equal('jP4qLh8aTDaaTwjm0rGgwQ');
    expect(directoryIdText('00000000-0000-0000-0000-000000000000')).to.equal(undefined);
    expect(directoryIdText(undefined)).to.equal(undefined);
  });
  it('reads reassignments in progress', () => {
    const a = ReassignmentsAnswer.parse({ topics: [{ name: 'orders', partitions: [{ partitionIndex: 0, replicas: [0, 1, 3, 2], addingReplicas: [2], removingReplicas: [3] }] }] });
    expect(reassignmentsOf(a)).to.deep.equal([moving('orders', 0, [0, 1, 3, 2], [2], [3])]);
    expect(ReassignmentsAnswer.safeParse({ topics: [{ name: 'x', partitions: [{ partitionIndex: -1 }] }] }).success).to.equal(false);
  });
  it('a withdrawn removal has nothing to undo: podRemoved returns without asking Kafka', async () => {
    expect(kafkaHook.podRemoval).to.be.a('function');
    // No bootstrap broker exists at this address: a call that reached for Kafka would fail.
    await (kafkaHook.podRemoved as NonNullable<typeof kafkaHook.podRemoved>)({ metadata: { name: 'kafka-3' } }, 'withdrawn', {} as never);
  });
});
