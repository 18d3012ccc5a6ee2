import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { statefulSet } from '../test/integration/harness.ts';
import type { Bench } from './env.ts';
import { now } from './stats.ts';
import { rolledOut, Tracker } from './tracker.ts';

export type Kind = 'native' | 'sts-pilot';

/** One partition move as the bench's watch saw it, and what it waited for. */
export interface Transition {
  /** first: N → N-1, from the new updateRevision being visible; step: k → k-1, from pod k Ready at the
   *  update revision; finish: 0 → N, from currentRevision == updateRevision being visible; other: anything else. */
  kind: 'first' | 'step' | 'finish' | 'other';
  from: number | undefined;
  to: number | undefined;
  /** When the bench saw the partition move. */
  at: number;
  /** From the triggering event to the move; NaN when the trigger was not seen. */
  latencyMs: number;
}

export interface RolloutRun {
  kind: Kind;
  name: string;
  replicas: number;
  pair: number;
  /** The template patch was sent. */
  startedAt: number;
  /** Every pod updated and Ready, currentRevision == updateRevision (as the watch saw it). */
  convergedAt: number;
  /** convergedAt, and for sts-pilot the partition back at N. */
  doneAt: number;
  wallMs: number;
  transitions: Transition[];
  /**
   * Where the time goes, per pod (as the watch saw it): `handoffMs[i]` from pod k Ready at
   * the update revision to pod k-1 terminating (k = N-1 … 1); the rest of a step is the pod's
   * own restart, the same with and without sts-pilot.
   */
  handoffMs: number[];
  /** Patch sent → pod N-1 terminating. */
  startMs: number;
  /** Pod 0 Ready at the update revision → done. */
  tailMs: number;
}

export interface RolloutOptions {
  replicas: number[];
  pairs: number;
  /** Run only the sts-pilot side (step latency alone). */
  pilotOnly: boolean;
  log: (line: string) => void;
}

export const NS = 'bench-rollout';
export const stsName = (kind: Kind, n: number): string => `${kind === 'native' ? 'native' : 'pilot'}-${n}`;

/**
 * The same rollouts with and without sts-pilot, one at a time, native and
 * sts-pilot alternating (and the order flipped every pair, so drift over the run
 * falls on both sides alike).
 */
export async function runRollouts(b: Bench, o: RolloutOptions): Promise<RolloutRun[]> {
  await b.core.createNamespace({ body: { metadata: { name: NS } } }).catch(() => {});
  const t = await new Tracker(b.kc, NS).start();
  try {
    const kinds: Kind[] = o.pilotOnly ? ['sts-pilot'] : ['native', 'sts-pilot'];
    for (const n of o.replicas) {
      for (const kind of kinds) {
        const name = stsName(kind, n);
        if (t.statefulSet(name)) continue;
        await b.apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet(name, { replicas: n, ...(kind === 'sts-pilot' ? { hook: 'noop' } : {}) }) });
      }
    }
    for (const n of o.replicas) {
      for (const kind of kinds) {
        const name = stsName(kind, n);
        await t.waitFor(`${name} to settle`, 120_000 + n * 10_000, () => rolledOut(t, name, { generation: 1, ...(kind === 'sts-pilot' ? { partition: n } : {}) }));
      }
    }
    o.log(`rollouts: ${o.replicas.map((n) => kinds.map((k) => stsName(k, n)).join(', ')).join(', ')} settled in namespace ${NS}`);
    await sleep(2000);

    const runs: RolloutRun[] = [];
    let image = 1;
    for (let pair = 0; pair < o.pairs; pair++) {
      for (const n of o.replicas) {
        const order = pair % 2 === 0 ? kinds : [...kinds].reverse();
        for (const kind of order) {
          image++;
          const run = await rollout(b, t, kind, n, pair, `example/app:${image}`);
          runs.push(run);
          const steps = run.transitions.filter((x) => x.kind === 'step').map((x) => x.latencyMs.toFixed(0));
          o.log(
            `rollouts: pair ${pair + 1}/${o.pairs} ${kind.padEnd(9)} ${String(n).padStart(2)} replicas: ${(run.wallMs / 1000).toFixed(2)} s` +
              ` (start ${run.startMs.toFixed(0)} ms, handoffs ms: ${run.handoffMs.map((v) => v.toFixed(0)).join(' ')}, tail ${run.tailMs.toFixed(0)} ms)` +
              (kind === 'sts-pilot' ? ` (step latencies ms: ${steps.join(' ')})` : ''),
          );
          // Let trailing status updates land before the next run starts.
          await sleep(1500);
        }
      }
    }
    return runs;
  } finally {
    await t.stop();
  }
}

