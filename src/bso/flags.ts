/**
 * BSO control files [FTS-5005 §5]: `.bsy`/`.csy` busy flags held by a `FlagKeeper`, the `.hld`
 * hold file and binkd's `.try` file. Paths of flags are full paths (`/ftn/out/139c0001.bsy`);
 * the `.hld`/`.try` helpers take the node's base path without extension (`/ftn/out/139c0001`).
 *
 * Staleness: a flag is stale when its mtime is older than `staleAge`, or when the PID written in
 * it is provably dead on this host. The PID test assumes the outbound is not shared with other
 * hosts; pass `isAlive: () => true` to turn it off.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, statSync, unlinkSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { IoError, errorText } from '../errors.js';
import { makeDirs } from '../dirs.js';

/** binkd touches its `.bsy`/`.csy` every 60 s (bsy.c, BSY_TOUCH_DELAY). */
export const FLAG_TOUCH_EVERY_MS = 60_000;
/** FTS-5005 §5.1: a bsy file "may contain one line of PID information (less than 70 characters)". */
const FLAG_READ_BYTES = 128;
/** A `.hld` holds one decimal number; anything longer is garbage. */
const HOLD_READ_BYTES = 64;
/** `.try`: the comment length is one byte. */
export const TRY_COMMENT_MAX_BYTES = 255;

export interface FlagHolder {
  path: string;
  /** PID written in the flag, when its first line is a plain decimal number. */
  pid?: number;
  /** now - mtime, never negative. */
  ageMs: number;
}

export type AcquireResult = { ok: true } | { ok: false; holder: FlagHolder };

/** Starts a repeating callback; returns the function that stops it. */
export type Scheduler = (cb: () => Promise<void>, everyMs: number) => () => void;

export interface FlagOptions {
  /** Age in ms after which a flag is stale; 0 or less = never stale by age (binkd's kill-old-bsy 0). */
  staleAge: number;
  now?: () => number;
  /** Our PID, written into flags we create; default process.pid. */
  pid?: number;
  /** False only when the PID is provably dead; default: process.kill(pid, 0) gives ESRCH. */
  isAlive?: (pid: number) => boolean;
}

export interface FlagKeeperOptions extends FlagOptions {
  warn?: (msg: string) => void;
  /** ms between touches of held flags; default 60 000 like binkd. */
  touchEvery?: number;
  /** Timer used for touching; default an unref'd setInterval. */
  schedule?: Scheduler;
}

/** `process.kill(pid, 0)`: ESRCH = no such process; EPERM = exists but not ours, so alive. */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  // 0 and negative pids address process groups, not a process.
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

const defaultSchedule: Scheduler = (cb, everyMs) => {
  const t = setInterval(() => void cb(), everyMs);
  t.unref();
  return () => clearInterval(t);
};

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** First line a plain decimal PID (binkd writes `%u\n`)? Anything else: no PID, never judged dead. */
function parsePid(text: string): number | undefined {
  const first = text.split('\n', 1)[0]!.trim();
  if (!/^\d{1,10}$/.test(first)) return undefined;
  const pid = Number(first);
  return pid > 0 && pid <= 0x7fffffff ? pid : undefined;
}

