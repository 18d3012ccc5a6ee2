// The hook's error paths against a local HTTP(S) server that answers what a
// test wants: nonsense, errors, slowness. Only error paths: every success path
// is proven against a real cluster in test/integration/elasticsearch-hook.test.ts.

import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elasticsearchHook } from '../../hooks/elasticsearch/index.ts';
import type { Options } from '../../hooks/elasticsearch/options.ts';
import { type HookContext, HookNotReady, parseHookOptions } from '../../lib/hook.ts';
import { httpRequest } from '../../lib/http.ts';
import { createLogger } from '../../lib/log.ts';
import { staticPilotReader } from '../../lib/pilot/reader.ts';
import { loopbackEgress } from '../egress.ts';

const log = createLogger({ level: 'silent' });
const pod = (name: string): V1Pod => ({ metadata: { name, uid: `uid-${name}` }, status: { conditions: [{ type: 'Ready', status: 'True' }] } });

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function options(o: Record<string, string>): Options {
  const r = parseHookOptions(elasticsearchHook, Object.fromEntries(Object.entries(o).map(([k, v]) => [`elasticsearch.sts-pilot.io/${k}`, v])));
  if (!r.ok) throw new Error(r.error);
  return r.options as Options;
}

async function holdOf(o: Record<string, string>, more: Partial<HookContext<Options>> & Record<string, unknown> = {}): Promise<string> {
  const ctx = {
    statefulSet: { metadata: { name: 'es', namespace: 'db' } },
    options: options(o),
    signal: new AbortController().signal,
    log,
    secrets: async (): Promise<Record<string, string>> => ({}),
    egress: loopbackEgress,
    pilots: staticPilotReader([]),
    ...more,
  } as HookContext<unknown>;
  const err = await elasticsearchHook.podUpdateTransition(null, pod('es-2'), ctx).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the hook approved').to.be.instanceOf(HookNotReady);
  return (err as Error).message;
}

describe('elasticsearch hook: error paths (local server)', () => {
  let server: Server;
  let url: string;
  let handler: Handler;
  const seen: IncomingMessage[] = [];

  before(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      handler(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  beforeEach(() => {
    seen.length = 0;
  });

  const json = (status: number, body: unknown): Handler => (_req, res) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

  it('holds on a health answer that makes no sense, saying what', async () => {
    handler = json(200, { status: 'purple', number_of_nodes: 3 });
    expect(await holdOf({ url })).to.match(new RegExp(`^Elasticsearch at ${url}: GET /_cluster/(health|settings|state/nodes,routing_nodes): (unexpected answer|the answer is not JSON)`));
    handler = (req, res) => (req.url?.startsWith('/_cluster/health') ? json(200, { status: 'purple' })(req, res) : json(200, { persistent: {}, transient: {}, cluster_uuid: 'u' })(req, res));
    expect(await holdOf({ url })).to.match(/GET \/_cluster\/health: unexpected answer: .*status/);
  });

  it('holds on an answer that is not JSON', async () => {
    handler = (_req, res) => res.writeHead(200).end('<html>proxy login</html>');
    expect(await holdOf({ url })).to.match(/the answer is not JSON: <html>proxy login/);
  });

  it("holds on an error status with the server's own reason", async () => {
    handler = json(503, { error: { type: 'master_not_discovered_exception', reason: null }, status: 503 });
    expect(await holdOf({ url })).to.match(/answered 503: master_not_discovered_exception$/);
  });

  it('holds when the cluster does not answer in time', async () => {
    handler = () => {}; // never answers
    const t0 = Date.now();
    expect(await holdOf({ url, timeout: '1' })).to.match(/no answer within 1s$/);
    expect(Date.now() - t0).to.be.below(5000);
  });

  it('holds when the call is cancelled', async () => {
    handler = () => {};
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('deadline')), 200);
    expect(await holdOf({ url, timeout: '30' }, { signal: ac.signal })).to.match(/the hook call was cancelled/);
  });

  it('holds when the cluster is unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await holdOf({ url: `http://127.0.0.1:${port}` })).to.match(new RegExp(`^Elasticsearch at http://127.0.0.1:${port}: GET /_nodes/\\S+: unreachable \\(.*ECONNREFUSED`));
  });

  it('sends basic auth from the Secret, and never puts the password in a reason', async () => {
    handler = json(401, { error: { type: 'security_exception', reason: 'unable to authenticate user [elastic]' } });
    const reason = await holdOf({ url, 'credentials-secret': 'es-creds' }, { secrets: async (name: string): Promise<Record<string, string>> => (name === 'es-creds' ? { username: 'elastic', password: 's3cr3t-pw' } : {}) });
    expect(seen[0]?.headers.authorization).to.equal(`Basic ${Buffer.from('elastic:s3cr3t-pw').toString('base64')}`);
    expect(reason).to.match(/answered 401: security_exception: unable to authenticate/);
    expect(reason).to.not.include('s3cr3t-pw');
  });

  it('sends an API key from the Secret', async () => {
    handler = json(401, { error: 'no' });
    await holdOf({ url, 'credentials-secret': 'k' }, { secrets: async () => ({ 'api-key': 'aWQ6a2V5\n' }) });
    expect(seen[0]?.headers.authorization).to.equal('ApiKey aWQ6a2V5');
  });

  it('holds, without the Secret data, when the Secret has no usable keys or cannot be read', async () => {
    handler = json(200, {});
    const bad = await holdOf({ url, 'credentials-secret': 'es-creds' }, { secrets: async () => ({ user: 'elastic', pass: 'hunter2' }) });
    expect(bad).to.equal("Secret es-creds has neither api-key, nor username and password, nor one key naming a user (as ECK's elastic-user Secret)");
    expect(seen).to.have.length(0);
    const gone = await holdOf({ url, 'credentials-secret': 'es-creds' }, { secrets: async () => Promise.reject(new Error('secrets "es-creds" not found')) });
    expect(gone).to.equal('cannot read Secret es-creds: secrets "es-creds" not found');
  });

  it('sends basic auth from the Secret ECK creates for the elastic user (one key: the user), trimmed', async () => {
    handler = json(401, { error: 'no' });
    await holdOf({ url, 'credentials-secret': 'quickstart-es-elastic-user' }, { secrets: async () => ({ elastic: 'pw-from-eck\n' }) });
    expect(seen[0]?.headers.authorization).to.equal(`Basic ${Buffer.from('elastic:pw-from-eck').toString('base64')}`);
    seen.length = 0;
    await holdOf({ url, 'credentials-secret': 'c' }, { secrets: async () => ({ username: ' elastic\n', password: 'pw\n' }) });
    expect(seen[0]?.headers.authorization).to.equal(`Basic ${Buffer.from('elastic:pw').toString('base64')}`);
  });

  it('holds on a CA that is no PEM', async () => {
    expect(await holdOf({ url: 'https://127.0.0.1:1', 'ca-secret': 'es-ca' }, { secrets: async () => ({ 'tls.crt': 'x' }) })).to.equal('Secret es-ca has no PEM certificate under ca.crt');
  });

  it('holds with the reason a Pilot reader gives when it fails', async () => {
    expect(await holdOf({ url }, { pilots: { get: () => { throw new Error('cache not synced'); }, isFresh: () => false } })).to.equal('cannot read the Pilot of es-2: cache not synced');
  });
});

