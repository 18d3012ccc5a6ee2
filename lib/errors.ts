/** Status code of a Kubernetes API error, whatever shape the client gave it. */
export function statusCode(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** A short, single-line description of an error for logs, Events and status. */
export function describeError(err: unknown, max = 300): string {
  let text: string;
  if (err instanceof Error) {
    const body = (err as { body?: unknown }).body;
    const apiMessage =
      typeof body === 'string' ? tryMessage(body) : typeof body === 'object' && body !== null ? (body as { message?: string }).message : undefined;
    text = apiMessage ?? err.message;
    // undici says only "fetch failed"; why (ECONNREFUSED, a TLS error, a DNS failure) is in its cause.
    const cause = (err as { cause?: unknown }).cause;
    if (apiMessage === undefined && cause instanceof Error && cause.message && !text.includes(cause.message)) text = `${text}: ${cause.message}`;
  } else {
    text = String(err);
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function tryMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : undefined;
  } catch {
    return body || undefined;
  }
}
