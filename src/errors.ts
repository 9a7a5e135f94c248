/**
 * One error hierarchy for everything fnpoll reports to a user. Every error has a stable `code`
 * and the process exit code it maps to; the CLI prints `message` as one line (no stack unless
 * --debug).
 */

import { shownText } from './binkp/untrusted.js';

/** Process exit codes: part of the interface, documented in README.md. */
export const ExitCode = {
  OK: 0,
  /** At least one session failed. */
  FAILED: 1,
  /** EX_USAGE from sysexits.h: bad command line. */
  USAGE: 64,
  /** EX_TEMPFAIL: another run holds the lock. */
  LOCKED: 75,
  /** EX_TEMPFAIL as well: `now` skipped a hub whose busy flag another program holds. */
  BUSY: 75,
  /** EX_CONFIG: the configuration is invalid. */
  CONFIG: 78,
  /** EX_IOERR: local I/O failure (state file, outbound, disk full). */
  IOERR: 74,
  /** EX_SOFTWARE: internal error (a bug). */
  SOFTWARE: 70,
  SIGINT: 130,
  SIGTERM: 143,
} as const;

export class FnpollError extends Error {
  override name = 'FnpollError';
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.exitCode = options?.exitCode ?? ExitCode.FAILED;
  }
}

/**
 * A configuration problem. `problems` holds one line per problem (file, section, key, value).
 * A problem quotes what the file holds, which may be anything (a damaged file, a stray ESC or
 * `\r` in a value): control characters are escaped here, so each problem prints as one line.
 */
export class ConfigError extends FnpollError {
  override name = 'ConfigError';
  readonly problems: string[];
  constructor(problems: string[] | string, options?: { cause?: unknown }) {
    const list = (Array.isArray(problems) ? problems : [problems]).map((p) => shownText(p, Infinity));
    super('ECONFIG', list.join('\n'), { ...options, exitCode: ExitCode.CONFIG });
    this.problems = list;
  }
}

export class UsageError extends FnpollError {
  override name = 'UsageError';
  constructor(message: string) {
    super('EUSAGE', message, { exitCode: ExitCode.USAGE });
  }
}

export class LockError extends FnpollError {
  override name = 'LockError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ELOCKED', message, { ...options, exitCode: ExitCode.LOCKED });
  }
}

/** Why a session failed; recorded in state and used by backoff. */
export type FailureKind =
  | 'dns'
  | 'refused'
  | 'timeout'
  | 'auth'
  | 'busy'
  | 'protocol'
  | 'io'
  | 'aborted'
  // Issue 12 (src/net/): why a hub could not be reached.
  | 'nodelist'
  | 'tls'
  | 'fingerprint'
  | 'proxy'
  | 'proxy_auth';

/**
 * A binkp session failed. `kind` classifies it for backoff; `remote` is the hub's M_ERR/M_BSY text.
 * The code is `SESSION_<KIND>`: not an errno look-alike (`EBUSY`), and never IoError's `EIO`.
 */
export class SessionError extends FnpollError {
  override name = 'SessionError';
  readonly kind: FailureKind;
  readonly remote: string | undefined;
  constructor(kind: FailureKind, message: string, options?: { cause?: unknown; remote?: string }) {
    super(`SESSION_${kind.toUpperCase()}`, message, options);
    this.kind = kind;
    this.remote = options?.remote;
  }
}

/** Local I/O problem on a file we own (state, outbound, inbound). */
export class IoError extends FnpollError {
  override name = 'IoError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('EIO', message, { ...options, exitCode: ExitCode.IOERR });
  }
}

/** The errno code of a thrown value (`ENOENT`, `EACCES`, ...), if it has one. */
export function errCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code ? code : undefined;
}

/**
 * Short text for an unknown thrown value, for one-line messages. Node's file errors already say
 * what happened (`EACCES: permission denied, open '/x'`); the hint says what to do about it.
 */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = errCode(err);
    const text = code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
    const hint = code === undefined ? undefined : ERRNO_WORDS[code]?.[1];
    return hint ? `${text}; ${hint}` : text;
  }
  return String(err);
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

