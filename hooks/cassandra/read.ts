import * as tls from 'node:tls';
import type cassandra from 'cassandra-driver';
import { describeError } from '../../lib/errors.ts';
import { HookNotReady, type HookContext } from '../../lib/hook.ts';
import { tlsProblem } from '../../lib/tls-problem.ts';
import type { Options } from './options.ts';
import { type CassandraView, departed, type HintsView, type KeyspaceView, type NodeView, type StreamView } from './view.ts';

// The reads of the cassandra hook: every call connects afresh over the native
// protocol (the maintained Node driver, cassandra-driver), asks every node for
// its own view (system_views.gossip_info, .streaming, .pending_hints: virtual
// tables of Cassandra 4.1 and later, read per node) and the driver's token map
// for the replicas of each range, then closes. Every address goes through the
// controller's egress policy, the contact points and every peer the driver
// learns of alike (a refused peer is left out, and the ring read says so).
// The driver is loaded on first use: a controller or pilot without a
// cassandra StatefulSet does not pay for it (about 10 MiB of the bundle's RSS).

type Driver = typeof cassandra;
let loaded: Promise<Driver> | undefined;
const driver = (): Promise<Driver> => (loaded ??= import('cassandra-driver').then((m) => m.default));

export type ReadContext = Pick<HookContext<Options>, 'options' | 'signal' | 'secrets' | 'egress'>;

const Row = (r: cassandra.types.Row, k: string): unknown => r.get(k);
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const hostOf = (addrPort: string): string => addrPort.replace(/^\/?/, '').replace(/:\d+$/, '');

/** The short class name of a replication strategy. */
const shortClass = (s: string | undefined): string => (s ?? '').split('.').at(-1) ?? '';

async function credentials(d: Driver, ctx: ReadContext): Promise<cassandra.auth.AuthProvider | undefined> {
  const name = ctx.options.authSecret;
  if (!name) return undefined;
  let data: Record<string, string>;
  try {
    data = await ctx.secrets(name);
  } catch (err) {
    throw new HookNotReady(`cannot read Secret ${name}: ${describeError(err, 200)}`);
  }
  if (!data.username || !data.password) throw new HookNotReady(`Secret ${name} needs non-empty username and password`);
  return new d.auth.PlainTextAuthProvider(data.username, data.password);
}

const CA_KEY = 'ca.crt';

/**
 * TLS to the native port, when the options ask for it: the CA from ca-secret
 * (else the system's), and each node's certificate checked against the node's
 * address or tls-server-name. The driver itself would not verify (its
 * default is rejectUnauthorized: false).
 */
export async function tlsOptions(ctx: ReadContext): Promise<tls.ConnectionOptions | undefined> {
  const t = ctx.options.tls;
  if (!t) return undefined;
  let ca: string | undefined;
  if (t.caSecret) {
    let data: Record<string, string>;
    try {
      data = await ctx.secrets(t.caSecret);
    } catch (err) {
      throw new HookNotReady(`cannot read Secret ${t.caSecret}: ${describeError(err, 200)}`);
    }
    ca = data[CA_KEY];
    if (!ca || !ca.includes('-----BEGIN CERTIFICATE-----')) throw new HookNotReady(`Secret ${t.caSecret} has no PEM certificate under ${CA_KEY}`);
  }
  const name = t.serverName;
  return {
    rejectUnauthorized: true,
    ...(ca ? { ca } : {}),
    ...(!t.verifyServerName ? { checkServerIdentity: () => undefined } : name ? { servername: name, checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(name, cert) } : {}),
  };
}

/** Why no contact point let us in, in words a person acts on when it is TLS; else each host's own error. */
export function connectProblem(err: unknown, o: Options): string {
  const perHost = Object.entries((err as { innerErrors?: Record<string, unknown> } | null)?.innerErrors ?? {});
  const inner = perHost.map(([, e]) => e);
  for (const e of [err, ...inner]) {
    const p = tlsProblem(e, !!o.tls?.caSecret);
    if (!p) continue;
    if (/ALTNAME/.test(p)) return `${p}: ${o.tls?.serverName ? `it does not carry ${o.tls.serverName} (tls-server-name)` : "it does not carry the node's address; name the DNS name every node's certificate carries in tls-server-name, or set tls-verify-server-name: \"false\" to check the CA only"}`;
    return p;
  }
  // The driver's own message embeds each host's error with its stack: the hosts' errors alone, one line each.
  const said = perHost.length > 0 ? perHost.map(([host, e]) => `${host}: ${describeError(e, 150)}`).join('; ') : describeError(err, 300);
  // A TLS-only native port resets a plain-text connection at its first frame (measured on 4.1 and 5.0): unless
  // nothing listened, the name is unknown or the login was refused, TLS may be what is missing.
  const notTls = (e: unknown) => {
    const x = e as { code?: unknown; name?: unknown } | null;
    return x?.code === 'ECONNREFUSED' || x?.code === 'ENOTFOUND' || x?.code === 'EAI_AGAIN' || x?.name === 'AuthenticationError';
  };
  if (!o.tls && inner.length > 0 && !inner.some(notTls)) return `${said}; if the native port takes only TLS (client_encryption_options), set tls: "true"`;
  return said;
}

