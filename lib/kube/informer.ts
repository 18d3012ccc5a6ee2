import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';

export type ListPage<T extends KubernetesObject> = (
  continueToken: string | undefined,
) => Promise<KubernetesListObject<T>>;

export interface InformerOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** Watch path, e.g. /apis/apps/v1/statefulsets. */
  path: string;
  labelSelector?: string;
  /** One page of the list; the informer pages through all of them. */
  listPage: ListPage<T>;
  log: Logger;
  onChange: (obj: T, verb: 'add' | 'update' | 'delete') => void;
  /** Called after each restart that follows an error. */
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
 * client-node's Watch, asking for bookmarks. ListWatch takes the resourceVersion
 * of every event, bookmarks included: a quiet label-selected watch (client-node
 * ends it after 30 s without data and resumes) then stays recent enough to
 * resume, instead of falling behind the compaction into a 410 and a full relist.
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

/**
 * client-node's ListWatch, made to last: it stops for good after any error
 * other than 410 Gone, so restart it with capped exponential backoff; its own
 * list does not page, so page inside the list function.
 */
export class Informer<T extends KubernetesObject> {
  private readonly lw: ListWatch<T>;
  private stopping = false;
  private failures = 0;
  private restarting = false;
  private inAttempt = false;
  private attemptError: unknown;
  /** False from a failed list or watch until a list succeeds again: readiness says so. */
  private working = false;
  private readonly o: InformerOptions<T>;

  constructor(o: InformerOptions<T>) {
    this.o = o;
    let listed = false;
    const listAll = async (): Promise<KubernetesListObject<T>> => {
      // ListWatch lists at the start and again only when its watch cannot resume
      // (410 Gone: the resourceVersion was compacted away): say so, and count it.
      if (listed) {
        o.log.warn({ path: o.path }, 'watch expired (410 Gone); relisting');
        o.onRestart?.();
      }
      const items: T[] = [];
      let token: string | undefined;
      let last: KubernetesListObject<T>;
      do {
        last = await o.listPage(token);
        items.push(...last.items);
        token = continueToken(last);
      } while (token);
      listed = true;
      return { ...last, items };
    };
    this.lw = new ListWatch<T>(o.path, new BookmarkingWatch(o.kc), listAll, false, o.labelSelector);
    // The cache keeps the very object passed to these callbacks: trimming it here
    // trims the cache (client-go's SetTransform, done the only way ListWatch allows).
    this.lw.on('add', (obj) => o.onChange(trim(obj), 'add'));
    this.lw.on('update', (obj) => o.onChange(trim(obj), 'update'));
    this.lw.on('delete', (obj) => o.onChange(trim(obj), 'delete'));
    this.lw.on('error', (err) => this.onError(err));
  }

  /** Resolves once a full list is in the cache and the watch is running (or at stop). */
  async start(): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      this.attemptError = undefined;
      this.inAttempt = true;
      try {
        await this.lw.start();
      } catch (err) {
        this.attemptError = err;
      }
      this.inAttempt = false;
      if (this.attemptError === undefined || this.stopping) {
        this.failures = 0;
        this.working = this.attemptError === undefined;
        return;
      }
      this.working = false;
      const delay = this.backoff();
      this.o.log.warn({ path: this.o.path, err: describeError(this.attemptError), retryInMs: delay }, 'list/watch failed; retrying');
      await sleep(delay);
      this.o.onRestart?.();
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.lw.stop();
  }

  /** Listed and watching: false while it retries after a failure (an expired or revoked token, the API server away). */
  get healthy(): boolean {
    return this.working;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace);
  }

  private backoff(): number {
    this.failures++;
    return Math.min(500 * 2 ** (this.failures - 1), 30_000);
  }

  private onError(err: unknown): void {
    if (this.inAttempt) {
      this.attemptError ??= err;
      return;
    }
    // stop() itself surfaces as an AbortError: not a failure.
    if (this.stopping || this.restarting) return;
    this.restarting = true;
    this.working = false;
    const delay = this.backoff();
    this.o.log.warn({ path: this.o.path, err: describeError(err), retryInMs: delay }, 'watch failed; restarting');
    void sleep(delay)
      .then(() => {
        this.o.onRestart?.();
        return this.start();
      })
      .finally(() => {
        this.restarting = false;
      });
  }
}
