import type { z } from 'zod';
import type { RolloutHook } from '../hook.ts';
import { hookOptionPrefix } from '../names.ts';
import { columns } from './format.ts';

export interface OptionInfo {
  /** The annotation a person writes: `<hook>.sts-pilot.io/<option>`. */
  annotation: string;
  /** What the annotation's value must look like, e.g. "string (url)". */
  type: string;
  required: boolean;
  /** The default, as JSON, when the schema has one. */
  default: string | undefined;
  description: string | undefined;
}

/** The pieces of zod 4's internals read here (`_zod.def`); anything else is shown as its type name. */
interface Def {
  type: string;
  format?: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  defaultValue?: unknown;
  values?: readonly unknown[];
  entries?: Record<string, unknown>;
}
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/**
 * The options of a hook, read from its own zod schema, so the list can never
 * drift from what the controller accepts. Wrappers (optional, default, pipe
 * from a transform) are peeled to the type a person writes in the annotation.
 */
export function describeOptions(hook: RolloutHook): OptionInfo[] {
  const shape = objectShape(hook.options);
  if (!shape) return [];
  return Object.entries(shape).map(([name, schema]) => {
    let s: z.ZodType | undefined = schema;
    let dflt: unknown;
    let description = schema.description;
    for (let depth = 0; s !== undefined && depth < 10; depth++) {
      const d = defOf(s);
      description ??= s.description;
      if (d.type === 'default' || d.type === 'prefault') dflt ??= d.defaultValue;
      if (d.type === 'optional' || d.type === 'nullable' || d.type === 'default' || d.type === 'prefault' || d.type === 'readonly') s = d.innerType;
      else if (d.type === 'pipe') s = d.in; // a transform's input is what the annotation holds
      else break;
    }
    return {
      annotation: `${hookOptionPrefix(hook.name)}${name}`,
      type: s === undefined ? 'unknown' : typeName(defOf(s)),
      required: !(schema as unknown as { isOptional(): boolean }).isOptional(),
      default: dflt === undefined ? undefined : JSON.stringify(dflt),
      description,
    };
  });
}

function typeName(d: Def): string {
  if (d.type === 'string' && d.format) return `string (${d.format})`;
  if (d.type === 'enum' && d.entries) return `one of ${Object.values(d.entries).map((v) => JSON.stringify(v)).join(', ')}`;
  if (d.type === 'literal' && d.values) return d.values.map((v) => JSON.stringify(v)).join(' | ');
  return d.type;
}

/** Whether a hook is asked before a pod leaves for good (docs/rollout.md, "Scale-down"). */
export const guardsScaleDown = (hook: RolloutHook): boolean => typeof hook.podRemoval === 'function';

/** `sts-pilot hooks`: each hook, what it approves, and the annotations it reads. */
export function renderHooks(hooks: Iterable<RolloutHook>, labelKey: string): string[] {
  const out: string[] = [];
  for (const hook of hooks) {
    if (out.length > 0) out.push('');
    out.push(`${hook.name}: ${hook.description}`);
    out.push(`  use: label ${labelKey}: ${hook.name}`);
    out.push(`  scale-down: ${guardsScaleDown(hook) ? 'asks the hook before each pod leaves (podRemoval)' : 'not guarded: the hook has no podRemoval, so each removal is approved once every other pod is Ready'}`);
    const opts = describeOptions(hook);
    if (opts.length === 0) {
      out.push('  options: none');
      continue;
    }
    out.push('  options (annotations):');
    const rows = opts.map((o) => [
      `    ${o.annotation}`,
      o.type,
      o.required ? 'required' : o.default !== undefined ? `default ${o.default}` : 'optional',
      o.description ?? '',
    ]);
    out.push(...columns(rows));
  }
  return out;
}

/** The object shape under a schema, looking through refinements and transforms (zod 4 pipes keep it in `in`). */
function objectShape(schema: unknown): Record<string, z.ZodType> | undefined {
  let s = schema as { shape?: Record<string, z.ZodType>; _zod?: { def?: { in?: unknown } } } | undefined;
  for (let depth = 0; s && depth < 5; depth++) {
    if (s.shape) return s.shape;
    s = s._zod?.def?.in as typeof s;
  }
  return undefined;
}
