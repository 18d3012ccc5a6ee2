import { HttpMethod, type KubeConfig, type KubernetesListObject, type KubernetesObject, RequestContext, Watch } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetch } from 'undici';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';

export type ListPage<T extends KubernetesObject> = (continueToken: string | undefined) => Promise<KubernetesListObject<T>>;

export interface InformerOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** Watch path, e.g. /apis/apps/v1/statefulsets. */
  path: string;
  labelSelector?: string;
  /**
   * One page of the list; the informer pages through all of them. Without it the
   * informer lists the path itself, as plain JSON (no typed model in between: less
   * memory, and the same shape as watch events).
   */
  listPage?: ListPage<T>;
  /**
   * What the cache keeps of each object: the informer stores and hands on the
   * result, never the object as read. The default drops managedFields, about
   * half of a pod.
   */
  transform?: (obj: T) => T;
  log: Logger;
  onChange: (obj: T, verb: 'add' | 'update' | 'delete') => void;
  /** Called after each restart that follows an error (a relist, a watch that failed). */
  onRestart?: () => void;
}

/**
 * The token of the next page. client-node's typed lists rename the JSON field
 * `continue` to `_continue`; raw lists (CustomObjectsApi) keep `continue`.
 */
export function continueToken(list: KubernetesListObject<KubernetesObject>): string | undefined {
  const md = list.metadata as { _continue?: string; continue?: string } | undefined;
  return md?._continue || md?.continue || undefined;
}

/** Drop what nothing here reads and every object carries: managedFields is about half of a pod. */
export function trim<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}

/**
 * client-node's Watch, asking for bookmarks: the resourceVersion of every event,
 * bookmarks included, is where the next watch resumes, so a quiet label-selected
 * watch (client-node ends it after 30 s without data) stays recent enough to
 * resume instead of falling behind the compaction into a 410 and a full relist.
 */
export class BookmarkingWatch extends Watch {
  override watch(
    path: string,
    queryParams: Record<string, unknown>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(path, { ...queryParams, allowWatchBookmarks: true }, callback, done);
  }
}

