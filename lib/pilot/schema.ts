import { z } from 'zod';
import { API_GROUP, API_VERSION } from '../names.ts';

/**
 * The Pilot resource: one per pod of a subscribed StatefulSet, same name as the
 * pod, owned by it. The controller writes `spec`; the in-pod pilot is the only
 * writer of `status`. This file is the single source of its shape: the TS types
 * below are inferred from it and the CRD's OpenAPI schema is generated from it
 * (lib/pilot/crd.ts), so the three cannot drift.
 *
 * Absent means "unknown, so block": every field a hook decides on is optional,
 * and a reader must treat a missing one as a reason to hold, never as a default.
 */

export const PILOT_KIND = 'Pilot';
export const PILOT_LIST_KIND = 'PilotList';
export const PILOT_PLURAL = 'pilots';
export const PILOT_SINGULAR = 'pilot';
export const PILOT_SHORT_NAMES = ['plt'];
export const PILOT_API_VERSION = `${API_GROUP}/${API_VERSION}`;
/** Set by the controller on each Pilot it creates, to map a Pilot change to its StatefulSet without a lookup. */
export const PILOT_STATEFULSET_LABEL = `${API_GROUP}/statefulset`;

// metav1.Time as the API server writes it; our own writes use Date#toISOString().
const Time = z.iso.datetime({ offset: true });
const Count = z.number().int().min(0);

export const PilotPhase = z.enum(['Initializing', 'PreStart', 'Running', 'PreStop', 'Stopped', 'Failed']);
export type PilotPhase = z.infer<typeof PilotPhase>;

export const ConditionStatus = z.enum(['True', 'False', 'Unknown']);

/** Shaped like metav1.Condition, without observedGeneration (status is not derived from spec). */
export const PilotCondition = z.object({
  type: z.string().min(1).max(316),
  status: ConditionStatus,
  reason: z.string().max(1024).optional(),
  message: z.string().max(4096).optional(),
  lastTransitionTime: Time,
});
export type PilotCondition = z.infer<typeof PilotCondition>;

export const ClusterHealth = z.enum(['green', 'yellow', 'red']);
export type ClusterHealth = z.infer<typeof ClusterHealth>;

export const ShardCounts = z.object({
  started: Count,
  relocating: Count,
  initializing: Count,
});

/** Kafka (probe kafka): the node in this pod and the partitions it hosts. */
export const KafkaStatus = z.object({
  brokerId: Count.describe('node.id of the Kafka process in this pod (from its meta.properties)'),
  activeController: z.number().int().min(-1).optional().describe('node.id of the quorum leader, -1 when there is none'),
  registered: z.boolean().optional().describe('The broker is registered with the controller'),
  fenced: z.boolean().optional().describe('Registered but fenced: not serving yet'),
  partitions: Count.optional().describe('Partition replicas on this broker'),
  leaders: Count.optional().describe('Partitions this broker leads'),
  underReplicated: Count.optional().describe('Partitions on this broker whose in-sync replicas are fewer than their replicas'),
  underMinIsr: Count.optional().describe('Partitions on this broker whose in-sync replicas are fewer than min.insync.replicas'),
});
export type KafkaStatus = z.infer<typeof KafkaStatus>;

/** Cassandra (probe cassandra): a peer as this node's own gossip has it. */
export const CassandraPeer = z.object({
  hostId: z.string().min(1).max(63),
  address: z.string().max(253).optional().describe("The peer's broadcast address"),
  status: z.string().max(63).optional().describe("The peer's gossip STATUS in this node's view: NORMAL, BOOT, LEAVING, LEFT, MOVING, shutdown, ..."),
  alive: z
    .boolean()
    .optional()
    .describe("This node heard the peer's gossip heartbeat advance within the probe's liveness window (what its failure detector judges by); absent until two reads apart"),
});
export type CassandraPeer = z.infer<typeof CassandraPeer>;

/** Cassandra: hint files this node holds for one other node, from its hints directory (a file still being written included). */
export const CassandraHints = z.object({
  hostId: z.string().min(1).max(63).describe('The node the hints are for'),
  files: Count,
  bytes: Count,
});
export type CassandraHints = z.infer<typeof CassandraHints>;

