/**
 * The BinkleyTerm Style Outbound [FTS-5005]: what is queued for a node, and marking it sent.
 *
 * Naming and flow-file parsing are pure. Scanning reads directories, flow files and file
 * metadata; marking writes single bytes in place, as binkd does, so that a crash at any instant
 * never resends a confirmed file and never loses an unconfirmed one (FTN-NOTES §4).
 *
 * Control files (.bsy/.csy/.hld/.try) are not queue items; ./flags.ts handles them. Callers must
 * hold the node's .bsy before changing its flow files (FTS-5005 §5.1).
 */
import { makeDirs } from '../dirs.js';
import type { Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { FLAVOURS, type BsoLayout, type Flavour, type QueueSummary } from './types.js';
import { addressKey, formatAddress, type FtnAddress } from '../ftn/address.js';
import { IoError, errorText } from '../errors.js';
import { fsp, isErrno, unlinkIfPresent } from '../files.js';

/** Let the event loop run (timers/promises' setImmediate, without loading that module on the idle path). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// The synchronous calls come from node:fs through require(): an ES import of node:fs builds its
// whole namespace, streams included, which an idle cron run (planning only) would pay for.
const fsSync = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
const { readFileSync, statSync } = fsSync;

// ---------------------------------------------------------------------------------------------
// Naming (pure)
// ---------------------------------------------------------------------------------------------

/** FTS-5005 §3.2: netmail packet extensions by flavour. */
export const NETMAIL_EXT: Readonly<Record<Flavour, string>> = {
  immediate: 'iut',
  crash: 'cut',
  direct: 'dut',
  normal: 'out',
  hold: 'hut',
};

/** FTS-5005 §3.2: reference (flow) file extensions by flavour. */
export const FLOW_EXT: Readonly<Record<Flavour, string>> = {
  immediate: 'ilo',
  crash: 'clo',
  direct: 'dlo',
  normal: 'flo',
  hold: 'hlo',
};

/** FTS-5005 §4: file requests carry no flavour of their own. */
export const REQ_EXT = 'req';

/** binkd drops `.?ut` packets of this size or less as empty (a bare packet header). */
export const EMPTY_PACKET_MAX = 60;

const NETMAIL_BY_EXT = new Map(FLAVOURS.map((f) => [NETMAIL_EXT[f], f] as const));
const FLOW_BY_EXT = new Map(FLAVOURS.map((f) => [FLOW_EXT[f], f] as const));

/** What an outbound file extension means, case-insensitively; undefined for anything else. */
export function classifyExtension(
  ext: string,
): { kind: 'netmail' | 'flow'; flavour: Flavour } | { kind: 'req' } | undefined {
  const e = ext.toLowerCase();
  const netmail = NETMAIL_BY_EXT.get(e);
  if (netmail) return { kind: 'netmail', flavour: netmail };
  const flow = FLOW_BY_EXT.get(e);
  if (flow) return { kind: 'flow', flavour: flow };
  return e === REQ_EXT ? { kind: 'req' } : undefined;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

function stripTrailingSlash(p: string): string {
  const s = p.replace(/\/+$/, '');
  return s === '' ? '/' : s;
}

/**
 * The outbound directory for a zone. FTS-5005 §2: the default zone lives in the root itself,
 * other zones in `root.zzz` (3 lowercase hex digits; 4 above zone 4095). This is where we write;
 * `zoneDirsToRead` adds `root.<default zone>` for reading.
 */
export function zoneDir(layout: BsoLayout, zone: number): string {
  const root = stripTrailingSlash(layout.root);
  return zone === layout.defaultZone ? root : `${root}.${hex(zone, 3)}`;
}

/**
 * Directories that may hold a zone's files, as we would name them. We write the default zone into
 * the root only, but a tosser may have put it in `root.<default zone>` (FTS-5005 §2 allows both),
 * so we read that too. Scanning also finds these names in other letter cases: see
 * `parseZoneExtension`.
 */
export function zoneDirsToRead(layout: BsoLayout, zone: number): string[] {
  const main = zoneDir(layout, zone);
  return zone === layout.defaultZone ? [main, `${stripTrailingSlash(layout.root)}.${hex(zone, 3)}`] : [main];
}

/**
 * The zone a sibling of the outbound root stands for, or undefined when `name` is not one.
 * `rootName` is the root's last path component. Like binkd's outbound scan (ftnq.c q_scan), the
 * comparison ignores letter case (`OUTBOUND.015`, `outbound.00F`) and the zone is the hex number
 * after the dot; we require 1 to 4 hex digits and nothing else (FTS-5005 §2 writes 3, and 4 above
 * zone 4095), where binkd would take any text that starts with a hex digit.
 */
export function parseZoneExtension(rootName: string, name: string): number | undefined {
  const prefix = `${rootName.toLowerCase()}.`;
  const lower = name.toLowerCase();
  if (!lower.startsWith(prefix)) return undefined;
  const digits = lower.slice(prefix.length);
  if (!/^[0-9a-f]{1,4}$/.test(digits)) return undefined;
  const zone = parseInt(digits, 16);
  return zone >= 1 && zone <= 32767 ? zone : undefined;
}

/** `%04x%04x` of net and node: the stem of every BSO file for a node (FTS-5005 §2). */
function nodeStem(addr: FtnAddress): string {
  return hex(addr.net, 4) + hex(addr.node, 4);
}

/** FTS-5005 §2: points use 8 hex digits of the point number inside `<node>.pnt/`. */
function pointStem(addr: FtnAddress): string {
  return hex(addr.point, 8);
}

/**
 * Full path of a node's BSO files without the extension, lower case as written by us:
 * `<zoneDir>/139c0001` for 2:5020/1, `<zoneDir>/139c0001.pnt/0000002d` for 2:5020/1.45.
 */
export function nodeBase(layout: BsoLayout, addr: FtnAddress): string {
  const dir = zoneDir(layout, addr.zone);
  return addr.point
    ? join(dir, `${nodeStem(addr)}.pnt`, pointStem(addr))
    : join(dir, nodeStem(addr));
}

/** The lower-case path of a node's flow file of a flavour (which may not exist). */
export function flowFilePath(layout: BsoLayout, addr: FtnAddress, flavour: Flavour): string {
  return `${nodeBase(layout, addr)}.${FLOW_EXT[flavour]}`;
}

/** The lower-case path of a node's netmail packet of a flavour (which may not exist). */
export function netmailPath(layout: BsoLayout, addr: FtnAddress, flavour: Flavour): string {
  return `${nodeBase(layout, addr)}.${NETMAIL_EXT[flavour]}`;
}

// ---------------------------------------------------------------------------------------------
// Flow-file lines (pure)
// ---------------------------------------------------------------------------------------------

/** What to do with a file once the remote has confirmed it (FTS-5005 §3.1). */
export type FlowAction = 'delete' | 'truncate' | 'keep';

export interface FlowLine {
  /** Byte offset of the line's first byte in the flow file: where `~` is written on M_GOT. */
  offset: number;
  /** 1-based line number, for messages. */
  lineNo: number;
  /** The line as written, without its CR/LF, decoded as UTF-8. */
  text: string;
  /** `~` or `!`: already sent, skip. */
  sent: boolean;
  action: FlowAction;
  /** The file named on the line, directive and surrounding blanks removed (may be ''). */
  path: string;
}

const LF = 0x0a;
const CR = 0x0d;
const SENT_MARK = 0x7e; // '~'

/** Blanks around a name: white space, and ^Z, the end-of-file byte old DOS tools append. */
function isBlank(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0x1a || code === 0xfeff;
}

/** Trim blanks; a hand loop because this runs once per flow-file line. */
function trimBlanks(s: string, from = 0): string {
  let start = from;
  let end = s.length;
  while (start < end && isBlank(s.charCodeAt(start))) start++;
  while (end > start && isBlank(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/**
 * Split a flow file into its non-blank lines. FTS-5005 §3.1: lines end in LF or CR LF;
 * directives `^` delete, `#` truncate, `~` already sent, none = keep; optionally `-` (= `^`),
 * `!` (= `~`) and `@` (= none), which we recognise but never write. binkd trims trailing
 * blanks; we also trim leading ones (a directive after blanks still counts).
 */
export function parseFlowFile(data: Uint8Array): FlowLine[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const lines: FlowLine[] = [];
  let start = 0;
  let lineNo = 0;
  while (start < buf.length) {
    let end = buf.indexOf(LF, start);
    const next = end === -1 ? buf.length : end + 1;
    if (end === -1) end = buf.length;
    lineNo++;
    let textEnd = end;
    if (textEnd > start && buf[textEnd - 1] === CR) textEnd--;
    const text = buf.toString('utf8', start, textEnd);
    const trimmed = trimBlanks(text);
    if (trimmed !== '') lines.push({ offset: start, lineNo, text, ...directive(trimmed) });
    start = next;
  }
  return lines;
}

function directive(trimmed: string): { sent: boolean; action: FlowAction; path: string } {
  const rest = () => trimBlanks(trimmed, 1);
  switch (trimmed[0]) {
    case '~':
    case '!':
      return { sent: true, action: 'keep', path: rest() };
    case '^':
    case '-':
      return { sent: false, action: 'delete', path: rest() };
    case '#':
      return { sent: false, action: 'truncate', path: rest() };
    case '@':
      return { sent: false, action: 'keep', path: rest() };
    default:
      return { sent: false, action: 'keep', path: trimmed };
  }
}

/** A line is finished when it is marked sent or names no file at all. */
function lineDone(line: FlowLine): boolean {
  return line.sent || line.path === '';
}

/** When one file is listed on several lines, the least destructive directive wins. */
const ACTION_SAFETY: Readonly<Record<FlowAction, number>> = { delete: 0, truncate: 1, keep: 2 };

function saferAction(a: FlowAction, b: FlowAction): FlowAction {
  return ACTION_SAFETY[a] >= ACTION_SAFETY[b] ? a : b;
}

// ---------------------------------------------------------------------------------------------
// Queue types
// ---------------------------------------------------------------------------------------------

/** One line of one flow file. */
export interface FlowLineRef {
  flowPath: string;
  lineOffset: number;
  /** The line as it was read (no CR/LF): checked before marking, so a rewritten flow file is never corrupted. */
  line: string;
}

export interface OutboundItem {
  kind: 'netmail' | 'file' | 'req';
  flavour: Flavour;
  /** Absolute path of the file to send. */
  path: string;
  size: number;
  /** Unix seconds (floor). */
  mtime: number;
  /** For kind 'file': where its flow-file line is, for marking on M_GOT. */
  flow?: FlowLineRef & {
    action: FlowAction;
    /**
     * Further lines naming the same file (binkd drops a session that offers one name twice,
     * FTN-NOTES §8): the file is sent once and every line is marked when it is confirmed.
     * `action` is then the least destructive of the lines' directives (keep > truncate > delete).
     */
    alsoLines?: FlowLineRef[];
  };
}

export interface NodeQueue {
  address: FtnAddress;
  /**
   * Sorted: by flavour (immediate, crash, direct, normal, hold), netmail before flow-file files
   * within a flavour, then flow-file line order; `.req` last.
   */
  items: OutboundItem[];
  /** Every flow file seen (including empty ones), highest flavour first. */
  flowFiles: string[];
  /** Flow files that are empty or hold only blank lines: poll requests (FTS-5005 §3.4). */
  pollRequests: string[];
  /** `.?ut` packets of 60 bytes or less: not sent; the caller may delete them after a successful session. */
  emptyNetmail: string[];
  summary: QueueSummary;
}

export interface ScanOptions {
  /** One line per skipped flow-file line or unreadable file; default: ignore. */
  warn?: (msg: string) => void;
  /** Share directory listings between scans (one readdir per directory). Default: a fresh one. */
  dirs?: OutboundDirCache;
}

// ---------------------------------------------------------------------------------------------
// Directory listings
// ---------------------------------------------------------------------------------------------

export interface DirEntry {
  /** The name as it is on disk. */
  name: string;
  /** Lower-cased part after the first dot ('' when none). */
  ext: string;
}

/** Entries of one directory by lower-cased stem (the part before the first dot). */
export type DirIndex = ReadonlyMap<string, readonly DirEntry[]>;

const EMPTY_INDEX: DirIndex = new Map();

/**
 * Reads each outbound directory once and indexes it case-insensitively (FTS-5005 §2: accept
 * `139C0001.CLO`), so that summarising a thousand nodes costs one readdir per zone or point
 * directory. Listings are kept for the cache's lifetime: make a new one for each plan or session.
 */
export class OutboundDirCache {
  readonly #dirs = new Map<string, Promise<DirIndex>>();

  /** A missing directory is an empty one (nothing queued); any other failure is an IoError. */
  list(dir: string): Promise<DirIndex> {
    let p = this.#dirs.get(dir);
    if (!p) {
      p = listDir(dir);
      this.#dirs.set(dir, p);
    }
    return p;
  }
}

/**
 * Synchronous: a readdir takes microseconds, and planning lists a handful of directories, where
 * each awaited one was a thread-pool round trip on the path every idle cron run takes.
 */
async function listDir(dir: string): Promise<DirIndex> {
  let names: string[];
  try {
    names = fsSync.readdirSync(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return EMPTY_INDEX;
    throw new IoError(`outbound directory ${dir}: cannot list it: ${errorText(err)}`, { cause: err });
  }
  names.sort();
  const index = new Map<string, DirEntry[]>();
  for (const name of names) {
    const lower = name.toLowerCase();
    const dot = lower.indexOf('.');
    const stem = dot === -1 ? lower : lower.slice(0, dot);
    const ext = dot === -1 ? '' : lower.slice(dot + 1);
    let list = index.get(stem);
    if (!list) index.set(stem, (list = []));
    list.push({ name, ext });
  }
  return index;
}

// ---------------------------------------------------------------------------------------------
// Scanning
// ---------------------------------------------------------------------------------------------

interface FoundFile {
  path: string;
  flavour: Flavour;
}

interface NodeFiles {
  netmail: FoundFile[];
  flow: FoundFile[];
  req: string[];
}

const rank = (f: Flavour): number => FLAVOURS.indexOf(f);
const byFlavourThenPath = (a: FoundFile, b: FoundFile): number =>
  rank(a.flavour) - rank(b.flavour) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** The node's netmail, flow and request files as named on disk, in any letter case. */
async function findNodeFiles(
  dirs: OutboundDirCache,
  layout: BsoLayout,
  addr: FtnAddress,
  /** `zoneDirsFound(dirs, layout, addr.zone)`, when the caller already has it. */
  zoneDirs?: readonly string[],
): Promise<NodeFiles> {
  const places: Array<{ dir: string; entries: readonly DirEntry[] }> = [];
  for (const zdir of zoneDirs ?? (await zoneDirsFound(dirs, layout, addr.zone))) {
    const zone = await dirs.list(zdir);
    if (addr.point) {
      // A case-sensitive file system may hold both 139c0001.pnt and 139C0001.PNT: read both.
      const pointDirs = (zone.get(nodeStem(addr)) ?? []).filter((e) => e.ext === 'pnt');
      for (const pd of pointDirs) {
        const dir = join(zdir, pd.name);
        const entries = (await dirs.list(dir)).get(pointStem(addr));
        if (entries) places.push({ dir, entries });
      }
    } else {
      const entries = zone.get(nodeStem(addr));
      if (entries) places.push({ dir: zdir, entries });
    }
  }

  const found: NodeFiles = { netmail: [], flow: [], req: [] };
  for (const { dir, entries } of places) {
    for (const e of entries) {
      const c = classifyExtension(e.ext);
      if (!c) continue;
      const path = join(dir, e.name);
      if (c.kind === 'req') found.req.push(path);
      else found[c.kind].push({ path, flavour: c.flavour });
    }
  }
  found.netmail.sort(byFlavourThenPath);
  found.flow.sort(byFlavourThenPath);
  found.req.sort();
  return found;
}

/**
 * The directories that hold a zone's files: the root for the default zone, and every sibling of
 * the root that names the zone, in any letter case (binkd's scan finds those too). When the root's
 * parent cannot be listed, the names of `zoneDirsToRead` are read instead.
 */
async function zoneDirsFound(dirs: OutboundDirCache, layout: BsoLayout, zone: number): Promise<string[]> {
  const wanted = zoneDirsToRead(layout, zone);
  const root = stripTrailingSlash(layout.root);
  const parent = dirname(root);
  const rootName = basename(root);
  if (parent === root || rootName === '') return wanted;
  let siblings: DirIndex;
  try {
    siblings = await dirs.list(parent);
  } catch {
    return wanted;
  }
  // Every zone directory as the listing names it, so that a case-insensitive file system, where
  // `outbound.00f` and `outbound.00F` are one directory, never has it read (and queued) twice.
  const out = zone === layout.defaultZone ? [root] : [];
  // Entries are indexed by the part before the first dot, lower-cased.
  const dot = rootName.indexOf('.');
  const stem = (dot === -1 ? rootName : rootName.slice(0, dot)).toLowerCase();
  for (const e of siblings.get(stem) ?? []) {
    if (parseZoneExtension(rootName, e.name) === zone) out.push(join(parent, e.name));
  }
  return out;
}

type StatResult = { stats: Stats } | { missing: true } | { error: unknown };

async function statOf(path: string): Promise<StatResult> {
  try {
    return { stats: await fsp().stat(path) };
  } catch (error) {
    return isErrno(error, 'ENOENT') ? { missing: true } : { error };
  }
}

function statNow(path: string): StatResult {
  try {
    const stats = statSync(path, { throwIfNoEntry: false });
    return stats ? { stats } : { missing: true };
  } catch (error) {
    return { error };
  }
}

/**
 * Flow-file entries are stat'ed synchronously, yielding to the event loop after this many:
 * one thread-pool round trip per async stat made 100 000 entries take seconds, this well
 * under one, and no batch blocks the loop for more than about a millisecond.
 */
const STAT_BATCH = 256;

const seconds = (st: Stats): number => Math.floor(st.mtimeMs / 1000);

interface ReadFlow {
  file: FoundFile;
  lines: FlowLine[];
  /** Stat of each line's resolved file, in `lines` order (undefined for lines not to send). */
  targets: Array<{ path: string; result: StatResult } | undefined>;
}

/**
 * Everything queued for one node. Relative paths in flow files are resolved against the
 * outbound root (`layout.root`): FTS-5005 §3.1 leaves this to the implementation, and binkd
 * resolves them against its working directory, which is usually the mailer's base directory;
 * the outbound root is the one directory every BSO program on the system agrees on.
 * Lines whose file is missing or not a regular file are skipped with a warning (FTS-5005 §3.1:
 * "software must ignore the line and continue processing").
 */
export async function scanNode(layout: BsoLayout, addr: FtnAddress, opts: ScanOptions = {}): Promise<NodeQueue> {
  const warn = opts.warn ?? (() => {});
  const found = await findNodeFiles(opts.dirs ?? new OutboundDirCache(), layout, addr);
  const root = resolve(layout.root);

  const [netmailStats, flows, reqStats] = await Promise.all([
    Promise.all(found.netmail.map((f) => statOf(f.path))),
    Promise.all(found.flow.map((f) => readFlow(f, root, warn))),
    Promise.all(found.req.map((p) => statOf(p))),
  ]);

  const queue: NodeQueue = {
    address: addr,
    items: [],
    flowFiles: [],
    pollRequests: [],
    emptyNetmail: [],
    summary: { files: 0, bytes: 0, flavour: undefined, pollRequest: false },
  };
  // Flavours that make the node worth calling: sendable netmail and files, and poll requests.
  const callFlavours = new Set<Flavour>();

  const netmailByFlavour = new Map<Flavour, OutboundItem[]>();
  found.netmail.forEach((f, i) => {
    const st = usableFile(netmailStats[i]!, warn, () => `netmail packet ${f.path}`, true);
    if (!st) return;
    if (st.size <= EMPTY_PACKET_MAX) {
      // binkd drops these as empty packets (FTN-NOTES §4); sending one gains nothing.
      queue.emptyNetmail.push(f.path);
      return;
    }
    const item: OutboundItem = { kind: 'netmail', flavour: f.flavour, path: f.path, size: st.size, mtime: seconds(st) };
    let list = netmailByFlavour.get(f.flavour);
    if (!list) netmailByFlavour.set(f.flavour, (list = []));
    list.push(item);
  });

  const fileItems = new Map<Flavour, OutboundItem[]>();
  const byPath = new Map<string, OutboundItem>();
  for (const flow of flows) {
    if (!flow) continue;
    const { file, lines, targets } = flow;
    queue.flowFiles.push(file.path);
    if (lines.length === 0) {
      queue.pollRequests.push(file.path);
      callFlavours.add(file.flavour);
      continue;
    }
    lines.forEach((line, i) => {
      const target = targets[i];
      if (!target) return;
      const where = () => `${file.path} line ${line.lineNo}`;
      const st = usableFile(target.result, warn, () => `${where()}: "${target.path}"`, false);
      if (!st) return;
      const ref: FlowLineRef = { flowPath: file.path, lineOffset: line.offset, line: line.text };
      const first = byPath.get(target.path);
      if (first?.flow) {
        warn(`${where()}: "${target.path}" is already queued from ${first.flow.flowPath}; sending it once`);
        (first.flow.alsoLines ??= []).push(ref);
        first.flow.action = saferAction(first.flow.action, line.action);
        return;
      }
      const item: OutboundItem = {
        kind: 'file',
        flavour: file.flavour,
        path: target.path,
        size: st.size,
        mtime: seconds(st),
        flow: { ...ref, action: line.action },
      };
      byPath.set(target.path, item);
      let list = fileItems.get(file.flavour);
      if (!list) fileItems.set(file.flavour, (list = []));
      list.push(item);
    });
  }

  for (const flavour of FLAVOURS) {
    for (const item of netmailByFlavour.get(flavour) ?? []) queue.items.push(item);
    for (const item of fileItems.get(flavour) ?? []) queue.items.push(item);
  }
  for (const item of queue.items) callFlavours.add(item.flavour);

  // FTS-5005 §4: a request has no flavour and does not by itself make a call.
  found.req.forEach((path, i) => {
    const st = usableFile(reqStats[i]!, warn, () => `file request ${path}`, true);
    if (st) queue.items.push({ kind: 'req', flavour: 'normal', path, size: st.size, mtime: seconds(st) });
  });

  queue.summary = {
    files: queue.items.length,
    bytes: queue.items.reduce((n, it) => n + it.size, 0),
    flavour: FLAVOURS.find((f) => callFlavours.has(f)),
    pollRequest: queue.pollRequests.length > 0,
  };
  return queue;
}

/** Read and parse one flow file and stat every file it still has to send. Undefined when unreadable. */
async function readFlow(file: FoundFile, root: string, warn: (msg: string) => void): Promise<ReadFlow | undefined> {
  let data: Buffer;
  try {
    data = await fsp().readFile(file.path);
  } catch (err) {
    // Gone since the listing (another program finished it): nothing queued there.
    if (!isErrno(err, 'ENOENT')) warn(`flow file ${file.path}: cannot read it, skipped: ${errorText(err)}`);
    return undefined;
  }
  const lines = parseFlowFile(data);
  const targets: ReadFlow['targets'] = [];
  let batch = 0;
  for (const line of lines) {
    if (line.sent) {
      targets.push(undefined);
    } else if (line.path === '') {
      warn(`${file.path} line ${line.lineNo}: no file name after the directive, skipped`);
      targets.push(undefined);
    } else {
      if (++batch % STAT_BATCH === 0) await nextTurn();
      const path = resolve(root, line.path);
      targets.push({ path, result: statNow(path) });
    }
  }
  return { file, lines, targets };
}

/**
 * The stats of a regular file, or undefined after a warning. `listed` files came from the
 * directory listing: one that vanished since was taken by another program, which is no news.
 */
function usableFile(r: StatResult, warn: (msg: string) => void, what: () => string, listed: boolean): Stats | undefined {
  if ('missing' in r) {
    if (!listed) warn(`${what()}: no such file, skipped`);
    return undefined;
  }
  if ('error' in r) {
    warn(`${what()}: cannot stat it, skipped: ${errorText(r.error)}`);
    return undefined;
  }
  if (!r.stats.isFile()) {
    warn(`${what()}: not a regular file, skipped`);
    return undefined;
  }
  return r.stats;
}

// ---------------------------------------------------------------------------------------------
// Summaries for planning
// ---------------------------------------------------------------------------------------------

/**
 * What is queued for one node. `flavour` is the highest flavour of sendable netmail, sendable
 * flow-file entries and poll requests; `.req` files count in `files`/`bytes` but never set
 * `flavour` (FTS-5005 §4: requests do not initiate a poll). Call the node when `flavour` is
 * defined and not 'hold'.
 */
export async function summarizeNode(layout: BsoLayout, addr: FtnAddress, opts: ScanOptions = {}): Promise<QueueSummary> {
  return (await scanNode(layout, addr, opts)).summary;
}

/**
 * Summaries for many nodes of one outbound tree, keyed by `addressKey(addr)`, in the order of
 * `nodes`. Every zone and point directory is read once for the whole call (pass `dirs` to share
 * the listings with other checks of the same plan), whatever the number of nodes.
 *
 * Planning runs this for every hub on every cron run, so it is built for that: nodes one at a
 * time (only one node's flow lines are ever held), file system calls synchronous (a thread-pool
 * round trip per stat made 100 000 flow lines take seconds), yielding to the event loop every
 * STAT_BATCH calls. The result equals `scanNode(...).summary` for each node, warnings included.
 */
export async function summarizeOutbound(
  layout: BsoLayout,
  nodes: FtnAddress[],
  opts: { warn?: (msg: string) => void; dirs?: OutboundDirCache } = {},
): Promise<Map<string, QueueSummary>> {
  const dirs = opts.dirs ?? new OutboundDirCache();
  const warn = opts.warn ?? (() => {});
  const root = resolve(layout.root);
  const budget = { calls: 0 };
  const out = new Map<string, QueueSummary>();
  const zoneDirs = new Map<number, readonly string[]>();
  for (const addr of nodes) {
    const key = addressKey(addr);
    if (out.has(key)) continue;
    let zd = zoneDirs.get(addr.zone);
    if (!zd) zoneDirs.set(addr.zone, (zd = await zoneDirsFound(dirs, layout, addr.zone)));
    const found = await findNodeFiles(dirs, layout, addr, zd);
    out.set(key, summarizeFound(found, root, warn, budget));
    if (budget.calls >= STAT_BATCH) {
      budget.calls = 0;
      await nextTurn();
    }
  }
  return out;
}

/**
 * `scanNode`'s summary rules without its queue: the same files counted (netmail over 60 bytes,
 * each flow-file target once, `.req`), the same flavour and poll-request rules, the same warnings;
 * only a set of the node's target paths is kept.
 */
function summarizeFound(found: NodeFiles, root: string, warn: (msg: string) => void, budget: { calls: number }): QueueSummary {
  let files = 0;
  let bytes = 0;
  let pollRequest = false;
  const callFlavours = new Set<Flavour>();
  const count = (st: Stats, flavour: Flavour | undefined): void => {
    files++;
    bytes += st.size;
    if (flavour) callFlavours.add(flavour);
  };

  for (const f of found.netmail) {
    budget.calls++;
    const st = usableFile(statNow(f.path), warn, () => `netmail packet ${f.path}`, true);
    // binkd drops packets of 60 bytes or less as empty (FTN-NOTES §4): not sent, not counted.
    if (st && st.size > EMPTY_PACKET_MAX) count(st, f.flavour);
  }

  const firstFrom = new Map<string, string>();
  for (const file of found.flow) {
    let data: Buffer;
    budget.calls++;
    try {
      data = readFileSync(file.path);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) warn(`flow file ${file.path}: cannot read it, skipped: ${errorText(err)}`);
      continue;
    }
    const lines = parseFlowFile(data);
    if (lines.length === 0) {
      pollRequest = true;
      callFlavours.add(file.flavour);
      continue;
    }
    for (const line of lines) {
      if (line.sent) continue;
      if (line.path === '') {
        warn(`${file.path} line ${line.lineNo}: no file name after the directive, skipped`);
        continue;
      }
      budget.calls++;
      const path = resolve(root, line.path);
      const where = (): string => `${file.path} line ${line.lineNo}`;
      const st = usableFile(statNow(path), warn, () => `${where()}: "${path}"`, false);
      if (!st) continue;
      const first = firstFrom.get(path);
      if (first !== undefined) {
        warn(`${where()}: "${path}" is already queued from ${first}; sending it once`);
        continue;
      }
      firstFrom.set(path, file.path);
      count(st, file.flavour);
    }
  }

  for (const path of found.req) {
    budget.calls++;
    const st = usableFile(statNow(path), warn, () => `file request ${path}`, true);
    // FTS-5005 §4: a request does not by itself make a call.
    if (st) count(st, undefined);
  }
  return { files, bytes, flavour: FLAVOURS.find((f) => callFlavours.has(f)), pollRequest };
}

// ---------------------------------------------------------------------------------------------
// Marking progress
// ---------------------------------------------------------------------------------------------

/**
 * The remote confirmed `item` (M_GOT). Flow-file entries: write `~` over the first byte of each
 * of its lines in place (never rewrite the flow file: a tosser may be appending), then apply the
 * directive. Netmail: delete the packet. Requests: nothing (the caller removes them after a
 * successful session). A crash after the mark leaves a file that is neither resent nor lost.
 */
export async function confirmSent(item: OutboundItem): Promise<void> {
  switch (item.kind) {
    case 'netmail':
      await unlinkIfPresent(item.path, 'sent netmail packet');
      return;
    case 'req':
      return;
    case 'file':
      await markSent(item);
      await applyFlowAction(item);
      return;
  }
}

/**
 * The first half of `confirmSent` for a flow-file entry: mark its line(s) `~`. Each line is
 * re-read first; a line already marked is left alone. If a line no longer holds what was
 * scanned (the flow file was rewritten by someone not honouring .bsy), nothing is written there
 * and an IoError is thrown after the other lines are marked, so the caller must not apply the
 * directive: a resend is better than a lost file.
 */
export async function markSent(item: OutboundItem): Promise<void> {
  if (item.kind !== 'file' || !item.flow) return;
  const refs: FlowLineRef[] = [item.flow, ...(item.flow.alsoLines ?? [])];
  const byFile = new Map<string, FlowLineRef[]>();
  for (const r of refs) {
    let list = byFile.get(r.flowPath);
    if (!list) byFile.set(r.flowPath, (list = []));
    list.push(r);
  }
  const problems: string[] = [];
  for (const [flowPath, list] of byFile) {
    let fh;
    try {
      fh = syncHandle(flowPath);
    } catch (err) {
      problems.push(`flow file ${flowPath}: cannot open it to mark "${item.path}" sent: ${errorText(err)}`);
      continue;
    }
    try {
      for (const ref of list) {
        const problem = await markLine(fh, ref);
        if (problem) problems.push(problem);
      }
    } finally {
      await fh.close();
    }
  }
  if (problems.length) throw new IoError(problems.join('; '));
}

/** The part of a FileHandle markLine uses. */
interface FileHandle {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Marks are single bytes in a small file: synchronous calls take microseconds, where each awaited
 * one is a thread-pool round trip, and the session confirms files one after another.
 */
function syncHandle(path: string): FileHandle {
  const fd = fsSync.openSync(path, 'r+');
  return {
    read: async (buffer, offset, length, position) => ({ bytesRead: fsSync.readSync(fd, buffer, offset, length, position) }),
    write: async (buffer, offset, length, position) => fsSync.writeSync(fd, buffer, offset, length, position),
    close: async () => fsSync.closeSync(fd),
  };
}

/** Mark one line; returns a one-line problem instead of throwing so other lines still get marked. */
async function markLine(fh: FileHandle, ref: FlowLineRef): Promise<string | undefined> {
  const expected = Buffer.from(ref.line, 'utf8');
  // One byte more than the line, to see that it still ends where it ended.
  const cur = Buffer.alloc(expected.length + 1);
  const { bytesRead } = await fh.read(cur, 0, cur.length, ref.lineOffset);
  const after = bytesRead > expected.length ? cur[expected.length] : undefined;
  const sameEnd = after === undefined || after === LF || after === CR;
  const sameTail = bytesRead >= expected.length && cur.subarray(1, expected.length).equals(expected.subarray(1));
  if (sameEnd && sameTail && expected.length > 0) {
    if (cur[0] === SENT_MARK) return undefined; // marked already (confirmSent called twice)
    if (cur[0] === expected[0]) {
      await fh.write(Buffer.from([SENT_MARK]), 0, 1, ref.lineOffset);
      return undefined;
    }
  }
  const found = cur.subarray(0, bytesRead).toString('utf8').split(/\r?\n/)[0];
  return `flow file ${ref.flowPath} changed at offset ${ref.lineOffset}: expected ${JSON.stringify(ref.line)}, found ${JSON.stringify(found)}; line not marked`;
}

/** The second half of `confirmSent` for a flow-file entry: delete, truncate or keep the file. */
export async function applyFlowAction(item: OutboundItem): Promise<void> {
  if (item.kind !== 'file' || !item.flow) return;
  switch (item.flow.action) {
    case 'delete':
      await unlinkIfPresent(item.path, `sent file (${item.flow.flowPath})`);
      return;
    case 'truncate':
      try {
        await fsp().truncate(item.path, 0);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) {
          throw new IoError(`sent file ${item.path} (${item.flow.flowPath}): cannot truncate it: ${errorText(err)}`, { cause: err });
        }
      }
      return;
    case 'keep':
      return;
  }
}

export interface FinishOptions {
  /**
   * The outbound root, for relative paths (see `scanNode`). When given, a line whose file no
   * longer exists is marked sent (`~`) first, as binkd does when it cannot open a listed file
   * (protocol.c start_file_transfer -> remove_from_spool), so that a vanished file neither keeps
   * the flow file alive nor is warned about in every later session. Without it, such lines stay.
   */
  root?: string | undefined;
  /** One line per vanished line marked; default: ignore. */
  warn?: (msg: string) => void;
}

/**
 * Delete a flow file whose every line is marked sent (or that is empty) and return true.
 * A flow file with any unsent line is kept (false); so is one that does not exist.
 * Empty flow files are poll requests: call this for them only after a successful session
 * (FTS-5005 §3.4). The caller holds the node's .bsy, so no program appends meanwhile.
 */
export async function finishFlowFile(flowPath: string, opts: FinishOptions = {}): Promise<boolean> {
  let data: Buffer;
  try {
    data = await fsp().readFile(flowPath);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new IoError(`flow file ${flowPath}: cannot read it: ${errorText(err)}`, { cause: err });
  }
  const lines = parseFlowFile(data);
  if (opts.root !== undefined) {
    const vanished = lines.filter((l) => !lineDone(l) && 'missing' in statNow(resolve(opts.root!, l.path)));
    if (vanished.length) await markVanished(flowPath, vanished, opts.warn ?? (() => {}));
    for (const l of vanished) l.sent = true;
  }
  if (!lines.every(lineDone)) return false;
  try {
    await fsp().unlink(flowPath);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new IoError(`flow file ${flowPath}: cannot delete it: ${errorText(err)}`, { cause: err });
  }
  return true;
}

/** Mark `~` on lines whose file is gone; each line is checked before it is marked (see markLine). */
async function markVanished(flowPath: string, lines: FlowLine[], warn: (msg: string) => void): Promise<void> {
  let fh;
  try {
    fh = await fsp().open(flowPath, 'r+');
  } catch (err) {
    throw new IoError(`flow file ${flowPath}: cannot open it to mark vanished files: ${errorText(err)}`, { cause: err });
  }
  const problems: string[] = [];
  try {
    for (const l of lines) {
      const problem = await markLine(fh, { flowPath, lineOffset: l.offset, line: l.text });
      if (problem) problems.push(problem);
      else warn(`${flowPath} line ${l.lineNo}: "${l.path}" no longer exists; line marked sent`);
    }
  } finally {
    await fh.close();
  }
  if (problems.length) throw new IoError(problems.join('; '));
}

// ---------------------------------------------------------------------------------------------
// Helpers for other modules and tools
// ---------------------------------------------------------------------------------------------

/**
 * Make sure a flow file of `flavour` exists for the node (a poll request when it is new) and
 * return its path. An existing one, in any letter case, is used as it is: never truncated.
 */
export async function createPollRequest(
  layout: BsoLayout,
  addr: FtnAddress,
  flavour: 'normal' | 'direct' | 'crash' | 'immediate' = 'direct',
): Promise<string> {
  const dirs = new OutboundDirCache();
  const found = await findNodeFiles(dirs, layout, addr);
  const existing = found.flow.find((f) => f.flavour === flavour);
  if (existing) return existing.path;

  let path = flowFilePath(layout, addr, flavour);
  if (addr.point) {
    // Use a point directory that exists in another letter case rather than make a second one.
    const zdir = zoneDir(layout, addr.zone);
    const pnt = ((await dirs.list(zdir)).get(nodeStem(addr)) ?? []).find((e) => e.ext === 'pnt');
    if (pnt) path = join(zdir, pnt.name, `${pointStem(addr)}.${FLOW_EXT[flavour]}`);
  }
  try {
    await makeDirs(dirname(path));
    // 'a': creates it if missing and never truncates one that appeared meanwhile.
    const fh = await fsp().open(path, 'a');
    await fh.close();
  } catch (err) {
    throw new IoError(`poll request ${path} for ${formatAddress(addr)}: cannot create it: ${errorText(err)}`, { cause: err });
  }
  return path;
}

/**
 * Append one line to a flow file (created with its directory if missing), LF-terminated.
 * If the file's last line lacks its line end, one is added first so the two do not merge.
 */
export async function appendFlowLine(flowPath: string, line: string): Promise<void> {
  if (/[\r\n]/.test(line)) throw new TypeError(`flow line for ${flowPath} contains a line break: ${JSON.stringify(line)}`);
  try {
    await makeDirs(dirname(flowPath));
    const fh = await fsp().open(flowPath, 'a+');
    try {
      const { size } = await fh.stat();
      let prefix = '';
      if (size > 0) {
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, size - 1);
        if (last[0] !== LF) prefix = '\n';
      }
      // O_APPEND: the write lands at the end even if another program appended meanwhile.
      await fh.write(`${prefix}${line}\n`);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw new IoError(`flow file ${flowPath}: cannot append to it: ${errorText(err)}`, { cause: err });
  }
}

