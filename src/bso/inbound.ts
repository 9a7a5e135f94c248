/**
 * The receiving side of a binkp session: decide what to do with an offered file (have / receive /
 * skip), stream it into a partial file in the temp inbound, and move the finished file into the
 * secure or insecure inbound without ever overwriting anything.
 *
 * Partials are named `<hash>.part` from (hub, wire name, size, mtime), with a `<hash>.json` sidecar
 * saying what they are. A later session with the same hub finds the partial again and resumes it;
 * another hub's partial of the same name has another hash and is never touched.
 *
 * Received names are hostile: they pass through `sanitizeName`, and every final path is checked
 * to sit directly inside its directory.
 *
 * Sanitising maps several wire names to one (`x:y`, `x*y`, `x|y` and `x_y` all become `x_y`), so
 * "already have it" must not be judged by the stored name alone, or three of four such files
 * would be answered M_GOT unreceived and lost. A file stored under a name that sanitising changed
 * gets a name record `<hash>.name` in the temp inbound: the hub's own name, and the inode, size
 * and mtime of the file it describes (a record outliving its file, or a file replaced under the
 * same name, then no longer matches). A file without a valid record was stored under the wire
 * name itself (by us, or by binkd sharing the inbound).
 */
import { hash as digest, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import * as fss from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { IoError, SessionError, errorText } from '../errors.js';
import { crc32 } from '../binkp/crc.js';
import { makeDirsSync } from '../dirs.js';
import { errCode, exists } from '../files.js';
import { GroupSync } from './durable.js';
import { shownText } from '../binkp/untrusted.js';
// The receiving contract is the session's (src/binkp/session.ts); this module implements it.
import type { IncomingFile, Offer, PartialFile } from '../binkp/session.js';

export type { IncomingFile, Offer, PartialFile } from '../binkp/session.js';

export interface InboundDirs {
  secure: string;
  insecure: string;
  temp: string;
}

export interface InboundOptions {
  dirs: InboundDirs;
  /** Identifies the hub the partials belong to (e.g. its address key). */
  hubKey: string;
  /** Bytes that must stay free in the temp inbound; 0 = no check. */
  minFree: number;
  /** ms; partials older than this are removed by cleanStale(); 0 = never. */
  partialMaxAge: number;
  now?: () => number;
  warn?: (msg: string) => void;
  /** Free bytes on the filesystem holding `dir`; default fs.statfs (bavail * bsize). */
  freeSpace?: (dir: string) => Promise<number>;
  /** Permission bits of partials, received files and their records (`inbound_mode`); default 0640. */
  mode?: number;
  /**
   * fsync before a file counts as received (config `fsync`); shared with the flow-file marks of
   * the same session so that both fold into the same rounds. Default: syncing, in its own rounds.
   */
  durable?: GroupSync;
}

export const DEFAULT_INBOUND_MODE = 0o640;

/**
 * Longest name we create, in UTF-8 bytes: most filesystems allow 255; 15 bytes stay free for a
 * clash suffix (`.10000`) and the longer counters of the special names.
 */
export const MAX_NAME_BYTES = 240;
/** binkd's MAX_INB_RENAME: how many other names to try when a name is taken. */
export const MAX_RENAME = 10_000;
/** Same file when the mtimes differ by at most this (FAT's 2-second resolution). */
const MTIME_SLACK_S = 2;
/** Keep an extension this short when cutting a long name. */
const MAX_KEPT_EXT_BYTES = 32;

const PART_RE = /^[0-9a-f]{32}\.(part|json)$/;
const NAME_RECORD_RE = /^[0-9a-f]{32}\.name$/;

/** Control characters (C0, DEL, C1), path separators, `:` and the characters Windows refuses. */
const UNSAFE_RE = /[\u0000-\u001f\u007f-\u009f/\\:*?"<>|]/g;
/**
 * Names sanitizeName() keeps as they are, tested first: printable ASCII without UNSAFE_RE's
 * characters (`"` `*` `/` `:` `<` `>` `?` `\` `|`), not starting with a dot.
 */
const PLAIN_NAME_RE = /^[ !#-)+-\-0-9;=@-[\]-{}~][ !#-)+-.0-9;=@-[\]-{}~]*$/;
/** A UTF-16 surrogate without its partner: not encodable as UTF-8. */
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Cut to at most `max` UTF-8 bytes at a code point boundary. */
function cutUtf8(text: string, max: number): string {
  let bytes = 0;
  let out = '';
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > max) break;
    bytes += n;
    out += ch;
  }
  return out;
}

/**
 * A received file name made safe to create in a directory. Like binkd's strwipe(), control
 * characters, `/`, `\` and `:` become `_`; so do `* ? " < > |`, which inbounds shared with Windows
 * cannot hold. Leading dots become `_` (no hidden files, no `.`/`..`), an empty name becomes `_`,
 * and a long name is cut to MAX_NAME_BYTES keeping a short extension. FTS-1026 §5.4 leaves OS-illegal
 * names to the implementation ("save file with some legal name") and allows names up to 32751 bytes.
 */
export function sanitizeName(name: string): string {
  // The usual name (8.3 packets, archives): printable ASCII, nothing to change; 1 byte a character.
  if (name.length <= MAX_NAME_BYTES && PLAIN_NAME_RE.test(name)) return name;
  let s = name.replace(LONE_SURROGATE_RE, '_').replace(UNSAFE_RE, '_');
  s = s.replace(/^\.+/, (dots) => '_'.repeat(dots.length));
  if (s === '') return '_';
  if (Buffer.byteLength(s, 'utf8') <= MAX_NAME_BYTES) return s;
  const dot = s.lastIndexOf('.');
  const ext = dot > 0 ? s.slice(dot) : '';
  const extBytes = Buffer.byteLength(ext, 'utf8');
  if (ext && extBytes <= MAX_KEPT_EXT_BYTES) return cutUtf8(s.slice(0, dot), MAX_NAME_BYTES - extBytes) + ext;
  return cutUtf8(s, MAX_NAME_BYTES);
}

/** Arcmail bundle: weekday + one digit or letter (`.mo0`, `.SU9`, `.tha`). */
const ARCMAIL_RE = /\.(mo|tu|we|th|fr|sa|su)[0-9a-z]$/i;

/**
 * Names whose extension the tosser looks for: `.pkt`, `.req`, `.?ic` (tic), arcmail. On a clash,
 * binkd (inbound.c inb_done, RENAME_BODY) keeps the extension and writes a hex counter over the
 * tail of the base name.
 */
export function keepsExtension(name: string): boolean {
  return /\.(pkt|req|.ic)$/i.test(name) || ARCMAIL_RE.test(name);
}

/**
 * The names to try, in order, for `name` (already sanitised). First `name` itself. For the
 * special names, binkd's sequence: the last 1 character of the base replaced by 0-f, then the last
 * 2 by 00-ff, then 3 by 000-fff... (`00000001.pkt` -> `00000000.pkt` ... `0000000f.pkt`,
 * `00000000.pkt`, ...); where binkd gives up when the counter is wider than the base, we let the
 * name grow. Other names: `name.1`, `name.2`, ... (binkd's default rename-style postfix).
 */
export function* candidateNames(name: string): Generator<string> {
  yield name;
  let tried = 0;
  if (keepsExtension(name)) {
    const ext = name.slice(-4);
    const base = Array.from(name.slice(0, -4));
    for (let width = 1; ; width++) {
      const head = base.slice(0, Math.max(0, base.length - width)).join('');
      const count = 16 ** width;
      for (let n = 0; n < count; n++) {
        if (++tried > MAX_RENAME) return;
        yield head + n.toString(16).padStart(width, '0') + ext;
      }
    }
  }
  for (let n = 1; n <= MAX_RENAME; n++) yield `${name}.${n}`;
}

/**
 * `dir/name`, refusing anything that would not sit directly inside `dir`. `dir` is one of the
 * Inbound's directories, made absolute and normalised by path.resolve() in its constructor.
 */
function inside(dir: string, name: string): string {
  // The cheap test first: it runs for each name tried for every received file. A plain name in
  // a normalised absolute dir needs no path.join() (which normalises again, ~5 µs a call).
  if (name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name) && path.isAbsolute(dir)) return childPath(dir, name);
  const root = path.resolve(dir);
  const full = path.resolve(root, name);
  if (path.dirname(full) !== root || path.basename(full) !== name) {
    throw new IoError(`inbound ${root}: refusing file name "${name}" (would leave the directory)`);
  }
  return full;
}

