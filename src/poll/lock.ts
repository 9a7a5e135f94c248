/**
 * The run lock: one `fnpoll run` at a time per state file.
 *
 * proper-lockfile creates the lock atomically as a directory at `lockFile` (mkdir) and, while the
 * run lives, refreshes its mtime every `staleMs / 4`. A second run sees a fresh lock and fails at
 * once (no retries) with a LockError (exit 75) naming the holder. A lock whose mtime is older than
 * `staleMs` was left by a killed process (kill -9 skips the exit handlers that remove it) and is
 * taken over. Several refreshes fit in one stale period, so a long healthy run never goes stale;
 * only a process frozen for `staleMs` (SIGSTOP, suspended laptop) loses its lock, and then
 * `onCompromised` reports it instead of throwing from a timer.
 *
 * Who holds the lock is written to the sidecar `<lockFile>.info` (a file inside the lock directory
 * would stop proper-lockfile from removing a stale one): JSON `{pid, host, startedAt}`.
 */
import { lstat, readFile, rename, rm } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import { IoError, LockError, errorText } from '../errors.js';
import { makeDirs } from '../dirs.js';
import { pidAlive } from '../bso/flags.js';

/** A killed run's lock is taken over after this long without a refresh. */
export const DEFAULT_LOCK_STALE_MS = 60_000;
/** proper-lockfile's floor for `stale`. */
const MIN_STALE_MS = 2_000;

export interface LockInfo {
  pid: number;
  host: string;
  /** Epoch ms when the lock was taken. */
  startedAt: number;
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
  now?: (() => number) | undefined;
}

/** Stale and refresh periods handed to proper-lockfile: refresh 4 times per stale period. */
export function lockTimings(staleMs = DEFAULT_LOCK_STALE_MS): { stale: number; update: number } {
  const stale = Math.max(MIN_STALE_MS, Math.floor(staleMs));
  // proper-lockfile clamps update into [1000, stale / 2]; with stale ≥ 2000 this stays ≤ stale / 2.
  return { stale, update: Math.max(1_000, Math.floor(stale / 4)) };
}

export function lockInfoPath(lockFile: string): string {
  return `${resolve(lockFile)}.info`;
}

/** How long a losing run waits for the winner's owner file before saying "unknown process". */
const OWNER_INFO_RETRIES = 10;
const OWNER_INFO_WAIT_MS = 50;

/**
 * Is the lock held by a process of this host that is gone? Only when its owner file names a dead
 * pid AND the lock missed a refresh: a live holder refreshes every `update` ms, and a lock taken a
 * moment ago whose owner file still names the previous (dead) holder is fresh, so it is left alone.
 */
async function deadHolder(lockFile: string, update: number, now: () => number): Promise<boolean> {
  const info = await readInfo(lockFile);
  if (!info || info.host !== hostname() || pidAlive(info.pid)) return false;
  const st = await lstat(lockFile).catch(() => undefined);
  return !!st && st.isDirectory() && now() - st.mtimeMs > update + 1_000;
}

