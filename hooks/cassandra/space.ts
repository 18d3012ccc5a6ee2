import { type CassandraView, departed, nodeName, type NodeView, type PilotReport } from './view.ts';

// Rule "space-to-absorb" of a scale-down (removal.ts): no decommission the
// nodes that stay cannot absorb. Anchor: cass-operator's
// EnsurePodsCanAbsorbDecommData (pkg/reconciliation/decommission_node.go):
// every other pod of the datacenter must have free space (its PVC's capacity
// minus its node's load) of at least the leaving node's load, no margin. Here
// the free space is the volume's own (statfs in the pod, through the node's
// Pilot), which also counts the commit log, snapshots and anything else on it.
// Conservative as cass-operator's: a decommission spreads the node's ranges
// over several nodes, but no one of them is let run short if it took them all.

type Check = { reason: string; routine?: true } | undefined;

/** Bytes in binary units, one decimal: 1.5 GiB, 300.0 MiB, 12 B. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** The nodes that take the leaving node's ranges: the others of its datacenter, still members. */
const stayingInDc = (view: CassandraView, node: NodeView): NodeView[] =>
  view.nodes.filter((n) => n.dc === node.dc && n.hostId !== node.hostId && !departed(n.status));

/** What a node's fresh Pilot says of its data directory, or why nothing. */
function diskOf(reports: readonly PilotReport[], n: NodeView): { disk: NonNullable<PilotReport['disk']>; pod: string } | { why: string } {
  const mine = reports.filter((r) => r.hostId === n.hostId);
  if (mine.length === 0) return { why: `${nodeName(n)}: no fresh Pilot` };
  const r = mine.find((x) => x.disk);
  if (!r?.disk) return { why: `${nodeName(n)}: its Pilot (${mine.map((x) => x.pod).join(', ')}) reports no data directory (a pilot without --app-data-dir support, or one that cannot read it: see its status.application.error)` };
  return { disk: r.disk, pod: r.pod };
}

/**
 * Every node that stays in the leaving node's datacenter has, per its fresh
 * Pilot, free space of at least the leaving node's load. Unknown figures hold:
 * it never approves on what it does not know. Pure.
 */
export function spaceToAbsorb(view: CassandraView, node: NodeView): Check {
  const reports = view.pilots ?? [];
  const skip = 'or switch the rule off (cassandra.sts-pilot.io/skip-checks: space-to-absorb) once you have checked the disks yourself';
  const leaving = diskOf(reports, node);
  if ('why' in leaving) return { reason: `the load of ${nodeName(node)} is unknown (${leaving.why}), so it cannot be told whether the nodes that stay can absorb it; run the pod's pilot with --app-data-dir naming its data directory, ${skip}` };
  const need = leaving.disk.load;
  const staying = stayingInDc(view, node);
  const unknown: string[] = [];
  const short: string[] = [];
  for (const n of staying) {
    const d = diskOf(reports, n);
    if ('why' in d) unknown.push(d.why);
    else if (d.disk.free < need) short.push(`${nodeName(n)} (${d.pod}) has ${bytes(d.disk.free)} free of ${bytes(d.disk.size)}`);
  }
  if (short.length > 0) {
    return {
      reason:
        `the nodes that stay in ${node.dc} may not absorb the ${bytes(need)} of ${nodeName(node)}: ${short.join('; ')}, less than ${bytes(need)} needed. ` +
        `Give them room first (add nodes, expand their PersistentVolumeClaims, or free space: "nodetool clearsnapshot --all" drops snapshots), or scale down less; ${skip}`,
    };
  }
  if (unknown.length > 0) {
    return { reason: `the free space of nodes that stay in ${node.dc} is unknown (${unknown.join('; ')}), and ${nodeName(node)} holds ${bytes(need)}: it cannot be told that they can absorb it; ${skip}` };
  }
  return undefined;
}

/** The figures the rule saw, for the approval's note: "needs 1.2 MiB; least free 40.1 GiB (10.0.0.2)". */
export function spaceNote(view: CassandraView, node: NodeView): string {
  const reports = view.pilots ?? [];
  const leaving = diskOf(reports, node);
  if ('why' in leaving) return 'space not checked';
  const free = stayingInDc(view, node)
    .map((n) => ({ n, d: diskOf(reports, n) }))
    .flatMap((x) => ('disk' in x.d ? [{ address: x.n.address, free: x.d.disk.free }] : []))
    .sort((a, b) => a.free - b.free);
  const least = free[0];
  return `needs ${bytes(leaving.disk.load)} (load ${leaving.disk.load} B); least free ${least ? `${bytes(least.free)} (${least.address})` : '?'}`;
}