const keyOf = (o: KubernetesObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/**
 * A list and a watch, kept going, into a cache of projected objects: what
 * client-go's reflector and store do, the parts we need. It lists (paged),
 * watches from the list's resourceVersion (with bookmarks), resumes a watch that
 * ends, relists after 410 Gone (reporting objects that vanished meanwhile as
 * deleted), and retries anything else with capped backoff, for ever: no error
 * stops it, and `healthy` says whether it is working now.
 */
export class Informer<T extends KubernetesObject> {
  private readonly o: InformerOptions<T>;
  private readonly store = new Map<string, T>();
  private readonly transform: (obj: T) => T;
  private readonly watcher: BookmarkingWatch;
  private resourceVersion: string | undefined;
  private stopping = false;
  private request: AbortController | undefined;
  private failures = 0;
  private working = false;
  private loop: Promise<void> | undefined;
  private firstSync: { resolve: () => void; promise: Promise<void> } | undefined;
  /** Wakes the loop when a watch ends. */
  private wake: (() => void) | undefined;
  private watchError: unknown;
  private listed = false;

  constructor(o: InformerOptions<T>) {
    this.o = o;
    this.transform = o.transform ?? trim;
    this.watcher = new BookmarkingWatch(o.kc);
  }

  /** Resolves once a full list is in the cache and the watch is running (or at stop). */
  async start(): Promise<void> {
    if (!this.firstSync) {
      let resolve = (): void => {};
      const promise = new Promise<void>((r) => (resolve = r));
      this.firstSync = { resolve, promise };
      this.loop = this.run();
    }
    await this.firstSync.promise;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.request?.abort();
    this.wake?.();
    this.firstSync?.resolve();
    await this.loop;
  }

  /** Listed and watching: false while it retries after a failure (an expired or revoked token, the API server away). */
  get healthy(): boolean {
    return this.working;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.store.get(`${namespace ?? ''}/${name}`);
  }

  list(namespace?: string): readonly T[] {
    const all = [...this.store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        await this.watchOnce();
        this.failures = 0;
      } catch (err) {
        if (this.stopping) break;
        this.working = false;
        const delay = Math.min(500 * 2 ** this.failures++, 30_000);
        this.o.log.warn({ path: this.o.path, err: describeError(err), retryInMs: delay }, 'list/watch failed; retrying');
        this.o.onRestart?.();
        await sleep(delay);
      }
    }
    this.working = false;
  }

  private async relist(): Promise<void> {
    if (this.listed) {
      this.o.log.warn({ path: this.o.path }, 'watch expired (410 Gone); relisting');
      this.o.onRestart?.();
    }
    const items: T[] = [];
    let token: string | undefined;
    let rv: string | undefined;
    do {
      const page = this.o.listPage ? await this.o.listPage(token) : await this.rawPage(token);
      // Projected page by page: holding the whole list as read until the end made
      // it the peak of the process's memory, and RSS stays near its peak.
      for (const raw of page.items) items.push(this.transform(raw));
      token = continueToken(page);
      rv = page.metadata?.resourceVersion;
    } while (token);
    const seen = new Set<string>();
    for (const obj of items) {
      const k = keyOf(obj);
      seen.add(k);
      const had = this.store.has(k);
      this.store.set(k, obj);
      this.o.onChange(obj, had ? 'update' : 'add');
    }
    // Gone while we were not watching: say so, as a delete.
    for (const [k, obj] of this.store) {
      if (seen.has(k)) continue;
      this.store.delete(k);
      this.o.onChange(obj, 'delete');
    }
    this.resourceVersion = rv ?? '';
    this.listed = true;
  }

  /** One page of the list as plain JSON, with the kubeconfig's credentials and connection pool. */
  private async rawPage(token: string | undefined): Promise<KubernetesListObject<T>> {
    const cluster = this.o.kc.getCurrentCluster();
    if (!cluster) throw new Error('no current cluster in the kubeconfig');
    const url = new URL(cluster.server + this.o.path);
    url.searchParams.set('limit', '500');
    if (this.o.labelSelector) url.searchParams.set('labelSelector', this.o.labelSelector);
    if (token) url.searchParams.set('continue', token);
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    await this.o.kc.applySecurityAuthentication(ctx);
    const res = await fetch(url, { headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher(), signal: AbortSignal.timeout(60_000) });
    if (res.status !== 200) {
      const err = new Error(`list ${this.o.path}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`) as Error & { statusCode: number };
      err.statusCode = res.status;
      throw err;
    }
    return (await res.json()) as KubernetesListObject<T>;
  }

  /** Watch until the stream ends; throws when it failed (a 410 clears the resourceVersion first). */
  private async watchOnce(): Promise<void> {
    this.watchError = undefined;
    const ended = new Promise<void>((resolve) => (this.wake = resolve));
    const params: Record<string, unknown> = { resourceVersion: this.resourceVersion };
    if (this.o.labelSelector) params.labelSelector = this.o.labelSelector;
    this.request = await this.watcher.watch(
      this.o.path,
      params,
      (type, raw) => this.onEvent(type, raw as T),
      (err) => {
        if (err && !this.stopping) {
          const code = (err as { statusCode?: number; code?: number }).statusCode ?? (err as { code?: number }).code;
          // A timeout is client-node ending a quiet watch: resume where it stopped.
          if (code === 410) this.resourceVersion = undefined;
          else if ((err as Error).name !== 'TimeoutError') this.watchError = err;
        }
        this.wake?.();
      },
    );
    if (this.watchError === undefined) this.working = true;
    this.firstSync?.resolve();
    await ended;
    this.request = undefined;
    if (this.watchError !== undefined) throw this.watchError;
  }

  private onEvent(type: string, raw: T): void {
    const rv = raw?.metadata?.resourceVersion;
    switch (type) {
      case 'ERROR': {
        // A Status in the stream; 410: the resourceVersion is too old, list again.
        if ((raw as unknown as { code?: number }).code === 410) this.resourceVersion = undefined;
        return;
      }
      case 'BOOKMARK':
        break;
      case 'ADDED':
      case 'MODIFIED': {
        const obj = this.transform(raw);
        const k = keyOf(obj);
        const had = this.store.has(k);
        this.store.set(k, obj);
        this.o.onChange(obj, had ? 'update' : 'add');
        break;
      }
      case 'DELETED': {
        const obj = this.transform(raw);
        const k = keyOf(obj);
        this.store.delete(k);
        this.o.onChange(obj, 'delete');
        break;
      }
      default:
        return;
    }
    if (rv) this.resourceVersion = rv;
  }
}
