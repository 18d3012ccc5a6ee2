import { expect } from 'chai';
import { actionCommands, adoptStatuses, nextAction, outputTail, requestPatch, requestState, withStatus } from '../../lib/pilot/actions.ts';
import { pilotCrd } from '../../lib/pilot/crd.ts';
import { MAX_ACTIONS, parsePilot, Pilot, PilotActionRequest, type PilotActionStatus, PilotSpec, PilotStatus } from '../../lib/pilot/schema.ts';
import { desiredStatus, significant } from '../../lib/pilot/status.ts';

// The request channel from the controller to a pod's pilot (docs/pilot.md,
// "Requests"): its schema, what the pilot runs and when, and the controller's patch.

const req = (id: string, action = 'decommission'): PilotActionRequest => ({ id, action, requestTime: '2026-12-07T18:00:00Z' });
const st = (id: string, state: PilotActionStatus['state'], action = 'decommission'): PilotActionStatus => ({ id, action, state, startTime: '2026-12-07T18:00:01Z' });
const commands = { decommission: 'nodetool decommission' };

const pilot = (spec: Record<string, unknown> = {}, status?: unknown): Pilot =>
  Pilot.parse({
    metadata: { name: 'cass-0', namespace: 'db', uid: 'p-1', resourceVersion: '42' },
    spec: { application: 'cassandra', ...spec },
    ...(status ? { status } : {}),
  });