async function readHead(file: string, max: number): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(max);
    const { bytesRead } = await fh.read(buf, 0, max, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

interface FlagInfo {
  holder: FlagHolder;
  ino: number;
  stale: boolean;
  /** Why it is stale, for the warning. */
  why: string;
}

/** Look at an existing flag; undefined when there is none. */
async function inspectFlag(file: string, opts: FlagOptions): Promise<FlagInfo | undefined> {
  let st;
  let head: Buffer;
  try {
    st = await fsp.stat(file);
    head = await readHead(file, FLAG_READ_BYTES);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw new IoError(`${file}: cannot read flag: ${errorText(err)}`, { cause: err });
  }
  const now = (opts.now ?? Date.now)();
  const ageMs = Math.max(0, now - st.mtimeMs);
  const pid = parsePid(head.toString('latin1'));
  const holder: FlagHolder = pid === undefined ? { path: file, ageMs } : { path: file, pid, ageMs };
  const isAlive = opts.isAlive ?? pidAlive;
  const own = opts.pid ?? process.pid;
  let why = '';
  if (opts.staleAge > 0 && ageMs > opts.staleAge) {
    why = `${Math.round(ageMs / 1000)} s old (stale after ${Math.round(opts.staleAge / 1000)} s)`;
  } else if (pid !== undefined && pid !== own && !isAlive(pid)) {
    why = "that process is not running";
  }
  return { holder, ino: st.ino, stale: why !== '', why };
}

/**
 * Is a fresh flag there (one that is neither too old nor left by a dead PID)? Returns its holder,
 * or undefined when the flag is absent or stale. Never changes anything.
 */
export async function flagBusy(file: string, opts: FlagOptions): Promise<FlagHolder | undefined> {
  const info = await inspectFlag(file, opts);
  return info && !info.stale ? info.holder : undefined;
}

/** Create `file` exclusively with `content`; false when it already exists. */
async function createExclusive(file: string, content: string): Promise<{ ino: number } | false> {
  let fh;
  try {
    fh = await fsp.open(file, 'wx');
  } catch (err) {
    if (errCode(err) === 'EEXIST') return false;
    if (errCode(err) !== 'ENOENT') throw err;
    // bsy.c mkpath(): point (`.pnt`) and zone (`.zzz`) directories may not exist yet.
    await makeDirs(path.dirname(file));
    try {
      fh = await fsp.open(file, 'wx');
    } catch (err2) {
      if (errCode(err2) === 'EEXIST') return false;
      throw err2;
    }
  }
  try {
    await fh.writeFile(content);
    const st = await fh.stat();
    await fh.close();
    return { ino: st.ino };
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fsp.unlink(file).catch(() => undefined);
    throw err;
  }
}

/**
 * Holds `.bsy`/`.csy` flags for one process [FTS-5005 §5.1-5.2]. Flags are created with `wx`
 * (FTS-5005 §5.1 warns against a check-then-create race), touched every `touchEvery` ms while any
 * is held (binkd does the same, so other programs can judge staleness by mtime), and removed only
 * by the keeper that created them.
 */
export class FlagKeeper {
  private readonly opts: FlagKeeperOptions;
  private readonly now: () => number;
  private readonly warn: (msg: string) => void;
  private readonly pid: number;
  private readonly touchEvery: number;
  private readonly schedule: Scheduler;
  /** Held flag path -> inode of the file we created. */
  private readonly flags = new Map<string, number>();
  private stopTimer: (() => void) | undefined;

  constructor(opts: FlagKeeperOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.warn = opts.warn ?? (() => undefined);
    this.pid = opts.pid ?? process.pid;
    this.touchEvery = opts.touchEvery ?? FLAG_TOUCH_EVERY_MS;
    this.schedule = opts.schedule ?? defaultSchedule;
  }

  /**
   * Exclusive create with our PID + '\n' (binkd's format). A stale flag is removed with a warning
   * and creation is retried once. Acquiring a flag this keeper already holds succeeds.
   */
  async acquire(file: string): Promise<AcquireResult> {
    const key = path.resolve(file);
    if (this.flags.has(key)) return { ok: true };
    for (let attempt = 0; ; attempt++) {
      let created;
      try {
        created = await createExclusive(key, `${this.pid}\n`);
      } catch (err) {
        throw new IoError(`${key}: cannot create flag: ${errorText(err)}`, { cause: err });
      }
      if (created) {
        this.flags.set(key, created.ino);
        this.startTimer();
        return { ok: true };
      }
      const info = await inspectFlag(key, { ...this.opts, pid: this.pid, now: this.now });
      if (info === undefined) {
        // It vanished between our create and our look: its owner released it. Try again.
        if (attempt === 0) continue;
        return { ok: false, holder: { path: key, ageMs: 0 } };
      }
      if (!info.stale || attempt > 0) return { ok: false, holder: info.holder };
      const pidText = info.holder.pid === undefined ? 'no PID' : `PID ${info.holder.pid}`;
      const taken = await this.removeStale(key, info.ino);
      if (taken === 'replaced') {
        // Someone replaced the stale flag with a fresh one while we looked: theirs now.
        const fresh = await inspectFlag(key, { ...this.opts, pid: this.pid, now: this.now });
        return { ok: false, holder: fresh?.holder ?? info.holder };
      }
      if (taken === 'removed') this.warn(`${key}: removed stale flag (${pidText}, ${info.why})`);
    }
  }

  /**
   * Remove a stale flag without deleting a fresh one that replaced it: rename it to a name only we
   * use, check that the renamed file is the inode we judged stale, and only then unlink it. If it
   * is not (another program removed the stale flag and created its own in between), link it back
   * and report 'replaced'. What remains: while it is away under our name (microseconds) a third
   * program could create the flag; our link-back then fails with EEXIST and the second program's
   * flag is lost although it believes it holds it. Programs that simply unlink stale flags (binkd's
   * kill-old-bsy) are not protected by any of this.
   */
  private async removeStale(file: string, ino: number): Promise<'removed' | 'gone' | 'replaced'> {
    const aside = `${file}.${this.pid}-${randomBytes(4).toString('hex')}.stale`;
    try {
      await fsp.rename(file, aside);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return 'gone';
      throw new IoError(`${file}: cannot remove stale flag: ${errorText(err)}`, { cause: err });
    }
    try {
      const st = await fsp.stat(aside);
      if (st.ino !== ino) {
        try {
          await fsp.link(aside, file);
        } catch (err) {
          this.warn(`${file}: a fresh flag replaced the stale one while it was removed and could not be put back: ${errorText(err)}`);
        }
        return 'replaced';
      }
      return 'removed';
    } finally {
      await fsp.unlink(aside).catch(() => undefined);
    }
  }

  /** Remove a flag this keeper created; does nothing for any other path. */
  async release(file: string): Promise<void> {
    const key = path.resolve(file);
    const ino = this.flags.get(key);
    if (ino === undefined) return;
    this.flags.delete(key);
    if (this.flags.size === 0) this.stopTouching();
    try {
      const st = await fsp.stat(key);
      if (st.ino !== ino) {
        this.warn(`${key}: flag was replaced by another program; left in place`);
        return;
      }
      await fsp.unlink(key);
    } catch (err) {
      if (errCode(err) === 'ENOENT') {
        this.warn(`${key}: flag vanished while we held it`);
        return;
      }
      throw new IoError(`${key}: cannot remove flag: ${errorText(err)}`, { cause: err });
    }
  }

  async releaseAll(): Promise<void> {
    const errors: unknown[] = [];
    for (const file of [...this.flags.keys()]) {
      await this.release(file).catch((err: unknown) => errors.push(err));
    }
    if (errors.length) throw errors[0];
  }

  /** For exit and signal handlers: synchronous, never throws. */
  releaseAllSync(): void {
    this.stopTouching();
    for (const [file, ino] of this.flags) {
      try {
        if (statSync(file).ino === ino) unlinkSync(file);
      } catch {
        // Nothing useful to do while exiting.
      }
    }
    this.flags.clear();
  }

  held(): string[] {
    return [...this.flags.keys()];
  }

  /** Is someone else's fresh flag at `file`? A flag this keeper holds is not busy. */
  async busy(file: string): Promise<FlagHolder | undefined> {
    if (this.flags.has(path.resolve(file))) return undefined;
    return flagBusy(file, { ...this.opts, pid: this.pid, now: this.now });
  }

  /** Set the mtime of every held flag to now (the timer calls this). */
  async touch(): Promise<void> {
    const t = new Date(this.now());
    for (const file of [...this.flags.keys()]) {
      try {
        await fsp.utimes(file, t, t);
      } catch (err) {
        this.warn(`${file}: cannot touch flag: ${errorText(err)}`);
      }
    }
  }

  private startTimer(): void {
    if (this.stopTimer === undefined) this.stopTimer = this.schedule(() => this.touch(), this.touchEvery);
  }

  private stopTouching(): void {
    this.stopTimer?.();
    this.stopTimer = undefined;
  }
}

/** Write `data` to `file` so that a crash leaves the old or the new content (temp + fsync + rename). */
async function writeAtomic(file: string, data: string | Buffer): Promise<void> {
  await makeDirs(path.dirname(file));
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await fsp.open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o666);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw new IoError(`${file}: cannot write: ${errorText(err)}`, { cause: err });
  }
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw new IoError(`${file}: cannot remove: ${errorText(err)}`, { cause: err });
  }
}

