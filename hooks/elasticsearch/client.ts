import { z } from 'zod';
import { describeError } from '../../lib/errors.ts';
import { type HookContext, HookNotReady } from '../../lib/hook.ts';
import { httpRequest } from '../../lib/http.ts';
import { ErrorAnswer } from './answers.ts';
import type { Options } from './options.ts';

/** One cluster, reached with the options' URL, credentials and CA. Every failure is a HookNotReady with a reason. */
export interface EsClient {
  readonly url: string;
  get<T>(path: string, schema: z.ZodType<T>, maxBytes?: number): Promise<T>;
  send<T>(method: 'PUT' | 'POST', path: string, body: unknown, schema: z.ZodType<T>): Promise<T>;
}

// The Secret's keys: basic auth, or an API key as Elasticsearch encodes it
// (base64 of id:key, the `encoded` field of the create-API-key answer).
const Credentials = z.union([
  z.object({ 'api-key': z.string().min(1) }).transform((s) => `ApiKey ${s['api-key'].trim()}`),
  z
    .object({ username: z.string().min(1), password: z.string() })
    .transform((s) => `Basic ${Buffer.from(`${s.username}:${s.password}`).toString('base64')}`),
]);

const CA_KEY = 'ca.crt';

/** A ConfigMap reader, when the controller gives hooks one (HookContext may not declare it). */
type ConfigMapReader = (name: string) => Promise<Record<string, string>>;
function configMapsOf(ctx: object): ConfigMapReader | undefined {
  const r = (ctx as { configMaps?: unknown }).configMaps;
  return typeof r === 'function' ? (r as ConfigMapReader) : undefined;
}

async function readObject(what: string, read: () => Promise<Record<string, string>>): Promise<Record<string, string>> {
  try {
    return await read();
  } catch (err) {
    // The reader's error names the object and the API's answer, never its data.
    throw new HookNotReady(`cannot read ${what}: ${describeError(err, 200)}`);
  }
}

/** The Authorization header from the credentials Secret; its values never reach a reason or a log. */
async function authorization(o: Options, ctx: HookContext<Options>): Promise<string | undefined> {
  if (!o.credentialsSecret) return undefined;
  const what = `Secret ${o.credentialsSecret}`;
  const data = await readObject(what, () => ctx.secrets(o.credentialsSecret as string));
  const r = Credentials.safeParse(data);
  if (!r.success) throw new HookNotReady(`${what} has neither api-key nor username and password`);
  return r.data;
}

async function caBundle(o: Options, ctx: HookContext<Options>): Promise<string | undefined> {
  if (!o.ca) return undefined;
  const what = `${o.ca.kind} ${o.ca.name}`;
  let data: Record<string, string>;
  if (o.ca.kind === 'Secret') {
    data = await readObject(what, () => ctx.secrets((o.ca as { name: string }).name));
  } else {
    const read = configMapsOf(ctx);
    if (!read) throw new HookNotReady(`this controller cannot read ConfigMaps for hooks: put the CA in a Secret and name it in ca-secret`);
    data = await readObject(what, () => read((o.ca as { name: string }).name));
  }
  const pem = data[CA_KEY];
  if (!pem || !pem.includes('-----BEGIN CERTIFICATE-----')) throw new HookNotReady(`${what} has no PEM certificate under ${CA_KEY}`);
  return pem;
}

/** A short reason for an answer that is not 2xx: the server's own error reason when it gives one. */
function statusReason(status: number, text: string): string {
  let detail = text.replace(/\s+/g, ' ').trim();
  try {
    const e = ErrorAnswer.safeParse(JSON.parse(text));
    if (e.success) detail = typeof e.data.error === 'string' ? e.data.error : [e.data.error.type, e.data.error.reason].filter(Boolean).join(': ');
  } catch {
    // not JSON: the text as it is
  }
  return `answered ${status}${detail ? `: ${detail.slice(0, 300)}` : ''}`;
}

export async function connect(ctx: HookContext<Options>): Promise<EsClient> {
  const o = ctx.options;
  const [auth, ca] = await Promise.all([authorization(o, ctx), caBundle(o, ctx)]);
  const headers: Record<string, string> = auth ? { authorization: auth } : {};
  const timeoutMs = o.timeoutSeconds * 1000;

  async function exchange<T>(method: 'GET' | 'PUT' | 'POST', path: string, body: unknown, schema: z.ZodType<T>, maxBytes: number): Promise<T> {
    const what = `Elasticsearch at ${o.url}: ${method} ${path.split('?')[0]}`;
    let res;
    try {
      res = await httpRequest(`${o.url}${path}`, {
        method,
        ...(body !== undefined ? { body } : {}),
        headers,
        timeoutMs,
        signal: ctx.signal,
        maxBytes,
        ...(ca ? { ca } : {}),
      });
    } catch (err) {
      if (ctx.signal.aborted) throw new HookNotReady(`${what}: the hook call was cancelled (deadline or shutdown)`);
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || /timeout/i.test(err.name));
      throw new HookNotReady(`${what}: ${timedOut ? `no answer within ${o.timeoutSeconds}s` : `unreachable (${describeError(err, 200)})`}`);
    }
    if (res.status < 200 || res.status > 299) throw new HookNotReady(`${what} ${statusReason(res.status, res.text)}`);
    if (res.truncated) throw new HookNotReady(`${what}: the answer is larger than ${maxBytes >> 20} MiB`);
    let json: unknown;
    try {
      json = JSON.parse(res.text);
    } catch {
      throw new HookNotReady(`${what}: the answer is not JSON: ${res.text.replace(/\s+/g, ' ').slice(0, 100)}`);
    }
    const r = schema.safeParse(json);
    if (!r.success) throw new HookNotReady(`${what}: unexpected answer: ${z.prettifyError(r.error).replace(/\s+/g, ' ').slice(0, 300)}`);
    return r.data;
  }

  return {
    url: o.url,
    get: (path, schema, maxBytes = 1 << 20) => exchange('GET', path, undefined, schema, maxBytes),
    send: (method, path, body, schema) => exchange(method, path, body, schema, 1 << 20),
  };
}
