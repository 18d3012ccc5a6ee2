import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { hooks } from '../../hooks/index.ts';
import { freePort } from '../cluster/controlplane.ts';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  eventsFor,
  namespace,
  RecordingHook,
  setImage,
  statefulSet,
  waitUntil,
} from '../integration/harness.ts';

/**
 * Credentials planted where people put them (a hook URL's userinfo, a token in
 * its query, a Secret a hook reads) must never come out in the controller's
 * logs, in Events, in the status annotation or in /metrics: those are read by
 * far more people and systems than the StatefulSet's annotations or Secrets.
 */
describe('secrets never appear in logs, Events, status or metrics', function () {
  this.timeout(3 * 60_000);
  let c: Cluster;
  let ns: string;
  let hook: RecordingHook;
  let ctrl: ControllerProcess;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    ns = await namespace(c, 'secrets');
    hook = await new RecordingHook().start();
    ctrl = await ControllerProcess.start(c, ['--namespace', ns], 'secrets-controller');
  });

  after(async () => {
    await ctrl?.kill('SIGKILL');
    hook?.stop();
  });

  it('a planted password (URL userinfo, URL query token, a Secret) is in no log line, Event, status annotation or metric', async () => {
    const password = `PLANTED-PASSWORD-${randomBytes(6).toString('hex')}`;
    const token = `PLANTED-TOKEN-${randomBytes(6).toString('hex')}`;
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'db-credentials', labels: { 'sts-pilot.io/credentials': 'true' } }, stringData: { username: 'elastic', password } } });
    const port = new URL(hook.url).port;
    const closed = await freePort();
    hook.decide = (call) => call.sts === `${ns}/leak-approved`;
    const cases: Record<string, Record<string, string>> = {
      // The hook answers 503: the reason quotes what it called.
      'leak-refused': { 'http.sts-pilot.io/url': `http://sts-user:${password}@127.0.0.1:${port}/hook` },
      // Nothing listens: the reason quotes what it could not reach.
      'leak-closed': { 'http.sts-pilot.io/url': `http://sts-user:${password}@127.0.0.1:${closed}/hook` },
      // A token in the query, as many webhook services take it.
      'leak-query': { 'http.sts-pilot.io/url': `http://127.0.0.1:${port}/hook?access_token=${token}` },
      // The hook approves: every step and the final call are logged and recorded.
      'leak-approved': { 'http.sts-pilot.io/url': `http://sts-user:${password}@127.0.0.1:${port}/hook` },
    };
    const labels: Record<string, string> = {};
    for (const name of Object.keys(cases)) labels[name] = 'http';
    if (hooks.has('elasticsearch')) {
      // The one hook that reads a Secret: credentials for a cluster that is not there.
      cases['leak-es'] = { 'elasticsearch.sts-pilot.io/url': `http://127.0.0.1:${closed}`, 'elasticsearch.sts-pilot.io/credentials-secret': 'db-credentials' };
      labels['leak-es'] = 'elasticsearch';
    } else {
      console.log('      (no hook reading a Secret is registered: the Secret is planted, unreferenced)');
    }
    await Promise.all(Object.entries(cases).map(([name, annotations]) => createAndSettle(c, ns, statefulSet(name, { replicas: 2, hook: labels[name], annotations }))));
    await Promise.all(Object.keys(cases).map((name) => setImage(c, ns, name, 'example/app:2')));
    // Every StatefulSet has been dealt with: held with a reason, or rolled to the end.
    for (const name of Object.keys(cases)) {
      await waitUntil(`${name}: a Held, HookHeld or RolloutFinished Event`, 90_000, async () =>
        (await eventsFor(c, ns, name)).some((e) => ['Held', 'HookHeld', 'RolloutFinished'].includes(e.reason)),
      );
    }
    // A few retries more, so that what is repeated is repeated.
    await new Promise((r) => setTimeout(r, 3000));

    const planted = [password, token];
    const found = (text: string): boolean => planted.some((p) => text.includes(p));
    const where: string[] = [];
    const logLines = ctrl.logs.map((l) => JSON.stringify(l)).filter(found);
    if (logLines.length) where.push(`${logLines.length} log lines, e.g. ${logLines[0]?.slice(0, 400)}`);
    const events = (await c.core.listNamespacedEvent({ namespace: ns })).items.filter((e) => found(JSON.stringify(e)));
    if (events.length) where.push(`${events.length} Events, e.g. ${events[0]?.reason}: ${events[0]?.message?.slice(0, 300)}`);
    const statuses = (await c.apps.listNamespacedStatefulSet({ namespace: ns })).items
      .map((s) => `${s.metadata?.name}: ${s.metadata?.annotations?.['sts-pilot.io/status'] ?? ''}`)
      .filter(found);
    if (statuses.length) where.push(`${statuses.length} status annotations, e.g. ${statuses[0]?.slice(0, 300)}`);
    const metrics = (await ctrl.metrics()).split('\n').filter(found);
    if (metrics.length) where.push(`${metrics.length} metric lines, e.g. ${metrics[0]}`);
    console.log(`      searched ${ctrl.logs.length} log lines, the namespace's Events, ${Object.keys(cases).length} status annotations and /metrics`);
    expect(where, 'where the planted secrets were found').to.deep.equal([]);
  });
});