/**
 * FTS-5005 §5.3: the `.hld` expiry as unix seconds when it lies in the future. An expired `.hld`
 * is deleted ("it must delete that hld file"; binkd deletes at expiry <= now). Garbage is reported
 * and treated as absent but left alone, so a human can see it. `now` is in ms like Date.now().
 */
export async function readHold(
  base: string,
  now: number,
  warn?: (msg: string) => void,
  opts: { readOnly?: boolean | undefined } = {},
): Promise<number | undefined> {
  const file = `${base}.hld`;
  let text: string;
  try {
    text = (await readHead(file, HOLD_READ_BYTES)).toString('latin1');
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw new IoError(`${file}: cannot read: ${errorText(err)}`, { cause: err });
  }
  // binkd writes the number without a newline; FTS-5005 says "one line": accept whitespace.
  const t = text.trim();
  if (!/^\d{1,15}$/.test(t)) {
    warn?.(`${file}: not a unix time: ${JSON.stringify(text.slice(0, 32))}; ignored`);
    return undefined;
  }
  const until = Number(t);
  if (until * 1000 > now) return until;
  // `--dry-run` and `status` look but never touch.
  if (!opts.readOnly) await unlinkIfPresent(file);
  return undefined;
}

/** Write a `.hld` expiring at `untilUnixSeconds`, as binkd does: decimal, no newline. */
export async function writeHold(base: string, untilUnixSeconds: number): Promise<void> {
  if (!Number.isSafeInteger(untilUnixSeconds) || untilUnixSeconds < 0) {
    throw new IoError(`${base}.hld: hold time ${untilUnixSeconds} is not a unix time`);
  }
  await writeAtomic(`${base}.hld`, String(untilUnixSeconds));
}

