/**
 * The poller's state file: versioned JSON, one entry per hub.
 *
 * In memory times are epoch ms (undefined when unknown); on disk they are ISO 8601 strings (null
 * when unknown), so the file reads well by hand. A file that cannot be read or does not validate is
 * moved aside to `<file>.corrupt-<YYYYMMDDTHHMMSSZ>` and the run goes on from empty state; a missing
 * file is the normal first run. Saves go through write-file-atomic (temp file, fsync, rename), so a
 * `kill -9` at any instant leaves either the old or the new file, never a torn one.
 */
import { dirname } from 'node:path';
import { IoError, errorText, type FailureKind } from '../errors.js';
import { makeDirs } from '../dirs.js';
import { shownText } from '../binkp/untrusted.js';
import { MAX_STATE_BYTES, NotTextFileError, readTextFileSync } from '../textfile.js';
import { fsp, isErrno } from '../files.js';

export const STATE_VERSION = 1;

export type LastResult =
  | { ok: true }
  | { ok: false; kind: FailureKind; message: string; remote?: string | undefined };

/** Cumulative counters since the hub first appeared in the state file. */
export interface HubTotals {
  sessionsOk: number;
  sessionsFailed: number;
  filesSent: number;
  filesReceived: number;
  bytesSent: number;
  bytesReceived: number;
}

/** One session in the bounded per-hub history (newest last). */
export interface HistoryEntry {
  startedAt: number;
  durationMs: number;
  ok: boolean;
  kind?: FailureKind | undefined;
  message?: string | undefined;
  filesSent: number;
  filesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Protocol extensions in force in that session (absent: none). */
  extensions?: string[] | undefined;
}

export interface HubState {
  lastAttempt?: number | undefined;
  lastSuccess?: number | undefined;
  lastResult?: LastResult | undefined;
  consecutiveFailures: number;
  /** Not before this time (backoff, or the end of a hold). */
  nextAttempt?: number | undefined;
  heldUntil?: number | undefined;
  /** hubContact() of the config the last attempt used: a new password or host clears backoff. */
  contact?: string | undefined;
  totals: HubTotals;
  history: HistoryEntry[];
  /** Issue 12: the host that answered the last call, and the source that named it. */
  reached?: ReachedState | undefined;
}

export interface ReachedState {
  host: string;
  port: number;
  address?: string | undefined;
  source: string;
  tls: boolean;
}

export interface State {
  version: typeof STATE_VERSION;
  /** Keyed by `HubConfig.key`. */
  hubs: Record<string, HubState>;
}

export function emptyTotals(): HubTotals {
  return { sessionsOk: 0, sessionsFailed: 0, filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 };
}

export function emptyHubState(): HubState {
  return { consecutiveFailures: 0, totals: emptyTotals(), history: [] };
}

export function emptyState(): State {
  return { version: STATE_VERSION, hubs: {} };
}

// Every FailureKind, so that a hand-edited kind is checked; a compile error here means errors.ts
// grew a kind that this file must learn.
const FAILURE_KINDS: Record<FailureKind, true> = {
  dns: true,
  refused: true,
  timeout: true,
  auth: true,
  busy: true,
  protocol: true,
  io: true,
  aborted: true,
  nodelist: true,
  tls: true,
  fingerprint: true,
  proxy: true,
  proxy_auth: true,
};

