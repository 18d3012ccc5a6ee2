import { expect } from 'chai';
import type { ApplicationStatus, PilotStatus } from '../../lib/pilot/schema.ts';
import { decideWrite, desiredStatus, type PilotState, significant, stampConditions, stampStatus } from '../../lib/pilot/status.ts';
import { applicationHealthy, applicationReady } from '../../lib/probes/verdict.ts';

const es = (o: Partial<ApplicationStatus> = {}): ApplicationStatus => ({
  probe: 'elasticsearch',
  version: '8.19.21',
  nodeName: 'es-0',
  nodeId: 'n0',
  clusterName: 'logs',
  clusterUUID: 'u1',
  health: 'green',
  shards: { started: 3, relocating: 0, initializing: 0 },
  documents: 100,
  ...o,
});

const state = (o: Partial<PilotState> = {}): PilotState => ({
  phase: 'Running',
  revision: 'r2',
  application: es(),
  exitCode: undefined,
  message: 'application running',
  ...o,
});

const T0 = Date.parse('2026-11-02T10:00:00Z');

describe('pilot status: what it says', () => {
  it('Running and a healthy node: Ready and Healthy True', () => {
    const d = desiredStatus(state());
    expect(d.conditions.map((c) => [c.type, c.status])).to.deep.equal([['Ready', 'True'], ['Healthy', 'True']]);
    expect(d).to.include({ phase: 'Running', revision: 'r2' });
  });

  it('a red cluster: Ready (the node is up) but not Healthy, with the reason', () => {
    const d = desiredStatus(state({ application: es({ health: 'red' }) }));
    expect(d.conditions.map((c) => [c.type, c.status])).to.deep.equal([['Ready', 'True'], ['Healthy', 'False']]);
    expect(d.conditions[1]?.message).to.match(/cluster logs is red/);
  });

  it('not Running: neither Ready nor Healthy, whatever the application says', () => {
    const d = desiredStatus(state({ phase: 'PreStop' }));
    expect(d.conditions.map((c) => [c.type, c.status, c.reason])).to.deep.equal([['Ready', 'False', 'PreStop'], ['Healthy', 'Unknown', 'PreStop']]);
  });

  it('unknowns hold: no node id, no cluster UUID, no health, no application block, an unknown probe', () => {
    expect(applicationReady(es({ nodeId: undefined, error: 'connect ECONNREFUSED' }))).to.deep.equal({
      ok: false,
      reason: 'the Elasticsearch node does not report itself: connect ECONNREFUSED',
    });
    expect(applicationReady(es({ clusterUUID: undefined })).ok).to.equal(false);
    expect(applicationReady(es({ health: undefined })).ok).to.equal(true);
    expect(applicationHealthy(es({ health: undefined })).ok).to.equal(false);
    expect(applicationHealthy(undefined).ok).to.equal(false);
    expect(applicationHealthy({ probe: 'mysql' }).ok).to.equal(false);
    expect(applicationHealthy({ probe: 'none' }).ok).to.equal(true);
    expect(applicationHealthy(es({ health: 'yellow' })).ok).to.equal(true);
  });

  it('a condition keeps its transition time while its status holds, and gets a new one when it flips', () => {
    const t1 = '2026-11-02T10:00:00.000Z';
    const t2 = '2026-11-02T10:05:00.000Z';
    const first = stampConditions(undefined, [{ type: 'Ready', status: 'True', reason: 'A' }], t1);
    const same = stampConditions(first, [{ type: 'Ready', status: 'True', reason: 'B', message: 'm' }], t2);
    const flipped = stampConditions(same, [{ type: 'Ready', status: 'False', reason: 'C' }], t2);
    expect(same[0]).to.deep.equal({ type: 'Ready', status: 'True', reason: 'B', message: 'm', lastTransitionTime: t1 });
    expect(flipped[0]?.lastTransitionTime).to.equal(t2);
  });
});