/** `name` in the normalised absolute directory `dir` (path.resolve() output: no trailing `/` but for the root). */
function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function sameTime(mtimeMs: number, unixSeconds: number): boolean {
  return Math.abs(Math.floor(mtimeMs / 1000) - unixSeconds) <= MTIME_SLACK_S;
}

async function defaultFreeSpace(dir: string): Promise<number> {
  const st = await fsp.statfs(dir);
  return st.bavail * st.bsize;
}

/** What a name record says about a received file whose stored name is not the hub's name. */
interface NameRecord {
  /** The stored file, absolute. */
  path: string;
  /** The name the hub gave it, unescaped. */
  name: string;
  ino: number;
  size: number;
  mtimeMs: number;
  /**
   * The inode's change time: a file the tosser removed frees its inode for the next one, which may
   * well get the same number, size and mtime; its ctime is new.
   */
  ctimeMs: number;
}

/** Sidecar beside a partial: what it is, for humans and for cleanStale. */
interface Sidecar {
  hub: string;
  name: string;
  size: number;
  mtime: number;
}

/**
 * A file larger than this is synced every time this much more of it arrived (SyncPartial.syncEarly),
 * one sync at a time: the sync before its M_GOT then writes at most the tail.
 */
export const SYNC_EARLY_BYTES = 16 * 1024 * 1024;

