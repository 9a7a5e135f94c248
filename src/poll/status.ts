/**
 * `fnpoll status`: the plan plus the state, as stable JSON for scripts (`--json`) and as an aligned
 * table for humans. Pure: the caller supplies `now`.
 *
 * Times are shown in local time on the screen and in UTC (ISO 8601, `Z`) in the JSON; ages and
 * waits are relative (`3m ago`, `in 2h 5m`).
 */
import { formatAddress } from '../ftn/address.js';
import type { Flavour, QueueSummary } from '../bso/types.js';
import type { FailureKind } from '../errors.js';
import type { PlanEntry } from './schedule.js';
import type { HubConfig } from '../config/types.js';
import type { State } from './state.js';
import { formatBytes, formatDuration, formatLocalTime } from '../format.js';

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
    row.heldUntil === null ? '-' : formatLocalTime(Date.parse(row.heldUntil)),
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

/** `fnpoll status <hub>`: one hub, one fact per line (the recent sessions follow, from stats.ts). */
export function formatStatusDetail(row: StatusHub, hub: HubConfig, now: number): string[] {
  const at = (iso: string | null): string => (iso === null ? 'never' : `${formatLocalTime(Date.parse(iso))} (${ago(iso, now)})`);
  const r = row.lastResult;
  const result = r === null ? 'none yet' : r.ok ? 'ok' : `${r.kind}: ${r.message ?? ''}${r.remote ? ` (hub said: ${r.remote})` : ''}`;
  const host = hub.host.includes(':') ? `[${hub.host}]` : hub.host;
  return [
    `${row.name} (${row.address})`,
    `  hub           ${host}:${hub.port}, ${hub.password === undefined ? 'no password' : 'password set'}, cram=${hub.useCram ? 'yes' : 'no'}, nr=${hub.nrMode ? 'yes' : 'no'}`,
    `  poll every    ${formatDuration(hub.pollFrequency)}`,
    `  last attempt  ${at(row.lastAttempt)}`,
    `  last result   ${result}`,
    `  last success  ${at(row.lastSuccess)}`,
    `  failures      ${row.consecutiveFailures} in a row`,
    `  queued        ${queuedCell(row)}`,
    `  held until    ${row.heldUntil === null ? '-' : formatLocalTime(Date.parse(row.heldUntil))}`,
    `  next attempt  ${nextCell(row, now)}`,
  ];
}
