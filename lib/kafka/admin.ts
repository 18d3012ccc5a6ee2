import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Connection, Reader, Writer } from '@platformatic/kafka';
import { z } from 'zod';
import { isIP } from 'node:net';
import { describeError } from '../errors.ts';
import { shortLine } from '../sanitize.ts';

// The few Kafka admin requests sts-pilot makes, over one connection to one
// broker, with @platformatic/kafka's wire codecs (see docs/decisions.md: it is
// the only maintained Node client that speaks DescribeQuorum). Every answer is
// checked with zod before anyone reads it: the decoded objects are the client's
// guess at the bytes, and a hook decides on them. The client's Admin class
// (2.12.1) has no methods for UnregisterBroker or ListPartitionReassignments,
// but its codecs (unregisterBrokerV0, listPartitionReassignmentsV0) speak them:
// they are sent here like the rest.

export interface BrokerAddress {
  host: string;
  port: number;
  /**
   * The IP to connect to, already checked against the controller's address
   * policy (lib/egress.ts); `host` then only names the broker and is the TLS
   * server name. Without it, `host` is connected to.
   */
  connectTo?: string;
}

export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface KafkaAdminOptions {
  /** Tried in order until one answers. */
  bootstrap: readonly BrokerAddress[];
  /** TLS to the brokers; `ca` is the PEM bundle to trust (else the system's). */
  tls?: { ca?: string; serverName?: string };
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
  /** Per request, and per connection attempt. */
  timeoutMs: number;
  signal?: AbortSignal;
  clientId?: string;
}

const Int32 = z.number().int();
const Id = z.number().int().min(-1);
const Count = z.number().int().min(0);

/** Metadata v12: brokers (registered and unfenced only) and every topic's partitions with their ISR. */
export const MetadataAnswer = z.object({
  clusterId: z.string().nullable(),
  brokers: z.array(z.object({ nodeId: Id, host: z.string(), port: Int32 })),
  topics: z.array(
    z.object({
      errorCode: Int32,
      name: z.string().nullable(),
      isInternal: z.boolean(),
      partitions: z.array(
        z.object({
          errorCode: Int32,
          partitionIndex: Count,
          leaderId: Id,
          replicaNodes: z.array(Id),
          isrNodes: z.array(Id),
          offlineReplicas: z.array(Id),
        }),
      ),
    }),
  ),
});
export type MetadataAnswer = z.infer<typeof MetadataAnswer>;

/** DescribeCluster v2 (KIP-1073): every registered broker, fenced ones included and marked. */
export const ClusterAnswer = z.object({
  clusterId: z.string(),
  brokers: z.array(z.object({ brokerId: Id, host: z.string(), port: Int32, isFenced: z.boolean() })),
});
export type ClusterAnswer = z.infer<typeof ClusterAnswer>;

const Voter = z.object({
  replicaId: Id,
  /** The voter's log dir id as hex with dashes; all zeros in a static quorum (controller.quorum.voters, kraft.version 0). */
  replicaDirectoryId: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/).optional(),
  logEndOffset: z.bigint(),
  lastFetchTimestamp: z.bigint(),
  lastCaughtUpTimestamp: z.bigint(),
});

/** DescribeQuorum v2 of __cluster_metadata, as the active controller answers it (a broker forwards it there). */
export const QuorumAnswer = z.object({
  topics: z
    .array(
      z.object({
        topicName: z.string(),
        partitions: z.array(
          z.object({
            partitionIndex: Count,
            leaderId: Id,
            leaderEpoch: Int32,
            highWatermark: z.bigint(),
            currentVoters: z.array(Voter),
            observers: z.array(Voter),
          }),
        ),
      }),
    )
    .length(1),
});
export type QuorumAnswer = z.infer<typeof QuorumAnswer>;

