import { isWrite, type ApiRequest, tally } from './audit.ts';
import type { LoadSummary, Machine } from './env.ts';
import type { GoPilotCheck } from './gopilot.ts';
import type { RolloutRun, Transition } from './rollouts.ts';
import type { ScalePoint } from './scale.ts';
import { fmt, max, median, percentile } from './stats.ts';

export interface Economy {
  /** The controller's requests in the sts-pilot rollout windows. */
  rolloutRequests: Record<string, number>;
  /** Of those, the ones a guard refused: 409 Conflict (resourceVersion precondition) or 422 (a failed JSON Patch test). */
  rolloutConflicts: Record<string, number>;
  rollouts: number;
  moves: number;
  /** Its requests during the native rollouts (StatefulSets it does not manage). */
  nativeRequests: Record<string, number>;
  nativeRollouts: number;
  idleS: number;
  idleRequests: Record<string, number>;
  /** LIST requests after each controller process's initial sync, over the whole run. */
  listsAfterSync: number;
  observedMin: number;
  controllerStarts: number;
}

export interface Results {
  machine: Machine;
  command: string;
  startedAt: string;
  durationS: number;
  sections: string[];
  readyDelayMs: number;
  terminationDelayMs: number;
  kcmFlags: string[];
  runs?: RolloutRun[];
  controllerAfterRollouts?: { rssMiB: number; cpuS: number };
  /** The controller during the economy's idle window (few StatefulSets). */
  controllerIdle?: { cpuPct: number; byThread: Record<string, number>; gcCount: number; gcS: number };
  economy?: Economy;
  scale?: { points: ScalePoint[]; error?: string };
  goPilot?: GoPilotCheck;
  /** Machine load (every process, ours and anyone else's) over the run and per phase. */
  load?: Record<string, LoadSummary>;
}

const ok = (pass: boolean): string => (pass ? 'met' : '**missed**');

/** A request about the StatefulSet `sts` or one of its pods, Pilots or Events (by object name). */
function about(q: ApiRequest, ns: string, sts: string): boolean {
  const n = q.name ?? '';
  return q.namespace === ns && (n === sts || n.startsWith(`${sts}-`) || n.startsWith(`${sts}.`));
}

/**
 * The controller's requests: per partition move, counted by object (each sts-pilot rollout owns
 * the requests about its StatefulSet, pods, Pilots and Events from its patch to the next rollout
 * of the same StatefulSet, so late writes such as a replaced pod's Pilot count where they belong);
 * about the native StatefulSets at any time; and everything in the idle window.
 */
export function economyOf(
  reqs: readonly ApiRequest[],
  runs: readonly RolloutRun[],
  ns: string,
  idle: { from: number; to: number } | undefined,
  lifetimes: { spawnedAt: number; readyAt: number; stoppedAt: number | undefined }[],
  end: number,
): Economy {
  const pilot = runs.filter((r) => r.kind === 'sts-pilot');
  const owned: ApiRequest[] = [];
  for (const r of pilot) {
    const next = runs.find((x) => x.name === r.name && x.startedAt > r.startedAt)?.startedAt ?? idle?.from ?? end;
    owned.push(...reqs.filter((q) => q.at >= r.startedAt && q.at < next && about(q, ns, r.name)));
  }
  const nativeNames = [...new Set(runs.filter((r) => r.kind === 'native').map((r) => r.name))];
  const native = reqs.filter((q) => nativeNames.some((n) => about(q, ns, n)));
  const relists = reqs.filter((q) => q.verb === 'list' && !lifetimes.some((l) => q.at >= l.spawnedAt - 1000 && q.at <= l.readyAt + 1000));
  const first = lifetimes[0]?.spawnedAt ?? end;
  return {
    rolloutRequests: Object.fromEntries(tally(owned)),
    rolloutConflicts: Object.fromEntries(tally(owned.filter((q) => q.code === 409 || q.code === 422))),
    rollouts: pilot.length,
    moves: pilot.reduce((s, r) => s + r.transitions.length, 0),
    nativeRequests: Object.fromEntries(tally(native)),
    nativeRollouts: runs.filter((r) => r.kind === 'native').length,
    idleS: idle ? (idle.to - idle.from) / 1000 : 0,
    idleRequests: idle ? Object.fromEntries(tally(reqs.filter((q) => q.at >= idle.from && q.at < idle.to))) : {},
    listsAfterSync: relists.length,
    observedMin: (end - first) / 60_000,
    controllerStarts: lifetimes.length,
  };
}

