import { formatDuration } from './duration.ts';
import { addDays, canonicalZone, DAY_NAMES, formatLocal, instantsOf, localTime, weekdayOf } from './zoned-time.ts';

/**
 * Maintenance windows: `sts-pilot.io/window: "Mon-Fri 01:00-05:00 Europe/Berlin"`.
 * A step starts only inside one; a step already taken finishes. Several windows
 * are separated by ";". Times are the zone's wall clock, so a window follows
 * daylight-saving changes as people do: on the day the clock jumps forward over
 * part of it, that part does not happen; on the day it goes back, a repeated
 * hour inside it happens twice.
 */
export interface Window {
  /** Weekdays the window opens on, 0 = Sunday. */
  days: ReadonlySet<number>;
  /** Minutes after local midnight: start inclusive, end exclusive; end <= start runs past midnight. */
  start: number;
  end: number;
  zone: string;
  text: string;
}

/** `always` (no restriction: opts a StatefulSet out of a controller-wide default) or some windows. */
export type Windows = { always: true; text: string } | { always: false; windows: Window[]; text: string };

const DAYS: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };
const FULL: Record<string, string> = { sunday: 'sun', monday: 'mon', tuesday: 'tue', wednesday: 'wed', thursday: 'thu', friday: 'fri', saturday: 'sat' };

function day(token: string): number | undefined {
  const t = token.toLowerCase();
  return DAYS[FULL[t] ?? t];
}

/** "Mon-Fri", "Sat,Sun", "Fri-Mon" (wraps), "*" or "daily". */
function parseDays(spec: string): Set<number> | string {
  if (spec === '*' || spec.toLowerCase() === 'daily') return new Set([0, 1, 2, 3, 4, 5, 6]);
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const [a, b, ...rest] = part.split('-');
    const from = day(a ?? '');
    const to = b === undefined ? from : day(b);
    if (rest.length > 0 || from === undefined || to === undefined) return `"${part}" is not a day or a range of days (Mon, Tue, … Sun; e.g. Mon-Fri or Sat,Sun)`;
    for (let d = from; ; d = (d + 1) % 7) {
      out.add(d);
      if (d === to) break;
    }
  }
  return out;
}

/** "01:00" -> 60; "24:00" only as an end. */
function parseTime(s: string, end: boolean): number | undefined {
  const m = /^([0-9]{1,2}):([0-9]{2})$/.exec(s);
  if (!m) return undefined;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59 || h > 24 || (h === 24 && (min !== 0 || !end))) return undefined;
  return h * 60 + min;
}

function parseOne(text: string): Window | string {
  const tokens = text.trim().split(/\s+/);
  if (tokens.length < 2 || tokens.length > 3) return `"${text}" is not "[days] HH:MM-HH:MM zone", e.g. "Mon-Fri 01:00-05:00 Europe/Berlin"`;
  const [daySpec, range, zoneName] = tokens.length === 3 ? tokens : ['*', ...tokens];
  const days = parseDays(daySpec as string);
  if (typeof days === 'string') return days;
  const [a, b, ...rest] = (range as string).split('-');
  const start = parseTime(a ?? '', false);
  const end = parseTime(b ?? '', true);
  if (rest.length > 0 || start === undefined || end === undefined) return `"${range}" is not a time range HH:MM-HH:MM (24-hour clock, e.g. 01:00-05:00 or 22:00-02:00)`;
  if (start === end % 1440 && end !== 1440) return `"${range}" is empty: start and end are the same (a whole day is 00:00-24:00)`;
  const zone = canonicalZone(zoneName as string);
  if (!zone) return `"${zoneName}" is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)`;
  return { days, start, end, zone, text: [...(tokens.length === 3 ? [daySpec] : []), range, zone].join(' ') };
}

