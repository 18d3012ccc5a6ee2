import { hintsDelivered } from './hints.ts';
import { type CassandraView, departed, type KeyspaceView, type NodeRef, type NodeView, nodeName, nodeOf, type PilotReport, stateLetter } from './view.ts';

export { hintsDelivered, HINTS_READ_DELAY_MS } from './hints.ts';

// The decisions of the cassandra hook, as pure functions of what it read
// (view.ts). Each rule is a named check, like ECK's upgrade predicates: a small
// function that answers undefined when the step passes it, or the reason it
// does not, naming the node, keyspace or range and the way out. A check can be
// switched off by name (cassandra.sts-pilot.io/skip-checks). The anchors of
// every rule (cass-operator, Cassandra's operations docs) are in docs/cassandra.md.

export const CHECK_NAMES = ['node-known', 'up-normal', 'schema-agreement', 'no-streaming', 'replicas', 'rejoined', 'hints-delivered'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export const CONSISTENCY_LEVELS = ['ONE', 'TWO', 'THREE', 'QUORUM', 'ALL', 'LOCAL_QUORUM', 'EACH_QUORUM', 'LOCAL_ONE'] as const;
export type Consistency = (typeof CONSISTENCY_LEVELS)[number];

export interface Policy {
  consistency: Consistency;
  /** Keyspaces the replicas rule does not look at. */
  ignoreKeyspaces: ReadonlySet<string>;
  /** Checks switched off (by name; the option may also name scale-down rules, removal.ts). */
  skip: ReadonlySet<string>;
  /** How long after its start the node moved last is still given for its hints to show (see hintsDelivered). */
  hintsSettleMs: number;
  /** ms since the epoch. */
  now: number;
}

export type Hold = { reason: string; routine?: true };
export type Decision = { kind: 'approve'; note: string } | ({ kind: 'hold'; check: CheckName } & Hold);

const byAddress = (view: CassandraView, address: string): NodeView | undefined => view.nodes.find((n) => n.address === address);
const byHost = (view: CassandraView, hostId: string): NodeView | undefined => view.nodes.find((n) => n.hostId === hostId);
const isUN = (n: NodeView): boolean => n.up && stateLetter(n.status) === 'N';
const letters = (n: NodeView): string => `${n.up ? 'U' : 'D'}${stateLetter(n.status)}`;

/**
 * Rule "node-known": the pod's node is a node of this ring. With a fresh Pilot
 * in the pod the node is the host id the Pilot reports, and the Pilot must
 * agree with the ring: same cluster_name, a host id the ring has, at the pod's
 * IP (a Ready pod). Without one, a Ready pod's IP must be a node's address. A
 * contradiction means the hook would reason about another node than the one it
 * restarts: another ring's node behind the contact points, or a node that does
 * not broadcast its pod IP.
 */
export function nodeKnown(view: CassandraView, next: NodeRef): Hold | undefined {
  const conflict = pilotConflict(view, next);
  if (conflict) return { reason: conflict };
  if (next.hostId) {
    const n = byHost(view, next.hostId) as NodeView;
    if (!next.ready || !next.address || n.address === next.address) return undefined;
    const there = byAddress(view, next.address);
    return {
      reason:
        `pod ${next.pod} has IP ${next.address}, but its Pilot reports host id ${next.hostId}, which cluster ${view.clusterName} has at ${n.address}` +
        `${there ? ` (${next.address} is host id ${there.hostId})` : ''}: the pod's node must broadcast its pod IP (broadcast_address, broadcast_rpc_address), as cass-operator's pods do`,
    };
  }
  if (!next.ready) return undefined;
  if (!next.address) return { reason: `pod ${next.pod} has no IP: its Cassandra node cannot be found`, routine: true };
  if (byAddress(view, next.address)) return undefined;
  return {
    reason:
      `pod ${next.pod} is Ready, but its address ${next.address} is no node of Cassandra cluster ${view.clusterName} ` +
      `(${view.nodes.map((n) => n.address).join(', ')}): check the contact points, and that the node broadcasts its pod IP`,
  };
}

/** Where a pod's own Pilot contradicts the ring: another cluster_name, or a host id the ring does not have. */
function pilotConflict(view: CassandraView, ref: NodeRef): string | undefined {
  if (ref.pilotCluster && ref.pilotCluster !== view.clusterName) {
    return (
      `the Pilot of pod ${ref.pod} reports Cassandra cluster "${ref.pilotCluster}", but the contact points reach cluster "${view.clusterName}": ` +
      'the pod runs another ring\'s node, or the contact points name another ring; fix cassandra.sts-pilot.io/contact-points (or the pod)'
    );
  }
  if (ref.hostId && !byHost(view, ref.hostId)) {
    return (
      `the Pilot of pod ${ref.pod} reports host id ${ref.hostId}, which is no node of cluster ${view.clusterName} ` +
      `(${view.nodes.map((n) => `${n.address} ${n.hostId}`).join(', ')}): the contact points reach another ring of the same name, or the pod runs another ring's node; fix the contact points (or the pod)`
    );
  }
  return undefined;
}

/**
 * Rule "up-normal": every node is UN (up, normal) in the view of the nodes
 * themselves: none down, joining, leaving or moving. The one exception is
 * `next` itself when its pod is unready (a broken release must be replaceable).
 * cass-operator: every pod Ready before a rack restarts; Cassandra's docs: one
 * node at a time, the others up. With pilots, also in each node's own failure
 * detector: a fresh Pilot that sees a peer down, or not NORMAL, or is not
 * NORMAL itself, holds, naming who sees whom (a node the controller reaches
 * but its peers have convicted: a partition between nodes).
 */
export function upNormal(view: CassandraView, next: NodeRef | null, prev: NodeRef | null = null): Hold | undefined {
  const exempt = next && !next.ready ? (nodeOf(view, next) ?? { address: next.address, hostId: next.hostId ?? '' }) : undefined;
  const bad = view.nodes.filter((n) => !isUN(n) && n.address !== exempt?.address);
  const seen = witnessed(view, exempt?.hostId);
  if (bad.length === 0 && seen.length === 0) return undefined;
  const which = bad.map((n) => `${nodeName(n)} is ${letters(n)}${n.status ? ` (${n.status.split(',')[0]})` : ''}`);
  const unread = view.unread.length > 0 ? ` (could not be read: ${view.unread.join(', ')})` : '';
  // The node moved last, back UN for the controller, is judged by its peers' detectors a little later: a wait, not an alarm.
  const moved = prev ? nodeOf(view, prev)?.hostId : undefined;
  const settling = bad.length === 0 && moved !== undefined && seen.every((x) => x.about === moved);
  return {
    reason:
      `not every node of Cassandra cluster ${view.clusterName} is UN: ${[...which, ...seen.map((x) => x.text)].join('; ')}${unread}. ` +
      'Bring it back (or finish its bootstrap, decommission or move), or, for a node that is gone for good, `nodetool removenode <host id>`' +
      (seen.length > 0 ? '; a node seen down by its peers but reached by the controller is cut off from them: check the network between the nodes (storage port 7000)' : ''),
    ...(settling ? { routine: true as const } : {}),
  };
}

/** What the fresh Pilots' own gossip says is not UN: "<who> sees <whom> down". The unready next's node and its own Pilot are exempt. */
function witnessed(view: CassandraView, exemptHost: string | undefined): { text: string; about: string }[] {
  const out: { text: string; about: string }[] = [];
  const name = (hostId: string, address: string): string => {
    const n = byHost(view, hostId);
    return n ? nodeName(n) : `${address || '?'} (host id ${hostId})`;
  };
  const who = (r: PilotReport): string => `${name(r.hostId, '')} (Pilot of ${r.pod})`;
  for (const r of view.pilots ?? []) {
    if (r.hostId === exemptHost) continue;
    const own = r.status.split(',')[0]?.toUpperCase() ?? '';
    if (own && own !== 'NORMAL') out.push({ text: `${who(r)} reports itself ${own}`, about: r.hostId });
    for (const q of r.peers) {
      const st = q.status.split(',')[0]?.toUpperCase() ?? '';
      if (q.hostId === exemptHost || departed(q.status)) continue;
      if (q.alive === false) out.push({ text: `${who(r)} sees ${name(q.hostId, q.address)} down (its failure detector has not heard its heartbeat advance)`, about: q.hostId });
      else if (st && st !== 'NORMAL') out.push({ text: `${who(r)} sees ${name(q.hostId, q.address)} as ${st}`, about: q.hostId });
    }
  }
  return out;
}

/** Rule "schema-agreement": the live nodes report one schema version (nodetool describecluster). */
export function schemaAgreement(view: CassandraView): Hold | undefined {
  const versions = new Map<string, string[]>();
  for (const n of view.nodes.filter((x) => x.up)) versions.set(n.schema || '(unknown)', [...(versions.get(n.schema || '(unknown)') ?? []), n.address]);
  if (versions.size <= 1) return undefined;
  const list = [...versions].map(([v, a]) => `${v}: ${a.join(', ')}`).join('; ');
  return { reason: `the live nodes disagree on the schema (${list}); wait for it to settle, or run \`nodetool resetlocalschema\` on the odd node`, routine: true };
}

/**
 * Rule "no-streaming": no stream session runs to or from `next` (repair,
 * bootstrap, rebuild, decommission), in the view of any node. Stopping it would
 * fail the operation.
 */
export function noStreaming(view: CassandraView, next: NodeRef): Hold | undefined {
  const address = nodeOf(view, next)?.address ?? next.address;
  const busy = view.streams.filter((s) => s.on === address || s.peers.includes(address));
  if (busy.length === 0) return undefined;
  const s = busy[0] as (typeof busy)[number];
  return {
    reason:
      `${busy.length} stream session(s) involve ${next.pod} (${next.address}): ${s.operation} on ${s.on} with ${s.peers.join(', ') || '?'} (${s.status}); ` +
      'wait for it to finish (nodetool netstats)',
    routine: true,
  };
}

/** How many live replicas a consistency level needs, per data center ('*': the whole ring), for a keyspace's replication. */
export function needed(cl: Consistency, rf: Record<string, number>): Record<string, number> {
  const total = Object.values(rf).reduce((a, b) => a + b, 0);
  const perDc = (f: (r: number) => number): Record<string, number> => Object.fromEntries(Object.entries(rf).filter(([, r]) => r > 0).map(([dc, r]) => [dc, f(r)]));
  switch (cl) {
    case 'ONE':
      return { '*': Math.min(1, total) };
    case 'TWO':
      return { '*': 2 };
    case 'THREE':
      return { '*': 3 };
    case 'QUORUM':
      return { '*': Math.floor(total / 2) + 1 };
    case 'ALL':
      return { '*': total };
    case 'LOCAL_ONE':
      return perDc(() => 1);
    case 'LOCAL_QUORUM':
    case 'EACH_QUORUM':
      return perDc((r) => Math.floor(r / 2) + 1);
  }
}

/** Strategies whose data lives on every node, or on the node itself: no replica count to keep. */
const UNCOUNTED = new Set(['LocalStrategy', 'EverywhereStrategy', 'MetaStrategy']);

/** What a keyspace at a consistency level is short of without `next`: undefined when every range keeps enough. */
function keyspaceShort(view: CassandraView, ks: KeyspaceView, nextHost: string | undefined, cl: Consistency): { range: string; dc: string; live: number; need: number; ranges: number } | undefined {
  const hosts = new Map(view.nodes.map((n) => [n.hostId, n]));
  const need = needed(cl, ks.rf);
  let first: { range: string; dc: string; live: number; need: number } | undefined;
  let count = 0;
  for (const r of ks.ranges) {
    const live = r.replicas.map((h) => hosts.get(h)).filter((n): n is NodeView => !!n && n.hostId !== nextHost && isUN(n));
    for (const [dc, k] of Object.entries(need)) {
      const have = dc === '*' ? live.length : live.filter((n) => n.dc === dc).length;
      if (have < k) {
        count++;
        first ??= { range: `(${r.start}, ${r.end}]`, dc, live: have, need: k };
        break;
      }
    }
  }
  return first && { ...first, ranges: count };
}

const rfText = (ks: KeyspaceView): string => Object.entries(ks.rf).map(([dc, r]) => (dc === '*' ? `RF ${r}` : `${dc}:${r}`)).join(', ');

/**
 * Rule "replicas": for every keyspace and the consistency level the
 * StatefulSet declares, taking `next` down leaves enough live replicas in every
 * token range. With NetworkTopologyStrategy and at least RF racks a range has
 * one replica per rack, so a rack away (cass-operator restarts one rack at a
 * time) costs each range at most one replica; with fewer racks than RF, or
 * SimpleStrategy, it is the count per range that says. The hold names the
 * keyspace, the first range that fails and how many do, and the way out.
 */
export function replicas(view: CassandraView, next: NodeRef, policy: Pick<Policy, 'consistency' | 'ignoreKeyspaces'>): Hold | undefined {
  const node = nodeOf(view, next);
  const failing: string[] = [];
  let firstReason: string | undefined;
  for (const ks of view.keyspaces) {
    if (UNCOUNTED.has(ks.strategy) || policy.ignoreKeyspaces.has(ks.name)) continue;
    const short = keyspaceShort(view, ks, node?.hostId, policy.consistency);
    if (!short) continue;
    failing.push(ks.name);
    if (firstReason) continue;
    const where = short.dc === '*' ? '' : ` in ${short.dc}`;
    const total = Object.values(ks.rf).reduce((a, b) => a + b, 0);
    const way =
      total <= 1 || short.need > Math.max(...Object.values(ks.rf)) - 1
        ? `every row of ${ks.name} has ${total === 1 ? 'one copy' : 'too few copies'}: ${policy.consistency} cannot survive any node away. ` +
          `Raise its replication (ALTER KEYSPACE ${ks.name} WITH replication = {'class': 'NetworkTopologyStrategy', '<dc>': 3}, then nodetool repair -full ${ks.name}), ` +
          `or accept that it is unavailable while its node restarts: add it to cassandra.sts-pilot.io/ignore-keyspaces`
        : `bring the missing replicas back (every node UN), or lower cassandra.sts-pilot.io/consistency to what the application uses`;
    firstReason =
      `taking ${next.pod} (${next.address}) down leaves keyspace ${ks.name} (${ks.strategy}, ${rfText(ks)}) below ${policy.consistency}: ` +
      `range ${short.range} would have ${short.live} live replica(s)${where}, ${short.need} needed` +
      `${short.ranges > 1 ? ` (and ${short.ranges - 1} more range(s))` : ''}; ${way}`;
  }
  if (!firstReason) return undefined;
  return { reason: failing.length > 1 ? `${firstReason}. Keyspaces that fail: ${failing.join(', ')}` : firstReason };
}

/**
 * Rule "rejoined": the node moved last is back UN, under its pod's (possibly
 * new) IP; found by the host id its fresh Pilot reports, else by that IP. A
 * wait that ends by itself, but for a Pilot naming another ring.
 */
export function rejoined(view: CassandraView, prev: NodeRef): Hold | undefined {
  if (prev.pilotCluster && prev.pilotCluster !== view.clusterName) return { reason: pilotConflict(view, prev) as string };
  if (!prev.address) return { reason: `pod ${prev.pod} has no IP yet: its node has not rejoined`, routine: true };
  const n = prev.hostId ? byHost(view, prev.hostId) : byAddress(view, prev.address);
  if (!n) return { reason: `the node of pod ${prev.pod} (${prev.hostId ? `host id ${prev.hostId}, ` : ''}${prev.address}) is not in the ring yet`, routine: true };
  if (n.address !== prev.address) return { reason: `the ring still has the node of pod ${prev.pod} (host id ${n.hostId}) at ${n.address}, not yet at its pod IP ${prev.address}`, routine: true };
  if (!isUN(n)) return { reason: `the node of pod ${prev.pod}, ${nodeName(n)}, is ${letters(n)}, not UN yet`, routine: true };
  return undefined;
}

/**
 * One step: `prev` back UN with its hints delivered; every node UN but an
 * unready `next`; one schema; no streams on `next`; every keyspace keeps
 * `consistency` without it. At the end (`next` null): `prev` back, every node
 * UN, one schema.
 */
export function decide(view: CassandraView, prev: NodeRef | null, next: NodeRef | null, policy: Policy): Decision {
  const checks: [CheckName, () => Hold | undefined][] = [];
  if (prev) checks.push(['rejoined', () => rejoined(view, prev)], ['hints-delivered', () => hintsDelivered(view, prev, policy.hintsSettleMs, policy.now)]);
  if (next) checks.push(['node-known', () => nodeKnown(view, next)]);
  checks.push(['up-normal', () => upNormal(view, next, prev)], ['schema-agreement', () => schemaAgreement(view)]);
  if (next) checks.push(['no-streaming', () => noStreaming(view, next)], ['replicas', () => replicas(view, next, policy)]);
  for (const [name, check] of checks) {
    if (policy.skip.has(name)) continue;
    const h = check();
    if (h) return { kind: 'hold', check: name, ...h };
  }
  const skipped = policy.skip.size > 0 ? ` (checks skipped: ${[...policy.skip].join(', ')})` : '';
  if (!next) return { kind: 'approve', note: `${prev ? `${prev.pod} rejoined; ` : ''}every node UN, one schema${skipped}` };
  return { kind: 'approve', note: `${next.pod} may restart: every node UN, one schema, no streams, every keyspace keeps ${policy.consistency} without it${skipped}` };
}
