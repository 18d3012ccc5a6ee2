import { InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { DEFAULT_LABEL_KEY } from '../names.ts';
import { parseDuration } from '../rollout/policies/duration.ts';

// Every flag and argument of the CLI is parsed here, once. A message says what a
// flag takes, so the error reads "--workers must be a whole number", never zod's
// "expected number, received NaN".

const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dns1123Subdomain = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelKey = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export const NamespaceName = z.string().regex(dns1123Label, 'must be a namespace name (lowercase letters, digits and "-", at most 63)');
export const StatefulSetName = z.string().regex(dns1123Subdomain, 'must be a StatefulSet name (lowercase letters, digits, "-" and ".")');
export const PodName = z.string().regex(dns1123Subdomain, 'must be a pod name (lowercase letters, digits, "-" and ".")');
export const LabelKey = z.string().regex(labelKey, 'must be a label key, e.g. sts-pilot.io/hook');
export const HostPort = z.string().regex(/^([^:]*):([0-9]{1,5})$/, 'must be host:port, e.g. 0.0.0.0:8080');
export const LogLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'], {
  error: 'must be one of fatal, error, warn, info, debug, trace',
});

/** A whole number given as a flag (commander hands over strings), within bounds. */
export const wholeNumber = (min: number, max: number, unit = '') =>
  z
    .union([z.string(), z.number()])
    .transform((v, ctx) => {
      const s = String(v).trim();
      if (!/^[0-9]+$/.test(s)) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number${unit ? ` of ${unit}` : ''}` });
        return z.NEVER;
      }
      const n = Number(s);
      if (n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max}${unit ? ` ${unit}` : ''}` });
        return z.NEVER;
      }
      return n;
    });

/** A comma-separated list (also repeated flags, which commander hands over as an array). */
export const commaList = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(item));

const Common = {
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  namespace: NamespaceName.optional(),
  labelKey: LabelKey.default(DEFAULT_LABEL_KEY),
};

export const StatusFlags = z
  .strictObject({
    ...Common,
    allNamespaces: z.boolean().default(false),
    watch: z.boolean().default(false),
    gate: z.boolean().default(false),
    budgetNamespace: NamespaceName.default('sts-pilot-system'),
    output: z.enum(['text', 'json', 'yaml'], { error: 'must be one of text, json, yaml' }).default('text'),
  })
  .refine((f) => !(f.allNamespaces && f.namespace), { message: '-n/--namespace and -A/--all-namespaces exclude each other' })
  .refine((f) => !(f.watch && f.output !== 'text'), { message: 'is text only with --watch (use "sts-pilot wait" to follow a rollout from a script)', path: ['output'] });
export type StatusFlags = z.infer<typeof StatusFlags>;

export const TargetFlags = z.strictObject({ ...Common });
export type TargetFlags = z.infer<typeof TargetFlags>;

export const ApproveFlags = z
  .strictObject({
    ...Common,
    pod: PodName.optional(),
    override: z.boolean().optional(),
    reason: z.string().trim().min(3, 'must say why (at least 3 characters)').max(1024).optional(),
  })
  .refine((f) => !f.override || f.reason !== undefined, { message: 'is required with --override: say why the hook is bypassed', path: ['reason'] })
  .refine((f) => f.override || f.reason === undefined, { message: 'is only for --override', path: ['reason'] });
export type ApproveFlags = z.infer<typeof ApproveFlags>;

export const UndoFlags = z.strictObject({
  ...Common,
  toRevision: z.string().regex(/^[1-9][0-9]{0,17}$/, 'must be a revision number (1 or more)').transform(Number).optional(),
});
export type UndoFlags = z.infer<typeof UndoFlags>;

/** A label selector as kubectl takes it (key, key=value, key!=value, key in (a,b), !key; comma-separated). */
const LabelSelector = z
  .string()
  .trim()
  .min(1, 'must be a label selector, e.g. app=db')
  .max(1024)
  .regex(/^[A-Za-z0-9_./!=,()\s-]+$/, 'must be a label selector, e.g. app=db or tier in (hot,warm)');

export const WaitFlags = z
  .strictObject({
    ...Common,
    selector: LabelSelector.optional(),
    all: z.boolean().default(false),
    timeout: z
      .string()
      .default('0')
      .transform((v, ctx) => {
        if (v.trim() === '0') return 0;
        const d = parseDuration(v, { min: 1, max: 30 * 86_400 });
        if (!d.ok) {
          ctx.addIssue({ code: 'custom', message: `must be 0 (no limit) or ${d.error.replace(/^".*" is not /, '')}` });
          return z.NEVER;
        }
        return d.seconds * 1000;
      }),
  });
export type WaitFlags = z.infer<typeof WaitFlags>;

export const HooksFlags = z.strictObject({ labelKey: Common.labelKey });
export type HooksFlags = z.infer<typeof HooksFlags>;

/** `--workers` for a key `workers`: the flag as people type it. */
export const flagName = (key: PropertyKey): string => `--${String(key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * Parse with zod; a failure is a usage error (commander's exit code 2) that names
 * the flag as typed and what it takes ("--workers must be a whole number"), or
 * `what` for an argument.
 */
export function parseFlags<S extends z.ZodType>(schema: S, raw: unknown, what?: string): z.infer<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const text = r.error.issues
    .map((i) => {
      if (i.code === 'unrecognized_keys') return `unknown flag${i.keys.length > 1 ? 's' : ''} ${i.keys.map(flagName).join(', ')}`;
      const where = i.path.length > 0 ? flagName(i.path[0] as PropertyKey) : what;
      // A missing required flag: zod says "expected string, received undefined".
      const message = i.code === 'invalid_type' && /received undefined/.test(i.message) ? 'is required' : i.message;
      return where ? `${where} ${message}` : message;
    })
    .join('; ');
  throw new InvalidArgumentError(text);
}
