/**
 * The errno and small file helpers, written once: what an error's errno code is, what it means in
 * words (with a hint for the sysop), removing a file that may already be gone, and whether a path
 * exists. Everything else that touches files has its own module (bso/, poll/state.ts, ...).
 */
import { lstat, unlink } from 'node:fs/promises';
import { IoError, errorText } from './errors.js';

/** The errno code of a thrown value (`ENOENT`, `EACCES`, ...), if it has one. */
export function errCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether `err` carries one of these errno codes. */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errCode(err);
  return code !== undefined && codes.includes(code);
}

const PERMISSION_HINT = 'check the owner and mode of the path and its parent directories for the user fnpoll runs as';

/** The codes a sysop meets, in words, with what to do about them. */
const ERRNO_WORDS: Readonly<Record<string, readonly [text: string, hint?: string]>> = {
  EACCES: ['permission denied', PERMISSION_HINT],
  EPERM: ['operation not permitted', PERMISSION_HINT],
  ENOENT: ['no such file or directory'],
  ENOTDIR: ['a component of the path is not a directory'],
  EISDIR: ['is a directory'],
  EEXIST: ['already exists'],
  ENOSPC: ['no space left on device', 'free space on that filesystem'],
  EDQUOT: ['disk quota exceeded', "raise the user's quota or free space"],
  EROFS: ['read-only filesystem', 'under systemd, list the directory in ReadWritePaths= (README "Scheduling")'],
  EIO: ['input/output error', 'the disk may be failing; see the kernel log'],
  EMFILE: ['too many open files', 'raise the open-files limit (ulimit -n, LimitNOFILE=)'],
  ENFILE: ['too many open files on the system'],
  ENAMETOOLONG: ['file name too long'],
  ELOOP: ['too many symbolic links'],
  EXDEV: ['not on the same filesystem'],
  EBUSY: ['device or resource busy'],
};

/**
 * `permission denied (EACCES)`, with the hint when `withHint`: for the places that have only the
 * code to show. An unknown code is shown as it is; a value without a code as its message.
 */
export function errnoText(err: unknown, withHint = true): string {
  const code = errCode(err);
  if (code === undefined) return errorText(err);
  const words = ERRNO_WORDS[code];
  if (!words) return code;
  return `${words[0]} (${code})${withHint && words[1] ? `; ${words[1]}` : ''}`;
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
