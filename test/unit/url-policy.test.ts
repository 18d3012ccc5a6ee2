import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpHook } from '../../hooks/http/index.ts';
import { createEgress } from '../../lib/egress.ts';
import { HookNotReady } from '../../lib/hook.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { type AllowEntry, allowedAddress, parseAllowEntry, UrlRefused, urlPolicy } from '../../lib/url-policy.ts';

const entries = (...raw: string[]): AllowEntry[] =>
  raw.map((r) => {
    const e = parseAllowEntry(r);
    if (typeof e === 'string') throw new Error(e);
    return e;
  });

describe('hook addresses: the allowlist and what is always refused', () => {
  const apiServer = [{ ip: '10.96.0.1', port: 443, what: 'the API server' }];

  for (const [allow, host, ip, port, verdict] of [
    // No allowlist: anything but link-local and the API server's own address.
    [[], 'hooks.db.svc', '10.1.2.3', 8080, undefined],
    [[], '169.254.169.254', '169.254.169.254', 80, /link-local/],
    [[], 'metadata.google.internal', '169.254.169.254', 80, /link-local/],
    [[], '::ffff:169.254.169.254', '::ffff:169.254.169.254', 80, /link-local/],
    [[], 'fe80::1', 'fe80::1', 80, /link-local/],
    [[], 'kubernetes.default.svc', '10.96.0.1', 443, /10\.96\.0\.1:443 is the API server/],
    [[], '10.96.0.1', '10.96.0.1', 8443, undefined], // another port of that address is another service
    // An allowlist: only what it names; the refusals above still hold.
    [['10.0.0.0/8'], 'hooks.db.svc', '10.1.2.3', 8080, undefined],
    [['10.0.0.0/8'], '192.168.0.1', '192.168.0.1', 8080, /192\.168\.0\.1 is not in the controller's --hook-allow \(10\.0\.0\.0\/8\)/],
    [['10.0.0.0/8'], 'db.example', '192.168.0.1', 8080, /192\.168\.0\.1 \(db\.example resolves to it\) is not in/],
    // Loopback and "this host" reach the controller's own pod: refused unless the installer allows loopback.
    [[], '127.0.0.1', '127.0.0.1', 9200, /127\.0\.0\.1 is a loopback address .*--hook-allow-loopback/],
    [[], 'localhost', '127.0.0.1', 9200, /loopback/],
    [[], '127.1.2.3', '127.1.2.3', 9200, /loopback/],
    [[], '::1', '::1', 9200, /loopback/],
    [[], '::ffff:127.0.0.1', '::ffff:127.0.0.1', 9200, /loopback/],
    [[], '0.0.0.0', '0.0.0.0', 9200, /loopback/],
    [[], '::', '::', 9200, /loopback/],
    [['127.0.0.0/8'], '127.0.0.1', '127.0.0.1', 9200, /loopback/], // an allowlist entry does not stand for the loopback flag
    [['10.0.0.0/8'], 'kubernetes.default.svc', '10.96.0.1', 443, /the API server/],
    [['169.254.0.0/16'], '169.254.169.254', '169.254.169.254', 80, /link-local/],
    [['hooks.db.svc'], 'hooks.db.svc', '192.168.1.1', 80, undefined],
    [['hooks.db.svc'], 'HOOKS.db.svc.', '192.168.1.1', 80, undefined],
    [['hooks.db.svc'], 'other.db.svc', '192.168.1.1', 80, /not in/],
    [['*.db.svc'], 'hooks.db.svc', '192.168.1.1', 80, undefined],
    [['*.db.svc'], 'db.svc', '192.168.1.1', 80, /not in/],
    [['*.db.svc'], 'evil-db.svc', '192.168.1.1', 80, /not in/],
    [['2001:db8::/32'], '2001:db8::5', '2001:db8::5', 80, undefined],
    [['192.168.1.7'], '192.168.1.7', '192.168.1.7', 80, undefined],
    [['192.168.1.7'], '192.168.1.8', '192.168.1.8', 80, /not in/],
  ] as const) {
    it(`${allow.join(',') || '(no allowlist)'}: ${host} (${ip}:${port}) is ${verdict ? 'refused' : 'allowed'}`, () => {
      const why = urlPolicy(entries(...allow), apiServer).refuse(host, ip, port);
      if (verdict) expect(why).to.match(verdict);
      else expect(why).to.equal(undefined);
    });
  }

  for (const [allow, host, ip, port, verdict] of [
    [[], '127.0.0.1', '127.0.0.1', 9200, undefined],
    [[], '::1', '::1', 9200, undefined],
    [['10.0.0.0/8'], '127.0.0.1', '127.0.0.1', 9200, /is not in the controller's --hook-allow/],
    [['127.0.0.0/8'], '127.0.0.1', '127.0.0.1', 9200, undefined],
    [[], '127.0.0.1', '127.0.0.1', 443, /the API server/], // the API server stays refused on loopback too
    [[], '169.254.169.254', '169.254.169.254', 80, /link-local/],
  ] as const) {
    it(`--hook-allow-loopback, ${allow.join(',') || '(no allowlist)'}: ${host} (${ip}:${port}) is ${verdict ? 'refused' : 'allowed'}`, () => {
      const why = urlPolicy(entries(...allow), [{ ip: '127.0.0.1', port: 443, what: 'the API server' }], { allowLoopback: true }).refuse(host, ip, port);
      if (verdict) expect(why).to.match(verdict);
      else expect(why).to.equal(undefined);
    });
  }

  it('a raw TCP address (Kafka) is judged like a URL, and the IP to connect to is the one judged', async () => {
    const strict = urlPolicy([], apiServer);
    const refused = await allowedAddress(strict, 'localhost', 9092).catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(UrlRefused);
    expect((refused as Error).message).to.match(/loopback/);
    expect(await allowedAddress(strict, '[2001:db8::5]', 9092)).to.equal('2001:db8::5');
    expect(await allowedAddress(urlPolicy([], [], { allowLoopback: true }), 'localhost', 9092)).to.match(/^(127\.0\.0\.1|::1)$/);
    expect(await allowedAddress(strict, '169.254.169.254', 9092).catch((e: unknown) => (e as Error).message)).to.match(/link-local/);
  });

  for (const bad of ['10.0.0.0/33', '::1/129', '10.0.0.0/x', 'a_b', '*.', 'http://x', '']) {
    it(`refuses the entry ${JSON.stringify(bad)}`, () => expect(parseAllowEntry(bad)).to.be.a('string'));
  }
});

describe('http hook: the policy acts on the connection, before any request is sent', () => {
  let server: Server;
  let port: number;
  let requests = 0;
  const log = createLogger({ level: 'fatal' });

  before(async () => {
    server = createServer((_req, res) => {
      requests++;
      res.writeHead(200).end('secret answer');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  const call = (allow: string[], url: string, deny: { ip: string; port: number; what: string }[] = [], allowLoopback = true) =>
    httpHook.podUpdateTransition(null, null, {
      statefulSet: {},
      options: { url, timeout: 5 },
      signal: new AbortController().signal,
      log,
      secrets: async () => ({}),
      egress: createEgress(urlPolicy(entries(...allow), deny, { allowLoopback })),
      pilots: staticPilotReader([]),
      nextReady: null,
    });

  it('allowed: the call goes through', async () => {
    const before = requests;
    await call(['127.0.0.0/8'], `http://127.0.0.1:${port}/step`);
    expect(requests).to.equal(before + 1);
  });

  for (const [what, allow, host] of [
    ['an IP outside the allowlist', ['10.0.0.0/8'], '127.0.0.1'],
    ['a name that resolves outside the allowlist', ['10.0.0.0/8'], 'localhost'],
  ] as const) {
    it(`refused: ${what}; the server never sees a request`, async () => {
      const before = requests;
      const err = await call([...allow], `http://${host}:${port}/step`).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HookNotReady);
      expect((err as Error).message).to.match(new RegExp(`^http://${host}:${port}/step is not allowed: (127\\.0\\.0\\.1|::1).* is not in the controller's --hook-allow \\(10\\.0\\.0\\.0/8\\)$`));
      expect(requests).to.equal(before);
    });
  }

  it('refused: loopback without --hook-allow-loopback; the server never sees a request', async () => {
    const before = requests;
    const err = await call([], `http://127.0.0.1:${port}/step`, [], false).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/is not allowed: 127\.0\.0\.1 is a loopback address/);
    expect(requests).to.equal(before);
  });

  it("refused: the API server's own address, also without an allowlist", async () => {
    const before = requests;
    const err = await call([], `http://127.0.0.1:${port}/api`, [{ ip: '127.0.0.1', port, what: 'the API server' }]).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/is not allowed: 127\.0\.0\.1:\d+ is the API server; hooks may not call it$/);
    expect(requests).to.equal(before);
  });

  it('refused: link-local, without connecting', async () => {
    const t0 = Date.now();
    const err = await call([], 'http://169.254.169.254/latest/meta-data/').catch((e: unknown) => e);
    expect((err as Error).message).to.match(/is not allowed: 169\.254\.169\.254 is a link-local address/);
    expect(Date.now() - t0).to.be.below(1000);
  });
});
