// The cassandra hook's TLS options and what a TLS failure tells the operator;
// the real handshakes are in test/integration/cassandra-tls.test.ts.
import * as tls from 'node:tls';
import { expect } from 'chai';
import { cassandraHook } from '../../hooks/cassandra/index.ts';
import type { Options } from '../../hooks/cassandra/options.ts';
import { connectProblem, tlsOptions } from '../../hooks/cassandra/read.ts';
import { HookNotReady, parseHookOptions } from '../../lib/hook.ts';
import { loopbackEgress } from '../egress.ts';

const parse = (a: Record<string, string>) =>
  parseHookOptions(cassandraHook, Object.fromEntries(Object.entries({ 'contact-points': 'cass-dc1-service.cass.svc', ...a }).map(([k, v]) => [`cassandra.sts-pilot.io/${k}`, v])));
const options = (a: Record<string, string>): Options => {
  const r = parse(a);
  if (!r.ok) throw new Error(r.error);
  return r.options as Options;
};
const error = (a: Record<string, string>): string => {
  const r = parse(a);
  return r.ok ? 'parsed' : r.error;
};

describe('cassandra hook: TLS to the native port', () => {
  it('is off by default; tls "true" verifies the chain and the name, with ca-secret and tls-server-name when given', () => {
    expect(options({}).tls).to.equal(undefined);
    expect(options({ tls: 'true' }).tls).to.deep.equal({ caSecret: undefined, serverName: undefined, verifyServerName: true });
    expect(options({ tls: 'true', 'ca-secret': 'cass-ca', 'tls-server-name': 'cass-dc1-service.cass.svc' }).tls).to.deep.equal({
      caSecret: 'cass-ca',
      serverName: 'cass-dc1-service.cass.svc',
      verifyServerName: true,
    });
    expect(options({ tls: 'true', 'tls-verify-server-name': 'false' }).tls?.verifyServerName).to.equal(false);
  });

  it('refuses TLS options that would do nothing or contradict each other, naming the annotation', () => {
    expect(error({ tls: 'yes' })).to.include('cassandra.sts-pilot.io/tls');
    expect(error({ 'ca-secret': 'cass-ca' })).to.match(/ca-secret.*only makes sense with tls: "true"/);
    expect(error({ 'tls-server-name': 'a.b' })).to.match(/tls-server-name.*only makes sense with tls: "true"/);
    expect(error({ 'tls-verify-server-name': 'false' })).to.match(/tls-verify-server-name.*only makes sense with tls: "true"/);
    expect(error({ tls: 'true', 'tls-server-name': 'a.b', 'tls-verify-server-name': 'false' })).to.include('give one of them');
    expect(error({ tls: 'true', 'tls-server-name': '*.cass.svc' })).to.include('must be a DNS name');
    expect(error({ tls: 'true', 'ca-secret': 'Not_A_Name' })).to.include('ca-secret');
  });

  it('gives the driver a verifying TLS configuration (its own default verifies nothing)', async () => {
    const ctx = (a: Record<string, string>, secret: Record<string, string> = { 'ca.crt': '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n' }) => ({
      options: options(a),
      signal: new AbortController().signal,
      secrets: async () => secret,
      egress: loopbackEgress,
    });
    expect(await tlsOptions(ctx({}))).to.equal(undefined);
    const byAddress = await tlsOptions(ctx({ tls: 'true', 'ca-secret': 'cass-ca' }));
    expect(byAddress).to.include({ rejectUnauthorized: true });
    expect(byAddress?.ca).to.include('BEGIN CERTIFICATE');
    expect(byAddress?.checkServerIdentity).to.equal(undefined); // Node's own: the certificate must name the address connected to
    const named = await tlsOptions(ctx({ tls: 'true', 'tls-server-name': 'cass.svc' }));
    expect(named).to.include({ rejectUnauthorized: true, servername: 'cass.svc' });
    const cert = { subject: { CN: 'other' }, subjectaltname: 'DNS:cass.svc' } as unknown as tls.PeerCertificate;
    expect(named?.checkServerIdentity?.('10.0.0.1', cert)).to.equal(undefined);
    expect(named?.checkServerIdentity?.('10.0.0.1', { ...cert, subjectaltname: 'DNS:other.svc' } as tls.PeerCertificate)).to.be.instanceOf(Error);
    const chainOnly = await tlsOptions(ctx({ tls: 'true', 'tls-verify-server-name': 'false' }));
    expect(chainOnly).to.include({ rejectUnauthorized: true });
    expect(chainOnly?.checkServerIdentity?.('10.0.0.1', { ...cert, subjectaltname: 'DNS:other.svc' } as tls.PeerCertificate)).to.equal(undefined);
    const bad = await tlsOptions(ctx({ tls: 'true', 'ca-secret': 'cass-ca' }, { 'tls.crt': 'x' })).catch((e: unknown) => e);
    expect(bad).to.be.instanceOf(HookNotReady);
    expect((bad as Error).message).to.equal('Secret cass-ca has no PEM certificate under ca.crt');
  });

  it("says which certificate problem stopped the connection, from the driver's per-host errors", () => {
    const noHost = (code: string) => Object.assign(new Error('All host(s) tried for query failed.'), { innerErrors: { '10.0.0.1:9042': Object.assign(new Error('x'), { code }) } });
    expect(connectProblem(noHost('SELF_SIGNED_CERT_IN_CHAIN'), options({ tls: 'true', 'ca-secret': 'c' }))).to.equal(
      'TLS: certificate not trusted (SELF_SIGNED_CERT_IN_CHAIN); the CA in ca-secret did not sign it',
    );
    expect(connectProblem(noHost('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), options({ tls: 'true' }))).to.include('name the CA that signed it in ca-secret');
    expect(connectProblem(noHost('ERR_TLS_CERT_ALTNAME_INVALID'), options({ tls: 'true' }))).to.include('tls-server-name');
    expect(connectProblem(noHost('ECONNREFUSED'), options({}))).to.equal('10.0.0.1:9042: x');
    // Plain text to a TLS-only port: the node resets the connection, or the driver times out.
    expect(connectProblem(noHost('ECONNRESET'), options({}))).to.equal('10.0.0.1:9042: x; if the native port takes only TLS (client_encryption_options), set tls: "true"');
    expect(connectProblem(noHost('ECONNRESET'), options({ tls: 'true' }))).to.equal('10.0.0.1:9042: x');
    expect(connectProblem(new Error('no hosts'), options({}))).to.equal('no hosts');
  });
});
