import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';

/**
 * Where a hook may connect: every hook (http, elasticsearch, patroni, kafka), for
 * every address it calls. Anyone who can annotate a StatefulSet chooses those
 * addresses, the controller calls them with its own network position (and,
 * for some hooks, credentials), and part of the answer comes back in an Event:
 * without a policy the controller would fetch cloud metadata (169.254.169.254),
 * its own API server or its own pod's ports for them. Checked on the address the
 * connection actually goes to (after DNS), so a name cannot point around it.
 *
 * - Always refused: link-local addresses (169.254.0.0/16, fe80::/10) and the API
 *   server's own address (ip:port).
 * - Refused unless the installer allows it (--hook-allow-loopback): loopback
 *   (127.0.0.0/8, ::1) and the unspecified addresses (0.0.0.0/8, ::), which
 *   reach the controller's own pod.
 * - With an allowlist (--hook-allow): only hosts named in it (`name`, or
 *   `*.suffix` for any name under it) and addresses in its CIDRs (or single IPs).
 */
export interface UrlPolicy {
  /** Why a connection to `ip:port`, reached through the URL host `host`, is refused; undefined when allowed. */
  refuse(host: string, ip: string, port: number): string | undefined;
  /** The allowlist as given, for messages; empty when there is none. */
  readonly allow: readonly string[];
}

export type AllowEntry = { kind: 'cidr'; text: string; address: string; prefix: number; family: 'ipv4' | 'ipv6' } | { kind: 'host'; text: string; name: string } | { kind: 'suffix'; text: string; suffix: string };