export async function removeHold(base: string): Promise<void> {
  await unlinkIfPresent(`${base}.hld`);
}

export interface TryRecord {
  /** Good sessions (u16). */
  nok: number;
  /** Failed sessions since the last good one (u16). */
  nbad: number;
  /** Result of the latest attempt; at most 255 bytes UTF-8. */
  comment: string;
}

/** Cut `text` to at most `max` bytes of UTF-8 without splitting a character. */
function utf8Prefix(text: string, max: number): Buffer {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= max) return buf;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) so no character is cut in half.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end);
}

/**
 * The bytes of a `.try` file: nok u16, nbad u16, comment length u8, comment. FTS-5005 §5.4 says
 * big-endian, but binkd (the only program that uses `.try`) writes LITTLE-endian (ftnq.c
 * write_try: low byte first); we interoperate with binkd.
 */
export function encodeTry(rec: TryRecord): Buffer {
  const comment = utf8Prefix(rec.comment, TRY_COMMENT_MAX_BYTES);
  const out = Buffer.alloc(5 + comment.length);
  out.writeUInt16LE(Math.min(Math.max(0, Math.trunc(rec.nok)), 0xffff), 0);
  out.writeUInt16LE(Math.min(Math.max(0, Math.trunc(rec.nbad)), 0xffff), 2);
  out.writeUInt8(comment.length, 4);
  comment.copy(out, 5);
  return out;
}

/** Parse `.try` bytes; undefined when shorter than the two counters. A short comment is kept as read. */
export function decodeTry(buf: Buffer): TryRecord | undefined {
  if (buf.length < 4) return undefined;
  const nok = buf.readUInt16LE(0);
  const nbad = buf.readUInt16LE(2);
  const len = buf.length > 4 ? buf[4]! : 0;
  const comment = buf.subarray(5, 5 + len).toString('utf8');
  return { nok, nbad, comment };
}

export async function writeTry(base: string, rec: TryRecord): Promise<void> {
  await writeAtomic(`${base}.try`, encodeTry(rec));
}

export async function readTry(base: string): Promise<TryRecord | undefined> {
  const file = `${base}.try`;
  try {
    return decodeTry(await readHead(file, 5 + TRY_COMMENT_MAX_BYTES));
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw new IoError(`${file}: cannot read: ${errorText(err)}`, { cause: err });
  }
}
