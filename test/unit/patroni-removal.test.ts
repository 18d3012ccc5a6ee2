import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Decision, PodRef } from '../../hooks/patroni/decide.ts';
import { patroniHook } from '../../hooks/patroni/index.ts';
import { Options } from '../../hooks/patroni/options.ts';
import { decideRemoval, decideRemoved, leavingPods, podIndex, type RemovalFacts } from '../../hooks/patroni/removal.ts';
import { type ClusterView, configOf, type DcsConfig, type MemberSelf, type MemberView } from '../../hooks/patroni/view.ts';
import { HookNotReady, type RemovalContext, type RolloutHook } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { loopbackEgress } from '../egress.ts';

// The patroni hook's scale-down decisions (hooks/patroni/removal.ts), as a
// table; then podRemoval/podRemoved themselves against a stand-in REST API for
// the glue (seeds, /config, the remembered addresses of a pod that is gone).
// The real thing: test/integration/patroni-scale-down.test.ts.

const SYS = '7714727590757414429';
const ok = (role: string): MemberSelf => ({ ok: true, state: 'running', role, systemId: SYS, replayPaused: false });

/** 'L' leader, 'R' streaming replica, 'S' sync standby, 'Q' quorum standby; lag in bytes. */
function m(name: string, kind: 'L' | 'R' | 'S' | 'Q', o: Partial<MemberView> = {}): MemberView {
  const leader = kind === 'L';
  return {
    name,
    role: leader ? 'leader' : kind === 'S' ? 'sync_standby' : kind === 'Q' ? 'quorum_standby' : 'replica',
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
const strict = (on: boolean): DcsConfig => ({ ok: true, synchronousMode: 'on', strict: on, ttlSeconds: 20 });
const view = (members: MemberView[], o: { paused?: boolean; config?: DcsConfig } = {}): ClusterView => ({
  scope: 'pg',
  paused: o.paused ?? false,
  members,
  config: o.config ?? strict(false),
});
const pod = (name: string, ready = true): PodRef => ({ pod: name, ready });
/** 3 -> 2: db-2 leaves. */
const F: RemovalFacts = { leaving: ['db-2'], requested: 2, maxLag: 1024 * 1024 };
/** 3 -> 1: db-2 leaves now, db-1 next. */
const F1: RemovalFacts = { leaving: ['db-2', 'db-1'], requested: 1, maxLag: 1024 * 1024 };

function show(d: Decision): string {
  if (d.kind === 'approve') return `approve: ${d.note}`;
  if (d.kind === 'hold') return `hold: ${d.reason}`;
  return `switchover ${d.leader} -> ${d.candidate} via ${d.leaderUrl}: ${d.note}`;
}

describe('patroni hook: scale-down decisions', () => {
  const three = (o: { l?: Partial<MemberView>; r1?: Partial<MemberView>; r2?: Partial<MemberView> } = {}, c?: DcsConfig) =>
    view([m('db-0', 'L', o.l), m('db-1', 'S', o.r1), m('db-2', 'R', o.r2)], c ? { config: c } : {});
  /** The leader on the highest ordinal, the one that leaves. */
  const leaderLast = (o: { r0?: Partial<MemberView>; r1?: Partial<MemberView> } = {}) => view([m('db-0', 'R', o.r0), m('db-1', 'S', o.r1), m('db-2', 'L')]);
  const rows: [string, () => Decision, RegExp][] = [
    ['a replica leaves while the others stream', () => decideRemoval(three(), pod('db-2'), F), /^approve: db-2 is a replica \(streaming\); the leader db-0 and the members that stay stream within max-lag/],
    ['a pod whose member is gone (not Ready): approved, and the note says why', () => decideRemoval(view([m('db-0', 'L'), m('db-1', 'S')]), pod('db-2', false), F), /^approve: db-2 is not a member of Patroni cluster pg \(already gone; its pod is not Ready\)/],
    ['a Ready pod with no member: the hook cannot find it', () => decideRemoval(view([m('db-0', 'L'), m('db-1', 'S')]), pod('db-2'), F), /^hold: pod db-2 is Ready, but Patroni cluster pg has no member named db-2/],
    ['not a member: approved even while the cluster has no leader (nothing is taken away)', () => decideRemoval(view([m('db-1', 'R')]), pod('db-2', false), F), /^approve: db-2 is not a member/],
    ['maintenance mode holds, naming the scale-down', () => decideRemoval(view(three().members, { paused: true }), pod('db-2'), F), /^hold: Patroni cluster pg is paused \(maintenance mode\).* for the scale-down to go on/],
    ['no leader: a failover is in progress', () => decideRemoval(view([m('db-1', 'R'), m('db-2', 'R')]), pod('db-2'), F), /^hold: Patroni cluster pg has no leader/],
    ['a member that stays lags', () => decideRemoval(three({ r1: { lag: 5 * 1024 * 1024 } }), pod('db-2'), F), /^hold: before db-2 leaves \(scale-down to 2\), the members that stay must stream within max-lag: member db-1 is 5.0 MiB behind the leader db-0 \(max-lag 1.0 MiB\)/],
    ['a member that stays does not answer', () => decideRemoval(three({ r1: { self: { ok: false, error: 'timeout' } } }), pod('db-2'), F), /^hold: before db-2 leaves .*member db-1 does not answer: timeout/],
    ['the leaving member itself may lag or be down', () => decideRemoval(three({ r2: { lag: 9e9, state: 'stopped' } }), pod('db-2'), F), /^approve: db-2 is a replica \(stopped\)/],
    ['the leader leaves: a switchover to the synchronous standby that stays', () => decideRemoval(leaderLast(), pod('db-2'), F), /^switchover db-2 -> db-1 via http:\/\/10.0.0.2:8008\/patroni: switching over from db-2 to db-1, the sync standby that stays, before db-2's pod leaves for good \(scale-down to 2\)/],
    [
      'the leader leaves, no synchronous mode: the most caught-up replica that stays, never one that leaves next',
      () => decideRemoval(view([m('db-0', 'R', { lag: 100 }), m('db-1', 'R', { lag: 0 }), m('db-2', 'L')]), pod('db-2'), F1),
      /^switchover db-2 -> db-0 via \S+: switching over from db-2 to db-0, the most caught-up replica that stays/,
    ],
    [
      'the leader leaves, and the synchronous standby leaves next: hold, the way out named',
      () => decideRemoval(leaderLast(), pod('db-2'), F1),
      /^hold: db-2 is the leader and leaves \(scale-down to 1\); in synchronous mode Patroni switches over only to the sync standby \(db-1\), which leaves too: lower the request one pod at a time \(sts-pilot.io\/requested-replicas: 2\)/,
    ],
    [
      'the leader leaves, but is demoting already (a switchover asked for in a cancelled call): hold, never a second switchover',
      () => decideRemoval(view([m('db-0', 'R'), m('db-1', 'S'), m('db-2', 'L', { self: { ...ok('primary'), state: 'stopping' } as MemberSelf })]), pod('db-2', false), F),
      /^hold: the leader db-2 says its PostgreSQL is stopping: a switchover, failover or restart is in progress/,
    ],
    ['the leader leaves: a lagging replica holds the switchover', () => decideRemoval(leaderLast({ r0: { lag: 9e9 } }), pod('db-2'), F), /^hold: db-2 is the leader and leaves \(scale-down to 2\); before switching over, every replica must stream within max-lag: member db-0/],
    ['the leader leaves: the synchronous standby that stays is nofailover', () => decideRemoval(leaderLast({ r1: { nofailover: true } }), pod('db-2'), F), /^hold: db-2 is the leader and leaves \(scale-down to 2\), and no sync standby that stays can take over \(synchronous mode; .*\): db-1 is tagged nofailover/],
    ['the leader leaves: every replica that stays is nofailover', () => decideRemoval(leaderLast({ r0: { nofailover: true }, r1: { nofailover: true } }), pod('db-2'), F), /no replica that stays can take over: db-0 is tagged nofailover .*; db-1 is tagged nofailover/],
    ['the leader alone', () => decideRemoval(view([m('db-2', 'L')]), pod('db-2'), F), /^hold: db-2 is the only member of Patroni cluster pg/],
    ['the leader leaves, and so does every other member', () => decideRemoval(view([m('db-1', 'S'), m('db-2', 'L')]), pod('db-2'), { leaving: ['db-2', 'db-1'], requested: 1, maxLag: 1 << 20 }), /every other member leaves too/],
    ['after the switchover: the old leader is a replica, and leaves', () => decideRemoval(view([m('db-0', 'R'), m('db-1', 'L'), m('db-2', 'R', { state: 'starting', lag: undefined })]), pod('db-2'), F), /^approve: db-2 is a replica \(starting\); the leader db-1/],
    ['the sync standby leaves, another replica can take its place', () => decideRemoval(view([m('db-0', 'L'), m('db-1', 'R'), m('db-2', 'S')], { config: strict(true) }), pod('db-2'), F), /^approve: db-2 is a sync_standby/],
    [
      'the sync standby leaves, strict mode, nobody can take its place: commits would block',
      () => decideRemoval(view([m('db-0', 'L'), m('db-1', 'S')], { config: strict(true) }), pod('db-1'), { leaving: ['db-1'], requested: 1, maxLag: 1 << 20 }),
      /^hold: db-1 is the synchronous standby, synchronous_mode_strict is on, and no other member could take its place .*every commit would block.*synchronous_mode_strict=false/,
    ],
    [
      'the sync standby leaves, strict mode, the only other replica is nosync',
      () => decideRemoval(view([m('db-0', 'L'), m('db-1', 'R', { nosync: true }), m('db-2', 'S')], { config: strict(true) }), pod('db-2'), F),
      /^hold: db-2 is the synchronous standby, synchronous_mode_strict is on/,
    ],
    [
      'the sync standby leaves, strict mode off: asynchronous from then on, approved',
      () => decideRemoval(view([m('db-0', 'L'), m('db-1', 'S')], { config: strict(false) }), pod('db-1'), { leaving: ['db-1'], requested: 1, maxLag: 1 << 20 }),
      /^approve: db-1 is the synchronous standby and no other member can take its place: Patroni goes on with asynchronous replication/,
    ],
    [
      'the sync standby leaves, /config unreadable: hold, the strict setting is unknown',
      () => decideRemoval(view([m('db-0', 'L'), m('db-1', 'S')], { config: { ok: false, error: 'Patroni at http://x/config answered 502' } }), pod('db-1'), { leaving: ['db-1'], requested: 1, maxLag: 1 << 20 }),
      /^hold: db-1 is the synchronous standby .* whether synchronous_mode_strict is on is unknown: Patroni at http:\/\/x\/config answered 502/,
    ],
    [
      'a quorum standby under strict mode, alone: held the same way',
      () => decideRemoval(view([m('db-0', 'L'), m('db-1', 'Q')], { config: { ok: true, synchronousMode: 'quorum', strict: true, ttlSeconds: 30 } }), pod('db-1'), { leaving: ['db-1'], requested: 1, maxLag: 1 << 20 }),
      /^hold: db-1 is the synchronous standby, synchronous_mode_strict is on/,
    ],
    ['removed: the member is gone from /cluster', () => decideRemoved(view([m('db-0', 'L'), m('db-1', 'S')]), 'db-2', false), /^approve: member db-2 is gone from Patroni cluster pg \(2 left: db-0, db-1\)/],
    [
      'removed: /cluster still lists it, stopped: wait for its key to expire',
      () => decideRemoved(three({ r2: { state: 'stopped' } }), 'db-2', false),
      /^hold: waiting for member db-2 to leave Patroni cluster pg: its pod is gone, but \/cluster still lists it \(stopped\); the DCS drops a member's key when its ttl \(20 s\) expires after its last update$/,
    ],
    ['removed: listed as streaming: maybe still running somewhere', () => decideRemoved(three(), 'db-2', false), /\(streaming\).*; if db-2's Patroni still runs somewhere, stop it$/],
    ['removed: without /config, the ttl is named all the same', () => decideRemoved(view(three().members, { config: { ok: false, error: 'x' } }), 'db-2', false), /ttl \(Patroni's ttl\)/],
    ['removed, but scaled back up meanwhile: its member is its successor', () => decideRemoved(three(), 'db-2', true), /^approve: db-2 is in the StatefulSet again/],
  ];
  for (const [name, f, want] of rows) it(name, () => expect(show(f())).to.match(want));

  it('the pods a scale-down removes, highest first, from spec.ordinals.start', () => {
    expect(leavingPods({ name: 'db', replicas: 5, start: 0 }, 3)).to.deep.equal(['db-4', 'db-3']);
    expect(leavingPods({ name: 'db', replicas: 3, start: 10 }, 2)).to.deep.equal(['db-12']);
    expect(leavingPods({ name: 'db', replicas: 3, start: 0 }, 3)).to.deep.equal([]);
  });
  it('a pod index from its name', () => {
    expect(podIndex({ name: 'db', start: 0 }, 'db-2')).to.equal(2);
    expect(podIndex({ name: 'db', start: 10 }, 'db-12')).to.equal(2);
    expect(podIndex({ name: 'db', start: 10 }, 'db-9')).to.equal(undefined);
    expect(podIndex({ name: 'db', start: 0 }, 'db-02')).to.equal(undefined);
    expect(podIndex({ name: 'db', start: 0 }, 'dbx-1')).to.equal(undefined);
    expect(podIndex({ name: 'db', start: 0 }, 'db-x')).to.equal(undefined);
  });
  it('reads /config as Patroni parses it: lenient booleans, quorum, ttl default 30', () => {
    expect(configOf({})).to.deep.equal({ ok: true, synchronousMode: 'off', strict: false, ttlSeconds: 30 });
    expect(configOf({ synchronous_mode: 'on', synchronous_mode_strict: 'YES', ttl: '20' })).to.deep.equal({ ok: true, synchronousMode: 'on', strict: true, ttlSeconds: 20 });
    expect(configOf({ synchronous_mode: 'quorum', synchronous_mode_strict: false, ttl: 45 })).to.deep.equal({ ok: true, synchronousMode: 'quorum', strict: false, ttlSeconds: 45 });
    expect(configOf({ synchronous_mode: true, synchronous_mode_strict: 0 })).to.include({ synchronousMode: 'on', strict: false });
  });
});

describe('patroni hook: podRemoval and podRemoved against a stand-in REST API', () => {
  const hook = patroniHook as RolloutHook;
  let server: Server;
  let port = 0;
  let cluster: { members: Record<string, unknown>[] } = { members: [] };
  const requests: string[] = [];
  before(async () => {
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const self = { state: 'running', role: 'replica', database_system_identifier: SYS };
      const body = req.url === '/cluster' ? { scope: 'pg', ...cluster } : req.url === '/config' ? { ttl: 20, synchronous_mode: true } : req.url === '/patroni' ? self : undefined;
      if (!body) return void res.writeHead(404).end('no');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  const member = (name: string, role: string, state: string) => ({ name, role, state, lag: 0, api_url: `http://127.0.0.1:${port}/patroni` });
  const sts: V1StatefulSet = { metadata: { name: 'db', namespace: 'ns', uid: 'sts-uid-1' }, spec: { replicas: 3, serviceName: 'db', selector: {}, template: {} } };
  const ctx = (replicas: number): RemovalContext<unknown> => {
    const parsed = Options.parse({ port: String(port), timeout: '2' });
    return {
      statefulSet: { ...sts, spec: { ...sts.spec, replicas } as V1StatefulSet['spec'] },
      options: parsed,
      signal: AbortSignal.timeout(10_000),
      log: createLogger({ level: 'silent' }),
      secrets: async () => ({}),
      egress: loopbackEgress,
      pilots: staticPilotReader([]),
      podReady: true,
      volumes: 'kept',
      requestedReplicas: 2,
    };
  };
  const leaving: V1Pod = { metadata: { name: 'db-2', uid: 'p2' }, status: { podIP: '127.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] } };
  /** What the controller gives podRemoved once the pod is gone: its name and uid, no address. */
  const gone: V1Pod = { metadata: { name: 'db-2', uid: 'p2' } };
  const outcome = async (p: Promise<void> | undefined): Promise<string> => {
    try {
      await p;
      return 'approved';
    } catch (err) {
      if (err instanceof HookNotReady) return `held: ${err.message}`;
      throw err;
    }
  };

  it('approves a replica that leaves, reading /config too', async () => {
    cluster = { members: [member('db-0', 'leader', 'running'), member('db-1', 'sync_standby', 'streaming'), member('db-2', 'replica', 'streaming')] };
    requests.length = 0;
    expect(await outcome(hook.podRemoval?.(leaving, ctx(3)))).to.equal('approved');
    expect(requests).to.include.members(['GET /cluster', 'GET /config']);
  });

  it('once the pod is gone, finds the cluster through the members it read before, and waits for the key to expire', async () => {
    cluster = { members: [member('db-0', 'leader', 'running'), member('db-1', 'sync_standby', 'streaming'), member('db-2', 'replica', 'stopped')] };
    expect(await outcome(hook.podRemoved?.(gone, 'removed', ctx(2)))).to.match(/^held: waiting for member db-2 to leave Patroni cluster pg: .*\(stopped\); .*ttl \(20 s\)/);
    cluster = { members: [member('db-0', 'leader', 'running'), member('db-1', 'sync_standby', 'streaming')] };
    expect(await outcome(hook.podRemoved?.(gone, 'removed', ctx(2)))).to.equal('approved');
  });

  it('a withdrawn removal has nothing to undo: no request at all', async () => {
    requests.length = 0;
    expect(await outcome(hook.podRemoved?.(leaving, 'withdrawn', ctx(3)))).to.equal('approved');
    expect(requests).to.deep.equal([]);
  });
});
