import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseProxy } from '../cluster/lease-proxy.ts';
import {
  type Cluster,
  ControllerProcess,
  createAndSettle,
  namespace,
  ownCluster,
  RecordingHook,
  setImage,
  statefulSet,
  stopOwnCluster,
  waitUntil,
} from './harness.ts';

const CONTROLLER_USER = 'system:serviceaccount:sts-pilot-system:sts-pilot-controller';
const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["${CONTROLLER_USER}"]
    verbs: [create, update, patch, delete]
  - level: None
`;
const LEASE = ['--lease-duration', '4', '--renew-deadline', '3'];

interface Write {
  /** µs since epoch, as kube-apiserver stamped it */
  received: number;
  completed: number;
  replica: string;
  verb: string;
  resource: string;
  namespace: string;
  name: string;
  code: number;
}

/** The controller's writes from kube-apiserver's audit log, each with the replica that sent it (its User-Agent). */
function writesOf(path: string): Write[] {
  const us = (t: string): number => {
    const m = /^(.*)\.(\d+)Z$/.exec(t);
    return m ? Date.parse(`${m[1]}Z`) * 1000 + Number((m[2] ?? '').padEnd(6, '0').slice(0, 6)) : Date.parse(t) * 1000;
  };
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.stage === 'ResponseComplete' && (e.user as { username?: string }).username === CONTROLLER_USER)
    .map((e) => {
      const ref = (e.objectRef ?? {}) as { resource?: string; subresource?: string; namespace?: string; name?: string };
      return {
        received: us(String(e.requestReceivedTimestamp)),
        completed: us(String(e.stageTimestamp)),
        replica: /\(([^)]+)\)$/.exec(String(e.userAgent ?? ''))?.[1] ?? '?',
        verb: String(e.verb),
        resource: ref.subresource ? `${ref.resource}/${ref.subresource}` : (ref.resource ?? ''),
        namespace: ref.namespace ?? '',
        name: ref.name ?? '',
        code: (e.responseStatus as { code?: number } | undefined)?.code ?? 0,
      };
    });
}

/**
 * Every write a replica made to a StatefulSet or a pod, whose Lease holder at
 * that moment (the last successful Lease write before it reached the API
 * server) was another replica: two leaders acting at once.
 */
function overlaps(writes: Write[], ns: string): string[] {
  // Each suite's controllers watch one namespace and hold the Lease named after it.
  const leaseWrites = writes.filter((w) => w.resource === 'leases' && w.name === ns && w.code >= 200 && w.code < 300).sort((a, b) => a.completed - b.completed);
  const acts = writes.filter((w) => w.namespace === ns && (w.resource === 'statefulsets' || w.resource === 'pods') && w.code >= 200 && w.code < 300);
  const out: string[] = [];
  for (const w of acts) {
    const holder = leaseWrites.filter((l) => l.completed <= w.received).at(-1)?.replica;
    if (holder !== w.replica) out.push(`${w.replica} ${w.verb} ${w.resource}/${w.name} while ${holder ?? 'nobody'} held the Lease`);
  }
  return out;
}

/**
 * Leader election under faults a test can make on a real kube-apiserver: a
 * proxy in front of one replica delays or swallows its Lease requests, and its
 * wall clock is stepped. kube-apiserver's own audit log says who wrote what
 * when; no write may come from a replica that did not hold the Lease then.
 */
describe('leader election under faults, audited by kube-apiserver', function () {
  this.timeout(6 * 60_000);
  let c: Cluster;
  let hook: RecordingHook;
  const procs: ControllerProcess[] = [];
  let proxies: LeaseProxy[] = [];

  before(async function () {
    this.timeout(80 * 60_000);
    c = await ownCluster({ auditPolicy: POLICY });
    hook = await new RecordingHook().start();
  });
  after(async () => {
    for (const p of procs) await p.kill('SIGKILL');
    for (const p of proxies) p.stop();
    hook?.stop();
    await stopOwnCluster(c);
  });

  /** A kubeconfig for the controller's ServiceAccount that goes through `proxy`. */
  const throughProxy = (proxy: LeaseProxy): string => {
    const kc = new KubeConfig();
    kc.loadFromFile(c.controllerKubeconfigPath);
    const user = kc.getCurrentUser();
    const proxied = new KubeConfig();
    proxied.loadFromOptions({
      clusters: [{ name: 'proxied', server: proxy.url, skipTLSVerify: true }],
      users: [{ name: 'sa', token: user?.token }],
      contexts: [{ name: 'proxied', cluster: 'proxied', user: 'sa' }],
      currentContext: 'proxied',
    });
    const path = join(mkdtempSync(join(tmpdir(), 'sts-pilot-proxied-')), 'kubeconfig');
    writeFileSync(path, proxied.exportConfig(), { mode: 0o600 });
    return path;
  };

  /** Four StatefulSets rolling at once, so that a leader always has something to write. */
  async function busy(ns: string): Promise<void> {
    const withHook = { 'http.sts-pilot.io/url': hook.url };
    const names = ['a', 'b', 'c', 'd'];
    await Promise.all(names.map((n) => createAndSettle(c, ns, statefulSet(n, { replicas: 4, hook: 'http', annotations: withHook }))));
    await Promise.all(names.map((n) => setImage(c, ns, n, 'example/app:2')));
  }

  for (const scenario of [
    { name: 'the answer to a renewal held back past the lease duration', fault: { kind: 'delay-response', ms: 5000 } as const, clock: false },
    { name: 'renewals delayed past the renew deadline', fault: { kind: 'delay-request', ms: 4500 } as const, clock: false },
    { name: 'renewals swallowed while the wall clock steps back an hour', fault: { kind: 'drop' } as const, clock: true },
  ]) {
    it(`${scenario.name}: the leader steps down before anyone else may act; no overlapping write`, async () => {
      const ns = await namespace(c, 'lease-fault');
      const proxy = await new LeaseProxy(c.cp?.server ?? '').start();
      proxies.push(proxy);
      const clock = scenario.clock
        ? { nodeArgs: ['--import', './test/cluster/step-clock.ts'], env: { STS_PILOT_STEP_CLOCK_AFTER_MS: '4000', STS_PILOT_STEP_CLOCK_BY_MS: String(-3_600_000) } }
        : {};
      const aStarted = Date.now();
      const a = await ControllerProcess.start(c, ['--namespace', ns, ...LEASE], `${ns}-a`, { kubeconfigPath: throughProxy(proxy), ...clock });
      procs.push(a);
      await waitUntil('a leads', 30_000, async () => a.logs.some((l) => l.msg === 'became leader'));
      const b = await ControllerProcess.start(c, ['--namespace', ns, ...LEASE], `${ns}-b`);
      procs.push(b);
      await busy(ns);
      await waitUntil('steps under way', 60_000, async () => hook.approvals().filter((x) => x.sts.startsWith(`${ns}/`)).length >= 3);
      // The stepped replica's wall clock jumps 4 s after it started: wait past that.
      if (scenario.clock) await waitUntil('the wall clock of a stepped', 20_000, async () => Date.now() - aStarted > 5000);
      proxy.fault = scenario.fault;
      await waitUntil('b leads', 60_000, async () => b.logs.some((l) => l.msg === 'became leader'));
      await waitUntil('a gone', 30_000, async () => !a.alive);
      const stepped = a.logs.find((l) => l.msg === 'stopped leading' || String(l.msg).startsWith('could not renew the lease'));
      expect(stepped, 'a says it stopped leading').to.not.equal(undefined);
      // Let b act for a while as the only leader.
      await waitUntil('b steps', 60_000, async () => b.logs.some((l) => /hook approved pod/.test(String(l.msg))));
      const writes = writesOf(c.cp?.auditLogPath ?? '');
      const byA = writes.filter((w) => w.replica === a.identity && w.namespace === ns).length;
      const byB = writes.filter((w) => w.replica === b.identity && w.namespace === ns).length;
      console.log(`      writes: ${byA} by the first leader, ${byB} by the second; Lease requests through the proxy: ${proxy.leaseRequests.length}`);
      expect(byA, 'the first leader wrote').to.be.greaterThan(0);
      expect(byB, 'the second leader wrote').to.be.greaterThan(0);
      expect(overlaps(writes, ns)).to.deep.equal([]);
      await b.kill('SIGTERM');
      proxy.stop();
    });
  }
});