/**
 * Received data goes to the partial with synchronous writes as it arrives, as binkd writes it (the
 * frames of one socket read in one writev):
 * microseconds each into the page cache, with no thread-pool round trip and no stream machinery
 * per frame (measured: a 200 MB receive 15 % faster than through an fs.WriteStream, and a
 * thousand packets several times faster). The data is in the file as soon as it arrived, so an
 * interrupted transfer leaves a partial that holds everything received. The socket is not read
 * while a write runs: that is the backpressure.
 */
class SyncPartial implements PartialFile {
  private written = 0;
  private closed = false;
  /** Bytes written since the last early sync started (SYNC_EARLY_BYTES). */
  private unsynced = 0;
  /** The early sync in flight: the descriptor stays open until it settles. */
  private syncing: Promise<void> | undefined;
  /** What an early sync failed with: the file must not be confirmed. */
  private syncError: unknown;

  /**
   * @param writeMeta writes the sidecar: called once, just before the first write that leaves the
   *   file incomplete (or at close), so a file that arrives whole in one read never gets one.
   * @param sidecar the sidecar's path, removed with the partial by discard().
   */
  constructor(
    readonly file: string,
    private readonly offset: number,
    private readonly fd: number,
    private readonly size: number,
    private writeMeta: (() => void) | undefined,
    private readonly sidecar: string,
    /** Syncs the file while it arrives (GroupSync.syncEarly); dropped once it says nothing is synced. */
    private earlySync?: GroupSync,
  ) {}

  /** A sidecar was written for this partial. */
  sidecarWritten = false;

  private writeSidecarOnce(): void {
    const w = this.writeMeta;
    if (!w) return;
    this.writeMeta = undefined;
    w();
    this.sidecarWritten = true;
  }

  get received(): number {
    return this.offset + this.written;
  }

  /** Reopened at an offset: its sidecar, if any, is from an earlier session. */
  get resumed(): boolean {
    return this.offset > 0;
  }

  write(chunks: readonly Buffer[]): void {
    if (this.closed) throw new IoError(`${this.file}: write after close`);
    let total = 0;
    for (const c of chunks) total += c.length;
    if (this.received + total < this.size) this.writeSidecarOnce();
    try {
      let done = fss.writevSync(this.fd, chunks as Buffer[], this.offset + this.written);
      // A short write (rare: a signal, a full disk on the way): the rest chunk by chunk.
      for (let i = 0, at = 0; done < total && i < chunks.length; at += chunks[i]!.length, i++) {
        const c = chunks[i]!;
        if (at + c.length <= done) continue;
        for (let from = done - at; from < c.length; ) {
          const n = fss.writeSync(this.fd, c, from, c.length - from, this.offset + this.written + done);
          from += n;
          done += n;
        }
      }
    } catch (err) {
      throw new IoError(`${this.file}: write failed: ${errorText(err)}`, { cause: err });
    }
    this.written += total;
    this.unsynced += total;
    if (this.unsynced >= SYNC_EARLY_BYTES && this.earlySync && !this.syncing && this.received < this.size) this.syncEarly(this.earlySync);
  }