/** Every peer the driver learns of goes through the egress policy; a refused one translates to nothing, which the driver leaves out. */
type AddressTranslator = cassandra.policies.addressResolution.AddressTranslator;
type Egress = ReadContext['egress'];

/**
 * Every peer the driver learns of goes through the egress policy; a refused one
 * translates to nothing, which the driver leaves out. The driver's typings
 * declare AddressTranslator an interface; at run time it is a class the driver
 * checks with instanceof.
 */
function egressTranslator(d: Driver, egress: Egress, refused: string[]): AddressTranslator {
  const Base = (d.policies.addressResolution as unknown as { AddressTranslator: new () => AddressTranslator }).AddressTranslator;
  class EgressTranslator extends Base {
    override translate(address: string, port: number, callback: (endPoint: string) => void): void {
      egress.address(address, port).then(
        (ip) => callback(`${ip}:${port}`),
        (err) => {
          refused.push(`${address}:${port} (${describeError(err, 100)})`);
          (callback as (e: string | null) => void)(null);
        },
      );
    }
  }
  return new EgressTranslator();
}

/** Connects, runs `f`, closes: every call reads afresh. Connection failures are a HookNotReady that names the contact points. */
export async function withClient<T>(ctx: ReadContext, f: (c: cassandra.Client, refused: string[]) => Promise<T>): Promise<T> {
  const o = ctx.options;
  const points: string[] = [];
  const problems: string[] = [];
  for (const p of o.contactPoints) {
    try {
      points.push(`${await ctx.egress.address(p.host, p.port)}:${p.port}`);
    } catch (err) {
      problems.push(`${p.host}:${p.port}: ${describeError(err, 200)}`);
    }
  }
  if (points.length === 0) throw new HookNotReady(`no Cassandra contact point may be reached: ${problems.join('; ')}`);
  const refused: string[] = [];
  const d = await driver();
  const translator = egressTranslator(d, ctx.egress, refused);
  const ms = o.timeoutSeconds * 1000;
  const [auth, sslOptions] = await Promise.all([credentials(d, ctx), tlsOptions(ctx)]);
  const client = new d.Client({
    contactPoints: points,
    policies: { loadBalancing: new d.policies.loadBalancing.RoundRobinPolicy(), addressResolution: translator },
    pooling: { coreConnectionsPerHost: { [d.types.distance.local]: 1, [d.types.distance.remote]: 1 } },
    socketOptions: { connectTimeout: ms, readTimeout: ms },
    ...(auth ? { authProvider: auth } : {}),
    ...(sslOptions ? { sslOptions } : {}),
  });
  const stop = () => void client.shutdown().catch(() => {});
  ctx.signal.addEventListener('abort', stop, { once: true });
  try {
    try {
      await client.connect();
    } catch (err) {
      throw new HookNotReady(`cannot connect to Cassandra at ${o.contactPoints.map((p) => `${p.host}:${p.port}`).join(', ')}${o.tls ? ' over TLS' : ''}: ${connectProblem(err, o)}`);
    }
    return await f(client, refused);
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    await client.shutdown().catch(() => {});
  }
}

interface PerNode {
  host: cassandra.Host;
  gossip?: cassandra.types.Row[];
  streams?: cassandra.types.Row[];
  hints?: cassandra.types.Row[];
  error?: string;
  /** A node too old for the hook's reads (before 4.1). */
  old?: boolean;
}

async function readNode(c: cassandra.Client, host: cassandra.Host): Promise<PerNode> {
  const q = (cql: string) => c.execute(cql, [], { host, isIdempotent: true }).then((r) => r.rows);
  try {
    const [gossip, streams, hints] = await Promise.all([
      q('SELECT * FROM system_views.gossip_info'),
      q('SELECT operation, peers, status FROM system_views.streaming'),
      q('SELECT host_id, files FROM system_views.pending_hints'),
    ]);
    return { host, gossip, streams, hints };
  } catch (err) {
    const said = describeError(err, 200);
    if (!NO_VIRTUAL_TABLE.test(said)) return { host, error: said };
    // Cassandra before 4.1 (gossip_info came in 4.1): say so, with the node's version, rather than a bare CQL error.
    const release = await q('SELECT release_version FROM system.local').then(
      (rows) => str(rows[0] && Row(rows[0], 'release_version')),
      () => '',
    );
    return { host, error: `Cassandra ${release || 'of this node'} has no ${/gossip_info/.test(said) ? 'system_views.gossip_info' : 'virtual table the hook reads'}: the cassandra hook reads Cassandra 4.1 and later`, old: true };
  }
}

// What a node answers for a table it does not have (4.0 and later: "table … does not exist"; before: "unconfigured table …").
const NO_VIRTUAL_TABLE = /(table \S+ does not exist|unconfigured table|keyspace system_views does not exist)/i;