/** DescribeConfigs v4: the values of the keys asked for, per resource. */
export const ConfigsAnswer = z.object({
  results: z.array(
    z.object({
      errorCode: Int32,
      errorMessage: z.string().nullable(),
      resourceType: Int32,
      resourceName: z.string(),
      configs: z.array(z.object({ name: z.string(), value: z.string().nullable() })),
    }),
  ),
});
export type ConfigsAnswer = z.infer<typeof ConfigsAnswer>;

/** ListPartitionReassignments v0 of every topic: the partitions whose replicas are being moved, and where. */
export const ReassignmentsAnswer = z.object({
  topics: z.array(
    z.object({
      name: z.string(),
      partitions: z.array(z.object({ partitionIndex: Count, replicas: z.array(Id), addingReplicas: z.array(Id), removingReplicas: z.array(Id) })),
    }),
  ),
});
export type ReassignmentsAnswer = z.infer<typeof ReassignmentsAnswer>;

/** What UnregisterBroker did: removed the registration, or there was none (already unregistered, or never registered). */
export type UnregisterOutcome = 'unregistered' | 'not-registered';

export const RESOURCE_TOPIC = 2;
export const RESOURCE_BROKER = 4;
export const METADATA_TOPIC = '__cluster_metadata';

/** What a KafkaAdmin sent and received so far: for the bench's count of one hook call's cost. */
export interface KafkaUsage {
  requests: number;
  /** Bytes written to and read from the socket while this admin was in use (on a shared connection, other users' bytes too if they overlap). */
  bytesSent: number;
  bytesReceived: number;
}

export interface KafkaAdmin {
  /** host:port of the broker this connection reached. */
  readonly broker: string;
  metadata(): Promise<MetadataAnswer>;
  cluster(): Promise<ClusterAnswer>;
  quorum(): Promise<QuorumAnswer>;
  configs(resources: { type: number; name: string; keys: string[] }[]): Promise<ConfigsAnswer>;
  /** Reassignments in progress, all topics (the broker forwards the request to the active controller). */
  reassignments(): Promise<ReassignmentsAnswer>;
  /**
   * UnregisterBroker v0 (KIP-500's API 64; Kafka >= 3.3 in KRaft): the controller forgets a broker
   * that is gone for good. BROKER_ID_NOT_REGISTERED is an answer, not an error: it makes the call idempotent.
   */
  unregisterBroker(id: number): Promise<UnregisterOutcome>;
  /** Requests and bytes since this admin was made. */
  usage(): KafkaUsage;
  close(): Promise<void>;
}

/**
 * An open connection to one broker, not bound to any caller's signal: what a
 * pool keeps between calls (lib/kafka/pool.ts). `admin(signal)` gives a caller
 * the requests on it, cancelled by that caller's signal only.
 */
export interface KafkaLink {
  readonly broker: string;
  /** Still connected: a broker that restarted or dropped the socket makes this false at once. */
  alive(): boolean;
  admin(signal: AbortSignal | undefined): KafkaAdmin;
  close(): Promise<void>;
}

type KafkaModule = typeof import('@platformatic/kafka');

// The client is loaded on first use: importing it costs the process about
// 12 MiB of RSS, and only Kafka hooks and Kafka pilots need it (docs/controller.md, memory).
let kafka: KafkaModule | undefined;
type DescribeClusterV2 = ReturnType<typeof import('@platformatic/kafka').createAPI<[], unknown>>;
let loading: Promise<{ k: KafkaModule; describeClusterV2: DescribeClusterV2 }> | undefined;
function client(): Promise<{ k: KafkaModule; describeClusterV2: DescribeClusterV2 }> {
  loading ??= import('@platformatic/kafka').then((k) => {
    kafka = k;
    return { k, describeClusterV2: k.createAPI<[], unknown>(60, 2, () => describeClusterV2Request(k), (c, key, v, r) => describeClusterV2Response(k, c, key, v, r)) };
  });
  return loading;
}

