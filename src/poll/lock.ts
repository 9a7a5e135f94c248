/**
 * The run lock: one `fnpoll run` at a time per state file.
 *
 * proper-lockfile creates the lock atomically as a directory at `lockFile` (mkdir) and, while the
 * run lives, refreshes its mtime every `staleMs / 4`. A second run sees the lock and fails at once
 * (no retries) with a LockError (exit 75) naming the holder, unless the holder is gone:
 * - its owner file names a process of this host that is dead (kill -9 skips the exit handlers
 *   that remove the lock): taken over at once;
 * - the lock has had no owner file for OWNERLESS_GRACE_MS (its holder died between the mkdir and
 *   writing the owner file, a millisecond window): taken over;
 * - it missed its refreshes for `staleMs` (a holder on another host, or frozen by SIGSTOP):
 *   taken over; a frozen holder that wakes up finds its lock gone and reports it through
 *   `onCompromised` instead of throwing from a timer.
 *
 * Who holds the lock is written to the sidecar `<lockFile>.info` (a file inside the lock directory
 * would stop proper-lockfile from removing it): JSON `{pid, host, startedAt, bootId, procStart,
 * lockIno}`.
 *
 * PID reuse. "The PID is dead" must not be fooled by an unrelated process that got the same PID
 * after the holder died, and "the PID is alive" must not be fooled either: the owner file records
 * the holder's start time in clock ticks since boot (/proc/<pid>/stat field 22) and the boot id.
 * A PID whose process started at another time, or a record from another boot, is a dead holder.
 *
 * The take-over race. Two runs may judge the same dead lock at once; a third may be acquiring
 * normally. Rules that keep exactly one winner:
 * - the owner file is bound to one lock directory by its inode (`lockIno`): right after a new
 *   holder's mkdir, the owner file still names the previous, dead holder, but of another inode,
 *   so the new lock counts as "owner being written", not as dead (that was the job of the old
 *   "missed a refresh" wait, which blocked every take-over for ~16 s);
 * - a lock directory is only ever removed under a take-over guard, `<lockFile>.takeover`, a
 *   BSO-style flag holding our PID (FlagKeeper: exclusive, never empty, stale when its PID is
 *   dead), after re-checking under the guard that the directory is still the inode judged dead.
 *   proper-lockfile's own stale removal is switched off (stale = never) so that it cannot remove a
 *   directory behind the guard's back. A run that finds the guard held by a live process exits 75
 *   saying that the lock is being taken over;
 * - after the removal, the taker acquires with an ordinary mkdir: a normal run may get there
 *   first, and then simply wins.
 * The test "two runs take over one dead lock at once" runs that race.
 */
import { lstat, readFile, rm } from 'node:fs/promises';
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { IoError, LockError, errorText } from '../errors.js';
import { makeDirs } from '../dirs.js';
import { errCode, isErrno } from '../files.js';
import { FlagKeeper, pidAlive } from '../bso/flags.js';

/** A lock that misses its refreshes for this long is taken over (holders on other hosts, frozen ones). */
export const DEFAULT_LOCK_STALE_MS = 60_000;
/** proper-lockfile's floor for `stale`. */
const MIN_STALE_MS = 2_000;
/** A lock directory with no owner file of its own for this long lost its holder before it wrote one. */
export const OWNERLESS_GRACE_MS = 2_000;
/** proper-lockfile never judges a lock stale by itself: every removal goes through the guard. */
const NEVER_STALE_MS = 2 ** 31 - 1;

export interface LockInfo {
  pid: number;
  host: string;
  /** Epoch ms when the lock was taken. */
  startedAt: number;
  /** /proc/sys/kernel/random/boot_id of the holder's boot (Linux). */
  bootId?: string | undefined;
  /** The holder's start time, clock ticks since boot (/proc/<pid>/stat field 22; Linux). */
  procStart?: string | undefined;
  /** Inode of the lock directory this owner file belongs to. */
  lockIno?: number | undefined;
  /** Its birth time (ms; 0 where the filesystem keeps none): inode numbers are reused at once. */
  lockBirth?: number | undefined;
}

/** /proc/<pid>/stat field 22 (starttime), or undefined (no such process, or no /proc). */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

let bootIdCache: string | undefined | null = null;
function bootId(): string | undefined {
  if (bootIdCache === null) {
    try {
      bootIdCache = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim() || undefined;
    } catch {
      bootIdCache = undefined;
    }
  }
  return bootIdCache;
}

/**
 * Is the process an owner file names still running? Only answerable on the holder's host. A PID
 * that now belongs to another process (other start time), or a record of another boot, is dead.
 */
