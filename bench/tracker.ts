import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { Informer } from '../lib/kube/informer.ts';
import { createLogger } from '../lib/log.ts';
import { now } from './stats.ts';

export interface StsRecord {
  t: number;
  name: string;
  generation: number;
  observedGeneration: number | undefined;
  partition: number | undefined;
  currentRevision: string | undefined;
  updateRevision: string | undefined;
  updatedReplicas: number;
  readyReplicas: number;
}

export interface PodRecord {
  t: number;
  name: string;
  owner: string;
  ordinal: number;
  uid: string;
  revision: string | undefined;
  ready: boolean;
  terminating: boolean;
  deleted: boolean;
}

export const isReady = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
export const partitionOf = (s: V1StatefulSet): number | undefined => s.spec?.updateStrategy?.rollingUpdate?.partition;

/**
 * Watches the StatefulSets and pods of one namespace from the bench process and
 * time-stamps every event as it arrives: the "as seen by a watch" clock of every
 * latency in the report.
 */
export class Tracker {
  readonly sts: StsRecord[] = [];
  readonly pods: PodRecord[] = [];
  private readonly stsInformer: Informer<V1StatefulSet>;
  private readonly podInformer: Informer<V1Pod>;
  private readonly waiters = new Set<() => void>();
  readonly namespace: string;

  constructor(kc: KubeConfig, namespace: string) {
    this.namespace = namespace;
    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const log = createLogger({ level: 'warn', name: 'bench-tracker' });
    this.stsInformer = new Informer<V1StatefulSet>({
      kc,
      path: `/apis/apps/v1/namespaces/${namespace}/statefulsets`,
      log,
      listPage: (token) => apps.listNamespacedStatefulSet({ namespace, limit: 500, _continue: token }),
      onChange: (s, verb) => {
        if (verb === 'delete') return;
        this.sts.push({
          t: now(),
          name: s.metadata?.name ?? '',
          generation: s.metadata?.generation ?? 0,
          observedGeneration: s.status?.observedGeneration,
          partition: partitionOf(s),
          currentRevision: s.status?.currentRevision,
          updateRevision: s.status?.updateRevision,
          updatedReplicas: s.status?.updatedReplicas ?? 0,
          readyReplicas: s.status?.readyReplicas ?? 0,
        });
        this.wake();
      },
    });
    this.podInformer = new Informer<V1Pod>({
      kc,
      path: `/api/v1/namespaces/${namespace}/pods`,
      log,
      listPage: (token) => core.listNamespacedPod({ namespace, limit: 500, _continue: token }),
      onChange: (p, verb) => {
        const owner = p.metadata?.ownerReferences?.find((r) => r.controller)?.name ?? '';
        const name = p.metadata?.name ?? '';
        this.pods.push({
          t: now(),
          name,
          owner,
          ordinal: Number(name.slice(owner.length + 1)),
          uid: p.metadata?.uid ?? '',
          revision: p.metadata?.labels?.['controller-revision-hash'],
          ready: isReady(p),
          terminating: !!p.metadata?.deletionTimestamp,
          deleted: verb === 'delete',
        });
        this.wake();
      },
    });
  }

  async start(): Promise<this> {
    await Promise.all([this.stsInformer.start(), this.podInformer.start()]);
    return this;
  }

  async stop(): Promise<void> {
    await Promise.all([this.stsInformer.stop(), this.podInformer.stop()]);
    for (const w of this.waiters) w();
  }

  statefulSet(name: string): V1StatefulSet | undefined {
    return this.stsInformer.get(name, this.namespace);
  }

  podsOf(name: string): V1Pod[] {
    return this.podInformer
      .list(this.namespace)
      .filter((p) => p.metadata?.ownerReferences?.some((r) => r.controller && r.name === name));
  }

  /**
   * Resolves with the arrival time of the watch event after which `done()` first
   * holds (now, if it holds already).
   */
  waitFor(what: string, timeoutMs: number, done: () => boolean): Promise<number> {
    if (done()) return Promise.resolve(now());
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(now());
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/** Every pod of the StatefulSet exists, runs its update revision and is Ready; its status agrees. */
export function rolledOut(t: Tracker, name: string, opts: { generation: number; partition?: number }): boolean {
  const s = t.statefulSet(name);
  const n = s?.spec?.replicas ?? 0;
  const st = s?.status;
  if (!s || !st || (st.observedGeneration ?? 0) < opts.generation) return false;
  if (!st.updateRevision || st.currentRevision !== st.updateRevision) return false;
  if (st.updatedReplicas !== n || st.readyReplicas !== n) return false;
  if (opts.partition !== undefined && partitionOf(s) !== opts.partition) return false;
  const pods = t.podsOf(name).filter((p) => !p.metadata?.deletionTimestamp);
  return pods.length === n && pods.every((p) => isReady(p) && p.metadata?.labels?.['controller-revision-hash'] === st.updateRevision);
}
