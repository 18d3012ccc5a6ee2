import { z } from 'zod';
import { describeError } from '../../lib/errors.ts';
import { type HookContext, HookNotReady } from '../../lib/hook.ts';
import { httpRequest } from '../../lib/http.ts';
import { shortLine } from '../../lib/sanitize.ts';
import { tlsProblem } from '../../lib/tls-problem.ts';
import { refusalOf } from '../../lib/url-policy.ts';
import { ErrorAnswer } from './answers.ts';
import type { Options } from './options.ts';

/** One cluster, reached with the options' URL, credentials and CA. Every failure is a HookNotReady with a reason. */
export interface EsClient {
  readonly url: string;
  /** Requests sent and answer bytes read by this client so far (what one hook call costs). */
  readonly stats: { requests: number; bytes: number };
  get<T>(path: string, schema: z.ZodType<T>, maxBytes?: number): Promise<T>;
  send<T>(method: 'PUT' | 'POST' | 'DELETE', path: string, body: unknown, schema: z.ZodType<T>): Promise<T>;
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

// The Secret's keys: basic auth, an API key as Elasticsearch encodes it (base64
// of id:key, the `encoded` field of the create-API-key answer), or the Secret
// ECK creates for the built-in user (`<cluster>-es-elastic-user`: one key, the
// user's name, whose value is the password). Values are trimmed: a Secret made
// with `echo` ends in a newline that is no part of the password.
const Credentials = z.union([
  z.object({ 'api-key': z.string().trim().min(1) }).transform((s) => `ApiKey ${s['api-key']}`),
  z.object({ username: z.string().trim().min(1), password: z.string().trim().min(1) }).transform((s) => basic(s.username, s.password)),
  z
    .record(z.string(), z.string())
    .refine((r) => Object.keys(r).length === 1 && /^[a-zA-Z0-9_.@-]+$/.test(Object.keys(r)[0] as string) && (Object.values(r)[0] as string).trim() !== '')
    .transform((r) => {
      const [user, password] = Object.entries(r)[0] as [string, string];
      return basic(user, password.trim());
    }),
]);

const CA_KEY = 'ca.crt';

async function readObject(what: string, read: () => Promise<Record<string, string>>): Promise<Record<string, string>> {
  try {
    return await read();
  } catch (err) {
    // The controller's refusal (not an allowed Secret) says it all, and how to allow it.
    if (err instanceof HookNotReady) throw err;
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
  if (!r.success) throw new HookNotReady(`${what} has neither api-key, nor username and password, nor one key naming a user (as ECK's elastic-user Secret)`);
  return r.data;
}

async function caBundle(o: Options, ctx: HookContext<Options>): Promise<string | undefined> {
  if (!o.caSecret) return undefined;
  const name = o.caSecret;
  const what = `Secret ${name}`;
  const data = await readObject(what, () => ctx.secrets(name));
  const pem = data[CA_KEY];
  if (!pem || !pem.includes('-----BEGIN CERTIFICATE-----')) throw new HookNotReady(`${what} has no PEM certificate under ${CA_KEY}`);
  return pem;
}

/**
 * A short reason for an answer that is not 2xx: the server's own error reason
 * when it gives one, as one sanitized line (it reaches Events; whoever chose the
 * URL chose what it says).
 */
function statusReason(status: number, text: string): string {
  let detail = text;
  try {
    const e = ErrorAnswer.safeParse(JSON.parse(text));
    if (e.success) detail = typeof e.data.error === 'string' ? e.data.error : [e.data.error.type, e.data.error.reason].filter(Boolean).join(': ');
  } catch {
    // not JSON: the text as it is
  }
  const line = shortLine(detail);
  return `answered ${status}${line ? `: ${line}` : ''}`;
}

export async function connect(ctx: HookContext<Options>): Promise<EsClient> {
  const o = ctx.options;
  const [auth, ca] = await Promise.all([authorization(o, ctx), caBundle(o, ctx)]);
  const headers: Record<string, string> = auth ? { authorization: auth } : {};
  const timeoutMs = o.timeoutSeconds * 1000;
  const stats = { requests: 0, bytes: 0 };

  async function exchange<T>(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body: unknown, schema: z.ZodType<T>, maxBytes: number): Promise<T> {
    const what = `Elasticsearch at ${o.url}: ${method} ${path.split('?')[0]}`;
    let res;
    stats.requests++;
    try {
      res = await httpRequest(`${o.url}${path}`, {
        method,
        ...(body !== undefined ? { body } : {}),
        headers,
        timeoutMs,
        signal: ctx.signal,
        maxBytes,
        dispatcher: ctx.egress.dispatcher(ca),
      });
    } catch (err) {
      const refused = refusalOf(err);
      if (refused) throw new HookNotReady(`${what}: not allowed: ${refused.message}`);
      if (ctx.signal.aborted) throw new HookNotReady(`${what}: the hook call was cancelled (deadline or shutdown)`);
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || /timeout/i.test(err.name));
      const tls = tlsProblem(err, ca !== undefined);
      throw new HookNotReady(`${what}: ${tls ?? (timedOut ? `no answer within ${o.timeoutSeconds}s` : `unreachable (${describeError(err, 200)})`)}`);
    }
    stats.bytes += Buffer.byteLength(res.text);
    if (res.status < 200 || res.status > 299) {
      ctx.log.debug({ status: res.status, body: res.text }, `${what}: the answer in full`);
      throw new HookNotReady(`${what} ${statusReason(res.status, res.text)}`);
    }
    if (res.truncated) throw new HookNotReady(`${what}: the answer is larger than ${maxBytes >> 20} MiB`);
    let json: unknown;
    try {
      // Some write APIs (voting_config_exclusions) answer 200 with no body.
      json = res.text.trim() === '' ? {} : JSON.parse(res.text);
    } catch {
      ctx.log.debug({ status: res.status, body: res.text }, `${what}: the answer in full`);
      throw new HookNotReady(`${what}: the answer is not JSON: ${shortLine(res.text, 100)}`);
    }
    const r = schema.safeParse(json);
    if (!r.success) throw new HookNotReady(`${what}: unexpected answer: ${z.prettifyError(r.error).replace(/\s+/g, ' ').slice(0, 300)}`);
    return r.data;
  }

  return {
    url: o.url,
    stats,
    get: (path, schema, maxBytes = 1 << 20) => exchange('GET', path, undefined, schema, maxBytes),
    send: (method, path, body, schema) => exchange(method, path, body, schema, 1 << 20),
  };
}
