import type { ApplicationStatus } from '../pilot/schema.ts';
import type { Verdict } from './types.ts';

/** `probe: none`: the pilot runs the application without reading it; a running child is all it knows. */
export const NO_PROBE = 'none';

const ok: Verdict = { ok: true };
const no = (reason: string): Verdict => ({ ok: false, reason });

/**
 * Is the application up on this pod? Drives the pilot's /readyz (and so the
 * pod's readiness). For Elasticsearch: the node answers and has joined a
 * cluster. Cluster health is deliberately not part of it: a red cluster would
 * otherwise take every pod out of its Service at once.
 */
export function applicationReady(app: ApplicationStatus | undefined): Verdict {
  if (!app) return no('no application status reported');
  switch (app.probe) {
    case NO_PROBE:
      return ok;
    case 'elasticsearch': {
      const missing = (['nodeName', 'nodeId', 'clusterUUID'] as const).filter((k) => !app[k]);
      if (missing.length === 0) return ok;
      const why = app.error ? `: ${app.error}` : '';
      if (!app.nodeId) return no(`the Elasticsearch node does not report itself${why}`);
      return no(`the Elasticsearch node ${app.nodeName ?? app.nodeId} has not joined a cluster (no ${missing.join(', ')})${why}`);
    }
    case 'patroni': {
      // PostgreSQL up under Patroni, as leader or replica, with a known copy of the data.
      const why = app.error ? `: ${app.error}` : '';
      if (!app.nodeName || !app.role) return no(`the Patroni member does not report itself${why}`);
      if (app.state !== 'running' && app.state !== 'streaming') return no(`PostgreSQL of member ${app.nodeName} is ${app.state ?? 'in an unknown state'}${why}`);
      if (!app.systemIdentifier) return no(`member ${app.nodeName} reports no database system identifier${why}`);
      return ok;
    }
    case 'kafka': {
      // A broker serves once it is registered and unfenced: only then do clients and peers reach it.
      const k = app.kafka;
      const why = app.error ? `: ${app.error}` : '';
      if (!k) return no(`the Kafka node does not report itself${why}`);
      const broker = app.roles ? app.roles.includes('broker') : true;
      if (broker && k.registered !== true) return no(`Kafka broker ${k.brokerId} is not registered with the controller${why}`);
      if (broker && k.fenced !== false) return no(`Kafka broker ${k.brokerId} is fenced${why}`);
      if (!broker && (k.activeController === undefined || k.activeController < 0)) return no(`Kafka controller ${k.brokerId} sees no quorum leader${why}`);
      return ok;
    }
    case 'cassandra': {
      // A node serves once it is NORMAL in its own gossip (joined, owns its tokens) and its native transport
      // is up (gossip RPC_READY): only then do clients reach it and is it a replica the ring counts.
      const k = app.cassandra;
      const why = app.error ? `: ${app.error}` : '';
      if (!k?.hostId) return no(`the Cassandra node does not report itself${why}`);
      if (k.status !== 'NORMAL') return no(`Cassandra node ${k.hostId} is ${k.status ?? 'in an unknown gossip state'}, not NORMAL${why}`);
      if (k.nativeTransport !== true) return no(`Cassandra node ${k.hostId} does not serve CQL clients (native transport ${k.nativeTransport === false ? 'off' : 'unknown'})${why}`);
      return ok;
    }
    default:
      return no(`unknown probe ${JSON.stringify(app.probe)}: cannot judge the application`);
  }
}

/**
 * Is the application healthy enough for a rollout to move on? Ready, and for
 * Elasticsearch a cluster health that is known and not red. For Cassandra,
 * Ready is all: the ring's state (every node UN, replicas per range) is the
 * cassandra hook's to judge, not one node's.
 */
export function applicationHealthy(app: ApplicationStatus | undefined): Verdict {
  const ready = applicationReady(app);
  if (!ready.ok || !app) return ready;
  if (app.probe === 'elasticsearch') {
    if (!app.health) return no(`cluster health of ${app.nodeName ?? 'the node'} is unknown${app.error ? `: ${app.error}` : ''}`);
    if (app.health === 'red') return no(`cluster ${app.clusterName ?? app.clusterUUID ?? ''} is red`.replace('  ', ' '));
  }
  if (app.probe === 'kafka') {
    const u = app.kafka?.underMinIsr;
    if (u === undefined) return no(`in-sync replicas of Kafka broker ${app.kafka?.brokerId ?? '?'} are unknown${app.error ? `: ${app.error}` : ''}`);
    if (u > 0) return no(`Kafka broker ${app.kafka?.brokerId} hosts ${u} partitions below min.insync.replicas`);
  }
  return ok;
}