  /**
   * Start syncing what a large file holds so far, in the thread pool, while more arrives: the
   * page cache would otherwise keep a 200 MB file unwritten until the sync before its M_GOT,
   * which then wrote all of it while the session waited (~150 ms of a 200 MB receive on the
   * development VM's disk).
   */
  private syncEarly(durable: GroupSync): void {
    const started = durable.syncEarly(this.file, this.fd);
    if (!started) {
      // fsync = no, or a memory filesystem: it will not change for this file.
      this.earlySync = undefined;
      return;
    }
    this.unsynced = 0;
    this.syncing = started.then(
      () => {
        this.syncing = undefined;
      },
      (err: unknown) => {
        this.syncing = undefined;
        this.syncError ??= err;
      },
    );
  }

  /** Wait for an early sync in flight; throw what one failed with. */
  private async settleEarlySync(): Promise<void> {
    await this.syncing;
    if (this.syncError !== undefined) throw new IoError(`${this.file}: fsync failed: ${errorText(this.syncError)}`, { cause: this.syncError });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.received < this.size) this.writeSidecarOnce();
    } finally {
      // Never close a descriptor a sync in the thread pool still uses (the number could be reused).
      await this.syncing;
      fss.closeSync(this.fd);
    }
  }

  /** Still open: finish() can use its descriptor. */
  get open(): boolean {
    return !this.closed;
  }

  /**
   * The complete file, through its own descriptor: set its times, make it durable (`sync`), close.
   * One fdatasync in the thread pool, with no open or close of the path around it; it starts as
   * soon as the last byte is written, so the syncs of files completing one after the other run
   * while the next ones arrive, and the kernel folds concurrent ones into shared journal commits.
   */
  async finish(atime: Date, mtime: Date, durable: GroupSync): Promise<void> {
    if (this.closed) throw new IoError(`${this.file}: finish after close`);
    this.closed = true;
    try {
      try {
        fss.futimesSync(this.fd, atime, mtime);
      } catch (err) {
        throw new IoError(`${this.file}: cannot set its time: ${errorText(err)}`, { cause: err });
      }
      await this.settleEarlySync();
      await durable.syncOpenFile(this.file, this.fd);
    } finally {
      await this.syncing;
      fss.closeSync(this.fd);
    }
  }

  /** FTS-1030: the CRC-32 of the whole partial, resumed part included, read back from disk. */
  crc32(): number {
    const buf = Buffer.allocUnsafe(256 * 1024);
    let crc = 0;
    // The partial's own descriptor may be write-only: read through a fresh one.
    let fd: number;
    try {
      fd = fss.openSync(this.file, 'r');
    } catch (err) {
      throw new IoError(`${this.file}: cannot read back: ${errorText(err)}`, { cause: err });
    }
    try {
      for (let at = 0; at < this.received; ) {
        const n = fss.readSync(fd, buf, 0, Math.min(buf.length, this.received - at), at);
        if (n <= 0) throw new IoError(`${this.file}: partial is shorter than the ${this.received} bytes written`);
        crc = crc32(buf.subarray(0, n), crc);
        at += n;
      }
    } catch (err) {
      throw err instanceof IoError ? err : new IoError(`${this.file}: cannot read back: ${errorText(err)}`, { cause: err });
    } finally {
      fss.closeSync(fd);
    }
    return crc;
  }

  /** Close and delete: the data failed its check and must not be resumed or kept. */
  async discard(): Promise<void> {
    await this.close();
    for (const p of [this.file, this.sidecar]) {
      try {
        fss.unlinkSync(p);
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw new IoError(`${p}: cannot remove: ${errorText(err)}`, { cause: err });
      }
    }
  }
}

export class Inbound {
  private readonly dirs: InboundDirs;
  private readonly hubKey: string;
  private readonly minFree: number;
  private readonly partialMaxAge: number;
  private readonly now: () => number;
  private readonly warn: (msg: string) => void;
  private readonly freeSpace: (dir: string) => Promise<number>;
  private readonly mode: number;
  private readonly durable: GroupSync;
  /** Directories known to exist: one mkdir per directory per session, not three per file. */
  private readonly made = new Set<string>();

  constructor(opts: InboundOptions) {
    this.dirs = {
      secure: path.resolve(opts.dirs.secure),
      insecure: path.resolve(opts.dirs.insecure),
      temp: path.resolve(opts.dirs.temp),
    };
    this.hubKey = opts.hubKey;
    this.minFree = opts.minFree;
    this.partialMaxAge = opts.partialMaxAge;
    this.now = opts.now ?? Date.now;
    this.warn = opts.warn ?? (() => undefined);
    this.freeSpace = opts.freeSpace ?? defaultFreeSpace;
    this.mode = opts.mode ?? DEFAULT_INBOUND_MODE;
    this.durable = opts.durable ?? new GroupSync(true);
  }

