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

const Copy = z.looseObject({ state: ShardState, index: z.string(), shard: Count, primary: z.boolean() });

/**
 * GET /_cluster/state/nodes,master_node?filter_path=cluster_uuid,master_node,nodes.*.name
 * The elected master's view of who is a member. (Elasticsearch adds versions
 * here, OpenSearch does not: those come from the nodes info.)
 */
export const StateAnswer = z.looseObject({
  cluster_uuid: z.string().min(1),
  master_node: z.string().nullish(),
  nodes: z.record(z.string(), z.looseObject({ name: z.string(), version: z.string().optional() })).default({}),
  // Only in the unit tests' answers and in older reads: every node's copies. The hook reads one node's (NodeCopiesAnswer).
  routing_nodes: z.looseObject({ nodes: z.record(z.string(), z.array(Copy)).default({}) }).optional(),
});
export type StateAnswer = z.infer<typeof StateAnswer>;

/** GET /?filter_path=cluster_uuid: the cluster a node belongs to ("_na_" before it has formed). */
export const RootAnswer = z.looseObject({ cluster_uuid: z.string().min(1) });

/**
 * GET /_nodes/_all/none?filter_path=nodes.*.name,nodes.*.version,nodes.*.roles,nodes.*.build_flavor
 * Versions and roles of every node; `build_flavor` is Elasticsearch's (OpenSearch has none).
 */
export const NodesInfoAnswer = z.looseObject({
  nodes: z
    .record(
      z.string(),
      z.looseObject({ name: z.string(), version: z.string(), roles: z.array(z.string()).optional(), build_flavor: z.string().optional() }),
    )
    .default({}),
});
export type NodesInfoAnswer = z.infer<typeof NodesInfoAnswer>;

/** GET /_cluster/state/metadata/<no index>?filter_path=metadata.cluster_coordination: the voting configuration. */
export const CoordinationAnswer = z.looseObject({
  metadata: z
    .looseObject({
      cluster_coordination: z
        .looseObject({
          last_committed_config: z.array(z.string()).optional(),
          voting_config_exclusions: z.array(z.looseObject({ node_id: z.string().optional(), node_name: z.string().optional() })).optional(),
        })
        .optional(),
    })
    .optional(),
});
export type CoordinationAnswer = z.infer<typeof CoordinationAnswer>;

/**
 * GET /_cluster/state/routing_nodes?filter_path=routing_nodes.nodes.<id>.*,routing_nodes.unassigned.*
 * The copies of one node, and the unassigned ones: a few bytes per copy of that
 * node, instead of every copy of the cluster.
 */
export const NodeCopiesAnswer = z.looseObject({
  routing_nodes: z
    .looseObject({
      nodes: z.record(z.string(), z.array(Copy)).default({}),
      unassigned: z.array(z.looseObject({ index: z.string(), shard: Count, primary: z.boolean() })).default([]),
    })
    .optional(),
});
export type NodeCopiesAnswer = z.infer<typeof NodeCopiesAnswer>;

/** GET /_all/_settings/index.number_of_replicas?filter_path=*.settings.index.number_of_replicas */
export const ReplicasAnswer = z.record(
  z.string(),
  z.looseObject({ settings: z.looseObject({ index: z.looseObject({ number_of_replicas: z.coerce.number().int().min(0) }) }) }),
);

/** GET /_cat/allocation?format=json&bytes=b: per node, its shard count and disk. Missing numbers are null on a node without stats. */
const CatNumber = z.union([z.string(), z.number()]).nullish().transform((v) => (v === null || v === undefined || v === '' ? undefined : Number(v)));
export const AllocationAnswer = z.array(
  z.looseObject({
    node: z.string(),
    shards: CatNumber,
    'disk.indices': CatNumber,
    'disk.used': CatNumber,
    'disk.avail': CatNumber,
    'disk.total': CatNumber,
  }),
);
export type AllocationAnswer = z.infer<typeof AllocationAnswer>;

const Decider = z.looseObject({ decider: z.string(), decision: z.string(), explanation: z.string().optional() });

/** POST /_cluster/allocation/explain for a copy that stays where it is. */
export const ExplainAnswer = z.looseObject({
  index: z.string().optional(),
  shard: z.number().optional(),
  can_remain_on_current_node: z.string().optional(),
  can_remain_decisions: z.array(Decider).optional(),
  can_move_to_other_node: z.string().optional(),
  move_explanation: z.string().optional(),
  node_allocation_decisions: z
    .array(z.looseObject({ node_name: z.string(), node_decision: z.string().optional(), deciders: z.array(Decider).optional() }))
    .optional(),
});
export type ExplainAnswer = z.infer<typeof ExplainAnswer>;

/** GET /_nodes/shutdown (Elasticsearch >= 7.15, x-pack). */
export const ShutdownStatus = z.enum(['NOT_STARTED', 'IN_PROGRESS', 'STALLED', 'COMPLETE']);
export const ShutdownAnswer = z.looseObject({
  nodes: z
    .array(
      z.looseObject({
        node_id: z.string(),
        type: z.string(),
        reason: z.string().optional(),
        status: ShutdownStatus,
        shard_migration: z.looseObject({ status: ShutdownStatus, explanation: z.string().optional() }).optional(),
        allocation_delay: z.string().optional(),
      }),
    )
    .default([]),
});
export type ShutdownAnswer = z.infer<typeof ShutdownAnswer>;

/** An answer whose content we do not need: `{"acknowledged": true}` and the like. */
export const AckAnswer = z.looseObject({ acknowledged: z.boolean().optional() });

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

/**
 * GET /_cluster/settings?include_defaults=true&filter_path=defaults.cluster.routing.allocation.disk.*
 * What the nodes' own config (elasticsearch.yml) and the built-in defaults say, where the cluster settings say nothing.
 */
export const DiskDefaultsAnswer = z.looseObject({
  defaults: z
    .looseObject({
      cluster: z.looseObject({
        routing: z.looseObject({
          allocation: z.looseObject({
            disk: z.looseObject({
              threshold_enabled: z.union([z.string(), z.boolean()]).optional(),
              watermark: z.looseObject({ high: z.string().optional() }).optional(),
            }),
          }),
        }),
      }),
    })
    .optional(),
});
export type DiskDefaultsAnswer = z.infer<typeof DiskDefaultsAnswer>;
