import {
  type ApiConstructor,
  type ApiType,
  createConfiguration,
  KubeConfig,
  type RequestContext,
  ServerConfiguration,
  setHeaderMiddleware,
} from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import type { Dispatcher } from 'undici';

/**
 * client-node 2.0.1 builds a new undici Agent for every request, so no
 * connection is ever reused: each request pays a TCP and TLS handshake on both
 * ends (bench/connection-reuse.ts: p50 7.9 ms -> 3.2 ms, client CPU 5.4 -> 1.8 ms
 * per request with one Agent). Keep the first Agent for as long as the TLS
 * material it was built from is the same; a rotated CA or client certificate
 * file gets a new one. Exec plugins can hand out client certificates we cannot
 * see, so those keep client-node's behaviour; auth providers (the in-cluster
 * token file, OIDC) only set a header and pool like the rest.
 */
export class PooledKubeConfig extends KubeConfig {
  private pooled: { key: string; dispatcher: Dispatcher } | undefined;
  /**
   * Sent as User-Agent on every request: kube-apiserver's audit log then says
   * which replica (its identity) made each write.
   */
  userAgent: string | undefined;

  /** client-node's own, but with our User-Agent (its middleware would put back its own after ours). */
  override makeApiClient<T extends ApiType>(apiClientType: ApiConstructor<T>): T {
    const cluster = this.getCurrentCluster();
    if (!this.userAgent || !cluster) return super.makeApiClient(apiClientType);
    return new apiClientType(
      createConfiguration({
        baseServer: new ServerConfiguration(cluster.server, {}),
        authMethods: { default: this },
        middleware: [setHeaderMiddleware('User-Agent', this.userAgent)],
      }),
    );
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    // Watches do not go through makeApiClient's middleware: set it here too.
    if (this.userAgent) context.setHeaderParam('User-Agent', this.userAgent);
    const fresh = context.getDispatcher();
    const key = this.tlsKey();
    if (!fresh || key === undefined) return;
    // The fresh Agent has opened nothing yet: dropping it costs nothing.
    if (this.pooled?.key === key) context.setDispatcher(this.pooled.dispatcher);
    else this.pooled = { key, dispatcher: fresh };
  }

  /** Identifies the TLS material of the current context; undefined when it cannot be known. */
  private tlsKey(): string | undefined {
    const cluster = this.getCurrentCluster();
    const user = this.getCurrentUser();
    if (!cluster || user?.exec) return undefined;
    const file = (path: string | undefined): string => {
      if (!path) return '';
      try {
        const st = statSync(path);
        return `${path}@${st.mtimeMs}/${st.size}`;
      } catch {
        return `${path}@missing`;
      }
    };
    const parts = [
      cluster.server,
      cluster.caData ?? '',
      file(cluster.caFile),
      String(cluster.skipTLSVerify),
      cluster.tlsServerName ?? '',
      cluster.proxyUrl ?? '',
      user?.certData ?? '',
      file(user?.certFile),
      user?.keyData ?? '',
      file(user?.keyFile),
    ];
    return createHash('sha256').update(parts.join('\0')).digest('hex');
  }
}

/** --kubeconfig, else $KUBECONFIG, ~/.kube/config or the in-cluster service account. */
export function loadKubeConfig(path?: string, context?: string, userAgent?: string): KubeConfig {
  const kc = new PooledKubeConfig();
  kc.userAgent = userAgent;
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (kubeconfig or in-cluster service account)');
  return kc;
}
