import type { V1Pod } from '@kubernetes/client-node';
import { podReady } from './pilots.ts';

// The order of an OnDelete rollout (podUpdateOrder). Unready pods first: a
// broken pod is replaced first, and it is down already, so moving it costs the
// ring nothing (the controller's own contract, DESIGN "The rollout"). Seed
// nodes last: a node (re)starting contacts the seeds to join gossip, so the
// seeds are kept up while the others restart, and a seed restarts when every
// other node is already at the new release. Otherwise the highest ordinal
// first, as without an order (the StatefulSet controller's own order).

/** cass-operator's SeedNodeLabel: "true" on the pods it makes seeds (its seed Service selects them). */
export const SEED_LABEL = 'cassandra.datastax.com/seed-node';

export interface OrderPod {
  pod: string;
  ordinal: number;
  ready: boolean;
  seed: boolean;
}

/** `<statefulset>-<ordinal>`, as the StatefulSet controller names pods; -1 when the name does not say. */
export function ordinalOf(podName: string, stsName: string): number {
  const rest = podName.startsWith(`${stsName}-`) ? podName.slice(stsName.length + 1) : '';
  return /^(0|[1-9][0-9]{0,8})$/.test(rest) ? Number(rest) : -1;
}

/** A pod as the order knows it: a seed by its label, or by its name or IP in the seeds option. */
export function orderPodOf(pod: V1Pod, stsName: string, seeds: ReadonlySet<string>): OrderPod {
  const name = pod.metadata?.name ?? '';
  const ip = pod.status?.podIP ?? '';
  return {
    pod: name,
    ordinal: ordinalOf(name, stsName),
    ready: podReady(pod),
    seed: pod.metadata?.labels?.[SEED_LABEL] === 'true' || seeds.has(name) || (ip !== '' && seeds.has(ip)),
  };
}

const list = (ps: readonly OrderPod[]): string => ps.map((p) => p.pod).join(', ');

/** Unready first, then non-seeds, then seeds; the highest ordinal first within each. Pure. */
export function updateOrder(pods: readonly OrderPod[]): { pods: string[]; reason: string } {
  const byOrdinal = (a: OrderPod, b: OrderPod): number => b.ordinal - a.ordinal || (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0);
  const unready = pods.filter((p) => !p.ready).sort(byOrdinal);
  const others = pods.filter((p) => p.ready && !p.seed).sort(byOrdinal);
  const seeds = pods.filter((p) => p.ready && p.seed).sort(byOrdinal);
  const parts: string[] = [];
  if (unready.length > 0) parts.push(`unready pods first, a broken node is replaced first (${list(unready)})`);
  if (others.length > 0) parts.push(`${parts.length > 0 ? 'then ' : ''}the highest ordinal first (${list(others)})`);
  if (seeds.length > 0) parts.push(`${parts.length > 0 ? 'then ' : ''}seed nodes last, so that restarting nodes find their seeds up (${list(seeds)})`);
  return { pods: [...unready, ...others, ...seeds].map((p) => p.pod), reason: parts.join(', ') };
}