/** One rollout of `kind`'s StatefulSet of n replicas to `image`, timed by the tracker's watch. */
export async function rollout(b: Bench, t: Tracker, kind: Kind, n: number, pair: number, image: string): Promise<RolloutRun> {
  const name = stsName(kind, n);
  const before = t.statefulSet(name);
  const oldRevision = before?.status?.updateRevision;
  const startedAt = now();
  const patched = await b.apps.patchNamespacedStatefulSet(
    { name, namespace: NS, body: { spec: { template: { spec: { containers: [{ name: 'app', image }] } } } } },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  const generation = patched.metadata?.generation ?? 0;
  const timeout = 120_000 + n * 30_000;
  const converged = t.waitFor(`${name} rollout (converged)`, timeout, () => rolledOut(t, name, { generation }));
  const done = t.waitFor(`${name} rollout`, timeout, () => rolledOut(t, name, { generation, ...(kind === 'sts-pilot' ? { partition: n } : {}) }));
  const [convergedAt, doneAt] = await Promise.all([converged, done]);
  const newRevision = t.statefulSet(name)?.status?.updateRevision ?? '';
  if (newRevision === oldRevision) throw new Error(`${name}: the template change made no new revision`);
  return {
    kind,
    name,
    replicas: n,
    pair,
    startedAt,
    convergedAt,
    doneAt,
    wallMs: doneAt - startedAt,
    transitions: kind === 'sts-pilot' ? transitions(t, name, n, startedAt, doneAt, generation, newRevision) : [],
    ...handoffs(t, name, n, startedAt, doneAt, newRevision),
  };
}

function handoffs(t: Tracker, name: string, n: number, from: number, to: number, rev: string): Pick<RolloutRun, 'handoffMs' | 'startMs' | 'tailMs'> {
  const readyAt = new Map<number, number>();
  const leavingAt = new Map<number, number>();
  for (const p of t.pods) {
    if (p.owner !== name || p.t < from || p.t > to + 1) continue;
    if (p.revision === rev && p.ready && !p.terminating && !p.deleted && !readyAt.has(p.ordinal)) readyAt.set(p.ordinal, p.t);
    if (p.revision !== rev && (p.terminating || p.deleted) && !leavingAt.has(p.ordinal)) leavingAt.set(p.ordinal, p.t);
  }
  const handoffMs: number[] = [];
  for (let k = n - 1; k >= 1; k--) {
    const a = readyAt.get(k);
    const b = leavingAt.get(k - 1);
    handoffMs.push(a !== undefined && b !== undefined ? b - a : Number.NaN);
  }
  const first = leavingAt.get(n - 1);
  const last = readyAt.get(0);
  return { handoffMs, startMs: first === undefined ? Number.NaN : first - from, tailMs: last === undefined ? Number.NaN : to - last };
}

/** Partition moves of one rollout, each matched with the watch event that allowed it. */
function transitions(t: Tracker, name: string, n: number, from: number, to: number, generation: number, rev: string): Transition[] {
  const sts = t.sts.filter((r) => r.name === name && r.t >= from && r.t <= to + 1);
  const revisionVisible = sts.find((r) => (r.observedGeneration ?? 0) >= generation && r.updateRevision === rev)?.t;
  const statusDone = sts.find((r) => r.currentRevision === rev && r.updateRevision === rev)?.t;
  const readyAt = new Map<number, number>();
  for (const p of t.pods) {
    if (p.owner !== name || p.t < from || p.t > to + 1) continue;
    if (p.revision === rev && p.ready && !p.terminating && !p.deleted && !readyAt.has(p.ordinal)) readyAt.set(p.ordinal, p.t);
  }
  const out: Transition[] = [];
  let prev: number | undefined = n;
  for (const r of sts) {
    if (r.partition === prev) continue;
    const move = { from: prev, to: r.partition, at: r.t };
    let kind: Transition['kind'] = 'other';
    let trigger: number | undefined;
    if (prev === n && r.partition === n - 1) {
      kind = 'first';
      trigger = revisionVisible;
    } else if (prev !== undefined && r.partition === prev - 1) {
      kind = 'step';
      trigger = readyAt.get(prev);
    } else if (prev === 0 && r.partition === n) {
      kind = 'finish';
      trigger = statusDone;
    }
    out.push({ kind, ...move, latencyMs: trigger === undefined ? Number.NaN : r.t - trigger });
    prev = r.partition;
  }
  return out;
}