describe('elasticsearch hook: TLS with a CA from a Secret or ConfigMap (local https server)', function () {
  let dir: string;
  let caPem: string;
  let server: ReturnType<typeof createHttpsServer>;
  let url: string;

  before(async function () {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
    } catch {
      throw new Error('needs openssl to make a certificate for the TLS test server');
    }
    dir = mkdtempSync(join(tmpdir(), 'sts-pilot-tls-'));
    // A self-signed certificate for 127.0.0.1: it is its own CA.
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=es-test',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'crt.pem'),
    ], { stdio: 'ignore' });
    caPem = readFileSync(join(dir, 'crt.pem'), 'utf8');
    server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: caPem }, (_req, res) => res.writeHead(500).end('{"error":"handshake was fine"}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server?.closeAllConnections();
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without the CA the certificate is refused', async () => {
    expect(await holdOf({ url })).to.match(/: TLS: certificate not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\); name the CA that signed it in ca-secret$/);
    // A CA that did not sign it says so.
    const other = execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=other', '-keyout', '/dev/null'], { encoding: 'utf8' });
    expect(await holdOf({ url, 'ca-secret': 'other' }, { secrets: async () => ({ 'ca.crt': other }) })).to.match(/: TLS: certificate not trusted \(\w+\); the CA in ca-secret did not sign it$/);
  });

  it('with the CA from a Secret, the TLS handshake succeeds (the server then answers 500)', async () => {
    expect(await holdOf({ url, 'ca-secret': 'es-ca' }, { secrets: async () => ({ 'ca.crt': caPem }) })).to.match(/answered 500: handshake was fine$/);
  });

  it('lib/egress: a dispatcher with a ca makes https work, and a cut body says so', async () => {
    const ok = await httpRequest(url, { timeoutMs: 5000, dispatcher: loopbackEgress.dispatcher(caPem) });
    expect(ok).to.deep.equal({ status: 500, text: '{"error":"handshake was fine"}' });
    const cut = await httpRequest(url, { timeoutMs: 5000, dispatcher: loopbackEgress.dispatcher(caPem), maxBytes: 5 });
    expect(cut).to.deep.equal({ status: 500, text: '{"err', truncated: true });
  });
});
