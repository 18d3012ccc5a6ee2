import { z } from 'zod';
import { parseAfter } from './after.ts';
import { parseHaltAfter } from './halt.ts';
import { OnHoldTimeout, parseHoldTimeout } from './hold-timeout.ts';
import { parseOverride } from './override.ts';
import { parseStepDelay } from './step-delay.ts';
import { parseWindows } from './window.ts';

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** A zod schema of one annotation, from the policy's own parser (its errors say what would be valid). */
const annotation = <T>(parse: (raw: string) => Parsed<T>) =>
  z.string().transform((s, ctx): T => {
    const r = parse(s);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: r.error });
      return z.NEVER;
    }
    return r.value;
  });

const seconds = (r: { ok: true; seconds: number } | { ok: false; error: string }): Parsed<number> => (r.ok ? { ok: true, value: r.seconds } : r);

/** The rollout policies' annotations, each parsed by zod. */
export const PolicyAnnotation = {
  window: annotation(parseWindows),
  stepDelay: annotation((s) => seconds(parseStepDelay(s))),
  after: annotation(parseAfter),
  holdTimeout: annotation((s) => seconds(parseHoldTimeout(s))),
  onHoldTimeout: z.string().pipe(OnHoldTimeout),
  haltAfterErrors: annotation(parseHaltAfter),
  override: annotation(parseOverride),
} as const;

/** The value, or the first error as one sentence. */
export function read<T>(schema: z.ZodType<T, string>, raw: string): Parsed<T> {
  const r = schema.safeParse(raw);
  return r.success ? { ok: true, value: r.data } : { ok: false, error: r.error.issues[0]?.message ?? 'is not valid' };
}
