import { z } from 'zod';

// The answers of Patroni's REST API the hook reads: only the fields it decides
// on. Loose objects, because Patroni adds fields from version to version; the
// fields named here must have these types, or the answer is nonsense and the
// hook holds. Checked against Patroni 4.1.

const Bytes = z.number().int().min(0);

/** One member in GET /cluster. `lag` is "unknown" when Patroni cannot tell. */
export const ClusterMember = z.looseObject({
  name: z.string().min(1),
  role: z.string(),
  state: z.string(),
  api_url: z.string().optional(),
  host: z.string().optional(),
  port: z.number().optional(),
  timeline: z.number().int().optional(),
  lag: z.union([Bytes, z.string()]).optional(),
  receive_lag: z.union([Bytes, z.string()]).nullish(),
  replay_lag: z.union([Bytes, z.string()]).nullish(),
  // Tags as Patroni stores them: any JSON (Patroni reads nofailover/nosync by Python truthiness, the
  // priorities with parse_int: view.ts mirrors that), so no type is imposed here.
  tags: z.record(z.string(), z.unknown()).optional(),
});
export type ClusterMember = z.infer<typeof ClusterMember>;

/** GET /cluster: every member as the DCS knows it, and whether the cluster is paused. */
export const ClusterAnswer = z.looseObject({
  members: z.array(ClusterMember),
  scope: z.string().optional(),
  pause: z.boolean().optional(),
  scheduled_switchover: z.unknown().optional(),
});
export type ClusterAnswer = z.infer<typeof ClusterAnswer>;

/** GET /patroni on one member: what that member itself says. */
export const MemberAnswer = z.looseObject({
  state: z.string(),
  role: z.string(),
  server_version: z.number().int().optional(),
  timeline: z.number().int().optional(),
  replication_state: z.string().optional(),
  database_system_identifier: z.string().optional(),
  pause: z.boolean().optional(),
  /** A replica's WAL positions (bytes): received and flushed, and replayed. Null while unknown (no WAL receiver). */
  xlog: z
    .looseObject({ paused: z.boolean().optional(), received_location: z.number().int().min(0).nullish(), replayed_location: z.number().int().min(0).nullish() })
    .optional(),
  patroni: z.looseObject({ version: z.string().optional(), scope: z.string().optional(), name: z.string().optional() }).optional(),
});
export type MemberAnswer = z.infer<typeof MemberAnswer>;

/**
 * GET /config: the dynamic configuration Patroni keeps in the DCS. Patroni
 * parses its booleans leniently ("on", "yes", 1) and ttl may be a string; only
 * what the scale-down decisions read.
 */
export const ConfigAnswer = z.looseObject({
  ttl: z.union([z.number(), z.string()]).optional(),
  synchronous_mode: z.unknown().optional(),
  synchronous_mode_strict: z.unknown().optional(),
});
export type ConfigAnswer = z.infer<typeof ConfigAnswer>;
