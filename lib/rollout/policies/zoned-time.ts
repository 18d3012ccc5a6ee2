// Wall-clock time in an IANA time zone, from Node's Intl (full ICU): what a
// maintenance window is written in. Pure functions of (zone, instant).

const MINUTE = 60_000;
const DAY = 86_400_000;

/** The wall clock in a zone at one instant. `weekday`: 0 = Sunday … 6 = Saturday. */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The zone's canonical name if Intl knows it (so "europe/berlin" reads as Europe/Berlin), else undefined. */
export function canonicalZone(zone: string): string | undefined {
  // Intl also accepts offsets ("+01:00"), which have no daylight-saving rules to follow: names only.
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(zone)) return undefined;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

export function localTime(zone: string, t: number): LocalTime {
  const parts: Record<string, number> = {};
  for (const p of formatter(zone).formatToParts(new Date(t))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const { year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = parts;
  return { year, month, day, hour, minute, second, weekday: weekdayOf(year, month, day) };
}

/** 0 = Sunday … 6 = Saturday, of a calendar date (no zone: a date is a date). */
export const weekdayOf = (year: number, month: number, day: number): number => new Date(Date.UTC(year, month - 1, day)).getUTCDay();

/** The wall clock read as if it were UTC, in ms: comparable across instants of one zone. */
const wallMs = (zone: string, t: number): number => {
  const l = localTime(zone, t);
  return Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second);
};

/** How far the zone's wall clock is ahead of UTC at `t`, in ms (whole seconds). */
export const offsetAt = (zone: string, t: number): number => wallMs(zone, Math.floor(t / 1000) * 1000) - Math.floor(t / 1000) * 1000;

/**
 * When the wall clock in `zone` shows this date and minute (`minute` may be
 * 1440: midnight ending the day). Usually one instant; two when the clock is set
 * back over it (the hour repeated in autumn); none when the clock jumps over it
 * (spring): then the instant of the jump, the first moment the wall clock is past it.
 */
export function instantsOf(zone: string, year: number, month: number, day: number, minute: number): { at: number[]; skipped: boolean } {
  const target = Date.UTC(year, month - 1, day, 0, minute);
  // A zone changes its offset at most once within a day or so: the offsets a day
  // either side are all the candidates.
  const offsets = [...new Set([offsetAt(zone, target - DAY), offsetAt(zone, target), offsetAt(zone, target + DAY)])];
  const at = offsets.map((o) => target - o).filter((t) => wallMs(zone, t) === target);
  if (at.length > 0) return { at: [...new Set(at)].sort((a, b) => a - b), skipped: false };
  // Skipped: find the jump, between where the earlier and the later offset would put it.
  let lo = target - Math.max(...offsets);
  let hi = target - Math.min(...offsets);
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (wallMs(zone, mid) >= target) hi = mid;
    else lo = mid;
  }
  return { at: [hi], skipped: true };
}

/** Calendar arithmetic on a date, zone-free. */
export function addDays(year: number, month: number, day: number, n: number): { year: number; month: number; day: number } {
  const d = new Date(Date.UTC(year, month - 1, day + n));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const pad = (n: number): string => String(n).padStart(2, '0');

/** "Tue 2026-03-10 01:00 CET": how people read a moment in the window's zone. */
export function formatLocal(zone: string, t: number): string {
  const l = localTime(zone, t);
  const abbr = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'short' }).formatToParts(new Date(t)).find((p) => p.type === 'timeZoneName')?.value ?? zone;
  return `${DAY_NAMES[l.weekday]} ${l.year}-${pad(l.month)}-${pad(l.day)} ${pad(l.hour)}:${pad(l.minute)} ${abbr}`;
}

export { DAY_NAMES, MINUTE };
