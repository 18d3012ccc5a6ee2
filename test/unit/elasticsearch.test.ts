import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { type Decision, decideDrain, decideRestart, healthText, soleCopies } from '../../hooks/elasticsearch/decide.ts';
import { elasticsearchHook } from '../../hooks/elasticsearch/index.ts';
import { type NodeRef, nodeRefOf, pilotsOf } from '../../hooks/elasticsearch/node-ref.ts';
import {
  ALLOCATION_ENABLE,
  EXCLUDE_NAME,
  encodeMarker,
  exclusionWrite,
  markerKey,
  parseMarker,
  parseNames,
  type SettingsWrite,
} from '../../hooks/elasticsearch/settings.ts';
import { type ClusterView, clusterView } from '../../hooks/elasticsearch/view.ts';
import { parseHookOptions } from '../../lib/hook.ts';

// ---------------------------------------------------------------------------
// A cluster written compactly, turned into the answers Elasticsearch gives and
// through the same parser the hook uses.

type State = 'STARTED' | 'RELOCATING' | 'INITIALIZING';
interface Spec {
  status?: 'green' | 'yellow' | 'red';
  unassigned?: number;
  relocating?: number;
  initializing?: number;
  nodes?: string[];
  versions?: Record<string, string>;
  uuid?: string;
  /** per node name: "index/shard" + p|r, optionally ":STATE" (default STARTED) */
  shards?: Record<string, string[]>;
  persistent?: Record<string, unknown>;
  transient?: Record<string, unknown>;
  redIndices?: string[];
  /** Node ids of the last committed voting configuration. */
  voters?: string[];
}

const KEY = markerKey('db', 'es');
const UUID = 'uuid-A';

function answers(s: Spec) {
  const names = s.nodes ?? ['es-0', 'es-1', 'es-2'];
  const routing: Record<string, { state: State; index: string; shard: number; primary: boolean }[]> = {};
  for (const [node, list] of Object.entries(s.shards ?? {})) {
    routing[`id-${node}`] = list.map((tok) => {
      const m = /^([^/]+)\/(\d+)([pr])(?::(\w+))?$/.exec(tok);
      if (!m) throw new Error(`bad shard token ${tok}`);
      return { index: m[1] as string, shard: Number(m[2]), primary: m[3] === 'p', state: (m[4] ?? 'STARTED') as State };
    });
  }
  return {
    health: {
      status: s.status ?? 'green',
      number_of_nodes: names.length,
      relocating_shards: s.relocating ?? 0,
      initializing_shards: s.initializing ?? 0,
      unassigned_shards: s.unassigned ?? 0,
    },
    settings: { persistent: s.persistent ?? {}, transient: s.transient ?? {} },
    state: {
      cluster_uuid: s.uuid ?? UUID,
      nodes: Object.fromEntries(names.map((n) => [`id-${n}`, { name: n, ...(s.versions?.[n] ? { version: s.versions[n] } : {}) }])),
      routing_nodes: { nodes: routing },
    },
    ...(s.redIndices ? { redIndices: s.redIndices } : {}),
    ...(s.voters ? { coordination: { metadata: { cluster_coordination: { last_committed_config: s.voters } } } } : {}),
  };
}

function view(s: Spec): ClusterView {
  const r = clusterView(answers(s), KEY, true);
  if (!r.ok) throw new Error(r.error);
  return r.view;
}

/** What the cluster's settings are after a PUT _cluster/settings with this body (null removes). */
function applied(s: Spec, w: SettingsWrite): Spec {
  const layer = (cur: Record<string, unknown> | undefined, change: Record<string, string | null>) => {
    const out: Record<string, unknown> = { ...cur };
    for (const [k, v] of Object.entries(change)) {
      if (v === null) delete out[k];
      else out[k] = v;
    }
    return out;
  };
  return { ...s, persistent: layer(s.persistent, w.persistent), transient: layer(s.transient, w.transient) };
}

const ref = (name: string, more: Partial<NodeRef> = {}): NodeRef => ({ pod: name, name, ready: true, ...more });
const marker = (exclude: string[], primariesFor?: string) => encodeMarker({ exclude, ...(primariesFor ? { primariesFor } : {}) });

function expectHold(d: Decision, re: RegExp): void {
  expect(d.kind, JSON.stringify(d)).to.equal('hold');
  expect(d.kind === 'hold' && d.reason).to.match(re);
}
function expectWrite(d: Decision): SettingsWrite {
  expect(d.kind, JSON.stringify(d)).to.equal('write');
  if (d.kind !== 'write') throw new Error('not a write');
  return d.write;
}
function expectApprove(d: Decision, flush = false): void {
  expect(d.kind, JSON.stringify(d)).to.equal('approve');
  expect(d.kind === 'approve' && d.flush).to.equal(flush);
}

