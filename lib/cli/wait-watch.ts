import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Informer } from '../kube/informer.ts';
import { REVISION_LABEL } from '../names.ts';
import { formatDuration } from '../rollout/policies/duration.ts';
import { ownedPods } from './model.ts';
import { judge, type Tracked } from './wait.ts';

export interface WaitOptions {
  kc: KubeConfig;
  namespace: string;
  /** One StatefulSet by name; else every managed one (matching `selector`, when given). */
  name?: string | undefined;
  selector?: string | undefined;
  labelKey: string;
  /** 0: no limit. */
  timeoutMs: number;
  /** Progress lines (stdout). */
  out: (line: string) => void;
}

export interface WaitResult {
  ok: boolean;
  /** One line per StatefulSet that ended the wait badly, or the timeout's. */
  failures: string[];
  /** What was waited for (namespace/name). */
  waited: string[];
}

/**
 * List+watch the StatefulSets and their pods (the controller's resilient
 * informers: no polling), judge each on every change, print a line when one's
 * situation changes, and end when all are done or one fails. The StatefulSets
 * are the ones that match when the wait starts.
 */
export async function waitForRollouts(o: WaitOptions): Promise<WaitResult> {
  const apps = o.kc.makeApiClient(AppsV1Api);
  const core = o.kc.makeApiClient(CoreV1Api);
  const log = pino({ name: 'sts-pilot', level: 'warn' }, pino.destination({ fd: 2, sync: true }));
  const ns = o.namespace;
  // A named StatefulSet is read even without the label, to say it is not managed.
  const stsSelector = o.name ? undefined : [o.labelKey, o.selector].filter(Boolean).join(',');
  // An event marks the caches dirty and wakes the loop; one that arrives while it judges is not lost.
  let dirty = false;
  let wake: () => void = () => {};
  const changed = (): void => {
    dirty = true;
    wake();
  };
  const sets = new Informer<V1StatefulSet>({
    kc: o.kc,
    path: `/apis/apps/v1/namespaces/${ns}/statefulsets`,
    ...(stsSelector ? { labelSelector: stsSelector } : {}),
    log,
    listPage: (t) => apps.listNamespacedStatefulSet({ namespace: ns, labelSelector: stsSelector, limit: 500, _continue: t }),
    onChange: changed,
  });
  const pods = new Informer<V1Pod>({
    kc: o.kc,
    path: `/api/v1/namespaces/${ns}/pods`,
    labelSelector: REVISION_LABEL,
    log,
    listPage: (t) => core.listNamespacedPod({ namespace: ns, labelSelector: REVISION_LABEL, limit: 500, _continue: t }),
    onChange: changed,
  });
  const started = Date.now();
  const stamp = (): string => `[${formatDuration(Date.now() - started).padStart(6)}]`;
  try {
    await Promise.all([sets.start(), pods.start()]);
    const names = o.name ? [o.name] : sets.list(ns).map((s) => s.metadata?.name ?? '').sort();
    if (names.length === 0) {
      const what = o.selector ? `matches ${o.selector}` : `carries the label ${o.labelKey}`;
      return { ok: false, failures: [`no StatefulSet in namespace ${ns} ${what}`], waited: [] };
    }
    if (o.name && !sets.get(o.name, ns)) return { ok: false, failures: [`StatefulSet ${ns}/${o.name} not found`], waited: [] };
    const tracked = new Map<string, Tracked>(names.map((n) => [n, {}]));
    const waited = names.map((n) => `${ns}/${n}`);
    const deadline = o.timeoutMs > 0 ? started + o.timeoutMs : Infinity;
    const last = new Map<string, string>();
    for (;;) {
      dirty = false;
      const all = pods.list(ns);
      for (const name of [...tracked.keys()]) {
        const sts = sets.get(name, ns);
        const j = judge(tracked.get(name) ?? {}, sts, sts ? ownedPods(sts, all) : [], o.labelKey);
        tracked.set(name, j.next);
        if (j.line) o.out(`${stamp()} ${ns}/${name} ${j.line}`);
        if (j.verdict.kind === 'fail') return { ok: false, failures: [`${ns}/${name}: ${j.verdict.reason}`], waited };
        if (j.verdict.kind === 'done') {
          o.out(`${stamp()} ${ns}/${name} rollout finished: ${j.verdict.health.message}`);
          tracked.delete(name);
        } else last.set(name, `${j.verdict.health.health}: ${j.verdict.health.message}`);
      }
      if (tracked.size === 0) return { ok: true, failures: [], waited };
      const left = deadline - Date.now();
      if (left <= 0) {
        const still = [...tracked.keys()].map((n) => `${ns}/${n}: not finished after ${formatDuration(o.timeoutMs)} (--timeout): still ${last.get(n) ?? 'unknown'}`);
        return { ok: false, failures: still, waited };
      }
      if (dirty) continue;
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        wake = () => {
          if (timer) clearTimeout(timer);
          wake = () => {};
          resolve();
        };
      });
    }
  } finally {
    await Promise.all([sets.stop(), pods.stop()]);
  }
}
