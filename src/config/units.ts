/**
 * Value syntax of the INI file: durations, sizes, booleans, counts. Pure functions, no I/O.
 * Each `tryParse*` returns undefined for text it does not accept; the `parse*` forms throw a
 * TypeError whose message quotes the text and says which forms are accepted.
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const DURATION_UNITS: Readonly<Record<string, number>> = { s: SECOND, m: MINUTE, h: HOUR, d: DAY };
const DURATION_RE = /^(\d+(?:\.\d+)?)\s*([smhd])?$/i;

/** What a duration may look like, for messages. */
export const DURATION_FORMS = 'seconds, or a number with s, m, h or d (30s, 5m, 2h, 1d)';

/**
 * `90` (seconds), `30s`, `5m`, `2h`, `1d` -> milliseconds. Fractions are allowed (`1.5h`);
 * the result is rounded to whole milliseconds. No `w`: weeks are easy to write as days.
 */
export function tryParseDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return undefined;
  const unit = DURATION_UNITS[(m[2] ?? 's').toLowerCase()]!;
  const ms = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

export function parseDuration(text: string): number {
  const ms = tryParseDuration(text);
  if (ms === undefined) throw new TypeError(`"${text}" is not a duration (${DURATION_FORMS})`);
  return ms;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kmg])?b?$/i;

export const SIZE_FORMS = 'bytes, or a number with k, M or G (64k, 10M, 1G)';

/** `4096`, `64k`/`64K`/`64KB`, `10M`, `1G` -> bytes (binary multiples: k = 1024). */
export function tryParseSize(text: string): number | undefined {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return undefined;
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toLowerCase()]!);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

export function parseSize(text: string): number {
  const n = tryParseSize(text);
  if (n === undefined) throw new TypeError(`"${text}" is not a size (${SIZE_FORMS})`);
  return n;
}

const TRUE_WORDS = new Set(['yes', 'true', 'on', '1']);
const FALSE_WORDS = new Set(['no', 'false', 'off', '0']);

export const BOOL_FORMS = 'yes/no, true/false, on/off or 1/0';

/** yes/no, true/false, on/off, 1/0 (any case). */
export function tryParseBool(text: string): boolean | undefined {
  const word = text.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return undefined;
}

export function parseBool(text: string): boolean {
  const b = tryParseBool(text);
  if (b === undefined) throw new TypeError(`"${text}" is not a boolean (${BOOL_FORMS})`);
  return b;
}

/** A plain non-negative decimal integer (no sign, no unit). */
export function tryParseCount(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}
