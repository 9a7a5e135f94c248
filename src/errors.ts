/**
 * One error hierarchy for everything fnpoll reports to a user. Every error has a stable `code`
 * and the process exit code it maps to; the CLI prints `message` as one line (no stack unless
 * --debug).
 */

/** Process exit codes: part of the interface, documented in README.md. */
export const ExitCode = {
  OK: 0,
  /** At least one session failed. */
  FAILED: 1,
  /** EX_USAGE from sysexits.h: bad command line. */
  USAGE: 64,
  /** EX_TEMPFAIL: another run holds the lock. */
  LOCKED: 75,
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

/** A configuration problem. `problems` holds one line per problem (file, section, key, value). */
export class ConfigError extends FnpollError {
  override name = 'ConfigError';
  readonly problems: string[];
  constructor(problems: string[] | string, options?: { cause?: unknown }) {
    const list = Array.isArray(problems) ? problems : [problems];
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

/** Short text for an unknown thrown value, for one-line messages. */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