// ---------------------------------------------------------------------------------------------
// Serialising

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** The file's text: pretty JSON with ISO 8601 times, newline-terminated. */
export function serializeState(state: State): string {
  const hubs: Record<string, unknown> = {};
  for (const [key, h] of Object.entries(state.hubs)) {
    hubs[key] = {
      lastAttempt: iso(h.lastAttempt),
      lastSuccess: iso(h.lastSuccess),
      lastResult: h.lastResult ?? null,
      consecutiveFailures: h.consecutiveFailures,
      nextAttempt: iso(h.nextAttempt),
      heldUntil: iso(h.heldUntil),
      ...(h.contact === undefined ? {} : { contact: h.contact }),
      totals: h.totals,
      history: h.history.map((e) => ({ ...e, startedAt: iso(e.startedAt) })),
      ...(h.reached ? { reached: h.reached } : {}),
    };
  }
  return `${JSON.stringify({ version: state.version, hubs }, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation: the file may have been edited by hand, so every field is checked and a
// problem is reported with its path in the document.

/** The state file does not parse or validate; the message says what and where. */
export class InvalidState extends Error {
  override name = 'InvalidState';
  constructor(message: string) {
    // It quotes the file (JSON.parse quotes a piece of it): one line, no raw control characters.
    super(shownText(message, Infinity));
  }
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(where: string, expected: string, got: unknown): never {
  throw new InvalidState(`${where}: expected ${expected}, got ${describe(got)}`);
}

function time(obj: Record<string, unknown>, key: string, where: string): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && ISO_RE.test(v)) {
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) return ms;
  }
  return fail(`${where}.${key}`, 'an ISO 8601 time or null', v);
}

function count(obj: Record<string, unknown>, key: string, where: string): number {
  const v = obj[key];
  if (v === undefined) return 0;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  return fail(`${where}.${key}`, 'a non-negative integer', v);
}

function text(obj: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  return fail(`${where}.${key}`, 'a string', v);
}

function kind(obj: Record<string, unknown>, key: string, where: string): FailureKind {
  const v = obj[key];
  if (typeof v === 'string' && Object.hasOwn(FAILURE_KINDS, v)) return v as FailureKind;
  return fail(`${where}.${key}`, `one of ${Object.keys(FAILURE_KINDS).join('/')}`, v);
}

function record(v: unknown, where: string): Record<string, unknown> {
  return isRecord(v) ? v : fail(where, 'an object', v);
}

function parseLastResult(v: unknown, where: string): LastResult | undefined {
  if (v === undefined || v === null) return undefined;
  const r = record(v, where);
  if (r.ok === true) return { ok: true };
  if (r.ok !== false) return fail(`${where}.ok`, 'true or false', r.ok);
  const result: LastResult = { ok: false, kind: kind(r, 'kind', where), message: text(r, 'message', where) ?? '' };
  const remote = text(r, 'remote', where);
  if (remote !== undefined) result.remote = remote;
  return result;
}

function parseHistoryEntry(v: unknown, where: string): HistoryEntry {
  const r = record(v, where);
  const startedAt = time(r, 'startedAt', where);
  if (startedAt === undefined) return fail(`${where}.startedAt`, 'an ISO 8601 time', r.startedAt);
  if (typeof r.ok !== 'boolean') return fail(`${where}.ok`, 'true or false', r.ok);
  const e: HistoryEntry = {
    startedAt,
    durationMs: count(r, 'durationMs', where),
    ok: r.ok,
    filesSent: count(r, 'filesSent', where),
    filesReceived: count(r, 'filesReceived', where),
    bytesSent: count(r, 'bytesSent', where),
    bytesReceived: count(r, 'bytesReceived', where),
  };
  if (r.kind !== undefined && r.kind !== null) e.kind = kind(r, 'kind', where);
  const message = text(r, 'message', where);
  if (message !== undefined) e.message = message;
  if (r.extensions !== undefined && r.extensions !== null) {
    if (!Array.isArray(r.extensions) || !r.extensions.every((x) => typeof x === 'string' && /^[A-Z0-9]{1,16}$/.test(x))) {
      return fail(`${where}.extensions`, 'a list of option names', r.extensions);
    }
    e.extensions = [...(r.extensions as string[])];
  }
  return e;
}

function parseHub(v: unknown, where: string): HubState {
  const r = record(v, where);
  const totals = emptyTotals();
  if (r.totals !== undefined) {
    const t = record(r.totals, `${where}.totals`);
    for (const k of Object.keys(totals) as (keyof HubTotals)[]) totals[k] = count(t, k, `${where}.totals`);
  }
  let history: HistoryEntry[] = [];
  if (r.history !== undefined) {
    if (!Array.isArray(r.history)) return fail(`${where}.history`, 'an array', r.history);
    history = r.history.map((e, i) => parseHistoryEntry(e, `${where}.history[${i}]`));
  }
  return {
    lastAttempt: time(r, 'lastAttempt', where),
    lastSuccess: time(r, 'lastSuccess', where),
    lastResult: parseLastResult(r.lastResult, `${where}.lastResult`),
    consecutiveFailures: count(r, 'consecutiveFailures', where),
    nextAttempt: time(r, 'nextAttempt', where),
    heldUntil: time(r, 'heldUntil', where),
    contact: text(r, 'contact', where),
    totals,
    history,
    reached: parseReached(r.reached, `${where}.reached`),
  };
}

function parseReached(v: unknown, where: string): ReachedState | undefined {
  if (v === undefined || v === null) return undefined;
  const r = record(v, where);
  const host = text(r, 'host', where);
  const source = text(r, 'source', where);
  if (host === undefined) return fail(`${where}.host`, 'a string', r.host);
  if (source === undefined) return fail(`${where}.source`, 'a string', r.source);
  if (typeof r.tls !== 'boolean') return fail(`${where}.tls`, 'true or false', r.tls);
  const out: ReachedState = { host, port: count(r, 'port', where), source, tls: r.tls };
  const address = text(r, 'address', where);
  if (address !== undefined) out.address = address;
  return out;
}

/**
 * Parse and validate the file's text. Throws an Error whose message says what is wrong and where
 * (`hubs["fido"].lastAttempt: expected an ISO 8601 time or null, got 12`). Unknown keys are
 * ignored (a newer fnpoll of the same version may add some); missing optional ones take defaults.
 */
export function parseState(textIn: string): State {
  let doc: unknown;
  try {
    doc = JSON.parse(textIn);
  } catch (err) {
    throw new InvalidState(`not JSON (${errorText(err)})`);
  }
  const root = record(doc, 'document');
  if (root.version !== STATE_VERSION) {
    return fail('version', `${STATE_VERSION} (this fnpoll's state format)`, root.version);
  }
  const hubsIn = record(root.hubs, 'hubs');
  const state = emptyState();
  for (const [key, value] of Object.entries(hubsIn)) {
    // A plain object would take this key as its prototype.
    if (key === '__proto__') return fail('hubs', 'hub names', key);
    state.hubs[key] = parseHub(value, `hubs[${JSON.stringify(key)}]`);
  }
  return state;
}