function verbOf(k: string): string {
  return k.split(' ')[0] ?? '';
}

export function render(r: Results): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`Run on ${m.date.slice(0, 10)} (${m.date}), took ${(r.durationS / 60).toFixed(1)} min: \`${r.command}\``);
  out.push('');
  out.push(`Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB memory, Linux ${m.kernel}. ` +
    `Versions: Node ${m.node}, ${m.kubernetes} (kube-apiserver, kube-controller-manager), ${m.etcd}, @kubernetes/client-node ${m.clientNode}, ${m.go}.`);
  out.push('');
  if (r.load) {
    out.push(`Machine load (every process on the machine, the bench's and any other work): ` +
      Object.entries(r.load).map(([k, l]) => `${k}: 1-min load average ${fmt(l.loadAvgMean, 1)} (max ${fmt(l.loadAvgMax, 1)}), CPUs ${fmt(l.busyPct, 0)} % busy`).join('; ') +
      `. With ${m.cpus} CPUs, a load average well above ${m.cpus} means other work competed for the CPUs and every latency below includes waiting for one.`);
    out.push('');
  }
  out.push(`Node agent (in the bench process): Ready ${r.readyDelayMs} ms after binding, a deletion finished ${r.terminationDelayMs} ms after the agent saw it. ` +
    `kube-controller-manager: ${r.kcmFlags.map((f) => `\`${f}\``).join(' ')}. The controller runs as a separate process, as shipped (\`dist/sts-pilot.mjs controller\`, the bundle of \`image/bundle.ts\` built for the run, leader election on, ` +
    `the ServiceAccount token of \`manifests/rbac-controller.yaml\`, 4 workers, log level info).`);
  out.push('');

  if (r.runs) {
    const runs = r.runs;
    const sizes = [...new Set(runs.map((x) => x.replicas))];
    const native = runs.filter((x) => x.kind === 'native');
    if (native.length > 0) {
      out.push('### 1. Rollout overhead: sts-pilot (`noop` hook) against the native RollingUpdate');
      out.push('');
      out.push('Wall time from the template patch to: every pod updated and Ready, `currentRevision == updateRevision`, and for sts-pilot the partition back at N (as the bench\'s watch sees it). Native and sts-pilot runs alternate, one at a time.');
      out.push('');
      out.push('| replicas | native, median (s) | sts-pilot, median (s) | ratio | target ≤ 1.005 | native runs (s) | sts-pilot runs (s) | sts-pilot, pods done (s, median) |');
      out.push('|---:|---:|---:|---:|---|---|---|---:|');
      for (const n of sizes) {
        const a = native.filter((x) => x.replicas === n).map((x) => x.wallMs / 1000);
        const pilotRuns = runs.filter((x) => x.kind === 'sts-pilot' && x.replicas === n);
        const b = pilotRuns.map((x) => x.wallMs / 1000);
        const conv = pilotRuns.map((x) => (x.convergedAt - x.startedAt) / 1000);
        const ratio = median(b) / median(a);
        out.push(`| ${n} | ${fmt(median(a), 2)} | ${fmt(median(b), 2)} | ${fmt(ratio, 3)} | ${ok(ratio <= 1.005)} | ${a.map((v) => v.toFixed(2)).join(', ')} | ${b.map((v) => v.toFixed(2)).join(', ')} | ${fmt(median(conv), 2)} |`);
      }
      if (r.goPilot) {
        for (const n of sizes) out.push(`| ${n}, Go statefulset-pilot | | not run | | | | ${r.goPilot.builds ? 'builds, no runner' : 'cannot be built from the Go module proxy (section 5)'} | |`);
      }
      out.push('');
      out.push('Where the difference comes from (medians over all runs, ms, as the watch saw it): *start*: patch → first pod terminating; *handoff*: pod k Ready at the new revision → pod k-1 terminating; *tail*: pod 0 Ready → done.');
      out.push('');
      out.push('| | start | handoff (per pod) | tail |');
      out.push('|---|---:|---:|---:|');
      for (const kind of ['native', 'sts-pilot'] as const) {
        const rs = runs.filter((x) => x.kind === kind);
        out.push(`| ${kind} | ${fmt(median(rs.map((x) => x.startMs)), 0)} | ${fmt(median(rs.flatMap((x) => x.handoffMs).filter((v) => !Number.isNaN(v))), 0)} | ${fmt(median(rs.map((x) => x.tailMs)), 0)} |`);
      }
      out.push('');
    }

    const pilot = runs.filter((x) => x.kind === 'sts-pilot');
    const all: Transition[] = pilot.flatMap((x) => x.transitions);
    out.push('### 2. Step latency');
    out.push('');
    out.push(`From the event that allows a partition move to the move itself, both seen by one watch in the bench process, over ${pilot.length} sts-pilot rollouts (${sizes.join(' and ')} replicas).`);
    out.push('');
    out.push('| move | waits for | n | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | target |');
    out.push('|---|---|---:|---:|---:|---:|---:|---|');
    const rows: [Transition['kind'], string][] = [
      ['step', 'pod P Ready at the update revision → P-1'],
      ['first', 'new `updateRevision` in status → N-1'],
      ['finish', '`currentRevision == updateRevision` in status → back to N'],
    ];
    for (const [kind, what] of rows) {
      const v = all.filter((x) => x.kind === kind).map((x) => x.latencyMs).filter((x) => !Number.isNaN(x));
      const p99 = percentile(v, 99);
      out.push(`| ${kind} | ${what} | ${v.length} | ${fmt(percentile(v, 50))} | ${fmt(percentile(v, 90))} | ${fmt(p99)} | ${fmt(max(v))} | ${kind === 'step' ? `p99 < 100 ms: ${ok(p99 < 100 && v.length >= 100)}${v.length < 100 ? ' (fewer than 100 steps)' : ''}` : ''} |`);
    }
    const other = all.filter((x) => x.kind === 'other');
    if (other.length > 0) out.push(`| other | (guard, skip) | ${other.length} | | | | | moves: ${other.map((x) => `${x.from}→${x.to}`).join(', ')} |`);
    out.push('');
  }

  if (r.economy) {
    const e = r.economy;
    out.push('### 3. API economy (kube-apiserver audit log, user `system:serviceaccount:sts-pilot-system:sts-pilot-controller`)');
    out.push('');
    if (e.rollouts > 0) {
      const rows = Object.entries(e.rolloutRequests).filter(([k]) => !k.endsWith(' leases') && verbOf(k) !== 'watch');
      const writes = rows.filter(([k]) => isWrite({ verb: verbOf(k) } as ApiRequest)).reduce((s, [, v]) => s + v, 0);
      const reads = rows.filter(([k]) => !isWrite({ verb: verbOf(k) } as ApiRequest)).reduce((s, [, v]) => s + v, 0);
      out.push(`During ${e.rollouts} sts-pilot rollouts: ${e.moves} partition moves (N steps and the final restore each). Counted by object: the requests about the StatefulSet, its pods, Pilots and Events, from the rollout's patch to the next rollout of the same StatefulSet. Lease and watch requests are not about one StatefulSet: see idle.`);
      out.push('');
      const conflicts = Object.values(e.rolloutConflicts).reduce((a, b) => a + b, 0);
      // DESIGN.md asks for a Pilot per pod: each step replaces a pod, whose new Pilot is
      // a write of the pod's lifecycle, not of the step. Shown apart, target on the rest.
      const pilotWrites = rows.filter(([k]) => k.endsWith(' pilots') && isWrite({ verb: verbOf(k) } as ApiRequest)).reduce((s, [, v]) => s + v, 0);
      const stepWrites = writes - pilotWrites;
      out.push('| request | total | of which refused by a guard (409, 422) | per partition move |');
      out.push('|---|---:|---:|---:|');
      for (const [k, v] of rows) out.push(`| \`${k}\` | ${v} | ${e.rolloutConflicts[k] ?? 0} | ${fmt(v / e.moves, 2)} |`);
      out.push(`| **writes of the rollout** (all but Pilots) | ${stepWrites} | ${conflicts} | **${fmt(stepWrites / e.moves, 2)}** (target ≤ 2: ${ok(stepWrites / e.moves <= 2)}) |`);
      out.push(`| writes, Pilots included | ${writes} | ${conflicts} | ${fmt(writes / e.moves, 2)} |`);
      out.push(`| writes that succeeded | ${writes - conflicts} | | ${fmt((writes - conflicts) / e.moves, 2)} |`);
      out.push(`| reads (get, list) | ${reads} | | ${fmt(reads / e.moves, 2)} |`);
      out.push('');
      const nat = Object.entries(e.nativeRequests).filter(([k]) => !k.endsWith(' leases') && verbOf(k) !== 'watch');
      out.push(`About the unlabelled StatefulSets of the ${e.nativeRollouts} native rollouts (their pods, Events, anything), the controller made ${nat.length === 0 ? 'no request at all' : nat.map(([k, v]) => `${v} \`${k}\``).join(', ')}.`);
      out.push('');
    }
    if (e.idleS > 0) {
      out.push(`Idle for ${e.idleS.toFixed(0)} s (nothing changes anywhere), every request of the controller:`);
      out.push('');
      out.push('| request | count | per minute |');
      out.push('|---|---:|---:|');
      const idle = Object.entries(e.idleRequests);
      if (idle.length === 0) out.push('| (none) | 0 | 0 |');
      for (const [k, v] of idle) out.push(`| \`${k}\` | ${v} | ${fmt((v / e.idleS) * 60, 1)} |`);
      const other = idle.filter(([k]) => !k.endsWith(' leases') && verbOf(k) !== 'watch');
      out.push(`| anything but Lease and watch | ${other.reduce((s, [, v]) => s + v, 0)} | target 0: ${ok(other.length === 0)} |`);
      out.push('');
    }
    out.push(`LIST requests after an initial sync: **${e.listsAfterSync}** over ${e.observedMin.toFixed(1)} min and ${e.controllerStarts} controller start(s) (target 0: ${ok(e.listsAfterSync === 0)}).`);
    out.push('');
  }

  if (r.controllerAfterRollouts) {
    out.push(`Controller after the rollouts: RSS ${r.controllerAfterRollouts.rssMiB.toFixed(0)} MiB, ${r.controllerAfterRollouts.cpuS.toFixed(1)} CPU s since start.` +
      (r.controllerIdle ? ` While idle: ${fmt(r.controllerIdle.cpuPct, 2)} % of a core (${Object.entries(r.controllerIdle.byThread).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}), ${r.controllerIdle.gcCount} GCs (${fmt(r.controllerIdle.gcS * 1000, 0)} ms).` : ''));
    out.push('');
  }

  if (r.scale) {
    const ps = r.scale.points;
    out.push('### 4. Scale: labelled StatefulSets of 3 pods');
    out.push('');
    if (ps.length > 0) {
      out.push(`StatefulSets spread over ${ps[0]?.namespaces} namespaces, \`podManagementPolicy: Parallel\`. The controller runs while they are created (it sets P = 3 on each), then is restarted on the whole set. Reaction: a template change of one StatefulSet among them → its first partition move, as a watch sees it (median of ${ps[0]?.reactions.length}; "of which kcm": until kube-controller-manager published the new revision, which sts-pilot waits for).`);
      out.push('');
      out.push('| StatefulSets | pods | created and settled (s) | spawn → /readyz (s) | of which boot: spawn → /healthz (s) | of which sync: /healthz → /readyz (s) | spawn → leader (s) | spawn → first pass done (s) | RSS after sync (MiB) | RSS idle (MiB) | heap used (MiB) | idle CPU (% of a core) | reaction p50 (ms) | of which kcm (ms) | initial LIST requests | idle requests/min (all) |');
      out.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const p of ps) {
        const lists = Object.entries(p.initialLists).map(([k, v]) => `${v} ${k.replace('list ', '')}`).join(', ');
        const idlePerMin = (Object.values(p.idleRequests).reduce((s, v) => s + v, 0) / p.idleWindowS) * 60;
        out.push(`| ${p.count} | ${p.pods} | ${fmt(p.createS, 0)} | ${fmt(p.readyS, 2)} | ${fmt(p.bootS, 2)} | ${fmt(p.readyS - p.bootS, 2)} | ${fmt(p.leaderS, 2)} | ${fmt(p.firstPassS, 2)} | ${fmt(p.rssReadyMiB, 0)} | ${fmt(p.rssIdleMiB, 0)} | ${fmt(p.heapUsedIdleMiB, 0)} | ${fmt(p.idleCpuPct, 2)} | ${fmt(p.reactionMedianMs, 0)} | ${fmt(p.kcmMedianMs, 0)} | ${lists} | ${fmt(idlePerMin, 1)} |`);
      }
      out.push('');
      if (ps.length >= 2) {
        const a = ps[0] as ScalePoint;
        const b = ps.at(-1) as ScalePoint;
        const x = (f: (p: ScalePoint) => number): string => fmt(f(b) / f(a), 2);
        out.push(`Growth from ${a.count} to ${b.count} StatefulSets (×${fmt(b.count / a.count, 1)}): ready ×${x((p) => p.readyS)} (sync alone ×${x((p) => p.readyS - p.bootS)}), first pass ×${x((p) => p.firstPassS)}, RSS idle ×${x((p) => p.rssIdleMiB)} ` +
          `(${fmt(((b.rssIdleMiB - a.rssIdleMiB) * 1024) / (b.pods + b.count - a.pods - a.count), 1)} KiB per added object), idle CPU ×${x((p) => p.idleCpuPct)}, reaction ×${x((p) => p.reactionMedianMs)}.`);
        out.push('');
      }
      const steps = ps.slice(1).map((b, k) => {
        const a = ps[k] as ScalePoint;
        const per = (f: (p: ScalePoint) => number, d: number) => fmt(((f(b) - f(a)) * 1000) / (b.count - a.count), d);
        return `${a.count} → ${b.count}: RSS idle +${per((p) => p.rssIdleMiB, 1)} MiB, heap +${per((p) => p.heapUsedIdleMiB, 1)} MiB, first pass +${per((p) => p.firstPassS, 2)} s`;
      });
      if (steps.length > 0) out.push(`Per 1,000 StatefulSets added: ${steps.join('; ')}.`, '');
      const at = (n: number) => ps.find((p) => p.count === n);
      const targets: string[] = [];
      const p2k = at(2000);
      const p10k = at(10000);
      if (p2k) targets.push(`RSS idle at 2,000 ≤ 200 MiB: ${fmt(p2k.rssIdleMiB, 0)}, ${ok(p2k.rssIdleMiB <= 200)}`);
      if (p10k) {
        const ms = p10k.reactions.map((x) => x.moveMs);
        targets.push(`RSS idle at 10,000 ≤ 400 MiB: ${fmt(p10k.rssIdleMiB, 0)}, ${ok(p10k.rssIdleMiB <= 400)}`);
        targets.push(`first pass over 10,000 < 15 s: ${fmt(p10k.firstPassS, 2)} s, ${ok(p10k.firstPassS < 15)}`);
        targets.push(`reaction at 10,000 p99 < 100 ms: ${fmt(percentile(ms, 99), 0)} ms (p50 ${fmt(percentile(ms, 50), 0)}, n = ${ms.length}), ${ok(percentile(ms, 99) < 100)}`);
      }
      if (targets.length > 0) out.push(`Targets: ${targets.join('; ')}.`, '');
      out.push('Idle CPU by thread (% of a core) and garbage collections in the idle window: ' +
        ps.map((p) => `${p.count}: ${Object.entries(p.idleCpuByThread).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}; ${p.idleGcCount} GCs, ${fmt(p.idleGcS * 1000, 0)} ms of pauses in ${fmt(p.idleWindowS, 0)} s`).join(' — ') + '.');
      out.push('');
      out.push('Creation CPU (seconds, per process, while the StatefulSets of each row were created and settled): ' +
        ps.map((p) => `${p.count}: ${Object.entries(p.createCpuS).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; ') + '.');
      out.push('');
    }
    const compared = ps.filter((p) => p.baseline);
    if (compared.length > 0) {
      out.push('', `Side by side on the same sets (baseline: the controller of ${compared[0]?.baseline?.root}, restarted just before this one):`, '');
      out.push('| StatefulSets | RSS idle baseline → now (MiB) | ratio | heap used (MiB) | ready (s) | first pass (s) |');
      out.push('|---:|---:|---:|---:|---:|---:|');
      for (const p of compared) {
        const bl = p.baseline as NonNullable<ScalePoint['baseline']>;
        out.push(`| ${p.count} | ${fmt(bl.rssIdleMiB, 0)} → ${fmt(p.rssIdleMiB, 0)} | ${fmt(p.rssIdleMiB / bl.rssIdleMiB, 2)} | ${fmt(bl.heapUsedIdleMiB, 0)} → ${fmt(p.heapUsedIdleMiB, 0)} | ${fmt(bl.readyS, 2)} → ${fmt(p.readyS, 2)} | ${fmt(bl.firstPassS, 2)} → ${fmt(p.firstPassS, 2)} |`);
      }
    }
    if (r.scale.error) {
      out.push(`**Stopped:** ${r.scale.error}`);
      out.push('');
    }
  }

  if (r.goPilot) {
    const g = r.goPilot;
    out.push('### 5. Go statefulset-pilot as a peer');
    out.push('');
    out.push(`${g.builds ? 'Builds' : 'Not run'}: ${g.verdict}.`);
    out.push('');
    out.push('```');
    for (const s of g.steps) out.push(`$ GOTOOLCHAIN=local GOFLAGS=-mod=mod ${s.command}    # exit ${s.exitCode}`, s.output);
    out.push('```');
    out.push('');
  }
  return out.join('\n');
}
