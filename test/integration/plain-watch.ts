import { type KubeConfig, type KubernetesObject, Watch } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';

export type PlainEvent = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Listed<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

/**
 * A list, then a watch from its resourceVersion, and again after the watch
 * ends: nothing more. The tests audit with it, so that what they observe never
 * passes through the controller's own informer code (lib/kube/informer.ts),
 * which is under test. A relist delivers every object as ADDED again; an object
 * that vanished while the watch was away is not reported as deleted (audits
 * that care infer it from a pod name coming back with another uid).
 */
export class PlainWatch<T extends KubernetesObject> {
  private abort: AbortController | undefined;
  private stopped = false;
  private resourceVersion: string | undefined;
  private readonly kc: KubeConfig;
  private readonly path: string;
  private readonly list: () => Promise<Listed<T>>;
  private readonly on: (type: PlainEvent, obj: T) => void;
  /** What happened to the stream, for a test that finds the audit behind: restarts, relists, last error, last event. */
  readonly state = { watches: 0, relists: 0, events: 0, lastEventAt: 0, lastError: '' };

  constructor(kc: KubeConfig, path: string, list: () => Promise<Listed<T>>, on: (type: PlainEvent, obj: T) => void) {
    this.kc = kc;
    this.path = path;
    this.list = list;
    this.on = on;
  }

  async start(): Promise<this> {
    await this.relist();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  private async relist(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        this.state.relists++;
        const l = await this.list();
        for (const o of l.items) this.on('ADDED', o);
        this.resourceVersion = l.metadata?.resourceVersion;
        await this.watch();
        return;
      } catch (err) {
        this.state.lastError = `list: ${String((err as Error | undefined)?.message ?? err)}`;
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }

  private async watch(): Promise<void> {
    const w = new Watch(this.kc);
    this.state.watches++;
    this.abort = await w.watch(
      this.path,
      { resourceVersion: this.resourceVersion, allowWatchBookmarks: true },
      (type: string, obj: T) => {
        // An ERROR event carries a Status (410 when the resourceVersion is too old): list again.
        if (type === 'ERROR') {
          this.resourceVersion = undefined;
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        this.state.events++;
        this.state.lastEventAt = Date.now();
        // client-node swallows what a callback throws: say it, or the audit goes blind without a word.
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
          try {
            this.on(type, obj);
          } catch (err) {
            this.state.lastError = `callback: ${String((err as Error | undefined)?.stack ?? err)}`;
            console.error(`      PlainWatch ${this.path}: ${this.state.lastError}`);
          }
        }
      },
      (err: unknown) => {
        if (this.stopped) return;
        if (err) this.state.lastError = `watch: ${String((err as Error | undefined)?.message ?? err)}`;
        // 410 Gone (history compacted): list again. Any other end: resume where it stopped.
        const gone = /\b410\b|Gone|too old resource version/i.test(String((err as Error | undefined)?.message ?? err ?? ''));
        if (gone) this.resourceVersion = undefined;
        void (async () => {
          await sleep(100);
          if (this.stopped) return;
          if (!this.resourceVersion) return this.relist();
          try {
            await this.watch();
          } catch {
            await this.relist();
          }
        })();
      },
    );
  }
}
