import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { describeError } from '../errors.ts';
import { httpRequest } from '../http.ts';

export interface JsonGetOptions {
  /** Base URL the paths are appended to, without a trailing slash. */
  root: string;
  timeoutMs: number;
  /** Bodies past this are cut (and so fail to parse). */
  maxBytes: number;
  headers?: Record<string, string>;
  dispatcher?: Dispatcher;
  /** Statuses whose body is read; any other fails the GET. Default: 2xx. */
  accept?: (status: number) => boolean;
}

/** GET root+path, parsed as JSON and validated by schema; throws what went wrong. */
export type JsonGet = <T>(path: string, schema: z.ZodType<T>, signal: AbortSignal) => Promise<T>;

const is2xx = (status: number): boolean => status >= 200 && status <= 299;

/**
 * The GET of a probe: an answer with another status, one that is not JSON, or
 * one the schema refuses fails with an error naming the path (its query left out).
 */
export function jsonGetter(o: JsonGetOptions): JsonGet {
  const accept = o.accept ?? is2xx;
  return async <T>(path: string, schema: z.ZodType<T>, signal: AbortSignal): Promise<T> => {
    const res = await httpRequest(`${o.root}${path}`, {
      timeoutMs: o.timeoutMs,
      signal,
      maxBytes: o.maxBytes,
      ...(o.headers ? { headers: o.headers } : {}),
      ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
    });
    const short = path.split('?')[0];
    if (!accept(res.status)) throw new Error(`GET ${short} answered ${res.status}: ${res.text.replace(/\s+/g, ' ').slice(0, 200)}`);
    let body: unknown;
    try {
      body = JSON.parse(res.text);
    } catch {
      throw new Error(`GET ${short} answered with something that is not JSON`);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new Error(`GET ${short} answered unexpectedly: ${z.prettifyError(parsed.error).replace(/\s+/g, ' ')}`);
    return parsed.data;
  };
}

/**
 * For the requests of one probe: awaits a request and gives undefined if it
 * fails, its error added to `errors` (described, 200 characters at most). Once
 * the probe's signal is aborted a failure is thrown instead: the whole probe ends.
 */
export function settler(errors: string[], signal: AbortSignal): <T>(p: Promise<T>) => Promise<T | undefined> {
  return async <T>(p: Promise<T>): Promise<T | undefined> => {
    try {
      return await p;
    } catch (err) {
      if (signal.aborted) throw err;
      errors.push(describeError(err, 200));
      return undefined;
    }
  };
}
