/**
 * Temporary directories for tests: created under the OS temp dir, removed afterwards unless
 * FNPOLL_KEEP_TMP=1 (then the path is printed so a failure can be inspected).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function keepTmp(): boolean {
  return process.env['FNPOLL_KEEP_TMP'] === '1';
}

/** A fresh empty directory; `prefix` names its purpose (`fnpoll-binkd-`). */
export function makeTempDir(prefix = 'fnpoll-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Remove a directory made by makeTempDir (kept, and reported, when FNPOLL_KEEP_TMP=1). */
export async function removeTempDir(dir: string): Promise<void> {
  if (keepTmp()) {
    process.stderr.write(`FNPOLL_KEEP_TMP=1: kept ${dir}\n`);
    return;
  }
  await rm(dir, { recursive: true, force: true });
}

/** Run `fn` with a fresh temp dir and remove it afterwards, whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, prefix?: string): Promise<T> {
  const dir = await makeTempDir(prefix);
  try {
    return await fn(dir);
  } finally {
    await removeTempDir(dir);
  }
}
