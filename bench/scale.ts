import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type V1StatefulSet } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Informer } from '../lib/kube/informer.ts';
import { createLogger } from '../lib/log.ts';
import { API_GROUP, API_VERSION } from '../lib/names.ts';
import { PILOT_PLURAL } from '../lib/pilot/schema.ts';
import { statefulSet } from '../test/integration/harness.ts';
import { readAudit, tally, within } from './audit.ts';
import { BenchController } from './controller.ts';
import type { Bench } from './env.ts';
import { median, now } from './stats.ts';
import { partitionOf } from './tracker.ts';

export interface Reaction {
  statefulSet: string;
  /** Patch sent → the StatefulSet controller's new updateRevision visible. */
  kcmMs: number;
  /** Patch sent → sts-pilot's first partition move visible. */
  moveMs: number;
}

export interface ScalePoint {
  count: number;
  pods: number;
  namespaces: number;
  /** Creating the StatefulSets added at this point, and until all were Ready with P = N held by sts-pilot. */
  createS: number;
  /** CPU seconds spent meanwhile by each control-plane process and the running controller. */
  createCpuS: Record<string, number>;
  /** Controller restarted on the whole set: spawn → /readyz 200 (both caches listed, watches open). */
  readyS: number;
  /** Spawn → /healthz 200: Node up, modules loaded (the part of readyS that does not depend on the count). */
  bootS: number;
  /** Spawn → "became leader" (reconciles only start then). */
  leaderS: number;
  /** Spawn → the last reconcile of the first pass over every StatefulSet (metrics show no more). */
  firstPassS: number;
  reconcilesFirstPass: number;
  rssReadyMiB: number;
  rssIdleMiB: number;
  heapUsedIdleMiB: number;
  /** CPU while nothing changes, percent of one core, over idleWindowS. */
  idleCpuPct: number;
  /** The same by thread (percent of one core): the main thread, V8's GC and compiler workers, libuv's pool. */
  idleCpuByThread: Record<string, number>;
  /** Garbage collections in the idle window, and their total pause time (nodejs_gc_duration_seconds). */
  idleGcCount: number;
  idleGcS: number;
  idleWindowS: number;
  /** LIST requests the restarted controller made to sync (pages of 500). */
  initialLists: Record<string, number>;
  /** All the controller's requests in the idle window, by "verb resource". */
  idleRequests: Record<string, number>;
  reactions: Reaction[];
  reactionMedianMs: number;
  kcmMedianMs: number;
  /** The same restart, on the same set, of the controller of another checkout (--baseline), just before this one's. */
  baseline?: { root: string; readyS: number; firstPassS: number; rssReadyMiB: number; rssIdleMiB: number; heapUsedIdleMiB: number };
}

export interface ScaleOptions {
  counts: number[];
  namespaces: number;
  idleS: number;
  reactions: number;
  /** Per point: give up on creation after this long and report how far it got. */
  timeoutMin: number;
  identity: string;
  logDir: string;
  cpuProfDir: string | undefined;
  log: (line: string) => void;
  /** Another checkout to restart on each set first, for a side-by-side comparison (RSS, ready, first pass). */
  baselineRoot?: string | undefined;
  /** Node flags and environment for this checkout's controller only (not the baseline's). */
  nodeFlags?: string[] | undefined;
  env?: Record<string, string> | undefined;
}

const LABEL = 'sts-pilot.io/hook';
const nsOf = (i: number, k: number): string => `bench-scale-${i % k}`;
const nameOf = (i: number): string => `s-${i}`;

/**
 * Pilots in the scale namespaces, from one-item lists (remainingItemCount), so
 * counting 30,000 costs the API server ten small reads.
 */
async function pilotCount(api: CustomObjectsApi, namespaces: number): Promise<number> {
  let total = 0;
  for (let k = 0; k < namespaces; k++) {
    const list = (await api.listNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: nsOf(k, namespaces), plural: PILOT_PLURAL, limit: 1 })) as {
      items: unknown[];
      metadata?: { remainingItemCount?: number };
    };
    total += list.items.length + (list.metadata?.remainingItemCount ?? 0);
  }
  return total;
}

function settled(s: V1StatefulSet): boolean {
  const st = s.status;
  const n = s.spec?.replicas ?? 0;
  return (
    !!st &&
    st.observedGeneration === s.metadata?.generation &&
    !!st.updateRevision &&
    st.currentRevision === st.updateRevision &&
    st.readyReplicas === n &&
    st.updatedReplicas === n &&
    partitionOf(s) === n
  );
}

