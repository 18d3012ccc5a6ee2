// What the cassandra hook reads of a ring (read.ts fills it; decide.ts judges
// it). Plain data, so that every rule is a pure function of it.

/** One node as the ring sees it. */
export interface NodeView {
  hostId: string;
  /** The broadcast address (a pod's IP). */
  address: string;
  dc: string;
  rack: string;
  /** Up: reachable, and gossip on every reachable node does not say otherwise. */
  up: boolean;
  /** Gossip STATUS: NORMAL, BOOT (joining), LEAVING, LEFT, MOVING, shutdown, … ('' unknown). */
  status: string;
  /** Its schema version, as gossip reports it ('' unknown). */
  schema: string;
  release: string;
  /** When its process started (ms since the epoch, its gossip generation, the node's own clock); undefined when unknown. */
  startedAt?: number;
}

/** A stream session that has not finished, as a node's system_views.streaming reports it. */
export interface StreamView {
  /** The node reporting it. */
  on: string;
  operation: string;
  /** The addresses of the other ends. */
  peers: string[];
  status: string;
}

/** Hints a node holds for another (system_views.pending_hints on the holder). */
export interface HintsView {
  /** The holder's address. */
  on: string;
  /** The host id the hints are for. */
  forHostId: string;
  files: number;
}

export interface RangeView {
  /** Token range (start, end], as strings: Murmur3 tokens are 64-bit. */
  start: string;
  end: string;
  /** Host ids of the replicas of the range. */
  replicas: string[];
}

export interface KeyspaceView {
  name: string;
  /** Short class name: SimpleStrategy, NetworkTopologyStrategy, LocalStrategy, EverywhereStrategy, … */
  strategy: string;
  /** Replication factor per data center (SimpleStrategy: every DC is one, under the key '*'). */
  rf: Record<string, number>;
  ranges: RangeView[];
}

/**
 * What a fresh Pilot of one node of the ring says (its status.application.cassandra),
 * read by pilots.ts. Absent fields are unknown, never a default.
 */
export interface PilotReport {
  /** The pod whose Pilot it is. */
  pod: string;
  hostId: string;
  /** The cluster_name the pilot read ('' when it did not say). */
  clusterName: string;
  /** Its own gossip STATUS ('' unknown). */
  status: string;
  /** Every other node as its own gossip has it; alive: its failure detector's judgement (heartbeat seen advancing), undefined until judged. */
  peers: { hostId: string; address: string; status: string; alive?: boolean }[];
  /** Hint files it holds, per target host id; undefined when its hints directory is unknown. */
  hints?: { hostId: string; files: number }[];
  /** Its data directory's filesystem (size, free bytes) and the node's load, bytes; undefined when it does not report them. */
  disk?: { size: number; free: number; load: number };
  /**
   * The earliest its block can have been read (ms since the epoch, the pilot's
   * clock): its heartbeat (no later than now) minus the pilot's read lag
   * (probe interval plus twice the probe timeout).
   */
  readAfter: number;
}

export interface CassandraView {
  clusterName: string;
  /** The ring's members; read.ts leaves out nodes that left or were removed (departed), which gossip still lists for days. */
  nodes: NodeView[];
  keyspaces: KeyspaceView[];
  streams: StreamView[];
  hints: HintsView[];
  /** The nodes whose own tables could not be read (down, or refused): their streams and hints are unknown. */
  unread: string[];
  /** The fresh Pilots of nodes of this ring (pilots.ts); absent or empty when no pilot runs. */
  pilots?: PilotReport[];
}

/** A pod, as the rules know it: its node's address, and whether the pod is Ready. */
export interface NodeRef {
  pod: string;
  /** The pod's IP: the node's broadcast address ('' when the pod has none). */
  address: string;
  ready: boolean;
  /** The host id the pod's own fresh Pilot reports: the node is found by it (else by address). */
  hostId?: string;
  /** The cluster_name the pod's own fresh Pilot reports. */
  pilotCluster?: string;
}

/**
 * A node that left the ring (decommission: LEFT) or was removed from it
 * (removenode: removed). Every node's gossip keeps such an entry for three
 * days (Gossiper's quarantine of a departed endpoint), so it is read, but it
 * is no member of the ring: nothing to hold on, nothing to wait for.
 */
export const departed = (status: string): boolean => /^(LEFT|REMOVED)$/i.test(status.split(',')[0] ?? '');

/** The short form of a gossip STATUS, as nodetool status shows the state: N, J, L, M, or '?'. */
export function stateLetter(status: string): string {
  switch (status.split(',')[0]?.toUpperCase()) {
    case 'NORMAL':
      return 'N';
    case 'BOOT':
    case 'BOOT_REPLACE':
      return 'J';
    case 'LEAVING':
    case 'LEFT':
    case 'REMOVING':
    case 'REMOVED':
      return 'L';
    case 'MOVING':
      return 'M';
    case 'SHUTDOWN':
      // A node that announced its shutdown is down but still a normal member of the ring: nodetool status shows DN.
      return 'N';
    default:
      return '?';
  }
}

export const nodeName = (n: Pick<NodeView, 'address' | 'rack' | 'dc'>): string => `${n.address} (${n.dc}/${n.rack})`;

/** The node of a pod: by the host id its Pilot reports, else by its IP. */
export const nodeOf = (view: Pick<CassandraView, 'nodes'>, ref: Pick<NodeRef, 'address' | 'hostId'>): NodeView | undefined =>
  ref.hostId ? view.nodes.find((n) => n.hostId === ref.hostId) : view.nodes.find((n) => n.address === ref.address);