type Decide = typeof decideDrain;
/** Decide, apply any write, decide again (a call does exactly this): the final answer, and the cluster after. */
function settle(decide: Decide, s: Spec, prev: NodeRef | null, next: NodeRef | null, required: 'green' | 'yellow' = 'green'): { d: Decision; s: Spec; writes: number } {
  let writes = 0;
  for (;;) {
    const d = decide(view(s), prev, next, required);
    if (d.kind !== 'write') return { d, s, writes };
    if (++writes > 2) throw new Error(`still writing after 2 writes: ${JSON.stringify(d)}`);
    s = applied(s, d.write);
  }
}

// ---------------------------------------------------------------------------

const opt = (o: Record<string, string>) => parseHookOptions(elasticsearchHook, Object.fromEntries(Object.entries(o).map(([k, v]) => [`elasticsearch.sts-pilot.io/${k}`, v])));

describe('elasticsearch hook: options', () => {
  it('needs only a url, with defaults for the rest', () => {
    expect(opt({ url: 'http://es:9200/' })).to.deep.equal({
      ok: true,
      options: {
        url: 'http://es:9200',
        credentialsSecret: undefined,
        caSecret: undefined,
        requiredHealth: 'green',
        timeoutSeconds: 10,
        strategy: 'auto',
        allocationDelay: undefined,
        version: undefined,
      },
    });
  });

  it('parses every option', () => {
    const r = opt({
      url: 'https://es.db.svc:9200',
      'credentials-secret': 'es-creds',
      'ca-secret': 'es-ca',
      'required-health': 'yellow',
      timeout: '3',
      strategy: 'shutdown',
      'allocation-delay': '20m',
      version: '8.19.21',
    });
    expect(r).to.deep.equal({
      ok: true,
      options: {
        url: 'https://es.db.svc:9200',
        credentialsSecret: 'es-creds',
        caSecret: 'es-ca',
        requiredHealth: 'yellow',
        timeoutSeconds: 3,
        strategy: 'shutdown',
        allocationDelay: '20m',
        version: '8.19.21',
      },
    });
    for (const s of ['drain', 'restart', 'auto']) expect(opt({ url: 'http://es', strategy: s })).to.have.nested.property('options.strategy', s);
  });

  for (const [what, o, re] of [
    ['no url', {}, /elasticsearch\.sts-pilot\.io\/url/],
    ['an empty url', { url: '', 'ca-secret': 'x' }, /url: must be an http/],
    ['a non-URL', { url: 'es:9200' }, /url: must be an http/],
    ['a file URL', { url: 'file:///etc/passwd' }, /url: must be an http/],
    ['credentials in the url', { url: 'http://elastic:secret@es:9200' }, /url: must not carry credentials/],
    ['a query in the url', { url: 'http://es:9200/?pretty' }, /url: must not have a query/],
    ['a CA from a ConfigMap (no reader for hooks)', { url: 'https://es', 'ca-configmap': 'b' }, /ca-configmap: is not supported: .*name it in ca-secret/],
    ['an allocation delay with drain', { url: 'http://es', strategy: 'drain', 'allocation-delay': '5m' }, /allocation-delay: only applies to strategy shutdown/],
    ['an allocation delay without a unit', { url: 'http://es', 'allocation-delay': '5' }, /allocation-delay: must be a duration/],
    ['a version that is no version', { url: 'http://es', version: 'latest' }, /version: must be a version/],
    ['a CA with http', { url: 'http://es', 'ca-secret': 'a' }, /ca-secret: a CA only makes sense with an https/],
    ['red as required health', { url: 'http://es', 'required-health': 'red' }, /required-health: must be green or yellow/],
    ['an unknown strategy', { url: 'http://es', strategy: 'yolo' }, /strategy: must be auto, drain, restart or shutdown/],
    ['a zero timeout', { url: 'http://es', timeout: '0' }, /timeout: must be a whole number of seconds/],
    ['a timeout with a unit', { url: 'http://es', timeout: '10s' }, /timeout: must be a whole number/],
    ['a Secret name that is no name', { url: 'http://es', 'credentials-secret': 'My_Secret' }, /credentials-secret: must be a Kubernetes object name/],
    ['an unknown option', { url: 'http://es', user: 'elastic' }, /elasticsearch\.sts-pilot\.io\/user/],
  ] as const) {
    it(`rejects ${what}, naming the annotation`, () => {
      const r = opt(o);
      expect(r.ok).to.equal(false);
      expect(!r.ok && r.error).to.match(/^invalid elasticsearch hook options: /);
      expect(!r.ok && r.error).to.match(re);
    });
  }
});

