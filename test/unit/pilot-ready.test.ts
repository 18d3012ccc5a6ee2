import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { pilotHold, pilotNotReady, pilotReadyHook } from '../../hooks/pilot-ready/index.ts';
import { type HookContext, HookNotReady, parseHookOptions } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import type { ApplicationStatus, Pilot, PilotStatus } from '../../lib/pilot/schema.ts';

const NOW = Date.parse('2026-11-02T10:00:00Z');
const ago = (s: number): string => new Date(NOW - s * 1000).toISOString();

const pod = (name: string, uid = `uid-${name}`): V1Pod => ({ metadata: { name, uid, labels: { 'controller-revision-hash': 'web-r2' } } });
const sts: V1StatefulSet = { metadata: { name: 'web', namespace: 'db' }, status: { replicas: 3, currentRevision: 'web-r1', updateRevision: 'web-r2' } };

const es = (o: Partial<ApplicationStatus> = {}): ApplicationStatus => ({
  probe: 'elasticsearch',
  nodeName: 'web-2',
  nodeId: 'n2',
  clusterUUID: 'u1',
  clusterName: 'logs',
  version: '8.19.21',
  health: 'green',
  ...o,
});

function pilot(name: string, status: Partial<PilotStatus> | undefined, ownerUid = `uid-${name}`): Pilot {
  return {
    metadata: { name, namespace: 'db', uid: `p-${name}`, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name, uid: ownerUid, controller: true }] },
    spec: { application: 'pilot-ready' },
    ...(status ? { status: { phase: 'Running', revision: 'web-r2', heartbeatTime: ago(5), application: es(), ...status } } : {}),
  };
}

const check = (pilots: Pilot[], prev = pod('web-2'), maxAgeMs = 60_000): string | undefined =>
  pilotNotReady(prev, sts, staticPilotReader(pilots, () => NOW), maxAgeMs, NOW);

