import { z } from 'zod';
import { Health } from './options.ts';

// The answers of Elasticsearch/OpenSearch the hook reads: only the fields it
// decides on. Loose objects, because both servers add fields from version to
// version; the fields named here must have exactly these types, or the answer
// is nonsense and the hook holds.

const Count = z.number().int().min(0);

/** GET /_cluster/health */
export const HealthAnswer = z.looseObject({
  status: Health,
  number_of_nodes: Count,
  relocating_shards: Count,
  initializing_shards: Count,
  unassigned_shards: Count,
  delayed_unassigned_shards: Count.optional(),
  // Elasticsearch 8.x only.
  unassigned_primary_shards: Count.optional(),
});
export type HealthAnswer = z.infer<typeof HealthAnswer>;

/** GET /_cluster/health?level=indices&filter_path=indices.*.status (filter_path drops an empty map) */
export const IndexHealthAnswer = z.looseObject({
  indices: z.record(z.string(), z.looseObject({ status: Health })).optional(),
});

/** GET /_cluster/settings?flat_settings=true */
export const SettingsAnswer = z.looseObject({
  persistent: z.record(z.string(), z.unknown()),
  transient: z.record(z.string(), z.unknown()),
});
export type SettingsAnswer = z.infer<typeof SettingsAnswer>;

export const ShardState = z.enum(['STARTED', 'RELOCATING', 'INITIALIZING']);

/**
 * GET /_cluster/state/nodes[,routing_nodes]?filter_path=cluster_uuid,nodes.*.name,...
 * The master's view: which nodes are members, and which shard copies each one
 * holds. A relocating copy is listed twice: RELOCATING on its source and
 * INITIALIZING on its target. A node with no copies is not in routing_nodes.
 */
export const StateAnswer = z.looseObject({
  cluster_uuid: z.string().min(1),
  nodes: z.record(z.string(), z.looseObject({ name: z.string(), version: z.string().optional() })).default({}),
  routing_nodes: z
    .looseObject({
      nodes: z
        .record(
          z.string(),
          z.array(z.looseObject({ state: ShardState, index: z.string(), shard: Count, primary: z.boolean() })),
        )
        .default({}),
    })
    .optional(),
});
export type StateAnswer = z.infer<typeof StateAnswer>;

/** PUT /_cluster/settings */
export const PutSettingsAnswer = z.looseObject({ acknowledged: z.boolean() });

/** POST /_flush */
export const FlushAnswer = z.looseObject({
  _shards: z.looseObject({
    total: Count,
    successful: Count,
    failed: Count,
    failures: z.array(z.looseObject({ index: z.string().optional(), shard: z.number().optional(), reason: z.unknown().optional() })).optional(),
  }),
});

/** The error body of a non-2xx answer, for the reason people read. */
export const ErrorAnswer = z.looseObject({
  error: z.union([z.string(), z.looseObject({ type: z.string().optional(), reason: z.string().nullish() })]),
});
