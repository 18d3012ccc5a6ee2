import { z } from 'zod';
import { describeError } from '../../lib/errors.ts';
import { type HookContext, HookNotReady, type OrderContext } from '../../lib/hook.ts';
import { httpRequest } from '../../lib/http.ts';
import { shortLine } from '../../lib/sanitize.ts';
import { refusalOf } from '../../lib/url-policy.ts';
import type { Options } from './options.ts';

/** Patroni's REST API, at any member's address. Every failure is a HookNotReady with a reason. */
export interface PatroniClient {
  get<T>(url: string, schema: z.ZodType<T>): Promise<T>;
  /** POST a JSON body; resolves with the answer's text when 2xx. */
  post(url: string, body: unknown, timeoutMs: number): Promise<string>;
}

const Credentials = z.object({ username: z.string().min(1), password: z.string() });

type Ctx = HookContext<Options> | OrderContext<Options>;

/** The Authorization header from the credentials Secret; its values never reach a reason or a log. */
async function authorization(ctx: Ctx): Promise<string | undefined> {
  const name = ctx.options.credentialsSecret;
  if (!name) return undefined;
  let data: Record<string, string>;
  try {
    data = await ctx.secrets(name);
  } catch (err) {
    // The controller's refusal (not an allowed Secret) says it all, and how to allow it.
    if (err instanceof HookNotReady) throw err;
    throw new HookNotReady(`cannot read Secret ${name}: ${describeError(err, 200)}`);
  }
  const r = Credentials.safeParse(data);
  if (!r.success) throw new HookNotReady(`Secret ${name} has no username and password for Patroni's REST API`);
  return `Basic ${Buffer.from(`${r.data.username}:${r.data.password}`).toString('base64')}`;
}

/** "http://10.0.0.7:8008/cluster": the path only, for reasons (no userinfo, no query). */
const where = (url: string): string => {
  try {
    const u = new URL(url);
    return shortLine(`${u.protocol}//${u.host}${u.pathname}`, 150);
  } catch {
    return shortLine(url, 100);
  }
};

export async function connect(ctx: Ctx): Promise<PatroniClient> {
  const auth = await authorization(ctx);
  const headers: Record<string, string> = auth ? { authorization: auth } : {};
  const timeoutMs = ctx.options.timeoutSeconds * 1000;

  async function exchange(method: 'GET' | 'POST', url: string, body: unknown, ms: number): Promise<{ status: number; text: string }> {
    try {
      const res = await httpRequest(url, { method, headers, timeoutMs: ms, signal: ctx.signal, maxBytes: 4 << 20, dispatcher: ctx.egress.dispatcher(), ...(body !== undefined ? { body } : {}) });
      if (res.truncated) throw new HookNotReady(`Patroni at ${where(url)}: the answer is larger than 4 MiB`);
      if (res.status < 200 || res.status > 299) ctx.log.debug({ status: res.status, body: res.text }, `Patroni at ${where(url)}: the answer in full`);
      return res;
    } catch (err) {
      if (err instanceof HookNotReady) throw err;
      // Member URLs come from Patroni's own answer: each is judged like the option's.
      const refused = refusalOf(err);
      if (refused) throw new HookNotReady(`Patroni at ${where(url)}: not allowed: ${refused.message}`);
      if (ctx.signal.aborted) throw new HookNotReady(`Patroni at ${where(url)}: the hook call was cancelled (deadline or shutdown)`);
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || /timeout/i.test(err.name));
      throw new HookNotReady(`Patroni's REST API at ${where(url)} ${timedOut ? `gave no answer within ${ms / 1000}s` : `is unreachable (${describeError(err, 200)})`}`);
    }
  }

  return {
    async get(url, schema) {
      const res = await exchange('GET', url, undefined, timeoutMs);
      // /patroni answers 503 for a member whose PostgreSQL is down, with the same body.
      if (res.status !== 200 && res.status !== 503) throw new HookNotReady(`Patroni at ${where(url)} answered ${res.status}: ${shortLine(res.text)}`);
      let json: unknown;
      try {
        json = JSON.parse(res.text);
      } catch {
        ctx.log.debug({ status: res.status, body: res.text }, `Patroni at ${where(url)}: the answer in full`);
        throw new HookNotReady(`Patroni at ${where(url)} answered ${res.status} with something that is not JSON: ${shortLine(res.text, 100)}`);
      }
      const r = schema.safeParse(json);
      if (!r.success) throw new HookNotReady(`Patroni at ${where(url)}: unexpected answer: ${z.prettifyError(r.error).replace(/\s+/g, ' ').slice(0, 300)}`);
      return r.data;
    },
    async post(url, body, ms) {
      const res = await exchange('POST', url, body, ms);
      const text = shortLine(res.text);
      if (res.status === 401 || res.status === 403) {
        throw new HookNotReady(`Patroni at ${where(url)} refused the request (${res.status}): name a Secret with the REST API's username and password in credentials-secret`);
      }
      if (res.status < 200 || res.status > 299) throw new HookNotReady(`Patroni at ${where(url)} answered ${res.status}: ${text}`);
      return text;
    },
  };
}