describe('elasticsearch hook: settings', () => {
  it('reads a comma-separated name list, an array, or nothing', () => {
    expect(parseNames(' a, b,,a ')).to.deep.equal({ ok: true, names: ['a', 'b'] });
    expect(parseNames(['x', 'y'])).to.deep.equal({ ok: true, names: ['x', 'y'] });
    expect(parseNames(undefined)).to.deep.equal({ ok: true, names: [] });
    expect(parseNames({ a: 1 }).ok).to.equal(false);
  });

  it("keeps a person's exclusions, adds ours to the layer in force and takes ours from there", () => {
    const s = { persistent: { [EXCLUDE_NAME]: 'old-1,es-2' }, transient: { [EXCLUDE_NAME]: 'es-2,old-9' } };
    // transient is in force: the addition goes there, or it would do nothing; the
    // es-2 in the persistent layer is a person's copy, and stays
    expect(exclusionWrite(s, ['es-1'], ['es-2'])).to.deep.equal({
      persistent: {},
      transient: { [EXCLUDE_NAME]: 'old-9,es-1' },
    });
    // a name of ours the layer in force lacks (the list was moved since) is taken from the other layer
    expect(exclusionWrite({ persistent: { [EXCLUDE_NAME]: 'old-1,es-2' }, transient: { [EXCLUDE_NAME]: 'old-9' } }, [], ['es-2'])).to.deep.equal({
      persistent: { [EXCLUDE_NAME]: 'old-1' },
      transient: {},
    });
    expect(exclusionWrite({ persistent: { [EXCLUDE_NAME]: 'old-1' }, transient: {} }, ['es-1'], [])).to.deep.equal({
      persistent: { [EXCLUDE_NAME]: 'old-1,es-1' },
      transient: {},
    });
  });

  it('removes the setting when the last name goes, and writes nothing when nothing changes', () => {
    expect(exclusionWrite({ persistent: { [EXCLUDE_NAME]: 'es-0' }, transient: {} }, [], ['es-0'])).to.deep.equal({ persistent: { [EXCLUDE_NAME]: null }, transient: {} });
    expect(exclusionWrite({ persistent: { [EXCLUDE_NAME]: 'a, b' }, transient: {} }, ['b'], ['c'])).to.deep.equal({ persistent: {}, transient: {} });
  });

  it('keys the marker per StatefulSet, in the one free settings namespace, without collisions', () => {
    expect(markerKey('db', 'es')).to.equal('cluster.metadata.sts-pilot_db_es');
    expect(markerKey('db', 'es.data')).to.equal('cluster.metadata.sts-pilot_db_es_data');
    expect(markerKey('db', 'es.data')).to.not.equal(markerKey('db-es', 'data'));
    expect(markerKey('a', 'b')).to.match(/^cluster\.metadata\.[-\w]+$/);
  });

  it('round-trips the marker, removes it when empty, and refuses one it did not write', () => {
    expect(parseMarker(encodeMarker({ exclude: ['es-2'], primariesFor: 'es-1' }), KEY)).to.deep.equal({ ok: true, marker: { exclude: ['es-2'], primariesFor: 'es-1' } });
    expect(encodeMarker({ exclude: [] })).to.equal(null);
    expect(parseMarker(undefined, KEY)).to.deep.equal({ ok: true, marker: { exclude: [] } });
    const bad = parseMarker('{"exclude":"es-2"}', KEY);
    expect(!bad.ok && bad.error).to.match(/cluster\.metadata\.sts-pilot_db_es is not what sts-pilot writes/);
    expect(parseMarker('es-2', KEY).ok).to.equal(false);
    expect(parseMarker('{"exclude":[],"extra":1}', KEY).ok).to.equal(false);
  });

  it('the view refuses settings that make no sense', () => {
    const r = clusterView(answers({ persistent: { [EXCLUDE_NAME]: { a: 1 } } }), KEY, true);
    expect(!r.ok && r.error).to.match(/persistent setting cluster\.routing\.allocation\.exclude\._name is/);
    const na = clusterView(answers({ uuid: '_na_' }), KEY, true);
    expect(!na.ok && na.error).to.match(/not formed/);
    const m = clusterView(answers({ persistent: { [KEY]: 'junk' } }), KEY, true);
    expect(m.ok).to.equal(false);
  });

  it('the view takes transient over persistent', () => {
    const v = view({ persistent: { [EXCLUDE_NAME]: 'p', [ALLOCATION_ENABLE]: 'none' }, transient: { [EXCLUDE_NAME]: 't', [ALLOCATION_ENABLE]: 'Primaries' } });
    expect(v.exclusion).to.deep.equal(['t']);
    expect(v.allocation).to.deep.equal({ value: 'primaries', layer: 'transient' });
  });
});

