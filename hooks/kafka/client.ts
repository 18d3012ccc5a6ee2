import { createHash } from 'node:crypto';
import { z } from 'zod';
import { describeError } from '../../lib/errors.ts';
import { type HookContext, HookNotReady } from '../../lib/hook.ts';
import { type BrokerAddress, type KafkaAdmin, type KafkaAdminOptions, type KafkaLink, type KafkaUsage, openKafkaLink } from '../../lib/kafka/admin.ts';
import { ConnectionPool, type PoolStats } from '../../lib/kafka/pool.ts';
import { refusalOf } from '../../lib/url-policy.ts';
import type { Options } from './options.ts';

const CA_KEY = 'ca.crt';
const SaslCredentials = z.object({ username: z.string().min(1), password: z.string().min(1) });

/** An unused connection is closed after this long (a rollout's calls come every few seconds; between rollouts there are none). */
export const IDLE_MS = 120_000;

// One connection per Kafka cluster and identity, shared by every StatefulSet
// and call (docs/kafka.md, "What one call does"). Only the connection is kept:
// every call reads the cluster afresh over it.
const pool = new ConnectionPool<KafkaLink>({ alive: (l) => l.alive(), close: (l) => l.close(), idleMs: IDLE_MS });

/** Close every Kafka connection the hook keeps (process stop). */
export const closeConnections = (): Promise<void> => pool.closeAll();
/** What the connection pool did: handshakes, reuses, drops. */
export const connectionStats = (): PoolStats => pool.stats();

/** What a connection needs of a hook call's context: podUpdateTransition's and podRemoval's both have it. */
export type ConnectContext = Pick<HookContext<Options>, 'options' | 'signal' | 'secrets' | 'egress'>;

async function readSecret(ctx: ConnectContext, name: string): Promise<Record<string, string>> {
  try {
    return await ctx.secrets(name);
  } catch (err) {
    // The reader's error names the object and the API's answer, never its data.
    throw new HookNotReady(`cannot read Secret ${name}: ${describeError(err, 200)}`);
  }
}

/** The options' bootstrap list, TLS and SASL (from Secrets, read on every call); every failure is a HookNotReady with a reason. */
export async function adminOptions(ctx: ConnectContext): Promise<KafkaAdminOptions> {
  const o = ctx.options;
  // Every bootstrap address is judged before any Secret is read or any byte sent, like every hook's address.
  const bootstrap: BrokerAddress[] = [];
  const unresolved: string[] = [];
  for (const broker of o.bootstrap) {
    try {
      bootstrap.push({ ...broker, connectTo: await ctx.egress.address(broker.host, broker.port) });
    } catch (err) {
      const refused = refusalOf(err);
      if (refused) throw new HookNotReady(`Kafka at ${broker.host}:${broker.port}: not allowed: ${refused.message}`);
      unresolved.push(`Kafka at ${broker.host}:${broker.port}: cannot resolve: ${describeError(err, 200)}`);
    }
  }
  if (bootstrap.length === 0) throw new HookNotReady(unresolved.join('; ') || 'Kafka: no bootstrap broker');
  const admin: KafkaAdminOptions = { bootstrap, timeoutMs: o.timeoutSeconds * 1000, clientId: 'sts-pilot' };
  if (o.tls) {
    admin.tls = {};
    if (o.caSecret) {
      const pem = (await readSecret(ctx, o.caSecret))[CA_KEY];
      if (!pem || !pem.includes('-----BEGIN CERTIFICATE-----')) throw new HookNotReady(`Secret ${o.caSecret} has no PEM certificate under ${CA_KEY}`);
      admin.tls.ca = pem;
    }
  }
  if (o.sasl) {
    const creds = SaslCredentials.safeParse(await readSecret(ctx, o.sasl.secret));
    // Values never reach a reason or a log.
    if (!creds.success) throw new HookNotReady(`Secret ${o.sasl.secret} needs non-empty username and password for SASL ${o.sasl.mechanism}`);
    admin.sasl = { mechanism: o.sasl.mechanism, ...creds.data };
  }
  return admin;
}

/**
 * The pool's key: everything a connection is made with. A rotated password or
 * CA is another key (a new connection; the old one idles out). Hashed, so that
 * no secret sits in a map key a debugger or a dump would show.
 */
export function connectionKey(o: KafkaAdminOptions): string {
  const identity = JSON.stringify([o.bootstrap.map((b) => `${b.host}:${b.port}@${b.connectTo ?? ''}`), o.tls ?? null, o.sasl ?? null, o.clientId ?? null, o.timeoutMs]);
  return createHash('sha256').update(identity).digest('hex');
}

/** A call's result, the broker that answered it, and what it cost on the wire. */
export interface OnAny<T> {
  value: T;
  via: string;
  usage: KafkaUsage;
}

/**
 * `fn` over the cluster's shared connection, or a new one to the first
 * bootstrap broker that accepts it. A broker that fails `fn` (frozen,
 * overloaded, restarting, or an answer that makes no sense) costs its
 * connection, and the next bootstrap broker is asked, each at most once per
 * call. `fn` must be safe to run again on the next broker (reads, and
 * idempotent writes). Nothing is approved on a failed read: every failure ends
 * as a HookNotReady.
 */
export async function onAny<T>(ctx: ConnectContext, fn: (admin: KafkaAdmin) => Promise<T>): Promise<OnAny<T>> {
  const o = await adminOptions(ctx);
  const key = connectionKey(o);
  const failures: string[] = [];
  const tried = new Set<string>();
  while (tried.size < o.bootstrap.length) {
    const rest = o.bootstrap.filter((b) => !tried.has(`${b.host}:${b.port}`));
    let via: string | undefined;
    let usage: KafkaUsage = { requests: 0, bytesSent: 0, bytesReceived: 0 };
    try {
      const value = await pool.use(
        key,
        () => openKafkaLink({ ...o, bootstrap: rest, signal: ctx.signal }),
        async (link) => {
          via = link.broker;
          const admin = link.admin(ctx.signal);
          try {
            return await fn(admin);
          } finally {
            usage = admin.usage();
          }
        },
      );
      return { value, via: via as string, usage };
    } catch (err) {
      if (ctx.signal.aborted) throw err instanceof HookNotReady ? err : new HookNotReady(`Kafka: ${describeError(err, 200)}`);
      if (via === undefined) {
        // No connection: the open tried every broker left, and each refused.
        failures.push(`Kafka: ${describeError(err, 400)}`);
        break;
      }
      if (!(err instanceof HookNotReady)) throw err;
      failures.push(err.message);
      tried.add(via);
    }
  }
  throw new HookNotReady(failures.length === 1 ? (failures[0] as string) : `no bootstrap broker answered: ${failures.join('; ')}`);
}

