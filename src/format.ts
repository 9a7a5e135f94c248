/**
 * Every formatter of numbers, times and sizes that fnpoll shows a person or writes to a log.
 * Pure; no imports. One module so that the screen, the log and the JSON say the same thing the
 * same way, and so that rates and sizes are rounded everywhere (never `64.51612903225806 B/s`).
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** `2026-01-02T03:04:05Z` (ISO 8601, UTC, whole seconds): logs, JSON, `.hld` reasons. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/**
 * `2026-01-02 04:04:05` in the machine's time zone, for people reading `status` and `stats` on a
 * terminal (`--json` keeps UTC). `TZ=` picks the zone, as for every other Unix tool.
 */
export function formatLocalTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Two units at most: `45s`, `3m`, `2h 5m`, `3d 4h`. Negative counts as 0. For ages and waits. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d}d ${h % 24}h` : `${d}d`;
}

/**
 * Milliseconds as the shortest exact config form: `1d`, `2h`, `90m`, `45s`, else `1500ms`.
 * The inverse of config/units.ts parseDuration for whole units; for settings shown back to the
 * sysop (`check`, config diagnostics), where rounding would misquote the file.
 */
export function formatExactDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms > 0) {
    for (const [unit, size] of [['d', DAY], ['h', HOUR], ['m', MINUTE], ['s', SECOND]] as const) {
      if (ms % size === 0) return `${ms / size}${unit}`;
    }
  }
  return `${ms}ms`;
}

/** `0.03 s`, `4.2 s`, `95 s`: enough digits to mean something at every scale. For session times. */
export function formatSeconds(secs: number): string {
  return `${secs < 1 ? secs.toFixed(2) : secs < 10 ? secs.toFixed(1) : Math.round(secs)} s`;
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/** `512 B`, `1.5 KiB`, `12 KiB`, `3.2 MiB`. Fractions of a byte are rounded. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '0 B';
  if (n < 1024) return `${Math.round(n)} B`;
  let v = n;
  let unit = '';
  for (const u of BYTE_UNITS) {
    v /= 1024;
    unit = u;
    if (v < 1024) break;
  }
  return `${v < 10 ? (Math.floor(v * 10) / 10).toString() : Math.floor(v).toString()} ${unit}`;
}

/** `64 B/s`, `1.5 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** Whole bytes per second for JSON and logs: the rate of `bytes` over `ms`, or null for no time. */
export function bytesPerSecond(bytes: number, ms: number): number | null {
  return ms > 0 ? Math.round(bytes / (ms / 1000)) : null;
}

/** `1 file`, `3 files`; `count(2, 'entry', 'entries')`. */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
