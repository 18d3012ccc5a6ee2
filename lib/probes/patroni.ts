import { z } from 'zod';
import type { ApplicationStatus } from '../pilot/schema.ts';
import { jsonGetter, settler } from './json-get.ts';
import type { ApplicationProbe } from './types.ts';

export interface PatroniProbeOptions {
  /** Base URL of the local member's REST API, e.g. http://127.0.0.1:8008. */
  url: string;
  timeoutMs?: number;
  /**
   * The member's name when its /patroni does not say it (Patroni before 3.2 names
   * only version and scope there): the pod's name, which the patroni hook requires
   * the member to have. Taken only when /cluster lists a member of that name.
   */
  member?: string;
}

// Only what we read; Patroni sends more. /patroni answers 503 with the same body when PostgreSQL is down.
const Self = z.looseObject({
  state: z.string(),
  role: z.string(),
  server_version: z.number().int().optional(),
  timeline: z.number().int().min(0).optional(),
  database_system_identifier: z.string().optional(),
  patroni: z.looseObject({ name: z.string().optional(), scope: z.string().optional() }).optional(),
});
const Lag = z.union([z.number().int().min(0), z.string()]).nullish();
const Cluster = z.looseObject({ members: z.array(z.looseObject({ name: z.string(), lag: Lag, receive_lag: Lag, replay_lag: Lag })) });

/** 150018 -> "15.18", 90624 -> "9.6.24": how PostgreSQL spells its server_version_num. */
export function postgresVersion(n: number): string {
  const major = Math.floor(n / 10000);
  if (major >= 10) return `${major}.${n % 10000}`;
  return `${major}.${Math.floor(n / 100) % 100}.${n % 100}`;
}

/**
 * Reads the local Patroni member: who it is and what its PostgreSQL does
 * (GET /patroni: role, state, timeline, version, system identifier), and how
 * far it is behind its leader (its own row of GET /cluster). Each answer is
 * validated; one that fails leaves its fields unknown and says so in `error`.
 */
export function patroniProbe(o: PatroniProbeOptions): ApplicationProbe {
  const root = o.url.replace(/\/+$/, '');
  const timeoutMs = o.timeoutMs ?? 5000;

  // 503 too: its body is the same, with PostgreSQL down.
  const get = jsonGetter({ root, timeoutMs, maxBytes: 4 << 20, accept: (status) => status === 200 || status === 503 });

  return {
    name: 'patroni',
    async probe(signal) {
      const errors: string[] = [];
      const settle = settler(errors, signal);
      const [self, cluster] = await Promise.all([settle(get('/patroni', Self, signal)), settle(get('/cluster', Cluster, signal))]);
      const status: ApplicationStatus = { probe: 'patroni' };
      if (self) {
        status.role = self.role;
        status.state = self.state;
        if (self.timeline !== undefined) status.timeline = self.timeline;
        if (self.server_version !== undefined) status.version = postgresVersion(self.server_version);
        if (self.database_system_identifier) status.systemIdentifier = self.database_system_identifier;
        if (self.patroni?.name) status.nodeName = self.patroni.name;
        else if (o.member && cluster?.members.some((m) => m.name === o.member)) status.nodeName = o.member;
        if (self.patroni?.scope) status.clusterName = self.patroni.scope;
      }
      const me = cluster?.members.find((m) => m.name === status.nodeName);
      if (me && status.role !== 'primary' && status.role !== 'master') {
        const lags = [me.lag, me.receive_lag, me.replay_lag].filter((v) => v !== undefined && v !== null);
        if (lags.length > 0 && lags.every((v) => typeof v === 'number')) status.lag = Math.max(...(lags as number[]));
      } else if (me) status.lag = 0;
      if (errors.length > 0) status.error = errors.join('; ').slice(0, 4000);
      return status;
    },
  };
}