// ---------------------------------------------------------------------------------------------
// Times from the future

/** A past event up to this far in the future is clock jitter between hosts or runs, not a problem. */
export const FUTURE_SLACK_MS = 60_000;

/** The longest period a hub's config can schedule ahead: poll_frequency, retry_max or hold_time. */
export function largestPeriod(hubs: readonly { pollFrequency: number; retryMax: number; holdTime: number }[]): number {
  let max = 0;
  for (const h of hubs) max = Math.max(max, h.pollFrequency, h.retryMax, h.holdTime);
  return max;
}

/** One time of one hub that lay in the future and was capped. */
export interface CappedTime {
  hub: string;
  field: string;
  was: number;
  now: number;
}

/**
 * Times read from state are not trusted (issue 11, defect 7): a clock that went back, or a hand
 * edit (`nextAttempt: 9999-…`), would otherwise keep a hub from ever being polled. Past events
 * (lastAttempt, lastSuccess, history) cannot lie in the future: capped to `now`. Scheduled times
 * (nextAttempt, heldUntil) are capped to `now + maxPeriodMs`, the longest the config can schedule.
 * Changes `state` in place and returns what it capped, for one warning each.
 */
export function capFutureTimes(state: State, now: number, maxPeriodMs: number): CappedTime[] {
  const capped: CappedTime[] = [];
  const pastLimit = now + FUTURE_SLACK_MS;
  const aheadLimit = now + maxPeriodMs + FUTURE_SLACK_MS;
  for (const [key, h] of Object.entries(state.hubs)) {
    const cap = (field: string, value: number | undefined, limit: number, to: number): number | undefined => {
      if (value === undefined || value <= limit) return value;
      capped.push({ hub: key, field, was: value, now: to });
      return to;
    };
    h.lastAttempt = cap('lastAttempt', h.lastAttempt, pastLimit, now);
    h.lastSuccess = cap('lastSuccess', h.lastSuccess, pastLimit, now);
    h.nextAttempt = cap('nextAttempt', h.nextAttempt, aheadLimit, now + maxPeriodMs);
    h.heldUntil = cap('heldUntil', h.heldUntil, aheadLimit, now + maxPeriodMs);
    h.history.forEach((e, i) => {
      e.startedAt = cap(`history[${i}].startedAt`, e.startedAt, pastLimit, now)!;
    });
  }
  return capped;
}

