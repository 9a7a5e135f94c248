/**
 * Group commit for fsync: make files and directories durable, many at a time.
 *
 * A received file must be on disk before its M_GOT goes out (the hub deletes its copy on M_GOT; a
 * power cut after it would lose the file), and a flow file's `~` mark must be on disk before the
 * sent file is deleted or truncated (else a power cut resends a truncated file, or loses track of
 * a deleted one). An fsync per file and per directory costs a journal commit each on a real disk;
 * a thousand small packets would spend seconds in them. So requests that arrive while a round of
 * syncs runs (or within the same turn of the event loop) are collected and run together in the
 * next round: each file is synced once per round, each directory once per round however many
 * names were linked into it, and the syncs of one round run in parallel, which the filesystem
 * folds into few journal commits. binkp allows the M_GOTs of several files to go out together, so
 * the session loses nothing by waiting for the round.
 */
import * as fsp from 'node:fs/promises';
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
}

/** How one path is made durable; replaceable in tests. */
export type SyncPath = (path: string, kind: SyncKind) => Promise<void>;

/**
 * Directories: fsync on a directory fd (POSIX leaves it to the filesystem; Linux needs it for a
 * new name to survive a crash). Some filesystems refuse it (EINVAL, EISDIR, EBADF): nothing more
 * can be done there, so that is not an error.
 */
export const syncPath: SyncPath = async (path, kind) => {
  const fh = await fsp.open(path, 'r');
  try {
    if (kind === 'file') await fh.datasync();
    else {
      try {
        await fh.sync();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EBADF' && code !== 'ENOTSUP') throw err;
      }
    }
  } finally {
    await fh.close();
  }
};

export class GroupSync {
  private next: Round | undefined;
  private running: Promise<void> | undefined;
  readonly stats: GroupSyncStats = { syncs: 0, rounds: 0, requests: 0 };

  /** `enabled = false` (config `fsync = no`): every request resolves at once. */
  constructor(
    readonly enabled: boolean,
    private readonly doSync: SyncPath = syncPath,
  ) {}

  /** Resolves once `path` was synced in a round that started after this call. */
  sync(path: string, kind: SyncKind): Promise<void> {
    this.stats.requests++;
    if (!this.enabled) return Promise.resolve();
    if (!this.next) {
      this.next = { items: new Map() };
      this.schedule();
    }
    let item = this.next.items.get(path);
    if (!item) this.next.items.set(path, (item = { kind, waiters: [] }));
    return new Promise<void>((resolve, reject) => item.waiters.push({ resolve, reject }));
  }

  /** Resolves when every round asked for so far has run. */
  async drain(): Promise<void> {
    while (this.running || this.next) await (this.running ?? new Promise((r) => setImmediate(r)));
  }

  private schedule(): void {
    if (this.running) return; // the running round schedules the next one when it ends
    // One turn of the event loop, so completions of one socket read share the round.
    setImmediate(() => {
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
