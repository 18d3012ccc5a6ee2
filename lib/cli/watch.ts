import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Informer } from '../kube/informer.ts';
import { REVISION_LABEL } from '../names.ts';
import { ownedPods, peersOf, type StatusItem } from './model.ts';
import { renderStatus } from './render.ts';

/** ANSI: cursor home, clear screen. Only ever written to a terminal. */
export const CLEAR = '\x1b[H\x1b[2J';

export interface Output {
  write(text: string): unknown;
  isTTY: boolean;
}

export interface WatchOptions {
  kc: KubeConfig;
  /** undefined: every namespace. */
  namespace: string | undefined;
  name: string | undefined;
  labelKey: string;
  hookProblem: (sts: V1StatefulSet) => string | undefined;
  /** What to show when nothing matches. */
  empty: string;
  out: Output;
  /** At most one redraw per this many ms, however many events arrive (default 250: 4 per second). */
  minIntervalMs?: number;
  /** A terminal also redraws this often so ages tick (default 1000). */
  tickMs?: number;
}

/**
 * The frame for a set of StatefulSets, and its identity without ages: two frames
 * with the same key say the same thing, so a pipe gets a new one only on change.
 */
export function watchFrame(items: readonly StatusItem[], o: { labelKey: string; now: number; empty: string }): { lines: string[]; key: string } {
  if (items.length === 0) return { lines: [o.empty], key: o.empty };
  return {
    lines: renderStatus(items, { labelKey: o.labelKey, now: o.now, ages: true }),
    key: renderStatus(items, { labelKey: o.labelKey, now: o.now, ages: false }).join('\n'),
  };
}

/**
 * `status --watch`: list+watch StatefulSets and their pods (the same resilient
 * informers as the controller: no polling), redraw from the caches at most
 * every minIntervalMs. A terminal is cleared and redrawn in place; anything
 * else gets a new frame, under a time line, only when the frame changed.
 */
export class StatusWatch {
  private readonly o: Required<WatchOptions>;
  private readonly sets: Informer<V1StatefulSet>;
  private readonly pods: Informer<V1Pod>;
  private timer: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private lastDraw = 0;
  private lastShown: string | undefined;
  private started = false;
  private stopped = false;

  constructor(opts: WatchOptions) {
    this.o = { minIntervalMs: 250, tickMs: 1000, ...opts };
    const { kc, namespace: ns, name, labelKey } = this.o;
    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    // Informer warnings (a failing watch, retried) go to stderr as JSON; stdout is the view.
    const log = pino({ name: 'sts-pilot', level: 'warn' }, pino.destination({ fd: 2, sync: true }));
    // A named StatefulSet is shown even without the label, to say why it is not managed.
    const stsSelector = name ? undefined : labelKey;
    this.sets = new Informer<V1StatefulSet>({
      kc,
      path: ns ? `/apis/apps/v1/namespaces/${ns}/statefulsets` : '/apis/apps/v1/statefulsets',
      ...(stsSelector ? { labelSelector: stsSelector } : {}),
      log,
      listPage: (t) =>
        ns
          ? apps.listNamespacedStatefulSet({ namespace: ns, labelSelector: stsSelector, limit: 500, _continue: t })
          : apps.listStatefulSetForAllNamespaces({ labelSelector: stsSelector, limit: 500, _continue: t }),
      onChange: () => this.schedule(),
    });
    this.pods = new Informer<V1Pod>({
      kc,
      path: ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods',
      labelSelector: REVISION_LABEL,
      log,
      listPage: (t) =>
        ns
          ? core.listNamespacedPod({ namespace: ns, labelSelector: REVISION_LABEL, limit: 500, _continue: t })
          : core.listPodForAllNamespaces({ labelSelector: REVISION_LABEL, limit: 500, _continue: t }),
      onChange: () => this.schedule(),
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.sets.start(), this.pods.start()]);
    if (this.stopped) return;
    this.started = true;
    this.draw();
    if (this.o.out.isTTY) this.tick = setInterval(() => this.schedule(), this.o.tickMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.tick) clearInterval(this.tick);
    await Promise.all([this.sets.stop(), this.pods.stop()]);
  }

  private items(): StatusItem[] {
    const { namespace: ns, name } = this.o;
    const pods = this.pods.list(ns);
    const all: StatusItem[] = this.sets.list(ns).map((sts) => ({ sts, pods: ownedPods(sts, pods), hookProblem: this.o.hookProblem(sts) }));
    if (!name) return all;
    // One StatefulSet: the others of its namespace are in the cache too, for the ones its `after` names.
    return all.filter((i) => i.sts.metadata?.name === name).map((i) => {
      const peers = peersOf(i, all);
      return peers ? { ...i, peers } : i;
    });
  }

  /** Informer callbacks are synchronous and frequent: only ever arm one timer. */
  private schedule(): void {
    if (!this.started || this.stopped || this.timer) return;
    const wait = Math.max(0, this.lastDraw + this.o.minIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, wait);
  }

  private draw(): void {
    if (this.stopped) return;
    const now = Date.now();
    this.lastDraw = now;
    const frame = watchFrame(this.items(), { labelKey: this.o.labelKey, now, empty: this.o.empty });
    const stamp = new Date(now).toISOString().slice(11, 19);
    if (this.o.out.isTTY) {
      const text = frame.lines.join('\n');
      if (text === this.lastShown) return;
      this.lastShown = text;
      this.o.out.write(`${CLEAR}${text}\n\n(${stamp} UTC; redrawn on change; Ctrl-C to quit)\n`);
      return;
    }
    if (frame.key === this.lastShown) return;
    this.lastShown = frame.key;
    this.o.out.write(`--- ${stamp} UTC ---\n${frame.lines.join('\n')}\n`);
  }
}