export function holderAlive(info: LockInfo): boolean {
  if (info.bootId !== undefined && bootId() !== undefined && info.bootId !== bootId()) return false;
  if (info.pid !== process.pid && !pidAlive(info.pid)) return false;
  if (info.procStart === undefined) return true;
  const now = processStartTime(info.pid);
  return now === undefined || now === info.procStart;
}

export interface RunLock {
  /** Absolute path of the lock directory. */
  readonly lockFile: string;
  readonly info: LockInfo;
  /** True once the lock was lost (see onCompromised); release() is then a no-op. */
  readonly compromised: boolean;
  release(): Promise<void>;
  /** For exit paths where nothing async can run any more. */
  releaseSync(): void;
}

export interface AcquireOptions {
  staleMs?: number | undefined;
  /** Called (once) when the lock was lost; default: one warning line on stderr. */
  onCompromised?: ((message: string) => void) | undefined;
  /** Called when a dead holder's lock was taken over; default: onCompromised. */
  onTakeover?: ((message: string) => void) | undefined;
  now?: (() => number) | undefined;
}

/** Stale and refresh periods: refresh 4 times per stale period, within proper-lockfile's limits. */
export function lockTimings(staleMs = DEFAULT_LOCK_STALE_MS): { stale: number; update: number } {
  const stale = Math.max(MIN_STALE_MS, Math.floor(staleMs));
  // proper-lockfile clamps update into [1000, stale / 2]; with stale ≥ 2000 this stays ≤ stale / 2.
  return { stale, update: Math.max(1_000, Math.floor(stale / 4)) };
}

export function lockInfoPath(lockFile: string): string {
  return `${resolve(lockFile)}.info`;
}

/**
 * Write the lock owner file whole or not at all: a temp file renamed into place. Synchronous: it
 * is a few hundred bytes, written by every run that takes the lock, and write-file-atomic's chain
 * of thread-pool calls (and its module's first load) took ~5 ms between the lock and the dial.
 * No fsync: a power cut ends the run and its lock alike. The temp name `<owner file>.<pid>` has
 * write-file-atomic's form (`name.<decimal>`), which the next run's recovery removes when a kill
 * left one.
 */
function writeOwnerFile(path: string, text: string): void {
  const temp = `${path}.${process.pid}`;
  try {
    writeFileSync(temp, text);
    renameSync(temp, path);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // never created, or already renamed
    }
    throw err;
  }
}

export function takeoverGuardPath(lockFile: string): string {
  return `${resolve(lockFile)}.takeover`;
}

/** How long a losing run waits for the winner's owner file before saying "unknown process". */
const OWNER_INFO_RETRIES = 10;
const OWNER_INFO_WAIT_MS = 50;

async function readInfo(lockFile: string): Promise<LockInfo | undefined> {
  try {
    const doc: unknown = JSON.parse(await readFile(lockInfoPath(lockFile), 'utf8'));
    if (typeof doc !== 'object' || doc === null) return undefined;
    const { pid, host, startedAt, bootId: boot, procStart, lockIno, lockBirth } = doc as Record<string, unknown>;
    const started = typeof startedAt === 'string' ? Date.parse(startedAt) : NaN;
    if (!Number.isSafeInteger(pid) || typeof host !== 'string' || !Number.isFinite(started)) return undefined;
    const info: LockInfo = { pid: pid as number, host, startedAt: started };
    if (typeof boot === 'string') info.bootId = boot;
    if (typeof procStart === 'string') info.procStart = procStart;
    if (Number.isSafeInteger(lockIno)) info.lockIno = lockIno as number;
    if (typeof lockBirth === 'number' && Number.isFinite(lockBirth)) info.lockBirth = lockBirth;
    return info;
  } catch {
    return undefined;
  }
}

/** What a run sees when the lock exists. */
type Verdict =
  | { kind: 'alive'; info: LockInfo }
  /** On another host: cannot be checked from here; held until it misses its refreshes. */
  | { kind: 'remote'; info: LockInfo }
  /** Owner file missing or of another lock directory, within OWNERLESS_GRACE_MS: being written. */
  | { kind: 'starting'; info: LockInfo | undefined }
  | { kind: 'gone'; id: string; why: string; info: LockInfo | undefined };

/** Identity of one lock directory: inode and birth time (an inode number is reused at once). */
function dirId(st: { ino: number; birthtimeMs: number }): string {
  return `${st.ino}/${st.birthtimeMs}`;
}

function infoId(info: LockInfo): string | undefined {
  return info.lockIno === undefined ? undefined : `${info.lockIno}/${info.lockBirth ?? 0}`;
}

