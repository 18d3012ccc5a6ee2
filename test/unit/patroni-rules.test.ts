import { expect } from 'chai';
import { ClusterAnswer, MemberAnswer } from '../../hooks/patroni/answers.ts';
import { type Decision, decideTransition, type DecideOptions, type PodRef } from '../../hooks/patroni/decide.ts';
import { decideRemoval } from '../../hooks/patroni/removal.ts';
import { atLeast, versionOf } from '../../hooks/patroni/rules.ts';
import { type ClusterView, clusterView, patroniBoolTag, selfOf } from '../../hooks/patroni/view.ts';

// The member rules of docs/patroni.md ("Member rules"), each on what Patroni
// really answers: /cluster and each member's /patroni as JSON, parsed by the
// hook's own schemas. Every case here held (or chose otherwise) before the
// rule was written.

const SYS = '7714727590757414429';
const MiB = 1024 * 1024;
const O: DecideOptions = { maxLag: MiB, switchoverTo: 'any-replica' };
const pod = (name: string, ready = true): PodRef => ({ pod: name, ready });
const none = (): boolean => false;

type Raw = Record<string, unknown> & { name: string; role: string; state: string };
interface Self {
  version?: string;
  role?: string;
  received?: number;
  replayed?: number;
  paused?: boolean;
}

/** A /cluster member as Patroni writes it. */
function raw(name: string, role: string, state: string, extra: Record<string, unknown> = {}): Raw {
  return { name, role, state, api_url: `http://10.0.0.${name.slice(-1)}:8008/patroni`, timeline: 1, ...(role.endsWith('leader') ? {} : { lag: 0 }), ...extra };
}

/** The view the hook builds from /cluster and each member's /patroni (version 4.1.5 unless said). */
function viewOf(members: Raw[], selves: Record<string, Self> = {}, o: { pause?: boolean } = {}): ClusterView {
  const cluster = ClusterAnswer.parse({ scope: 'pg', members, ...(o.pause ? { pause: true } : {}) });
  const map = new Map(
    members.map((m) => {
      const s = selves[m.name] ?? {};
      const leads = m.role.endsWith('leader');
      const answer = MemberAnswer.parse({
        state: 'running',
        role: s.role ?? (m.role === 'leader' ? 'primary' : m.role === 'standby_leader' ? 'standby_leader' : 'replica'),
        database_system_identifier: SYS,
        patroni: { version: s.version ?? '4.1.5', scope: 'pg', name: m.name },
        xlog: leads ? { location: 1 } : { received_location: s.received ?? 1000, replayed_location: s.replayed ?? s.received ?? 1000, paused: s.paused ?? false },
      });
      return [m.name, selfOf(answer)] as const;
    }),
  );
  return clusterView(cluster, map);
}

function show(d: Decision): string {
  if (d.kind === 'approve') return `approve: ${d.note}`;
  if (d.kind === 'hold') return `hold: ${d.reason}`;
  return `switchover ${d.leader} -> ${d.candidate}: ${d.note}`;
}

