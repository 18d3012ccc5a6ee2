// npm run bench: sts-pilot against the native StatefulSet rollout, on a real local control plane.
// See bench/README.md for what each figure means; `npm run bench -- --help` for the flags.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { readAudit, within } from './audit.ts';
import { BenchController, root } from './controller.ts';
import { type Bench, KCM_FLAGS, LoadMonitor, machine, startBench, stopBench } from './env.ts';
import { checkGoPilot } from './gopilot.ts';
import { economyOf, render, type Results } from './report.ts';
import { NS as ROLLOUT_NS, runRollouts } from './rollouts.ts';
import { runScale } from './scale.ts';
import { now } from './stats.ts';

const SECTIONS = ['overhead', 'latency', 'economy', 'scale', 'go'] as const;
type Section = (typeof SECTIONS)[number];

const HELP = `usage: npm run bench -- [flags]

  --only <list>            sections, comma-separated: ${SECTIONS.join(',')} (default: all)
  --pairs <n>              native/sts-pilot rollout pairs per size (default 6)
  --replicas <list>        rollout sizes (default 5,20)
  --ready-delay <ms>       node agent: binding → Ready (default 1000)
  --termination-delay <ms> node agent: deletion → gone (default 500)
  --idle <s>               idle window for the API economy (default 60)
  --scale <list>           labelled StatefulSet counts, ascending (default 500,2000,10000)
  --scale-namespaces <n>   namespaces they are spread over (default 10)
  --scale-idle <s>         idle CPU window per count (default 30)
  --reactions <n>          template changes timed per count (default 20)
  --scale-timeout <min>    give up creating one count after this long (default 30)
  --baseline <dir>         scale: also restart the controller of this checkout on each set, just before ours (side by side)
  --node-flags <flags>     scale: Node flags for this checkout's controller (space-separated), e.g. to compare heap settings
  --controller-env <k=v,…> scale: environment for this checkout's controller
  --cpu-prof <dir>         run the controller with --cpu-prof, profiles into <dir>
  --readme / --no-readme   rewrite the results in bench/README.md (default: only when every section runs)
  --keep                   keep the control plane's and the bench's work directories
`;

