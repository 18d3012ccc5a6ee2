// An independent count of the Elasticsearch/OpenSearch nodes of StatefulSets
// that are away, for tests of the disruption budget: it reads the StatefulSets,
// their pods and the cluster's own member list (`_cat/nodes`) with plain calls,
// never the controller's caches or code.
//
// A node is away when
// - its pod was approved but is not back: the partition is at or below its
//   ordinal and the pod is not Ready at the update revision;
// - its pod is missing, terminating or not Ready;
// - the cluster does not list it.
//
// One sample reads `_cat/nodes`, then the StatefulSets, then the pods, then
// `_cat/nodes` again, and judges every node at the moment the pods were listed:
// a pod-based verdict holds then; an approval read before it whose pod is not
// back by then holds then too; a node counts as absent only when both member
// reads miss it (it cannot leave and come back inside one sample without a new
// approval). So two nodes counted in one sample were away at the same instant.

import type { CoreV1Api, AppsV1Api, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { esCall } from './es-cluster.ts';

const ready = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

/** The pure part: which nodes are away in one sample, each with why. Node names are pod names. */
export function awayOf(sets: readonly V1StatefulSet[], pods: readonly V1Pod[], members: readonly (ReadonlySet<string> | undefined)[]): Map<string, string> {
  const out = new Map<string, string>();
  const known = members.filter((m): m is ReadonlySet<string> => m !== undefined);
  for (const s of sets) {
    const name = s.metadata?.name ?? '';
    const replicas = s.spec?.replicas ?? 1;
    const start = s.spec?.ordinals?.start ?? 0;
    const partition = s.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
    const update = s.status?.updateRevision;
    for (let i = 0; i < replicas; i++) {
      const podName = `${name}-${start + i}`;
      const pod = pods.find((p) => p.metadata?.name === podName);
      const rev = pod?.metadata?.labels?.['controller-revision-hash'];
      if (!pod) out.set(podName, 'no pod');
      else if (pod.metadata?.deletionTimestamp) out.set(podName, 'pod terminating');
      else if (!ready(pod)) out.set(podName, `pod not Ready (revision ${rev ?? '?'})`);
      else if (i >= partition && update !== undefined && rev !== update) out.set(podName, `approved (partition ${partition}), not yet at ${update}`);
      else if (known.length === 2 && known.every((m) => !m.has(podName))) out.set(podName, 'not in _cat/nodes');
    }
  }
  return out;
}

export interface AwayWatchOptions {
  core: CoreV1Api;
  apps: AppsV1Api;
  namespace: string;
  statefulSets: string[];
  /** The cluster through the Service (any running node answers). */
  url: string;
  intervalMs?: number;
}

export class AwayWatch {
  /** The largest number of nodes away at once. */
  most = 0;
  samples = 0;
  /** Samples where the cluster did not answer `_cat/nodes` (judged from the pods alone). */
  blindSamples = 0;
  /** Every node ever seen away: proves the watch sees what it counts. */
  readonly everAway = new Set<string>();
  /** Each sample with more than one away, with why. */
  readonly overlaps: string[] = [];
  /** The last sample's nodes away. */
  now = new Map<string, string>();
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private readonly o: AwayWatchOptions;

  constructor(o: AwayWatchOptions) {
    this.o = o;
  }

  start(): this {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          await this.sample();
        } catch {
          /* the API server busy: the next sample */
        }
        await sleep(this.o.intervalMs ?? 250);
      }
    })();
    return this;
  }

  /** Resets the counts (keeps watching): one figure per rollout. */
  reset(): void {
    this.most = 0;
    this.samples = 0;
    this.blindSamples = 0;
    this.everAway.clear();
    this.overlaps.length = 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async members(): Promise<Set<string> | undefined> {
    try {
      const r = await esCall<{ name: string }[]>(this.o.url, 'GET', '/_cat/nodes?format=json&h=name', undefined, 2000);
      return r.status === 200 ? new Set(r.body.map((n) => n.name)) : undefined;
    } catch {
      return undefined;
    }
  }

  private async sample(): Promise<void> {
    const { core, apps, namespace } = this.o;
    const before = await this.members();
    const sets = await Promise.all(this.o.statefulSets.map((name) => apps.readNamespacedStatefulSet({ name, namespace })));
    const pods = (await core.listNamespacedPod({ namespace })).items;
    const after = await this.members();
    const away = awayOf(sets, pods, [before, after]);
    this.samples++;
    if (!before || !after) this.blindSamples++;
    this.now = away;
    for (const n of away.keys()) this.everAway.add(n);
    if (away.size > this.most) this.most = away.size;
    if (away.size > 1) this.overlaps.push(`${new Date().toISOString()}: ${[...away].map(([n, why]) => `${n} (${why})`).join(', ')}`);
  }
}
