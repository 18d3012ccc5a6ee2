import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { identityFromPilots, identityFromView } from '../../hooks/patroni/identity.ts';
import { patroniHook } from '../../hooks/patroni/index.ts';
import { Options } from '../../hooks/patroni/options.ts';
import { clusterView, type MemberSelf } from '../../hooks/patroni/view.ts';
import { HookNotReady, type OrderContext, type RolloutHook } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import type { Pilot } from '../../lib/pilot/schema.ts';
import { loopbackEgress } from '../egress.ts';

// The patroni hook's part of the disruption budget (docs/patroni.md, "The
// disruption budget"): applicationCluster (the Patroni scope and the database
// system identifier) and podRejoined (the moved pod's member back in Patroni's
// terms), against a stand-in of Patroni's REST API: /cluster, and each
// member's own /patroni at its api_url.

const SYS = '7714727590757414429';
const OTHER = '7300000000000000001';
const MiB = 1024 * 1024;

describe('patroni hook: the application cluster is the scope and the system identifier', () => {
  const self = (systemId: string, scope = 'pg'): MemberSelf => ({ ok: true, state: 'running', role: 'replica', systemId, replayPaused: false, scope });
  const viewOf = (scope: string | undefined, systemId: string, standby = false) =>
    clusterView(
      { ...(scope ? { scope } : {}), members: [{ name: 'a', role: standby ? 'standby_leader' : 'leader', state: standby ? 'streaming' : 'running' }, { name: 'b', role: 'replica', state: 'streaming', lag: 0 }] },
      new Map([
        ['a', self(systemId, scope ?? 'pg')],
        ['b', self(systemId, scope ?? 'pg')],
      ]),
    );
  it('names scope and system', () => expect(identityFromView(viewOf('pg', SYS))).to.deep.equal({ id: `pg (system ${SYS})` }));
  it('two scopes of one name on two databases (two DCSs) are two clusters', () => {
    expect(identityFromView(viewOf('postgres', SYS))).to.not.deep.equal(identityFromView(viewOf('postgres', OTHER)));
  });
  it('a standby cluster and its source share the system identifier, not the scope: two clusters', () => {
    expect(identityFromView(viewOf('pg-standby', SYS, true))).to.deep.equal({ id: `pg-standby (system ${SYS})` });
    expect(identityFromView(viewOf('pg', SYS))).to.not.deep.equal(identityFromView(viewOf('pg-standby', SYS, true)));
  });
  it('the scope from a member\'s /patroni when /cluster has none (Patroni before 3.2)', () => expect(identityFromView(viewOf(undefined, SYS))).to.deep.equal({ id: `pg (system ${SYS})` }));
  it('no system identifier: cannot tell', () => {
    const v = clusterView({ scope: 'pg', members: [{ name: 'a', role: 'replica', state: 'stopped' }] }, new Map([['a', { ok: false, error: 'down' }]]));
    expect(identityFromView(v)).to.deep.equal({ reason: 'no member of Patroni cluster pg reports its database system identifier (members: a replica stopped)' });
  });
  it('from the Pilots: those that report agree, or the reason names the pods', () => {
    expect(identityFromPilots([])).to.equal(undefined);
    expect(identityFromPilots([{ pod: 'db-0' }])).to.equal(undefined);
    expect(identityFromPilots([{ pod: 'db-0', scope: 'pg', systemId: SYS }, { pod: 'db-1' }, { pod: 'db-2', scope: 'pg', systemId: SYS }])).to.deep.equal({ id: `pg (system ${SYS})` });
    expect(identityFromPilots([{ pod: 'db-0', scope: 'pg', systemId: SYS }, { pod: 'db-1', scope: 'pg', systemId: OTHER }])).to.deep.equal({
      reason: `the pods' Pilots name 2 Patroni clusters: db-0 in pg (system ${SYS}); db-1 in pg (system ${OTHER}); a StatefulSet's members must belong to one cluster`,
    });
  });
});

