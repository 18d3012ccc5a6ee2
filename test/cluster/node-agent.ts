import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { describeError, statusCode } from '../../lib/errors.ts';
import { Informer } from '../../lib/kube/informer.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { WorkQueue } from '../../lib/workqueue.ts';

/**
 * Plays kubelet (and scheduler) for the test control plane: binds pods to one
 * Node, makes them Running and Ready after a delay, finishes their deletion,
 * and lets a test hold a pod unready or crash it; an image tagged `:broken`
 * (a broken release) crash-loops and never becomes Ready. With a `runtime`, each pod is
 * backed by a real process (an Elasticsearch node, say).
 */
export interface PodRuntime {
  /** Start what backs the pod; resolves once it is up. */
  start(pod: V1Pod): Promise<void>;
  /** Stop it (the pod is being deleted). */
  stop(pod: V1Pod): Promise<void>;
  /** Application readiness, polled while the pod runs. */
  ready?(pod: V1Pod): Promise<boolean>;
  /** The pod's IP, when the runtime gives each pod its own loopback address; default 127.0.0.1. */
  podIP?(pod: V1Pod): string | undefined;
}

export interface NodeAgentOptions {
  kc: KubeConfig;
  nodeName?: string;
  /** From binding to Running and Ready. */
  readyDelayMs?: number;
  /** From deletionTimestamp to gone (graceful termination). */
  terminationDelayMs?: number;
  /**
   * Count terminationDelayMs from when this agent first saw the deletion, not from
   * the deletionTimestamp: that has one-second resolution, so the delay would vary
   * between 0 and terminationDelayMs (noise a benchmark cannot have). Default false.
   */
  terminationFromObserved?: boolean;
  /** Pods of these namespaces only; default: every namespace but kube-*. */
  namespaces?: string[];
  runtime?: PodRuntime;
  log?: Logger;
  /** Pods synced in parallel (API requests in flight); default 8. */
  workers?: number;
}

interface Local {
  uid: string;
  boundAt: number;
  started: boolean;
  restarts: number;
  heldUnready: boolean;
  /** Until when a crashed pod stays unready. */
  downUntil: number;
}

const key = (ns: string, name: string): string => `${ns}/${name}`;

export class NodeAgent {
  readonly nodeName: string;
  private readonly core: CoreV1Api;
  private readonly pods: Informer<V1Pod>;
  private readonly queue: WorkQueue;
  private readonly local = new Map<string, Local>();
  /** When this agent first saw each deleting pod (by uid), for terminationFromObserved. */
  private readonly deletionSeen = new Map<string, number>();
  private readonly o: NodeAgentOptions;
  private readonly log: Logger;
  private poll: NodeJS.Timeout | undefined;
  /** Namespaces another agent runs (see ignoreNamespace). */
  private readonly ignored = new Set<string>();

  constructor(o: NodeAgentOptions) {
    this.o = o;
    this.nodeName = o.nodeName ?? 'sts-pilot-test-node';
    this.log = o.log ?? createLogger({ level: 'warn', name: 'node-agent' });
    this.core = o.kc.makeApiClient(CoreV1Api);
    this.queue = new WorkQueue({
      workers: o.workers ?? 8,
      baseDelayMs: 100,
      maxDelayMs: 2000,
      handler: (k) => this.sync(k),
      onError: (k, err) => this.log.warn({ pod: k, err: describeError(err) }, 'node agent sync failed'),
    });
    this.pods = new Informer<V1Pod>({
      kc: o.kc,
      path: '/api/v1/pods',
      log: this.log,
      listPage: (token) => this.core.listPodForAllNamespaces({ limit: 500, _continue: token }),
      onChange: (pod) => {
        const ns = pod.metadata?.namespace ?? '';
        if (this.mine(ns)) this.queue.add(key(ns, pod.metadata?.name ?? ''));
      },
    });
  }

