import { z } from 'zod';
import { secondsOption } from '../../lib/hook.ts';

// A Kubernetes object name (DNS-1123 subdomain): what a Secret may be called.
const objectName = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a Kubernetes object name (lowercase letters, digits, - and .)');

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?):([0-9]{1,5})$/;

/** "host:port,host:port" (a bootstrap list, as Kafka clients take it). */
const Bootstrap = z
  .string()
  .min(1, 'must list at least one host:port')
  .transform((s, ctx) => {
    const out: { host: string; port: number }[] = [];
    for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
      const m = HOST_PORT.exec(part);
      const port = m ? Number(m[3]) : 0;
      if (!m || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `"${part.slice(0, 100)}" is not host:port (no scheme, no credentials)` });
        return z.NEVER;
      }
      out.push({ host: (m[1] as string).replace(/^\[|\]$/g, ''), port });
    }
    if (out.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'must list at least one host:port' });
      return z.NEVER;
    }
    return out;
  });

/**
 * The `kafka.sts-pilot.io/<option>` annotations, as people write them. Every
 * check that needs no cluster is made here, so a typo holds the rollout before
 * its first step.
 */
export const Options = z
  .strictObject({
    bootstrap: Bootstrap,
    tls: z.enum(['true', 'false'], { error: 'must be "true" or "false"' }).default('false'),
    'ca-secret': objectName.optional(),
    'sasl-mechanism': z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'], { error: 'must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512' }).optional(),
    'sasl-secret': objectName.optional(),
    timeout: secondsOption(10),
    'node-id-offset': z
      .string()
      .regex(/^(0|[1-9][0-9]{0,8})$/, 'must be a whole number, 0 or more')
      .transform(Number)
      .default(0),
    // 'any' is the former name of 'in-turn' (the default since), still accepted.
    'active-controller': z.enum(['in-turn', 'last', 'any'], { error: 'must be in-turn or last' }).default('in-turn'),
    'strict-min-isr': z.enum(['true', 'false'], { error: 'must be "true" or "false"' }).default('false'),
  })
  .superRefine((o, ctx) => {
    if (o['ca-secret'] && o.tls !== 'true') ctx.addIssue({ code: 'custom', path: ['ca-secret'], message: 'a CA only makes sense with tls: "true"' });
    if (!!o['sasl-mechanism'] !== !!o['sasl-secret']) {
      ctx.addIssue({ code: 'custom', path: [o['sasl-mechanism'] ? 'sasl-secret' : 'sasl-mechanism'], message: 'give sasl-mechanism and sasl-secret together' });
    }
  })
  .transform((o) => ({
    bootstrap: o.bootstrap,
    tls: o.tls === 'true',
    caSecret: o['ca-secret'],
    sasl: o['sasl-mechanism'] && o['sasl-secret'] ? { mechanism: o['sasl-mechanism'], secret: o['sasl-secret'] } : undefined,
    timeoutSeconds: o.timeout,
    nodeIdOffset: o['node-id-offset'],
    activeController: o['active-controller'] === 'last' ? ('last' as const) : ('in-turn' as const),
    strictMinIsr: o['strict-min-isr'] === 'true',
  }));

export type Options = z.infer<typeof Options>;
