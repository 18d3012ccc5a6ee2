import { z } from 'zod';
import type { V1Pod } from '@kubernetes/client-node';
import { defineHook, HookNotReady, type RemovalContext, type RemovalOutcome, secondsOption } from '../../lib/hook.ts';
import { httpRequest } from '../../lib/http.ts';
import type { Egress } from '../../lib/egress.ts';
import { describeError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import { shortLine } from '../../lib/sanitize.ts';
import { refusalOf } from '../../lib/url-policy.ts';
import { HTTP_HOOK_API_VERSION, type HttpHookRequest } from './schema.ts';

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


/** A request as hooks/http/schema.ts defines it, the Kubernetes objects as the client types them. */
type Body = { kind: HttpHookRequest['kind'] } & Record<string, unknown>;

/** A scale-down request: may `pod` leave (`removal`), or it left (`removed`), or its removal was withdrawn. */
function removalBody(call: 'removal' | RemovalOutcome, pod: V1Pod, ctx: RemovalContext<unknown>): Body {
  return { kind: 'PodRemoval', call, statefulSet: ctx.statefulSet, pod, podReady: ctx.podReady, volumes: ctx.volumes, requestedReplicas: ctx.requestedReplicas };
}

/**
 * POSTs {statefulSet, prev, next, nextReady} (the Kubernetes objects, and
 * whether next is Ready) to a URL: any 2xx
 * approves, anything else holds with the start of the answer's body as the
 * reason (one sanitized line; the whole body in the debug log). Lets a hook be
 * written in any language. It connects only where the controller's address
 * policy allows (ctx.egress: --hook-allow, --hook-allow-loopback; link-local
 * addresses and the API server never): the URL comes from an annotation, and
 * the answer goes into an Event.
 */
function createHttpHook() {
  /** POST one request; 2xx resolves, anything else holds with a short reason. */
  const post = async (ctx: { options: z.infer<typeof Options>; signal: AbortSignal; egress: Egress; log: Logger }, body: Body): Promise<void> => {
    const { url, timeout } = ctx.options;
    const where = displayUrl(url);
    let answer;
    try {
      answer = await httpRequest(url, { body: { apiVersion: HTTP_HOOK_API_VERSION, ...body }, timeoutMs: timeout * 1000, signal: ctx.signal, maxBytes: 64 * 1024, dispatcher: ctx.egress.dispatcher() });
    } catch (err) {
      const refused = refusalOf(err);
      if (refused) throw new HookNotReady(`${where} is not allowed: ${refused.message}`);
      throw new HookNotReady(`${where} did not answer: ${describeError(err, 200)}`);
    }
    if (answer.status >= 200 && answer.status < 300) return;
    ctx.log.debug({ status: answer.status, body: answer.text }, `${where}: the answer in full`);
    const text = shortLine(answer.text);
    throw new HookNotReady(`${where} answered ${answer.status}${text ? `: ${text}` : ''}`);
  };
  return defineHook({
    name: 'http',
    description: 'POST each step and each removal to a URL (docs/hooks-http.md); 2xx approves, anything else holds with the body as reason',
    options: Options,
    async podUpdateTransition(prev, next, ctx) {
      await post(ctx, { kind: 'PodUpdateTransition', statefulSet: ctx.statefulSet, prev, next, nextReady: ctx.nextReady });
    },
    async podRemoval(pod, ctx) {
      await post(ctx, removalBody('removal', pod, ctx));
    },
    async podRemoved(pod, outcome, ctx) {
      await post(ctx, removalBody(outcome, pod, ctx));
    },
  });
}

export const httpHook = createHttpHook();
