// Where the time of one rollout step goes (issue 13): native and sts-pilot rollouts on the bench's
// control plane, with an audit log of every user's pod, StatefulSet, Event and Pilot writes, then
// each step's timeline rebuilt from it, with the controller's own debug marks where it logs them.
//
//   node bench/trace-step.ts [--pairs 3] [--replicas 20] [--baseline /work/main] [--log-level debug] [--keep]
//
// With --baseline, each pair also rolls the sts-pilot StatefulSet under that checkout's controller
// (the two controllers take turns, one at a time): a before/after in one session. See bench/README.md.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { statefulSet } from '../test/integration/harness.ts';
import { CONTROLLER_USER } from './audit.ts';
import { BenchController, root } from './controller.ts';
import { type Bench, startBench, stopBench } from './env.ts';
import { NS, rollout, type RolloutRun, stsName } from './rollouts.ts';
import { median, percentile } from './stats.ts';
import { rolledOut, Tracker } from './tracker.ts';

const { values: f } = parseArgs({
  options: {
    pairs: { type: 'string', default: '3' },
    replicas: { type: 'string', default: '20' },
    baseline: { type: 'string' },
    'log-level': { type: 'string', default: 'debug' },
    keep: { type: 'boolean', default: false },
  },
});
const pairs = Number(f.pairs);
const n = Number(f.replicas);
const baseline = f.baseline ? resolve(f.baseline) : undefined;

const KCM_USER = 'system:kube-controller-manager';
const ADMIN = 'admin'; // the node agent and the bench

/**
 * Every write of every user to what a step touches, at Metadata (no bodies), once per request
 * (RequestReceived omitted: each request is one ResponseComplete event, which carries both
 * requestReceivedTimestamp and stageTimestamp, in microseconds).
 */
export const TRACE_AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete]
    resources:
      - group: ""
        resources: [pods, pods/status, pods/binding, events]
      - group: apps
        resources: [statefulsets, statefulsets/status]
      - group: events.k8s.io
        resources: [events]
      - group: sts-pilot.io
        resources: [pilots]
  - level: None
