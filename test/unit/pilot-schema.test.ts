import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { type JsonSchema, pilotCrd, pilotCrdYaml, toStructural } from '../../lib/pilot/crd.ts';
import { parsePilot, Pilot, PilotStatus, podOwnerUid } from '../../lib/pilot/schema.ts';
import { scalar, toYaml } from '../../lib/yaml.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const esStatus = {
  phase: 'Running',
  revision: 'web-5d8f7c9b',
  heartbeatTime: '2026-11-02T10:00:00.000Z',
  conditions: [{ type: 'Ready', status: 'True', reason: 'ApplicationReady', lastTransitionTime: '2026-11-02T09:59:00Z' }],
  application: {
    probe: 'elasticsearch',
    distribution: 'opensearch',
    version: '2.19.6',
    nodeName: 'es-0',
    nodeId: '0h5jrErvR9GJVoq8zv_GoA',
    clusterName: 'logs',
    clusterUUID: '7vOBIbfDTCO8dEnZM9Oc_Q',
    roles: ['cluster_manager', 'data'],
    health: 'green',
    shards: { started: 4, relocating: 0, initializing: 1 },
    documents: 1234,
  },
};

const pilot = (status: unknown = esStatus) => ({
  apiVersion: 'sts-pilot.io/v1alpha1',
  kind: 'Pilot',
  metadata: { name: 'es-0', namespace: 'db', uid: 'p-1', ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'es-0', uid: 'pod-1', controller: true }] },
  spec: { application: 'elasticsearch', options: { url: 'http://es:9200' } },
  status,
});

describe('Pilot schema', () => {
  it('parses a Pilot as the API returns it, and finds its owning pod', () => {
    const p = Pilot.parse(pilot());
    expect(p.status?.application?.shards).to.deep.equal({ started: 4, relocating: 0, initializing: 1 });
    expect(podOwnerUid(p)).to.equal('pod-1');
  });

  it('takes a Pilot with no status at all: everything unknown', () => {
    expect(Pilot.parse({ ...pilot(), status: undefined }).status).to.equal(undefined);
  });

  for (const [what, bad] of [
    ['an unknown phase', { ...esStatus, phase: 'Dancing' }],
    ['a health outside green/yellow/red', { ...esStatus, application: { ...esStatus.application, health: 'purple' } }],
    ['a negative document count', { ...esStatus, application: { ...esStatus.application, documents: -1 } }],
    ['a heartbeat that is not RFC 3339', { ...esStatus, heartbeatTime: 'yesterday' }],
    ['no heartbeat', { ...esStatus, heartbeatTime: undefined }],
    ['an application block without its probe', { ...esStatus, application: { version: '1' } }],
    ['a condition status other than True/False/Unknown', { ...esStatus, conditions: [{ type: 'Ready', status: 'yes', lastTransitionTime: '2026-11-02T09:59:00Z' }] }],
  ] as const) {
    it(`rejects ${what}`, () => {
      expect(PilotStatus.safeParse(bad).success).to.equal(false);
    });
  }

  it('parsePilot keeps a Pilot whose status does not parse, status dropped (unknown, so readers block)', () => {
    const r = parsePilot(pilot({ ...esStatus, phase: 'Dancing' }));
    expect('pilot' in r && r.pilot.status).to.equal(undefined);
    expect('pilot' in r && r.statusError).to.match(/phase/);
    expect(parsePilot({ metadata: { name: 'x' } })).to.have.property('error');
    expect(parsePilot('nonsense')).to.have.property('error');
  });
});

/** Every node typed, no $ref / combinators, no additionalProperties next to properties, none false. */
function expectStructural(s: JsonSchema, path: string): void {
  expect(s.type, `${path} has a type`).to.be.a('string');
  for (const k of ['$ref', 'anyOf', 'oneOf', 'allOf', 'not', '$schema', 'const']) expect(s, `${path} has no ${k}`).to.not.have.property(k);
  expect(s.additionalProperties, `${path}: additionalProperties false`).to.not.equal(false);
  if (s.properties) {
    expect(s, `${path}: additionalProperties next to properties`).to.not.have.property('additionalProperties');
    for (const [k, v] of Object.entries(s.properties as Record<string, JsonSchema>)) expectStructural(v, `${path}.${k}`);
  }
  if (s.items) expectStructural(s.items as JsonSchema, `${path}[]`);
  if (typeof s.additionalProperties === 'object') expectStructural(s.additionalProperties as JsonSchema, `${path}.*`);
}

