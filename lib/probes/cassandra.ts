import type cassandra from 'cassandra-driver';
import { describeError } from '../errors.ts';
import type { ApplicationStatus, CassandraPeer, CassandraStatus } from '../pilot/schema.ts';
import { dataDirReader } from './cassandra-disk.ts';
import { readHintsDir } from './cassandra-hints.ts';
import { HeartbeatLiveness, LIVENESS_WINDOW_MS } from './cassandra-liveness.ts';
import type { ApplicationProbe } from './types.ts';

// The local Cassandra node, in its own words, over the native protocol: who it
// is (system.local), its own gossip state and its view of every peer
// (system_views.gossip_info), its stream sessions (system_views.streaming), and
// the hint files in its hints directory (cassandra-hints.ts). Virtual tables
// are node-local: the client is held to the one local host (an allow-list load
// balancing policy; every other host the driver learns of is ignored, no pool,
// no query), so what the Pilot shows is this node's view, never a neighbour's.
// One client is kept between reads (a connection per second would cost more
// than the reads); it is dropped and made anew after a failure.

type Driver = typeof cassandra;
let loaded: Promise<Driver> | undefined;
// Loaded on first use, as in hooks/cassandra/read.ts: a pilot of another application does not pay for it.
const driver = (): Promise<Driver> => (loaded ??= import('cassandra-driver').then((m) => m.default));

export interface CassandraProbeOptions {
  host: string;
  port: number;
  /** PasswordAuthenticator credentials, when the node asks for a login. */
  auth?: { username: string; password: string };
  /** The node's hints_directory; without it `hints` is absent (unknown). */
  hintsDir?: string;
  /** The node's data directory (data_file_directories); without it `disk` is absent (unknown). */
  dataDir?: string;
  /** How often the data directory is walked for the node's load (ms, default 60 s). */
  loadRefreshMs?: number;
  timeoutMs?: number;
  livenessWindowMs?: number;
  /** Injected clock, for tests. */
  now?: () => number;
}

