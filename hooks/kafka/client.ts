import { z } from 'zod';
import { describeError } from '../../lib/errors.ts';
import { type HookContext, HookNotReady } from '../../lib/hook.ts';
import { type BrokerAddress, type KafkaAdmin, type KafkaAdminOptions, openKafkaAdmin } from '../../lib/kafka/admin.ts';
import { refusalOf } from '../../lib/url-policy.ts';
import type { Options } from './options.ts';

const CA_KEY = 'ca.crt';
const SaslCredentials = z.object({ username: z.string().min(1), password: z.string().min(1) });

/** What a connection needs of a hook call's context: podUpdateTransition's and podRemoval's both have it. */
export type ConnectContext = Pick<HookContext<Options>, 'options' | 'signal' | 'secrets' | 'egress'>;

async function readSecret(ctx: ConnectContext, name: string): Promise<Record<string, string>> {
  try {
    return await ctx.secrets(name);
  } catch (err) {
    // The controller's refusal (not an allowed Secret) says it all, and how to allow it.
    if (err instanceof HookNotReady) throw err;
    // The reader's error names the object and the API's answer, never its data.
    throw new HookNotReady(`cannot read Secret ${name}: ${describeError(err, 200)}`);
  }
}

/** A connection to one broker with the options' TLS and SASL; every failure is a HookNotReady with a reason. */
export async function connect(ctx: ConnectContext, broker: BrokerAddress): Promise<KafkaAdmin> {
  const o = ctx.options;
  // Judged before any Secret is read or any byte sent, like every hook's address.
  let connectTo: string;
  try {
    connectTo = await ctx.egress.address(broker.host, broker.port);
  } catch (err) {
    const refused = refusalOf(err);
    throw new HookNotReady(`Kafka at ${broker.host}:${broker.port}: ${refused ? `not allowed: ${refused.message}` : `cannot resolve: ${describeError(err, 200)}`}`);
  }
  const admin: KafkaAdminOptions = { bootstrap: [{ ...broker, connectTo }], timeoutMs: o.timeoutSeconds * 1000, signal: ctx.signal, clientId: 'sts-pilot' };
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
  try {
    return await openKafkaAdmin(admin);
  } catch (err) {
    throw new HookNotReady(`Kafka at ${broker.host}:${broker.port}: ${describeError(err, 400)}`);
  }
}
