/**
 * What an application (or whoever answers at a URL a StatefulSet's editor
 * chose) said, made fit for an Event, a status annotation or a hold reason:
 * one short line, no control characters, no credentials. Everyone who can read
 * Events sees it, so it is treated as hostile text; the whole answer goes to the
 * debug log only. Pure.
 */

/** The longest application text a reason carries. */
export const APP_TEXT_MAX = 200;

// C0 and C1 controls (newlines and escapes included), DEL, and the Unicode
// marks that reorder or hide text (bidi overrides and isolates, zero-width).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

// scheme://user:password@host → scheme://***@host
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi;
// Authorization schemes followed by their token.
const AUTH_TOKEN = /\b(basic|bearer|apikey|api-key|token)(\s*[:=]?\s+)[A-Za-z0-9+/=._~-]{6,}/gi;
// key=value or "key": "value" pairs whose key names a secret.
const SECRET_PAIR = /(?<![\w.-])(password|passwd|pwd|secret|token|api[_-]?key|authorization|credentials?)("?\s*[:=]\s*"?)[^\s",;&}]+/gi;

/** One line of at most `max` characters (an ellipsis marks a cut), with control characters and credentials removed. */
export function shortLine(text: string, max = APP_TEXT_MAX): string {
  return oneLine(String(text).replace(CONTROL, ' ').replace(AUTH_TOKEN, '$1$2***').replace(SECRET_PAIR, '$1$2***'), max);
}

/**
 * The lighter pass for a whole hold reason, which is the controller's own words
 * around the application's: one line, no control characters, no userinfo in a
 * URL, at most `max` characters. What the application said was already cut by
 * shortLine; this is the last guard before an Event and the status annotation.
 */
export function oneLine(text: string, max: number): string {
  const clean = String(text).replace(CONTROL, ' ').replace(USERINFO, '$1***@').replace(/\s+/g, ' ').trim();
  if (clean.length <= max) return clean;
  // Cut on a code point, never inside a surrogate pair.
  return `${Array.from(clean).slice(0, Math.max(0, max - 1)).join('')}…`;
}