`;

/** RFC 3339 with microseconds → ms since the epoch, keeping the microseconds. */
export function microTime(ts: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(ts);
  if (!m) return Date.parse(ts);
  return Date.parse(`${m[1]}Z`) + Number(m[2] ?? 0) * 1000;
}

interface Req {
  user: string;
  verb: string;
  resource: string;
  name: string;
  code: number | undefined;
  /** received, completed: ms since the epoch, µs precision. */
  rx: number;
  done: number;
}

function readTrace(path: string): Req[] {
  const out: Req[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    let e: {
      stage: string;
      verb: string;
      user: { username: string };
      objectRef?: { resource?: string; subresource?: string; name?: string };
      responseStatus?: { code?: number };
      requestReceivedTimestamp: string;
      stageTimestamp: string;
    };
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (e.stage !== 'ResponseComplete') continue;
    const ref = e.objectRef ?? {};
    out.push({
      user: e.user.username,
      verb: e.verb,
      resource: ref.subresource ? `${ref.resource}/${ref.subresource}` : (ref.resource ?? ''),
      name: ref.name ?? '',
      code: e.responseStatus?.code,
      rx: microTime(e.requestReceivedTimestamp),
      done: microTime(e.stageTimestamp),
    });
  }
  return out.sort((a, b) => a.rx - b.rx);
}

/** The controller's debug marks (`msg: "trace"`, `mark`, `t` in ms with sub-ms precision). */
interface Mark {
  mark: string;
  t: number;
  pod?: string;
  key?: string;
  kind?: string;
}
function readMarks(path: string): Mark[] {
  const out: Mark[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.includes('"trace"')) continue;
    try {
      const r = JSON.parse(line) as Mark & { msg?: string };
      if (r.msg === 'trace' && typeof r.t === 'number') out.push(r);
    } catch {
      // not a record
    }
  }
  return out;
}

type Variant = 'native' | 'sts-pilot' | 'baseline';
interface Traced {
  variant: Variant;
  run: RolloutRun;
  /** segment → one value per step (ms) */
  seg: Record<string, number[]>;
}

const first = <T>(xs: readonly T[], p: (x: T) => boolean): T | undefined => xs.find(p);
const last = <T>(xs: readonly T[], p: (x: T) => boolean): T | undefined => [...xs].reverse().find(p);

/** Each step k → k-1 of one rollout, from the audit log (and the controller's marks). */
function traceRollout(variant: Variant, run: RolloutRun, reqs: readonly Req[], marks: readonly Mark[]): Traced {
  const seg: Record<string, number[]> = {};
  const put = (k: string, v: number | undefined): void => {
    if (v === undefined || Number.isNaN(v)) return;
    (seg[k] ??= []).push(v);
  };
  const name = run.name;
  const win = reqs.filter((r) => r.rx >= run.startedAt - 5 && r.rx <= run.doneAt + 1000);
  // The pod's own restart, the same work with and without sts-pilot, unless something competes with it.
  for (let j = run.replicas - 1; j >= 0; j--) {
    const pod = `${name}-${j}`;
    const del = first(win, (r) => r.user === KCM_USER && r.verb === 'delete' && r.resource === 'pods' && r.name === pod);
    const gone = del && first(win, (r) => r.user === ADMIN && r.verb === 'delete' && r.resource === 'pods' && r.name === pod && r.rx > del.rx);
    const created = gone && first(win, (r) => r.user === KCM_USER && r.verb === 'create' && r.resource === 'pods' && r.name === pod && r.rx > gone.rx);
    const bound = created && first(win, (r) => r.resource === 'pods/binding' && r.name === pod && r.rx > created.rx);
    const ready = bound && first(win, (r) => r.user === ADMIN && r.resource === 'pods/status' && r.name === pod && r.rx > bound.rx);
    if (!del || !gone || !created || !bound || !ready) continue;
    put('restart: old pod gone (agent) → kcm creates the new one', created.rx - gone.done);
    put('restart: pod created → bound (agent)', bound.rx - created.done);
    put('restart: DELETE received → new pod Ready written (whole cycle)', ready.done - del.rx);
    const pilot = win.find((r) => r.user === CONTROLLER_USER && r.resource === 'pilots' && r.verb === 'create' && r.name === pod && r.rx > created.rx);
    if (variant !== 'native') put('restart: Pilot create received before the binding (count)', pilot ? (pilot.rx < bound.rx ? 1 : 0) : undefined);
  }
  for (let j = run.replicas - 2; j >= 0; j--) {
    const k = j + 1;
    const del = first(win, (r) => r.user === KCM_USER && r.verb === 'delete' && r.resource === 'pods' && r.name === `${name}-${j}`);
    if (!del) continue;
    const ready = last(win, (r) => r.user === ADMIN && r.resource === 'pods/status' && r.name === `${name}-${k}` && r.rx < del.rx);
    if (!ready) continue;
    const kcmStatus = win.filter((r) => r.user === KCM_USER && r.resource === 'statefulsets/status' && r.name === name && r.rx >= ready.done && r.rx <= del.rx + 50);
    put('ready write: received → completed', ready.done - ready.rx);
    put('total: Ready written → DELETE pod k-1 received', del.rx - ready.done);
    put('kcm status write after Ready: received (from Ready written)', kcmStatus[0] ? kcmStatus[0].rx - ready.done : undefined);
    put('kcm status write after Ready: completed (from Ready written)', kcmStatus[0] ? kcmStatus[0].done - ready.done : undefined);
    if (variant === 'native') continue;
    const patch = first(win, (r) => r.user === CONTROLLER_USER && r.verb === 'patch' && r.resource === 'statefulsets' && r.name === name && r.rx >= ready.done);
    if (!patch || patch.rx > del.rx) continue;
    put('Ready written → controller PATCH received', patch.rx - ready.done);
    put('PATCH received → completed', patch.done - patch.rx);
    put('PATCH completed → DELETE pod k-1 received', del.rx - patch.done);
    // kcm's sync for the pod event still writing its status when our PATCH lands: the DELETE waits for it.
    const busy = kcmStatus.find((r) => r.rx < patch.done);
    put('kcm busy: its pod-event status write completed after our PATCH (count)', busy && busy.done > patch.done ? 1 : 0);
    put('kcm busy: … by (ms, when it was)', busy && busy.done > patch.done ? busy.done - patch.done : undefined);
    const afterPatch = kcmStatus.find((r) => r.rx >= patch.done);
    put('PATCH completed → kcm status write received', afterPatch ? afterPatch.rx - patch.done : undefined);
    const ev = first(win, (r) => r.user === CONTROLLER_USER && r.verb === 'create' && r.resource === 'events' && r.rx >= patch.rx);
    put('PATCH completed → Event create received', ev ? ev.rx - patch.done : undefined);
    put('Event create received before the DELETE (count)', ev ? (ev.rx < del.rx ? 1 : 0) : undefined);
    if (variant !== 'sts-pilot' || marks.length === 0) continue;
    // The controller's own marks, same clock (one machine).
    const podEv = first(marks, (m) => m.mark === 'pod' && m.pod === `${name}-${k}` && m.t >= ready.rx);
    if (!podEv) continue;
    const after = marks.filter((m) => m.t >= podEv.t && m.t <= del.rx + 100);
    const r1 = first(after, (m) => m.mark === 'reconcile' && m.key === `${NS}/${name}`);
    const approved = first(after, (m) => m.mark === 'approved');
    const r2 = approved ? first(after, (m) => m.mark === 'reconcile' && m.key === `${NS}/${name}` && m.t >= approved.t) : undefined;
    const send = first(after, (m) => m.mark === 'patch-send');
    const got = first(after, (m) => m.mark === 'patch-done');
    put('ctl: Ready written → pod event in the controller', podEv.t - ready.done);
    put('ctl: pod event → reconcile #1 starts', r1 ? r1.t - podEv.t : undefined);
    put('ctl: reconcile #1 → hook approved', r1 && approved ? approved.t - r1.t : undefined);
    put('ctl: approved → reconcile #2 starts', approved && r2 ? r2.t - approved.t : undefined);
    put('ctl: reconcile (#2, or the only one) → PATCH sent', send && (r2 ?? r1) ? send.t - (r2 ?? r1)!.t : undefined);
    put('ctl: pod event → PATCH sent', send ? send.t - podEv.t : undefined);
    put('ctl: PATCH sent → received by kube-apiserver', send ? patch.rx - send.t : undefined);
    put('ctl: PATCH completed → response handled', got ? got.t - patch.done : undefined);
  }
  return { variant, run, seg };
}

const say = (line: string): void => console.log(`[${new Date().toISOString().slice(11, 23)}] ${line}`);

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'sts-pilot-trace-'));
  const b: Bench = await startBench({ readyDelayMs: 1000, terminationDelayMs: 500, log: say, keep: f.keep ?? false, auditPolicy: TRACE_AUDIT_POLICY });
  let ctrl: BenchController | undefined;
  const logs: Record<string, string> = { 'sts-pilot': join(work, 'controller.log'), baseline: join(work, 'baseline.log') };
  const startCtl = async (v: 'sts-pilot' | 'baseline'): Promise<void> => {
    await ctrl?.stop();
    ctrl = await BenchController.start({
      kubeconfig: b.controllerKubeconfig,
      identity: 'bench-controller',
      logFile: logs[v] as string,
      root: v === 'baseline' ? baseline : root,
      extra: ['--log-level', f['log-level'] ?? 'debug'],
    });
  };
  const stop = async (): Promise<void> => {
    await ctrl?.stop().catch(() => {});
    await stopBench(b).catch(() => {});
  };
  process.on('SIGINT', () => void stop().then(() => process.exit(130)));
  process.on('SIGTERM', () => void stop().then(() => process.exit(143)));
  const traced: Traced[] = [];
  try {
    await startCtl('sts-pilot');
    await b.core.createNamespace({ body: { metadata: { name: NS } } }).catch(() => {});
    const t = await new Tracker(b.kc, NS).start();
    for (const kind of ['native', 'sts-pilot'] as const) {
      await b.apps.createNamespacedStatefulSet({ namespace: NS, body: statefulSet(stsName(kind, n), { replicas: n, ...(kind === 'sts-pilot' ? { hook: 'noop' } : {}) }) });
    }
    for (const kind of ['native', 'sts-pilot'] as const) {
      await t.waitFor(`${stsName(kind, n)} to settle`, 300_000, () => rolledOut(t, stsName(kind, n), { generation: 1, ...(kind === 'sts-pilot' ? { partition: n } : {}) }));
    }
    await sleep(2000);
    const variants: Variant[] = baseline ? ['native', 'sts-pilot', 'baseline'] : ['native', 'sts-pilot'];
    const runs: { variant: Variant; run: RolloutRun }[] = [];
    let image = 1;
    let running: Variant = 'sts-pilot';
    for (let pair = 0; pair < pairs; pair++) {
      // Rotate the order, so drift falls on every variant alike.
      const order = variants.map((_, i) => variants[(i + pair) % variants.length] as Variant);
      for (const v of order) {
        if (v !== 'native' && v !== running) {
          await startCtl(v);
          running = v;
          await sleep(1500);
        }
        image++;
        const run = await rollout(b, t, v === 'native' ? 'native' : 'sts-pilot', n, pair, `example/app:${image}`);
        runs.push({ variant: v, run });
        say(`pair ${pair + 1}/${pairs} ${v.padEnd(9)} ${(run.wallMs / 1000).toFixed(2)} s, handoff p50 ${median(run.handoffMs).toFixed(1)} ms`);
        await sleep(1500);
      }
    }
    await t.stop();
    await sleep(1000);
    const reqs = readTrace(b.auditLogPath);
    const marks = readMarks(logs['sts-pilot'] as string);
    for (const { variant, run } of runs) traced.push(traceRollout(variant, run, reqs, marks));
  } finally {
    await stop();
    if (!f.keep) rmSync(work, { recursive: true, force: true });
    else say(`logs kept in ${work}`);
  }
  report(traced);
}

function report(traced: readonly Traced[]): void {
  const variants = [...new Set(traced.map((x) => x.variant))];
  console.log(`\n${n} replicas, ${pairs} pair(s); medians over every step k → k-1 of every rollout (ms)\n`);
  const wall = (v: Variant): number => median(traced.filter((x) => x.variant === v).map((x) => x.run.wallMs));
  console.log(`| rollout | ${variants.join(' | ')} |\n|---|${variants.map(() => '---:').join('|')}|`);
  console.log(`| wall time, median (s) | ${variants.map((v) => (wall(v) / 1000).toFixed(2)).join(' | ')} |`);
  console.log(`| ratio to native | ${variants.map((v) => (wall(v) / wall('native')).toFixed(3)).join(' | ')} |`);
  console.log(`| runs (s) | ${variants.map((v) => traced.filter((x) => x.variant === v).map((x) => (x.run.wallMs / 1000).toFixed(2)).join(', ')).join(' | ')} |`);
  console.log(`| handoff, median (ms, bench watch) | ${variants.map((v) => median(traced.filter((x) => x.variant === v).flatMap((x) => x.run.handoffMs)).toFixed(1)).join(' | ')} |`);
  const keys = [...new Set(traced.flatMap((x) => Object.keys(x.seg)))];
  console.log(`\n| segment | ${variants.map((v) => `${v} p50`).join(' | ')} | ${variants.map((v) => `${v} p90`).join(' | ')} | n |\n|---|${variants.map(() => '---:|---:').join('|')}|---:|`);
  for (const k of keys) {
    const vals = (v: Variant): number[] => traced.filter((x) => x.variant === v).flatMap((x) => x.seg[k] ?? []);
    const isCount = k.endsWith('(count)');
    const cell = (v: Variant, p: number): string => {
      const xs = vals(v);
      if (xs.length === 0) return '';
      if (isCount) return p === 50 ? `${xs.filter((x) => x > 0).length}/${xs.length}` : '';
      return (p === 50 ? median(xs) : percentile(xs, p)).toFixed(2);
    };
    console.log(`| ${k} | ${variants.map((v) => cell(v, 50)).join(' | ')} | ${variants.map((v) => cell(v, 90)).join(' | ')} | ${Math.max(...variants.map((v) => vals(v).length))} |`);
  }
}

await main();
process.exit(0);