// DescribeCluster v2 is not among the client's codecs (it stops at v1): the
// same request plus include_fenced_brokers, the same answer plus is_fenced.
function describeClusterV2Request(k: KafkaModule): Writer {
  return k.Writer.create().appendBoolean(false).appendInt8(1).appendBoolean(true).appendTaggedFields();
}
function describeClusterV2Response(k: KafkaModule, _correlationId: number, apiKey: number, apiVersion: number, r: Reader): unknown {
  const out = {
    throttleTimeMs: r.readInt32(),
    errorCode: r.readInt16(),
    errorMessage: r.readNullableString(),
    endpointType: r.readInt8(),
    clusterId: r.readString(),
    controllerId: r.readInt32(),
    brokers: r.readArray((b) => {
      const broker = { brokerId: b.readInt32(), host: b.readString(), port: b.readInt32(), rack: b.readNullableString(), isFenced: b.readBoolean() };
      return broker;
    }),
    clusterAuthorizedOperations: r.readInt32(),
  };
  r.readTaggedFields();
  if (out.errorCode !== 0) throw new k.ResponseError(apiKey, apiVersion, { '/': [out.errorCode, out.errorMessage] }, out);
  return out;
}

/** The Kafka error codes (e.g. BROKER_ID_NOT_REGISTERED) inside a client error, if it carries any. */
function kafkaErrorIds(err: unknown): string[] {
  if (!kafka || !(err instanceof kafka.ResponseError)) return [];
  const inner = (err as unknown as { errors?: unknown[] }).errors ?? [];
  return inner.map((e) => (e as { apiId?: string }).apiId).filter((x): x is string => typeof x === 'string');
}

/** "DescribeQuorum: NOT_CONTROLLER (the server's message)": a Kafka error as people can read it. */
export function kafkaErrorText(err: unknown): string {
  // No client loaded means no Kafka error to unpack.
  if (kafka && err instanceof kafka.ResponseError) {
    const inner = (err as unknown as { errors?: unknown[] }).errors ?? [];
    const parts = inner.map((e) => {
      const x = e as { apiId?: string; serverErrorMessage?: string | null; message?: string };
      return [x.apiId, x.serverErrorMessage].filter(Boolean).join(': ') || x.message || '';
    });
    // The broker's own words: one sanitized line (they reach Events).
    if (parts.length > 0) return shortLine(parts.join('; '));
  }
  return describeError(err, 200);
}

function check<T>(what: string, schema: z.ZodType<T>, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (!r.success) throw new Error(`${what} answered unexpectedly: ${z.prettifyError(r.error).replace(/\s+/g, ' ').slice(0, 300)}`);
  return r.data;
}