describe('patroni hook: applicationCluster and podRejoined against a stand-in REST API', () => {
  const hook = patroniHook as RolloutHook;
  let server: Server;
  let port = 0;
  /** /cluster's members; each member's /patroni is selves[name] at /<name>/patroni. */
  let cluster: { scope?: string; members: Record<string, unknown>[] } = { members: [] };
  let selves: Record<string, Record<string, unknown>> = {};
  before(async () => {
    server = createServer((req, res) => {
      const url = req.url ?? '';
      const body = url === '/cluster' ? cluster : /^\/[a-z0-9-]+\/patroni$/.test(url) ? selves[url.split('/')[1] as string] : undefined;
      if (!body) return void res.writeHead(404).end('no');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  const member = (name: string, role: string, state: string, extra: Record<string, unknown> = {}) => ({ name, role, state, api_url: `http://127.0.0.1:${port}/${name}/patroni`, ...(role.endsWith('leader') ? {} : { lag: 0 }), ...extra });
  const me = (name: string, o: { role?: string; version?: string; systemId?: string; scope?: string } = {}) => ({
    state: 'running',
    role: o.role ?? 'replica',
    database_system_identifier: o.systemId ?? SYS,
    patroni: { version: o.version ?? '4.1.5', scope: o.scope ?? 'pg', name },
    xlog: { received_location: 100, replayed_location: 100, paused: false },
  });
  /** A cluster of three: db-0 leads, each member's /patroni answering. */
  function three(o: { version?: string; scope?: boolean; r2?: Record<string, unknown>; self2?: Parameters<typeof me>[1] } = {}): void {
    const running = o.version && o.version < '3.0.4' ? 'running' : 'streaming';
    cluster = { ...(o.scope === false ? {} : { scope: 'pg' }), members: [member('db-0', 'leader', 'running'), member('db-1', 'replica', running), member('db-2', 'replica', running, o.r2)] };
    selves = { 'db-0': me('db-0', { role: 'primary', ...(o.version ? { version: o.version } : {}) }), 'db-1': me('db-1', o.version ? { version: o.version } : {}), 'db-2': me('db-2', { ...(o.version ? { version: o.version } : {}), ...o.self2 }) };
  }

  const sts: V1StatefulSet = { metadata: { name: 'db', namespace: 'ns', uid: 'sts-uid' }, spec: { replicas: 3, serviceName: 'db', selector: {}, template: {} } };
  const ctx = (options: Record<string, string>, pilots: Pilot[] = []): OrderContext<unknown> => ({
    statefulSet: sts,
    options: Options.parse({ port: String(port), timeout: '2', ...options }),
    signal: AbortSignal.timeout(10_000),
    log: createLogger({ level: 'silent' }),
    secrets: async () => ({}),
    egress: loopbackEgress,
    pilots: staticPilotReader(pilots),
  });
  const pod = (name: string): V1Pod => ({ metadata: { name, uid: `${name}-uid` }, status: { podIP: '127.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] } });
  const pilot = (name: string, app: Record<string, unknown>, heartbeat = new Date().toISOString()): Pilot =>
    ({ metadata: { name }, spec: { application: 'patroni' }, status: { phase: 'Running', heartbeatTime: heartbeat, application: { probe: 'patroni', ...app } } }) as Pilot;
  const outcome = async (p: Promise<unknown> | undefined): Promise<string> => {
    try {
      const v = await p;
      return typeof v === 'string' ? v : 'rejoined';
    } catch (err) {
      if (err instanceof HookNotReady) return `held: ${err.message}`;
      throw err;
    }
  };

  describe('applicationCluster', () => {
    it('through the url option: the scope from /cluster, the system identifier from the leader', async () => {
      three();
      expect(await outcome(hook.applicationCluster?.(ctx({ url: `http://127.0.0.1:${port}` })))).to.equal(`pg (system ${SYS})`);
    });
    it('Patroni 3.0.3, whose /cluster names no scope: the scope from /patroni', async () => {
      three({ version: '3.0.3', scope: false });
      expect(await outcome(hook.applicationCluster?.(ctx({ url: `http://127.0.0.1:${port}` })))).to.equal(`pg (system ${SYS})`);
    });
    it('without url: from the fresh Pilots of the pods, no request at all', async () => {
      cluster = { members: [] };
      const pilots = [pilot('db-0', { clusterName: 'pg', systemIdentifier: SYS }), pilot('db-1', { clusterName: 'pg', systemIdentifier: SYS }), pilot('db-2', { state: 'starting' })];
      expect(await outcome(hook.applicationCluster?.(ctx({}, pilots)))).to.equal(`pg (system ${SYS})`);
    });
    it('without url: Pilots that disagree hold, naming the pods', async () => {
      const pilots = [pilot('db-0', { clusterName: 'pg', systemIdentifier: SYS }), pilot('db-1', { clusterName: 'pg', systemIdentifier: OTHER })];
      expect(await outcome(hook.applicationCluster?.(ctx({}, pilots)))).to.match(/^held: the pods' Pilots name 2 Patroni clusters: db-0 in pg .*; db-1 in pg \(system 7300000000000000001\)/);
    });
    it('without url, a stale Pilot is not heard: the pods are asked by their DNS names', async () => {
      const stale = [pilot('db-0', { clusterName: 'pg', systemIdentifier: SYS }, new Date(Date.now() - 10 * 60_000).toISOString())];
      expect(await outcome(hook.applicationCluster?.(ctx({}, stale)))).to.match(/^held: no member answers \/cluster: .*http:\/\/db-0\.db\.ns\.svc:\d+\/cluster/);
    });
  });

  describe('podRejoined', () => {
    const rows: [string, () => void, string, string | RegExp][] = [
      ['a replica streaming within max-lag, on the leader\'s system', () => three(), 'db-2', 'rejoined'],
      ['running, on Patroni 3.0.3 (before 3.0.4 a streaming replica is reported running)', () => three({ version: '3.0.3' }), 'db-2', 'rejoined'],
      ['the leader (the leadership came back to it)', () => three(), 'db-0', 'rejoined'],
      ['not among the members yet', () => three({ r2: { name: 'db-9' } }), 'db-2', /^held: db-2 is not among the members of Patroni cluster pg/],
      ['running on Patroni 4.1.5: not replicating', () => three({ r2: { state: 'running' } }), 'db-2', /^held: db-2 is back in Patroni cluster pg, but member db-2 is running but not replicating/],
      ['starting', () => three({ r2: { state: 'starting', lag: 'unknown' } }), 'db-2', /^held: db-2 is back in Patroni cluster pg, but member db-2 is starting, not replicating/],
      ['beyond max-lag', () => three({ r2: { lag: 3 * MiB } }), 'db-2', /^held: db-2 is back in Patroni cluster pg, but member db-2 is 3.0 MiB behind the leader db-0 \(max-lag 1.0 MiB\)/],
      ['another database system (a new initdb)', () => three({ self2: { systemId: OTHER } }), 'db-2', /but member db-2 runs database system 7300000000000000001, the leader db-0 7714727590757414429/],
    ];
    for (const [name, setup, who, want] of rows) {
      it(name, async () => {
        setup();
        const got = await outcome(hook.podRejoined?.(pod(who), ctx({})));
        if (want instanceof RegExp) expect(got).to.match(want);
        else expect(got).to.equal(want);
      });
    }
  });
});