describe('Pilot requests (spec.actions, status.actions)', () => {
  describe('schema', () => {
    it('takes a request with an id and an action name, and a status per request', () => {
      expect(PilotSpec.safeParse({ application: 'cassandra', actions: [req('decommission-1')] }).success).to.equal(true);
      const s = PilotStatus.safeParse({ phase: 'Running', heartbeatTime: '2026-12-07T18:00:00Z', actions: [{ ...st('decommission-1', 'Failed'), exitCode: 2, output: 'error: ...', endTime: '2026-12-07T18:00:09Z' }] });
      expect(s.success, s.success ? '' : s.error.message).to.equal(true);
    });
    for (const [what, r] of [
      ['an id with capitals', { id: 'Decommission', action: 'decommission' }],
      ['an empty id', { id: '', action: 'decommission' }],
      ['an action with a space (no shell words)', { id: 'a', action: 'rm -rf' }],
      ['an action name of a command line', { id: 'a', action: 'nodetool;decommission' }],
    ] as const) {
      it(`refuses ${what}`, () => expect(PilotActionRequest.safeParse(r).success).to.equal(false));
    }
    it(`keeps at most ${MAX_ACTIONS} requests`, () => {
      const many = Array.from({ length: MAX_ACTIONS + 1 }, (_, i) => req(`r-${i}`));
      expect(PilotSpec.safeParse({ application: 'x', actions: many }).success).to.equal(false);
    });
    it('the CRD keys both lists by id (the server refuses two requests of one id) and bounds them', () => {
      const v = pilotCrd().spec.versions[0] as unknown as { schema: { openAPIV3Schema: { properties: Record<string, { properties: Record<string, Record<string, unknown>> }> } } };
      const spec = v.schema.openAPIV3Schema.properties.spec?.properties.actions;
      const status = v.schema.openAPIV3Schema.properties.status?.properties.actions;
      for (const l of [spec, status]) expect(l).to.deep.include({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['id'], maxItems: MAX_ACTIONS });
    });
    it('a status of an unknown state does not parse: the status is dropped, the Pilot kept (readers hold)', () => {
      const raw = { metadata: { name: 'cass-0' }, spec: { application: 'cassandra' }, status: { phase: 'Running', heartbeatTime: '2026-12-07T18:00:00Z', actions: [{ id: 'a', action: 'b', state: 'Maybe' }] } };
      const r = parsePilot(raw);
      expect('pilot' in r && r.pilot.status).to.equal(undefined);
    });
  });

  describe('the pilot: which request to run, once', () => {
    it('runs the first request its status does not list yet', () => {
      expect(nextAction([req('decommission-1')], [], commands)).to.deep.equal({ kind: 'run', request: req('decommission-1'), command: 'nodetool decommission' });
      expect(nextAction([req('a'), req('b')], [st('a', 'Succeeded')], commands)).to.deep.include({ kind: 'run', request: req('b') });
    });
    it('never runs a request its status lists, whatever the state (at most once)', () => {
      for (const state of ['Succeeded', 'Failed', 'Refused'] as const) expect(nextAction([req('a')], [st('a', state)], commands).kind, state).to.equal('none');
    });
    it('runs one at a time: nothing new while one runs', () => {
      expect(nextAction([req('a'), req('b')], [st('a', 'Running')], commands)).to.deep.equal({ kind: 'none', why: 'decommission (a) is running' });
    });
    it('refuses an action it has no command for, naming the ones it has; never guesses', () => {
      const r = nextAction([req('x', 'drop-everything')], [], commands);
      expect(r).to.deep.include({ kind: 'refuse' });
      expect(r.kind === 'refuse' && r.message).to.equal('this pilot has no command for the action drop-everything (it knows decommission): not run');
      expect(nextAction([req('x', 'decommission')], [], {}).kind).to.equal('refuse');
      // Not an own property: no prototype lookup.
      expect(nextAction([req('x', 'constructor')], [], commands).kind).to.equal('refuse');
    });
    it('without requests, or none new, does nothing', () => {
      expect(nextAction(undefined, [], commands).kind).to.equal('none');
      expect(nextAction([], [], commands).kind).to.equal('none');
    });
    it('after a restart a request found Running is Failed (interrupted) and not run again', () => {
      const now = new Date('2026-12-07T18:05:00Z');
      const adopted = adoptStatuses([st('a', 'Running'), st('b', 'Succeeded')], now);
      expect(adopted[0]).to.deep.include({ id: 'a', state: 'Failed', endTime: '2026-12-07T18:05:00.000Z' });
      expect(adopted[0]?.message).to.match(/^interrupted: the pilot restarted while it ran; not run again/);
      expect(adopted[1]).to.deep.equal(st('b', 'Succeeded'));
      expect(nextAction([req('a'), req('b')], adopted, commands).kind).to.equal('none');
      expect(adoptStatuses(undefined, now)).to.deep.equal([]);
    });
    it('keeps the newest statuses, one per id', () => {
      let s: PilotActionStatus[] = [];
      for (let i = 0; i < MAX_ACTIONS + 3; i++) s = withStatus(s, st(`r-${i}`, 'Succeeded'));
      s = withStatus(s, st(`r-${MAX_ACTIONS + 2}`, 'Failed'));
      expect(s).to.have.length(MAX_ACTIONS);
      expect(s[0]?.id).to.equal('r-3');
      expect(s.at(-1)).to.deep.include({ id: `r-${MAX_ACTIONS + 2}`, state: 'Failed' });
    });
    it('reports the last lines of the output, bounded', () => {
      const text = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n') + '\n\n';
      expect(outputTail(text, 3)).to.equal('line 47\nline 48\nline 49');
      expect(outputTail('x'.repeat(10_000)).length).to.equal(4000);
    });
    it('a request status change is significant: it is written at once, and wakes the controller', () => {
      const base = { phase: 'Running' as const, revision: 'r', application: { probe: 'none' }, exitCode: undefined, message: 'm' };
      const a = desiredStatus({ ...base, actions: [st('a', 'Running')] });
      const b = desiredStatus({ ...base, actions: [{ ...st('a', 'Succeeded'), exitCode: 0 }] });
      expect(significant(a)).to.not.equal(significant(b));
      expect(desiredStatus({ ...base, actions: [] })).to.not.have.property('actions');
    });
  });

  describe('the flag: --action name=command over the application defaults', () => {
    it('cassandra decommissions with nodetool by default; a flag overrides or adds', () => {
      expect(actionCommands('cassandra', [])).to.deep.equal({ ok: true, commands: { decommission: 'nodetool decommission' } });
      expect(actionCommands('cassandra', ['decommission=nodetool -h 10.0.0.3 -p 7199 decommission'])).to.deep.equal({ ok: true, commands: { decommission: 'nodetool -h 10.0.0.3 -p 7199 decommission' } });
      expect(actionCommands('none', [])).to.deep.equal({ ok: true, commands: {} });
      expect(actionCommands('none', ['say=echo a=b'])).to.deep.equal({ ok: true, commands: { say: 'echo a=b' } });
    });
    it('refuses a flag without a command or with a bad name, saying how to write it', () => {
      expect(actionCommands('none', ['decommission'])).to.deep.include({ ok: false });
      expect((actionCommands('none', ['decommission=']) as { error: string }).error).to.match(/name=command/);
      expect((actionCommands('none', ['Bad Name=x']) as { error: string }).error).to.match(/lower-case word/);
    });
  });

  describe('the controller: the patch that appends a request', () => {
    it('appends to the list, guarded by the Pilot uid', () => {
      expect(requestPatch(pilot({ actions: [req('a')] }), req('b'))).to.deep.equal([
        { op: 'test', path: '/metadata/uid', value: 'p-1' },
        { op: 'add', path: '/spec/actions/-', value: req('b') },
      ]);
    });
    it('sets the first request as the whole list only on the version read (a list the cache has not shown is never replaced)', () => {
      expect(requestPatch(pilot(), req('a'))).to.deep.equal([
        { op: 'test', path: '/metadata/uid', value: 'p-1' },
        { op: 'test', path: '/metadata/resourceVersion', value: '42' },
        { op: 'add', path: '/spec/actions', value: [req('a')] },
      ]);
    });
    it('reads a request and its status by id', () => {
      const p = pilot({ actions: [req('a')] }, { phase: 'Running', heartbeatTime: '2026-12-07T18:00:00Z', actions: [st('a', 'Running')] });
      expect(requestState(p, 'a')).to.deep.equal({ request: req('a'), status: st('a', 'Running') });
      expect(requestState(p, 'b')).to.deep.equal({ request: undefined, status: undefined });
      expect(requestState(undefined, 'a')).to.deep.equal({ request: undefined, status: undefined });
    });
  });
});
