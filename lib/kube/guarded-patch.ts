import { Observable, PatchStrategy, type RequestContext, type ResponseContext, setHeaderOptions, type V1StatefulSet } from '@kubernetes/client-node';

export type JsonPatchOp =
  | { op: 'test'; path: string; value: unknown }
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** RFC 6901: a key as one segment of a JSON Pointer. */
export const pointer = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * A JSON Patch that writes our annotation (and the partition) only if nothing a
 * rollout decision rests on changed since `seen` was read: the object itself
 * (uid), its whole spec (generation: template, replicas, strategy, partition;
 * our own partition write bumps it, so two writers can never both move it from
 * one reading), its labels (the subscription) and annotations (pause, hook
 * options, the rollout mark). Unlike a resourceVersion precondition, it survives
 * the status-only write kube-controller-manager makes when the very pod event
 * that allows a step arrives, which used to cost a 409 and a second round on
 * nearly every step. A failed test is answered 422.
 *
 * Undefined when the guard cannot be expressed: `test` cannot assert that a
 * path is absent, so an object without annotations (or without uid or
 * generation) needs the resourceVersion-guarded merge patch instead.
 */
export function guardedPatch(
  seen: V1StatefulSet,
  annotations: Record<string, string>,
  partition?: number,
  more: { replicas?: number; removeAnnotations?: readonly string[] } = {},
): JsonPatchOp[] | undefined {
  const md = seen.metadata;
  if (!md?.uid || md.generation === undefined || !md.labels || !md.annotations || Object.keys(md.annotations).length === 0) return undefined;
  const ops: JsonPatchOp[] = [
    { op: 'test', path: '/metadata/uid', value: md.uid },
    { op: 'test', path: '/metadata/generation', value: md.generation },
    { op: 'test', path: '/metadata/labels', value: md.labels },
    { op: 'test', path: '/metadata/annotations', value: md.annotations },
  ];
  for (const [k, v] of Object.entries(annotations)) ops.push({ op: 'add', path: `/metadata/annotations/${pointer(k)}`, value: v });
  // Only what is there: the annotations were tested whole above.
  for (const k of more.removeAnnotations ?? []) if (k in md.annotations && !(k in annotations)) ops.push({ op: 'remove', path: `/metadata/annotations/${pointer(k)}` });
  if (more.replicas !== undefined) ops.push({ op: 'add', path: '/spec/replicas', value: more.replicas });
  if (partition !== undefined) {
    const strategy = seen.spec?.updateStrategy;
    if (strategy?.rollingUpdate) ops.push({ op: 'add', path: '/spec/updateStrategy/rollingUpdate/partition', value: partition });
    else if (strategy) ops.push({ op: 'add', path: '/spec/updateStrategy/rollingUpdate', value: { partition } });
    else return undefined;
  }
  return ops;
}

/**
 * A 422 from a guarded patch that could not be applied: kube-apiserver answers a
 * failed `test` (or a path that vanished) with this generic message and no
 * causes, unlike a validation error ("... is invalid: spec.x: ..."). Our
 * operations are well-formed for the object we read, so it means the object
 * changed: plan again.
 */
export function isFailedTest(err: unknown): boolean {
  const body = (err as { body?: unknown }).body;
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  return /rejected our request due to an error in our request|test(ing)? value .* failed|test failed/i.test(text);
}

/**
 * Write JSON as Go's encoder does: `<`, `>`, `&`, U+2028 and U+2029 as \u
 * escapes. kube-apiserver's JSON Patch `test` compares string values byte for
 * byte as encoded, and its own encoding of the object escapes these: a test of
 * an annotation holding "a -> b" (ours do) or a URL with `&` failed for ever
 * when sent as JSON.stringify writes it. These characters only ever occur
 * inside JSON strings, so escaping them in the whole text changes no value.
 */
export function goJson(text: string): string {
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Per-call options for a JSON Patch request whose body is sent Go-escaped. */
export function jsonPatchOptions(): ReturnType<typeof setHeaderOptions> {
  return setHeaderOptions('Content-Type', PatchStrategy.JsonPatch, {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          const body = ctx.getBody();
          if (typeof body === 'string') ctx.setBody(goJson(body));
          return new Observable(Promise.resolve(ctx));
        },
        post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
      },
    ],
  });
}
