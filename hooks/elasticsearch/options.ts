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
    'ca-configmap': objectName.optional(),
    'required-health': z.enum(['green', 'yellow'], { error: 'must be green or yellow' }).default('green'),
    timeout: secondsOption(10),
    strategy: z.enum(['drain', 'restart'], { error: 'must be drain or restart' }).default('drain'),
  })
  .superRefine((o, ctx) => {
    if (o['ca-secret'] && o['ca-configmap']) {
      ctx.addIssue({ code: 'custom', path: ['ca-configmap'], message: 'give ca-secret or ca-configmap, not both' });
    }
    if ((o['ca-secret'] || o['ca-configmap']) && urlOf(o.url)?.protocol === 'http:') {
      ctx.addIssue({ code: 'custom', path: [o['ca-secret'] ? 'ca-secret' : 'ca-configmap'], message: 'a CA only makes sense with an https:// url' });
    }
  })
  .transform((o) => ({
    // Without a trailing slash, so paths can be appended as they are written.
    url: o.url.replace(/\/+$/, ''),
    credentialsSecret: o['credentials-secret'],
    ca: o['ca-secret'] ? { kind: 'Secret' as const, name: o['ca-secret'] } : o['ca-configmap'] ? { kind: 'ConfigMap' as const, name: o['ca-configmap'] } : undefined,
    requiredHealth: o['required-health'],
    timeoutSeconds: o.timeout,
    strategy: o.strategy,
  }));

export type Options = z.infer<typeof Options>;
export type Strategy = Options['strategy'];
