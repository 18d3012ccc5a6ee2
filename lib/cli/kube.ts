import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { statusCode } from '../errors.ts';
import { POLICY_ANNOTATIONS, REVISION_LABEL } from '../names.ts';
import { ownedPods, peersOf, type StatusItem } from './model.ts';

/** The namespace people mean when they give none: the kubeconfig context's, like kubectl. */
export function contextNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
}

/** A refusal or a not-found: said to the person as is, exit code 1, no stack. */
export class CliError extends Error {
  override name = 'CliError';
}

async function pages<T>(page: (token: string | undefined) => Promise<{ items: T[]; metadata?: { _continue?: string } }>): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  do {
    const r = await page(token);
    items.push(...r.items);
    token = r.metadata?._continue || undefined;
  } while (token);
  return items;
}

export interface ReadOptions {
  /** undefined: every namespace. */
  namespace: string | undefined;
  name: string | undefined;
  labelKey: string;
  hookProblem: (sts: V1StatefulSet) => string | undefined;
}

/**
 * What `status` draws: the StatefulSets carrying the label (or the one named, label
 * or not, so a person sees why it is not managed) and the pods they own. The same
 * selection as the controller's caches, read once.
 */
export async function readStatusItems(kc: KubeConfig, o: ReadOptions): Promise<StatusItem[]> {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  let sets: V1StatefulSet[];
  if (o.name && o.namespace) {
    sets = [await readStatefulSet(kc, o.namespace, o.name)];
  } else {
    const ns = o.namespace;
    sets = await pages((t) =>
      ns
        ? apps.listNamespacedStatefulSet({ namespace: ns, labelSelector: o.labelKey, limit: 500, _continue: t })
        : apps.listStatefulSetForAllNamespaces({ labelSelector: o.labelKey, limit: 500, _continue: t }),
    );
    if (o.name) sets = sets.filter((s) => s.metadata?.name === o.name);
  }
  if (sets.length === 0) return [];
  const podNs = o.namespace ?? (sets.length === 1 ? sets[0]?.metadata?.namespace : undefined);
  const pods: V1Pod[] = await pages((t) =>
    podNs
      ? core.listNamespacedPod({ namespace: podNs, labelSelector: REVISION_LABEL, limit: 500, _continue: t })
      : core.listPodForAllNamespaces({ labelSelector: REVISION_LABEL, limit: 500, _continue: t }),
  );
  const items: StatusItem[] = sets.map((sts) => ({ sts, pods: ownedPods(sts, pods), hookProblem: o.hookProblem(sts) }));
  // One StatefulSet that waits for others (sts-pilot.io/after): read them too, as the controller's caches hold them.
  const one = items[0];
  const ns = one?.sts.metadata?.namespace;
  if (o.name && items.length === 1 && one && ns && one.sts.metadata?.annotations?.[POLICY_ANNOTATIONS.after] !== undefined) {
    const all = await pages((t) => apps.listNamespacedStatefulSet({ namespace: ns, labelSelector: o.labelKey, limit: 500, _continue: t }));
    const peers = peersOf(one, all.map((sts) => ({ sts, pods: ownedPods(sts, pods), hookProblem: undefined })));
    if (peers) one.peers = peers;
  }
  return items;
}

export async function readStatefulSet(kc: KubeConfig, namespace: string, name: string): Promise<V1StatefulSet> {
  try {
    return await kc.makeApiClient(AppsV1Api).readNamespacedStatefulSet({ name, namespace });
  } catch (err) {
    if (statusCode(err) === 404) throw new CliError(`StatefulSet ${namespace}/${name} not found`);
    throw err;
  }
}

export async function readOwnedPods(kc: KubeConfig, sts: V1StatefulSet): Promise<V1Pod[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = sts.metadata?.namespace ?? 'default';
  const pods = await pages((t) => core.listNamespacedPod({ namespace: ns, labelSelector: REVISION_LABEL, limit: 500, _continue: t }));
  return ownedPods(sts, pods);
}
