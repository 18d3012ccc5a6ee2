import { requestState } from '../../lib/pilot/actions.ts';
import { heartbeatAgeMs } from '../../lib/pilot/reader.ts';
import { type Pilot, type PilotActionRequest, type PilotActionStatus, podOwnerUid } from '../../lib/pilot/schema.ts';
import { schemaAgreement } from './decide.ts';
import { spaceNote, spaceToAbsorb } from './space.ts';
import { type CassandraView, departed, nodeName, nodeOf, type NodeRef, type NodeView, stateLetter } from './view.ts';

// Scale-down, as cass-operator does it: the leaving pod's node is
// decommissioned first (its ranges stream to the nodes that stay), and the pod
// goes only once the ring no longer lists it. The decommission runs on the node
// itself (nodetool, over its local JMX), which the controller cannot reach, so
// the hook asks the pod's pilot through its Pilot (spec.actions) and reads the
// outcome back (status.actions). Each rule is a named pure check, like
// decide.ts's for a step; anchors in docs/cassandra.md, "Scale-down".

/** The one decommission request of a pod: a Pilot lives as long as its pod, and a failed request is not asked again by itself. */
export const DECOMMISSION_ID = 'decommission-1';
export const DECOMMISSION_ACTION = 'decommission';

export const REMOVAL_RULES = [
  'left-ring',
  'no-ip',
  'decommissioning',
  'decommission-failed',
  'decommission-requested',
  'no-pilot',
  'node-up',
  'others-up',
  'schema-agreement',
  'no-streaming',
  'replication-fits',
  'space-to-absorb',
] as const;
export type RemovalRule = (typeof REMOVAL_RULES)[number];
/** Removal rules that cassandra.sts-pilot.io/skip-checks may switch off. The others guard what a decommission cannot do without (Cassandra refuses, or the request would go nowhere). */
export const SKIPPABLE_REMOVAL_RULES = ['space-to-absorb'] as const;
export type SkippableRemovalRule = (typeof SKIPPABLE_REMOVAL_RULES)[number];

/** What the hook knows of the leaving pod's pilot and of its decommission request. */
export interface PilotSide {
  /** A pilot runs in the pod: its Pilot (the pod's own) reports Running with a fresh heartbeat. */
  live: boolean;
  /** Why it is not live, for people (no Pilot, no status, last heartbeat 3 min ago, phase PreStop). */
  why?: string;
  request?: PilotActionRequest;
  status?: PilotActionStatus;
}

export type RemovalDecision =
  | { kind: 'approve'; rule: RemovalRule; note: string }
  | { kind: 'hold'; rule: RemovalRule; reason: string; routine?: true }
  /** The ring can spare the node: ask its pilot to decommission it (then hold, routinely, while it streams). */
  | { kind: 'decommission'; rule: RemovalRule; note: string };

/** A pilot whose heartbeat is older than this is not running (three of its default 20 s heartbeats, and some). */
export const PILOT_MAX_AGE_MS = 90_000;

/**
 * The leaving pod's pilot, from its Pilot. A Pilot owned by an earlier pod of
 * the same name describes another process: as good as none. Pure.
 */
export function pilotSideOf(pilot: Pilot | undefined, podUid: string | undefined, now: number, maxAgeMs = PILOT_MAX_AGE_MS): PilotSide {
  if (!pilot) return { live: false, why: 'the pod has no Pilot' };
  if (podUid && podOwnerUid(pilot) !== podUid) return { live: false, why: 'its Pilot belongs to an earlier pod of that name' };
  const { request, status } = requestState(pilot, DECOMMISSION_ID);
  const known = { ...(request ? { request } : {}), ...(status ? { status } : {}) };
  const age = heartbeatAgeMs(pilot, now);
  if (!pilot.status || age === undefined) return { live: false, why: 'its Pilot has no status: no pilot runs in the pod', ...known };
  if (Math.abs(age) > maxAgeMs) return { live: false, why: `its pilot's last heartbeat is ${Math.round(age / 1000)} s old`, ...known };
  if (pilot.status.phase !== 'Running') return { live: false, why: `its pilot is ${pilot.status.phase}`, ...known };
  return { live: true, ...known };
}

type Check = { reason: string; routine?: true } | undefined;

