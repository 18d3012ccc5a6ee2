import { type CassandraView, nodeName, nodeOf, type NodeRef, stateLetter } from './view.ts';

export type RemovalDecision = { kind: 'approve'; note: string } | { kind: 'hold'; reason: string; routine?: true };

/**
 * May the pod of a scale-down leave for good? Only once its node has left the
 * ring: a node removed while it still owns token ranges leaves its replicas
 * missing until a repair (cass-operator decommissions a node before it deletes
 * its pod). This hook does not decommission by itself yet: it holds, naming the
 * command, and lets the pod go once the ring no longer lists its node. Pure.
 */
export function decideRemoval(view: CassandraView, pod: NodeRef, remainingPods: number): RemovalDecision {
  if (!pod.address) {
    // No IP: its node cannot be told from the ring. It owns nothing if the ring is all up and no larger than the pods that stay.
    const down = view.nodes.filter((n) => !n.up);
    if (down.length === 0 && view.nodes.length <= remainingPods) return { kind: 'approve', note: `${pod.pod} has no IP, and the ring's ${view.nodes.length} nodes are all up: it holds no node` };
    const which = down.length ? `; down: ${down.map((n) => `${nodeName(n)} host id ${n.hostId}`).join(', ')}` : '';
    return {
      kind: 'hold',
      reason: `${pod.pod} has no IP, so its node cannot be told from the ring (${view.nodes.length} nodes for ${remainingPods} pods that stay${which}). Start the pod so that it can be decommissioned, or, if its node is gone for good, run "nodetool removenode <host id>" on a node that stays; the removal goes once the ring lists no more nodes than the pods that stay`,
    };
  }
  const node = nodeOf(view, pod);
  const state = node?.status.split(',')[0]?.toUpperCase() ?? '';
  if (!node || state === 'LEFT' || state === 'REMOVED') return { kind: 'approve', note: `${pod.pod} (${pod.address}) is not in the ring: nothing of it to move` };
  if (state === 'LEAVING' || state === 'REMOVING') return { kind: 'hold', reason: `${nodeName(node)} of ${pod.pod} is being decommissioned (UL): its ranges are streaming to the nodes that stay`, routine: true };
  return {
    kind: 'hold',
    reason: `${nodeName(node)} of ${pod.pod} is in the ring (${node.up ? 'U' : 'D'}${stateLetter(node.status)}) and owns token ranges: decommission it first ("kubectl exec ${pod.pod} -- nodetool decommission" streams its ranges to the nodes that stay); the removal goes once it has left the ring`,
  };
}
