import { InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { DEFAULT_LABEL_KEY } from '../names.ts';

// Every flag and argument of the people-facing commands is parsed here, once.

const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dns1123Subdomain = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelKey = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export const NamespaceName = z.string().regex(dns1123Label, 'must be a namespace name');
export const StatefulSetName = z.string().regex(dns1123Subdomain, 'must be a StatefulSet name');
export const PodName = z.string().regex(dns1123Subdomain, 'must be a pod name');

const Common = {
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  namespace: NamespaceName.optional(),
  labelKey: z.string().regex(labelKey, 'must be a label key').default(DEFAULT_LABEL_KEY),
};

export const StatusFlags = z
  .strictObject({ ...Common, allNamespaces: z.boolean().default(false), watch: z.boolean().default(false) })
  .refine((f) => !(f.allNamespaces && f.namespace), { message: '-n/--namespace and -A/--all-namespaces exclude each other' });
export type StatusFlags = z.infer<typeof StatusFlags>;

export const TargetFlags = z.strictObject({ ...Common });
export type TargetFlags = z.infer<typeof TargetFlags>;

export const ApproveFlags = z.strictObject({ ...Common, pod: PodName.optional() });
export type ApproveFlags = z.infer<typeof ApproveFlags>;

export const UndoFlags = z.strictObject({
  ...Common,
  toRevision: z.string().regex(/^[1-9][0-9]{0,17}$/, 'must be a revision number (1 or more)').transform(Number).optional(),
});
export type UndoFlags = z.infer<typeof UndoFlags>;

export const HooksFlags = z.strictObject({ labelKey: Common.labelKey });
export type HooksFlags = z.infer<typeof HooksFlags>;

/**
 * Parse with zod; a failure is a usage error (commander's exit code 2) that names
 * the flag as typed (`--label-key`), or `what` for an argument.
 */
export function parseFlags<S extends z.ZodType>(schema: S, raw: unknown, what?: string): z.infer<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const flag = (key: PropertyKey): string => `--${String(key).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  const text = r.error.issues
    .map((i) => {
      const where = i.path.length > 0 ? flag(i.path[0] as PropertyKey) : what;
      return `${where ? `${where}: ` : ''}${i.message}`;
    })
    .join('; ');
  throw new InvalidArgumentError(text);
}
