import type { V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hooks as registered } from '../../hooks/index.ts';
import { parseHookOptions, type RolloutHook } from '../../lib/hook.ts';
import { parsePilot, Pilot } from '../../lib/pilot/schema.ts';
import { type Action, APPROVAL_TTL_MS, ORDER_RETRY_MS, ORDER_TTL_MS, orderKey, plan } from '../../lib/rollout/planner.ts';
import { podView, type PodView, type Snapshot, statefulSetView } from '../../lib/rollout/snapshot.ts';
import { parseStatusAnnotation } from '../../lib/rollout/status.ts';

/**
 * Seeded fuzzing of everything that reads input people (or other programs) write:
 * the status annotation, every hook's option annotations, the views of
 * StatefulSets and pods, the Pilot schema, and the planner on random snapshots.
 * STS_PILOT_FUZZ_SEED=<n> replays a run; a failure prints the seed and the input.
 */

const envSeed = process.env.STS_PILOT_FUZZ_SEED;
const SEED = envSeed !== undefined && /^[0-9]+$/.test(envSeed) ? Number(envSeed) >>> 0 : (Date.now() ^ (process.pid << 12)) >>> 0;

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

class Gen {
  readonly r: () => number;
  constructor(seed: number) {
    this.r = prng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)] as T;
  }
  /** Strings people and programs get wrong: empty, huge, control characters, unicode, JSON fragments, numbers. */
  string(): string {
    switch (this.int(0, 9)) {
      case 0:
        return '';
      case 1:
        return this.pick(['true', 'false', 'null', '0', '-1', '1e3', '007', '9999999', 'NaN', ' 10', '10 ', 'ten', '2.5', '0x10']);
      case 2:
        return this.pick(['http://127.0.0.1:1/', 'https://u:p@h.example/x?y=1#z', 'ftp://x/', 'http://', 'not a url', 'http://[::1]:99999/', 'HTTP://A', '//x', 'http://a b/']);
      case 3:
        return this.pick(['{', '}', '[', '{"rollout":', '{"rollout":{"revision":"a","partition":1}}', '"', '\\', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}']);
      case 4:
        return 'x'.repeat(this.int(1, 3) === 1 ? this.int(1000, 70_000) : this.int(1, 80));
      case 5:
        return String.fromCharCode(...Array.from({ length: this.int(1, 12) }, () => this.int(0, 31)));
      case 6:
        return Array.from({ length: this.int(1, 10) }, () => this.pick(['é', '💥', '\u202e', '\ud800', 'Ω', '\u0000', '名'])).join('');
      case 7:
        return JSON.stringify(this.json(3));
      default:
        return Array.from({ length: this.int(1, 20) }, () => String.fromCharCode(this.int(32, 126))).join('');
    }
  }
  json(depth: number): unknown {
    const leaf = (): unknown =>
      this.pick([null, true, false, 0, -1, 1, 1.5, -0, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 'a', '', this.string()]);
    if (depth <= 0 || this.chance(0.35)) return leaf();
    if (this.chance(0.4)) return Array.from({ length: this.int(0, 4) }, () => this.json(depth - 1));
    const keys = ['rollout', 'revision', 'partition', 'state', 'message', 'since', '__proto__', 'constructor', 'x', ''];
    const o: Record<string, unknown> = {};
    for (let i = this.int(0, 4); i > 0; i--) o[this.chance(0.8) ? this.pick(keys) : this.string()] = this.json(depth - 1);
    return o;
  }
  /** A copy of `v` with one random place changed: removed, retyped, or replaced. */
  mutate(v: unknown, depth = 0): unknown {
    if (v === null || typeof v !== 'object' || depth > 6 || this.chance(0.2)) return this.chance(0.5) ? this.json(2) : this.string();
    const copy: Record<string, unknown> | unknown[] = Array.isArray(v) ? [...v] : { ...(v as Record<string, unknown>) };
    const keys = Object.keys(copy);
    if (keys.length === 0) return copy;
    const k = this.pick(keys);
    if (this.chance(0.2)) delete (copy as Record<string, unknown>)[k];
    else (copy as Record<string, unknown>)[k] = this.mutate((copy as Record<string, unknown>)[k], depth + 1);
    return copy;
  }
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' && x.length > 200 ? `${x.slice(0, 200)}…(${x.length})` : x));
  return s === undefined ? String(v) : s.length > 3000 ? `${s.slice(0, 3000)}…` : s;
};