describe('patroni hook: member rules, on what Patroni answers', () => {
  describe('rule "replicating": the states Patroni reports for a replica', () => {
    const rows: [string, () => Decision, RegExp][] = [
      [
        'running, on Patroni 3.0.3 (before 3.0.4 every running replica is reported running): it carries the load',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'running'), raw('db-2', 'replica', 'running')], { 'db-1': { version: '3.0.3' }, 'db-2': { version: '3.0.3' } }), null, pod('db-2'), O, none),
        /^approve: db-2 is a replica/,
      ],
      [
        'running, on Patroni 3.0.3: rejoined after its restart',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'running'), raw('db-2', 'replica', 'running')], { 'db-1': { version: '3.0.3' }, 'db-2': { version: '3.0.3' } }), pod('db-2'), pod('db-1'), O, none),
        /^approve: db-1 is a replica/,
      ],
      [
        'running, on Patroni 4.1.5 (no WAL receiver, no restore_command): not replicating, hold',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'running'), raw('db-2', 'replica', 'streaming')]), null, pod('db-2'), O, none),
        /^hold: before db-2 restarts, the other members must stream within max-lag: member db-1 is running but not replicating: Patroni 4.1.5 reports a replica that streams as streaming/,
      ],
      [
        'running, its Patroni version unknown: hold, saying so',
        () => {
          const v = viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'running'), raw('db-2', 'replica', 'streaming')]);
          const m = v.members[1];
          if (m?.self.ok) delete m.self.patroniVersion;
          return decideTransition(v, null, pod('db-2'), O, none);
        },
        /member db-1 is running, and its Patroni version is unknown/,
      ],
      [
        'in archive recovery within max-lag (no replication connection, restore_command): it carries the load',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'in archive recovery', { receive_lag: 'unknown', lag: 4096, replay_lag: 4096 }), raw('db-2', 'replica', 'streaming')]), null, pod('db-2'), O, none),
        /^approve: db-2 is a replica/,
      ],
      [
        'in archive recovery beyond max-lag: held to max-lag like any other',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'in archive recovery', { lag: 20 * MiB }), raw('db-2', 'replica', 'streaming')]), null, pod('db-2'), O, none),
        /member db-1 is 20 MiB behind the leader db-0/,
      ],
      [
        'starting: not replicating',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'starting'), raw('db-2', 'replica', 'streaming')]), null, pod('db-2'), O, none),
        /member db-1 is starting, not replicating from the leader/,
      ],
    ];
    for (const [name, f, want] of rows) it(name, () => expect(show(f())).to.match(want));

    it('reads versions as Patroni writes them', () => {
      expect(versionOf('3.0.3')).to.deep.equal([3, 0, 3]);
      expect(versionOf('4.1.0rc1')).to.deep.equal([4, 1, 0]);
      expect(versionOf('x')).to.equal(undefined);
      expect(atLeast([3, 0, 4], [3, 0, 4])).to.equal(true);
      expect(atLeast([3, 0, 3], [3, 0, 4])).to.equal(false);
      expect(atLeast([3, 3, 0], [3, 0, 4])).to.equal(true);
      expect(atLeast([2, 9, 9], [3, 0, 4])).to.equal(false);
    });
  });

  describe('rule "leading": a standby cluster rolls, its standby leader taken for the leader', () => {
    // A standby cluster's standby leader replicates from the remote primary: Patroni reports its replication state.
    const standby = (leaderState = 'streaming', extra: Record<string, unknown> = {}) =>
      viewOf([raw('db-0', 'standby_leader', leaderState, extra), raw('db-1', 'replica', 'streaming'), raw('db-2', 'replica', 'streaming', { lag: 100 })]);
    const rows: [string, () => Decision, RegExp][] = [
      ['a replica goes while the standby leader streams from the remote primary', () => decideTransition(standby(), null, pod('db-2'), O, none), /^approve: db-2 is a replica; the leader db-0/],
      ['also while it restores from the archive', () => decideTransition(standby('in archive recovery'), null, pod('db-2'), O, none), /^approve: db-2 is a replica/],
      ['also when Patroni reports it running (before 3.0.4)', () => decideTransition(standby('running'), null, pod('db-2'), O, none), /^approve: db-2 is a replica/],
      ['the standby leader: switched over to the most caught-up replica first', () => decideTransition(standby(), null, pod('db-0'), O, none), /^switchover db-0 -> db-1: switching over from db-0 to db-1, the most caught-up replica/],
      ['a standby leader that is starting: hold', () => decideTransition(standby('starting'), null, pod('db-2'), O, none), /^hold: the standby leader db-0 is starting, not replicating from the remote primary/],
      ['the end of a standby cluster rollout', () => decideTransition(standby(), pod('db-0'), null, O, none), /^approve: every member streams from the leader db-0/],
      [
        'a standby cluster scales down: its leaving standby leader is switched over first',
        () =>
          decideRemoval(
            viewOf([raw('db-0', 'replica', 'streaming'), raw('db-1', 'replica', 'streaming'), raw('db-2', 'standby_leader', 'streaming')]),
            pod('db-2'),
            { leaving: ['db-2'], requested: 2, maxLag: MiB },
          ),
        /^switchover db-2 -> db-0/,
      ],
    ];
    for (const [name, f, want] of rows) it(name, () => expect(show(f())).to.match(want));
  });

  describe('tags nofailover and failover_priority, nosync and sync_priority, as Patroni reads them', () => {
    it('reads the boolean tag by Python truth, else a priority of 0 or less', () => {
      expect(patroniBoolTag({ nofailover: true }, 'nofailover')).to.equal(true);
      expect(patroniBoolTag({ nofailover: false, failover_priority: 0 }, 'nofailover')).to.equal(false);
      expect(patroniBoolTag({ failover_priority: 0 }, 'nofailover')).to.equal(true);
      expect(patroniBoolTag({ failover_priority: '0' }, 'nofailover')).to.equal(true);
      expect(patroniBoolTag({ failover_priority: 2 }, 'nofailover')).to.equal(false);
      expect(patroniBoolTag({ nofailover: 'false' }, 'nofailover')).to.equal(true);
      expect(patroniBoolTag({ nofailover: 0 }, 'nofailover')).to.equal(false);
      expect(patroniBoolTag({ sync_priority: -1 }, 'nosync')).to.equal(true);
      expect(patroniBoolTag(undefined, 'nosync')).to.equal(false);
    });
    it('a tag that is not a boolean is no unexpected answer', () => {
      expect(ClusterAnswer.safeParse({ members: [raw('db-1', 'replica', 'streaming', { tags: { nofailover: 'true', failover_priority: '0', custom: { a: 1 } } })] }).success).to.equal(true);
    });
    const rows: [string, () => Decision, RegExp][] = [
      [
        'failover_priority 0 is never the switchover target (Patroni refuses it)',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'streaming', { tags: { failover_priority: 0 } }), raw('db-2', 'replica', 'streaming', { lag: 10 })]), null, pod('db-0'), O, none),
        /^switchover db-0 -> db-2/,
      ],
      [
        'a nofailover member far behind does not hold a replica step: Patroni never promotes it, its lag decides no failover',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'streaming', { lag: 9e9, tags: { nofailover: true } }), raw('db-2', 'replica', 'streaming')]), null, pod('db-2'), O, none),
        /^approve: db-2 is a replica/,
      ],
      [
        'nor a switchover to another member',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'streaming', { lag: 9e9, tags: { nofailover: true } }), raw('db-2', 'replica', 'streaming')]), null, pod('db-0'), O, none),
        /^switchover db-0 -> db-2/,
      ],
      [
        'a nofailover member that does not replicate still holds: it is a member away',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'stopped', { tags: { nofailover: true } }), raw('db-2', 'replica', 'streaming')]), null, pod('db-2'), O, none),
        /member db-1 is stopped, not replicating/,
      ],
      [
        'sync_priority 0 is nosync: the synchronous standby holds when only such a member could take its place',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'sync_standby', 'streaming'), raw('db-2', 'replica', 'streaming', { tags: { sync_priority: 0 } })]), null, pod('db-1'), O, none),
        /^hold: db-1 is the synchronous standby, and no other replica can take that role/,
      ],
      [
        'a nofailover member far behind cannot take the synchronous role: the sync standby holds',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'sync_standby', 'streaming'), raw('db-2', 'replica', 'streaming', { lag: 9e9, tags: { nofailover: true } })]), null, pod('db-1'), O, none),
        /^hold: db-1 is the synchronous standby, and no other replica can take that role/,
      ],
      [
        'a nosync member is a switchover target without synchronous mode (Patroni promotes it)',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'streaming', { lag: 50, tags: { nosync: true } }), raw('db-2', 'replica', 'streaming', { lag: 100 })]), null, pod('db-0'), O, none),
        /^switchover db-0 -> db-1/,
      ],
    ];
    for (const [name, f, want] of rows) it(name, () => expect(show(f())).to.match(want));
  });

  describe('a member that replays late (recovery_min_apply_delay): held to the WAL it holds, never the switchover target', () => {
    // Patroni 4: lag is the WAL received (the failover measure), replay_lag apart.
    const delayed = { lag: 0, receive_lag: 0, replay_lag: 50 * MiB };
    const rows: [string, () => Decision, RegExp][] = [
      [
        'a delayed replica does not hold another replica: it holds the WAL',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'streaming', delayed), raw('db-2', 'replica', 'streaming')]), null, pod('db-2'), O, none),
        /^approve: db-2 is a replica/,
      ],
      [
        'the leader goes to the other replica, though the delayed one has less lag',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'streaming', delayed), raw('db-2', 'replica', 'streaming', { lag: 500, replay_lag: 500 })]), null, pod('db-0'), O, none),
        /^switchover db-0 -> db-2/,
      ],
      [
        'only delayed replicas: hold, saying why each cannot take over',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'streaming', delayed)]), null, pod('db-0'), O, none),
        /^hold: db-0 is the leader, and no replica can take over: db-1 replays 50 MiB behind the leader \(max-lag 1.0 MiB; a recovery_min_apply_delay, or a slow replay\)/,
      ],
      [
        'the synchronous standby replays late: hold (Patroni switches over only to it)',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'sync_standby', 'streaming', delayed), raw('db-2', 'replica', 'streaming')]), null, pod('db-0'), O, none),
        /^hold: db-0 is the leader, and no sync standby can take over \(synchronous mode: Patroni switches over only to it\): db-1 replays 50 MiB behind/,
      ],
      [
        'Patroni 3 (no replay_lag in /cluster): the backlog from the member\'s own /patroni',
        () =>
          decideTransition(
            viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'running', { lag: 0 }), raw('db-2', 'replica', 'running', { lag: 500 })], {
              'db-1': { version: '3.0.3', received: 80 * MiB, replayed: 10 * MiB },
              'db-2': { version: '3.0.3' },
            }),
            null,
            pod('db-0'),
            O,
            none,
          ),
        /^switchover db-0 -> db-2/,
      ],
      [
        'a paused replay is never the target',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'streaming'), raw('db-2', 'replica', 'streaming', { lag: 500 })], { 'db-1': { paused: true } }), null, pod('db-0'), O, none),
        /^switchover db-0 -> db-2/,
      ],
      [
        'a scale-down: the leaving leader goes to a replica that stays and does not replay late',
        () =>
          decideRemoval(viewOf([raw('db-0', 'replica', 'streaming', { lag: 500, replay_lag: 500 }), raw('db-1', 'replica', 'streaming', delayed), raw('db-2', 'leader', 'running')]), pod('db-2'), {
            leaving: ['db-2'],
            requested: 2,
            maxLag: MiB,
          }),
        /^switchover db-2 -> db-0/,
      ],
      [
        'a member behind in the WAL it received still holds',
        () => decideTransition(viewOf([raw('db-0', 'leader', 'running'), raw('db-1', 'replica', 'streaming', { lag: 5 * MiB, receive_lag: 5 * MiB, replay_lag: 5 * MiB }), raw('db-2', 'replica', 'streaming')]), null, pod('db-2'), O, none),
        /member db-1 is 5.0 MiB behind the leader db-0 \(max-lag 1.0 MiB\)/,
      ],
    ];
    for (const [name, f, want] of rows) it(name, () => expect(show(f())).to.match(want));
  });
});
