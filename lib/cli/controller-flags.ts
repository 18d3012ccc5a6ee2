import { z } from 'zod';
import { POLICY_NAMES } from '../rollout/policies/types.ts';
import { parseWindows } from '../rollout/policies/window.ts';
import { parseAllowEntry } from '../url-policy.ts';
import { commaList, HostPort, LabelKey, LogLevel, NamespaceName, wholeNumber } from './flags.ts';

/** A --hook-allow entry: a host, *.domain, IP or CIDR. */
const AllowEntry = z.string().transform((s, ctx) => {
  const e = parseAllowEntry(s);
  if (typeof e === 'string') {
    ctx.addIssue({ code: 'custom', message: `must list host names, *.domains, IP addresses or CIDRs: ${e}` });
    return z.NEVER;
  }
  return e;
});

/** `sts-pilot controller`'s flags, as commander hands them over (strings). */
export const ControllerFlags = z
  .strictObject({
    kubeconfig: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    labelKey: LabelKey,
    // One namespace, or several separated by commas (one controller per namespace, one Lease).
    namespace: commaList(NamespaceName)
      .refine((l) => l.length > 0, 'must name at least one namespace')
      .refine((l) => new Set(l).size === l.length, 'must not name a namespace twice')
      .optional(),
    workers: wholeNumber(1, 64),
    hookTimeout: wholeNumber(1, 3600, 'seconds'),
    hookRetryMax: wholeNumber(1, 3600, 'seconds'),
    // Where every hook may connect (lib/url-policy.ts); --http-hook-allow is its former name, still accepted.
    hookAllow: commaList(AllowEntry).optional(),
    httpHookAllow: commaList(AllowEntry).optional(),
    hookAllowLoopback: z.boolean().default(false),
    probeAddress: HostPort,
    logLevel: LogLevel,
    leaderElect: z.boolean(),
    leaderElectionNamespace: NamespaceName.optional(),
    leaderElectionId: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a Lease name (lowercase letters, digits, "-" and ".")'),
    leaseDuration: wholeNumber(2, 600, 'seconds'),
    renewDeadline: wholeNumber(1, 599, 'seconds'),
    // Rollout policies (docs/rollout.md): a fleet-wide window, and policies switched off by name.
    defaultWindow: z
      .string()
      .superRefine((s, ctx) => {
        const r = parseWindows(s);
        if (!r.ok) ctx.addIssue({ code: 'custom', message: `must be maintenance windows like "Mon-Fri 01:00-05:00 Europe/Berlin": ${r.error}` });
      })
      .optional(),
    // How often the admission gate is checked again, after the check at start.
    gateCheckInterval: wholeNumber(1, 3600, 'seconds'),
    disablePolicies: commaList(z.enum(POLICY_NAMES, { error: `must list policies by name: ${POLICY_NAMES.join(', ')}` })).optional(),
  })
  .refine((f) => f.renewDeadline < f.leaseDuration, { message: 'must be shorter than --lease-duration', path: ['renewDeadline'] });
export type ControllerFlags = z.infer<typeof ControllerFlags>;
