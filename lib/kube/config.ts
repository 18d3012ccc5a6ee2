import { KubeConfig } from '@kubernetes/client-node';

/** --kubeconfig, else $KUBECONFIG, ~/.kube/config or the in-cluster service account. */
export function loadKubeConfig(path?: string, context?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (kubeconfig or in-cluster service account)');
  return kc;
}
