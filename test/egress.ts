import { createEgress } from '../lib/egress.ts';
import { urlPolicy } from '../lib/url-policy.ts';

/**
 * The address policy of a test's hook calls: the tests run every application on
 * loopback, so they allow it, as an installer does with --hook-allow-loopback.
 * Link-local stays refused.
 */
export const loopbackEgress = createEgress(urlPolicy([], [], { allowLoopback: true }));