/** Cassandra: the node's data directory as the pilot reads it in the pod (lib/probes/cassandra-disk.ts). */
export const CassandraDisk = z.object({
  dataDir: z.string().min(1).max(4096).describe('The data directory read (--app-data-dir)'),
  size: Count.describe('Bytes of the filesystem that holds it (statfs)'),
  free: Count.describe('Bytes still free on it for the node (statfs bavail, as df shows)'),
  load: Count.describe('Bytes of the files under it but snapshots/ and backups/: what a decommission streams away (Load in nodetool status)'),
  loadTime: z.string().max(64).optional().describe('When load was summed (it is summed at most once a minute)'),
});
export type CassandraDisk = z.infer<typeof CassandraDisk>;

/** Cassandra (probe cassandra): the node in this pod, in its own words (system.local, its own gossip, its hints directory). */
export const CassandraStatus = z.object({
  hostId: z.string().min(1).max(63).optional().describe("This node's host id (system.local)"),
  datacenter: z.string().max(253).optional(),
  rack: z.string().max(253).optional(),
  status: z.string().max(63).optional().describe("This node's own gossip STATUS: NORMAL, BOOT, LEAVING, LEFT, MOVING, shutdown, ..."),
  generation: z.number().int().min(0).optional().describe('Gossip generation: the start of this JVM, in seconds since the epoch on its clock'),
  schemaVersion: z.string().max(63).optional(),
  nativeTransport: z.boolean().optional().describe('Serving CQL clients (gossip RPC_READY)'),
  peers: z.array(CassandraPeer).max(1024).optional().describe('Every other node this node knows, as its gossip has it'),
  streams: Count.optional().describe('Stream sessions this node takes part in (repair, bootstrap, rebuild, decommission)'),
  hints: z.array(CassandraHints).max(1024).optional().describe('Hint files held here, per target node; absent when the hints directory is unknown'),
  disk: CassandraDisk.optional().describe('The data directory: its free space and the node\'s load; absent when it cannot be read'),
});
export type CassandraStatus = z.infer<typeof CassandraStatus>;

/**
 * What the application probe last saw. `probe` names the probe that wrote the
 * block (it tells a reader which fields to expect); every other field is
 * absent when the probe could not learn it. The generic fields (version,
 * health) feed the printer columns; the rest are Elasticsearch/OpenSearch's.
 */
export const ApplicationStatus = z.object({
  probe: z.string().min(1).max(63).describe('The probe that reported this block, e.g. elasticsearch'),
  error: z.string().max(4096).optional().describe('Why some or all of the fields below are unknown'),
  distribution: z.string().max(63).optional().describe('elasticsearch or opensearch'),
  version: z.string().max(63).optional(),
  nodeName: z.string().max(253).optional(),
  nodeId: z.string().max(253).optional(),
  clusterName: z.string().max(253).optional(),
  clusterUUID: z.string().max(253).optional(),
  roles: z.array(z.string().max(63)).max(64).optional(),
  health: ClusterHealth.optional().describe('Health of the whole cluster, as the elected master reports it'),
  shards: ShardCounts.optional().describe('Shard copies on this node, by state'),
  documents: Count.optional().describe('Documents in the shard copies on this node'),
  // Patroni/PostgreSQL (probe patroni); nodeName is the member's name, clusterName its scope.
  role: z.string().max(63).optional().describe('The role Patroni reports for this member: primary, replica, standby_leader'),
  state: z.string().max(63).optional().describe("The member's PostgreSQL state as Patroni reports it: running, starting, stopped, ..."),
  timeline: z.number().int().min(0).optional().describe('PostgreSQL timeline'),
  lag: Count.optional().describe('Bytes of WAL this replica is behind its leader, as Patroni reports it'),
  systemIdentifier: z.string().max(63).optional().describe('PostgreSQL database system identifier: the same on every copy of one cluster'),
  kafka: KafkaStatus.optional(),
  // Cassandra (probe cassandra): version is release_version, clusterName the ring's cluster_name.
  cassandra: CassandraStatus.optional(),
});
export type ApplicationStatus = z.infer<typeof ApplicationStatus>;

/** An action name: what the pilot is asked to do; it runs only actions it has a command for (e.g. decommission). */
export const ActionName = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be a lower-case word (a-z, 0-9, -), at most 63 characters');

/**
 * A request from the controller (a hook) to the pod's pilot: run `action` once.
 * The id makes it once: the pilot runs a request whose id its status does not
 * list yet, and never the same id twice (not across its own restarts either).
 */
export const PilotActionRequest = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, 'must be a lower-case name (a-z, 0-9, ., -), at most 63 characters').describe('Unique among this Pilot\'s requests; the pilot runs each id at most once'),
  action: ActionName.describe('What to run: an action the pilot was given a command for; it refuses any other'),
  requestTime: Time.optional().describe('When the controller asked'),
  reason: z.string().max(1024).optional().describe('Why, for people'),
});
export type PilotActionRequest = z.infer<typeof PilotActionRequest>;

