import { AppsV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Cluster,
  cluster,
  ControllerProcess,
  createAndSettle,
  eventsFor,
  mergePatch,
  namespace,
  partitionOf,
  readSts,
  serviceAccountKubeconfig,
  setImage,
  statefulSet,
  waitUntil,
} from './harness.ts';

/**
 * Issue 24, "no confused deputy": someone who may patch StatefulSets but may
 * not read Secrets points the elasticsearch hook at their own server and names
 * a Secret in credentials-secret. The controller must not read it with its own
 * rights and send it there: only Secrets the installer labelled
 * sts-pilot.io/credentials=true are given to hooks. The whole thing runs as a
 * real ServiceAccount with real RBAC against the real API server and controller.
 */
describe('no confused deputy: a StatefulSet editor cannot make the controller send a Secret it may not read', function () {
  this.timeout(4 * 60_000);
  let c: Cluster;
  let ns: string;
  let ctrl: ControllerProcess | undefined;
  let server: Server | undefined;
  let editor: Cluster;
  const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
  const adminPassword = `ADMIN-PASSWORD-${randomBytes(6).toString('hex')}`;
  const hookPassword = `HOOK-PASSWORD-${randomBytes(6).toString('hex')}`;
  const planted = `PLANTED-${randomBytes(6).toString('hex')}`;

  before(async function () {
    this.timeout(80 * 60_000);
    c = await cluster();
    ns = await namespace(c, 'deputy');
    // The editor: StatefulSets yes, Secrets no.
    await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'editor' } } });
    const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns,
      body: { metadata: { name: 'sts-editor' }, rules: [{ apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get', 'list', 'watch', 'patch', 'update'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'sts-editor' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sts-editor' },
        subjects: [{ kind: 'ServiceAccount', name: 'editor', namespace: ns }],
      },
    });
    const kc = new KubeConfig();
    kc.loadFromFile(await serviceAccountKubeconfig(c.kc, c.core, ns, 'editor'));
    editor = { ...c, kc, apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api) };
    // The installer's Secrets: one for the database admin (not for hooks), one allowed to hooks.
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'db-admin' }, stringData: { username: 'postgres', password: adminPassword } } });
    await c.core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'es-creds', labels: { 'sts-pilot.io/credentials': 'true' } }, stringData: { username: 'sts-pilot', password: hookPassword } },
    });
    // The editor's own server: records what it is sent, answers like a broken Elasticsearch
    // whose error reason carries terminal escapes, a URL with credentials and a lot of text.
    server = createServer((req, res) => {
      seen.push({ path: req.url ?? '', headers: req.headers });
      const reason = `boom\u001b[2J\u0007 see http://admin:${planted}@db.internal/ ${'x'.repeat(5000)}`;
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { type: 'exception', reason } }));
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    ctrl = await ControllerProcess.start(c, ['--namespace', ns], 'deputy-controller');
  });

  after(async () => {
    await ctrl?.kill('SIGKILL');
    server?.close();
  });

  it('the editor may patch StatefulSets and may not read Secrets (the premise)', async () => {
    const err = await editor.core.readNamespacedSecret({ name: 'db-admin', namespace: ns }).catch((e: unknown) => e);
    expect((err as { code?: number }).code, 'reading a Secret as the editor').to.equal(403);
  });

  it('an unlabelled Secret named in credentials-secret: nothing reaches the editor\'s server, the rollout holds with how to allow it', async () => {
    // Created by someone trusted, pointing somewhere harmless (nothing listens).
    await createAndSettle(c, ns, statefulSet('es', { replicas: 2, hook: 'elasticsearch', annotations: { 'elasticsearch.sts-pilot.io/url': 'http://127.0.0.1:9', 'elasticsearch.sts-pilot.io/timeout': '3' } }));
    const port = (server?.address() as AddressInfo).port;
    // The editor's write: their server, the admin's Secret, and a new image.
    await mergePatch(editor, ns, 'es', { metadata: { annotations: { 'elasticsearch.sts-pilot.io/url': `http://127.0.0.1:${port}`, 'elasticsearch.sts-pilot.io/credentials-secret': 'db-admin' } } });
    await setImage(editor, ns, 'es', 'example/app:2');
    const held = await waitUntil('es held, naming the Secret it may not read', 90_000, async () =>
      (await eventsFor(c, ns, 'es')).find((e) => e.reason === 'HookHeld' && /Secret [\w-]+\/db-admin is not one hooks may read: only Secrets labelled sts-pilot\.io\/credentials=true are/.test(e.message)),
    );
    expect(held.message).to.include(`kubectl label secret -n ${ns} db-admin sts-pilot.io/credentials=true`);
    await waitUntil('the refusal in the controller log', 30_000, async () => ctrl?.logs.some((l) => l.msg === 'a hook named a Secret it may not read; refused' && l.secret === 'db-admin'));
    // Another retry or two: the answer stays the same.
    await new Promise((r) => setTimeout(r, 3000));
    expect(seen.filter((s) => s.headers.authorization !== undefined), 'requests with an Authorization header').to.deep.equal([]);
    expect(seen, 'requests of any kind: the Secret is refused before the first one').to.deep.equal([]);
    expect(partitionOf(await readSts(c, ns, 'es')), 'the partition').to.equal(2);
    const everywhere = JSON.stringify([...(await c.core.listNamespacedEvent({ namespace: ns })).items, ctrl?.logs, (await readSts(c, ns, 'es')).metadata?.annotations]);
    expect(everywhere.includes(adminPassword), 'the admin password anywhere').to.equal(false);
  });

  it('a labelled Secret: the hook uses it, and what the server answers reaches the Event as one short, clean line', async () => {
    await mergePatch(editor, ns, 'es', { metadata: { annotations: { 'elasticsearch.sts-pilot.io/credentials-secret': 'es-creds' } } });
    const expected = `Basic ${Buffer.from(`sts-pilot:${hookPassword}`).toString('base64')}`;
    await waitUntil('a request with the allowed credentials', 90_000, async () => seen.some((s) => s.headers.authorization === expected));
    expect(seen.map((s) => s.headers.authorization), 'only ever the allowed credentials').to.satisfy((a: unknown[]) => a.every((x) => x === expected));
    const held = await waitUntil('es held with the server\'s answer', 60_000, async () =>
      (await eventsFor(c, ns, 'es')).find((e) => e.reason === 'HookHeld' && /answered 500: exception: boom/.test(e.message)),
    );
    // eslint-disable-next-line no-control-regex
    expect(held.message, 'no control characters').to.not.match(/[\u0000-\u001f\u007f-\u009f]/);
    expect(held.message, 'no userinfo').to.not.include(planted);
    expect(held.message).to.include('http://***@db.internal/');
    expect(held.message.length, 'a short line').to.be.below(600);
    expect(partitionOf(await readSts(c, ns, 'es')), 'the partition').to.equal(2);
    // The whole answer is in the debug log, for whoever runs the controller.
    expect(ctrl?.logs.some((l) => typeof l.body === 'string' && l.body.includes('x'.repeat(5000))), 'the full body in the debug log').to.equal(true);
  });
});