describe('Pilot CRD', () => {
  it('manifests/crd-pilot.yaml is what lib/pilot/crd.ts generates (regenerate: npm run manifests)', () => {
    const committed = readFileSync(join(root, 'manifests', 'crd-pilot.yaml'), 'utf8');
    // The chart adds its labels and helm.sh/resource-policy under metadata.name; the rest is the generator's.
    const added = /\n {2}labels:\n(?: {4}.*\n)+ {2}annotations:\n(?: {4}.*\n)+(?=spec:\n)/;
    expect(committed).to.match(added);
    expect(committed.replace(added, '\n')).to.equal(pilotCrdYaml());
  });

  it('has a structural schema that carries the zod constraints', () => {
    const v = pilotCrd().spec.versions[0];
    const schema = v?.schema.openAPIV3Schema as unknown as JsonSchema;
    expectStructural(schema, '$');
    const status = (schema.properties as Record<string, JsonSchema>).status as JsonSchema;
    const props = status.properties as Record<string, JsonSchema>;
    expect(props.phase?.enum).to.deep.equal(['Initializing', 'PreStart', 'Running', 'PreStop', 'Stopped', 'Failed']);
    expect(status.required).to.deep.equal(['phase', 'heartbeatTime']);
    expect(props.heartbeatTime).to.include({ type: 'string', format: 'date-time' });
    expect(props.heartbeatTime).to.not.have.property('pattern');
    expect(props.conditions).to.include({ 'x-kubernetes-list-type': 'map' });
    const app = (props.application?.properties ?? {}) as Record<string, JsonSchema>;
    expect(app.health?.enum).to.deep.equal(['green', 'yellow', 'red']);
    expect(app.documents).to.deep.include({ type: 'integer', minimum: 0 });
    expect(app.documents).to.not.have.property('maximum');
  });

  it('has the status subresource, short name and printer columns', () => {
    const crd = pilotCrd();
    const v = crd.spec.versions[0];
    expect(crd.spec.names.shortNames).to.deep.equal(['plt']);
    expect(v?.subresources).to.deep.equal({ status: {} });
    expect(v?.additionalPrinterColumns.filter((c) => !('priority' in c)).map((c) => c.name)).to.deep.equal(['Phase', 'App', 'Version', 'Health', 'Age']);
  });

  it('refuses zod constructs a structural schema cannot express, naming where', () => {
    const union = z.object({ a: z.union([z.string(), z.number()]) });
    expect(() => toStructural(z.toJSONSchema(union, { target: 'openapi-3.0' }) as JsonSchema)).to.throw(/\$\.a: JSON Schema keyword "anyOf"/);
    expect(() => toStructural({ type: 'object', properties: { a: { description: 'untyped' } } })).to.throw(/\$\.a: every node/);
  });
});

describe('YAML emitter', () => {
  it('quotes what YAML 1.1 would read as something else, and only that', () => {
    expect(scalar('True')).to.equal('"True"');
    expect(scalar('no')).to.equal('"no"');
    expect(scalar('y')).to.equal('"y"');
    expect(scalar('123')).to.equal('"123"');
    expect(scalar('')).to.equal('""');
    expect(scalar('a: b')).to.equal('"a: b"');
    expect(scalar('x #y')).to.equal('"x #y"');
    expect(scalar(' lead')).to.equal('" lead"');
    expect(scalar('-')).to.equal('"-"');
    expect(scalar("the pod's name, as (it) is")).to.equal("the pod's name, as (it) is");
    expect(scalar('.status.application.version')).to.equal('.status.application.version');
    expect(scalar('apiextensions.k8s.io/v1')).to.equal('apiextensions.k8s.io/v1');
    expect(scalar(3)).to.equal('3');
    expect(scalar(false)).to.equal('false');
  });

  it('writes nested maps and lists in block style', () => {
    expect(toYaml({ a: 1, b: { c: ['x', { d: 'v', e: [] }] }, f: {} })).to.equal(['a: 1', 'b:', '  c:', '    - x', '    - d: v', '      e: []', 'f: {}', ''].join('\n'));
  });
});
