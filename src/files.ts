/**
 * The errno and small file helpers, written once: what an error's errno code is, what it means in
 * words (with a hint for the sysop), removing a file that may already be gone, and whether a path
 * exists. Everything else that touches files has its own module (bso/, poll/state.ts, ...).
 */
import { lstat, unlink } from 'node:fs/promises';
import { IoError, errCode, errorText } from './errors.js';

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
    await unlink(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new IoError(`${what} ${path}: cannot remove it: ${errorText(err)}`, { cause: err });
  }
}

/** Whether anything (even a dangling symlink) is at `path`; failures other than ENOENT are thrown. */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}