  async start(): Promise<void> {
    try {
      await this.core.createNode({ body: { metadata: { name: this.nodeName, labels: { 'kubernetes.io/hostname': this.nodeName } } } });
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
    await this.core.patchNodeStatus(
      {
        name: this.nodeName,
        body: {
          status: {
            conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'sts-pilot test node agent', lastHeartbeatTime: new Date(), lastTransitionTime: new Date() }],
            addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await this.pods.start();
    for (const p of this.pods.list()) {
      const ns = p.metadata?.namespace ?? '';
      if (this.mine(ns)) this.queue.add(key(ns, p.metadata?.name ?? ''));
    }
    // Application readiness can change without any pod event.
    if (this.o.runtime?.ready) {
      this.poll = setInterval(() => {
        for (const k of this.local.keys()) this.queue.add(k);
      }, 1000);
      this.poll.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    await this.queue.shutdown();
    await this.pods.stop();
    if (this.o.runtime) {
      for (const k of this.local.keys()) {
        const [ns, name] = k.split('/') as [string, string];
        const pod = this.pods.get(name, ns);
        if (pod) await this.o.runtime.stop(pod).catch(() => {});
      }
    }
  }

  /** Keep the pod unready (true) until released (false): a readiness probe failing. */
  holdUnready(ns: string, name: string, held: boolean): void {
    const l = this.local.get(key(ns, name));
    if (!l) throw new Error(`node agent does not run pod ${ns}/${name}`);
    l.heldUnready = held;
    this.queue.add(key(ns, name));
  }

  /** The container crashes: unready, restart count up, Ready again after readyDelayMs. */
  crash(ns: string, name: string): void {
    const l = this.local.get(key(ns, name));
    if (!l) throw new Error(`node agent does not run pod ${ns}/${name}`);
    l.restarts++;
    l.downUntil = Date.now() + (this.o.readyDelayMs ?? 0);
    this.queue.add(key(ns, name));
    if (this.o.readyDelayMs) this.queue.addAfter(key(ns, name), this.o.readyDelayMs + 10);
  }

  /** Leave the pods of this namespace alone from now on: a dedicated agent runs them. */
  ignoreNamespace(ns: string): void {
    this.ignored.add(ns);
  }

  private mine(ns: string): boolean {
    if (this.ignored.has(ns)) return false;
    return this.o.namespaces ? this.o.namespaces.includes(ns) : !ns.startsWith('kube-');
  }

  private async sync(k: string): Promise<void> {
    const [ns, name] = k.split('/') as [string, string];
    const pod = this.pods.get(name, ns);
    let l = this.local.get(k);
    if (!pod) {
      if (l) this.deletionSeen.delete(l.uid);
      this.local.delete(k);
      return;
    }
    const uid = pod.metadata?.uid ?? '';
    if (l && l.uid !== uid) {
      this.local.delete(k);
      l = undefined;
    }

    if (pod.metadata?.deletionTimestamp) return this.finishDeletion(pod, k);

    if (!pod.spec?.nodeName) {
      await this.core.createNamespacedPodBinding({
        name,
        namespace: ns,
        body: { metadata: { name, namespace: ns }, target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName } },
      });
      return;
    }
    if (pod.spec.nodeName !== this.nodeName) return;

    if (!l) {
      l = { uid, boundAt: Date.now(), started: false, restarts: 0, heldUnready: false, downUntil: 0 };
      this.local.set(k, l);
    }
    const wait = l.boundAt + (this.o.readyDelayMs ?? 0) - Date.now();
    if (wait > 0) {
      this.queue.addAfter(k, wait);
      return;
    }
    if (!l.started) {
      if (this.o.runtime) await this.o.runtime.start(pod);
      l.started = true;
    }
    // A broken release: an image whose tag says so never becomes Ready (it crash-loops).
    const broken = (pod.spec?.containers ?? []).some((c) => /:broken\b/.test(c.image ?? ''));
    if (broken && Date.now() >= l.downUntil) {
      // kubelet's crash-loop backoff starts at 10 s; restarts are rarely faster than this.
      l.restarts++;
      l.downUntil = Date.now() + 5000;
      this.queue.addAfter(k, 5000);
    }
    let ready = !broken && !l.heldUnready && Date.now() >= l.downUntil;
    if (ready && this.o.runtime?.ready) ready = await this.o.runtime.ready(pod).catch(() => false);
    await this.writeStatus(pod, l, ready);
  }

  private async writeStatus(pod: V1Pod, l: Local, ready: boolean): Promise<void> {
    const cur = pod.status;
    const curReady = cur?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    const curRestarts = cur?.containerStatuses?.[0]?.restartCount ?? 0;
    if (cur?.phase === 'Running' && curReady === ready && curRestarts === l.restarts) return;
    const now = new Date();
    const status = ready ? 'True' : 'False';
    const prevReadyCond = cur?.conditions?.find((c) => c.type === 'Ready');
    const transition = prevReadyCond && prevReadyCond.status === status ? prevReadyCond.lastTransitionTime : now;
    const started = cur?.startTime ?? now;
    const containers = pod.spec?.containers ?? [];
    const ip = this.o.runtime?.podIP?.(pod) ?? '127.0.0.1';
    await this.core.patchNamespacedPodStatus(
      {
        name: pod.metadata?.name ?? '',
        namespace: pod.metadata?.namespace ?? '',
        body: {
          metadata: { resourceVersion: pod.metadata?.resourceVersion },
          status: {
            phase: 'Running',
            hostIP: '127.0.0.1',
            podIP: ip,
            podIPs: [{ ip }],
            startTime: started,
            conditions: [
              { type: 'PodScheduled', status: 'True', lastTransitionTime: started },
              { type: 'Initialized', status: 'True', lastTransitionTime: started },
              { type: 'ContainersReady', status, lastTransitionTime: transition },
              { type: 'Ready', status, lastTransitionTime: transition },
            ],
            containerStatuses: containers.map((c) => ({
              name: c.name,
              image: c.image ?? '',
              imageID: '',
              ready,
              started: true,
              restartCount: l.restarts,
              state: { running: { startedAt: started } },
            })),
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  private async finishDeletion(pod: V1Pod, k: string): Promise<void> {
    const since = new Date(pod.metadata?.deletionTimestamp as unknown as string | Date).getTime();
    const grace = Math.min(this.o.terminationDelayMs ?? 0, (pod.metadata?.deletionGracePeriodSeconds ?? 30) * 1000);
    // deletionTimestamp is when grace ends; the deletion began that long before it.
    let began = since - (pod.metadata?.deletionGracePeriodSeconds ?? 0) * 1000;
    if (this.o.terminationFromObserved) {
      const uid = pod.metadata?.uid ?? '';
      if (!this.deletionSeen.has(uid)) this.deletionSeen.set(uid, Date.now());
      began = this.deletionSeen.get(uid) as number;
    }
    const wait = began + grace - Date.now();
    if (wait > 0) {
      this.queue.addAfter(k, wait);
      return;
    }
    if (this.o.runtime && this.local.get(k)?.started) await this.o.runtime.stop(pod);
    this.local.delete(k);
    this.deletionSeen.delete(pod.metadata?.uid ?? '');
    try {
      await this.core.deleteNamespacedPod({
        name: pod.metadata?.name ?? '',
        namespace: pod.metadata?.namespace ?? '',
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid } },
      });
    } catch (err) {
      if (statusCode(err) !== 404 && statusCode(err) !== 409) throw err;
    }
  }
}