describe('pilot-ready hook', () => {
  it('approves when the Pilot of the pod updated last is fresh, at the update revision, Running and healthy', () => {
    expect(check([pilot('web-2', {})])).to.equal(undefined);
    expect(check([pilot('web-2', { application: es({ health: 'yellow' }) })])).to.equal(undefined);
  });

  it('approves an application without a probe on phase Running alone', () => {
    expect(check([pilot('web-2', { application: { probe: 'none' } })])).to.equal(undefined);
  });

  const holds: [string, Pilot[], RegExp, number?][] = [
    ['no Pilot', [], /pod web-2 has no Pilot yet/],
    ['a Pilot of an earlier pod of the same name', [pilot('web-2', {}, 'uid-old')], /belongs to an earlier pod of that name \(uid uid-old\)/],
    ['a Pilot with no status', [pilot('web-2', undefined)], /reports no status/],
    ['a stale heartbeat', [pilot('web-2', { heartbeatTime: ago(61) })], /is stale: last heartbeat 61s ago, max age 60s/],
    ['a heartbeat far in the future (clock skew)', [pilot('web-2', { heartbeatTime: ago(-120) })], /is stale/],
    ['the old revision', [pilot('web-2', { revision: 'web-r1' })], /reports revision web-r1, not the update revision web-r2/],
    ['an unknown revision', [pilot('web-2', { revision: undefined })], /reports revision unknown/],
    ['a pilot still in PreStart', [pilot('web-2', { phase: 'PreStart', message: 'running the pre-start hook' })], /is PreStart, not Running: running the pre-start hook/],
    ['no application block (the probe has not reported)', [pilot('web-2', { application: undefined })], /no application status reported/],
    ['a red cluster', [pilot('web-2', { application: es({ health: 'red' }) })], /web-2: cluster logs is red/],
    ['an unknown cluster health', [pilot('web-2', { application: es({ health: undefined, error: 'GET /_cluster/health answered 503' }) })], /cluster health of web-2 is unknown: GET \/_cluster\/health answered 503/],
    ['a node that has not joined a cluster', [pilot('web-2', { application: es({ clusterUUID: undefined }) })], /has not joined a cluster \(no clusterUUID\)/],
    ['a node that does not answer', [pilot('web-2', { application: { probe: 'elasticsearch', error: 'connect ECONNREFUSED 127.0.0.1:9200' } })], /does not report itself: connect ECONNREFUSED/],
  ];
  for (const [what, pilots, reason] of holds) {
    it(`holds on ${what}, saying why`, () => {
      expect(check(pilots)).to.match(reason);
    });
  }

  it('a pod on its way up is a routine hold (a Normal Event); a stale, silent or failed Pilot needs someone', () => {
    const routine = (pilots: Pilot[]): boolean | undefined => pilotHold(pod('web-2'), sts, staticPilotReader(pilots, () => NOW), 60_000, NOW)?.routine;
    expect(routine([])).to.equal(true);
    expect(routine([pilot('web-2', { revision: 'web-r1' })])).to.equal(true);
    expect(routine([pilot('web-2', { phase: 'PreStart' })])).to.equal(true);
    expect(routine([pilot('web-2', { heartbeatTime: ago(61) })])).to.equal(false);
    expect(routine([pilot('web-2', undefined)])).to.equal(false);
    expect(routine([pilot('web-2', { phase: 'Failed' })])).to.equal(false);
    expect(routine([pilot('web-2', { application: es({ health: 'red' }) })])).to.equal(false);
  });

  it('reads the Pilot of prev, not of any other pod', () => {
    expect(check([pilot('web-1', {})])).to.match(/pod web-2 has no Pilot/);
  });

  it('parses max-age from its annotation, 60 s by default', () => {
    expect(parseHookOptions(pilotReadyHook, {})).to.deep.equal({ ok: true, options: { 'max-age': 60 } });
    expect(parseHookOptions(pilotReadyHook, { 'pilot-ready.sts-pilot.io/max-age': '15' })).to.deep.equal({ ok: true, options: { 'max-age': 15 } });
    const bad = parseHookOptions(pilotReadyHook, { 'pilot-ready.sts-pilot.io/max-age': 'soon' });
    expect(!bad.ok && bad.error).to.match(/pilot-ready\.sts-pilot\.io\/max-age/);
  });

  describe('as a hook', () => {
    // Cast: compiles whether or not HookContext declares `pilots` yet, and lets one test leave it out.
    const ctx = (pilots: Pilot[] | undefined, maxAge = 60) =>
      ({
        statefulSet: sts,
        options: { 'max-age': maxAge },
        signal: new AbortController().signal,
        log: createLogger({ level: 'silent' }),
        secrets: async () => ({}),
        ...(pilots ? { pilots: staticPilotReader(pilots) } : {}),
      }) as unknown as HookContext<unknown>;

    it('approves at the start, when no pod has been updated yet', async () => {
      await pilotReadyHook.podUpdateTransition(null, pod('web-2'), ctx([]));
    });

    it('throws HookNotReady with the reason, and approves once the Pilot turns healthy', async () => {
      const fresh = (s: Partial<PilotStatus>) => pilot('web-2', { heartbeatTime: new Date().toISOString(), ...s });
      const err = await pilotReadyHook.podUpdateTransition(pod('web-2'), pod('web-1'), ctx([fresh({ application: es({ health: 'red' }) })])).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(HookNotReady);
      expect((err as Error).message).to.match(/red/);
      await pilotReadyHook.podUpdateTransition(pod('web-2'), pod('web-1'), ctx([fresh({})]));
      // The final call (next = null) checks pod 0 the same way.
      await pilotReadyHook.podUpdateTransition(pod('web-2'), null, ctx([fresh({})]));
    });

    it('holds when the controller gives it no Pilot reader', async () => {
      const err = await pilotReadyHook.podUpdateTransition(pod('web-2'), pod('web-1'), ctx(undefined)).catch((e: unknown) => e);
      expect((err as Error).message).to.match(/no Pilot reader/);
    });
  });
});
