import type { V1Pod } from '@kubernetes/client-node';
import type { PilotReader } from '../../lib/pilot/reader.ts';
import { type Pilot, podOwnerUid } from '../../lib/pilot/schema.ts';
import type { CassandraView, NodeRef, PilotReport } from './view.ts';

// What the in-pod pilots say of their own nodes (status.application.cassandra,
// lib/pilot/schema.ts), put in the shape the rules read (view.ts). Only fresh
// Pilots count: a stale one says nothing, and the rules fall back to what the
// controller reads itself (docs/cassandra.md, "Pilot or fallback").

export interface PilotTiming {
  /** A Pilot whose heartbeat is older than this is stale (ms). */
  maxAgeMs: number;
  /** How much older than its heartbeat a Pilot's block can be: probe interval + 2 × probe timeout (ms). */
  readLagMs: number;
  now: number;
}

/** The cassandra block of a fresh Pilot, or undefined. */
function cassandraOf(p: Pilot | undefined, reader: Pick<PilotReader, 'isFresh'>, t: PilotTiming) {
  const app = p?.status?.application;
  if (!p || app?.probe !== 'cassandra' || !app.cassandra || !reader.isFresh(p, t.maxAgeMs)) return undefined;
  return { app, c: app.cassandra };
}

/** One fresh Pilot's report, or undefined when it is stale, of another probe, or names no host id. */
export function reportOf(p: Pilot, reader: Pick<PilotReader, 'isFresh'>, t: PilotTiming): PilotReport | undefined {
  const x = cassandraOf(p, reader, t);
  if (!x?.c.hostId) return undefined;
  const beat = Date.parse(p.status?.heartbeatTime ?? '');
  return {
    pod: p.metadata.name,
    hostId: x.c.hostId,
    clusterName: x.app.clusterName ?? '',
    status: x.c.status ?? '',
    peers: (x.c.peers ?? []).map((q) => ({ hostId: q.hostId, address: q.address ?? '', status: q.status ?? '', ...(q.alive !== undefined ? { alive: q.alive } : {}) })),
    ...(x.c.hints ? { hints: x.c.hints.map((h) => ({ hostId: h.hostId, files: h.files })) } : {}),
    ...(x.c.disk ? { disk: { size: x.c.disk.size, free: x.c.disk.free, load: x.c.disk.load } } : {}),
    // A heartbeat ahead of our clock is taken as now: the bound only ever moves earlier.
    readAfter: Math.min(beat, t.now) - t.readLagMs,
  };
}

/**
 * The fresh Pilots of nodes of this ring: their host id is a node of the view,
 * and their cluster_name (when they report one) is the ring's. A namespace may
 * hold two rings; the other's Pilots are not this ring's witnesses. Two fresh
 * Pilots claiming one host id both stay: the rules hear both.
 */
export function ringReports(view: Pick<CassandraView, 'clusterName' | 'nodes'>, pilots: readonly Pilot[], reader: Pick<PilotReader, 'isFresh'>, t: PilotTiming): PilotReport[] {
  const hosts = new Set(view.nodes.map((n) => n.hostId));
  return pilots
    .map((p) => reportOf(p, reader, t))
    .filter((r): r is PilotReport => !!r && hosts.has(r.hostId) && (r.clusterName === '' || r.clusterName === view.clusterName));
}

/**
 * A pod as the rules know it: its IP, readiness, and what its own fresh Pilot
 * says of its node (host id, cluster). A Pilot owned by another pod (the one
 * this pod replaced, same name) is not this pod's.
 */
export function nodeRefOf(pod: V1Pod | null, ready: boolean | null, reader: Pick<PilotReader, 'get' | 'isFresh'> | undefined, t: PilotTiming): NodeRef | null {
  if (!pod) return null;
  const name = pod.metadata?.name ?? '';
  const ref: NodeRef = { pod: name, address: pod.status?.podIP ?? '', ready: ready ?? podReady(pod) };
  const p = reader?.get(name);
  const owner = p && podOwnerUid(p);
  if (!p || !reader || (owner && pod.metadata?.uid && owner !== pod.metadata.uid)) return ref;
  const x = cassandraOf(p, reader, t);
  if (x?.c.hostId) ref.hostId = x.c.hostId;
  if (x?.app.clusterName) ref.pilotCluster = x.app.clusterName;
  return ref;
}

export const podReady = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