  private ensureDir(dir: string): void {
    if (this.made.has(dir)) return;
    try {
      makeDirsSync(dir);
    } catch (err) {
      throw new IoError(`${dir}: cannot create directory: ${errorText(err)}`, { cause: err });
    }
    this.made.add(dir);
  }

  /** What to answer to an M_FILE for `file`. */
  async offer(file: IncomingFile, secure: boolean): Promise<Offer> {
    checkFile(file);
    const name = sanitizeName(file.name);
    const dir = secure ? this.dirs.secure : this.dirs.insecure;

    const have = await this.findSame(dir, name, file);
    if (have) {
      // A partial of the same file is what a kill between linking it into place and removing it
      // leaves behind: the data is in the inbound, the partial is litter.
      this.dropLeftover(file);
      return { action: 'have', path: have };
    }

    this.ensureDir(this.dirs.temp);
    const offset = await this.resumeOffset(file);

    if (this.minFree > 0) {
      let free: number;
      try {
        free = await this.freeSpace(this.dirs.temp);
      } catch (err) {
        throw new IoError(`temp inbound ${this.dirs.temp}: cannot read free space: ${errorText(err)}`, { cause: err });
      }
      const need = file.size - offset;
      if (free - need < this.minFree) {
        return {
          action: 'skip',
          reason: `temp inbound ${this.dirs.temp} has ${free} bytes free; ${file.name} needs ${need} more, ` +
            `which would leave less than min_free ${this.minFree}`,
        };
      }
    }
    return { action: 'receive', offset };
  }

