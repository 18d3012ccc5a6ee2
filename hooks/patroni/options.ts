import { z } from 'zod';
import { secondsOption } from '../../lib/hook.ts';

// A Kubernetes object name (DNS-1123 subdomain): what a Secret may be called.
const objectName = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a Kubernetes object name (lowercase letters, digits, - and .)');

const UNITS: Record<string, number> = { '': 1, B: 1, kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/** "1MB", "512kB", "1048576": bytes of WAL, as Patroni writes maximum_lag_on_failover. */
export const byteSize = z
  .string()
  .regex(/^[0-9]{1,12} ?(B|kB|KB|MB|GB)?$/, 'must be a size in bytes, e.g. 1048576, 512kB or 1MB')
  .transform((s) => {
    const m = /^([0-9]+) ?([a-zA-Z]*)$/.exec(s) as RegExpExecArray;
    return Number(m[1]) * (UNITS[m[2] ?? ''] ?? 1);
  });

/** undefined when not a URL: zod runs later checks even after `z.url()` failed, so none may throw. */
function urlOf(u: string): URL | undefined {
  try {
    return new URL(u);
  } catch {
    return undefined;
  }
}

/**
 * The `patroni.sts-pilot.io/<option>` annotations. Every check that can be made
 * without the cluster is made here: a typo holds the rollout before it starts.
 */
export const Options = z
  .strictObject({
    /** Port of Patroni's REST API on each pod (restapi.listen). */
    port: z
      .string()
      .regex(/^[1-9][0-9]{0,4}$/, 'must be a port number')
      .transform(Number)
      .refine((p) => p <= 65535, 'must be a port number, 1 to 65535')
      .default(8008),
    /**
     * A URL that reaches the REST API of some member (a Service over the pods).
     * Without it the hook reads the pods it is asked about at <pod IP>:<port>.
     */
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      .refine((u) => !urlOf(u)?.username && !urlOf(u)?.password, 'must not carry credentials; name a Secret in credentials-secret')
      .refine((u) => !urlOf(u)?.search && !urlOf(u)?.hash, 'must not have a query or fragment')
      .optional(),
    /** Replay lag (bytes of WAL) a member may have and still count as caught up. */
    'max-lag': byteSize.prefault('1MB'),
    /**
     * Where the leadership goes before the leader's pod restarts: a replica that
     * already runs the update revision (and, while none does, the most caught-up
     * replica), or the most caught-up replica whatever it runs.
     */
    'switchover-to': z.enum(['updated-replica', 'any-replica'], { error: 'must be updated-replica or any-replica' }).default('updated-replica'),
    /** A Secret with username and password for the REST API (restapi.authentication). */
    'credentials-secret': objectName.optional(),
    /** Seconds one request to the REST API may take. */
    timeout: secondsOption(10),
    /** Seconds to wait for a switchover to show in /cluster. */
    'switchover-timeout': secondsOption(60),
  })
  .transform((o) => ({
    port: o.port,
    url: o.url?.replace(/\/+$/, ''),
    maxLag: o['max-lag'],
    switchoverTo: o['switchover-to'],
    credentialsSecret: o['credentials-secret'],
    timeoutSeconds: o.timeout,
    switchoverTimeoutSeconds: o['switchover-timeout'],
  }));

export type Options = z.infer<typeof Options>;