describe('pilot status: when to write', () => {
  const base = { heartbeatMs: 20_000, minIntervalMs: 1000 };
  const written = (s: PilotState, at: number): PilotStatus => stampStatus(desiredStatus(s), undefined, new Date(at));

  it('writes first, then not again until something changes or a heartbeat is due', () => {
    const d = desiredStatus(state());
    expect(decideWrite({ ...base, written: undefined, writtenAt: undefined, desired: d, now: T0 })).to.deep.equal({ write: true, why: 'first' });
    const w = written(state(), T0);
    expect(decideWrite({ ...base, written: w, writtenAt: T0, desired: d, now: T0 + 5000 })).to.deep.equal({ write: false, retryInMs: 15_000 });
    expect(decideWrite({ ...base, written: w, writtenAt: T0, desired: d, now: T0 + 20_000 })).to.deep.equal({ write: true, why: 'heartbeat' });
  });

  it('a significant change writes at once, but never twice within the floor', () => {
    const w = written(state(), T0);
    const red = desiredStatus(state({ application: es({ health: 'red' }) }));
    expect(decideWrite({ ...base, written: w, writtenAt: T0, desired: red, now: T0 + 300 })).to.deep.equal({ write: false, retryInMs: 700 });
    expect(decideWrite({ ...base, written: w, writtenAt: T0, desired: red, now: T0 + 1000 })).to.deep.equal({ write: true, why: 'changed' });
    const stopping = desiredStatus(state({ phase: 'PreStop' }));
    expect(decideWrite({ ...base, written: w, writtenAt: T0, desired: stopping, now: T0 + 10 }), 'a phase change is not held back').to.deep.equal({ write: true, why: 'changed' });
    for (const change of [{ phase: 'PreStop' as const }, { revision: 'r3' }, { exitCode: 0 }, { application: es({ clusterUUID: 'u2' }) }, { application: es({ error: 'timeout' }) }]) {
      expect(decideWrite({ ...base, written: w, writtenAt: T0, desired: desiredStatus(state(change)), now: T0 + 2000 }).write, JSON.stringify(change)).to.equal(true);
    }
  });

  it('counters that move under load (documents, shard copies) wait for the heartbeat', () => {
    const w = written(state(), T0);
    const busy = desiredStatus(state({ application: es({ documents: 999_999, shards: { started: 2, relocating: 1, initializing: 0 } }) }));
    expect(significant(w)).to.equal(significant(busy));
    expect(decideWrite({ ...base, written: w, writtenAt: T0, desired: busy, now: T0 + 10_000 })).to.deep.equal({ write: false, retryInMs: 10_000 });
  });

  it('a nested block in another key order than the schema is no change (a probe builds it in its own order; the written status is parsed by zod)', () => {
    const cass = (o: Record<string, unknown>) => ({ probe: 'cassandra', cassandra: o });
    const built = desiredStatus(state({ application: cass({ schemaVersion: 's1', hostId: 'h1', status: 'NORMAL', peers: [{ alive: true, hostId: 'h2' }] }) }));
    const w = written(state({ application: cass({ hostId: 'h1', status: 'NORMAL', schemaVersion: 's1', peers: [{ hostId: 'h2', alive: true }] }) }), T0);
    expect(significant(w)).to.equal(significant(built));
    const changed = desiredStatus(state({ application: cass({ hostId: 'h1', status: 'NORMAL', schemaVersion: 's1', peers: [{ hostId: 'h2', alive: false }] }) }));
    expect(significant(w)).to.not.equal(significant(changed));
  });

  it('cassandra: hint bytes wait for the heartbeat, a new hint file or target does not', () => {
    const hints = (h: { hostId: string; files: number; bytes: number }[]) => state({ application: { probe: 'cassandra', cassandra: { hostId: 'h1', hints: h } } });
    const w = written(hints([{ hostId: 'h2', files: 1, bytes: 10 }]), T0);
    expect(significant(w)).to.equal(significant(desiredStatus(hints([{ hostId: 'h2', files: 1, bytes: 9000 }]))));
    expect(significant(w)).to.not.equal(significant(desiredStatus(hints([{ hostId: 'h2', files: 2, bytes: 9000 }]))));
    expect(significant(w)).to.not.equal(significant(desiredStatus(hints([]))));
  });

  it('at steady state under indexing load: one write per heartbeat, 3 a minute at the default 20 s', () => {
    // Probe every 10 s for an hour; the document count changes on every probe.
    let w: PilotStatus | undefined;
    let at: number | undefined;
    let writes = 0;
    for (let t = T0; t < T0 + 3_600_000; t += 10_000) {
      const s = state({ application: es({ documents: (t - T0) / 10 }) });
      const d = decideWrite({ ...base, written: w, writtenAt: at, desired: desiredStatus(s), now: t });
      if (d.write) {
        writes++;
        w = stampStatus(desiredStatus(s), w?.conditions, new Date(t));
        at = t;
      }
    }
    expect(writes).to.equal(180);
  });

  it('a flapping application costs at most one write per floor interval', () => {
    let w: PilotStatus | undefined;
    let at: number | undefined;
    let writes = 0;
    // Health flips every 100 ms for a minute; the loop asks as often as it is told to.
    for (let t = T0; t < T0 + 60_000; t += 100) {
      const s = state({ application: es({ health: Math.floor((t - T0) / 100) % 2 ? 'red' : 'green' }) });
      const d = decideWrite({ ...base, written: w, writtenAt: at, desired: desiredStatus(s), now: t });
      if (d.write) {
        writes++;
        w = stampStatus(desiredStatus(s), w?.conditions, new Date(t));
        at = t;
      }
    }
    expect(writes).to.be.at.most(61);
  });
});