  /** Open (create or reopen) the partial for `file`, positioned at `offset` (anything beyond it is cut). */
  async open(file: IncomingFile, offset: number): Promise<PartialFile> {
    checkFile(file);
    const { part, sidecar } = this.partialPaths(file);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > file.size) {
      throw new IoError(`${part}: offset ${offset} is outside 0..${file.size} for ${file.name}`);
    }
    this.ensureDir(this.dirs.temp);
    let flags = 'w';
    if (offset > 0) {
      let length: number;
      try {
        length = (await fsp.stat(part)).size;
      } catch (err) {
        throw new IoError(`${part}: cannot resume ${file.name} at ${offset}: ${errorText(err)}`, { cause: err });
      }
      if (length < offset) {
        throw new IoError(`${part}: cannot resume ${file.name} at ${offset}: partial has only ${length} bytes`);
      }
      if (length > offset) await fsp.truncate(part, offset);
      flags = 'r+';
    }
    // The sidecar says what a partial is, for a human (or a test) looking at the temp inbound. It
    // is written once the partial outlives the read that opened it: not for each small packet.
    const meta: Sidecar = { hub: this.hubKey, name: file.name, size: file.size, mtime: file.mtime };
    const writeMeta = offset > 0 ? undefined : (): void => writeSidecar(sidecar, JSON.stringify(meta) + '\n', this.mode);
    let fd: number;
    try {
      this.tempNames?.add(path.basename(part));
      fd = fss.openSync(part, flags, this.mode);
      // Exactly inbound_mode, whatever the umask, and also for a partial left by an older run:
      // the final file is this inode, and the tosser's group must be able to read it.
      fss.fchmodSync(fd, this.mode);
    } catch (err) {
      throw new IoError(`${part}: cannot open partial for ${file.name}: ${errorText(err)}`, { cause: err });
    }
    return new SyncPartial(part, offset, fd, file.size, writeMeta, sidecar, file.size - offset > SYNC_EARLY_BYTES ? this.durable : undefined);
  }

  /**
   * All bytes arrived: close the partial, set its mtime to the sender's, and link it into the
   * secure/insecure inbound under the first free candidate name. Returns the final path once the
   * file is durable, so that the M_GOT the caller sends next never promises what a power cut could
   * take back (issue 11, defect 5; binkd has this hole): the data is synced before its name
   * appears in the inbound (a name never points at unsynced data, which a later "already have
   * it" check would accept), and the directory after, so the name survives too. The syncs go
   * through a GroupSync: files completing close together share its rounds.
   */
  async complete(file: IncomingFile, partial: PartialFile, secure: boolean): Promise<string> {
    checkFile(file);
    const { part, sidecar } = this.partialPaths(file);
    // FTS-1026 §5.5: M_FILE carries the file's unixtime; the received file keeps it. Set before
    // linking: both names share the inode.
    const atime = new Date(this.now());
    const mtime = new Date(file.mtime * 1000);
    const direct = partial instanceof SyncPartial && partial.open;
    if (!direct) await partial.close();
    let size: number;
    try {
      size = fss.statSync(part).size;
    } catch (err) {
      if (direct) await partial.close();
      throw new IoError(`${part}: partial for ${file.name} is missing: ${errorText(err)}`, { cause: err });
    }
    if (size !== file.size) {
      if (direct) await partial.close();
      throw new IoError(`${part}: ${file.name} has ${size} of ${file.size} bytes; not moved to the inbound`);
    }
    if (direct) await partial.finish(atime, mtime, this.durable);
    else {
      // Closed earlier (ND mode holds a complete partial until the hub goes on): by its path.
      fss.utimesSync(part, atime, mtime);
      await this.durable.sync(part, 'file');
    }

    const dir = secure ? this.dirs.secure : this.dirs.insecure;
    this.ensureDir(dir);
    // The sidecar goes first: a kill later leaves a partial without one (removed when the hub
    // offers the file again), never a sidecar without its partial.
    if (!(partial instanceof SyncPartial) || partial.sidecarWritten || partial.resumed) {
      try {
        fss.unlinkSync(sidecar);
      } catch {
        // gone already, or never written (a resumed partial whose sidecar was lost)
      }
    }
    const stored = sanitizeName(file.name);
    const final = await this.place(part, dir, stored);
    // After the link: a kill before the record costs a second copy on a resend, never a file.
    if (stored !== file.name) this.writeNameRecord(final, file.name);
    await this.durable.sync(dir, 'dir');
    return final;
  }

  /** Remove the partial (and sidecar) of `file` when one is there. */
  private dropLeftover(file: IncomingFile): void {
    const { part, sidecar } = this.partialPaths(file);
    let removed = false;
    for (const p of [sidecar, part]) {
      try {
        fss.unlinkSync(p);
        removed = true;
      } catch {
        // none: the usual case
      }
    }
    if (removed) this.warn(`${part}: removed a leftover partial of ${shownText(file.name)}, which is already in the inbound`);
  }

  private nameRecordPath(final: string): string {
    return path.join(this.dirs.temp, `${digest('sha256', final, 'hex').slice(0, 32)}.name`);
  }

  private writeNameRecord(final: string, name: string): void {
    try {
      const st = fss.statSync(final);
      const record: NameRecord = { path: final, name, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
      writeWithMode(this.nameRecordPath(final), JSON.stringify(record) + '\n', this.mode);
    } catch (err) {
      // Without the record a resend of this file is received again: a duplicate, never a loss.
      this.warn(`${final}: cannot record the hub's name ${JSON.stringify(name)}: ${errorText(err)}`);
    }
  }

  /** The hub's name for the file at `final` (stat `st`), when a record that still matches says so. */
  private recordedName(final: string, st: fss.Stats): string | undefined {
    let record: Partial<NameRecord>;
    try {
      record = JSON.parse(fss.readFileSync(this.nameRecordPath(final), 'utf8')) as Partial<NameRecord>;
    } catch {
      return undefined;
    }
    const valid = record.path === final && record.ino === st.ino && record.size === st.size && record.mtimeMs === st.mtimeMs && record.ctimeMs === st.ctimeMs;
    return valid && typeof record.name === 'string' ? record.name : undefined;
  }

  /**
   * Remove partials (and sidecars) older than partialMaxAge (0 = never) from the temp inbound, any
   * hub, and name records whose file is gone from the inbound.
   */
  async cleanStale(): Promise<number> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dirs.temp);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return 0;
      throw new IoError(`temp inbound ${this.dirs.temp}: cannot list: ${errorText(err)}`, { cause: err });
    }
    const cutoff = this.now() - this.partialMaxAge;
    let removed = 0;
    for (const name of names) {
      if (NAME_RECORD_RE.test(name)) {
        this.dropStaleNameRecord(path.join(this.dirs.temp, name));
        continue;
      }
      if (!PART_RE.test(name) || this.partialMaxAge <= 0) continue;
      const full = path.join(this.dirs.temp, name);
      try {
        const st = await fsp.lstat(full);
        if (!st.isFile() || st.mtimeMs >= cutoff) continue;
        await fsp.unlink(full);
        if (name.endsWith('.part')) {
          removed++;
          this.warn(`${full}: removed partial older than ${Math.round(this.partialMaxAge / 1000)} s`);
          // The sidecar goes with it even when the sidecar itself is younger.
          await fsp.unlink(full.slice(0, -'.part'.length) + '.json').catch(() => undefined);
        }
      } catch (err) {
        if (errCode(err) !== 'ENOENT') this.warn(`${full}: cannot remove stale partial: ${errorText(err)}`);
      }
    }
    return removed;
  }

  /** A name record whose file the tosser has taken (or replaced) is of no more use. */
  private dropStaleNameRecord(file: string): void {
    try {
      const record = JSON.parse(fss.readFileSync(file, 'utf8')) as Partial<NameRecord>;
      const st = typeof record.path === 'string' ? fss.statSync(record.path, { throwIfNoEntry: false }) : undefined;
      if (st && record.path && this.recordedName(record.path, st) !== undefined) return;
    } catch {
      // torn or unreadable: useless too
    }
    try {
      fss.unlinkSync(file);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') this.warn(`${file}: cannot remove stale name record: ${errorText(err)}`);
    }
  }

  /**
   * offer, open and complete ask about the same file, and a file's complete may come after the
   * next file's offer: the last few answers are kept.
   */
  private readonly pathCache = new Map<string, { part: string; sidecar: string }>();

  private partialPaths(file: IncomingFile): { part: string; sidecar: string } {
    const key = JSON.stringify([this.hubKey, file.name, file.size, file.mtime]);
    const known = this.pathCache.get(key);
    if (known) return known;
    const hash = digest('sha256', key, 'hex').slice(0, 32);
    const paths = { part: childPath(this.dirs.temp, `${hash}.part`), sidecar: childPath(this.dirs.temp, `${hash}.json`) };
    if (this.pathCache.size >= 8) this.pathCache.delete(this.pathCache.keys().next().value!);
    this.pathCache.set(key, paths);
    return paths;
  }

  /**
   * binkd's inb_test(): walk the names a clash would have produced, up to the first free one;
   * a regular file with the same size and mtime (±2 s) means we already have it, if it also came
   * under the same wire name: its name record says which, and a file without one came under its
   * own name (a wire name that needed no sanitising). So `x:y` never counts as `x_y`.
   */
  private async findSame(dir: string, name: string, file: IncomingFile): Promise<string | undefined> {
    const clean = name === file.name;
    for (const cand of candidateNames(name)) {
      const full = inside(dir, cand);
      let st;
      try {
        // No exception for the usual answer (no such file): building one costs more than the call.
        st = fss.lstatSync(full, { throwIfNoEntry: false });
      } catch (err) {
        if (errCode(err) === 'ENOTDIR') return undefined;
        throw new IoError(`${full}: cannot stat: ${errorText(err)}`, { cause: err });
      }
      if (!st) return undefined;
      if (!st.isFile() || st.size !== file.size || !sameTime(st.mtimeMs, file.mtime)) continue;
      const recorded = this.recordedName(full, st);
      if (recorded === undefined ? clean : recorded === file.name) return full;
    }
    return undefined;
  }

  /**
   * Names in the temp inbound when this Inbound first looked (a session's first offer), plus the
   * partials it opened since: a partial of this hub's file that is in neither cannot exist, as
   * only a session with this hub creates one, and the busy flags allow one at a time. Spares an
   * lstat() per received file. undefined: not listed yet; null: the listing failed (stat each).
   */
  private tempNames: Set<string> | null | undefined;

  private mayHavePartial(part: string): boolean {
    if (this.tempNames === undefined) {
      try {
        this.tempNames = new Set(fss.readdirSync(this.dirs.temp));
      } catch {
        this.tempNames = null;
      }
    }
    return this.tempNames === null || this.tempNames.has(path.basename(part));
  }

  /** Offset to resume `file` at; discards partials that must not be resumed. */
  private async resumeOffset(file: IncomingFile): Promise<number> {
    const { part, sidecar } = this.partialPaths(file);
    if (!this.mayHavePartial(part)) return 0;
    let length: number;
    try {
      const st = fss.lstatSync(part, { throwIfNoEntry: false });
      if (!st) return 0;
      if (!st.isFile()) throw new IoError(`${part}: partial for ${file.name} is not a regular file`);
      length = st.size;
    } catch (err) {
      if (errCode(err) === 'ENOENT') return 0;
      throw err instanceof IoError ? err : new IoError(`${part}: cannot stat: ${errorText(err)}`, { cause: err });
    }
    if (length === 0) return 0;
    let why: string | undefined;
    // A complete one (length = size) is a file received in ND mode and not yet placed (binkd's
    // in_complete): resumed at its size, it is placed without the data coming again.
    if (length > file.size) why = `partial has ${length} bytes, file has ${file.size}`;
    // binkd close_partial(): "partial .pkt" is dropped, never resumed.
    else if (length < file.size && /\.pkt$/i.test(file.name)) why = 'a partial .pkt is received again from the start';
    if (why === undefined) return length;
    this.warn(`${part}: discarding partial of ${file.name}: ${why}`);
    await fsp.unlink(sidecar).catch(() => undefined);
    await fsp.unlink(part).catch(() => undefined);
    return 0;
  }

  /**
   * Put `part` into `dir` under the first free candidate of `name`, never replacing a file:
   * link() fails with EEXIST instead of overwriting, so concurrent sessions cannot clobber each
   * other. Filesystems without hard links (EPERM/ENOTSUP): check-then-rename, which has a window
   * in which a file created by someone else can be replaced. Another filesystem (EXDEV): copy to a
   * hidden temp name inside `dir`, then link that.
   */
  private async place(part: string, dir: string, name: string): Promise<string> {
    let source = part;
    let mode: 'link' | 'rename' = 'link';
    try {
      for (const cand of candidateNames(name)) {
        const final = inside(dir, cand);
        // At most a few rounds: a change of method retries the same candidate.
        for (;;) {
          if (mode === 'link') {
            try {
              fss.linkSync(source, final);
            } catch (err) {
              const code = errCode(err);
              if (code === 'EEXIST') break;
              if (code === 'EXDEV' && source === part) {
                source = await copyInto(part, dir);
                await this.durable.sync(source, 'file');
                continue;
              }
              if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
                this.warn(`${dir}: hard links not supported (${code}); falling back to rename`);
                mode = 'rename';
                continue;
              }
              throw err;
            }
          } else {
            if (await exists(final)) break;
            await fsp.rename(source, final);
          }
          // Placed. What is left behind is only a second name of the same data: warn, don't fail.
          if (mode === 'link') await this.unlinkQuietly(source);
          if (source !== part) await this.unlinkQuietly(part);
          return final;
        }
      }
    } catch (err) {
      if (source !== part) await fsp.unlink(source).catch(() => undefined);
      throw new IoError(`${part}: cannot move ${name} into ${dir}: ${errorText(err)} (data kept in ${part})`, { cause: err });
    }
    if (source !== part) await fsp.unlink(source).catch(() => undefined);
    throw new IoError(`${dir}: no free name for ${name} after ${MAX_RENAME} tries (data kept in ${part})`);
  }

  private async unlinkQuietly(file: string): Promise<void> {
    try {
      fss.unlinkSync(file);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') this.warn(`${file}: cannot remove: ${errorText(err)}`);
    }
  }
}