function cpuOf(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * Many labelled StatefulSets of 3 pods: what sts-pilot's start, memory, idle CPU
 * and reaction time cost as their number grows. The controller runs while they
 * are created (it holds P = N on each), then is restarted on the whole set.
 */
export async function runScale(b: Bench, first: BenchController, o: ScaleOptions): Promise<{ points: ScalePoint[]; controller: BenchController; error?: string }> {
  const points: ScalePoint[] = [];
  let ctrl = first;
  const all = new Map<string, V1StatefulSet>();
  const waiters = new Set<() => void>();
  const informer = new Informer<V1StatefulSet>({
    kc: b.kc,
    path: '/apis/apps/v1/statefulsets',
    labelSelector: LABEL,
    log: createLogger({ level: 'warn', name: 'bench-scale' }),
    listPage: (token) => b.apps.listStatefulSetForAllNamespaces({ labelSelector: LABEL, limit: 500, _continue: token }),
    onChange: (s, verb) => {
      const k = `${s.metadata?.namespace}/${s.metadata?.name}`;
      if (verb === 'delete') all.delete(k);
      else all.set(k, s);
      for (const w of [...waiters]) w();
    },
  });
  const waitFor = (what: string, timeoutMs: number, done: () => boolean): Promise<number> =>
    new Promise((resolve, reject) => {
      if (done()) return resolve(now());
      const check = (): void => {
        if (!done()) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(now());
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out after ${(timeoutMs / 60_000).toFixed(1)} min waiting for ${what}`));
      }, timeoutMs);
      waiters.add(check);
    });
  const scaleSets = (): V1StatefulSet[] => [...all.values()].filter((s) => s.metadata?.namespace?.startsWith('bench-scale-'));
  await informer.start();

  try {
    for (let i = 0; i < o.namespaces; i++) await b.core.createNamespace({ body: { metadata: { name: `bench-scale-${i}` } } }).catch(() => {});
    const pilotsApi = b.kc.makeApiClient(CustomObjectsApi);
    let created = scaleSets().length;
    for (const count of o.counts) {
      // Create what is missing, 32 requests in flight.
      const t0 = now();
      const pids = { ...b.cp.pids?.(), 'sts-pilot': ctrl.pid, 'bench (node agent, watches)': process.pid };
      const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuOf(pid)]));
      let next = created;
      let lastLog = Date.now();
      const worker = async (): Promise<void> => {
        while (next < count) {
          const i = next++;
          const body = statefulSet(nameOf(i), { replicas: 3, hook: 'noop' });
          if (body.spec) body.spec.podManagementPolicy = 'Parallel';
          for (let attempt = 0; ; attempt++) {
            try {
              await b.apps.createNamespacedStatefulSet({ namespace: nsOf(i, o.namespaces), body });
              break;
            } catch (err) {
              if ((err as { code?: number }).code === 409) break;
              if (attempt >= 5) throw err;
              await sleep(500 * 2 ** attempt);
            }
          }
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
      created = count;
      o.log(`scale: ${count} StatefulSets created in ${((now() - t0) / 1000).toFixed(1)} s; waiting for ${count * 3} pods Ready, P = 3 held on each, and every pod's Pilot`);
      const ready = (): number => scaleSets().filter(settled).length;
      const progress = setInterval(() => {
        if (Date.now() - lastLog < 15_000) return;
        lastLog = Date.now();
        o.log(`scale: ${ready()}/${count} settled after ${((now() - t0) / 1000).toFixed(0)} s`);
      }, 5_000);
      try {
        await waitFor(`${count} StatefulSets to settle`, o.timeoutMin * 60_000, () => ready() >= count);
      } catch (err) {
        clearInterval(progress);
        const spent = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuOf(pid) - (cpu0[k] ?? 0)]));
        const msg = `${(err as Error).message}: ${ready()}/${count} settled after ${((now() - t0) / 1000).toFixed(0)} s; CPU seconds meanwhile: ${JSON.stringify(spent)}`;
        o.log(`scale: ${msg}`);
        return { points, controller: ctrl, error: msg };
      }
      clearInterval(progress);
      // Pilots come on a queue of their own, behind the pods under a creation this fast: the
      // restart below is to find the controller's work done, or it measures Pilot creates.
      // The same limit as the pods': it is for the creation of the whole count.
      const want = count * 3;
      let have = 0;
      while ((have = await pilotCount(pilotsApi, o.namespaces)) < want) {
        if (now() - t0 > o.timeoutMin * 60_000) {
          const msg = `only ${have} of ${want} Pilots after ${((now() - t0) / 1000).toFixed(0)} s`;
          o.log(`scale: ${msg}`);
          return { points, controller: ctrl, error: msg };
        }
        await sleep(2000);
      }
      const createS = (now() - t0) / 1000;
      const createCpuS = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, Math.round((cpuOf(pid) - (cpu0[k] ?? 0)) * 10) / 10]));
      o.log(`scale: ${count} StatefulSets settled in ${createS.toFixed(1)} s (CPU s: ${JSON.stringify(createCpuS)})`);
      // A controller that ended while they were created is news (its CPU reads NaN): say why, from its own log.
      if (ctrl.exit) o.log(`scale: the controller did not last the creation of ${count}: ${ctrl.exit}`);
      await sleep(3000);

      // The baseline's controller first, restarted on the same set, then this one's.
      let baseline: ScalePoint['baseline'];
      if (o.baselineRoot) {
        await ctrl.stop();
        ctrl = await BenchController.start({ kubeconfig: b.controllerKubeconfig, identity: o.identity, logFile: `${o.logDir}/controller-scale-${count}-baseline.log`, root: o.baselineRoot });
        const rssReady = ctrl.rssBytes();
        const pass = await firstPass(ctrl, count);
        await sleep(5000 + o.idleS * 1000);
        baseline = {
          root: o.baselineRoot,
          readyS: ctrl.readyMs / 1000,
          firstPassS: (pass.at - ctrl.lifetime.spawnedAt) / 1000,
          rssReadyMiB: rssReady / 2 ** 20,
          rssIdleMiB: ctrl.rssBytes() / 2 ** 20,
          heapUsedIdleMiB: (await ctrl.metric('nodejs_heap_size_used_bytes')) / 2 ** 20,
        };
        o.log(`scale: baseline (${o.baselineRoot}) on ${count}: ready ${baseline.readyS.toFixed(2)} s, first pass ${baseline.firstPassS.toFixed(2)} s, RSS idle ${baseline.rssIdleMiB.toFixed(0)} MiB`);
      }
      // Restart the controller on the whole set.
      await ctrl.stop();
      ctrl = await BenchController.start({ kubeconfig: b.controllerKubeconfig, identity: o.identity, logFile: `${o.logDir}/controller-scale-${count}.log`, cpuProfDir: o.cpuProfDir, nodeFlags: o.nodeFlags, env: o.env });
      const spawnedAt = ctrl.lifetime.spawnedAt;
      const rssReady = ctrl.rssBytes();
      o.log(`scale: restarted controller ready in ${(ctrl.readyMs / 1000).toFixed(2)} s (up after ${(ctrl.bootMs / 1000).toFixed(2)} s, then listing and watching)`);
      const { at: lastChange, reconciles } = await firstPass(ctrl, count);
      const firstPassS = (lastChange - spawnedAt) / 1000;
      o.log(`scale: first pass over ${count} StatefulSets done ${firstPassS.toFixed(2)} s after spawn (${reconciles} reconciles)`);

      await sleep(5000);
      const gc0 = { n: await ctrl.metric('nodejs_gc_duration_seconds_count'), s: await ctrl.metric('nodejs_gc_duration_seconds_sum') };
      const idleFrom = now();
      const c0 = ctrl.cpuSeconds();
      const t0cpu = ctrl.threadCpu();
      await sleep(o.idleS * 1000);
      const idleTo = now();
      const idleCpuPct = ((ctrl.cpuSeconds() - c0) / ((idleTo - idleFrom) / 1000)) * 100;
      const t1cpu = ctrl.threadCpu();
      const idleCpuByThread: Record<string, number> = Object.fromEntries(
        Object.entries(t1cpu)
          .map(([k, v]) => [k, ((v - (t0cpu[k] ?? 0)) / ((idleTo - idleFrom) / 1000)) * 100] as const)
          .filter(([, v]) => v > 0),
      );
      const gc1 = { n: await ctrl.metric('nodejs_gc_duration_seconds_count'), s: await ctrl.metric('nodejs_gc_duration_seconds_sum') };
      const rssIdle = ctrl.rssBytes();
      const heapUsed = await ctrl.metric('nodejs_heap_size_used_bytes');
      o.log(`scale: idle ${o.idleS} s: ${idleCpuPct.toFixed(2)} % of a core (${Object.entries(idleCpuByThread).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}), ${gc1.n - gc0.n} GCs (${((gc1.s - gc0.s) * 1000).toFixed(0)} ms), RSS ${(rssIdle / 2 ** 20).toFixed(0)} MiB`);

      // React: one template change among them, patch → first partition move.
      const reactions: Reaction[] = [];
      const touched: { key: string; generation: number }[] = [];
      for (let r = 0; r < o.reactions; r++) {
        const i = Math.min(count - 1, Math.floor(((r + 0.5) / o.reactions) * count) + r);
        const ns = nsOf(i, o.namespaces);
        const name = nameOf(i);
        const key = `${ns}/${name}`;
        const oldRev = all.get(key)?.status?.updateRevision;
        const sent = now();
        const res = await b.apps.patchNamespacedStatefulSet(
          { name, namespace: ns, body: { spec: { template: { spec: { containers: [{ name: 'app', image: `example/app:react-${count}-${r}` }] } } } } },
          setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
        );
        const generation = res.metadata?.generation ?? 0;
        touched.push({ key, generation });
        const kcmP = waitFor(`${key} new revision`, 120_000, () => {
          const s = all.get(key);
          return (s?.status?.observedGeneration ?? 0) >= generation && s?.status?.updateRevision !== oldRev;
        });
        const moveP = waitFor(`${key} first partition move`, 120_000, () => (partitionOf(all.get(key) ?? {}) ?? 3) < 3);
        const [kcmAt, moveAt] = await Promise.all([kcmP, moveP]);
        reactions.push({ statefulSet: key, kcmMs: kcmAt - sent, moveMs: moveAt - sent });
        o.log(`scale: ${key} template changed: new revision visible after ${(kcmAt - sent).toFixed(0)} ms, partition moved after ${(moveAt - sent).toFixed(0)} ms`);
        await sleep(1000);
      }
      // Leave no rollout behind.
      await waitFor('the reaction rollouts to finish', 5 * 60_000, () =>
        touched.every(({ key, generation }) => {
          const s = all.get(key);
          return !!s && (s.metadata?.generation ?? 0) >= generation && settled(s);
        }),
      );

      const audit = readAudit(b.auditLogPath);
      const initial = within(audit, spawnedAt - 1000, ctrl.lifetime.readyAt + 1000).filter((r) => r.verb === 'list');
      points.push({
        count,
        pods: count * 3,
        namespaces: o.namespaces,
        createS,
        createCpuS,
        readyS: ctrl.readyMs / 1000,
        bootS: ctrl.bootMs / 1000,
        leaderS: ((ctrl.logTimes('became leader')[0] ?? Number.NaN) - spawnedAt) / 1000,
        firstPassS,
        reconcilesFirstPass: reconciles,
        rssReadyMiB: rssReady / 2 ** 20,
        rssIdleMiB: rssIdle / 2 ** 20,
        heapUsedIdleMiB: heapUsed / 2 ** 20,
        idleCpuPct,
        idleCpuByThread,
        idleGcCount: gc1.n - gc0.n,
        idleGcS: gc1.s - gc0.s,
        idleWindowS: (idleTo - idleFrom) / 1000,
        initialLists: Object.fromEntries(tally(initial)),
        idleRequests: Object.fromEntries(tally(within(audit, idleFrom, idleTo))),
        reactions,
        reactionMedianMs: median(reactions.map((r) => r.moveMs)),
        kcmMedianMs: median(reactions.map((r) => r.kcmMs)),
        ...(baseline ? { baseline } : {}),
      });
    }
    return { points, controller: ctrl };
  } finally {
    for (const w of waiters) w();
    await informer.stop();
  }
}

/** When the reconcile counter stopped moving after covering every StatefulSet once: the first pass is over. */
async function firstPass(ctrl: BenchController, count: number): Promise<{ at: number; reconciles: number }> {
  let reconciles = 0;
  let at = now();
  for (const deadline = Date.now() + 10 * 60_000; Date.now() < deadline; ) {
    const v = await ctrl.metric('sts_pilot_reconciles_total');
    if (v !== reconciles) {
      reconciles = v;
      at = now();
    }
    if (reconciles >= count && now() - at > 3000) break;
    await sleep(100);
  }
  return { at, reconciles };
}