describe('elasticsearch hook: node names', () => {
  const pod = (name: string, uid = `uid-${name}`, ready = true): V1Pod => ({
    metadata: { name, uid },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  });
  const pilot = (application: unknown, owner = 'uid-es-1') => ({ metadata: { name: 'es-1', ownerReferences: [{ uid: owner }] }, status: { phase: 'Running', application } });

  it('is the pod name when there is no Pilot, or it says nothing', () => {
    expect(nodeRefOf(pod('es-1'), undefined)).to.deep.equal({ ok: true, ref: { pod: 'es-1', name: 'es-1', ready: true } });
    expect(nodeRefOf(pod('es-1', 'u', false), { metadata: {} })).to.deep.equal({ ok: true, ref: { pod: 'es-1', name: 'es-1', ready: false } });
    expect(nodeRefOf(pod('es-1'), pilot(undefined))).to.deep.equal({ ok: true, ref: { pod: 'es-1', name: 'es-1', ready: true } });
  });

  it("is the Pilot's node name when it reports one, with what else it says", () => {
    const r = nodeRefOf(pod('es-1'), pilot({ probe: 'elasticsearch', nodeName: 'data-1', clusterUUID: UUID, version: '8.19.21' }));
    expect(r).to.deep.equal({ ok: true, ref: { pod: 'es-1', name: 'data-1', ready: true, pilot: { nodeName: 'data-1', clusterUUID: UUID, version: '8.19.21' } } });
    const alt = nodeRefOf(pod('es-1'), pilot({ nodeName: 'es-1', clusterUuid: UUID }));
    expect(alt.ok && alt.ref.pilot).to.deep.equal({ nodeName: 'es-1', clusterUUID: UUID });
  });

  it('ignores the Pilot of the pod this one replaced', () => {
    const r = nodeRefOf(pod('es-1'), pilot({ nodeName: 'data-1', clusterUUID: UUID }, 'uid-of-the-old-pod'));
    expect(r).to.deep.equal({ ok: true, ref: { pod: 'es-1', name: 'es-1', ready: true } });
  });

  it('refuses a Pilot it cannot read', () => {
    const r = nodeRefOf(pod('es-1'), pilot({ nodeName: 7 }));
    expect(!r.ok && r.error).to.match(/the Pilot of es-1 cannot be read/);
  });

  it('finds a pilots reader on the context only when there is one', () => {
    expect(pilotsOf({})).to.equal(undefined);
    expect(pilotsOf({ pilots: { get: () => undefined } })).to.not.equal(undefined);
    expect(pilotsOf({ pilots: 'nope' })).to.equal(undefined);
  });
});

