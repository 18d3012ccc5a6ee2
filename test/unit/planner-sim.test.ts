import { expect } from 'chai';
import { type Action, plan } from '../../lib/rollout/planner.ts';
import type { Approval, PodView, Snapshot } from '../../lib/rollout/snapshot.ts';
import type { RolloutMark } from '../../lib/rollout/status.ts';
import { rng } from '../rng.ts';

/**
 * A model of kube-controller-manager's StatefulSet controller (1.37, read from
 * pkg/controller/statefulset/stateful_set_control.go), a kubelet, a person who
 * edits the StatefulSet at random moments, and sts-pilot's planner, run in
 * seeded random interleavings with controller restarts. The real thing is
 * proven in test/integration; this explores many more orders.
 *
 * What the model keeps of the real controllers, because the races live there:
 * - one StatefulSet-controller sync observes the spec, deletes a pod and writes
 *   status.observedGeneration together (so sts-pilot can never wait for
 *   observedGeneration before guarding);
 * - OrderedReady syncs stop at the first pod that is not Running and Ready, so an
 *   unready pod is never replaced by it; Parallel deletes unavailable stale pods
 *   at or above the partition at once, and available ones within maxUnavailable;
 * - a created pod gets currentRevision below the partition, updateRevision at or above;
 * - sts-pilot reads, then writes later (other actors may run in between); its
 *   write is the guarded patch: it lands only if the generation and the
 *   annotations are still what it read.
 *
 * With the admission policies, a template change sets partition = replicas in
 * the same write and a lowered partition is refused; without them, the person's
 * writes land as they are.
 */
interface SimPod {
  rev: string;
  uid: string;
  rv: number;
  state: 'starting' | 'ready' | 'terminating';
}

interface Approved {
  uid: string;
  to: string;
  /**
   * Not the pod the hook approved, but the one that replaced it (an eviction)
   * between sts-pilot's read and its write: the write cannot test a pod, so this
   * window (the cache's lag plus one request, milliseconds in a real cluster)
   * stays open. docs/rollout.md says so.
   */
  raced?: boolean;
}

/** Revision X never becomes Ready: a broken release. */
const BROKEN = 'X';

interface SimOptions {
  seed: number;
  replicas: number;
  policies: boolean;
  parallel: boolean;
  /** The person edits: template changes (also to a broken release and back), hand-lowered partitions, scaling, evictions. */
  edits: boolean;
  start: number;
}

interface SimResult {
  /** Pods deleted to move them to another revision (by either controller), with the approval each rested on, if any. */
  moves: { uid: string; to: string; approved: boolean; raced: boolean; excused: boolean; by: 'kcm' | 'sts-pilot' }[];
  hookCalls: number;
  restarts: number;
  edits: number;
  evictions: number;
  ticks: number;
}