function checkFile(file: IncomingFile): void {
  if (!Number.isSafeInteger(file.size) || file.size < 0) {
    throw new SessionError('protocol', `received file ${JSON.stringify(file.name)}: bad size ${file.size}`);
  }
  if (!Number.isSafeInteger(file.mtime)) {
    throw new SessionError('protocol', `received file ${JSON.stringify(file.name)}: bad time ${file.mtime}`);
  }
}

/** Copy `file` to a hidden unique name in `dir` (same filesystem as the final name), keeping its times. */
async function copyInto(file: string, dir: string): Promise<string> {
  const tmp = path.join(dir, `.fnpoll-${randomBytes(6).toString('hex')}.tmp`);
  await fsp.copyFile(file, tmp, fsConstants.COPYFILE_EXCL);
  const st = await fsp.stat(file);
  await fsp.utimes(tmp, st.atime, st.mtime);
  return tmp;
}

/**
 * The sidecar only describes its partial (nothing reads it to decide anything), so it is written
 * in place: a torn one after a crash costs nothing, and a temp + rename per received packet did.
 */
function writeSidecar(file: string, data: string, mode: number): void {
  try {
    writeWithMode(file, data, mode);
  } catch (err) {
    throw new IoError(`${file}: cannot write: ${errorText(err)}`, { cause: err });
  }
}

/** Write `data` to `file` with exactly `mode` (fchmod: the umask does not apply). */
function writeWithMode(file: string, data: string, mode: number): void {
  const fd = fss.openSync(file, 'w', mode);
  try {
    fss.fchmodSync(fd, mode);
    fss.writeFileSync(fd, data);
  } finally {
    fss.closeSync(fd);
  }
}
