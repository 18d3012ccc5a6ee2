import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Decision, decideOrder, decideTransition, type DecideOptions, type PodRef } from '../../hooks/patroni/decide.ts';
import { Options } from '../../hooks/patroni/options.ts';
import { type ClusterView, clusterView, type MemberSelf, type MemberView } from '../../hooks/patroni/view.ts';
import { patroniProbe, postgresVersion } from '../../lib/probes/patroni.ts';
import { applicationReady } from '../../lib/probes/verdict.ts';

const SYS = '7714727590757414429';
const ok = (role: string, extra: Partial<Extract<MemberSelf, { ok: true }>> = {}): MemberSelf => ({ ok: true, state: 'running', role, systemId: SYS, replayPaused: false, ...extra });

/** A member: 'L' leader, 'R' streaming replica, 'S' sync standby; lag in bytes. */
function m(name: string, kind: 'L' | 'R' | 'S', o: Partial<MemberView> = {}): MemberView {
  const leader = kind === 'L';
  return {
    name,
    role: leader ? 'leader' : kind === 'S' ? 'sync_standby' : 'replica',
    state: leader ? 'running' : 'streaming',
    apiUrl: `http://10.0.0.${name.slice(-1)}:8008/patroni`,
    timeline: 1,
    ...(leader ? {} : { lag: 0, replayLag: o.lag ?? 0 }),
    nofailover: false,
    nosync: false,
    self: ok(leader ? 'primary' : 'replica'),
    ...o,
  };
}
const view = (members: MemberView[], paused = false): ClusterView => ({ scope: 'pg', paused, members });
const pod = (name: string, ready = true): PodRef => ({ pod: name, ready });
const O: DecideOptions = { maxLag: 1024 * 1024, switchoverTo: 'updated-replica' };
const none = (): boolean => false;

function show(d: Decision): string {
  if (d.kind === 'approve') return `approve: ${d.note}`;
  if (d.kind === 'hold') return `hold: ${d.reason}`;
  return `switchover ${d.leader} -> ${d.candidate} via ${d.leaderUrl}: ${d.note}`;
}

describe('patroni hook: options', () => {
  const parse = (o: Record<string, string>) => Options.safeParse(o);
  it('defaults: port 8008, max-lag 1 MiB, updated-replica, 10 s, 60 s', () => {
    const r = parse({});
    expect(r.success && r.data).to.deep.equal({ port: 8008, url: undefined, maxLag: 1048576, switchoverTo: 'updated-replica', credentialsSecret: undefined, timeoutSeconds: 10, switchoverTimeoutSeconds: 60 });
  });
  for (const [raw, bytes] of [['1MB', 1048576], ['512kB', 524288], ['100', 100], ['2 GB', 2147483648], ['64B', 64]] as const) {
    it(`max-lag ${raw} is ${bytes} bytes`, () => {
      const r = parse({ 'max-lag': raw });
      expect(r.success && r.data.maxLag).to.equal(bytes);
    });
  }
  for (const [k, v, why] of [
    ['max-lag', '1 TB', /must be a size in bytes/],
    ['max-lag', '-5', /must be a size in bytes/],
    ['port', '0', /must be a port number/],
    ['port', '70000', /1 to 65535/],
    ['switchover-to', 'leader', /updated-replica or any-replica/],
    ['url', 'http://u:p@pg:8008', /must not carry credentials/],
    ['credentials-secret', 'Bad_Name', /Kubernetes object name/],
    ['timeout', '0', /whole number of seconds/],
    ['unknown', 'x', /Unrecognized key/],
  ] as const) {
    it(`refuses ${k}=${v}`, () => {
      const r = parse({ [k]: v });
      expect(r.success).to.equal(false);
      if (!r.success) expect(r.error.issues.map((i) => i.message).join('; ')).to.match(why);
    });
  }
});

