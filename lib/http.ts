import { type Dispatcher, request } from 'undici';

export interface HttpAnswer {
  status: number;
  text: string;
  /** The body was longer than maxBytes and `text` holds only its start. */
  truncated?: boolean;
}

export interface HttpOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
  dispatcher?: Dispatcher;
  /** Bodies past this are cut: a hook never buffers an unbounded answer. */
  maxBytes?: number;
}

/**
 * One HTTP exchange with timeouts on connect, headers and body; JSON in, text
 * out. Hooks pass their context's egress dispatcher (lib/egress.ts): it is what
 * keeps them to the controller's address policy and carries a CA.
 */
export async function httpRequest(url: string, o: HttpOptions): Promise<HttpAnswer> {
  const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs);
  const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
  let body: string | undefined;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['content-type'] = 'application/json';
  }
  const res = await request(url, {
    method: o.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
    signal,
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
    ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
  });
  const max = o.maxBytes ?? 1 << 20;
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of res.body) {
    const buf = chunk as Buffer;
    if (size + buf.length > max) {
      chunks.push(buf.subarray(0, max - size));
      truncated = true;
      res.body.destroy();
      break;
    }
    chunks.push(buf);
    size += buf.length;
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return truncated ? { status: res.statusCode, text, truncated } : { status: res.statusCode, text };
}
