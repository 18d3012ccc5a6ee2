import type { V1Pod } from '@kubernetes/client-node';
import { z } from 'zod';

/** What the pod's Pilot says about the Elasticsearch node in it. */
export interface PilotSays {
  nodeName?: string;
  clusterUUID?: string;
  version?: string;
}

/** A pod of the rollout, as the decisions see it. */
export interface NodeRef {
  pod: string;
  /** The Elasticsearch node name: the Pilot's, else the pod's name. */
  name: string;
  ready: boolean;
  /** undefined when the pod has no Pilot, or its Pilot has no application block yet. */
  pilot?: PilotSays;
}

/**
 * The part of a Pilot this hook reads. Typed here, not imported, so the hook
 * depends on nothing but these few fields: the Pilot type may grow freely.
 * `clusterUuid` is accepted as a spelling of `clusterUUID`.
 */
const PilotView = z.looseObject({
  metadata: z
    .looseObject({ ownerReferences: z.array(z.looseObject({ uid: z.string().optional() })).optional() })
    .optional(),
  status: z
    .looseObject({
      application: z
        .looseObject({
          nodeName: z.string().optional(),
          clusterUUID: z.string().optional(),
          clusterUuid: z.string().optional(),
          version: z.string().optional(),
        })
        .nullish(),
    })
    .nullish(),
});

/** Where the Pilots come from: the context's `pilots` reader, when the controller gives one. */
export interface PilotSource {
  get(podName: string): unknown;
}

/** The context's Pilot reader, whether or not HookContext declares one. */
export function pilotsOf(ctx: object): PilotSource | undefined {
  const p = (ctx as { pilots?: unknown }).pilots;
  return typeof p === 'object' && p !== null && typeof (p as PilotSource).get === 'function' ? (p as PilotSource) : undefined;
}

export function podReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/**
 * The node behind a pod. A Pilot owned by another pod (the one this pod
 * replaced, before garbage collection caught up) describes another process:
 * it is ignored, as if absent.
 */
export function nodeRefOf(pod: V1Pod, pilot: unknown): { ok: true; ref: NodeRef } | { ok: false; error: string } {
  const podName = pod.metadata?.name ?? '';
  const ready = podReady(pod);
  if (pilot === undefined || pilot === null) return { ok: true, ref: { pod: podName, name: podName, ready } };
  const r = PilotView.safeParse(pilot);
  if (!r.success) return { ok: false, error: `the Pilot of ${podName} cannot be read: ${z.prettifyError(r.error).replace(/\s+/g, ' ')}` };
  const owners = (r.data.metadata?.ownerReferences ?? []).map((o) => o.uid).filter((u): u is string => !!u);
  const uid = pod.metadata?.uid;
  if (uid && owners.length > 0 && !owners.includes(uid)) return { ok: true, ref: { pod: podName, name: podName, ready } };
  const app = r.data.status?.application;
  if (!app) return { ok: true, ref: { pod: podName, name: podName, ready } };
  const says: PilotSays = {};
  if (app.nodeName) says.nodeName = app.nodeName;
  const uuid = app.clusterUUID ?? app.clusterUuid;
  if (uuid) says.clusterUUID = uuid;
  if (app.version) says.version = app.version;
  return { ok: true, ref: { pod: podName, name: says.nodeName ?? podName, ready, pilot: says } };
}