export function parseWindows(raw: string): { ok: true; value: Windows } | { ok: false; error: string } {
  const text = raw.trim();
  if (text.toLowerCase() === 'always') return { ok: true, value: { always: true, text: 'always' } };
  if (text === '') return { ok: false, error: 'is empty: write windows like "Mon-Fri 01:00-05:00 Europe/Berlin", or "always"' };
  if (text.length > 1000) return { ok: false, error: 'is longer than 1000 characters' };
  const parts = text.split(';').map((p) => p.trim()).filter(Boolean);
  if (parts.length > 20) return { ok: false, error: 'names more than 20 windows' };
  const windows: Window[] = [];
  for (const part of parts) {
    const w = parseOne(part);
    if (typeof w === 'string') return { ok: false, error: w };
    windows.push(w);
  }
  return { ok: true, value: { always: false, windows, text: windows.map((w) => w.text).join('; ') } };
}

/** Inside this window at instant t? */
export function insideWindow(w: Window, t: number): boolean {
  const l = localTime(w.zone, t);
  const m = l.hour * 60 + l.minute;
  if (w.start < w.end) return w.days.has(l.weekday) && m >= w.start && m < w.end;
  // Past midnight: the part after midnight belongs to the day before.
  return (w.days.has(l.weekday) && m >= w.start) || (w.days.has((l.weekday + 6) % 7) && m < w.end);
}

export const insideAny = (ws: readonly Window[], t: number): boolean => ws.some((w) => insideWindow(w, t));

/**
 * The instants, after t and within about 9 days, at which some window's wall
 * clock reads its start (or end): the only moments the union of windows can open
 * (or close).
 */
function boundaries(ws: readonly Window[], t: number, which: 'start' | 'end'): number[] {
  const out: number[] = [];
  for (const w of ws) {
    const today = localTime(w.zone, t);
    for (let k = -1; k <= 8; k++) {
      const d = addDays(today.year, today.month, today.day, k);
      // The day the window opened on (an end past midnight falls on the next day).
      const opened = which === 'start' || w.start < w.end ? d : addDays(d.year, d.month, d.day, -1);
      if (!w.days.has(weekdayOf(opened.year, opened.month, opened.day))) continue;
      const minute = which === 'start' ? w.start : w.end;
      for (const at of instantsOf(w.zone, d.year, d.month, d.day, minute).at) if (at > t) out.push(at);
    }
  }
  return out.sort((a, b) => a - b);
}

/** When the windows next open after t (t outside them), or undefined if not within 9 days (never). */
export function nextOpening(ws: readonly Window[], t: number): number | undefined {
  return boundaries(ws, t, 'start').find((c) => insideAny(ws, c) && !insideAny(ws, c - 1));
}

/** When the windows close after t (t inside them), or undefined if they never do (00:00-24:00 every day). */
export function nextClosing(ws: readonly Window[], t: number): number | undefined {
  return boundaries(ws, t, 'end').find((c) => !insideAny(ws, c) && insideAny(ws, c - 1));
}

export interface WindowState {
  open: boolean;
  /** Open: when it closes; closed: when it opens. Undefined: never. */
  until: number | undefined;
  /** For people: "open until Fri 2026-03-13 05:00 CET" or "closed; opens …". */
  text: string;
}

/** Where the windows stand at `now`: pure, for the planner and for `sts-pilot status`. */
export function windowState(ws: Windows, now: number): WindowState {
  if (ws.always) return { open: true, until: undefined, text: 'always open' };
  // Said in the zone of the window that opens (or closes) then.
  const zoneAt = (t: number): string => (ws.windows.find((w) => insideWindow(w, t)) ?? ws.windows[0])?.zone ?? 'UTC';
  if (insideAny(ws.windows, now)) {
    const until = nextClosing(ws.windows, now);
    return { open: true, until, text: until === undefined ? 'open' : `open until ${formatLocal(zoneAt(until - 1), until)}` };
  }
  const until = nextOpening(ws.windows, now);
  return { open: false, until, text: until === undefined ? 'closed, and it opens on no day' : `closed; opens ${formatLocal(zoneAt(until), until)}` };
}

/** "opens … (in 3h12m)": the relative part only where it is read at once (status), never recorded. */
export const inHowLong = (until: number | undefined, now: number): string => (until === undefined ? '' : ` (in ${formatDuration(until - now)})`);

export { DAY_NAMES };
