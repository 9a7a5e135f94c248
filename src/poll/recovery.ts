/**
 * What a killed run leaves behind, and how the next run tidies it (issue 11, defect 6).
 *
 * - **Delivered files.** On M_GOT a sent file is confirmed in three steps: the flow line is
 *   marked `~`, the mark is made durable, then the file is deleted (`^`) or truncated (`#`). A
 *   kill between the mark and the delete leaves a delivered file that nothing would ever remove:
 *   its line says "sent", and a `~` line does not say what its directive was. So each confirmed
 *   file is first appended to a journal, `<state_file>.delivered.<pid>`, with what identifies it
 *   (inode, size, mtime) and its flow line; the run removes the journal when it ends. The next run
 *   (holding the run lock, so no other fnpoll writes one) replays every journal it finds: marks
 *   the lines not yet marked, deletes or truncates each file that is still the very file that
 *   was delivered, removes flow files that are then done, and says so in an info line. A file
 *   that was replaced since (another inode, size or time) is left alone.
 * - **Temp files.** write-file-atomic's `state.json.<n>` (and the lock owner file's), flag temp
 *   files `<flag>.<pid>-<hex>.tmp|.stale` of dead PIDs, and copies `.fnpoll-<hex>.tmp` left in an
 *   inbound by a cross-device move.
 */
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/types.js';
import { errorText } from '../errors.js';
import { FlagKeeper, sweepFlagTemps } from '../bso/flags.js';
import { applyFlowAction, finishFlowFile, markSent, nodeBase, type OutboundItem } from '../bso/outbound.js';
import { lockInfoPath, takeoverGuardPath } from './lock.js';
import { hubLayout } from './hubfiles.js';

/** A copy left in an inbound by a cross-device move is litter once it is this old. */
const INBOUND_TEMP_AGE_MS = 60 * 60_000;
const INBOUND_TEMP_RE = /^\.fnpoll-[0-9a-f]{12}\.tmp$/;

/** One journal line. */
interface Delivered {
  item: OutboundItem;
  ino: number;
}

export function journalPrefix(stateFile: string): string {
  return `${basename(stateFile)}.delivered.`;
}

/** The journal of confirmed files of one run, appended before any of them is changed. */
export class DeliveredJournal {
  private fd: number | undefined;
  readonly file: string;

  constructor(stateFile: string, pid = process.pid) {
    this.file = join(dirname(stateFile), `${journalPrefix(stateFile)}${pid}`);
  }

  /**
   * Record that `item` was delivered: one line, written before the flow line is marked (a kill in
   * between is replayed as "mark, then delete"). Synchronous: microseconds, and done before the
   * caller goes on. No fsync: a kill keeps the page cache; a power cut may lose the line, which
   * leaves at worst a delivered file behind (the `~` mark itself is synced).
   */
  record(item: OutboundItem): void {
    let ino = 0;
    try {
      ino = statSync(item.path).ino;
    } catch {
      // gone already: nothing to replay for the file, the line may still need its mark
    }
    this.fd ??= openSync(this.file, 'a', 0o600);
    writeSync(this.fd, `${JSON.stringify({ item, ino } satisfies Delivered)}\n`);
  }

  /** The run ended: every recorded confirmation was applied. */
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    try {
      unlinkSync(this.file);
    } catch {
      // already gone
    }
  }
}

export interface RecoveryLog {
  info(message: string): void;
  warn(message: string): void;
}

/** Everything in this file, for the start of a run (under the run lock). Never throws. */
export async function recoverAfterKill(config: Config, keeper: FlagKeeper, log: RecoveryLog): Promise<void> {
  const steps: [string, () => Promise<void>][] = [
    ['delivered-file journals', () => replayJournals(config.poller.stateFile, keeper, log)],
    ['temp files', () => removeTempFiles(config, log)],
  ];
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (err) {
      log.warn(`cleaning up after an interrupted run (${what}): ${errorText(err)}`);
    }
  }
}

/** `/ftn/out/139c0001.flo` → `/ftn/out/139c0001.bsy`: the flag that guards a BSO file. */
function bsyFor(path: string): string {
  const dot = path.lastIndexOf('.');
  return `${dot > path.lastIndexOf('/') ? path.slice(0, dot) : path}.bsy`;
}

