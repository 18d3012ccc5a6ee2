import { Agent, type Dispatcher, request } from 'undici';

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
  /**
   * PEM certificates to trust for an https URL, instead of the system's. Ignored
   * when a dispatcher is given (that dispatcher decides).
   */
  ca?: string;
}

/**
 * One connection pool per CA bundle, kept across calls: building an Agent per
 * request would open (and TLS-handshake) a new connection every time. Bounded,
 * because the bundles come from Secrets that can change: the oldest is closed
 * gracefully (requests in flight on it finish).
 */
const caAgents = new Map<string, Agent>();
const MAX_CA_AGENTS = 8;

function agentForCa(ca: string): Agent {
  let agent = caAgents.get(ca);
  if (agent) {
    // Refresh its place: the map's order is least recently used first.
    caAgents.delete(ca);
    caAgents.set(ca, agent);
    return agent;
  }
  agent = new Agent({ connect: { ca } });
  caAgents.set(ca, agent);
  for (const [key, old] of caAgents) {
    if (caAgents.size <= MAX_CA_AGENTS) break;
    caAgents.delete(key);
    void old.close().catch(() => {});
  }
  return agent;
}

/** One HTTP exchange with timeouts on connect, headers and body; JSON in, text out. */
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
    ...(o.dispatcher ? { dispatcher: o.dispatcher } : o.ca ? { dispatcher: agentForCa(o.ca) } : {}),
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
