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
  private readonly o: InformerOptions<T>;

  constructor(o: InformerOptions<T>) {
    this.o = o;
    const listAll = async (): Promise<KubernetesListObject<T>> => {
      const items: T[] = [];
      let token: string | undefined;
      let last: KubernetesListObject<T>;
      do {
        last = await o.listPage(token);
        items.push(...last.items);
        token = last.metadata?._continue || undefined;
      } while (token);
      return { ...last, items };
    };
    this.lw = new ListWatch<T>(o.path, new Watch(o.kc), listAll, false, o.labelSelector);
    this.lw.on('add', (obj) => o.onChange(obj, 'add'));
    this.lw.on('update', (obj) => o.onChange(obj, 'update'));
    this.lw.on('delete', (obj) => o.onChange(obj, 'delete'));
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
        return;
      }
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
