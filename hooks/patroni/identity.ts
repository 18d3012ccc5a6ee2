import { leaderOf, list, membersText } from './decide.ts';
import { leadingState, notCaughtUp } from './rules.ts';
import { type ClusterView, isLeaderRole, UNNAMED_SCOPE } from './view.ts';

// What the disruption budget asks of the hook (docs/patroni.md, "The
// disruption budget"): which application cluster a StatefulSet's pods belong
// to, and whether a pod moved by a step is back in it. Pure functions of what
// the hook read.

/**
 * The application cluster: the Patroni scope and the database system
 * identifier, "pg (system 7714727590757414429)". The scope alone names a
 * cluster only within one DCS: two teams' `postgres` scopes in two etcds are
 * two clusters, and the system identifier (the same on every copy of one
 * database, different for any other initdb) tells them apart. A standby
 * cluster has its source's system identifier but, as Patroni requires, its own
 * scope: its own budget, since restarting it takes nothing from its source.
 */
export const identityOf = (scope: string, systemId: string): string => `${scope} (system ${systemId})`;

/** The identity from a fresh read of the REST API: the scope, and the leader's system identifier (else the one every member that answers reports). */
export function identityFromView(v: ClusterView): { id: string } | { reason: string } {
  if (v.scope === UNNAMED_SCOPE) return { reason: 'neither /cluster nor any member names the Patroni scope' };
  const l = leaderOf(v);
  if ('leader' in l && l.leader.self.ok && l.leader.self.systemId) return { id: identityOf(v.scope, l.leader.self.systemId) };
  const ids = new Set(v.members.flatMap((m) => (m.self.ok && m.self.systemId ? [m.self.systemId] : [])));
  if (ids.size === 1) return { id: identityOf(v.scope, [...ids][0] as string) };
  if (ids.size === 0) return { reason: `no member of Patroni cluster ${v.scope} reports its database system identifier (members: ${membersText(v)})` };
  return { reason: `the members of Patroni cluster ${v.scope} report ${ids.size} database system identifiers (${list([...ids])}) and no leader settles which is the cluster's` };
}

/** What one pod's Pilot reports of its member (its application block, when fresh). */
export interface PilotIdentity {
  pod: string;
  scope?: string | undefined;
  systemId?: string | undefined;
}

/**
 * The identity from the pods' Pilots (each written by the pilot in the pod from
 * its member's own /patroni): every Pilot that reports both must agree.
 * undefined when none reports: ask the REST API.
 */
export function identityFromPilots(reports: readonly PilotIdentity[]): { id: string } | { reason: string } | undefined {
  const full = reports.filter((r) => r.scope && r.systemId);
  if (full.length === 0) return undefined;
  const ids = new Map<string, string[]>();
  for (const r of full) {
    const id = identityOf(r.scope as string, r.systemId as string);
    ids.set(id, [...(ids.get(id) ?? []), r.pod]);
  }
  if (ids.size === 1) return { id: [...ids.keys()][0] as string };
  return {
    reason: `the pods' Pilots name ${ids.size} Patroni clusters: ${[...ids].map(([id, pods]) => `${list(pods)} in ${id}`).join('; ')}; a StatefulSet's members must belong to one cluster`,
  };
}

/**
 * podRejoined: the member of the moved pod is back in the cluster in Patroni's
 * own terms: listed in /cluster, and either the leader, leading (rule
 * "leading"), or a replica that answers, runs the leader's database system,
 * replicates (streaming; running on Patroni before 3.0.4; in archive
 * recovery) and is within max-lag. undefined when it is back, else why not.
 */
export function notRejoined(v: ClusterView, pod: string, maxLag: number): string | undefined {
  const m = v.members.find((x) => x.name === pod);
  if (!m) return `${pod} is not among the members of Patroni cluster ${v.scope} (${membersText(v)})`;
  if (isLeaderRole(m.role)) {
    const why = leadingState(m);
    if (why) return `${pod} leads, but ${why}`;
    if (!m.self.ok) return `${pod} leads, but does not answer: ${m.self.error}`;
    if (m.self.state !== 'running') return `${pod} leads, but says its PostgreSQL is ${m.self.state}`;
    return undefined;
  }
  const l = leaderOf(v);
  if ('reason' in l) return l.reason;
  const why = notCaughtUp(m, l.leader, maxLag);
  return why ? `${pod} is back in Patroni cluster ${v.scope}, but ${why}` : undefined;
}
