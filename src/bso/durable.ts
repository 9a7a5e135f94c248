/**
 * Group commit for fsync: make files and directories durable, many at a time.
 *
 * A received file must be on disk before its M_GOT goes out (the hub deletes its copy on M_GOT; a
 * power cut after it would lose the file), and a flow file's `~` mark must be on disk before the
 * sent file is deleted or truncated (else a power cut resends a truncated file, or loses track of
 * a deleted one). An fsync per file and per directory costs a journal commit each on a real disk;
 * a thousand small packets would spend seconds in them. So syncs are grouped: received files that
 * are still open go in batches through their descriptors (syncOpenFile), all of a batch in flight
 * at once, which the filesystem folds into few commits; paths (directories, flow files) go in
 * rounds (sync), each path once per round however many asked, requests made while a round runs
 * waiting for the next one. binkp allows the M_GOTs of several files to go out together, so the
 * session loses little by waiting for its batch.
 */
import { closeSync, fdatasync, fsync, openSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { IoError, errorText } from '../errors.js';

export type SyncKind = 'file' | 'dir';

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Round {
  /** path → kind and the callers waiting for it. */
  items: Map<string, { kind: SyncKind; waiters: Waiter[] }>;
}

export interface GroupSyncStats {
  /** fsync calls made. */
  syncs: number;
  /** Rounds run. */
  rounds: number;
  /** sync() calls answered. */
  requests: number;
  /** Requests answered at once because the path is on a memory filesystem (tmpfs). */
  inMemory: number;
}

/**
 * How one path is made durable; replaceable in tests (which look at the path). `fd`: an open
 * descriptor of it (a received file still open), which stays the caller's.
 */
export type SyncPath = (path: string, kind: SyncKind, fd?: number) => Promise<void>;

/**
 * Files: fdatasync. Directories: fsync on the directory's descriptor (POSIX leaves it to the
 * filesystem; Linux needs it for a new name to survive a crash). Some filesystems refuse that
 * (EINVAL, EISDIR, EBADF, ENOTSUP): nothing more can be done there, so that is not an error.
 * The path is opened synchronously (microseconds): the thread pool is asked once, for the sync.
 */
export const syncPath: SyncPath = async (path, kind, fd) => {
  const own = fd === undefined ? openSync(path, 'r') : undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      if (kind === 'file') fdatasync(own ?? fd!, (err) => (err ? reject(err) : resolve()));
      else {
        fsync(own ?? fd!, (err) => {
          const code = err?.code;
          if (err && code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EBADF' && code !== 'ENOTSUP') reject(err);
          else resolve();
        });
      }
    });
  } finally {
    if (own !== undefined) closeSync(own);
  }
};

/** Received files synced together at most, and how long the first of them waits for others. */
const FILE_BATCH = 32;
const FILE_WINDOW_MS = 10;

/** statfs f_type of filesystems that live in memory, where fsync is a no-op in the kernel. */
const MEMORY_FS = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/**
 * Whether the directory `dir` is on a filesystem that lives in memory (tmpfs, ramfs): nothing
 * there survives a power cut, and the kernel's fsync on it returns at once, so asking costs a
 * thread-pool round trip for nothing. Unknown (statfs fails): not in memory, so synced.
 */
export function inMemoryDir(dir: string): boolean {
  try {
    return MEMORY_FS.has(Number(statfsSync(dir).type));
  } catch {
    return false;
  }
}

