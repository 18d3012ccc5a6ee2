import { z } from 'zod';
import { secondsOption } from '../../lib/hook.ts';

// A Kubernetes object name (DNS-1123 subdomain): what a Secret or ConfigMap may be called.
const objectName = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a Kubernetes object name (lowercase letters, digits, - and .)');

/** URL parts, or undefined: zod runs later checks even after `z.url()` failed, so none may throw. */
function urlOf(u: string): URL | undefined {
  try {
    return new URL(u);
  } catch {
    return undefined;
  }
}

export const Health = z.enum(['green', 'yellow', 'red']);
export type Health = z.infer<typeof Health>;

/**
 * The `elasticsearch.sts-pilot.io/<option>` annotations, as people write them,
 * turned into what the hook uses. Every check that can be made without the
 * cluster is made here, so a typo stops the rollout before it starts (the
 * controller reports it as an invalid-options condition) instead of at pod 3.
 */
export const Options = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      // Annotations are readable by anyone who can read the StatefulSet: credentials belong in a Secret.
      .refine((u) => !urlOf(u)?.username && !urlOf(u)?.password, 'must not carry credentials; name a Secret in credentials-secret')
      .refine((u) => !urlOf(u)?.search && !urlOf(u)?.hash, 'must not have a query or fragment'),
    'credentials-secret': objectName.optional(),
    'ca-secret': objectName.optional(),
    // Refused below: the controller gives hooks no ConfigMap reader, and an option that silently holds at pod 3 is worse than none.
    'ca-configmap': objectName.optional().describe('not supported: put ca.crt in a Secret and name it in ca-secret'),
    'required-health': z.enum(['green', 'yellow'], { error: 'must be green or yellow' }).default('green'),
    timeout: secondsOption(10),
    // auto: shutdown on Elasticsearch >= 7.15.2 (keeps the data in place), else drain.
    strategy: z.enum(['auto', 'drain', 'restart', 'shutdown'], { error: 'must be auto, drain, restart or shutdown' }).default('auto'),
    // How long a restarting node's replicas wait before being rebuilt elsewhere (node shutdown API, type restart).
    'allocation-delay': z
      .string()
      .regex(/^[1-9][0-9]{0,6}(ms|s|m|h)$/, 'must be a duration such as 90s, 10m or 1h')
      .optional()
      .describe('shutdown: how long a restarting node may be away before its replicas are rebuilt elsewhere'),
    // The version the pod template runs, when its image tag does not say (for master-last ordering in an upgrade).
    version: z
      .string()
      .regex(/^\d+\.\d+\.\d+$/, 'must be a version such as 8.19.21')
      .optional()
      .describe('the version the template runs, when its image tag does not say'),
  })
  .superRefine((o, ctx) => {
    if (o['ca-configmap']) {
      ctx.addIssue({
        code: 'custom',
        path: ['ca-configmap'],
        message: 'is not supported: the controller gives hooks no ConfigMap reader; put ca.crt in a Secret and name it in ca-secret',
      });
    }
    if (o['ca-secret'] && urlOf(o.url)?.protocol === 'http:') {
      ctx.addIssue({ code: 'custom', path: ['ca-secret'], message: 'a CA only makes sense with an https:// url' });
    }
    if (o['allocation-delay'] && o.strategy !== 'shutdown' && o.strategy !== 'auto') {
      ctx.addIssue({ code: 'custom', path: ['allocation-delay'], message: 'only applies to strategy shutdown (or auto)' });
    }
  })
  .transform((o) => ({
    // Without a trailing slash, so paths can be appended as they are written.
    url: o.url.replace(/\/+$/, ''),
    credentialsSecret: o['credentials-secret'],
    caSecret: o['ca-secret'],
    requiredHealth: o['required-health'],
    timeoutSeconds: o.timeout,
    strategy: o.strategy,
    allocationDelay: o['allocation-delay'],
    version: o.version,
  }));

export type Options = z.infer<typeof Options>;
export type StrategyOption = Options['strategy'];
/** The strategy a call runs: `auto` resolved against the version the cluster reports. */
export type Strategy = Exclude<StrategyOption, 'auto'>;
