import { z } from 'zod';
import { defineHook, HookNotReady, secondsOption } from '../../lib/hook.ts';
import { httpRequest } from '../../lib/http.ts';
import { policyAgent, urlPolicy, UrlRefused, type UrlPolicy } from '../../lib/url-policy.ts';

const Options = z.strictObject({
  url: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    // undici never sends userinfo, and annotations are readable by anyone who can read the StatefulSet.
    .refine((u) => !URL.canParse(u) || (!new URL(u).username && !new URL(u).password), 'must not carry credentials (they would not be sent)'),
  timeout: secondsOption(10),
});

/**
 * The URL as people may see it in reasons, Events and logs: no userinfo, no
 * query (either may carry a credential), and short enough to leave room for why.
 */
export function displayUrl(raw: string): string {
  try {
    const u = new URL(raw);
    const path = u.pathname.length > 60 ? `${u.pathname.slice(0, 60)}…` : u.pathname;
    return `${u.protocol}//${u.host}${path}${u.search ? '?…' : ''}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * POSTs {statefulSet, prev, next, nextReady} (the Kubernetes objects, and
 * whether next is Ready) to a URL: any 2xx
 * approves, anything else holds with the answer's body as the reason. Lets a
 * hook be written in any language. It connects only where `policy` allows
 * (the controller's --http-hook-allow; link-local addresses and the API server
 * never): the URL comes from an annotation, and the answer goes into an Event.
 */
export function createHttpHook(policy: UrlPolicy = urlPolicy([])) {
  const dispatcher = policyAgent(policy);
  return defineHook({
    name: 'http',
    description: 'POST {statefulSet, prev, next} to a URL; 2xx approves, anything else holds with the body as reason',
    options: Options,
    async podUpdateTransition(prev, next, ctx) {
      const { url, timeout } = ctx.options;
      const where = displayUrl(url);
      let answer;
      try {
        answer = await httpRequest(url, {
          body: { statefulSet: ctx.statefulSet, prev, next, nextReady: ctx.nextReady },
          timeoutMs: timeout * 1000,
          signal: ctx.signal,
          maxBytes: 64 * 1024,
          dispatcher,
        });
      } catch (err) {
        const refused = err instanceof UrlRefused ? err : (err as { cause?: unknown }).cause instanceof UrlRefused ? ((err as { cause: UrlRefused }).cause) : undefined;
        if (refused) throw new HookNotReady(`${where} is not allowed: ${refused.message}`);
        throw new HookNotReady(`${where} did not answer: ${(err as Error).message}`);
      }
      if (answer.status >= 200 && answer.status < 300) return;
      const body = answer.text.replace(/\s+/g, ' ').trim().slice(0, 300);
      throw new HookNotReady(`${where} answered ${answer.status}${body ? `: ${body}` : ''}`);
    },
  });
}

/** The http hook with only the built-in refusals (link-local); the controller builds its own from its flags. */
export const httpHook = createHttpHook();
