/**
 * `fnpoll status`: the plan plus the state, as stable JSON for scripts (`--json`) and as an aligned
 * table for humans. Pure: the caller supplies `now`.
 *
 * Times are printed in UTC (ISO 8601, `Z`) so that the output does not depend on the machine's
 * time zone; ages and waits are relative (`3m ago`, `in 2h 5m`).
 */
import { formatAddress } from '../ftn/address.js';
import type { Flavour, QueueSummary } from '../bso/types.js';
import type { FailureKind } from '../errors.js';
import type { PlanEntry } from './schedule.js';
import type { State } from './state.js';

/** `lastResult` in the JSON: always the same four keys. */
export interface StatusResult {
  ok: boolean;
  kind: FailureKind | null;
  message: string | null;
  /** The hub's M_ERR / M_BSY text. */
  remote: string | null;
}

/** One hub in `fnpoll status --json`. Field names are part of the interface: do not rename. */
export interface StatusHub {
  name: string;
  address: string;
  due: boolean;
  reason: string;
  lastAttempt: string | null;
  lastSuccess: string | null;
  lastResult: StatusResult | null;
  consecutiveFailures: number;
  nextAttempt: string | null;
  heldUntil: string | null;
  queued: { files: number; bytes: number; flavour: Flavour | null };
  /** Issue 12: where the hub resolves to now and which source says so (config, nodelist; DNS when called). */
  host: string | null;
  /** The host that answered the last call, and its source. */
  reached: { host: string; port: number; address: string | null; source: string; tls: boolean } | null;
}

export interface StatusJson {
  hubs: StatusHub[];
}

// ---------------------------------------------------------------------------------------------
// Small formatters, shared with schedule.ts for its reasons.

/** `2026-01-02T03:04:05Z` (ISO 8601, UTC, whole seconds). */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Two units at most: `45s`, `3m`, `2h 5m`, `3d 4h`. Negative counts as 0. */
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

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/** `512 B`, `1.5 KiB`, `12 KiB`, `3.2 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  let v = n;
  let unit = '';
  for (const u of BYTE_UNITS) {
    v /= 1024;
    unit = u;
    if (v < 1024) break;
  }
  return `${v < 10 ? (Math.floor(v * 10) / 10).toString() : Math.floor(v).toString()} ${unit}`;
}

function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

// ---------------------------------------------------------------------------------------------

/** The rows of `fnpoll status --json`, one per plan entry, in plan (= config) order. */
export function statusRows(
  plan: PlanEntry[],
  state: State,
  queued: Map<string, QueueSummary>,
  now: number,
  /** Hub key → `resolutionText()` (issue 12); absent = not looked up. */
  hosts?: Map<string, string>,
): StatusHub[] {
  return plan.map((entry) => {
    const s = state.hubs[entry.hub.key];
    const q = queued.get(entry.hub.key);
    const r = s?.lastResult;
    return {
      name: entry.hub.name,
      address: formatAddress(entry.hub.address),
      due: entry.due,
      reason: entry.reason,
      lastAttempt: isoOrNull(s?.lastAttempt),
      lastSuccess: isoOrNull(s?.lastSuccess),
      lastResult:
        r === undefined
          ? null
          : r.ok
            ? { ok: true, kind: null, message: null, remote: null }
            : { ok: false, kind: r.kind, message: r.message, remote: r.remote ?? null },
      consecutiveFailures: s?.consecutiveFailures ?? 0,
      nextAttempt: entry.due ? new Date(now).toISOString() : isoOrNull(entry.nextAttempt),
      heldUntil: s?.heldUntil !== undefined && s.heldUntil > now ? new Date(s.heldUntil).toISOString() : null,
      queued: { files: q?.files ?? 0, bytes: q?.bytes ?? 0, flavour: q?.flavour ?? null },
      host: hosts?.get(entry.hub.key) ?? null,
      reached: s?.reached
        ? { host: s.reached.host, port: s.reached.port, address: s.reached.address ?? null, source: s.reached.source, tls: s.reached.tls }
        : null,
    };
  });
}

export function statusJson(rows: StatusHub[]): StatusJson {
  return { hubs: rows };
}

/** Longest failure text shown in the table; the JSON has all of it. */
const TABLE_MESSAGE_LENGTH = 40;

function ago(iso: string | null, now: number): string {
  return iso === null ? 'never' : `${formatDuration(now - Date.parse(iso))} ago`;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function resultCell(row: StatusHub, now: number): string {
  const r = row.lastResult;
  if (r === null) return '-';
  const when = row.lastAttempt === null ? '' : ` ${ago(row.lastAttempt, now)}`;
  if (r.ok) return `ok${when}`;
  const detail = r.remote ?? r.message;
  return `${r.kind}${when}${detail ? ` (${clip(detail, TABLE_MESSAGE_LENGTH)})` : ''}`;
}

function nextCell(row: StatusHub, now: number): string {
  if (row.due) return `due now (${row.reason})`;
  if (row.nextAttempt === null) return `not scheduled (${row.reason})`;
  return `in ${formatDuration(Date.parse(row.nextAttempt) - now)} (${row.reason})`;
}

/** The host that answered last (and who named it), else where the hub resolves to now. */
function hostCell(row: StatusHub): string {
  const r = row.reached;
  if (r) return `${r.host.includes(':') ? `[${r.host}]` : r.host}:${r.port} (${r.source}${r.tls ? ', TLS' : ''})`;
  return row.host === null ? '-' : clip(row.host, TABLE_MESSAGE_LENGTH);
}

function queuedCell(row: StatusHub): string {
  const q = row.queued;
  if (q.files === 0 && q.flavour === null) return '-';
  return `${q.files} file${q.files === 1 ? '' : 's'}, ${formatBytes(q.bytes)}${q.flavour ? `, ${q.flavour}` : ''}`;
}

/**
 * The human table: aligned columns, the free-text NEXT ATTEMPT column last so long reasons do not
 * push the others apart. Ends with a newline.
 */
export function formatStatusTable(rows: StatusHub[], now: number): string {
  if (rows.length === 0) return 'no hubs configured\n';
  const header = ['HUB', 'ADDRESS', 'HOST', 'LAST RESULT', 'LAST OK', 'FAILS', 'QUEUED', 'HELD UNTIL', 'NEXT ATTEMPT'];
  const body = rows.map((row) => [
    row.name,
    row.address,
    hostCell(row),
    resultCell(row, now),
    row.lastSuccess === null ? 'never' : ago(row.lastSuccess, now),
    String(row.consecutiveFailures),
    queuedCell(row),
    row.heldUntil === null ? '-' : formatTime(Date.parse(row.heldUntil)),
    nextCell(row, now),
  ]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((cells) => cells[i]!.length)));
  return all
    .map((cells) =>
      cells
        .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}