async function judge(lockFile: string, staleMs: number, now: () => number): Promise<Verdict | undefined> {
  const st = await lstat(lockFile).catch(() => undefined);
  if (!st || !st.isDirectory()) return undefined;
  const raw = await readInfo(lockFile);
  // An owner file without lockIno (an older fnpoll) is taken as this directory's.
  const id = infoId(raw ?? { pid: 0, host: '', startedAt: 0 });
  const info = raw && (id === undefined || id === dirId(st)) ? raw : undefined;
  const age = now() - st.mtimeMs;
  if (age > staleMs) {
    return { kind: 'gone', id: dirId(st), info, why: `not refreshed for ${Math.round(age / 1000)} s` };
  }
  if (!info) {
    if (age > OWNERLESS_GRACE_MS) return { kind: 'gone', id: dirId(st), info, why: 'its holder died before naming itself' };
    return { kind: 'starting', info: raw };
  }
  if (info.host !== hostname()) return { kind: 'remote', info };
  if (!holderAlive(info)) return { kind: 'gone', id: dirId(st), info, why: `pid ${info.pid} is no longer running` };
  return { kind: 'alive', info };
}

function holderText(info: LockInfo | undefined, refreshedAt: number | undefined): string {
  if (!info) {
    const seen = refreshedAt === undefined ? '' : `, last refreshed ${new Date(refreshedAt).toISOString()}`;
    return `an unknown process (no owner info${seen})`;
  }
  const where = info.host === hostname() ? '' : ` on ${info.host}`;
  return `pid ${info.pid}${where} since ${new Date(info.startedAt).toISOString()}`;
}

/**
 * Take the run lock or throw: LockError (exit 75) when another live run holds it (or is taking
 * over a dead one), IoError when the lock cannot be created at all (missing permissions, a regular
 * file in the way).
 */