function simulate(o: SimOptions): SimResult {
  const rand = rng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  let uidSeq = 0;
  let rvSeq = 1;
  let n = o.replicas;
  const pods = new Map<number, SimPod>();
  for (let i = 0; i < n; i++) pods.set(i, { rev: 'A', uid: `u${uidSeq++}`, rv: rvSeq++, state: 'ready' });
  // The StatefulSet: spec, status, and sts-pilot's status annotation.
  let partition: number | undefined; // as created: unset
  let template = 'A';
  let generation = 1;
  let observed = 1;
  let cur = 'A';
  let upd = 'A';
  let mark: RolloutMark | undefined;
  let heldTemplate: string | undefined;
  let heldRevision: string | undefined;
  let annotationVersion = 0;
  // sts-pilot's memory, lost at a restart.
  let approval: Approval | undefined;
  let pending:
    | { action: Action; generation: number; annotations: number; editSeq: number; next: { index: number; uid: string } | undefined; observed: boolean; upd: string }
    | undefined;
  const approvals: Approved[] = [];
  const res: SimResult = { moves: [], hookCalls: 0, restarts: 0, edits: 0, evictions: 0, ticks: 0 };
  const tracing = process.env.SIM_TRACE === String(o.seed);
  const state = (): string =>
    `tpl=${template} P=${partition} N=${n} gen=${generation}/${observed} cur=${cur} upd=${upd} mark=${mark ? `${mark.revision}@${mark.partition}` : '-'} held=${heldTemplate}/${heldRevision} ` +
    [...pods].sort(([a], [b]) => a - b).map(([i, p]) => `${i}:${p.uid}:${p.rev}/${p.state[0]}`).join(' ');
  const trace = (what: string): void => {
    if (tracing) console.log(`${res.ticks} ${what.padEnd(40)} ${state()}`);
  };
  let now = 1_000_000;
  // Edits of the person not yet seen through a full read-and-write of sts-pilot's.
  let editSeq = 0;
  let guardedSeq = 0;

  const touch = (p: SimPod): void => {
    p.rv = rvSeq++;
  };
  const p0 = (): number => partition ?? 0;

  const snapshot = (): Snapshot => ({
    sts: {
      namespace: 'ns', name: 'db', uid: 's', resourceVersion: String(rvSeq), generation, observedGeneration: observed,
      replicas: n, ordinalsStart: o.start, strategy: 'RollingUpdate', podManagementPolicy: o.parallel ? 'Parallel' : 'OrderedReady',
      templateHash: template, heldTemplate, heldRevision, partition, minReadySeconds: 0, currentRevision: cur, updateRevision: upd,
      paused: undefined, mark, statusError: undefined,
    },
    pods: [...pods].map(([i, p]): PodView => ({
      name: `db-${o.start + i}`, uid: p.uid, resourceVersion: String(p.rv), ordinal: o.start + i, index: i, revision: p.rev,
      ready: p.state === 'ready', readySince: 0, terminating: p.state === 'terminating',
    })),
    now,
    approval,
    hookProblem: undefined,
    hookConfig: 'noop',
  });

  const recordMove = (p: SimPod, to: string, by: 'kcm' | 'sts-pilot'): void => {
    const approved = approvals.some((a) => a.uid === p.uid && a.to === to && !a.raced);
    const raced = !approved && approvals.some((a) => a.uid === p.uid && a.to === to && a.raced);
    res.moves.push({ uid: p.uid, to, approved, raced, excused: guardedSeq < editSeq, by });
    trace(`MOVE ${p.uid} -> ${to} by ${by}${approved ? '' : raced ? ' RACED' : ' UNAPPROVED'}`);
  };

  // One sync of the StatefulSet controller.
  const kcmSync = (): void => {
    observed = generation;
    upd = template;
    const monotonic = !o.parallel;
    const finish = (): void => {
      const all = [...Array(n).keys()].every((i) => pods.get(i)?.rev === upd && pods.get(i)?.state === 'ready');
      if (all && [...pods.keys()].every((i) => i < n)) cur = upd;
    };
    for (let i = 0; i < n; i++) {
      const p = pods.get(i);
      if (!p) {
        pods.set(i, { rev: i >= p0() ? upd : cur, uid: `u${uidSeq++}`, rv: rvSeq++, state: 'starting' });
        if (monotonic) return finish();
        continue;
      }
      if (monotonic && p.state !== 'ready') return finish();
    }
    // Condemned pods (scale-down), highest first.
    const condemned = [...pods.keys()].filter((i) => i >= n).sort((a, b) => b - a);
    for (const i of condemned) {
      const p = pods.get(i) as SimPod;
      if (p.state !== 'terminating') {
        p.state = 'terminating';
        touch(p);
        if (monotonic) return finish();
      }
    }
    if (o.parallel) {
      // maxUnavailable 2: unavailable stale pods at once, then available ones within the budget.
      const unavailable = [...Array(n).keys()].filter((i) => pods.get(i)?.state !== 'ready').length;
      for (let i = n - 1; i >= p0(); i--) {
        const p = pods.get(i);
        if (p && p.rev !== upd && p.state === 'starting') {
          recordMove(p, upd, 'kcm');
          p.state = 'terminating';
          touch(p);
        }
      }
      let budget = 2 - unavailable;
      for (let i = n - 1; i >= p0() && budget > 0; i--) {
        const p = pods.get(i);
        if (p && p.rev !== upd && p.state === 'ready') {
          recordMove(p, upd, 'kcm');
          p.state = 'terminating';
          touch(p);
          budget--;
        }
      }
      return finish();
    }
    for (let i = n - 1; i >= p0(); i--) {
      const p = pods.get(i) as SimPod;
      if (p.rev !== upd && p.state !== 'terminating') {
        recordMove(p, upd, 'kcm');
        p.state = 'terminating';
        touch(p);
        return finish();
      }
      if (p.state !== 'ready') return finish();
    }
    finish();
  };

  const kubeletTick = (): void => {
    const busy = [...pods].filter(([, p]) => p.state === 'terminating' || (p.state === 'starting' && p.rev !== BROKEN));
    if (busy.length === 0) return;
    const [i, p] = pick(busy);
    if (p.state === 'terminating') pods.delete(i);
    else {
      p.state = 'ready';
      touch(p);
    }
  };

  // A person reads what sts-pilot says when a rollout cannot go on, and does it.
  let advice: string | undefined;

  // sts-pilot, half one: read and plan (a hook call is answered here). A worker
  // handles one StatefulSet at a time: no read while its write is on the way.
  const stsPilotRead = (): void => {
    if (pending) return;
    const s = snapshot();
    const a = plan(s);
    advice = a.kind === 'hold' ? /delete pod (\S+)/.exec(a.reason)?.[1] : undefined;
    trace(`read: ${a.kind}${a.kind === 'patch' ? `:${a.why} P=${a.partition}` : ''} ${a.kind === 'hold' || a.kind === 'pause' ? a.reason : a.message}`);
    // The controller's own rule: an approval lives only while the plan is about it.
    const consumes = (a.kind === 'patch' && (a.why === 'step' || a.why === 'finish')) || (a.kind === 'deletePod' && a.why === 'step');
    if (approval && !consumes && !(a.kind === 'callHook' && a.key === approval.key)) approval = undefined;
    if (a.kind === 'callHook') {
      res.hookCalls++;
      if (rand() < 0.7) {
        approval = { key: a.key, at: now };
        if (a.next) approvals.push({ uid: a.next.uid, to: upd });
      }
      guardedSeq = Math.max(guardedSeq, editSeq);
      return;
    }
    if (a.kind === 'patch' || a.kind === 'deletePod') {
      const next = a.kind === 'patch' && a.why === 'step' && a.partition !== undefined ? a.partition : undefined;
      const uid = next === undefined ? undefined : pods.get(next)?.uid;
      pending = {
        action: a, generation, annotations: annotationVersion, editSeq, next: next !== undefined && uid ? { index: next, uid } : undefined,
        observed: observed === generation, upd,
      };
      return;
    }
    guardedSeq = Math.max(guardedSeq, editSeq);
  };

  // sts-pilot, half two: the write, guarded by what the read saw.
  const stsPilotWrite = (): void => {
    const w = pending;
    pending = undefined;
    if (!w) return;
    const a = w.action;
    if (a.kind === 'patch') {
      if (generation !== w.generation || annotationVersion !== w.annotations) return trace('write refused (test op)'); // plan again
      if (a.why === 'step') expect(a.partition, a.message).to.equal(p0() - 1);
      const now = w.next ? pods.get(w.next.index) : undefined;
      if (w.next && now && now.uid !== w.next.uid) approvals.push({ uid: now.uid, to: upd, raced: true });
      if (a.partition !== undefined && a.partition !== partition) {
        partition = a.partition;
        generation++;
      }
      if (a.mark !== undefined) mark = a.mark ?? undefined;
      if (a.partition !== undefined) {
        heldTemplate = template;
        heldRevision = w.observed ? w.upd : undefined;
      }
      annotationVersion++;
      if (a.why === 'step' || a.why === 'finish') approval = undefined;
      trace(`wrote ${a.why}`);
    } else if (a.kind === 'deletePod') {
      // The status (and the mark) is written first with the guarded patch; then the delete, uid precondition.
      if (generation !== w.generation || annotationVersion !== w.annotations) return trace('write refused (test op)');
      annotationVersion++;
      if (a.mark.revision !== mark?.revision || a.mark.partition !== mark.partition) mark = a.mark;
      const entry = [...pods].find(([, p]) => p.uid === a.pod.uid);
      if (!entry) return; // uid precondition
      const p = entry[1];
      if (p.state === 'terminating') return;
      recordMove(p, upd, 'sts-pilot');
      p.state = 'terminating';
      touch(p);
      if (a.why === 'step') approval = undefined;
    }
    guardedSeq = Math.max(guardedSeq, w.editSeq);
  };

  const personEdit = (): void => {
    const r = rand();
    res.edits++;
    trace(`edit ${r.toFixed(2)}`);
    if (r < 0.4) {
      // A new template, a broken release, or the previous one back (a rollback).
      const to = pick(['A', 'B', 'C', BROKEN].filter((t) => t !== template));
      template = to;
      generation++;
      editSeq++;
      if (o.policies && p0() < n) partition = n; // the mutating policy, in the same write
    } else if (r < 0.6) {
      // A partition lowered by hand.
      if (p0() === 0) return;
      const lower = Math.floor(rand() * p0());
      const settled = observed === generation && cur === upd && [...Array(n).keys()].every((i) => pods.get(i)?.rev === upd);
      if (o.policies && !settled) return; // refused by the validating policy
      partition = lower;
      generation++;
      editSeq++;
    } else if (r < 0.75) {
      n = Math.max(1, Math.min(6, n + (rand() < 0.5 ? -1 : 1)));
      generation++;
      editSeq++;
    } else {
      // An eviction (a node drained): the pod is deleted and recreated by the StatefulSet controller.
      const live = [...pods.values()].filter((p) => p.state !== 'terminating');
      if (live.length === 0) return;
      const p = pick(live);
      p.state = 'terminating';
      touch(p);
      res.evictions++;
    }
  };

  // Subscribe: sts-pilot holds the partition before anything changes.
  stsPilotRead();
  stsPilotWrite();
  expect(partition).to.equal(n);
  template = 'B';
  generation++;
  if (o.policies) partition = n;

  const quietAfter = 8_000;
  for (let tick = 0; tick < 40_000; tick++) {
    res.ticks = tick;
    now += 1000;
    if (tick === quietAfter && template === BROKEN) {
      // The way out of a broken release: a rollback or a fix.
      template = pick(['A', 'C']);
      generation++;
      editSeq++;
      if (o.policies && p0() < n) partition = n;
    }
    const r = rand();
    if (tick > quietAfter && advice && r < 0.01) {
      const i = Number(advice.slice('db-'.length)) - o.start;
      const p = pods.get(i);
      if (p && p.state !== 'terminating') {
        trace(`person follows the advice: delete ${advice}`);
        p.state = 'terminating';
        touch(p);
      }
      advice = undefined;
    } else if (r < 0.06) {
      approval = undefined; // SIGKILL + restart: only the cluster remains
      pending = undefined;
      res.restarts++;
    } else if (o.edits && tick < quietAfter && r < 0.075) personEdit();
    else if (r < 0.35) kcmSync();
    else if (r < 0.55) kubeletTick();
    else if (r < 0.8) stsPilotRead();
    else stsPilotWrite();
    const done =
      tick > quietAfter && cur === upd && upd === template && partition === n && mark === undefined && pods.size === n &&
      [...pods.values()].every((p) => p.rev === upd && p.state === 'ready');
    if (done) return res;
  }
  throw new Error(
    `seed ${o.seed}: rollout did not finish (template ${template}, P=${partition}, N=${n}, cur=${cur}, upd=${upd}, ` +
      `mark=${JSON.stringify(mark)}, pods ${[...pods].map(([i, p]) => `${i}:${p.rev}/${p.state}`).join(' ')})`,
  );
}

