import { z } from 'zod';

/**
 * The request bodies the http hook POSTs, version sts-pilot.io/v1alpha1: the
 * contract with hook servers written in other languages. The hook builds its
 * bodies through these schemas, and docs/http-hook.schema.json is generated
 * from them (a unit test fails when the two differ), so the published schema
 * is the one the controller sends.
 *
 * A change that removes or renames a field, or changes its meaning, is a new
 * apiVersion; adding a field is not (servers must ignore fields they do not know).
 */
export const HTTP_HOOK_API_VERSION = 'sts-pilot.io/v1alpha1';

/** A Kubernetes object as read from the API server, whole; only the name is promised to be there. */
const KubeObject = (what: string) =>
  z.looseObject({ metadata: z.looseObject({ name: z.string().optional(), namespace: z.string().optional(), uid: z.string().optional() }) }).describe(what);

const Base = {
  apiVersion: z.literal(HTTP_HOOK_API_VERSION),
  statefulSet: KubeObject('The StatefulSet, whole (metadata, spec, status), read when the call is made.'),
};

// Loose at the top: a server must accept fields added later in the same apiVersion.
export const PodUpdateTransitionRequest = z
  .looseObject({
    ...Base,
    kind: z.literal('PodUpdateTransition'),
    prev: KubeObject('The pod updated last; null at the start of a rollout.').nullable(),
    next: KubeObject('The pod about to move to the update revision; null for the final call, after the last pod.').nullable(),
    nextReady: z.boolean().nullable().describe('Whether next is Ready; false while a broken pod is replaced (a rollback or a fix); null when next is null.'),
  })
  .describe('May `next` move to the update revision? 2xx approves; anything else holds, with the start of the body as the reason.');

export const PodRemovalRequest = z
  .looseObject({
    ...Base,
    kind: z.literal('PodRemoval'),
    call: z
      .enum(['removal', 'removed', 'withdrawn'])
      .describe('removal: may pod leave for good? removed: the pod approved last is gone, clean up. withdrawn: the scale-down was cancelled after removal was asked, undo what was prepared.'),
    pod: KubeObject('The leaving pod (for withdrawn it may carry only its name and uid).'),
    podReady: z.boolean().describe('Whether the pod is Ready: an unready pod leaving takes no working node away.'),
    volumes: z.enum(['kept', 'deleted']).describe('deleted when the StatefulSet deletes the pod\'s PersistentVolumeClaims on scale-down (persistentVolumeClaimRetentionPolicy.whenScaled: Delete).'),
    requestedReplicas: z.number().int().nonnegative().describe('The size the StatefulSet is going to.'),
  })
  .describe('Scale-down: pods leave one at a time, highest ordinal first. 2xx approves (or acknowledges removed/withdrawn).');

export const HttpHookRequest = z.discriminatedUnion('kind', [PodUpdateTransitionRequest, PodRemovalRequest]);
export type HttpHookRequest = z.infer<typeof HttpHookRequest>;

/** The JSON Schema published as docs/http-hook.schema.json. */
export function httpHookJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(HttpHookRequest, { target: 'draft-2020-12', io: 'input' }),
    $id: 'https://sts-pilot.io/schemas/http-hook/v1alpha1.json',
    title: `sts-pilot http hook request, ${HTTP_HOOK_API_VERSION}`,
  };
}
