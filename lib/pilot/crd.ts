import { z } from 'zod';
import { API_GROUP, API_VERSION } from '../names.ts';
import { toYaml } from '../yaml.ts';
import { PILOT_KIND, PILOT_LIST_KIND, PILOT_PLURAL, PILOT_SHORT_NAMES, PILOT_SINGULAR, PilotSpec, PilotStatus } from './schema.ts';

/**
 * The Pilot CRD, its OpenAPI schema generated from the zod schema in
 * schema.ts. Run as a script it prints the YAML committed as
 * charts/sts-pilot/files/crd-pilot.yaml and rendered into
 * manifests/crd-pilot.yaml; tests fail when either differs.
 *
 *   npm run manifests
 */

export type JsonSchema = { [key: string]: unknown };

// What a structural schema (apiextensions.k8s.io/v1) may carry, and what we
// expect zod to emit. Anything else is an error here rather than a CRD the API
// server refuses at install time, or silently accepts with other meaning.
const KEPT = new Set([
  'type',
  'description',
  'properties',
  'required',
  'items',
  'additionalProperties',
  'enum',
  'format',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'nullable',
  'default',
]);

/**
 * Turn zod's OpenAPI 3.0 JSON Schema into a Kubernetes structural schema:
 * every node has a type; no $ref, anyOf/oneOf/allOf (we use none); no
 * `additionalProperties: false` (the API server prunes unknown fields by
 * default, and rejects additionalProperties next to properties); drop the
 * bounds zod adds to every integer (±2^53-1) and the regex it adds next to
 * `format: date-time`, which the server checks itself.
 */
export function toStructural(schema: JsonSchema, path = '$'): JsonSchema {
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith('x-kubernetes-')) {
      out[k] = v;
      continue;
    }
    if (k === '$schema' || k === 'title') continue;
    if (!KEPT.has(k)) throw new Error(`${path}: JSON Schema keyword ${JSON.stringify(k)} has no structural equivalent; change the zod schema`);
    out[k] = v;
  }
  if (typeof out.type !== 'string') throw new Error(`${path}: every node of a structural schema needs a type`);
  if (out.type === 'integer') {
    if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
    if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
  }
  if (out.format === 'date-time') delete out.pattern;
  if (out.properties !== undefined) {
    const props: Record<string, JsonSchema> = {};
    for (const [name, sub] of Object.entries(out.properties as Record<string, JsonSchema>)) props[name] = toStructural(sub, `${path}.${name}`);
    out.properties = props;
    if (out.additionalProperties === false) delete out.additionalProperties;
    if (out.additionalProperties !== undefined) throw new Error(`${path}: properties and additionalProperties are exclusive in a structural schema`);
  } else if (out.additionalProperties === false) {
    delete out.additionalProperties;
  } else if (typeof out.additionalProperties === 'object' && out.additionalProperties !== null) {
    out.additionalProperties = toStructural(out.additionalProperties as JsonSchema, `${path}.*`);
  }
  if (out.items !== undefined) out.items = toStructural(out.items as JsonSchema, `${path}[]`);
  return out;
}

const openApi = (schema: z.ZodType): JsonSchema =>
  toStructural(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'output', unrepresentable: 'throw', reused: 'inline' }) as JsonSchema);

export const CRD_NAME = `${PILOT_PLURAL}.${API_GROUP}`;

/** The CustomResourceDefinition object, ready to create or to print. */
export function pilotCrd() {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: PILOT_KIND,
        listKind: PILOT_LIST_KIND,
        plural: PILOT_PLURAL,
        singular: PILOT_SINGULAR,
        shortNames: PILOT_SHORT_NAMES,
        categories: ['sts-pilot'],
      },
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'App', type: 'string', jsonPath: '.spec.application' },
            { name: 'Version', type: 'string', jsonPath: '.status.application.version' },
            { name: 'Health', type: 'string', jsonPath: '.status.application.health' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
            { name: 'Revision', type: 'string', jsonPath: '.status.revision', priority: 1 },
            { name: 'Node', type: 'string', jsonPath: '.status.application.nodeName', priority: 1 },
            { name: 'Heartbeat', type: 'date', jsonPath: '.status.heartbeatTime', priority: 1 },
            { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1 },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'The state of one pod of a StatefulSet managed by sts-pilot, as the pilot inside it reports. Same name as the pod, owned by it.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: openApi(PilotSpec),
                status: openApi(PilotStatus),
              },
            },
          },
        },
      ],
    },
  };
}

export function pilotCrdYaml(): string {
  const header = [
    '# Generated by lib/pilot/crd.ts from the zod schema in lib/pilot/schema.ts. Do not edit:',
    '#   npm run manifests (the chart\'s files/crd-pilot.yaml, then manifests/ from the chart)',
    '',
  ].join('\n');
  return header + toYaml(pilotCrd());
}

if (import.meta.main) process.stdout.write(pilotCrdYaml());