const stateOf = (n: NodeView): string => n.status.split(',')[0]?.toUpperCase() ?? '';
const gone = (n: NodeView): boolean => departed(n.status);
const letters = (n: NodeView): string => `${n.up ? 'U' : 'D'}${stateLetter(n.status)}`;
const manual = (pod: string): string => `kubectl exec ${pod} -- nodetool decommission`;

/** Token ranges the node holds a replica of, over every keyspace that streams (not LocalStrategy): what a decommission moves. */
export function rangesOn(view: CassandraView, hostId: string): number {
  return view.keyspaces.filter((k) => k.strategy !== 'LocalStrategy').reduce((n, k) => n + k.ranges.filter((r) => r.replicas.includes(hostId)).length, 0);
}

/** Rule "node-up": a decommission runs on the node, so it must be up and NORMAL. A down node's ranges are taken over with removenode instead. */
export function nodeUp(node: NodeView, pod: string): Check {
  if (node.up && stateLetter(node.status) === 'N') return undefined;
  return {
    reason:
      `${nodeName(node)} of ${pod} is ${letters(node)}: a decommission runs on the node itself, so it must be UN. ` +
      `Bring it back up (it is then decommissioned), or, if it is gone for good, run "nodetool removenode ${node.hostId}" on a node that stays`,
  };
}

/** Rule "others-up": every other node is UN. Its ranges stream to the nodes that stay, and a node down or busy joining, leaving or moving could not take them. */
export function othersUp(view: CassandraView, node: NodeView): Check {
  const odd = view.nodes.filter((n) => n.hostId !== node.hostId && !gone(n) && !(n.up && stateLetter(n.status) === 'N'));
  if (odd.length === 0) return undefined;
  const routine = odd.every((n) => n.up);
  return {
    reason: `not every other node is UN (${odd.map((n) => `${nodeName(n)} is ${letters(n)}`).join(', ')}): the ranges of ${nodeName(node)} would stream to nodes that cannot all take them; ${routine ? 'wait for them to finish joining, leaving or moving' : 'bring the down nodes back first'}`,
    ...(routine ? { routine: true as const } : {}),
  };
}

/** Rule "no-streaming": no stream session runs anywhere in the ring (repair, bootstrap, rebuild, another decommission), and every node's sessions could be read. */
export function noStreamingInRing(view: CassandraView): Check {
  if (view.unread.length > 0) return { reason: `the stream sessions of ${view.unread.join(', ')} could not be read: a decommission must not start beside a repair, bootstrap or rebuild` };
  const s = view.streams[0];
  if (!s) return undefined;
  return {
    reason: `${view.streams.length} stream session(s) run in the ring (${s.operation} on ${s.on} with ${s.peers.join(', ') || '?'}, ${s.status}): a decommission starts once they are done (nodetool netstats)`,
    routine: true,
  };
}

/**
 * Rule "replication-fits": for every keyspace, the nodes of the leaving node's
 * DC that stay are at least its replication factor there (SimpleStrategy: the
 * whole ring). Cassandra refuses such a decommission itself ("Not enough live
 * nodes to maintain replication factor"); the way out is the keyspace's.
 */
export function replicationFits(view: CassandraView, node: NodeView): Check {
  const ring = view.nodes.filter((n) => !gone(n));
  for (const k of view.keyspaces) {
    if (k.strategy === 'LocalStrategy' || k.strategy === 'EverywhereStrategy') continue;
    const simple = k.rf['*'] !== undefined;
    const rf = simple ? (k.rf['*'] as number) : (k.rf[node.dc] ?? 0);
    if (rf === 0) continue;
    const stay = ring.filter((n) => n.hostId !== node.hostId && (simple || n.dc === node.dc)).length;
    if (stay >= rf) continue;
    const where = simple ? 'in the ring' : `in ${node.dc}`;
    return {
      reason:
        `keyspace ${k.name} has replication factor ${rf} ${where}, and only ${stay} node(s) ${where} would stay without ${nodeName(node)}: ` +
        `Cassandra refuses this decommission. Lower its replication factor (ALTER KEYSPACE ${k.name} WITH replication = {…}, then nodetool cleanup), ` +
        `or add nodes first; until then scale back up to keep the node`,
    };
  }
  return undefined;
}

