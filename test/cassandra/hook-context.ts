// The context the controller hands the cassandra hook, built by hand for tests
// that call the hook directly against a real ring (no Kubernetes): options
// parsed from annotations as the controller parses them, loopback egress, no
// Pilots unless given, Secrets from a plain map.

import type { Options } from '../../hooks/cassandra/options.ts';
import { cassandraHook } from '../../hooks/cassandra/index.ts';
import { parseHookOptions } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { type PilotReader, staticPilotReader } from '../../lib/pilot/reader.ts';
import { loopbackEgress } from '../egress.ts';

export interface HookContextOptions {
  contactPoints: string;
  annotations?: Record<string, string>;
  nextReady?: boolean | null;
  secrets?: Record<string, Record<string, string>>;
  pilots?: PilotReader;
}

export function cassandraHookContext(o: HookContextOptions) {
  const parsed = parseHookOptions(cassandraHook, { 'cassandra.sts-pilot.io/contact-points': o.contactPoints, ...o.annotations });
  if (!parsed.ok) throw new Error(parsed.error);
  const secrets = o.secrets;
  return {
    statefulSet: { metadata: { name: 'cass-r1', namespace: 'default' } },
    options: parsed.options as Options,
    signal: AbortSignal.timeout(60_000),
    log: createLogger({ level: 'silent' }),
    secrets: async (name: string) => {
      const s = secrets?.[name];
      if (!s) throw new Error(secrets ? `secrets "${name}" not found` : 'no Secrets in this test');
      return s;
    },
    egress: loopbackEgress,
    pilots: o.pilots ?? staticPilotReader([]),
    nextReady: o.nextReady === undefined ? true : o.nextReady,
  };
}
