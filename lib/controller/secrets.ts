import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import { HookNotReady, type SecretReader } from '../hook.ts';
import { Informer } from '../kube/informer.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { CREDENTIALS_LABEL, CREDENTIALS_SELECTOR } from '../names.ts';

export type SecretAnswer = { ok: true; values: Record<string, string> } | { ok: false; why: string };

/**
 * What a hook gets for the Secret it names: the values, decoded, if the
 * installer allowed the Secret (the label), else why not. Whether it does not
 * exist or is not labelled is not told apart: the StatefulSet's editor, who
 * reads this in an Event, may not be allowed to know which Secrets exist. Pure.
 */
export function secretAnswer(secret: V1Secret | undefined, namespace: string, name: string): SecretAnswer {
  if (!secret || secret.metadata?.labels?.[CREDENTIALS_LABEL] !== 'true') {
    return {
      ok: false,
      why: `Secret ${namespace}/${name} is not one hooks may read: only Secrets labelled ${CREDENTIALS_SELECTOR} are (whoever may edit that Secret labels it: kubectl label secret -n ${namespace} ${name} ${CREDENTIALS_SELECTOR})`,
    };
  }
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) values[k] = Buffer.from(v, 'base64').toString('utf8');
  return { ok: true, values };
}

/** What the cache keeps of a Secret: its name, label and data; annotations (kubectl's last-applied copy of the data) go. */
function projectSecret(s: V1Secret): V1Secret {
  const md = s.metadata ?? {};
  return { metadata: { name: md.name, namespace: md.namespace, resourceVersion: md.resourceVersion, labels: md.labels }, ...(s.data ? { data: s.data } : {}) };
}

export interface SecretCacheOptions {
  kc: KubeConfig;
  log: Logger;
  metrics: Metrics;
  /** The watched namespaces (one informer each); all, with one informer, when undefined. */
  namespaces: readonly string[] | undefined;
  /** How long a hook call waits for the first list. */
  syncTimeoutMs?: number;
}

/**
 * The Secrets hooks may read, kept by label-selected informers (one for all
 * namespaces, or one per watched namespace, as the rest of the controller's
 * watches): a hook call reads memory, not the API server, and the controller
 * holds no other Secret. One per process, shared by its controllers (a budget
 * holder is judged by whichever controller asks). Each informer starts on the
 * first read it serves, so a controller whose hooks name no Secret never lists
 * any (nor needs RBAC for it). One that is not synced or not watching now
 * answers nothing (the hook holds): a label removed while the watch was down
 * must not be missed.
 */
export class SecretCache {
  private readonly o: SecretCacheOptions;
  private readonly informers = new Map<string, { informer: Informer<V1Secret>; synced: Promise<void> }>();
  private stopped = false;

  constructor(o: SecretCacheOptions) {
    this.o = o;
  }

  /** The reader a hook call in `namespace` gets. */
  reader(namespace: string): SecretReader {
    return (name) => this.read(namespace, name);
  }

  async read(namespace: string, name: string): Promise<Record<string, string>> {
    if (this.o.namespaces && !this.o.namespaces.includes(namespace)) {
      throw new HookNotReady(`Secret ${namespace}/${name}: the controller reads Secrets only in the namespaces it watches (${this.o.namespaces.join(', ')})`);
    }
    if (this.stopped) throw new HookNotReady('the controller is shutting down');
    const { informer, synced } = this.start(namespace);
    if (!informer.healthy) await this.waitFor(synced);
    if (!informer.healthy) {
      throw new HookNotReady(
        `the Secrets hooks may read are not loaded (listing and watching Secrets labelled ${CREDENTIALS_SELECTOR} does not work now; the controller's log says why, e.g. its RBAC lacks list and watch on secrets)`,
      );
    }
    const r = secretAnswer(informer.get(name, namespace), namespace, name);
    if (!r.ok) {
      this.o.log.warn({ namespace, secret: name }, 'a hook named a Secret it may not read; refused');
      throw new HookNotReady(r.why);
    }
    return r.values;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.informers.values()].map((i) => i.informer.stop()));
  }

  private start(namespace: string): { informer: Informer<V1Secret>; synced: Promise<void> } {
    const key = this.o.namespaces ? namespace : '';
    const known = this.informers.get(key);
    if (known) return known;
    const { kc, log, metrics } = this.o;
    const informer = new Informer<V1Secret>({
      kc,
      path: key ? `/api/v1/namespaces/${key}/secrets` : '/api/v1/secrets',
      labelSelector: CREDENTIALS_SELECTOR,
      log,
      transform: projectSecret,
      // Nothing to queue: a held hook is asked again on its backoff and reads the cache then.
      onChange: () => {},
      onRestart: () => metrics.watchRestarts.inc({ resource: 'secrets' }),
    });
    const entry = { informer, synced: informer.start() };
    this.informers.set(key, entry);
    return entry;
  }

  private async waitFor(synced: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([synced, new Promise<void>((r) => (timer = setTimeout(r, this.o.syncTimeoutMs ?? 15_000)))]);
    clearTimeout(timer);
  }
}