/** The ring, in the view of its nodes: see view.ts. */
export async function readRing(c: cassandra.Client, refused: readonly string[]): Promise<CassandraView> {
  const local = await c.execute('SELECT cluster_name FROM system.local');
  const clusterName = str(local.rows[0] && Row(local.rows[0], 'cluster_name'));
  const hosts = [...c.hosts.values()];
  const per = await Promise.all(hosts.map((h) => readNode(c, h)));
  const readable = per.filter((p) => p.gossip);
  const unread = per.filter((p) => !p.gossip).map((p) => (p.old ? `${hostOf(p.host.address)} (${p.error})` : hostOf(p.host.address)));
  if (readable.length === 0 && per.length > 0 && per.every((p) => p.old)) {
    throw new HookNotReady(`no node of Cassandra cluster ${clusterName} can be read: ${per.map((p) => `${hostOf(p.host.address)}: ${p.error}`).join('; ')}`);
  }

  // Each node's row about itself is its own word; about others, the row with the highest status version.
  const best = new Map<string, { row: cassandra.types.Row; own: boolean; version: number }>();
  const saysShutdown = new Set<string>();
  for (const p of readable) {
    const self = hostOf(p.host.address);
    for (const row of p.gossip ?? []) {
      const hostId = str(Row(row, 'host_id'));
      if (!hostId) continue;
      const address = str(Row(row, 'address'));
      const status = str(Row(row, 'status_with_port')) || str(Row(row, 'status'));
      if (/^shutdown/i.test(status)) saysShutdown.add(hostId);
      const version = Number(Row(row, 'status_with_port_version') ?? Row(row, 'status_version') ?? 0);
      const own = address === self;
      const cur = best.get(hostId);
      if (!cur || (own && !cur.own) || (!cur.own && version > cur.version)) best.set(hostId, { row, own, version });
    }
  }
  const driverHost = new Map(hosts.map((h) => [hostOf(h.address), h]));
  const readOk = new Set(readable.map((p) => hostOf(p.host.address)));
  // Members only: a node that left or was removed stays in gossip for days (view.ts, departed).
  const members = [...best].filter(([, { row }]) => !departed(str(Row(row, 'status_with_port')) || str(Row(row, 'status'))));
  const nodes: NodeView[] = members.map(([hostId, { row }]) => {
    const address = str(Row(row, 'address'));
    const h = driverHost.get(address);
    return {
      hostId,
      address,
      dc: str(Row(row, 'dc')),
      rack: str(Row(row, 'rack')),
      up: !!h && h.isUp() && readOk.has(address) && !saysShutdown.has(hostId),
      status: str(Row(row, 'status_with_port')) || str(Row(row, 'status')),
      schema: str(Row(row, 'schema')),
      release: str(Row(row, 'release_version')),
      ...(Number(Row(row, 'generation')) > 0 ? { startedAt: Number(Row(row, 'generation')) * 1000 } : {}),
    };
  });
  // A peer the policy refused: in gossip, but never read.
  for (const r of refused) if (!nodes.some((n) => r.startsWith(`${n.address}:`))) unread.push(r);

  const streams: StreamView[] = [];
  const hints: HintsView[] = [];
  for (const p of readable) {
    const on = hostOf(p.host.address);
    for (const s of p.streams ?? []) {
      const status = str(Row(s, 'status'));
      if (/^(success|failure|failed|complete)/i.test(status)) continue;
      const peers = ((Row(s, 'peers') as unknown[] | null) ?? []).map((x) => hostOf(str(x)));
      streams.push({ on, operation: str(Row(s, 'operation')), peers, status });
    }
    for (const h of p.hints ?? []) hints.push({ on, forHostId: str(Row(h, 'host_id')), files: Number(Row(h, 'files') ?? 0) });
  }

  const keyspaces: KeyspaceView[] = [];
  const ranges = [...c.metadata.getTokenRanges()];
  for (const [name, k] of Object.entries(c.metadata.keyspaces as Record<string, { strategy?: string; strategyOptions?: Record<string, string>; virtual?: boolean }>)) {
    if (!k.strategy || k.virtual) continue;
    const strategy = shortClass(k.strategy);
    const opts = k.strategyOptions ?? {};
    const rf: Record<string, number> =
      strategy === 'SimpleStrategy'
        ? { '*': parseInt(opts.replication_factor ?? '0', 10) }
        : Object.fromEntries(Object.entries(opts).filter(([key]) => key !== 'class' && key !== 'replication_factor').map(([dc, v]) => [dc, parseInt(v, 10)]));
    const counted = strategy !== 'LocalStrategy' && strategy !== 'EverywhereStrategy';
    keyspaces.push({
      name,
      strategy,
      rf,
      ranges: counted
        ? ranges.map((r) => ({ start: String(r.start), end: String(r.end), replicas: (c.metadata.getReplicas(name, r) ?? []).map((h) => String(h.hostId)) }))
        : [],
    });
  }
  return { clusterName, nodes, keyspaces, streams, hints, unread };
}

/** Connect, read the ring, close. */
export const readCluster = (ctx: ReadContext): Promise<CassandraView> => withClient(ctx, (c, refused) => readRing(c, refused));
