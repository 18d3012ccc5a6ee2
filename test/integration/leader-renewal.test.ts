import { CoordinationV1Api, KubeConfig, type RequestContext } from '@kubernetes/client-node';
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaderElector } from '../../lib/leader.ts';
import { createLogger } from '../../lib/log.ts';
import { type Cluster, cluster, namespace, waitUntil } from './harness.ts';

/** A KubeConfig that records the method of every Lease request it authenticates. */
class CountingKubeConfig extends KubeConfig {
  readonly calls: string[] = [];
  override async applySecurityAuthentication(ctx: RequestContext): Promise<void> {
    if (ctx.getUrl().includes('/leases')) this.calls.push(String(ctx.getHttpMethod()));
    return super.applySecurityAuthentication(ctx);
  }
}

/**
 * The leader renews from the Lease it wrote last (one PUT per renewal), reads
 * only when that PUT is refused, and then decides from what it read: here,
 * that someone else holds the Lease, so it stops leading.
 */
describe('leader election: renewals on a real kube-apiserver', function () {
  this.timeout(2 * 60_000);
  let c: Cluster;
  let ns: string;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    ns = await namespace(c, 'lease');
  });

  it('renews with one PUT each round, reads after a conflict, and steps down for another holder', async () => {
    const kc = new CountingKubeConfig();
    kc.loadFromString(c.kc.exportConfig());
    let leading = false;
    const elector = new LeaderElector({
      kc,
      namespace: ns,
      name: 'test-lease',
      identity: 'me',
      log: createLogger({ level: 'error', name: 'lease-test' }),
      leaseDurationMs: 4000,
      renewDeadlineMs: 3000,
      retryPeriodMs: 200,
      onStartedLeading: () => (leading = true),
      onStoppedLeading: () => (leading = false),
    });
    elector.start();
    try {
      await waitUntil('leading', 10_000, async () => leading);
      const from = kc.calls.length;
      await sleep(2000);
      const renewals = kc.calls.slice(from);
      expect(renewals.length, 'about one renewal per 200 ms').to.be.at.least(5);
      expect(renewals.every((m) => m === 'PUT'), `only PUTs while leading: ${renewals.join(' ')}`).to.equal(true);

      // Someone else takes the Lease (as a successor would after our expiry).
      const api = c.kc.makeApiClient(CoordinationV1Api);
      const lease = await api.readNamespacedLease({ name: 'test-lease', namespace: ns });
      lease.spec!.holderIdentity = 'someone-else';
      lease.spec!.renewTime = new Date().toISOString().replace(/Z$/, '000Z') as unknown as Date;
      lease.spec!.acquireTime = lease.spec!.renewTime;
      const mark = kc.calls.length;
      await api.replaceNamespacedLease({ name: 'test-lease', namespace: ns, body: lease }).catch(async (err: { code?: number }) => {
        if (err.code !== 409) throw err; // our renewal landed in between: try once more on the fresh one
        const again = await api.readNamespacedLease({ name: 'test-lease', namespace: ns });
        again.spec!.holderIdentity = 'someone-else';
        again.spec!.renewTime = lease.spec!.renewTime;
        again.spec!.acquireTime = lease.spec!.renewTime;
        await api.replaceNamespacedLease({ name: 'test-lease', namespace: ns, body: again });
      });
      await waitUntil('stepping down', 5000, async () => !leading);
      const after = kc.calls.slice(mark);
      expect(after, `a GET after the refused PUT: ${after.join(' ')}`).to.include('GET');
      expect((await api.readNamespacedLease({ name: 'test-lease', namespace: ns })).spec?.holderIdentity).to.equal('someone-else');
    } finally {
      await elector.stop();
    }
  });
});
