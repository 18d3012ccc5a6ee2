/** Small statistics for the benchmark report. Percentiles by the nearest-rank method. */

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function max(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.max(...values);
}

export function min(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.min(...values);
}

/** Fixed decimals, or "n/a" for NaN. */
export function fmt(v: number | undefined, decimals = 1): string {
  return v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(decimals);
}

/** Milliseconds since the epoch with sub-millisecond precision (one clock for the whole bench process). */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Run `call` n times, one after the other: each call's wall time (ms) and this process's CPU per call (ms). */
export async function timeSequential(n: number, call: (i: number) => Promise<unknown>): Promise<{ ms: number[]; cpuMsPerCall: number }> {
  const cpu0 = process.cpuUsage();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call(i);
    ms.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMsPerCall: (cpu.user + cpu.system) / 1000 / n };
}