const hostname = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** One allowlist entry, or why it is not one. Pure. */
export function parseAllowEntry(raw: string): AllowEntry | string {
  const text = raw.trim().toLowerCase();
  const slash = text.indexOf('/');
  const addr = slash >= 0 ? text.slice(0, slash) : text;
  const family = isIP(addr);
  if (family) {
    const max = family === 4 ? 32 : 128;
    const prefixText = slash >= 0 ? text.slice(slash + 1) : String(max);
    if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > max) return `${raw}: the prefix length must be 0 to ${max}`;
    return { kind: 'cidr', text, address: addr, prefix: Number(prefixText), family: family === 4 ? 'ipv4' : 'ipv6' };
  }
  if (slash >= 0) return `${raw}: not a CIDR (an IP address, "/", a prefix length)`;
  if (text.startsWith('*.') && hostname.test(text.slice(2))) return { kind: 'suffix', text, suffix: text.slice(1) };
  if (hostname.test(text)) return { kind: 'host', text, name: text };
  return `${raw}: not a host name, *.domain, IP address or CIDR`;
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address: judge it as one. */
function normalise(ip: string): { ip: string; family: 'ipv4' | 'ipv6' } {
  const bare = ip.replace(/^\[|\]$/g, '').toLowerCase();
  const mapped = /^::ffff:([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$/.exec(bare);
  if (mapped?.[1]) return { ip: mapped[1], family: 'ipv4' };
  return { ip: bare, family: isIP(bare) === 6 ? 'ipv6' : 'ipv4' };
}

const linkLocal = new BlockList();
linkLocal.addSubnet('169.254.0.0', 16, 'ipv4');
linkLocal.addSubnet('fe80::', 10, 'ipv6');

// 0.0.0.0 and :: are "this host" to connect(): the same as loopback.
const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addSubnet('0.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addAddress('::', 'ipv6');

/** The installer's choices besides the allowlist. */
export interface UrlPolicyOptions {
  /** Loopback (the controller's own pod) may be called: for tests and single-host setups. */
  allowLoopback?: boolean;
}

/**
 * The policy from an allowlist (entries already parsed) and the addresses that
 * are always refused besides link-local: the API server's, as `ip:port` pairs.
 * Pure: the same arguments always give the same answers.
 */
export function urlPolicy(allow: readonly AllowEntry[], deny: readonly { ip: string; port: number; what: string }[] = [], o: UrlPolicyOptions = {}): UrlPolicy {
  const cidrs = new BlockList();
  for (const e of allow) if (e.kind === 'cidr') cidrs.addSubnet(e.address, e.prefix, e.family);
  const denied = deny.map((d) => ({ ...d, ...normalise(d.ip) }));
  return {
    allow: allow.map((e) => e.text),
    refuse(host, rawIp, port) {
      const { ip, family } = normalise(rawIp);
      if (linkLocal.check(ip, family)) return `${ip} is a link-local address (cloud metadata lives there); hooks may not call it`;
      const d = denied.find((x) => x.ip === ip && x.port === port);
      if (d) return `${ip}:${port} is ${d.what}; hooks may not call it`;
      if (!o.allowLoopback && loopback.check(ip, family)) return `${ip} is a loopback address (the controller's own pod); hooks may call it only where the installer allows it (--hook-allow-loopback)`;
      if (allow.length === 0) return undefined;
      const name = host.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.$/, '');
      if (allow.some((e) => (e.kind === 'host' && e.name === name) || (e.kind === 'suffix' && name.endsWith(e.suffix)))) return undefined;
      if (cidrs.check(ip, family)) return undefined;
      const via = name === ip ? '' : ` (${name} resolves to it)`;
      return `${ip}${via} is not in the controller's --hook-allow (${allow.map((e) => e.text).join(', ')})`;
    },
  };
}

/** Thrown (as the connection error) when the policy refuses an address. */
export class UrlRefused extends Error {
  override name = 'UrlRefused';
}

/** The policy's refusal behind an error (undici may wrap the connector's error), if that is what it is. */
export function refusalOf(err: unknown): UrlRefused | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    if (e instanceof UrlRefused) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Every address `name` resolves to, each judged by the policy (one refused
 * address refuses the name: DNS may hand out any of them next time).
 */
export function policyLookup(policy: UrlPolicy, port: number) {
  return (name: string, options: { all?: boolean; family?: number | string }, cb: (...args: unknown[]) => void): void => {
    dnsLookup(name, { all: true, family: options.family === 'IPv6' ? 6 : options.family === 'IPv4' ? 4 : ((options.family as number | undefined) ?? 0) }, (err, addresses: LookupAddress[]) => {
      if (err) return cb(err);
      for (const a of addresses) {
        const why = policy.refuse(name, a.address, port);
        if (why) return cb(new UrlRefused(why));
      }
      if (options.all) return cb(null, addresses);
      const first = addresses[0];
      return first ? cb(null, first.address, first.family) : cb(new Error(`${name} resolves to no address`));
    });
  };
}

/**
 * The address to open a raw TCP connection to (Kafka), judged like an HTTP
 * connection: an IP as it is, a name resolved and every address checked. The
 * caller connects to the IP returned, so DNS cannot answer differently between
 * the check and the connection.
 */
export function allowedAddress(policy: UrlPolicy, host: string, port: number): Promise<string> {
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare)) {
    const why = policy.refuse(bare, bare, port);
    return why ? Promise.reject(new UrlRefused(why)) : Promise.resolve(bare);
  }
  return new Promise((resolve, reject) => {
    policyLookup(policy, port)(bare, {}, (err: unknown, address: unknown) => (err ? reject(err as Error) : resolve(address as string)));
  });
}

/**
 * An undici dispatcher that connects only where the policy allows: an IP in the
 * URL is judged before connecting, a name on every address DNS gives for it
 * (before any byte is sent; the request never leaves). Redirects are not
 * followed by undici's request(), so a 3xx cannot lead elsewhere.
 */
export function policyAgent(policy: UrlPolicy, tls: { ca?: string } = {}): Agent {
  const plain = buildConnector(tls.ca ? { ca: tls.ca } : {});
  return new Agent({
    connect: (opts, callback) => {
      const protocolPort = opts.protocol === 'https:' ? 443 : 80;
      const port = Number(opts.port) || protocolPort;
      const host = opts.hostname.replace(/^\[|\]$/g, '');
      if (isIP(host)) {
        const why = policy.refuse(host, host, port);
        if (why) return callback(new UrlRefused(why), null);
        return plain(opts, callback);
      }
      const connector = buildConnector({ ...(tls.ca ? { ca: tls.ca } : {}), lookup: policyLookup(policy, port) } as buildConnector.BuildOptions);
      connector(opts, callback);
    },
  });
}