/** The most requests a Pilot keeps: a pod asks for a few actions in its life (a decommission, a retry). */
export const MAX_ACTIONS = 16;

export const PilotSpec = z.object({
  application: z.string().min(1).max(63).describe('The hook or application name the pilot serves'),
  options: z.record(z.string(), z.string()).optional().describe("The hook's options, as the controller parsed them"),
  // Keyed by id (as conditions by type): the server refuses two requests with one id.
  actions: z
    .array(PilotActionRequest)
    .max(MAX_ACTIONS)
    .optional()
    .describe('Requests to the pilot, written by the controller only, appended and never changed; the pilot reports each in status.actions')
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['id'] }),
});
export type PilotSpec = z.infer<typeof PilotSpec>;

export const ActionState = z.enum(['Running', 'Succeeded', 'Failed', 'Refused']);
export type ActionState = z.infer<typeof ActionState>;

/** How the pilot handled one request of spec.actions (same id). */
export const PilotActionStatus = z.object({
  id: z.string().min(1).max(63),
  action: z.string().min(1).max(63),
  state: ActionState.describe('Running (written before the command starts), Succeeded, Failed (non-zero exit, or interrupted), Refused (no command for this action: never run)'),
  startTime: Time.optional(),
  endTime: Time.optional(),
  exitCode: z.number().int().min(0).max(255).optional().describe("The command's exit code (128+n: killed by signal n)"),
  message: z.string().max(1024).optional().describe('Why, in a sentence'),
  output: z.string().max(4096).optional().describe("The last lines of the command's output (stdout and stderr)"),
});
export type PilotActionStatus = z.infer<typeof PilotActionStatus>;

export const PilotStatus = z.object({
  phase: PilotPhase,
  revision: z.string().max(253).optional().describe("The pod's controller-revision-hash, as the pilot inside it reports"),
  heartbeatTime: Time.describe('When the pilot last wrote this status; older than its heartbeat period means the pilot is gone'),
  message: z.string().max(4096).optional(),
  // A map keyed by type, as metav1.Condition lists are: server-side apply merges them by type.
  conditions: z.array(PilotCondition).max(32).optional().meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  exitCode: z.number().int().min(0).max(255).optional().describe('How the application exited (128+n: killed by signal n)'),
  application: ApplicationStatus.optional(),
  actions: z
    .array(PilotActionStatus)
    .max(MAX_ACTIONS)
    .optional()
    .describe('What became of each request of spec.actions')
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['id'] }),
});
export type PilotStatus = z.infer<typeof PilotStatus>;

/** Only the metadata fields sts-pilot reads; the rest passes through untouched. */
const PilotMetadata = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  creationTimestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  ownerReferences: z
    .array(z.looseObject({ apiVersion: z.string(), kind: z.string(), name: z.string(), uid: z.string(), controller: z.boolean().optional() }))
    .optional(),
});

export const Pilot = z.object({
  apiVersion: z.literal(PILOT_API_VERSION).optional(),
  kind: z.literal(PILOT_KIND).optional(),
  metadata: PilotMetadata,
  spec: PilotSpec,
  status: PilotStatus.optional(),
});
export type Pilot = z.infer<typeof Pilot>;

/**
 * Parse a Pilot as the API returned it. A status that does not parse (written
 * by another version of the pilot, say) is dropped rather than the whole
 * object: the Pilot still exists, its status is unknown, so readers block.
 */
export function parsePilot(raw: unknown): { pilot: Pilot; statusError?: string } | { error: string } {
  const whole = Pilot.safeParse(raw);
  if (whole.success) return { pilot: whole.data };
  if (typeof raw !== 'object' || raw === null) return { error: z.prettifyError(whole.error) };
  const withoutStatus = Pilot.safeParse({ ...raw, status: undefined });
  if (withoutStatus.success) return { pilot: withoutStatus.data, statusError: z.prettifyError(whole.error) };
  return { error: z.prettifyError(whole.error) };
}

/** uid of the Pod that owns a Pilot (or any object), if a Pod does. */
export function podOwnerUid(o: { metadata?: { ownerReferences?: readonly { apiVersion: string; kind: string; uid: string }[] } }): string | undefined {
  return o.metadata?.ownerReferences?.find((r) => r.kind === 'Pod' && r.apiVersion === 'v1')?.uid;
}