export class GroupSync {
  private next: Round | undefined;
  private running: Promise<void> | undefined;
  readonly stats: GroupSyncStats = { syncs: 0, rounds: 0, requests: 0, inMemory: 0 };
  /** Directory → on a memory filesystem; asked once per directory. */
  private readonly memoryDirs = new Map<string, boolean>();
  private readonly inMemory: (dir: string) => boolean;
  /** Complete received files waiting for their batch's fdatasync (syncOpenFile). */
  private readonly fileBatch: { path: string; fd: number; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private fileTimer: NodeJS.Timeout | undefined;

  /**
   * `enabled = false` (config `fsync = no`): every request resolves at once. A test's own
   * `doSync` sees every request: nothing is judged to be in memory unless `inMemory` says so.
   */
  constructor(
    readonly enabled: boolean,
    private readonly doSync: SyncPath = syncPath,
    inMemory?: (dir: string) => boolean,
  ) {
    this.inMemory = inMemory ?? (doSync === syncPath ? inMemoryDir : () => false);
  }

  /** `path` (a `kind`) is on a memory filesystem: its sync would do nothing. */
  private skip(path: string, kind: SyncKind): boolean {
    const dir = kind === 'dir' ? path : dirname(path);
    let mem = this.memoryDirs.get(dir);
    if (mem === undefined) this.memoryDirs.set(dir, (mem = this.inMemory(dir)));
    if (mem) this.stats.inMemory++;
    return mem;
  }

  /** Resolves once `path` was synced in a round that started after this call. */
  sync(path: string, kind: SyncKind): Promise<void> {
    this.stats.requests++;
    if (!this.enabled || this.skip(path, kind)) return Promise.resolve();
    if (!this.next) {
      this.next = { items: new Map() };
      this.schedule();
    }
    let item = this.next.items.get(path);
    if (!item) this.next.items.set(path, (item = { kind, waiters: [] }));
    return new Promise<void>((resolve, reject) => item.waiters.push({ resolve, reject }));
  }

  /**
   * Sync the open file `fd` (at `path`), a received file that is complete. Each file needs its
   * own fdatasync, but when many start together the filesystem commits them in a few journal
   * transactions, while one at a time each costs a commit (and stalls the file creations of the
   * files behind it): on ext4 here, 8 KB files cost ~400 µs each synced one at a time, ~150 µs
   * four at a time, ~80 µs 32 at a time (with a thread pool that large, src/boot.cts). So files
   * wait for their batch: it starts when
   * FILE_BATCH files are in it, or FILE_WINDOW_MS after the first one joined (group commit with a
   * delay window, as databases do it). The descriptor stays open until the promise settles.
   */
  syncOpenFile(path: string, fd: number): Promise<void> {
    this.stats.requests++;
    if (!this.enabled || this.skip(path, 'file')) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.fileBatch.push({ path, fd, resolve, reject });
      if (this.fileBatch.length >= FILE_BATCH) this.startFileBatch();
      else this.fileTimer ??= setTimeout(() => this.startFileBatch(), FILE_WINDOW_MS);
    });
  }

  private startFileBatch(): void {
    if (this.fileTimer) clearTimeout(this.fileTimer);
    this.fileTimer = undefined;
    const batch = this.fileBatch.splice(0);
    if (batch.length) this.stats.rounds++;
    for (const f of batch) {
      this.stats.syncs++;
      this.doSync(f.path, 'file', f.fd).then(f.resolve, (err: unknown) => f.reject(new IoError(`${f.path}: fsync failed: ${errorText(err)}`, { cause: err })));
    }
  }

  /**
   * For a large file still being received: its `fd` (at `path`) is synced now, while its data
   * keeps arriving, so that the sync before its M_GOT has only the tail left to write. undefined
   * when nothing is synced (`fsync = no`, a memory filesystem). A failure rejects: the caller must
   * keep it, as Linux reports a writeback error only once per descriptor, and the sync before
   * the M_GOT could then succeed on data that never reached the disk.
   */
  syncEarly(path: string, fd: number): Promise<void> | undefined {
    // Counted as every request is, so that the debug line's requests and syncs add up.
    this.stats.requests++;
    if (!this.enabled || this.skip(path, 'file')) return undefined;
    this.stats.syncs++;
    return this.doSync(path, 'file', fd);
  }

  /** Resolves when every round asked for so far has run (a waiting batch of files starts now). */
  async drain(): Promise<void> {
    this.startFileBatch();
    while (this.running || this.next) await (this.running ?? new Promise((r) => setImmediate(r)));
  }

  private schedule(): void {
    if (this.running) return; // the running round schedules the next one when it ends
    // Requests made in the same turn share the round; it starts at the end of that turn, not a
    // whole event-loop iteration later (a burst of reads can keep the loop in its poll phase for
    // a long time), and what comes while it runs waits for the next one: group commit.
    queueMicrotask(() => {
      const round = this.next;
      this.next = undefined;
      if (!round) return;
      this.running = this.run(round)
        .catch((err: unknown) => {
          // Nothing in run() should throw; if anything does, its waiters hear it, not the process.
          const e = new IoError(`fsync failed: ${errorText(err)}`, { cause: err });
          for (const it of round.items.values()) for (const w of it.waiters) w.reject(e);
        })
        .finally(() => {
          this.running = undefined;
          if (this.next) this.schedule();
        });
    });
  }

  private async run(round: Round): Promise<void> {
    this.stats.rounds++;
    // Files first, then directories: a name must not become durable before its data.
    for (const kind of ['file', 'dir'] as const) {
      const items = [...round.items].filter(([, it]) => it.kind === kind);
      await Promise.all(
        items.map(async ([path, it]) => {
          this.stats.syncs++;
          try {
            await this.doSync(path, kind);
            for (const w of it.waiters) w.resolve();
          } catch (err) {
            const e = new IoError(`${path}: fsync failed: ${errorText(err)}`, { cause: err });
            for (const w of it.waiters) w.reject(e);
          }
        }),
      );
    }
  }
}
