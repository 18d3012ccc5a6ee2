import { expect } from 'chai';
import { plan } from '../../lib/rollout/planner.ts';
import type { Approval, PodView, Snapshot } from '../../lib/rollout/snapshot.ts';
import type { RolloutMark } from '../../lib/rollout/status.ts';

/**
 * A small model of the StatefulSet controller's partitioned RollingUpdate, driven
 * against the planner with seeded random interleavings and controller restarts.
 * The real thing is proven in test/integration; this explores many more orders.
 */
interface SimPod {
  rev: string;
  uid: string;
  state: 'ready' | 'starting' | 'terminating';
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function simulate(seed: number, n: number): { approvals: string[]; updates: string[]; hookCalls: number; restarts: number } {
  const rand = rng(seed);
  let uidSeq = 0;
  const pods: (SimPod | undefined)[] = Array.from({ length: n }, () => ({ rev: 'A', uid: `u${uidSeq++}`, state: 'ready' }));
  let partition = 0; // as created: unset
  let cur = 'A';
  let mark: RolloutMark | undefined;
  let approval: Approval | undefined;
  let upd = 'A';
  const approvals: string[] = []; // pod uid approved to move
  const updates: string[] = []; // pod uid deleted for an update
  let hookCalls = 0;
  let restarts = 0;
  let now = 1_000_000;

  const snapshot = (): Snapshot => ({
    sts: {
      namespace: 'ns', name: 'db', uid: 's', resourceVersion: '1', generation: 2, observedGeneration: 2,
      replicas: n, strategy: 'RollingUpdate', partition, minReadySeconds: 0, currentRevision: cur,
      updateRevision: upd, paused: undefined, mark, statusError: undefined,
    },
    pods: pods.flatMap((p, i): PodView[] =>
      p ? [{ name: `db-${i}`, uid: p.uid, ordinal: i, revision: p.rev, ready: p.state === 'ready', readySince: 0, terminating: p.state === 'terminating' }] : [],
    ),
    now,
    approval,
    hookProblem: undefined,
  });

  // The StatefulSet controller: one change per tick, highest ordinal first, waits for health.
  const stsControllerTick = (): void => {
    for (let i = 0; i < n; i++) {
      const p = pods[i];
      if (!p) {
        pods[i] = { rev: i >= partition ? upd : cur, uid: `u${uidSeq++}`, state: 'starting' };
        return;
      }
      if (p.state === 'terminating') {
        pods[i] = undefined;
        return;
      }
      if (p.state === 'starting') {
        p.state = 'ready';
        return;
      }
    }
    for (let i = n - 1; i >= partition; i--) {
      const p = pods[i] as SimPod;
      if (p.rev !== upd) {
        updates.push(p.uid);
        p.state = 'terminating';
        return;
      }
    }
    if (pods.every((p) => p?.rev === upd && p.state === 'ready')) cur = upd;
  };

  const controllerTick = (): void => {
    const a = plan(snapshot());
    if (a.kind === 'callHook') {
      hookCalls++;
      if (rand() < 0.7) {
        approval = { key: a.key, at: now };
        if (a.next) approvals.push(a.next.uid);
      }
    } else if (a.kind === 'patch') {
      expect(a.why, `unexpected ${a.why}: ${a.message}`).to.be.oneOf(['step', 'finish', 'hold']);
      if (a.why === 'step') expect(a.partition).to.equal(partition - 1);
      if (a.partition !== undefined) partition = a.partition;
      if (a.mark !== undefined) mark = a.mark ?? undefined;
      approval = undefined;
    }
  };

  // Subscribe a steady StatefulSet: the controller raises P to N before the template changes.
  controllerTick();
  expect(partition).to.equal(n);
  upd = 'B'; // the template changes
  for (let tick = 0; tick < 20_000; tick++) {
    now += 1000;
    const r = rand();
    if (r < 0.1) {
      approval = undefined; // SIGKILL + restart: only the cluster remains
      restarts++;
    } else if (r < 0.55) stsControllerTick();
    else controllerTick();
    if (cur === upd && partition === n && mark === undefined) return { approvals, updates, hookCalls, restarts };
  }
  throw new Error(`seed ${seed}: rollout did not finish (P=${partition}, cur=${cur})`);
}

describe('planner against a model StatefulSet controller, with restarts', () => {
  for (const n of [1, 2, 5]) {
    it(`${n} replicas, 200 seeded runs: every update approved, none repeated, rollout completes`, () => {
      let restarts = 0;
      for (let seed = 1; seed <= 200; seed++) {
        const r = simulate(seed * 7919 + n, n);
        restarts += r.restarts;
        // Each deleted pod was approved before, exactly once per pod, in ordinal order.
        expect(r.updates, `seed ${seed}`).to.have.length(n);
        for (const uid of r.updates) expect(r.approvals, `seed ${seed}: ${uid} moved unapproved`).to.include(uid);
        expect(new Set(r.updates).size).to.equal(n);
      }
      expect(restarts).to.be.greaterThan(100);
    });
  }
});