/** Replay the journals of killed runs; see the file comment. */
export async function replayJournals(stateFile: string, keeper: FlagKeeper, log: RecoveryLog): Promise<void> {
  const dir = dirname(stateFile);
  const prefix = journalPrefix(stateFile);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)));
  // Every journal found is a killed run's, even one named with our own PID (a reused PID): ours is
  // created at the first confirmation, after this replay.
  for (const name of names) {
    const file = join(dir, name);
    if (await replayOne(file, keeper, log)) await unlink(file).catch(() => undefined);
  }
}

/** Returns false when the journal must stay for a later run (a node is busy elsewhere). */
async function replayOne(file: string, keeper: FlagKeeper, log: RecoveryLog): Promise<boolean> {
  const entries: Delivered[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      entries.push(JSON.parse(line) as Delivered);
    } catch {
      // a torn last line: the kill came while writing it, before its file was touched
    }
  }
  let complete = true;
  const flows = new Set<string>();
  const claimed: string[] = [];
  try {
    for (const { item, ino } of entries) {
      // The node's flow files and packets are changed only under its .bsy [FTS-5005 §5.1].
      const bsy = bsyFor(item.flow?.flowPath ?? item.path);
      if (!claimed.includes(bsy)) {
        const claim = await keeper.acquire(bsy);
        if (!claim.ok) {
          complete = false;
          continue;
        }
        claimed.push(bsy);
      }
      const st = statSync(item.path, { throwIfNoEntry: false });
      const same = !!st && st.ino === ino && st.size === item.size && Math.floor(st.mtimeMs / 1000) === item.mtime;
      if (item.kind === 'netmail') {
        if (same) {
          unlinkSync(item.path);
          log.info(`removed delivered netmail packet ${item.path} left by an interrupted run`);
        }
        continue;
      }
      if (item.kind !== 'file' || !item.flow) continue;
      try {
        await markSent(item);
      } catch (err) {
        log.warn(`delivered file ${item.path}: ${errorText(err)}; left as it is`);
        continue;
      }
      flows.add(item.flow.flowPath);
      if (same && item.flow.action !== 'keep') {
        await applyFlowAction(item);
        const done = item.flow.action === 'delete' ? 'removed' : 'truncated';
        log.info(`${done} delivered file ${item.path} (${item.flow.flowPath}) left by an interrupted run`);
      }
    }
    for (const f of flows) await finishFlowFile(f);
  } finally {
    for (const bsy of claimed) await keeper.release(bsy).catch(() => undefined);
  }
  return complete;
}

/** `name.<decimal>`: write-file-atomic's temp name for `name`. */
function isAtomicTemp(name: string, target: string): boolean {
  return name.startsWith(`${target}.`) && /^\d{1,10}$/.test(name.slice(target.length + 1));
}

async function removeTempFiles(config: Config, log: RecoveryLog): Promise<void> {
  const removed: string[] = [];
  // State file and lock owner file: written only under the run lock, which we hold.
  const targets = [config.poller.stateFile, lockInfoPath(config.poller.lockFile)];
  for (const dir of new Set(targets.map((t) => dirname(t)))) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!targets.some((t) => dirname(t) === dir && isAtomicTemp(name, basename(t)))) continue;
      await unlink(join(dir, name)).then(
        () => removed.push(join(dir, name)),
        () => undefined,
      );
    }
  }
  // Flag temp files of dead PIDs: beside each hub's flags, and the lock's take-over guard.
  const flagDirs = new Set([dirname(takeoverGuardPath(config.poller.lockFile))]);
  for (const hub of config.hubs) flagDirs.add(dirname(nodeBase(hubLayout(config, hub), hub.address)));
  for (const dir of flagDirs) for (const name of await sweepFlagTemps(dir)) removed.push(join(dir, name));
  // Copies of a cross-device move, old enough that no session can still be placing them.
  const cutoff = Date.now() - INBOUND_TEMP_AGE_MS;
  for (const dir of new Set([config.node.inbound, config.node.inboundInsecure])) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!INBOUND_TEMP_RE.test(name)) continue;
      const full = join(dir, name);
      const st = await stat(full).catch(() => undefined);
      if (st?.isFile() && st.mtimeMs < cutoff) await unlink(full).then(() => removed.push(full), () => undefined);
    }
  }
  if (removed.length) log.info(`removed ${removed.length} temp file(s) left by an interrupted run: ${removed.join(', ')}`);
}
