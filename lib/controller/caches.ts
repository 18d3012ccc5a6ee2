import type { KubeConfig, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { Informer } from '../kube/informer.ts';
import { OwnerIndex } from '../kube/owner-index.ts';
import { type Logger, traceNow } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { REVISION_LABEL } from '../names.ts';
import { projectPod, projectStatefulSet } from './projection.ts';

export interface CachesOptions {
  kc: KubeConfig;
  log: Logger;
  metrics: Metrics;
  labelKey: string;
  /** One namespace; all when undefined. */
  namespace: string | undefined;
  /** A subscribed StatefulSet changed (or one of its pods did): queue it. Synchronous: no work here. */
  onStatefulSet: (namespace: string, name: string, verb: 'add' | 'update' | 'delete') => void;
}

/**
 * What the controller knows of the cluster: the subscribed StatefulSets (the
 * label selects them) and the pods a StatefulSet controller made (they carry the
 * revision label), each an informer with its own list and watch, and the pods
 * indexed by their owner. Each object is kept projected to what the controller
 * reads (projection.ts); hooks get full objects, read when they are called.
 * Read-only for everyone but the watches.
 */
export class Caches {
  private readonly statefulSets: Informer<V1StatefulSet>;
  private readonly pods: Informer<V1Pod>;
  private readonly podsByOwner = new OwnerIndex<V1Pod>();
  private synced = false;

  constructor(o: CachesOptions) {
    const { kc, log, metrics, labelKey, namespace } = o;
    this.statefulSets = new Informer<V1StatefulSet>({
      kc,
      path: namespace ? `/apis/apps/v1/namespaces/${namespace}/statefulsets` : '/apis/apps/v1/statefulsets',
      labelSelector: labelKey,
      log,
      transform: projectStatefulSet,
      onChange: (sts, verb) => {
        const md = sts.metadata;
        // Before the first sync start() queues everything once; a delete is always news.
        if (md?.name && md.namespace && (this.synced || verb === 'delete')) o.onStatefulSet(md.namespace, md.name, verb);
      },
      onRestart: () => metrics.watchRestarts.inc({ resource: 'statefulsets' }),
    });
    this.pods = new Informer<V1Pod>({
      kc,
      path: namespace ? `/api/v1/namespaces/${namespace}/pods` : '/api/v1/pods',
      labelSelector: REVISION_LABEL,
      log,
      transform: projectPod,
      onChange: (pod, verb) => {
        this.podsByOwner.onChange(pod, verb);
        if (!this.synced) return;
        const owner = pod.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'StatefulSet');
        const ns = pod.metadata?.namespace;
        if (owner && ns && this.statefulSets.get(owner.name, ns)) {
          log.debug({ mark: 'pod', pod: pod.metadata?.name, t: traceNow() }, 'trace');
          o.onStatefulSet(ns, owner.name, 'update');
        }
      },
      onRestart: () => metrics.watchRestarts.inc({ resource: 'pods' }),
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.statefulSets.start(), this.pods.start()]);
    this.synced = true;
  }

  async stop(): Promise<void> {
    await Promise.all([this.statefulSets.stop(), this.pods.stop()]);
  }

  /** Synced once, and both watches working now. */
  get ready(): boolean {
    return this.synced && this.statefulSets.healthy && this.pods.healthy;
  }

  /** Synced once (events may be queued). */
  get started(): boolean {
    return this.synced;
  }

  statefulSet(namespace: string, name: string): V1StatefulSet | undefined {
    return this.statefulSets.get(name, namespace);
  }

  allStatefulSets(): readonly V1StatefulSet[] {
    return this.statefulSets.list();
  }

  /** The pods this StatefulSet controls (by owner uid; the namespace check only guards against a forged reference). */
  podsOf(sts: V1StatefulSet): V1Pod[] {
    return this.podsByOwner.of(sts.metadata?.uid).filter((p) => p.metadata?.namespace === sts.metadata?.namespace);
  }
}
