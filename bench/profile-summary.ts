// node bench/profile-summary.ts <file.cpuprofile> [top] [--from s] [--to s] [--buckets s]:
// where a V8 CPU profile (node --cpu-prof) spent its time: self time by function and by
// package/module, optionally only between --from and --to seconds after the profile began,
// and busy time per --buckets seconds of wall time.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { positionals, values } = parseArgs({ allowPositionals: true, options: { from: { type: 'string' }, to: { type: 'string' }, buckets: { type: 'string' } } });
const [file, topArg] = positionals;
if (!file) {
  console.error('usage: node bench/profile-summary.ts <file.cpuprofile> [top] [--from s] [--to s] [--buckets s]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const fromUs = Number(values.from ?? 0) * 1e6;
const toUs = values.to === undefined ? Number.POSITIVE_INFINITY : Number(values.to) * 1e6;
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const idleIds = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
const selfUs = new Map<number, number>();
const bucketUs = values.buckets === undefined ? 0 : Number(values.buckets) * 1e6;
const busyByBucket = new Map<number, number>();
let t = 0;
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i] ?? 0;
  if (t < fromUs || t > toUs) continue;
  const id = p.samples[i] as number;
  const us = p.timeDeltas[i + 1] ?? 0;
  selfUs.set(id, (selfUs.get(id) ?? 0) + us);
  if (bucketUs > 0 && !idleIds.has(id)) {
    const b = Math.floor(t / bucketUs);
    busyByBucket.set(b, (busyByBucket.get(b) ?? 0) + us);
  }
}

const where = (url: string): string => {
  if (!url) return '(native/V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  if (url.startsWith('node:')) return url;
  const proj = /\/(cmd|lib|hooks)\/(.+)$/.exec(url);
  return proj ? `${proj[1]}/${proj[2]}` : url;
};

const fn = new Map<string, number>();
const pkg = new Map<string, number>();
let total = 0;
let idle = 0;
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  if (!n) continue;
  total += us;
  const name = n.callFrame.functionName || '(anonymous)';
  if (name === '(idle)') {
    idle += us;
    continue;
  }
  const k = `${name}  ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  fn.set(k, (fn.get(k) ?? 0) + us);
  const w = ['(garbage collector)', '(program)'].includes(name) ? name : where(n.callFrame.url);
  pkg.set(w, (pkg.get(w) ?? 0) + us);
}
const busy = total - idle;
const ms = (us: number): string => (us / 1000).toFixed(0).padStart(8);
const pct = (us: number): string => `${((us / busy) * 100).toFixed(1).padStart(5)} %`;
if (bucketUs > 0) {
  console.log(`busy ms per ${bucketUs / 1e6} s:`);
  console.log([...busyByBucket].sort((a, b) => a[0] - b[0]).map(([b, us]) => `${((b * bucketUs) / 1e6).toFixed(0)}s:${(us / 1000).toFixed(0)}`).join(' '));
}
console.log(`${file}: wall ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(1)} s`);
console.log('\nself time by package/module (ms, % of busy):');
for (const [k, v] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ${pct(v)}  ${k}`);
console.log('\nself time by function:');
for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ${pct(v)}  ${k}`);
