import { expect } from 'chai';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  namespace,
  readSts,
  serviceAccountKubeconfig,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

/**
 * The controller's token revoked while it runs (its bound Secret deleted): the
 * open watches keep streaming until they reconnect, and then every request is
 * 401. The process must neither die of it (an unhandled rejection) nor go on
 * silently as if nothing happened: it logs each failed reconnect, /readyz turns
 * 503 so the Deployment's probe shows it, and it still stops cleanly.
 */
describe('a revoked token: the controller says so and keeps running', function () {
  this.timeout(4 * 60_000);
  let c: Cluster;
  let ns: string;
  let ctrl: ControllerProcess;
  const secret = `revoke-${process.pid}`;

  before(async () => {
    c = await cluster();
    ns = await namespace(c, 'revoke');
    const s = await c.core.createNamespacedSecret({ namespace: 'sts-pilot-system', body: { metadata: { name: secret } } });
    const kubeconfigPath = await serviceAccountKubeconfig(c.kc, c.core, 'sts-pilot-system', 'sts-pilot-controller', {
      kind: 'Secret',
      name: secret,
      uid: s.metadata?.uid ?? '',
    });
    ctrl = await ControllerProcess.start(c, ['--namespace', ns, '--no-leader-elect'], undefined, { kubeconfigPath });
    await createAndSettle(c, ns, statefulSet('r', { replicas: 3, hook: 'noop' }));
  });
  after(async () => {
    await ctrl?.kill('SIGKILL');
  });

  it('logs the 401 of every reconnect, turns /readyz 503, holds the rollout, and stops on SIGTERM', async () => {
    const readyz = async (): Promise<number> => (await fetch(`http://127.0.0.1:${ctrl.probePort}/readyz`)).status;
    expect(await readyz()).to.equal(200);
    const revokedAt = Date.now();
    await c.core.deleteNamespacedSecret({ namespace: 'sts-pilot-system', name: secret });
    // A change the controller can no longer act on: its partition must stay held.
    await setImage(c, ns, 'r', 'example/app:2');
    // client-node ends a watch after 30 s without data; the reconnect is refused.
    const failed = await waitUntil('a logged 401 on reconnect', 150_000, async () =>
      ctrl.logs.find((l) => l.msg === 'list/watch failed; retrying' && /401|Unauthorized/i.test(JSON.stringify(l.err))),
    );
    const seconds = ((new Date(String(failed.time)).getTime() - revokedAt) / 1000).toFixed(1);
    console.log(`      first refused reconnect logged ${seconds}s after the revocation: ${JSON.stringify(failed.err).slice(0, 120)}`);
    await waitUntil('/readyz 503', 30_000, async () => (await readyz()) === 503);
    expect(ctrl.alive, 'the process is still running').to.equal(true);
    expect(await ctrl.metrics()).to.match(/^sts_pilot_watch_restarts_total(\{[^}]*\})? [1-9]/m);
    const sts = await readSts(c, ns, 'r');
    expect(sts.spec?.updateStrategy?.rollingUpdate?.partition, 'the partition is still held').to.equal(3);
    expect(ctrl.logs.filter((l) => /unhandled|uncaught/i.test(String(l.msg))), 'no unhandled errors').to.deep.equal([]);
    // It keeps trying (backoff), and still answers a stop.
    const tries = ctrl.logs.filter((l) => l.msg === 'list/watch failed; retrying').length;
    await waitUntil('another logged retry', 60_000, async () => ctrl.logs.filter((l) => l.msg === 'list/watch failed; retrying').length > tries);
    const stopping = Date.now();
    await ctrl.kill('SIGTERM');
    console.log(`      stopped ${Date.now() - stopping} ms after SIGTERM, exit code ${ctrl.exitCode}`);
    expect(ctrl.exitCode).to.equal(0);
  });
});
