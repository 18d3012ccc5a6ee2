import type { AppsV1Api, V1ControllerRevision } from '@kubernetes/client-node';

/** Every ControllerRevision of a namespace, page by page (historyOf picks a StatefulSet's). */
export async function listControllerRevisions(apps: AppsV1Api, namespace: string): Promise<V1ControllerRevision[]> {
  const revisions: V1ControllerRevision[] = [];
  let token: string | undefined;
  do {
    const page = await apps.listNamespacedControllerRevision({ namespace, limit: 500, _continue: token });
    revisions.push(...page.items);
    token = page.metadata?._continue || undefined;
  } while (token);
  return revisions;
}