/** Run `n` cases; the first failure names the seed, the case number and its input. */
function fuzz<T>(what: string, n: number, seed: number, make: (g: Gen) => T, check: (input: T) => void): void {
  const g = new Gen(seed);
  for (let i = 0; i < n; i++) {
    const input = make(g);
    try {
      check(input);
    } catch (err) {
      const e = err as Error;
      e.message = `${what}, case ${i} of seed ${seed} (STS_PILOT_FUZZ_SEED=${SEED}): ${e.message}\n      input: ${show(input)}`;
      throw e;
    }
  }
}

const validStatus = { rollout: { revision: 'web-5d8f7c9b', partition: 3 }, state: 'Rolling', message: 'asking the hook', since: '2026-11-02T10:00:00.000Z' };

/** Every hook: those registered, and any hook module in hooks/ (registered later, or not yet). */
async function allHooks(): Promise<RolloutHook[]> {
  const out = new Map<string, RolloutHook>(registered);
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'hooks');
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    const mod = (await import(pathToFileURL(join(dir, d.name, 'index.ts')).href).catch(() => ({}))) as Record<string, unknown>;
    for (const v of Object.values(mod)) {
      const h = v as Partial<RolloutHook> | null;
      if (h && typeof h === 'object' && typeof h.name === 'string' && typeof h.podUpdateTransition === 'function' && h.options && !out.has(h.name)) {
        out.set(h.name, h as RolloutHook);
      }
    }
  }
  return [...out.values()];
}