describe('planner against a model of the StatefulSet controller, with restarts', () => {
  for (const n of [1, 2, 5]) {
    it(`${n} replicas, 200 seeded runs, nobody else editing: every update approved, none repeated, rollout completes`, () => {
      let restarts = 0;
      for (let seed = 1; seed <= 200; seed++) {
        const r = simulate({ seed: seed * 7919 + n, replicas: n, policies: false, parallel: false, edits: false, start: seed % 3 });
        restarts += r.restarts;
        expect(r.moves.filter((m) => m.by === 'kcm'), `seed ${seed}`).to.have.length(n);
        for (const m of r.moves) expect(m.approved, `seed ${seed}: ${m.uid} moved to ${m.to} unapproved`).to.equal(true);
        expect(new Set(r.moves.map((m) => m.uid)).size).to.equal(r.moves.length);
      }
      expect(restarts).to.be.greaterThan(100);
    });
  }

  for (const parallel of [false, true]) {
    const mode = parallel ? 'Parallel, maxUnavailable 2' : 'OrderedReady';
    it(`${mode}, with the admission policies: template changes (rollbacks and broken releases among them), hand edits, scaling and evictions at random moments move no pod unapproved`, () => {
      const t = { moves: 0, raced: 0, edits: 0, evictions: 0, restarts: 0 };
      for (let seed = 1; seed <= 150; seed++) {
        const r = simulate({ seed: seed * 104729 + (parallel ? 1 : 0), replicas: 2 + (seed % 4), policies: true, parallel, edits: true, start: seed % 3 });
        t.moves += r.moves.length;
        t.edits += r.edits;
        t.evictions += r.evictions;
        t.restarts += r.restarts;
        for (const m of r.moves) {
          if (m.raced) t.raced++;
          else expect(m.approved, `seed ${seed}: ${m.uid} moved to ${m.to} by ${m.by} without an approval`).to.equal(true);
        }
      }
      console.log(
        `      ${t.moves} pod moves, ${t.edits} edits, ${t.evictions} evictions, ${t.restarts} restarts; unapproved: 0, ` +
          `${t.raced} of a pod evicted and recreated between sts-pilot's read and its write`,
      );
      expect(t.edits, 'the person edited').to.be.greaterThan(2000);
      expect(t.evictions, 'pods were evicted').to.be.greaterThan(300);
      expect(t.moves, 'pods moved').to.be.greaterThan(1000);
      expect(t.raced, 'the read-write window is rare').to.be.lessThan(t.moves / 50);
    });

    it(`${mode}, without the policies: a pod moves unapproved only before sts-pilot has read and written once after an edit (the race the guard cannot win)`, () => {
      const t = { moves: 0, raced: 0, excused: 0 };
      for (let seed = 1; seed <= 150; seed++) {
        const r = simulate({ seed: seed * 15485863 + (parallel ? 1 : 0), replicas: 2 + (seed % 4), policies: false, parallel, edits: true, start: seed % 3 });
        t.moves += r.moves.length;
        for (const m of r.moves) {
          if (m.approved) continue;
          if (m.raced) {
            t.raced++;
            continue;
          }
          expect(m.excused, `seed ${seed}: ${m.uid} moved to ${m.to} by ${m.by} unapproved, after sts-pilot had seen every edit`).to.equal(true);
          t.excused++;
        }
      }
      console.log(`      ${t.moves} pod moves; unapproved: ${t.excused} in the race after an edit, ${t.raced} in the read-write window, 0 otherwise`);
      // The model must exercise the race, or the statement above proves nothing.
      expect(t.excused, 'unapproved moves inside the race window').to.be.greaterThan(0);
      expect(t.moves).to.be.greaterThan(1000);
    });
  }
});
