import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { z } from 'zod';
import type { BrokerRef, ProcessState } from './refs.ts';

/** What the pod's Pilot says about the Kafka node in it (absent = unknown). */
export interface PilotSays {
  brokerId?: number;
  clusterId?: string;
  /** The pilot's phase: Running while the Kafka process it started runs. */
  phase?: string;
}

/**
 * The part of a Pilot this hook reads. Typed here, not imported, so the hook
 * depends on nothing but these few fields.
 */
const PilotView = z.looseObject({
  metadata: z.looseObject({ ownerReferences: z.array(z.looseObject({ uid: z.string().optional() })).optional() }).optional(),
  status: z
    .looseObject({
      phase: z.string().optional(),
      application: z
        .looseObject({
          clusterUUID: z.string().optional(),
          kafka: z.looseObject({ brokerId: z.number().int().min(0).optional() }).optional(),
        })
        .nullish(),
    })
    .nullish(),
});

export const podReady = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/**
 * Does the pod's Kafka process run? A container waiting (CrashLoopBackOff, an
 * image pull, being created) or terminated says no, whatever an older Pilot
 * status says; then the Pilot's phase (Running while the process it started
 * runs); then the containers, all running. Since: the latest container start.
 */
export function processOf(pod: V1Pod, pilotPhase: string | undefined): ProcessState {
  const statuses = pod.status?.containerStatuses ?? [];
  const down = statuses.find((c) => c.state?.waiting || c.state?.terminated);
  if (down) {
    const why = down.state?.waiting?.reason ?? (down.state?.terminated ? `terminated${down.state.terminated.reason ? ` (${down.state.terminated.reason})` : ''}` : 'waiting');
    return { running: false, source: `container ${down.name} is ${why}` };
  }
  const starts = statuses.map((c) => c.state?.running?.startedAt).filter((d): d is Date => d !== undefined).map((d) => new Date(d).getTime()).filter(Number.isFinite);
  const since = starts.length > 0 ? { since: Math.max(...starts) } : {};
  if (pilotPhase !== undefined) return { running: pilotPhase === 'Running', source: `its Pilot reports phase ${pilotPhase}`, ...since };
  if (statuses.length > 0 && statuses.every((c) => c.state?.running)) return { running: true, source: 'its containers run', ...since };
  if (pod.status?.phase === 'Pending') return { running: false, source: 'the pod is Pending' };
  return { running: undefined, source: 'nothing says whether its process runs' };
}

/** `<statefulset>-<ordinal>`, as the StatefulSet controller names pods. */
export function podOrdinal(podName: string, stsName: string): number | undefined {
  if (!podName.startsWith(`${stsName}-`)) return undefined;
  const rest = podName.slice(stsName.length + 1);
  return /^(0|[1-9][0-9]{0,8})$/.test(rest) ? Number(rest) : undefined;
}

/**
 * The node behind a pod: node.id = ordinal + node-id-offset, the convention
 * the pods' configuration must follow (a Kafka node id cannot be learned from
 * outside the pod). When the pod's own Pilot reports the node id it runs as,
 * the two must agree, or the hook would reason about another broker. A Pilot
 * owned by another pod (the one this pod replaced) is ignored.
 */
export function brokerRefOf(
  pod: V1Pod,
  sts: V1StatefulSet,
  nodeIdOffset: number,
  pilot: unknown,
): { ok: true; ref: BrokerRef; pilot?: PilotSays } | { ok: false; error: string } {
  const podName = pod.metadata?.name ?? '';
  const stsName = sts.metadata?.name ?? '';
  const ordinal = podOrdinal(podName, stsName);
  if (ordinal === undefined) return { ok: false, error: `pod ${podName} is not named ${stsName}-<ordinal>: cannot tell its Kafka node id` };
  const start = sts.spec?.ordinals?.start ?? 0;
  const ref: BrokerRef = { pod: podName, id: ordinal + nodeIdOffset, ready: podReady(pod), last: ordinal <= start };
  if (pilot === undefined || pilot === null) return { ok: true, ref: { ...ref, process: processOf(pod, undefined) } };
  const r = PilotView.safeParse(pilot);
  if (!r.success) return { ok: false, error: `the Pilot of ${podName} cannot be read: ${z.prettifyError(r.error).replace(/\s+/g, ' ')}` };
  const owners = (r.data.metadata?.ownerReferences ?? []).map((o) => o.uid).filter((u): u is string => !!u);
  const uid = pod.metadata?.uid;
  if (uid && owners.length > 0 && !owners.includes(uid)) return { ok: true, ref: { ...ref, process: processOf(pod, undefined) } };
  const app = r.data.status?.application;
  const says: PilotSays = {};
  if (r.data.status?.phase) says.phase = r.data.status.phase;
  if (app?.kafka?.brokerId !== undefined) says.brokerId = app.kafka.brokerId;
  if (app?.clusterUUID) says.clusterId = app.clusterUUID;
  if (says.brokerId !== undefined && says.brokerId !== ref.id) {
    return {
      ok: false,
      error: `the Pilot of ${podName} reports node id ${says.brokerId}, but the hook expects ${ref.id} (ordinal ${ordinal} + node-id-offset ${nodeIdOffset}): set kafka.sts-pilot.io/node-id-offset to match node.id`,
    };
  }
  return { ok: true, ref: { ...ref, process: processOf(pod, says.phase) }, pilot: says };
}