describe('elasticsearch hook: decideDrain', () => {
  const people = { [EXCLUDE_NAME]: 'retired-7' };

  it('red holds everything, naming the red indices, and writes nothing', () => {
    const d = decideDrain(view({ status: 'red', unassigned: 2, redIndices: ['logs-3'] }), null, ref('es-2'), 'green');
    expectHold(d, /^cluster is red: 2 shards unassigned; 3 nodes; red indices: logs-3$/);
  });

  it('the first step excludes next, keeping a person\'s exclusion, and records it as ours', () => {
    const w = expectWrite(decideDrain(view({ persistent: people }), null, ref('es-2'), 'green'));
    expect(w).to.deep.equal({ persistent: { [EXCLUDE_NAME]: 'retired-7,es-2', [KEY]: marker(['es-2']) }, transient: {} });
  });

  it("never removes a person's name from the layer not in force, though it excluded the same node in the layer in force", () => {
    // a person: es-1 in persistent (masked), retired-8 in transient (in force)
    let s: Spec = { persistent: { [EXCLUDE_NAME]: 'es-1' }, transient: { [EXCLUDE_NAME]: 'retired-8' } };
    const step = settle(decideDrain, s, null, ref('es-1'));
    expect(step.s.transient?.[EXCLUDE_NAME]).to.equal('retired-8,es-1');
    s = settle(decideDrain, step.s, ref('es-1'), null).s;
    expect(s.persistent).to.deep.equal({ [EXCLUDE_NAME]: 'es-1' });
    expect(s.transient).to.deep.equal({ [EXCLUDE_NAME]: 'retired-8' });
  });

  it('writes the exclusion to the transient layer when a person keeps theirs there', () => {
    const w = expectWrite(decideDrain(view({ transient: people, persistent: { [EXCLUDE_NAME]: 'p-1' } }), null, ref('es-2'), 'green'));
    expect(w).to.deep.equal({ persistent: { [KEY]: marker(['es-2']) }, transient: { [EXCLUDE_NAME]: 'retired-7,es-2' } });
  });

  it('holds with the number of shards left on the node while it drains', () => {
    const s = { persistent: { [EXCLUDE_NAME]: 'es-2', [KEY]: marker(['es-2']) }, relocating: 2, shards: { 'es-2': ['a/0p:RELOCATING', 'a/1r:RELOCATING', 'b/0p'], 'es-0': ['a/0p:INITIALIZING'] } };
    expectHold(decideDrain(view(s), null, ref('es-2'), 'green'), /^draining: 3 shards left on es-2 \(2 relocating away, 1 waiting to move\)$/);
  });

  it('says why a drain cannot finish: allocation disabled, other exclusions, unassigned shards', () => {
    const s = {
      persistent: { [EXCLUDE_NAME]: 'retired-7,es-1,es-2', [KEY]: marker(['es-2']), [ALLOCATION_ENABLE]: 'primaries' },
      unassigned: 4,
      status: 'yellow' as const,
      shards: { 'es-2': ['a/0r'] },
    };
    const d = decideDrain(view(s), null, ref('es-2'), 'green');
    expectHold(d, /1 shard left on es-2.*enable is 'primaries'.*also excluded, not by sts-pilot: es-1; 4 shards unassigned/);
    // a node that is not a member takes no capacity away: not worth a word
    expect(d.kind === 'hold' && d.reason).to.not.include('retired-7');
  });

  it('a single-node cluster rolls, as an outage it says it is; a node left alone by the others does not', () => {
    const s = { nodes: ['es-0'], persistent: { [EXCLUDE_NAME]: 'es-0', [KEY]: marker(['es-0']) }, shards: { 'es-0': ['a/0p', 'b/0p'] } };
    const d = decideDrain(view(s), null, ref('es-0'), 'green', { pods: [ref('es-0')] });
    expectApprove(d);
    expect(d.kind === 'approve' && d.note).to.match(/es-0 is the only node of the cluster: it is unavailable while it restarts/);
    // One member left of a StatefulSet of three: the others are away, not a single-node cluster.
    expectHold(decideDrain(view(s), null, ref('es-0'), 'green', { pods: [ref('es-0'), ref('es-1'), ref('es-2')] }), /have not joined the cluster/);
    // Without the StatefulSet's pods given, and another node in the last voting configuration: not alone by design either.
    const voted = { ...s, voters: ['id-es-0', 'id-es-1', 'id-es-2'] };
    expectHold(decideDrain(view(voted), null, ref('es-0'), 'green'), /every node is excluded: no node can take them$/);
  });

  it('holds while anything relocates or initializes, even with the node empty', () => {
    const base = { persistent: { [EXCLUDE_NAME]: 'es-2', [KEY]: marker(['es-2']) } };
    expectHold(decideDrain(view({ ...base, relocating: 1 }), null, ref('es-2'), 'green'), /es-2 holds no shards; waiting for the cluster to settle: green: 1 relocating/);
    expectHold(decideDrain(view({ ...base, initializing: 3 }), null, ref('es-2'), 'green'), /3 initializing/);
  });

  it('a hold says whether it is routine (a Normal Event) or needs someone (a Warning)', () => {
    const routine = (d: Decision): boolean | undefined => (d.kind === 'hold' ? d.routine === true : undefined);
    const ours = { [EXCLUDE_NAME]: 'es-2', [KEY]: marker(['es-2']) };
    // A drain that moves, and a cluster settling or recovering: they end by themselves.
    expect(routine(decideDrain(view({ persistent: ours, relocating: 2, shards: { 'es-2': ['a/0p:RELOCATING', 'a/1r:RELOCATING', 'b/0p'] } }), null, ref('es-2'), 'green'))).to.equal(true);
    expect(routine(decideDrain(view({ persistent: ours, relocating: 1 }), null, ref('es-2'), 'green'))).to.equal(true);
    expect(routine(decideDrain(view({ persistent: ours, status: 'yellow', initializing: 1 }), null, ref('es-2'), 'green'))).to.equal(true);
    // A drain that cannot finish by itself, red, and a person's allocation setting: someone must act.
    const stuck = { persistent: { ...ours, [ALLOCATION_ENABLE]: 'primaries' }, shards: { 'es-2': ['a/0r'] } };
    expect(routine(decideDrain(view(stuck), null, ref('es-2'), 'green'))).to.equal(false);
    expect(routine(decideDrain(view({ persistent: ours, shards: { 'es-2': ['a/0r'] } }), null, ref('es-2'), 'green')), 'nothing moves: stuck').to.equal(false);
    expect(routine(decideDrain(view({ status: 'red', unassigned: 2, redIndices: ['logs-3'] }), null, ref('es-2'), 'green'))).to.equal(false);
  });

  it('holds on unassigned shards when green is required, not when yellow is', () => {
    const s = { persistent: { [EXCLUDE_NAME]: 'es-2', [KEY]: marker(['es-2']) }, status: 'yellow' as const, unassigned: 2 };
    expectHold(decideDrain(view(s), null, ref('es-2'), 'green'), /es-2 holds no shards, but the cluster has 2 unassigned shards/);
    expectApprove(decideDrain(view(s), null, ref('es-2'), 'yellow'));
  });

  it('approves when the node is empty and the cluster quiet and green', () => {
    const s = { persistent: { [EXCLUDE_NAME]: 'retired-7,es-2', [KEY]: marker(['es-2']) }, shards: { 'es-0': ['a/0p'], 'es-1': ['a/0r'] } };
    expectApprove(decideDrain(view(s), null, ref('es-2'), 'green'));
  });

  it('does not claim a name a person excluded already, and never removes it', () => {
    const s = { persistent: { [EXCLUDE_NAME]: 'es-2' } };
    expectApprove(decideDrain(view(s), null, ref('es-2'), 'green')); // no write: nothing to add, nothing of ours
    // the next step leaves their es-2 excluded (and says so while es-1 drains)
    const step = settle(decideDrain, { ...s, shards: { 'es-1': ['a/0p'] } }, ref('es-2'), ref('es-1'));
    expect(step.s.persistent?.[EXCLUDE_NAME]).to.equal('es-2,es-1');
    expectHold(step.d, /also excluded, not by sts-pilot: es-2/);
    const end = settle(decideDrain, { persistent: step.s.persistent }, ref('es-0'), null);
    expectApprove(end.d);
    expect(end.s.persistent).to.deep.equal({ [EXCLUDE_NAME]: 'es-2' });
  });

  it('waits for prev to rejoin before touching anything', () => {
    const s = { nodes: ['es-0', 'es-1'], persistent: { [EXCLUDE_NAME]: 'es-2', [KEY]: marker(['es-2']) } };
    expectHold(decideDrain(view(s), ref('es-2'), ref('es-1'), 'green'), /^waiting for es-2 \(pod es-2\) to rejoin the cluster: it is not among its 2 nodes \(es-0, es-1\)$/);
  });

  it('with a Pilot, waits until it reports the same cluster and version as the cluster does', () => {
    const s = { versions: { 'es-2': '2.19.6' }, persistent: { [EXCLUDE_NAME]: 'es-2', [KEY]: marker(['es-2']) } };
    const withPilot = (pilot: NodeRef['pilot']) => decideDrain(view(s), ref('es-2', { pilot }), ref('es-1'), 'green');
    expectHold(withPilot({}), /waiting for the Pilot of es-2 to report its node's name/);
    expectHold(withPilot({ nodeName: 'es-2' }), /waiting for the Pilot of es-2 to report the cluster UUID of es-2/);
    expectHold(withPilot({ nodeName: 'es-2', clusterUUID: 'uuid-B' }), /reports node es-2 in cluster uuid-B, but the cluster at the url is uuid-A/);
    expectHold(withPilot({ nodeName: 'es-2', clusterUUID: UUID, version: '2.19.5' }), /reports version 2\.19\.5, the cluster lists es-2 at 2\.19\.6/);
    expect(withPilot({ nodeName: 'es-2', clusterUUID: UUID, version: '2.19.6' }).kind).to.equal('write');
  });

  it('after prev rejoined, moves the exclusion from prev to next in one write, keeping theirs', () => {
    const s = { persistent: { [EXCLUDE_NAME]: 'retired-7,es-2', [KEY]: marker(['es-2']) } };
    const w = expectWrite(decideDrain(view(s), ref('es-2'), ref('es-1'), 'green'));
    expect(w).to.deep.equal({ persistent: { [EXCLUDE_NAME]: 'retired-7,es-1', [KEY]: marker(['es-1']) }, transient: {} });
  });

  it('at the end removes every exclusion of ours, then waits for health', () => {
    const s = { persistent: { [EXCLUDE_NAME]: 'retired-7,es-0,es-5', [KEY]: marker(['es-0', 'es-5']) }, status: 'yellow' as const, unassigned: 1 };
    const w = expectWrite(decideDrain(view(s), ref('es-0'), null, 'green'));
    expect(w).to.deep.equal({ persistent: { [EXCLUDE_NAME]: 'retired-7', [KEY]: null }, transient: {} });
    expectHold(decideDrain(view(applied(s, w)), ref('es-0'), null, 'green'), /^no exclusion of sts-pilot's is left; waiting for health green: cluster is yellow: 1 shard unassigned; 3 nodes$/);
    expectApprove(decideDrain(view(applied(s, w)), ref('es-0'), null, 'yellow'));
    expectApprove(decideDrain(view({ persistent: { [EXCLUDE_NAME]: 'retired-7' } }), ref('es-0'), null, 'green'));
  });

  it('drops marker entries a person already removed from the exclusion, and re-adds next if it was removed', () => {
    const gone = { persistent: { [KEY]: marker(['es-9']) } };
    expect(expectWrite(decideDrain(view(gone), null, null, 'green'))).to.deep.equal({ persistent: { [KEY]: null }, transient: {} });
    const lost = { persistent: { [KEY]: marker(['es-2']) } };
    expect(expectWrite(decideDrain(view(lost), null, ref('es-2'), 'green'))).to.deep.equal({ persistent: { [EXCLUDE_NAME]: 'es-2' }, transient: {} });
  });

  it('re-enables replica allocation left by the restart strategy', () => {
    const s = { persistent: { [ALLOCATION_ENABLE]: 'primaries', [KEY]: marker([], 'es-1') } };
    expect(expectWrite(decideDrain(view(s), null, null, 'green'))).to.deep.equal({ persistent: { [ALLOCATION_ENABLE]: null, [KEY]: null }, transient: {} });
  });

  it('a Ready pod whose node the cluster does not know holds; a pod that is down has nothing to drain', () => {
    const s = { nodes: ['es-0', 'es-1'], persistent: { [EXCLUDE_NAME]: 'es-2', [KEY]: marker(['es-2']) } };
    expectHold(decideDrain(view(s), null, ref('es-2'), 'green'), /pod es-2 is Ready, but the cluster has no node named es-2 \(its nodes: es-0, es-1\)/);
    expectApprove(decideDrain(view(s), null, ref('es-2', { ready: false }), 'green'));
    // A broken pod (not Ready, not a member) is replaced whatever the health: it takes nothing away.
    expectApprove(decideDrain(view({ ...s, unassigned: 3, status: 'yellow' }), null, ref('es-2', { ready: false }), 'green'));
    const red = decideRestart(view({ ...s, unassigned: 3, status: 'red', redIndices: ['logs'] }), null, ref('es-2', { ready: false }), 'green');
    expectApprove(red);
    expect(red.kind === 'approve' && red.note).to.match(/not Ready and its node is not in the cluster: replacing it takes nothing away \(the cluster is red/);
    // ... but not before prev is back.
    expectHold(decideDrain(view({ ...s, status: 'red' }), ref('es-3'), ref('es-2', { ready: false }), 'green'), /cluster is red/);
  });

  it('is idempotent: deciding again on what it wrote writes nothing more, for every step', () => {
    const cases: [Spec, NodeRef | null, NodeRef | null][] = [
      [{ persistent: people }, null, ref('es-2')],
      [{ transient: people }, null, ref('es-2')],
      [{ persistent: { [EXCLUDE_NAME]: 'retired-7,es-2', [KEY]: marker(['es-2']) } }, ref('es-2'), ref('es-1')],
      [{ persistent: { [EXCLUDE_NAME]: 'es-0', [KEY]: marker(['es-0']) } }, ref('es-0'), null],
      [{ persistent: { [EXCLUDE_NAME]: 'es-2', [KEY]: marker([], 'es-2'), [ALLOCATION_ENABLE]: 'primaries' } }, null, ref('es-1')],
    ];
    for (const [s, prev, next] of cases) {
      const r = settle(decideDrain, s, prev, next);
      expect(r.writes, JSON.stringify(s)).to.be.at.most(1);
      // a controller restart: the same call again, on what is in the cluster now
      expect(settle(decideDrain, r.s, prev, next).writes).to.equal(0);
      // theirs is still there, and in force
      const had = [s.persistent?.[EXCLUDE_NAME], s.transient?.[EXCLUDE_NAME]].includes('retired-7');
      if (had) expect(view(r.s).exclusion).to.include('retired-7');
    }
  });

  it('a whole rollout of three pods ends with only the person\'s exclusion', () => {
    let s: Spec = { persistent: people };
    for (const [prev, next] of [[null, 'es-2'], ['es-2', 'es-1'], ['es-1', 'es-0'], ['es-0', null]] as const) {
      const r = settle(decideDrain, s, prev ? ref(prev) : null, next ? ref(next) : null);
      expectApprove(r.d);
      s = r.s;
      const ex = parseNames(s.persistent?.[EXCLUDE_NAME]);
      expect(ex.ok && ex.names).to.deep.equal(next ? ['retired-7', next] : ['retired-7']);
    }
    expect(s.persistent).to.deep.equal(people);
  });
});

describe('elasticsearch hook: decideRestart', () => {
  it('before the first node: cluster whole, then replica allocation to primaries, then approve with a flush', () => {
    const s: Spec = { shards: { 'es-1': ['a/0p', 'b/0r'], 'es-0': ['a/0r'], 'es-2': ['b/0p'] } };
    const w = expectWrite(decideRestart(view(s), null, ref('es-1'), 'green'));
    expect(w).to.deep.equal({ persistent: { [ALLOCATION_ENABLE]: 'primaries', [KEY]: marker([], 'es-1') }, transient: {} });
    expectApprove(decideRestart(view(applied(s, w)), null, ref('es-1'), 'green'), true);
  });

  it('holds while the cluster is not whole or anything moves', () => {
    expectHold(decideRestart(view({ status: 'yellow', unassigned: 2 }), null, ref('es-1'), 'green'), /^waiting for health green with nothing moving before es-1 restarts: cluster is yellow: 2 shards unassigned; 3 nodes$/);
    expectHold(decideRestart(view({ relocating: 1 }), null, ref('es-1'), 'green'), /1 relocating/);
  });

  it('holds when the node has the only copy of a shard', () => {
    const s = { shards: { 'es-1': ['logs/0p', 'logs/1p', 'web/0r'], 'es-0': ['web/0p', 'logs/2p'] } };
    expectHold(decideRestart(view(s), null, ref('es-1'), 'green'), /es-1 holds the only copy of 2 shards \(logs\[0\], logs\[1\]\).*strategy drain/);
  });

  it('after the node rejoined, re-enables allocation, waits for green, then goes on with the next one', () => {
    const s = { status: 'yellow' as const, unassigned: 2, persistent: { [ALLOCATION_ENABLE]: 'primaries', [KEY]: marker([], 'es-1') } };
    const w = expectWrite(decideRestart(view(s), ref('es-1'), ref('es-0'), 'green'));
    expect(w).to.deep.equal({ persistent: { [ALLOCATION_ENABLE]: null, [KEY]: null }, transient: {} });
    expectHold(decideRestart(view(applied(s, w)), ref('es-1'), ref('es-0'), 'green'), /waiting for health green.*before es-0 restarts.*2 shards unassigned/);
    const green = { persistent: {} };
    expect(expectWrite(decideRestart(view(green), ref('es-1'), ref('es-0'), 'green'))).to.deep.equal({
      persistent: { [ALLOCATION_ENABLE]: 'primaries', [KEY]: marker([], 'es-0') },
      transient: {},
    });
  });

  it('does not undo its own setting when called again for the same step', () => {
    const s = { persistent: { [ALLOCATION_ENABLE]: 'primaries', [KEY]: marker([], 'es-0') } };
    expectApprove(decideRestart(view(s), ref('es-1'), ref('es-0'), 'green'), true);
  });

  it('waits for prev to rejoin first', () => {
    const s = { nodes: ['es-0', 'es-2'], status: 'yellow' as const, persistent: { [ALLOCATION_ENABLE]: 'primaries', [KEY]: marker([], 'es-1') } };
    expectHold(decideRestart(view(s), ref('es-1'), ref('es-0'), 'green'), /waiting for es-1 \(pod es-1\) to rejoin/);
  });

  it('at the end re-enables allocation and waits for the required health', () => {
    const s = { status: 'yellow' as const, unassigned: 1, persistent: { [ALLOCATION_ENABLE]: 'primaries', [KEY]: marker([], 'es-0') } };
    const r = settle(decideRestart, s, ref('es-0'), null);
    expectHold(r.d, /^replica allocation is enabled; waiting for health green/);
    expect(r.s.persistent).to.deep.equal({});
    expectApprove(decideRestart(view(r.s), ref('es-0'), null, 'yellow'));
  });

  it("refuses to fight a person's allocation setting", () => {
    expectHold(decideRestart(view({ persistent: { [ALLOCATION_ENABLE]: 'none' } }), null, ref('es-1'), 'green'), /enable is 'none', set by someone else/);
    // primaries set by a person (no marker) is theirs too
    expectHold(decideRestart(view({ transient: { [ALLOCATION_ENABLE]: 'primaries' } }), null, ref('es-1'), 'green'), /set by someone else/);
    // an explicit "all" is the default: fine, and primaries goes to the layer in force
    const w = expectWrite(decideRestart(view({ transient: { [ALLOCATION_ENABLE]: 'all' } }), null, ref('es-1'), 'green'));
    expect(w).to.deep.equal({ persistent: { [KEY]: marker([], 'es-1') }, transient: { [ALLOCATION_ENABLE]: 'primaries' } });
  });

  it('forgets its marker when a person changed the setting since', () => {
    const s = { persistent: { [ALLOCATION_ENABLE]: 'all', [KEY]: marker([], 'es-1') } };
    expect(expectWrite(decideRestart(view(s), ref('es-1'), null, 'green'))).to.deep.equal({ persistent: { [KEY]: null }, transient: {} });
  });

  it('removes exclusions the drain strategy left, keeping a person\'s', () => {
    const s = { persistent: { [EXCLUDE_NAME]: 'retired-7,es-2', [KEY]: marker(['es-2']) } };
    const r = settle(decideRestart, s, ref('es-2'), null);
    expectApprove(r.d);
    expect(r.s.persistent).to.deep.equal({ [EXCLUDE_NAME]: 'retired-7' });
  });

  it('a whole rollout of three pods ends with allocation enabled and no marker', () => {
    let s: Spec = { shards: { 'es-0': ['a/0p'], 'es-1': ['a/0r'] } };
    for (const [prev, next] of [[null, 'es-2'], ['es-2', 'es-1'], ['es-1', 'es-0'], ['es-0', null]] as const) {
      const r = settle(decideRestart, s, prev ? ref(prev) : null, next ? ref(next) : null);
      expectApprove(r.d, next !== null);
      s = r.s;
      expect(s.persistent?.[ALLOCATION_ENABLE]).to.equal(next ? 'primaries' : undefined);
    }
    expect(s.persistent).to.deep.equal({});
  });
});

describe('elasticsearch hook: small helpers', () => {
  it('counts only active copies elsewhere as another copy', () => {
    const v = view({ shards: { 'es-1': ['a/0p', 'b/0p'], 'es-0': ['a/0r:INITIALIZING', 'b/0r:RELOCATING'] } });
    expect(soleCopies(v, 'id-es-1').map((s) => `${s.index}/${s.shard}`)).to.deep.equal(['a/0']);
  });

  it('writes health with its numbers', () => {
    expect(healthText(view({}))).to.equal('green: 3 nodes');
    expect(healthText(view({ status: 'yellow', unassigned: 1, initializing: 2, relocating: 3, nodes: ['es-0'] }))).to.equal('yellow: 1 shard unassigned, 2 initializing, 3 relocating; 1 node');
  });
});