/** `hubs["fido"].nextAttempt 9999-12-31T00:00:00.000Z lies in the future; capped to …`. */
export function cappedText(file: string, c: CappedTime): string {
  return `state file ${file}: hubs[${JSON.stringify(c.hub)}].${c.field} ${iso(c.was)} lies in the future (clock moved back, or the file was edited); capped to ${iso(c.now)}`;
}

// ---------------------------------------------------------------------------------------------
// Loading and saving

/** `20260102T030405Z`: sorts by time, no characters that need quoting in a shell. */
function compactTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** Where a bad state file goes: `<file>.corrupt-<timestamp>`, `-2`, `-3`… if that is taken. */
async function freeQuarantineName(path: string, now: number): Promise<string> {
  const stem = `${path}.corrupt-${compactTimestamp(now)}`;
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? stem : `${stem}-${n}`;
    try {
      await fsp().lstat(candidate);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return candidate;
      throw err;
    }
  }
}

/**
 * The state file's text: a regular file of at most MAX_STATE_BYTES (a FIFO or /dev/zero in its
 * place must not hang the run), UTF-8, a BOM dropped (an editor may add one). Throws the errno
 * error (ENOENT…) or NotTextFileError.
 */
export function readStateText(path: string): string {
  return readTextFileSync(path, MAX_STATE_BYTES, 'JSON state file');
}

export interface LoadStateOptions {
  now: () => number;
  warn: (message: string) => void;
}

/**
 * Read the state file. Missing → empty state. Unreadable, not JSON, wrong shape or another
 * version → moved aside to `<path>.corrupt-<timestamp>` with a warning naming both paths and the
 * reason, then empty state. Throws IoError only when the bad file cannot be moved aside (the next
 * save would overwrite it, and it may be the only copy of the user's data).
 */
export async function loadState(path: string, opts: LoadStateOptions): Promise<State> {
  let reason: string;
  try {
    return parseState(readStateText(path));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return emptyState();
    reason = err instanceof InvalidState || err instanceof NotTextFileError ? err.message : `unreadable: ${errorText(err)}`;
  }
  let dest: string;
  try {
    dest = await freeQuarantineName(path, opts.now());
    await fsp().rename(path, dest);
  } catch (err) {
    throw new IoError(`state file ${path} is invalid (${reason}) and could not be moved aside: ${errorText(err)}`, {
      cause: err,
    });
  }
  opts.warn(`state file ${path} is invalid (${reason}); moved it to ${dest}, starting from empty state`);
  return emptyState();
}

export interface SaveStateOptions {
  /** Keys of the hubs in the current config; other hubs are dropped. */
  knownHubs: Iterable<string>;
  info: (message: string) => void;
}

/**
 * Write the state atomically: write-file-atomic writes a temp file, fsyncs it and renames it over
 * `path`; then the directory is fsynced so the rename itself survives a power cut.
 * Hubs not in `knownHubs` are deleted from `state.hubs` (in place, so the info line appears once)
 * before writing. The directory is created if needed. Failures throw IoError naming the file.
 */
export async function saveState(path: string, state: State, opts: SaveStateOptions): Promise<void> {
  const known = new Set(opts.knownHubs);
  const dropped = Object.keys(state.hubs).filter((k) => !known.has(k));
  if (dropped.length > 0) {
    for (const k of dropped) delete state.hubs[k];
    opts.info(`state file ${path}: dropped hub(s) no longer in the config: ${dropped.join(', ')}`);
  }
  const dir = dirname(path);
  try {
    await makeDirs(dir);
    const { default: writeFileAtomic } = await import('write-file-atomic');
    await writeFileAtomic(path, serializeState(state), { fsync: true });
  } catch (err) {
    throw new IoError(`cannot write state file ${path}: ${errorText(err)}`, { cause: err });
  }
  await fsyncDir(dir);
}

/** Best effort: some filesystems refuse fsync on a directory; the data itself is already synced. */
async function fsyncDir(dir: string): Promise<void> {
  try {
    const fd = await fsp().open(dir, 'r');
    try {
      await fd.sync();
    } finally {
      await fd.close();
    }
  } catch {
    // ignored on purpose (see above)
  }
}

