/**
 * The errno and small file helpers, written once: what an error's errno code is, what it means in
 * words (with a hint for the sysop), removing a file that may already be gone, and whether a path
 * exists. Everything else that touches files has its own module (bso/, poll/state.ts, ...).
 */
import { createRequire } from 'node:module';
import { IoError, errCode, errorText } from './errors.js';

let fsPromises: typeof import('node:fs/promises') | undefined;
/**
 * node:fs/promises, loaded at its first use. An idle cron run (nothing due) does all its file work
 * synchronously and never needs it, and loading it (with the stream, readline and watcher parts it
 * pulls in) took ~2 ms of such a run. The modules on the idle path reach it through here.
 */
export function fsp(): typeof import('node:fs/promises') {
  return (fsPromises ??= createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises'));
}

// errCode and errnoText live with errorText, which adds the same hints to Node's own messages.
export { errCode, errnoText } from './errors.js';

/** Whether `err` carries one of these errno codes. */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errCode(err);
  return code !== undefined && codes.includes(code);
}

/** Removes `path`; a file that is already gone is fine. Other failures are an IoError naming `what`. */
export async function unlinkIfPresent(path: string, what = 'file'): Promise<boolean> {
  try {
    await fsp().unlink(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new IoError(`${what} ${path}: cannot remove it: ${errorText(err)}`, { cause: err });
  }
}

/** Whether anything (even a dangling symlink) is at `path`; failures other than ENOENT are thrown. */
export async function exists(path: string): Promise<boolean> {
  try {
    await fsp().lstat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}