/** What became of the request, when it failed or was refused: the node's own words and the way out. */
function failed(node: NodeView, pod: string, side: PilotSide): Check {
  const s = side.status;
  if (!s || (s.state !== 'Failed' && s.state !== 'Refused')) return undefined;
  const last = s.output?.trim().split('\n').slice(-3).join(' | ');
  const out = last ? `; its output ends: ${last.slice(-600)}` : '';
  const fix =
    s.state === 'Refused'
      ? `the pod's pilot has no decommission command: run it with --app cassandra (or --action decommission='nodetool …'), or run "${manual(pod)}" yourself`
      : `fix the cause, then run "${manual(pod)}" yourself (the removal goes on once the node has left the ring), or scale back up to keep the node`;
  return {
    reason: `the decommission of ${nodeName(node)} (request ${s.id} to the pilot of ${pod}) ${s.state === 'Refused' ? 'was refused' : 'failed'}: ${s.message ?? `exit code ${s.exitCode ?? '?'}`}${out}. Way out: ${fix}`,
  };
}

/** The request is written: what the pilot is doing with it. */
function requested(node: NodeView, pod: string, side: PilotSide): Check {
  const s = side.status;
  const id = side.request?.id ?? s?.id ?? DECOMMISSION_ID;
  if (s?.state === 'Running') return { reason: `decommission of ${nodeName(node)} requested (${id}): the pilot of ${pod} runs it since ${s.startTime ?? '?'}; the node is to start leaving`, routine: true };
  if (s?.state === 'Succeeded') return { reason: `the pilot of ${pod} reports the decommission of ${nodeName(node)} done (${id}); waiting for the ring to drop the node`, routine: true };
  if (side.live) return { reason: `decommission of ${nodeName(node)} requested (${id}) at ${side.request?.requestTime ?? '?'}: waiting for the pilot of ${pod} to take it (it reads requests at its status writes, within a heartbeat)`, routine: true };
  return {
    reason: `decommission of ${nodeName(node)} requested (${id}), but the pilot of ${pod} does not run (${side.why ?? 'unknown'}): nothing will take the request. Run "${manual(pod)}" yourself; the removal goes on once the node has left the ring`,
  };
}

/**
 * May the pod of a scale-down leave for good, and if not yet, should its
 * node's decommission be asked for? Only a node the ring no longer lists
 * goes: a node removed while it still owns token ranges leaves its replicas
 * missing until a repair. Pure.
 */