async function readInfo(lockFile: string): Promise<LockInfo | undefined> {
  try {
    const doc: unknown = JSON.parse(await readFile(lockInfoPath(lockFile), 'utf8'));
    if (typeof doc !== 'object' || doc === null) return undefined;
    const { pid, host, startedAt } = doc as Record<string, unknown>;
    const started = typeof startedAt === 'string' ? Date.parse(startedAt) : NaN;
    if (!Number.isSafeInteger(pid) || typeof host !== 'string' || !Number.isFinite(started)) return undefined;
    return { pid: pid as number, host, startedAt: started };
  } catch {
    return undefined;
  }
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
 * Take the run lock or throw: LockError (exit 75) when another live run holds it, IoError when the
 * lock cannot be created at all (missing permissions, a regular file in the way).
 */
export async function acquireRunLock(lockFileIn: string, opts: AcquireOptions = {}): Promise<RunLock> {
  const lockFile = resolve(lockFileIn);
  const now = opts.now ?? Date.now;
  const onCompromised =
    opts.onCompromised ?? ((m: string) => void process.stderr.write(`fnpoll: warning: ${m}\n`));
  const { stale, update } = lockTimings(opts.staleMs);
  let compromised = false;

  try {
    await makeDirs(dirname(lockFile));
  } catch (err) {
    throw new IoError(`cannot create the directory of lock ${lockFile}: ${errorText(err)}`, { cause: err });
  }

  let unlock: () => Promise<void>;
  try {
    unlock = await takeLock();
  } catch (err) {
    // A holder on this host whose pid is gone and who missed a refresh was killed (kill -9):
    // take over now rather than make every run wait for the full stale period.
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED' && (await deadHolder(lockFile, update, now))) {
      const aside = `${lockFile}.dead-${process.pid}`;
      try {
        await rename(lockFile, aside);
        await rm(aside, { recursive: true, force: true });
        onCompromised(`took over run lock ${lockFile}: its holder is no longer running`);
        unlock = await takeLock();
      } catch (err2) {
        throw await lockFailure(err2);
      }
    } else {
      throw await lockFailure(err);
    }
  }

  async function takeLock(): Promise<() => Promise<void>> {
    return lockfile.lock(lockFile, {
      lockfilePath: lockFile,
      realpath: false,
      retries: 0,
      stale,
      update,
      onCompromised: (err: Error) => {
        if (compromised) return;
        compromised = true;
        onCompromised(`run lock ${lockFile} was lost (${err.message}); another run may take over`);
      },
    });
  }

  async function lockFailure(err: unknown): Promise<Error> {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOCKED') {
      const st = await lstat(lockFile).catch(() => undefined);
      if (st && !st.isDirectory()) {
        return new IoError(`${lockFile} is not a lock directory (a ${st.isFile() ? 'file' : 'special file'} is in the way); remove it`);
      }
      // The holder writes its owner file just after taking the lock: give it a moment.
      let info = await readInfo(lockFile);
      for (let i = 0; !info && i < OWNER_INFO_RETRIES; i++) {
        await new Promise((r) => setTimeout(r, OWNER_INFO_WAIT_MS));
        info = await readInfo(lockFile);
      }
      return new LockError(`${lockFile} is held by ${holderText(info, st?.mtimeMs)} (another fnpoll run is active)`, {
        cause: err,
      });
    }
    return new IoError(`cannot take run lock ${lockFile}: ${errorText(err)}`, { cause: err });
  }

  const info: LockInfo = { pid: process.pid, host: hostname(), startedAt: now() };
  const infoPath = lockInfoPath(lockFile);
  // A kill -9 leaves the sidecar behind with the lock; the next holder overwrites it.
  const removeInfoOnExit = (): void => {
    try {
      unlinkSync(infoPath);
    } catch {
      // already gone
    }
  };
  try {
    await writeFileAtomic(
      infoPath,
      `${JSON.stringify({ pid: info.pid, host: info.host, startedAt: new Date(info.startedAt).toISOString() })}\n`,
      { fsync: false },
    );
  } catch (err) {
    await unlock().catch(() => undefined);
    throw new IoError(`cannot write lock owner file ${infoPath}: ${errorText(err)}`, { cause: err });
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
        const c = (err as NodeJS.ErrnoException).code;
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
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IoError(`cannot inspect run lock ${lockFile}: ${errorText(err)}`, { cause: err });
  }
  const { stale } = lockTimings(opts.staleMs);
  const now = (opts.now ?? Date.now)();
  const owner = await readInfo(lockFile);
  const status: LockStatus = { lockFile, refreshedAt, stale: refreshedAt < now - stale, owner };
  if (owner && owner.host === hostname()) status.ownerAlive = pidAlive(owner.pid);
  return status;
}