describe(`fuzz: parsers and planner never throw and never take an unsafe step (seed ${SEED}; STS_PILOT_FUZZ_SEED replays)`, () => {
  before(() => console.log(`      fuzz seed ${SEED}`));

  it('parseStatusAnnotation: 6000 random and mutated annotations; never throws, a mark it returns is well-formed and round-trips', () => {
    fuzz(
      'parseStatusAnnotation',
      6000,
      SEED,
      (g) => (g.chance(0.5) ? JSON.stringify(g.mutate(validStatus)) : g.chance(0.5) ? g.string() : JSON.stringify(validStatus).slice(0, g.int(0, 90))),
      (raw) => {
        const r = parseStatusAnnotation(raw);
        if (!r.ok) {
          expect(r.error).to.be.a('string').and.not.equal('');
          return;
        }
        const m = r.status.rollout;
        if (m) {
          expect(m.revision).to.be.a('string').and.not.equal('');
          expect(Number.isSafeInteger(m.partition) && m.partition >= 0, `partition ${m.partition}`).to.equal(true);
        }
        const again = parseStatusAnnotation(JSON.stringify(r.status));
        expect(again).to.deep.equal(r);
      },
    );
  });

  it('parseHookOptions: 1500 random option sets for every hook; never throws, an error names the hook', async () => {
    const all = await allHooks();
    expect(all.map((h) => h.name)).to.include.members([...registered.keys()]);
    const names = ['url', 'timeout', 'approve', 'credentials-secret', 'ca-secret', 'ca-configmap', 'required-health', 'strategy', 'URL', 'x', ''];
    const values = ['http://127.0.0.1:9200', 'https://es.example:9200/', 'http://u:p@h/', 'not a url', '', 'ftp://x', '10', '0', 'ten', 'green', 'yellow', 'drain', 'restart', 'db-credentials', 'Bad_Name', 'web-0@web-5d8f'];
    for (const hook of all) {
      const prefix = `${hook.name}.sts-pilot.io/`;
      fuzz(
        `parseHookOptions(${hook.name})`,
        1500,
        SEED + hook.name.length,
        (g) => {
          if (g.chance(0.05)) return undefined;
          const a: Record<string, string> = {};
          for (let i = g.int(0, 6); i > 0; i--) {
            const key = g.chance(0.85) ? prefix + (g.chance(0.8) ? g.pick(names) : g.string()) : `${g.pick(['http', 'noop', 'other', ''])}.sts-pilot.io/${g.pick(names)}`;
            a[key] = g.chance(0.6) ? g.pick(values) : g.string();
          }
          return a;
        },
        (annotations) => {
          const r = parseHookOptions(hook, annotations);
          if (!r.ok) expect(r.error).to.match(new RegExp(`^invalid ${hook.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} hook options`));
        },
      );
    }
  });

  it('statefulSetView and podView: 4000 API-shaped objects with random values and holes; never throw, views are consistent', () => {
    const maybe = <T>(g: Gen, v: () => T): T | undefined | null => (g.chance(0.15) ? (g.chance(0.5) ? undefined : (null as unknown as undefined)) : v());
    fuzz(
      'statefulSetView',
      2000,
      SEED + 1,
      (g): V1StatefulSet => ({
        metadata: maybe(g, () => ({
          name: maybe(g, () => g.pick(['web', 'db', g.string()])) ?? undefined,
          namespace: maybe(g, () => 'ns') ?? undefined,
          uid: 'u',
          resourceVersion: '1',
          generation: maybe(g, () => g.int(0, 5)) ?? undefined,
          labels: maybe(g, () => ({ 'sts-pilot.io/hook': g.string() })) ?? undefined,
          annotations:
            maybe(g, () => ({
              ...(g.chance(0.6) ? { 'sts-pilot.io/status': g.chance(0.5) ? JSON.stringify(g.mutate(validStatus)) : g.string() } : {}),
              ...(g.chance(0.4) ? { 'sts-pilot.io/paused': g.chance(0.5) ? g.pick(['true', 'false']) : g.string() } : {}),
            })) ?? undefined,
        })) ?? undefined,
        spec: maybe(g, () => ({
          replicas: maybe(g, () => g.int(0, 9)) ?? undefined,
          serviceName: 'x',
          selector: {},
          template: {},
          minReadySeconds: maybe(g, () => g.int(0, 100)) ?? undefined,
          updateStrategy: maybe(g, () => ({ type: maybe(g, () => g.pick(['RollingUpdate', 'OnDelete', g.string()])) ?? undefined, rollingUpdate: maybe(g, () => ({ partition: maybe(g, () => g.int(0, 12)) ?? undefined })) ?? undefined })) ?? undefined,
        })) as V1StatefulSet['spec'],
        status: maybe(g, () => ({ replicas: 0, observedGeneration: maybe(g, () => g.int(0, 5)) ?? undefined, currentRevision: maybe(g, () => g.string()) ?? undefined, updateRevision: maybe(g, () => g.string()) ?? undefined })) ?? undefined,
      }),
      (sts) => {
        const v = statefulSetView(sts);
        expect(v.replicas).to.be.a('number');
        expect(v.strategy).to.be.a('string');
        const raw = sts.metadata?.annotations?.['sts-pilot.io/status'];
        const parsed = parseStatusAnnotation(raw);
        expect(v.statusError === undefined, 'statusError exactly when the annotation does not parse').to.equal(parsed.ok);
        if (v.mark) expect(parsed.ok && parsed.status.rollout).to.deep.equal(v.mark);
        // Whatever the view, the planner decides without throwing.
        plan({ sts: v, pods: [], now: 1_000_000, approval: undefined, hookProblem: undefined, hookConfig: '' });
      },
    );
    fuzz(
      'podView',
      2000,
      SEED + 2,
      (g): { pod: V1Pod; sts: string } => {
        const sts = g.pick(['web', 'web-1', 'db', '']);
        const ordinal = g.pick(['0', '1', '12', '007', '-1', '1.0', ' 1', '', 'x', '99999999999999999999']);
        return {
          sts,
          pod: {
            metadata: maybe(g, () => ({
              name: maybe(g, () => (g.chance(0.7) ? `${g.pick([sts, 'web', 'other'])}-${ordinal}` : g.string())) ?? undefined,
              uid: maybe(g, () => g.pick(['uid-1', ''])) ?? undefined,
              labels: maybe(g, () => ({
                ...(g.chance(0.6) ? { 'apps.kubernetes.io/pod-index': g.chance(0.5) ? ordinal : g.string() } : {}),
                ...(g.chance(0.8) ? { 'controller-revision-hash': g.string() } : {}),
              })) ?? undefined,
              deletionTimestamp: g.chance(0.2) ? new Date(0) : undefined,
            })) ?? undefined,
            status: maybe(g, () => ({
              phase: maybe(g, () => g.pick(['Running', 'Pending', 'Failed', g.string()])) ?? undefined,
              conditions: maybe(g, () => [{ type: g.pick(['Ready', 'ContainersReady', 'x']), status: g.pick(['True', 'False', 'Unknown', g.string()]), lastTransitionTime: new Date(g.int(0, 2_000_000_000_000)) }]) ?? undefined,
            })) ?? undefined,
          },
        };
      },
      ({ pod, sts }) => {
        const v = podView(pod, sts);
        if (!v) return;
        expect(v.name).to.equal(pod.metadata?.name);
        expect(v.uid).to.not.equal('');
        expect(Number.isSafeInteger(v.ordinal) && v.ordinal >= 0, `ordinal ${v.ordinal}`).to.equal(true);
        // The StatefulSet controller knows a pod's ordinal by its name, whatever its labels say.
        expect(v.name, 'the ordinal agrees with the pod name').to.equal(`${sts}-${v.ordinal}`);
        if (v.ready) expect(pod.status?.phase).to.equal('Running');
        if (v.readySince !== undefined) expect(v.ready).to.equal(true);
      },
    );
  });

  it('Pilot schema: 3000 random and mutated Pilots; parsePilot never throws and returns only what the schema accepts', () => {
    const valid = {
      apiVersion: 'sts-pilot.io/v1alpha1',
      kind: 'Pilot',
      metadata: { name: 'es-0', namespace: 'db', uid: 'p-1', ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'es-0', uid: 'pod-1', controller: true }] },
      spec: { application: 'elasticsearch', options: { url: 'http://es:9200' } },
      status: {
        phase: 'Running',
        revision: 'web-5d8f7c9b',
        heartbeatTime: '2026-11-02T10:00:00.000Z',
        conditions: [{ type: 'Ready', status: 'True', reason: 'ApplicationReady', lastTransitionTime: '2026-11-02T09:59:00Z' }],
        application: { probe: 'elasticsearch', version: '2.19.6', nodeName: 'es-0', health: 'green', shards: { started: 4, relocating: 0, initializing: 1 }, documents: 12 },
      },
    };
    expect(Pilot.safeParse(valid).success, 'the seed Pilot is valid').to.equal(true);
    fuzz(
      'parsePilot',
      3000,
      SEED + 3,
      (g) => (g.chance(0.8) ? g.mutate(g.chance(0.5) ? valid : g.mutate(valid)) : g.json(4)),
      (raw) => {
        const r = parsePilot(raw);
        if ('error' in r) {
          expect(r.error).to.be.a('string').and.not.equal('');
          return;
        }
        expect(Pilot.safeParse(r.pilot).success, 'what parsePilot returns parses').to.equal(true);
        if (r.statusError !== undefined) expect(r.pilot.status, 'a status that did not parse is dropped').to.equal(undefined);
      },
    );
  });

  it('a pod-index label edited by hand cannot make the planner skip a pod that still runs the old revision', () => {
    // web-2 (updated) relabelled as ordinal 1: web-1, still at revision A, must not be skipped over.
    const pod = (name: string, revision: string, index: string): V1Pod => ({
      metadata: { name, uid: `uid-${name}`, labels: { 'controller-revision-hash': revision, 'apps.kubernetes.io/pod-index': index } },
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date(0) }] },
    });
    const views = [pod('web-0', 'A', '0'), pod('web-1', 'A', '1'), pod('web-2', 'B', '1')].map((p) => podView(p, 'web')).filter((p): p is PodView => p !== undefined);
    const s: Snapshot = {
      sts: {
        namespace: 'ns', name: 'web', uid: 'u', resourceVersion: '1', generation: 2, observedGeneration: 2, replicas: 3, ordinalsStart: 0, strategy: 'RollingUpdate',
        podManagementPolicy: 'OrderedReady', templateHash: 't', heldTemplate: 't', heldRevision: undefined,
        partition: 2, minReadySeconds: 0, currentRevision: 'A', updateRevision: 'B', paused: undefined, mark: undefined, statusError: undefined,
      },
      pods: views,
      now: 1_000_000,
      approval: undefined,
      hookProblem: undefined,
      hookConfig: '',
    };
    const a = plan(s);
    const lowers = a.kind === 'patch' && a.partition !== undefined && a.partition < 2;
    expect(lowers, `web-1 would move without the hook: ${show(a)}`).to.equal(false);
  });

  describe('plan() on 12000 random snapshots', () => {
    const REVS = ['A', 'B', 'C'] as const;

    function snapshot(g: Gen): Snapshot {
      const n = g.int(0, 7);
      const now = 10_000_000;
      const upd = g.chance(0.93) ? 'B' : undefined;
      const strategy = g.chance(0.7) ? 'RollingUpdate' : g.chance(0.7) ? 'OnDelete' : g.pick(['', 'Recreate', 'rollingupdate']);
      const minReadySeconds = g.chance(0.7) ? 0 : g.int(1, 30);
      const start = g.chance(0.7) ? 0 : g.int(1, 3);
      const pods: PodView[] = [];
      for (let i = g.chance(0.05) ? -1 : 0; i < n + (g.chance(0.15) ? g.int(1, 2) : 0); i++) {
        if (g.chance(0.1)) continue;
        const revision = g.chance(0.05) ? undefined : g.pick(REVS);
        const terminating = g.chance(0.1);
        const ready = !terminating && g.chance(0.85);
        pods.push({
          name: `web-${start + i}`,
          uid: `uid-${i}-${revision ?? 'none'}-${g.int(0, 3)}`,
          resourceVersion: String(g.int(1, 3)),
          ordinal: start + i,
          index: i,
          revision,
          ready,
          readySince: ready ? now - g.int(0, 60_000) : undefined,
          terminating,
        });
      }
      const generation = g.int(1, 3);
      const s: Snapshot = {
        sts: {
          namespace: 'ns',
          name: 'web',
          uid: 'sts-uid',
          resourceVersion: '7',
          generation,
          observedGeneration: g.chance(0.9) ? generation : g.chance(0.5) ? undefined : generation - 1,
          replicas: n,
          ordinalsStart: start,
          strategy,
          podManagementPolicy: g.chance(0.7) ? 'OrderedReady' : 'Parallel',
          templateHash: 'tB',
          heldTemplate: g.chance(0.8) ? 'tB' : g.chance(0.5) ? undefined : 'tOld',
          heldRevision: g.chance(0.5) ? undefined : g.pick(REVS),
          partition: g.chance(0.1) ? undefined : g.int(0, n + 2),
          minReadySeconds,
          currentRevision: g.chance(0.5) ? 'A' : g.pick(REVS),
          updateRevision: upd,
          paused: g.chance(0.85) ? undefined : g.pick(['true', 'false', 'maybe', '', 'TRUE']),
          mark: g.chance(0.5) ? undefined : { revision: g.chance(0.7) ? 'B' : g.pick(REVS), partition: g.int(0, n + 1) },
          statusError: undefined,
        },
        pods,
        now,
        approval: undefined,
        hookProblem: g.chance(0.12) ? 'unknown hook "x"' : undefined,
        hookConfig: 'h',
        hookOrders: g.chance(0.3),
      };
      // The hook's recorded order (podUpdateOrder): none, for other pods, failed, old, or for these stale
      // pods in a random order (sometimes naming pods that are not stale: the planner must skip them).
      if (s.hookOrders && g.chance(0.8)) {
        const staleNow = pods.filter((p) => p.index >= 0 && p.index < n && p.revision !== upd);
        const names = staleNow.map((p) => p.name).sort(() => g.r() - 0.5);
        if (g.chance(0.1)) names.push(`web-${g.int(0, 9)}`);
        const roll = g.r();
        const at = new Date(now - (g.chance(0.8) ? g.int(0, ORDER_RETRY_MS) : g.int(0, 2 * ORDER_TTL_MS))).toISOString();
        const key = roll < 0.15 ? g.string() : orderKey(s, upd ?? '', staleNow);
        s.sts.order = roll < 0.3 ? { key, at, error: 'Patroni unreachable' } : { key, at: g.chance(0.05) ? 'garbage' : at, pods: names, reason: 'replicas first' };
      }
      // An approval: none, garbage, or the key of the call this very snapshot asks for (fresh or expired).
      const roll = g.r();
      if (roll < 0.15) s.approval = { key: g.string(), at: now };
      else if (roll < 0.75) {
        const ask = plan(s);
        if (ask.kind === 'callHook') s.approval = { key: ask.key, at: now - (g.chance(0.85) ? g.int(0, APPROVAL_TTL_MS) : APPROVAL_TTL_MS + g.int(1, 60_000)) };
      }
      return s;
    }

    const atUpdate = (s: Snapshot, i: number): boolean => {
      const p = s.pods.find((x) => x.index === i);
      return p !== undefined && !p.terminating && p.revision === s.sts.updateRevision;
    };
    const stale = (s: Snapshot, i: number): boolean => {
      const p = s.pods.find((x) => x.index === i);
      return p !== undefined && p.revision !== s.sts.updateRevision;
    };
    /** The call this snapshot would make without an approval. */
    const askedWithout = (s: Snapshot): Action => plan({ ...s, approval: undefined });
    const freshApproval = (s: Snapshot): boolean => s.approval !== undefined && s.now - s.approval.at <= APPROVAL_TTL_MS;

    it('never throws, is deterministic, and every action keeps the safety rules', () => {
      const counts: Record<string, number> = {};
      fuzz('plan', 12_000, SEED + 4, snapshot, (s) => {
        const a = plan(s);
        expect(plan(s), 'deterministic').to.deep.equal(a);
        const tag = a.kind === 'patch' ? `patch:${a.why}` : a.kind;
        counts[tag] = (counts[tag] ?? 0) + 1;
        const { sts } = s;
        const n = sts.replicas;
        const paused = sts.paused !== undefined && sts.paused !== 'false';
        if (paused) expect(a.kind, 'paused or a bad paused value: hands off').to.equal('hold');
        if (s.hookProblem) expect(a.kind, 'an unusable hook is never called').to.not.equal('callHook');

        if (a.kind === 'patch' && a.partition !== undefined) {
          expect(sts.strategy, 'partition patches only for RollingUpdate').to.equal('RollingUpdate');
          const limit = Math.max(n, ...s.pods.map((p) => p.index + 1));
          expect(Number.isSafeInteger(a.partition) && a.partition >= 0 && a.partition <= limit, `partition ${a.partition} within 0..${limit}`).to.equal(true);
          // Pods at or above N do not exist: the partition that matters is min(P, N).
          const before = Math.min(sts.partition ?? 0, n);
          const after = Math.min(a.partition, n);
          if (after < before - 1 || (after < before && a.why !== 'step')) {
            expect(a.why, `lowering ${before} -> ${after} without a hook call`).to.equal('skip');
            // Or missing behind a broken pod the StatefulSet controller (OrderedReady) stops at: created at the update revision later.
            const f = Math.max(-1, ...s.pods.filter((p) => p.index >= 0 && p.index < n && p.revision !== sts.updateRevision).map((p) => p.index));
            const fp = s.pods.find((p) => p.index === f);
            const stuck = sts.podManagementPolicy !== 'Parallel' && fp !== undefined && !fp.ready && !fp.terminating && fp.revision !== undefined && fp.revision !== sts.currentRevision;
            const blocked = (i: number): boolean => stuck && i > f && !s.pods.some((p) => p.index === i);
            for (let i = after; i < before; i++) expect(atUpdate(s, i) || blocked(i), `skip over web-${i}, which does not run ${sts.updateRevision}`).to.equal(true);
          }
          if (a.why === 'step') {
            expect(after, 'a step lowers the partition by exactly one').to.equal(before - 1);
            expect(freshApproval(s), 'a step needs a fresh approval').to.equal(true);
            const ask = askedWithout(s);
            expect(ask.kind, 'without the approval it would ask the hook').to.equal('callHook');
            if (ask.kind === 'callHook') {
              expect(ask.key, 'the approval is for this very step').to.equal(s.approval?.key);
              expect(ask.next?.index, 'the approved pod is the one the step moves').to.equal(after);
            }
            expect(a.mark).to.deep.equal({ revision: sts.updateRevision, partition: after, uid: ask.kind === 'callHook' ? ask.next?.uid : undefined });
          }
          if (a.why === 'guard') {
            // A guard may raise above N: a stale pod a scale-down left is back in range after a scale-up.
            const top = Math.max(n, ...s.pods.filter((p) => !p.terminating).map((p) => p.index + 1));
            const raised = a.partition;
            expect(raised, 'a guard only raises').to.be.greaterThan(sts.partition ?? 0);
            expect(raised, 'never above the highest pod').to.be.at.most(top);
            const i = raised - 1;
            const gone = !s.pods.some((p) => p.index === i);
            const staleAt = s.pods.some((p) => p.index === i && (i < n || !p.terminating) && p.revision !== sts.updateRevision);
            const newTemplate = sts.heldTemplate !== undefined && sts.heldTemplate !== sts.templateHash;
            const unobserved = sts.observedGeneration === undefined || sts.observedGeneration < sts.generation;
            if (newTemplate) expect(raised, 'a new template raises the partition above every pod').to.equal(top);
            else if (raised !== top || !unobserved) expect(staleAt || gone, `the guard protects index ${i}`).to.equal(true);
          }
          if (a.why === 'finish' || a.why === 'hold') {
            expect(a.partition, 'finish and hold put the partition at replicas').to.equal(n);
            expect(sts.currentRevision, 'the partition is restored only when the rollout is over').to.equal(sts.updateRevision);
            for (let i = 0; i < n; i++) expect(stale(s, i), `web-${i} still stale when the partition is restored`).to.equal(false);
          }
        }
        if (a.kind === 'patch' && a.why === 'finish') {
          expect(freshApproval(s), 'the end needs a fresh approval').to.equal(true);
          const ask = askedWithout(s);
          expect(ask.kind === 'callHook' && ask.key === s.approval?.key && ask.next === null, 'the approval is for the final call').to.equal(true);
        }
        if (a.kind === 'callHook') {
          expect(s.hookProblem).to.equal(undefined);
          if (a.next !== null) {
            expect(!a.next.terminating, 'the next pod is not leaving').to.equal(true);
            expect(a.nextReady, 'the hook is told whether next is Ready').to.equal(a.next.ready);
            expect(a.next.revision, 'the next pod is stale').to.not.equal(sts.updateRevision);
            // Only next may be unready: a broken release must be replaceable, nothing more. Replacing an
            // unready pod takes no working pod away, so then other stale pods may be unready too, and a
            // scale-down may still be pending; a pod at the update revision must always be Ready.
            const broken = !a.next.ready;
            for (const p of s.pods) {
              if (p.index < 0 || p.index >= n || p === a.next) continue;
              expect(!p.terminating, `${p.name} leaving during a call`).to.equal(true);
              if (!broken || p.revision === sts.updateRevision) expect(p.ready, `${p.name} not available during a call`).to.equal(true);
            }
            if (!broken) expect(s.pods.every((p) => p.index >= 0 && p.index < n), 'no leftover pod during a call').to.equal(true);
            expect(a.next.name, 'names count from ordinals.start').to.equal(`web-${sts.ordinalsStart + a.next.index}`);
            if (sts.strategy === 'RollingUpdate') {
              const P = sts.partition ?? 0;
              expect(a.next.index, 'the next pod is P-1').to.equal(P - 1);
              const atP = s.pods.find((p) => p.index === P);
              expect(a.prev?.index ?? null, 'prev is pod P, or null at the start (or while it cannot be created)').to.equal(P < n && atP ? P : null);
              if (P < n && !atP) expect(broken, 'prev missing only behind a broken next').to.equal(true);
              for (let i = P; i < n; i++) {
                const missing = !s.pods.some((p) => p.index === i);
                expect(atUpdate(s, i) || (missing && broken), `index ${i} above the partition runs the update revision`).to.equal(true);
              }
            } else if (!s.hookOrders) {
              for (let i = a.next.index + 1; i < n; i++) expect(stale(s, i), `OnDelete asks for the highest stale pod, not ${a.next.name}`).to.equal(false);
            } else if (a.next.ready) {
              // The first stale pod of the hook's order, recorded for exactly these stale pods, fresh.
              const staleNow = s.pods.filter((p) => p.index >= 0 && p.index < n && p.revision !== sts.updateRevision);
              const rec = sts.order;
              expect(rec?.key, 'the order is for these stale pods').to.equal(orderKey(s, sts.updateRevision ?? '', staleNow));
              expect(rec?.error, 'a failed order chooses nothing').to.equal(undefined);
              expect(Math.abs(s.now - Date.parse(rec?.at ?? '')) <= ORDER_TTL_MS, 'the order is fresh').to.equal(true);
              const first = (rec?.pods ?? []).find((x) => staleNow.some((p) => p.name === x));
              expect(a.next.name, 'OnDelete with an order asks for its first stale pod').to.equal(first);
            } else {
              expect(s.pods.filter((p) => p.index > a.next!.index && p.index < n && !p.ready && p.revision !== sts.updateRevision), 'a broken pod first: the highest').to.deep.equal([]);
            }
          } else {
            for (let i = 0; i < n; i++) expect(stale(s, i), `final call while web-${i} is stale`).to.equal(false);
          }
        }
        if (a.kind === 'askOrder') {
          expect(sts.strategy, 'an order is asked for OnDelete only').to.equal('OnDelete');
          expect(s.hookOrders, 'only of a hook that orders').to.equal(true);
          expect(s.hookProblem, 'never of an unusable hook').to.equal(undefined);
          const staleNow = s.pods.filter((p) => p.index >= 0 && p.index < n && p.revision !== sts.updateRevision);
          expect(a.stale.map((p) => p.uid).sort(), 'about exactly the stale pods').to.deep.equal(staleNow.map((p) => p.uid).sort());
          expect(a.key).to.equal(orderKey(s, sts.updateRevision ?? '', staleNow));
          for (const p of s.pods) expect(p.ready && !p.terminating && p.index >= 0 && p.index < n, `asked while ${p.name} is not available`).to.equal(true);
        }
        if (a.kind === 'deletePod' && a.why === 'step') {
          expect(sts.strategy).to.equal('OnDelete');
          expect(freshApproval(s), 'a deletion needs a fresh approval').to.equal(true);
          const ask = askedWithout(s);
          expect(ask.kind === 'callHook' && ask.key === s.approval?.key && ask.next?.uid === a.pod.uid, 'the approval is for this very pod').to.equal(true);
          expect(a.pod.revision).to.not.equal(sts.updateRevision);
          expect(a.mark).to.deep.equal({ revision: sts.updateRevision, partition: a.pod.index, uid: a.pod.uid });
        }
        if (a.kind === 'deletePod' && a.why === 'replace') {
          // Only the pod sts-pilot approved last (the mark at the partition), unready, under OrderedReady.
          expect(sts.strategy).to.equal('RollingUpdate');
          expect(sts.podManagementPolicy).to.equal('OrderedReady');
          expect(a.pod.index, 'the approved pod').to.equal(sts.partition ?? 0);
          expect(sts.mark?.revision).to.equal(sts.updateRevision);
          expect(sts.mark?.partition).to.equal(a.pod.index);
          if (sts.mark?.uid !== undefined) expect(sts.mark.uid, 'the very pod approved').to.equal(a.pod.uid);
          expect(a.pod.ready || a.pod.terminating, 'only an unready pod, not already leaving').to.equal(false);
          expect(a.pod.revision).to.not.equal(sts.updateRevision);
          // Every other pod of the range available, but stale ones that are not Ready (broken the
          // same way). A pod outside [start, start + replicas) is condemned: its leaving blocks nothing.
          for (const p of s.pods) {
            if (p === a.pod || p.index >= n || p.index < 0) continue;
            expect(!p.terminating, `${p.name} leaving`).to.equal(true);
            if (p.revision === sts.updateRevision) expect(p.ready, `${p.name} not available`).to.equal(true);
          }
        }
      });
      // The generator must reach every kind of action, or the checks above prove little.
      for (const tag of ['hold', 'none', 'callHook', 'askOrder', 'patch:step', 'patch:skip', 'patch:guard', 'patch:finish', 'patch:hold', 'deletePod']) {
        expect(counts[tag] ?? 0, `${tag} reached (${JSON.stringify(counts)})`).to.be.greaterThan(10);
      }
    });
  });
});
