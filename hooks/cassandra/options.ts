import { z } from 'zod';
import { secondsOption } from '../../lib/hook.ts';
import { CHECK_NAMES, type CheckName, CONSISTENCY_LEVELS } from './decide.ts';
import { SKIPPABLE_REMOVAL_RULES, type SkippableRemovalRule } from './removal.ts';

// A step's rules (decide.ts) and the scale-down rules that may be switched off (removal.ts).
const SKIPPABLE: readonly string[] = [...CHECK_NAMES, ...SKIPPABLE_REMOVAL_RULES];

// A Kubernetes object name (DNS-1123 subdomain): what a Secret may be called.
const objectName = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a Kubernetes object name (lowercase letters, digits, - and .)');

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)(?::([0-9]{1,5}))?$/;

/** "host[:port],…": the native-protocol contact points (port 9042 when left out). */
const ContactPoints = z
  .string()
  .min(1, 'must list at least one host[:port]')
  .transform((s, ctx) => {
    const out: { host: string; port: number }[] = [];
    for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
      const m = HOST_PORT.exec(part);
      const port = m?.[3] ? Number(m[3]) : 9042;
      if (!m || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `"${part.slice(0, 100)}" is not host[:port] (no scheme, no credentials)` });
        return z.NEVER;
      }
      out.push({ host: (m[1] as string).replace(/^\[|\]$/g, ''), port });
    }
    if (out.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'must list at least one host[:port]' });
      return z.NEVER;
    }
    return out;
  });

// A DNS name a certificate may carry (no wildcard: the name the hook checks against).
const serverName = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(/^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/, 'must be a DNS name such as cass-dc1-service.cass.svc');

const bool = z.enum(['true', 'false'], { error: 'must be "true" or "false"' });

const KEYSPACE = /^[A-Za-z0-9_]{1,48}$/;
// A pod name (DNS-1123 label) or an IPv4/IPv6 address.
const POD_OR_IP = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?|[0-9.]{7,15}|[0-9a-fA-F:]{2,39})$/;
const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);

/**
 * The `cassandra.sts-pilot.io/<option>` annotations, as people write them.
 * Every check that needs no cluster is made here, so a typo holds the rollout
 * before its first step.
 */
export const Options = z
  .strictObject({
    'contact-points': ContactPoints,
    consistency: z.enum(CONSISTENCY_LEVELS, { error: `must be one of ${CONSISTENCY_LEVELS.join(', ')}` }).default('LOCAL_QUORUM'),
    // Tracing data is diagnostic, and system_traces is created with RF 2: at LOCAL_QUORUM no node of it could restart.
    'ignore-keyspaces': z
      .string()
      .default('system_traces')
      .refine((s) => list(s).every((k) => KEYSPACE.test(k)), 'must be keyspace names separated by commas'),
    'skip-checks': z
      .string()
      .default('')
      .refine((s) => list(s).every((c) => SKIPPABLE.includes(c)), `must be check names separated by commas: ${SKIPPABLE.join(', ')}`),
    'auth-secret': objectName.optional(),
    // TLS to the native port (client_encryption_options), as the kafka hook's tls and ca-secret.
    tls: bool.default('false'),
    'ca-secret': objectName.optional(),
    'tls-server-name': serverName.optional(),
    'tls-verify-server-name': bool.default('true'),
    timeout: secondsOption(10),
    // From the moved node's start: its JVM start (~10-30 s) plus the holders' 10 s dispatch trigger, with room.
    'hints-settle': z
      .string()
      .regex(/^(0|[1-9][0-9]{0,4})$/, 'must be a whole number of seconds, 0 to 99999')
      .transform(Number)
      .default(60),
    // Seed nodes, moved last (besides pods labelled cassandra.datastax.com/seed-node: "true", as cass-operator labels them).
    seeds: z
      .string()
      .default('')
      .refine((s) => list(s).every((x) => POD_OR_IP.test(x)), 'must be pod names or IP addresses separated by commas'),
    // A Pilot's heartbeat older than this says nothing: the pilot's --heartbeat (20 s) with room for the write and the clocks.
    'pilot-max-age': secondsOption(30),
    // How much older than its heartbeat a Pilot's block can be: the pilot's --probe-interval (10 s) plus twice its --probe-timeout (5 s).
    'pilot-read-lag': secondsOption(20),
  })
  .superRefine((o, ctx) => {
    if (o.tls === 'true') {
      if (o['tls-server-name'] && o['tls-verify-server-name'] === 'false') {
        ctx.addIssue({ code: 'custom', path: ['tls-server-name'], message: 'names what to verify, but tls-verify-server-name is "false": give one of them' });
      }
      return;
    }
    for (const k of ['ca-secret', 'tls-server-name'] as const) if (o[k]) ctx.addIssue({ code: 'custom', path: [k], message: 'only makes sense with tls: "true"' });
    if (o['tls-verify-server-name'] === 'false') ctx.addIssue({ code: 'custom', path: ['tls-verify-server-name'], message: 'only makes sense with tls: "true"' });
  })
  .transform((o) => ({
    contactPoints: o['contact-points'],
    consistency: o.consistency,
    ignoreKeyspaces: new Set(list(o['ignore-keyspaces'])),
    skip: new Set(list(o['skip-checks']) as (CheckName | SkippableRemovalRule)[]),
    authSecret: o['auth-secret'],
    // Each node's certificate must name serverName when given, else the node's own address; verifyServerName false checks the chain only.
    tls: o.tls === 'true' ? { caSecret: o['ca-secret'], serverName: o['tls-server-name'], verifyServerName: o['tls-verify-server-name'] === 'true' } : undefined,
    timeoutSeconds: o.timeout,
    hintsSettleMs: o['hints-settle'] * 1000,
    seeds: new Set(list(o.seeds)),
    pilotMaxAgeMs: o['pilot-max-age'] * 1000,
    pilotReadLagMs: o['pilot-read-lag'] * 1000,
  }));

export type Options = z.infer<typeof Options>;