/** Rejects when the signal aborts first; a late answer is dropped by the connection (it matches correlation ids), which stays usable. */
function raceSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new Error('cancelled (deadline or shutdown)'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('cancelled (deadline or shutdown)'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function connectionOptions(o: KafkaAdminOptions) {
  const tls: TlsOptions | undefined = o.tls ? { ...(o.tls.ca ? { ca: o.tls.ca } : {}), ...(o.tls.serverName ? { servername: o.tls.serverName } : {}) } : undefined;
  return {
    connectTimeout: o.timeoutMs,
    requestTimeout: o.timeoutMs,
    ...(tls ? { tls } : {}),
    ...(o.sasl ? { sasl: { mechanism: o.sasl.mechanism, username: o.sasl.username, password: o.sasl.password } } : {}),
  };
}

/**
 * A connection to the first bootstrap broker that accepts one. Throws with
 * every address's failure when none does.
 */
export async function openKafkaLink(o: KafkaAdminOptions): Promise<KafkaLink> {
  const { k, describeClusterV2 } = await client();
  const failures: string[] = [];
  for (const b of o.bootstrap) {
    // Connected by IP, the certificate is still checked against the broker's name.
    const serverName = o.tls && b.connectTo && !isIP(b.host) ? b.host : undefined;
    const conn = new k.Connection(o.clientId ?? 'sts-pilot', connectionOptions(serverName && !o.tls?.serverName ? { ...o, tls: { ...o.tls, serverName } } : o));
    conn.on('error', () => {}); // reported through the calls' own rejections
    try {
      await raceSignal(conn.connect(b.connectTo ?? b.host, b.port) as Promise<void>, o.signal);
      const broker = `${b.host}:${b.port}`;
      return {
        broker,
        alive: () => conn.isConnected(),
        admin: (signal) => adminOn(k, describeClusterV2, conn, broker, signal),
        close: () => conn.close().catch(() => {}),
      };
    } catch (err) {
      await conn.close().catch(() => {});
      if (o.signal?.aborted) throw new Error('cancelled (deadline or shutdown)');
      failures.push(`${b.host}:${b.port}: ${kafkaErrorText(err)}`);
    }
  }
  throw new Error(`no bootstrap broker answered (${failures.join('; ')})`);
}

/** A connection of its own (the pilot's probe, tests): closing the admin closes it. */
export async function openKafkaAdmin(o: KafkaAdminOptions): Promise<KafkaAdmin> {
  const link = await openKafkaLink(o);
  return { ...link.admin(o.signal), close: () => link.close() };
}

function adminOn(
  k: KafkaModule,
  describeClusterV2: DescribeClusterV2,
  conn: Connection,
  broker: string,
  signal: AbortSignal | undefined,
): KafkaAdmin {
  // Socket counters at the start: usage() is the difference (bytesRead/bytesWritten only grow).
  const socket = conn.socket as { bytesRead?: number; bytesWritten?: number } | undefined;
  const read0 = socket?.bytesRead ?? 0;
  const written0 = socket?.bytesWritten ?? 0;
  let requests = 0;
  async function send(run: () => Promise<unknown>): Promise<unknown> {
    requests++;
    return raceSignal(run(), signal);
  }
  async function call<T>(what: string, schema: z.ZodType<T>, run: () => Promise<unknown>): Promise<T> {
    let raw: unknown;
    try {
      raw = await send(run);
    } catch (err) {
      throw new Error(`${what} to broker ${broker}: ${kafkaErrorText(err)}`);
    }
    return check(`${what} from broker ${broker}`, schema, raw);
  }
  return {
    broker,
    metadata: () => call('Metadata', MetadataAnswer, () => k.metadataV12.api.async(conn, null, false, false)),
    cluster: () => call('DescribeCluster', ClusterAnswer, () => describeClusterV2.async(conn)),
    quorum: () =>
      call('DescribeQuorum', QuorumAnswer, () => k.describeQuorumV2.api.async(conn, [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0 }] }])),
    configs: (resources) =>
      call('DescribeConfigs', ConfigsAnswer, () =>
        k.describeConfigsV4.api.async(
          conn,
          resources.map((r) => ({ resourceType: r.type as 2, resourceName: r.name, configurationKeys: r.keys })),
          false,
          false,
        ),
      ),
    reassignments: () =>
      // Topics null: every reassignment in progress. The timeout is the server's, for forwarding to the controller.
      call('ListPartitionReassignments', ReassignmentsAnswer, () => k.listPartitionReassignmentsV0.api.async(conn, 10_000, null)),
    unregisterBroker: async (id) => {
      try {
        await send(() => k.unregisterBrokerV0.api.async(conn, id));
        return 'unregistered';
      } catch (err) {
        if (kafkaErrorIds(err).includes('BROKER_ID_NOT_REGISTERED')) return 'not-registered';
        throw new Error(`UnregisterBroker ${id} to broker ${broker}: ${kafkaErrorText(err)}`);
      }
    },
    usage: () => ({ requests, bytesSent: (socket?.bytesWritten ?? written0) - written0, bytesReceived: (socket?.bytesRead ?? read0) - read0 }),
    // The connection belongs to whoever made it (openKafkaAdmin, or a pool): closing a caller's view closes nothing.
    close: async () => {},
  };
}
