/**
 * Durations as people write them in annotations: "300" (seconds), "90s", "5m",
 * "1h30m", "2d". Whole seconds; bounds say what makes sense for the policy.
 */
export function parseDuration(raw: string, o: { min: number; max: number }): { ok: true; seconds: number } | { ok: false; error: string } {
  const s = raw.trim();
  const form = 'a duration such as 300 (seconds), 90s, 5m, 1h30m or 2d';
  let seconds: number;
  if (/^[0-9]{1,9}$/.test(s)) seconds = Number(s);
  else {
    const m = /^(?:([0-9]{1,5})d)?(?:([0-9]{1,6})h)?(?:([0-9]{1,7})m)?(?:([0-9]{1,9})s)?$/.exec(s);
    if (!m || s === '') return { ok: false, error: `${JSON.stringify(raw.slice(0, 40))} is not ${form}` };
    const [, d = '0', h = '0', min = '0', sec = '0'] = m;
    seconds = Number(d) * 86_400 + Number(h) * 3600 + Number(min) * 60 + Number(sec);
  }
  if (seconds < o.min || seconds > o.max) return { ok: false, error: `must be between ${formatDuration(o.min * 1000)} and ${formatDuration(o.max * 1000)}, got ${formatDuration(seconds * 1000)}` };
  return { ok: true, seconds };
}

/** "45s", "3m12s", "2h05m", "3d04h": precise where it matters, short where it does not. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** "5m", "1h30m", "300s": a configured duration as written back to people. */
export function formatSeconds(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const out = `${d ? `${d}d` : ''}${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
  return out || '0s';
}
