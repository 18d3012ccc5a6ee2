import { RequestContext } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PooledKubeConfig } from '../../lib/kube/config.ts';

// Real TLS material is not needed: client-node builds an Agent whenever a CA is set.
const ca = (n: number): string => Buffer.from(`-----BEGIN CERTIFICATE-----\nfake${n}\n-----END CERTIFICATE-----\n`).toString('base64');

function config(o: { caData?: string; caFile?: string; exec?: boolean }): PooledKubeConfig {
  const kc = new PooledKubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caData: o.caData, caFile: o.caFile, skipTLSVerify: false }],
    users: [
      o.exec
        ? { name: 'u', exec: { command: 'echo', args: [JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 't' } })], apiVersion: 'client.authentication.k8s.io/v1' } }
        : { name: 'u', token: 't' },
    ],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function dispatcherOf(kc: PooledKubeConfig): Promise<unknown> {
  const ctx = new RequestContext('https://127.0.0.1:6443/api', 'GET' as never);
  await kc.applySecurityAuthentication(ctx);
  return ctx.getDispatcher();
}

describe('PooledKubeConfig', () => {
  it('hands every request the same Agent while the TLS material is the same', async () => {
    const kc = config({ caData: ca(1) });
    const first = await dispatcherOf(kc);
    expect(first).to.not.equal(undefined);
    expect(await dispatcherOf(kc)).to.equal(first);
    expect(await dispatcherOf(kc)).to.equal(first);
  });

  it('builds a new Agent when a CA file is rewritten', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sts-pilot-ca-')), 'ca.crt');
    writeFileSync(file, Buffer.from(ca(1), 'base64'));
    const kc = config({ caFile: file });
    const first = await dispatcherOf(kc);
    expect(await dispatcherOf(kc)).to.equal(first);
    writeFileSync(file, Buffer.from(`${Buffer.from(ca(2), 'base64').toString()}# rotated\n`));
    const second = await dispatcherOf(kc);
    expect(second).to.not.equal(first);
    expect(await dispatcherOf(kc)).to.equal(second);
  });

  it('keeps client-node per-request Agents for exec credential plugins (they may hand out client certificates)', async () => {
    const kc = config({ caData: ca(1), exec: true });
    const a = await dispatcherOf(kc);
    expect(a).to.not.equal(undefined);
    expect(await dispatcherOf(kc)).to.not.equal(a);
  });
});