export function decideRemoval(
  view: CassandraView,
  pod: NodeRef,
  remainingPods: number,
  side: PilotSide = { live: false, why: 'no pilot known' },
  skip: ReadonlySet<string> = new Set(),
): RemovalDecision {
  if (!pod.address) {
    // No IP: its node cannot be told from the ring. It owns nothing if the ring is all up and no larger than the pods that stay.
    const down = view.nodes.filter((n) => !n.up);
    if (down.length === 0 && view.nodes.length <= remainingPods) return { kind: 'approve', rule: 'no-ip', note: `${pod.pod} has no IP, and the ring's ${view.nodes.length} nodes are all up: it holds no node` };
    const which = down.length ? `; down: ${down.map((n) => `${nodeName(n)} host id ${n.hostId}`).join(', ')}` : '';
    return {
      kind: 'hold',
      rule: 'no-ip',
      reason: `${pod.pod} has no IP, so its node cannot be told from the ring (${view.nodes.length} nodes for ${remainingPods} pods that stay${which}). Start the pod so that it can be decommissioned, or, if its node is gone for good, run "nodetool removenode <host id>" on a node that stays; the removal goes once the ring lists no more nodes than the pods that stay`,
    };
  }
  const node = nodeOf(view, pod);
  if (!node || gone(node)) {
    // Measured on 5.0.6: the peers drop the node some seconds before its `nodetool decommission` returns (it still
    // announces LEFT for its ring delay, then stops gossip, messaging and hints). A pod stopped then cuts the
    // command short (exit 143, a Failed request). A live pilot still running it is waited for; a dead one is not.
    if (side.live && side.status?.state === 'Running') {
      return {
        kind: 'hold',
        rule: 'decommissioning',
        reason: `${pod.pod} (${pod.address}) has left the ring, and its pilot still runs the decommission (${side.status.id}, since ${side.status.startTime ?? '?'}): the node announces its departure and shuts down its services before the command returns (seconds, measured); the pod goes once it has. Should the command still run minutes after that, its node's data is gone already: stop it in the pod (or restart the pod's pilot, which reports it interrupted) and the removal goes on`,
        routine: true,
      };
    }
    return { kind: 'approve', rule: 'left-ring', note: `${pod.pod} (${pod.address}) is not in the ring: nothing of it to move` };
  }
  const state = stateOf(node);
  if (state === 'LEAVING' || state === 'REMOVING') {
    const streams = view.streams.filter((s) => s.on === node.address || s.peers.includes(node.address)).length;
    return {
      kind: 'hold',
      rule: 'decommissioning',
      reason: `decommissioning ${nodeName(node)} of ${pod.pod}: streaming ${rangesOn(view, node.hostId)} range(s) away (${streams} stream session(s)); the pod goes once the node has left the ring`,
      routine: true,
    };
  }
  const f = failed(node, pod.pod, side);
  if (f) return { kind: 'hold', rule: 'decommission-failed', ...f };
  if (side.request || side.status) return { kind: 'hold', rule: 'decommission-requested', ...(requested(node, pod.pod, side) as NonNullable<Check>) };
  if (!side.live) {
    return {
      kind: 'hold',
      rule: 'no-pilot',
      reason: `${nodeName(node)} of ${pod.pod} is in the ring (${letters(node)}) and owns token ranges, and no pilot runs in the pod to decommission it (${side.why ?? 'unknown'}): decommission it yourself ("${manual(pod.pod)}" streams its ranges to the nodes that stay); the removal goes once it has left the ring`,
    };
  }
  const checks: [RemovalRule, () => Check][] = [
    ['node-up', () => nodeUp(node, pod.pod)],
    ['others-up', () => othersUp(view, node)],
    ['schema-agreement', () => schemaAgreement(view)],
    ['no-streaming', () => noStreamingInRing(view)],
    ['replication-fits', () => replicationFits(view, node)],
    // Needs the Pilots of the nodes that stay (view.pilots): their free space, and the leaving node's load.
    ['space-to-absorb', () => spaceToAbsorb(view, node)],
  ];
  for (const [rule, check] of checks) {
    // Only the rules meant to be switched off: skip-checks naming a step's schema-agreement or no-streaming leaves a decommission's alone.
    if (skip.has(rule) && (SKIPPABLE_REMOVAL_RULES as readonly string[]).includes(rule)) continue;
    const h = check();
    if (h) return { kind: 'hold', rule, reason: `${pod.pod} is not decommissioned yet: ${h.reason}`, ...(h.routine ? { routine: true as const } : {}) };
  }
  return {
    kind: 'decommission',
    rule: 'decommission-requested',
    note: `the ring can spare ${nodeName(node)} of ${pod.pod} (every other node UN, one schema, no streams, every keyspace's replication fits in the nodes that stay, ${skip.has('space-to-absorb') ? 'space-to-absorb switched off' : `the nodes that stay in ${node.dc} have room: ${spaceNote(view, node)}`}): decommission requested through its Pilot (${DECOMMISSION_ID}); ${rangesOn(view, node.hostId)} range(s) to stream away`,
  };
}

/**
 * A scale-down withdrawn (a scale-up) after the node's decommission was
 * requested: a decommission cannot be called back, and a node that left does
 * not rejoin by itself. What people should know, or undefined when nothing
 * was requested. Pure.
 */
export function withdrawnWarning(pod: string, side: PilotSide): string | undefined {
  if (!side.request && !side.status) return undefined;
  const state = side.status?.state ?? 'not yet taken by the pilot';
  const rejoin = `it does not rejoin by itself: once it has left, delete the pod together with its PersistentVolumeClaim so that it bootstraps anew as a new node`;
  if (side.status?.state === 'Failed' || side.status?.state === 'Refused') return `the scale-down of ${pod} was withdrawn after its decommission was requested (${state}: ${side.status.message ?? ''}); check with nodetool status that its node is still UN`;
  return `the scale-down of ${pod} was withdrawn after its node's decommission was requested (${DECOMMISSION_ID}: ${state}); a decommission cannot be called back, so the node is leaving or has left the ring: ${rejoin}`;
}