describe('patroni hook: reading /cluster', () => {
  it('lag is the lag Patroni reports (replay lag apart); "unknown" is unknown; the leader has none', () => {
    const v = clusterView(
      {
        scope: 'pg',
        members: [
          { name: 'a', role: 'leader', state: 'running', lag: 0 },
          { name: 'b', role: 'replica', state: 'streaming', lag: 10, receive_lag: 5, replay_lag: 700 },
          { name: 'c', role: 'replica', state: 'streaming', lag: 'unknown' },
          { name: 'd', role: 'replica', state: 'running', tags: { nofailover: true } },
        ],
      },
      new Map([['b', ok('replica')]]),
    );
    // lag: Patroni's failover measure (the WAL the member holds); replay_lag apart.
    expect(v.members.map((x) => x.lag)).to.deep.equal([undefined, 10, undefined, undefined]);
    expect(v.members.map((x) => x.replayLag)).to.deep.equal([undefined, 700, undefined, undefined]);
    expect(v.members[3]?.nofailover).to.equal(true);
    expect(v.members[2]?.self).to.deep.equal({ ok: false, error: 'it lists no REST API address (api_url)' });
  });
});

describe('patroni hook: decisions', () => {
  const three = (o: { l?: Partial<MemberView>; r1?: Partial<MemberView>; r2?: Partial<MemberView> } = {}) =>
    view([m('db-0', 'L', o.l), m('db-1', 'S', o.r1), m('db-2', 'R', o.r2)]);
  const rows: [string, () => Decision, string | RegExp][] = [
    ['a replica goes while the others stream', () => decideTransition(three(), null, pod('db-2'), O, none), /^approve: db-2 is a replica/],
    ['paused: maintenance mode holds everything', () => decideTransition(view(three().members, true), null, pod('db-2'), O, none), /^hold: Patroni cluster pg is paused \(maintenance mode\)/],
    ['no leader: a failover is in progress', () => decideTransition(view([m('db-1', 'R'), m('db-2', 'R')]), null, pod('db-2'), O, none), /^hold: Patroni cluster pg has no leader \(members: db-1 replica streaming lag 0 B, db-2/],
    ['a leader that is not running', () => decideTransition(three({ l: { state: 'stopping' } }), null, pod('db-2'), O, none), /^hold: the leader db-0 is stopping, not running \(Patroni cluster pg, members: /],
    ['the leader says its PostgreSQL is stopping (demoting): hold', () => decideTransition(three({ l: { self: ok('primary', { state: 'stopping' }) } }), null, pod('db-0'), O, none), /^hold: the leader db-0 says its PostgreSQL is stopping: a switchover, failover or restart is in progress/],
    ['the leader does not answer', () => decideTransition(three({ l: { self: { ok: false, error: 'timeout' } } }), null, pod('db-2'), O, none), /^hold: the leader db-0 does not answer: timeout/],
    ['another replica lags', () => decideTransition(three({ r1: { lag: 5 * 1024 * 1024 } }), null, pod('db-2'), O, none), /^hold: before db-2 restarts, the other members must stream within max-lag: member db-1 is 5.0 MiB behind the leader db-0 \(max-lag 1.0 MiB\)/],
    ['another replica lags with replay paused', () => decideTransition(three({ r1: { lag: 5 * 1024 * 1024, self: ok('replica', { replayPaused: true }) } }), null, pod('db-2'), O, none), /its WAL replay is paused/],
    ['another replica does not stream', () => decideTransition(three({ r1: { state: 'starting' } }), null, pod('db-2'), O, none), /member db-1 is starting, not replicating from the leader/],
    ['another replica with unknown lag', () => decideTransition(three({ r1: { lag: undefined } }), null, pod('db-2'), O, none), /the replication lag of member db-1 is unknown/],
    ['another member does not answer its REST API', () => decideTransition(three({ r1: { self: { ok: false, error: "Patroni's REST API at http://10.0.0.1:8008/patroni gave no answer within 3s" } } }), null, pod('db-2'), O, none), /member db-1 does not answer: Patroni's REST API/],
    ['another member with other data', () => decideTransition(three({ r1: { self: ok('replica', { systemId: '1' }) } }), null, pod('db-2'), O, none), /member db-1 runs database system 1, the leader db-0 7714727590757414429/],
    ['the lagging member itself may go', () => decideTransition(three({ r2: { lag: 9e9 } }), null, pod('db-2'), O, none), /^approve/],
    ['the sync standby goes when another replica can take the role', () => decideTransition(three(), null, pod('db-1'), O, none), /^approve: db-1 is a sync_standby/],
    ['the sync standby holds when no other can take the role (nosync)', () => decideTransition(three({ r2: { nosync: true } }), null, pod('db-1'), O, none), /^hold: db-1 is the synchronous standby, and no other replica can take that role/],
    ['prev must have rejoined: missing', () => decideTransition(view([m('db-0', 'L'), m('db-1', 'S')]), pod('db-2'), pod('db-1'), O, none), /^hold: waiting for db-2 to rejoin Patroni cluster pg: it is not among its members/],
    ['prev must have rejoined: streaming', () => decideTransition(three({ r2: { state: 'starting' } }), pod('db-2'), pod('db-1'), O, none), /^hold: waiting for db-2, updated last, to rejoin as a replica: member db-2 is starting/],
    ['prev must have rejoined: same system', () => decideTransition(three({ r2: { self: ok('replica', { systemId: '42' }) } }), pod('db-2'), pod('db-1'), O, none), /not a copy of this cluster's data/],
    ['prev must have rejoined: lag', () => decideTransition(three({ r2: { lag: 2 * 1024 * 1024 } }), pod('db-2'), pod('db-1'), O, none), /^hold: waiting for db-2, updated last, to rejoin as a replica: member db-2 is 2.0 MiB behind/],
    ['prev may be the leader (after the switchover)', () => decideTransition(view([m('db-0', 'R'), m('db-1', 'S'), m('db-2', 'L')]), pod('db-2'), pod('db-0'), O, none), /^approve/],
    ['the leader: switch over to the updated synchronous standby', () => decideTransition(three(), pod('db-1'), pod('db-0'), O, (x) => x !== 'db-0'), /^switchover db-0 -> db-1 via http:\/\/10.0.0.0:8008\/patroni: switching over from db-0 to db-1, which runs the update revision/],
    ['the leader: without sync mode, the updated replica with the least lag', () => decideTransition(view([m('db-0', 'L'), m('db-1', 'R', { lag: 100 }), m('db-2', 'R', { lag: 10 })]), pod('db-1'), pod('db-0'), O, (x) => x !== 'db-0'), /^switchover db-0 -> db-2/],
    ['the leader: an updated replica over a more caught-up stale one', () => decideTransition(view([m('db-0', 'L'), m('db-1', 'R', { lag: 100 }), m('db-2', 'R', { lag: 10 })]), pod('db-1'), pod('db-0'), O, (x) => x === 'db-1'), /^switchover db-0 -> db-1/],
    ['the leader: any-replica takes the most caught-up', () => decideTransition(view([m('db-0', 'L'), m('db-1', 'R', { lag: 100 }), m('db-2', 'R', { lag: 10 })]), pod('db-1'), pod('db-0'), { ...O, switchoverTo: 'any-replica' }, (x) => x === 'db-1'), /^switchover db-0 -> db-2 via \S+: switching over from db-0 to db-2, the most caught-up replica/],
    ['the leader first (RollingUpdate): no updated replica yet, says another switchover follows', () => decideTransition(view([m('db-2', 'L'), m('db-1', 'S'), m('db-0', 'R')]), null, pod('db-2'), O, none), /^switchover db-2 -> db-1 via \S+: .*no replica runs the update revision yet .* db-1's own restart will need another switchover/],
    ['the leader: sync mode allows only the synchronous standby, even if stale', () => decideTransition(three(), pod('db-2'), pod('db-0'), O, (x) => x === 'db-2'), /^switchover db-0 -> db-1/],
    ['the leader: every replica nofailover', () => decideTransition(three({ r1: { nofailover: true }, r2: { nofailover: true } }), null, pod('db-0'), O, none), /^hold: db-0 is the leader, and no replica can take over: db-1 is tagged nofailover \(or failover_priority 0\): Patroni never promotes it; db-2 is tagged nofailover/],
    ['the leader: the sync standby is nofailover', () => decideTransition(three({ r1: { nofailover: true } }), null, pod('db-0'), O, none), /no sync standby can take over \(synchronous mode: Patroni switches over only to it\): db-1 is tagged nofailover/],
    ['the leader: a lagging replica holds the switchover', () => decideTransition(three({ r2: { lag: 9e9 } }), null, pod('db-0'), O, none), /^hold: db-0 is the leader; before switching over, every replica must stream within max-lag: member db-2/],
    ['the leader alone: nothing to switch over to', () => decideTransition(view([m('db-0', 'L')]), null, pod('db-0'), O, none), /^approve: db-0 is the only member/],
    ['a pod whose member is gone (not Ready): replaced', () => decideTransition(view([m('db-0', 'L'), m('db-1', 'S')]), null, pod('db-2', false), O, none), /^approve: db-2 is not a member of the cluster \(pod not Ready\)/],
    ['a Ready pod with no member: the hook cannot find it', () => decideTransition(view([m('db-0', 'L'), m('db-1', 'S')]), null, pod('db-2'), O, none), /^hold: pod db-2 is Ready, but Patroni cluster pg has no member named db-2/],
    ['the end: every member streams', () => decideTransition(three(), pod('db-0'), null, O, none), /^approve: every member streams from the leader db-0/],
    ['the end: a lagging member holds', () => decideTransition(three({ r1: { lag: 9e9 } }), pod('db-2'), null, O, none), /^hold: waiting for every member to stream within max-lag: member db-1/],
  ];
  for (const [name, f, want] of rows) {
    it(name, () => {
      const got = show(f());
      if (want instanceof RegExp) expect(got).to.match(want);
      else expect(got).to.equal(want);
    });
  }

  it('a member coming back, replicas catching up and a switchover under way are routine holds; the rest may need someone', () => {
    const routine = (d: Decision): boolean => d.kind === 'hold' && d.routine === true;
    expect(routine(decideTransition(view([m('db-0', 'L'), m('db-1', 'S')]), pod('db-2'), pod('db-1'), O, none))).to.equal(true);
    expect(routine(decideTransition(three({ r2: { lag: 2 * 1024 * 1024 } }), pod('db-2'), pod('db-1'), O, none))).to.equal(true);
    expect(routine(decideTransition(three({ l: { self: ok('primary', { state: 'stopping' }) } }), null, pod('db-0'), O, none))).to.equal(true);
    expect(routine(decideTransition(view(three().members, true), null, pod('db-2'), O, none)), 'paused').to.equal(false);
    expect(routine(decideTransition(three({ r2: { nosync: true } }), null, pod('db-1'), O, none)), 'no sync standby left').to.equal(false);
  });

  it('orders replicas first, in the order given, and the leader last', () => {
    const r = decideOrder(view([m('db-0', 'R'), m('db-1', 'L'), m('db-2', 'S')]), ['db-2', 'db-1', 'db-0']);
    expect(r).to.deep.equal({ ok: true, order: { pods: ['db-2', 'db-0', 'db-1'], reason: 'replicas first (db-2, db-0); db-1 is the leader and goes last, after one switchover' } });
  });
  it('orders without the leader when its pod is already updated', () => {
    const r = decideOrder(view([m('db-0', 'R'), m('db-1', 'L'), m('db-2', 'S')]), ['db-2', 'db-0']);
    expect(r.ok && r.order.pods).to.deep.equal(['db-2', 'db-0']);
  });
  it('gives no order without a leader', () => {
    const r = decideOrder(view([m('db-0', 'R'), m('db-2', 'R')]), ['db-2', 'db-0']);
    expect(r.ok).to.equal(false);
  });
});

describe('patroni pilot probe', () => {
  let server: Server;
  let url = '';
  let answers: Record<string, [number, unknown]> = {};
  before(async () => {
    server = createServer((req, res) => {
      const a = answers[req.url ?? ''];
      if (!a) return void res.writeHead(404).end('no');
      res.writeHead(a[0], { 'content-type': 'application/json' }).end(typeof a[1] === 'string' ? a[1] : JSON.stringify(a[1]));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('PostgreSQL versions as PostgreSQL spells them', () => {
    expect(postgresVersion(150018)).to.equal('15.18');
    expect(postgresVersion(170002)).to.equal('17.2');
    expect(postgresVersion(90624)).to.equal('9.6.24');
  });

  it('reports a replica: role, state, timeline, version, system identifier, its lag from /cluster', async () => {
    answers = {
      '/patroni': [200, { state: 'running', role: 'replica', server_version: 150018, timeline: 3, database_system_identifier: SYS, patroni: { name: 'db-1', scope: 'pg' }, xlog: { paused: false } }],
      '/cluster': [200, { members: [{ name: 'db-0', role: 'leader', state: 'running' }, { name: 'db-1', role: 'sync_standby', state: 'streaming', lag: 12, replay_lag: 4096 }] }],
    };
    const s = await patroniProbe({ url }).probe(AbortSignal.timeout(5000));
    expect(s).to.deep.equal({ probe: 'patroni', role: 'replica', state: 'running', timeline: 3, version: '15.18', systemIdentifier: SYS, nodeName: 'db-1', clusterName: 'pg', lag: 4096 });
    expect(applicationReady(s)).to.deep.equal({ ok: true });
  });

  it('Patroni before 3.2 does not name the member in /patroni: the pod\'s name, when /cluster lists it', async () => {
    answers = {
      '/patroni': [200, { state: 'running', role: 'master', server_version: 150018, timeline: 1, database_system_identifier: SYS, patroni: { version: '3.0.3', scope: 'pg' }, xlog: { location: 5 } }],
      '/cluster': [200, { members: [{ name: 'db-0', role: 'leader', state: 'running' }, { name: 'db-1', role: 'replica', state: 'running', lag: 0 }] }],
    };
    const s = await patroniProbe({ url, member: 'db-0' }).probe(AbortSignal.timeout(5000));
    expect(s).to.include({ nodeName: 'db-0', clusterName: 'pg', role: 'master', lag: 0 });
    expect(applicationReady(s)).to.deep.equal({ ok: true });
    const unknown = await patroniProbe({ url, member: 'db-7' }).probe(AbortSignal.timeout(5000));
    expect(unknown.nodeName, 'a pod name /cluster does not list is not taken').to.equal(undefined);
    expect(applicationReady(unknown).ok).to.equal(false);
  });

  it('a member whose PostgreSQL is down (503) is not ready, and says why', async () => {
    answers = {
      '/patroni': [503, { state: 'stopped', role: 'replica', patroni: { name: 'db-1', scope: 'pg' } }],
      '/cluster': [200, { members: [] }],
    };
    const s = await patroniProbe({ url }).probe(AbortSignal.timeout(5000));
    expect(s.state).to.equal('stopped');
    expect(applicationReady(s)).to.deep.equal({ ok: false, reason: 'PostgreSQL of member db-1 is stopped' });
  });

  it('nonsense leaves the fields unknown, with the reason', async () => {
    answers = { '/patroni': [200, '{"role": 5}'], '/cluster': [500, 'boom'] };
    const s = await patroniProbe({ url }).probe(AbortSignal.timeout(5000));
    expect(s.role).to.equal(undefined);
    expect(s.error).to.match(/GET \/patroni answered unexpectedly/);
    expect(s.error).to.match(/GET \/cluster answered 500/);
    expect(applicationReady(s).ok).to.equal(false);
  });
});
