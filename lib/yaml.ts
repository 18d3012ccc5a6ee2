/**
 * A small YAML emitter for manifests we generate (block style, stable key
 * order as given). Written here because client-node's dumpYaml runs objects
 * through its typed models, which drop keys they do not know (`enum`,
 * `x-kubernetes-*` inside a CRD schema), and its YAML library is not ours to
 * import. Strings that YAML 1.1 (what the Kubernetes tools parse) could read
 * as something else are written as JSON strings, which YAML reads as-is.
 */
export function toYaml(value: unknown): string {
  return `${emit(value, 0).replace(/^\n/, '')}\n`;
}

const YAML11_WORDS = new Set(['true', 'false', 'yes', 'no', 'on', 'off', 'y', 'n', 'null', '~']);

export function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot write ${v} as YAML`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v !== 'string') throw new Error(`cannot write a ${typeof v} as a YAML scalar`);
  const plain =
    /^[A-Za-z_][A-Za-z0-9 _.,/()'*-]*$/.test(v) &&
    !v.endsWith(' ') &&
    !v.includes(' #') &&
    !YAML11_WORDS.has(v.toLowerCase());
  // A leading `.`, `/` or `-` followed by more is fine in plain style except a lone `-`.
  const pathLike = /^[./][A-Za-z0-9_.[\]/*-]*$/.test(v);
  return plain || pathLike ? v : JSON.stringify(v);
}

function emit(v: unknown, indent: number): string {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    if (v.length === 0) return ' []';
    return v
      .map((item) => {
        if (isObject(item) && Object.keys(item).length > 0) {
          // First key on the dash line, the others aligned under it.
          const body = emit(item, indent + 2).replace(/^\n {1,}/, '');
          return `\n${pad}- ${body}`;
        }
        if (Array.isArray(item) && item.length > 0) return `\n${pad}-${emit(item, indent + 2)}`;
        return `\n${pad}-${emitInline(item)}`;
      })
      .join('');
  }
  if (isObject(v)) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return ' {}';
    return entries
      .map(([k, x]) => {
        const nested = (isObject(x) && Object.keys(x).length > 0) || (Array.isArray(x) && x.length > 0);
        return `\n${pad}${scalar(k)}:${nested ? emit(x, indent + 2) : emitInline(x)}`;
      })
      .join('');
  }
  return emitInline(v);
}

function emitInline(v: unknown): string {
  if (Array.isArray(v)) return ' []';
  if (isObject(v)) return ' {}';
  return ` ${scalar(v)}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