const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const num = (v: unknown): number | undefined => {
  if (v === null || v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
};
/** A gossip STATUS value without its tokens: "NORMAL,-123…" is NORMAL, "shutdown,true" is shutdown. */
export const gossipStatus = (v: unknown): string | undefined => str(v).split(',')[0]?.trim() || undefined;
const RUNNING_STREAM = (status: string): boolean => !/^(success|failure|failed|complete)/i.test(status);

export function cassandraProbe(o: CassandraProbeOptions): ApplicationProbe {
  const timeoutMs = o.timeoutMs ?? 5000;
  const now = o.now ?? Date.now;
  const liveness = new HeartbeatLiveness(o.livenessWindowMs ?? LIVENESS_WINDOW_MS);
  const endpoint = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
  let client: cassandra.Client | undefined;
  let lastState: string | undefined;
  const readDisk = o.dataDir ? dataDirReader(o.dataDir, { ...(o.loadRefreshMs !== undefined ? { refreshMs: o.loadRefreshMs } : {}), now }) : undefined;

  async function connected(): Promise<cassandra.Client> {
    if (client) return client;
    const d = await driver();
    const c = new d.Client({
      contactPoints: [endpoint],
      policies: {
        loadBalancing: new d.policies.loadBalancing.AllowListPolicy(new d.policies.loadBalancing.RoundRobinPolicy(), [`${o.host}:${o.port}`]),
        // No retry on another host: there is none.
        reconnection: new d.policies.reconnection.ConstantReconnectionPolicy(2000),
      },
      pooling: { coreConnectionsPerHost: { [d.types.distance.local]: 1, [d.types.distance.remote]: 0 }, warmup: true },
      socketOptions: { connectTimeout: timeoutMs, readTimeout: timeoutMs },
      // The schema metadata (keyspaces, tables) is not needed: no refresh of it after every schema change.
      isMetadataSyncEnabled: false,
      ...(o.auth ? { authProvider: new d.auth.PlainTextAuthProvider(o.auth.username, o.auth.password) } : {}),
    });
    try {
      await c.connect();
    } catch (err) {
      await c.shutdown().catch(() => {});
      throw err;
    }
    client = c;
    return c;
  }

  async function drop(): Promise<void> {
    const c = client;
    client = undefined;
    await c?.shutdown().catch(() => {});
  }

  return {
    name: 'cassandra',
    async probe(signal) {
      const status: ApplicationStatus = { probe: 'cassandra' };
      const errors: string[] = [];
      const cass: CassandraStatus = {};
      // The hints directory does not need the node: read it even while the JVM starts or stops.
      const hints = o.hintsDir
        ? readHintsDir(o.hintsDir).then(
            (h) => h,
            (err: unknown) => {
              errors.push(`cannot list the hints directory ${o.hintsDir}: ${describeError(err, 200)}`);
              return undefined;
            },
          )
        : Promise.resolve(undefined);
      const aborted = new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      aborted.catch(() => {});
      let c: cassandra.Client | undefined;
      try {
        c = await Promise.race([connected(), aborted]);
      } catch (err) {
        if (signal.aborted) throw err;
        errors.push(`cannot connect to Cassandra at ${endpoint}: ${describeError(err, 300)}`);
      }
      if (c) {
        const q = (cql: string) => Promise.race([(c as cassandra.Client).execute(cql, [], { isIdempotent: true }).then((r) => r.rows), aborted]);
        const [local, gossip, streams] = await Promise.all(
          [
            'SELECT host_id, cluster_name, release_version, data_center, rack, schema_version FROM system.local',
            'SELECT * FROM system_views.gossip_info',
            'SELECT status FROM system_views.streaming',
          ].map((cql) =>
            q(cql).catch((err: unknown) => {
              if (signal.aborted) throw err;
              errors.push(`${cql.replace(/^SELECT .* FROM /, '')}: ${describeError(err, 200)}`);
              return undefined;
            }),
          ),
        );
        // Every query failed: the connection is likely stale (a node that restarted under a kept client); make a new one next time.
        if (!local && !gossip && !streams) await drop();
        const me = local?.[0];
        if (me) {
          const hostId = str(me.get('host_id'));
          if (hostId) {
            status.nodeId = hostId;
            cass.hostId = hostId;
          }
          if (me.get('cluster_name')) status.clusterName = str(me.get('cluster_name'));
          if (me.get('release_version')) status.version = str(me.get('release_version'));
          if (me.get('data_center')) cass.datacenter = str(me.get('data_center'));
          if (me.get('rack')) cass.rack = str(me.get('rack'));
          if (me.get('schema_version')) cass.schemaVersion = str(me.get('schema_version'));
        }
        if (gossip && cass.hostId) {
          const samples = [];
          const peers: CassandraPeer[] = [];
          for (const row of gossip) {
            const id = str(row.get('host_id'));
            const st = gossipStatus(row.get('status_with_port')) ?? gossipStatus(row.get('status'));
            if (id === cass.hostId) {
              if (st) cass.status = st;
              const g = num(row.get('generation'));
              if (g !== undefined) cass.generation = g;
              const schema = str(row.get('schema'));
              if (schema && !cass.schemaVersion) cass.schemaVersion = schema;
              const rpc = str(row.get('rpc_ready'));
              if (rpc) cass.nativeTransport = rpc === 'true';
              continue;
            }
            if (!id) continue; // a node known by address only (not yet joined): nothing to name it by
            const hb = num(row.get('heartbeat'));
            const g = num(row.get('generation'));
            if (hb !== undefined && g !== undefined) samples.push({ hostId: id, generation: g, heartbeat: hb });
            const addr = str(row.get('address'));
            peers.push({ hostId: id, ...(addr ? { address: addr.replace(/^\//, '') } : {}), ...(st ? { status: st } : {}) });
          }
          const alive = liveness.observe(samples, now());
          for (const p of peers) {
            const a = alive.get(p.hostId);
            if (a !== undefined) p.alive = a;
          }
          cass.peers = peers.sort((a, b) => a.hostId.localeCompare(b.hostId));
          if (cass.status === undefined) errors.push('this node has no row of its own in system_views.gossip_info');
        }
        if (streams) cass.streams = streams.filter((s) => RUNNING_STREAM(str(s.get('status')))).length;
      }
      const h = await hints;
      if (h) cass.hints = h;
      // Nor does the data directory: free space and load are the pod's, read in the pod even while the JVM does not
      // answer. The load is walked again at once when the node's state or streaming changed (a bootstrap done, a
      // stream ended): the figure a decommission is judged by is never a minute behind a bootstrap.
      const state = `${cass.status ?? '?'}|${(cass.streams ?? 0) > 0}`;
      const d = readDisk
        ? await readDisk(state !== lastState).then(
            (x) => x,
            (err: unknown) => {
              errors.push(`cannot read the data directory ${o.dataDir}: ${describeError(err, 200)}`);
              return undefined;
            },
          )
        : undefined;
      lastState = state;
      if (d) cass.disk = d;
      if (Object.keys(cass).length > 0) status.cassandra = cass;
      if (errors.length > 0) status.error = errors.join('; ').slice(0, 4000);
      return status;
    },
  };
}