const { values: f } = parseArgs({
  options: {
    only: { type: 'string' },
    pairs: { type: 'string', default: '6' },
    replicas: { type: 'string', default: '5,20' },
    'ready-delay': { type: 'string', default: '1000' },
    'termination-delay': { type: 'string', default: '500' },
    idle: { type: 'string', default: '60' },
    scale: { type: 'string', default: '500,2000,10000' },
    'scale-namespaces': { type: 'string', default: '10' },
    'scale-idle': { type: 'string', default: '30' },
    reactions: { type: 'string', default: '20' },
    'scale-timeout': { type: 'string', default: '30' },
    'cpu-prof': { type: 'string' },
    baseline: { type: 'string' },
    'node-flags': { type: 'string' },
    'controller-env': { type: 'string' },
    readme: { type: 'boolean' },
    'no-readme': { type: 'boolean' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (f.help) {
  console.log(HELP);
  process.exit(0);
}
const num = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
};
const nums = (name: string, v: string | undefined): number[] => (v ?? '').split(',').filter(Boolean).map((x) => num(name, x));
const sections = new Set<Section>(
  f.only
    ? f.only.split(',').map((s) => {
        if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section ${JSON.stringify(s)}; known: ${SECTIONS.join(', ')}`);
        return s as Section;
      })
    : SECTIONS,
);
const full = sections.size === SECTIONS.length;
const writeReadme = f['no-readme'] ? false : (f.readme ?? full);
const opts = {
  pairs: num('pairs', f.pairs),
  replicas: nums('replicas', f.replicas),
  readyDelayMs: num('ready-delay', f['ready-delay']),
  terminationDelayMs: num('termination-delay', f['termination-delay']),
  idleS: num('idle', f.idle),
  scale: nums('scale', f.scale),
  scaleNamespaces: num('scale-namespaces', f['scale-namespaces']),
  scaleIdleS: num('scale-idle', f['scale-idle']),
  reactions: num('reactions', f.reactions),
  scaleTimeoutMin: num('scale-timeout', f['scale-timeout']),
  cpuProfDir: f['cpu-prof'] ? resolve(f['cpu-prof']) : undefined,
};

const started = now();
const say = (line: string): void => console.log(`[${((now() - started) / 1000).toFixed(1).padStart(7)}s] ${line}`);
const work = mkdtempSync(join(tmpdir(), 'sts-pilot-bench-'));
if (opts.cpuProfDir) mkdirSync(opts.cpuProfDir, { recursive: true });
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
say(`${command}: sections ${[...sections].join(', ')}; logs in ${work}`);

const load = new LoadMonitor().start();
const windows: Record<string, [number, number]> = {};
const results: Results = {
  machine: machine(undefined),
  command,
  startedAt: new Date().toISOString(),
  durationS: 0,
  sections: [...sections],
  readyDelayMs: opts.readyDelayMs,
  terminationDelayMs: opts.terminationDelayMs,
  kcmFlags: KCM_FLAGS,
};

let bench: Bench | undefined;
let ctrl: BenchController | undefined;
let failed: unknown;
const shutdown = async (): Promise<void> => {
  await ctrl?.stop().catch(() => {});
  ctrl = undefined;
  if (bench) await stopBench(bench).catch(() => {});
  bench = undefined;
};
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    say(`${signal}: stopping everything the bench started`);
    void shutdown().then(() => process.exit(code));
  });
}

try {
  if (sections.has('go')) {
    say('go: can the Go statefulset-pilot be built from the module proxy?');
    results.goPilot = await checkGoPilot();
    say(`go: ${results.goPilot.verdict}`);
  }
  const rollouts = sections.has('overhead') || sections.has('latency') || sections.has('economy');
  if (rollouts || sections.has('scale')) {
    bench = await startBench({ readyDelayMs: opts.readyDelayMs, terminationDelayMs: opts.terminationDelayMs, log: say, keep: f.keep });
    results.machine = machine(bench.cp.binDir);
    const identity = 'bench-controller';
    ctrl = await BenchController.start({ kubeconfig: bench.controllerKubeconfig, identity, logFile: join(work, 'controller.log'), cpuProfDir: opts.cpuProfDir });
    say(`controller ready in ${(ctrl.readyMs / 1000).toFixed(2)} s (up after ${(ctrl.bootMs / 1000).toFixed(2)} s; pid ${ctrl.pid})`);
    let idle: { from: number; to: number } | undefined;
    if (rollouts) {
      const a = Date.now();
      results.runs = await runRollouts(bench, { replicas: opts.replicas, pairs: opts.pairs, pilotOnly: !sections.has('overhead') && !sections.has('economy'), log: say });
      windows.rollouts = [a, Date.now()];
      if (sections.has('economy') && opts.idleS > 0) {
        // Trailing writes of the last rollout (a replaced pod's Pilot, made once the garbage
        // collector removed the old one) are not idle traffic: wait for 10 s without any.
        const quietFrom = now();
        for (const deadline = now() + 180_000; now() < deadline; ) {
          const busy = within(readAudit(bench.auditLogPath), now() - 10_000, Number.POSITIVE_INFINITY).filter((q) => q.resource !== 'leases' && q.verb !== 'watch');
          if (busy.length === 0) break;
          await sleep(1000);
        }
        say(`economy: quiet after ${((now() - quietFrom) / 1000).toFixed(0)} s; idle for ${opts.idleS} s`);
        const gc0 = { n: await ctrl.metric('nodejs_gc_duration_seconds_count'), s: await ctrl.metric('nodejs_gc_duration_seconds_sum') };
        const cpu0 = ctrl.cpuSeconds();
        const threads0 = ctrl.threadCpu();
        const from = now();
        await sleep(opts.idleS * 1000);
        idle = { from, to: now() };
        const secs = (idle.to - idle.from) / 1000;
        const threads1 = ctrl.threadCpu();
        results.controllerIdle = {
          cpuPct: ((ctrl.cpuSeconds() - cpu0) / secs) * 100,
          byThread: Object.fromEntries(Object.entries(threads1).map(([k, v]) => [k, ((v - (threads0[k] ?? 0)) / secs) * 100] as const).filter(([, v]) => v > 0)),
          gcCount: (await ctrl.metric('nodejs_gc_duration_seconds_count')) - gc0.n,
          gcS: (await ctrl.metric('nodejs_gc_duration_seconds_sum')) - gc0.s,
        };
        windows.idle = [Date.now() - opts.idleS * 1000, Date.now()];
      }
      results.controllerAfterRollouts = { rssMiB: ctrl.rssBytes() / 2 ** 20, cpuS: ctrl.cpuSeconds() };
    }
    if (sections.has('economy')) {
      await sleep(1000); // the last audit events are written as responses complete
      const reqs = within(readAudit(bench.auditLogPath), 0, Number.POSITIVE_INFINITY);
      results.economy = economyOf(reqs, results.runs ?? [], ROLLOUT_NS, idle, BenchController.lifetimes, now());
    }
    if (sections.has('scale')) {
      const a = Date.now();
      const s = await runScale(bench, ctrl, {
        counts: opts.scale,
        namespaces: opts.scaleNamespaces,
        idleS: opts.scaleIdleS,
        reactions: opts.reactions,
        timeoutMin: opts.scaleTimeoutMin,
        identity,
        logDir: work,
        cpuProfDir: opts.cpuProfDir,
        baselineRoot: f.baseline,
        nodeFlags: f['node-flags']?.split(' ').filter(Boolean),
        env: f['controller-env'] ? Object.fromEntries(f['controller-env'].split(',').map((kv) => kv.split('=', 2) as [string, string])) : undefined,
        log: say,
      });
      ctrl = s.controller;
      windows.scale = [a, Date.now()];
      results.scale = s.error === undefined ? { points: s.points } : { points: s.points, error: s.error };
    }
  }
} catch (err) {
  failed = err;
  say(`bench failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  await shutdown();
}

results.durationS = (now() - started) / 1000;
load.stop();
results.load = { whole: load.summary(), ...Object.fromEntries(Object.entries(windows).map(([k, [a, b]]) => [k, load.summary(a, b)])) };
const table = render(results);
console.log(`\n${table}`);
if (!failed) {
  if (full) writeFileSync(join(root, 'bench', 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
  if (writeReadme) {
    const readmePath = join(root, 'bench', 'README.md');
    const readme = readFileSync(readmePath, 'utf8');
    const begin = '<!-- bench:results:begin -->';
    const end = '<!-- bench:results:end -->';
    const i = readme.indexOf(begin);
    const j = readme.indexOf(end);
    if (i < 0 || j < i) throw new Error(`bench/README.md lacks the ${begin} … ${end} markers`);
    writeFileSync(readmePath, `${readme.slice(0, i + begin.length)}\n${table}\n${readme.slice(j)}`);
    say('results written to bench/README.md');
  }
}
if (f.keep || failed) say(`logs kept in ${work}`);
else rmSync(work, { recursive: true, force: true });
say(`done in ${(results.durationS / 60).toFixed(1)} min`);
process.exit(failed ? 1 : 0);
