import type { Agent, Dispatcher } from 'undici';
import { allowedAddress, policyAgent, type UrlPolicy } from './url-policy.ts';

/**
 * How a hook reaches the network: every connection a hook opens goes through
 * the controller's one address policy (lib/url-policy.ts), whichever hook and
 * whatever protocol. Hooks get it in their context and have no other way out
 * that the controller hands them.
 */
export interface Egress {
  readonly policy: UrlPolicy;
  /** An undici dispatcher that connects only where the policy allows, trusting `ca` (PEM) for https when given. */
  dispatcher(ca?: string): Dispatcher;
  /** The IP to open a raw TCP connection to (Kafka); rejects with UrlRefused where the policy refuses. */
  address(host: string, port: number): Promise<string>;
}

/** Pools kept per CA bundle: the bundles come from Secrets that can change, so the oldest is closed past this. */
const MAX_CA_AGENTS = 8;

export function createEgress(policy: UrlPolicy): Egress {
  const plain = policyAgent(policy);
  const withCa = new Map<string, Agent>();
  return {
    policy,
    dispatcher(ca) {
      if (!ca) return plain;
      let agent = withCa.get(ca);
      if (agent) {
        // Least recently used first: refresh its place.
        withCa.delete(ca);
        withCa.set(ca, agent);
        return agent;
      }
      agent = policyAgent(policy, { ca });
      withCa.set(ca, agent);
      for (const [key, old] of withCa) {
        if (withCa.size <= MAX_CA_AGENTS) break;
        withCa.delete(key);
        void old.close().catch(() => {});
      }
      return agent;
    },
    address: (host, port) => allowedAddress(policy, host, port),
  };
}
