// The cassandra hook over TLS to the native port, against a real node: one
// CassandraDaemon whose native port speaks only TLS (client_encryption_options,
// optional false), its keystore made with the JDK's keytool from a CA made
// here (test/cassandra/tls.ts); the hook gets the CA in PEM from a Secret, as
// an operator gives it. What it proves: the hook reads the ring over TLS with
// the CA and the node's address verified; a wrong CA, no CA, a server name the
// certificate does not carry, and plain text to a TLS-only port each hold with
// a reason that says what to change; nothing is ever approved unverified.

import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { cassandraHook, transition } from '../../hooks/cassandra/index.ts';
import { readCluster } from '../../hooks/cassandra/read.ts';
import { HookNotReady } from '../../lib/hook.ts';
import { type CassandraCluster, cassandraDist, parseStatus, startCassandraCluster } from '../cassandra/cluster.ts';
import { type CassandraPki, makeCassandraPki } from '../cassandra/tls.ts';
import { cassandraHookContext } from '../cassandra/hook-context.ts';

describe('cassandra hook over TLS to a real node (client_encryption_options, TLS only)', function () {
  this.timeout(300_000);
  let c: CassandraCluster;
  let pki: CassandraPki;
  const secrets: Record<string, Record<string, string>> = {};

  const ctxOf = (annotations: Record<string, string>) => cassandraHookContext({ contactPoints: '127.0.0.1', annotations, secrets });
  const tls = (more: Record<string, string> = {}) => ({ 'cassandra.sts-pilot.io/tls': 'true', ...more });

  /** The hold's message of a ring read. */
  async function holdOf(annotations: Record<string, string>): Promise<string> {
    try {
      await readCluster(ctxOf(annotations));
    } catch (err) {
      if (err instanceof HookNotReady) return err.message;
      throw err;
    }
    return 'read';
  }

  before(async () => {
    const dist = await cassandraDist();
    const t = Date.now();
    pki = await makeCassandraPki(dist.javaHome, 'ip:127.0.0.1,dns:cass-dc1-service.cass.svc');
    const pkiMs = Date.now() - t;
    secrets['cass-ca'] = { 'ca.crt': pki.ca };
    secrets['other-ca'] = { 'ca.crt': pki.otherCa };
    secrets['no-ca'] = { 'tls.crt': pki.ca };
    c = await startCassandraCluster({ nodes: 1, clusterName: 'sts-pilot-tls', clientTls: { keystore: pki.keystore, password: pki.password } });
    console.log(`      (Cassandra ${c.dist.version} on Java at ${c.dist.javaHome}: keystore by keytool in ${(pkiMs / 1000).toFixed(1)} s, 1 TLS-only node UN in ${(c.startMs / 1000).toFixed(1)} s)`);
  });

  after(async () => {
    await c?.stop();
    pki?.remove();
  });

  it("reads the ring over TLS with the CA from ca-secret, the node's address verified", async () => {
    const t = Date.now();
    const view = await readCluster(ctxOf(tls({ 'cassandra.sts-pilot.io/ca-secret': 'cass-ca' })));
    console.log(`      (one ring read over TLS: ${Date.now() - t} ms)`);
    const status = parseStatus(await c.nodes[0]!.nodetool(['status']));
    expect(view.clusterName).to.equal('sts-pilot-tls');
    expect(view.unread).to.deep.equal([]);
    expect(view.nodes.map((n) => [n.address, n.hostId, n.up])).to.deep.equal(status.map((s) => [s.address, s.hostId, true]));
    expect(await cassandraHook.applicationCluster!(ctxOf(tls({ 'cassandra.sts-pilot.io/ca-secret': 'cass-ca' })))).to.equal('sts-pilot-tls');
    // tls-server-name: a name the certificate carries instead of the address (cert-manager certificates for a Service).
    const named = await readCluster(ctxOf(tls({ 'cassandra.sts-pilot.io/ca-secret': 'cass-ca', 'cassandra.sts-pilot.io/tls-server-name': 'cass-dc1-service.cass.svc' })));
    expect(named.nodes.map((n) => n.up)).to.deep.equal([true]);
  });

  it('a wrong CA, no CA, or a server name the certificate lacks holds with what to change', async () => {
    expect(await holdOf(tls({ 'cassandra.sts-pilot.io/ca-secret': 'other-ca' }))).to.match(
      /^cannot connect to Cassandra at 127\.0\.0\.1:9042 over TLS: TLS: certificate not trusted \([A-Z_]+\); the CA in ca-secret did not sign it$/,
    );
    expect(await holdOf(tls())).to.match(/over TLS: TLS: certificate not trusted \([A-Z_]+\); name the CA that signed it in ca-secret$/);
    const wrongName = await holdOf(tls({ 'cassandra.sts-pilot.io/ca-secret': 'cass-ca', 'cassandra.sts-pilot.io/tls-server-name': 'cass-dc2-service.cass.svc' }));
    expect(wrongName).to.include('TLS: certificate does not name this host (ERR_TLS_CERT_ALTNAME_INVALID): it does not carry cass-dc2-service.cass.svc (tls-server-name)');
    // Chain only: the CA still counts, the name does not.
    const chainOnly = tls({ 'cassandra.sts-pilot.io/ca-secret': 'cass-ca', 'cassandra.sts-pilot.io/tls-verify-server-name': 'false' });
    expect((await readCluster(ctxOf(chainOnly))).clusterName).to.equal('sts-pilot-tls');
    expect(await holdOf(tls({ 'cassandra.sts-pilot.io/ca-secret': 'other-ca', 'cassandra.sts-pilot.io/tls-verify-server-name': 'false' }))).to.include('certificate not trusted');
    expect(await holdOf(tls({ 'cassandra.sts-pilot.io/ca-secret': 'no-ca' }))).to.equal('Secret no-ca has no PEM certificate under ca.crt');
    expect(await holdOf(tls({ 'cassandra.sts-pilot.io/ca-secret': 'missing' }))).to.match(/^cannot read Secret missing: /);
  });

  it('plain text to a TLS-only native port holds, naming the tls option', async () => {
    // The driver waits for an answer that never comes: a short timeout keeps the test short.
    const plain = await holdOf({ 'cassandra.sts-pilot.io/timeout': '3' });
    console.log(`      (plain text to the TLS-only port: ${plain})`);
    expect(plain).to.match(/^cannot connect to Cassandra at 127\.0\.0\.1:9042: .*set tls: "true"$/);
    // And the step itself holds the same way (transition asks the same read).
    const pod: V1Pod = { metadata: { name: 'cass-r1-0', namespace: 'default' }, status: { podIP: '127.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] } };
    let held = '';
    await transition(null, pod, ctxOf({ 'cassandra.sts-pilot.io/timeout': '3' })).catch((err: unknown) => (held = err instanceof HookNotReady ? err.message : String(err)));
    expect(held).to.match(/^cannot connect to Cassandra/);
  });
});
