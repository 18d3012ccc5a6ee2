import { readFileSync } from 'node:fs';

/** The ServiceAccount the controller runs as (manifests/rbac-controller.yaml), as the API server names it. */
export const CONTROLLER_USER = 'system:serviceaccount:sts-pilot-system:sts-pilot-controller';

/**
 * kube-apiserver audit policy for the bench: Metadata (who, verb, resource, no
 * bodies) for the controller's ServiceAccount, nothing for anyone else, so the
 * log holds exactly the controller's requests. RequestReceived is omitted: a
 * request is logged at ResponseComplete, and a watch also at ResponseStarted.
 */
export const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["${CONTROLLER_USER}"]
  - level: None
`;

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string };
  userAgent?: string;
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

/** One API request, from its audit events (a watch has two: ResponseStarted, ResponseComplete). */
export interface ApiRequest {
  id: string;
  /** ms since epoch: when the API server received it. */
  at: number;
  verb: string;
  /** resource[/subresource], e.g. "statefulsets", "pods/status", "leases". */
  resource: string;
  namespace: string | undefined;
  name: string | undefined;
  code: number | undefined;
  user: string;
  userAgent: string;
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
export const isWrite = (r: ApiRequest): boolean => WRITE_VERBS.has(r.verb);

/** Parse the whole audit log into requests, one per auditID, in arrival order. */
export function readAudit(path: string): ApiRequest[] {
  const byId = new Map<string, ApiRequest>();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  for (const line of text.split('\n')) {
    if (!line) continue;
    let e: AuditEvent;
    try {
      e = JSON.parse(line) as AuditEvent;
    } catch {
      continue; // a line being written as we read
    }
    const prior = byId.get(e.auditID);
    if (prior) {
      if (e.responseStatus?.code !== undefined) prior.code = e.responseStatus.code;
      continue;
    }
    const ref = e.objectRef ?? {};
    byId.set(e.auditID, {
      id: e.auditID,
      at: Date.parse(e.requestReceivedTimestamp),
      verb: e.verb,
      resource: ref.resource ? (ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource) : e.requestURI.split('?')[0] ?? '',
      namespace: ref.namespace,
      name: ref.name,
      code: e.responseStatus?.code,
      user: e.user.username,
      userAgent: e.userAgent ?? '',
    });
  }
  return [...byId.values()].sort((a, b) => a.at - b.at);
}

/** Requests of `user` received in [from, to). */
export function within(reqs: readonly ApiRequest[], from: number, to: number, user = CONTROLLER_USER): ApiRequest[] {
  return reqs.filter((r) => r.user === user && r.at >= from && r.at < to);
}

/** Count by "verb resource". */
export function tally(reqs: readonly ApiRequest[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of reqs) {
    const k = `${r.verb} ${r.resource}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return new Map([...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}