export async function acquireRunLock(lockFileIn: string, opts: AcquireOptions = {}): Promise<RunLock> {
  const lockFile = resolve(lockFileIn);
  const now = opts.now ?? Date.now;
  const onCompromised =
    opts.onCompromised ?? ((m: string) => void process.stderr.write(`fnpoll: warning: ${m}\n`));
  const onTakeover = opts.onTakeover ?? onCompromised;
  const { stale, update } = lockTimings(opts.staleMs);
  let compromised = false;

  try {
    await makeDirs(dirname(lockFile));
  } catch (err) {
    throw new IoError(`cannot create the directory of lock ${lockFile}: ${errorText(err)}`, { cause: err });
  }

  let unlock: () => Promise<void>;
  /** Held from a take-over until our owner file is written, so no other taker judges us by the old one. */
  let guard: FlagKeeper | undefined;
  try {
    unlock = await takeLock();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw await lockFailure(err);
    const verdict = await judge(lockFile, stale, now);
    if (verdict?.kind !== 'gone') throw await lockFailure(err, verdict);
    guard = new FlagKeeper({ staleAge: stale, schedule: () => () => undefined });
    try {
      unlock = await takeOver(verdict, guard);
    } catch (err2) {
      await guard.releaseAll().catch(() => undefined);
      throw err2;
    }
  }

  async function takeLock(): Promise<() => Promise<void>> {
    return lockfile.lock(lockFile, {
      lockfilePath: lockFile,
      realpath: false,
      retries: 0,
      // Removal of a stale lock is ours (under the guard), never proper-lockfile's own.
      stale: NEVER_STALE_MS,
      update,
      onCompromised: (err: Error) => {
        if (compromised) return;
        compromised = true;
        onCompromised(`run lock ${lockFile} was lost (${err.message}); another run may take over`);
      },
    });
  }

  /** Remove the dead lock `verdict.ino` under the take-over guard, then take the lock normally. */
  async function takeOver(verdict: Extract<Verdict, { kind: 'gone' }>, keeper: FlagKeeper): Promise<() => Promise<void>> {
    let claim;
    try {
      claim = await keeper.acquire(takeoverGuardPath(lockFile));
    } catch (err) {
      throw new IoError(`cannot take over run lock ${lockFile}: ${errorText(err)}`, { cause: err });
    }
    if (!claim.ok) {
      const by = claim.holder.pid === undefined ? 'another process' : `pid ${claim.holder.pid}`;
      throw new LockError(`${lockFile}: its holder is gone (${verdict.why}) and ${by} is taking it over`);
    }
    try {
      // Under the guard: still the directory judged dead? Anything else is a newer holder's.
      const again = await judge(lockFile, stale, now);
      if (again?.kind === 'gone' && again.id === verdict.id) {
        await rm(lockFile, { recursive: true, force: true });
        onTakeover(`took over run lock ${lockFile} from ${holderText(verdict.info, undefined)}: ${verdict.why}`);
      }
      return await takeLock();
    } catch (err) {
      throw err instanceof LockError || err instanceof IoError ? err : await lockFailure(err);
    }
  }

  async function lockFailure(err: unknown, seen?: Verdict): Promise<Error> {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOCKED') {
      const st = await lstat(lockFile).catch(() => undefined);
      if (st && !st.isDirectory()) {
        return new IoError(`${lockFile} is not a lock directory (a ${st.isFile() ? 'file' : 'special file'} is in the way); remove it`);
      }
      // The holder writes its owner file just after taking the lock: give it a moment.
      let verdict = seen ?? (await judge(lockFile, stale, now));
      for (let i = 0; verdict?.kind === 'starting' && i < OWNER_INFO_RETRIES; i++) {
        await new Promise((r) => setTimeout(r, OWNER_INFO_WAIT_MS));
        verdict = await judge(lockFile, stale, now);
      }
      // Only a holder seen alive is called active.
      const state =
        verdict?.kind === 'alive'
          ? 'another fnpoll run is active'
          : verdict?.kind === 'remote'
            ? 'a run on another host; taken over once it misses its refreshes'
            : verdict?.kind === 'gone'
              ? `its holder is gone: ${verdict.why}; the next run takes it over`
              : 'its holder is starting or just ended';
      const info = verdict && verdict.kind !== 'starting' ? verdict.info : undefined;
      return new LockError(`${lockFile} is held by ${holderText(info, st?.mtimeMs)} (${state})`, { cause: err });
    }
    return new IoError(`cannot take run lock ${lockFile}: ${errorText(err)}`, { cause: err });
  }

  const infoPath = lockInfoPath(lockFile);
  const dirSt = await lstat(lockFile).catch(() => undefined);
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    startedAt: now(),
    bootId: bootId(),
    procStart: processStartTime(process.pid),
    lockIno: dirSt?.ino,
    lockBirth: dirSt?.birthtimeMs,
  };
  // A kill -9 leaves the sidecar behind with the lock; the next holder overwrites it.
  const removeInfoOnExit = (): void => {
    try {
      unlinkSync(infoPath);
    } catch {
      // already gone
    }
  };
  try {
    writeOwnerFile(infoPath, `${JSON.stringify({ ...info, startedAt: new Date(info.startedAt).toISOString() })}\n`);
  } catch (err) {
    await unlock().catch(() => undefined);
    throw new IoError(`cannot write lock owner file ${infoPath}: ${errorText(err)}`, { cause: err });
  } finally {
    await guard?.releaseAll().catch(() => undefined);
  }
  process.on('exit', removeInfoOnExit);

  let released = false;
  const finish = (): boolean => {
    if (released) return false;
    released = true;
    process.removeListener('exit', removeInfoOnExit);
    // After a takeover the sidecar belongs to the new holder: leave it alone.
    if (!compromised) removeInfoOnExit();
    return !compromised;
  };

  return {
    lockFile,
    info,
    get compromised() {
      return compromised;
    },
    async release() {
      if (!finish()) return;
      try {
        await unlock();
      } catch (err) {
        const c = errCode(err);
        if (c !== 'ERELEASED' && c !== 'ENOTACQUIRED') {
          throw new IoError(`cannot remove run lock ${lockFile}: ${errorText(err)}`, { cause: err });
        }
      }
    },
    releaseSync() {
      if (!finish()) return;
      try {
        lockfile.unlockSync(lockFile, { lockfilePath: lockFile, realpath: false });
      } catch {
        // exit path: proper-lockfile's own exit hook removes the directory as a last resort
      }
    },
  };
}

export interface LockStatus {
  lockFile: string;
  /** mtime of the lock: the holder's last refresh. */
  refreshedAt: number;
  /** True when a new run would take it over. */
  stale: boolean;
  owner?: LockInfo | undefined;
  /** Whether the owner's pid exists; only known when the owner is on this host. */
  ownerAlive?: boolean | undefined;
}

/** For `fnpoll health`: the lock as it is on disk, or undefined when there is none. */
export async function readLockInfo(
  lockFileIn: string,
  opts: { staleMs?: number | undefined; now?: (() => number) | undefined } = {},
): Promise<LockStatus | undefined> {
  const lockFile = resolve(lockFileIn);
  let refreshedAt: number;
  try {
    refreshedAt = (await lstat(lockFile)).mtimeMs;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new IoError(`cannot inspect run lock ${lockFile}: ${errorText(err)}`, { cause: err });
  }
  const { stale } = lockTimings(opts.staleMs);
  const now = (opts.now ?? Date.now)();
  const owner = await readInfo(lockFile);
  const status: LockStatus = { lockFile, refreshedAt, stale: refreshedAt < now - stale, owner };
  if (owner && owner.host === hostname()) status.ownerAlive = holderAlive(owner);
  return status;
}
