/**
 * `on_success` / `on_failure`: a command run after a session, e.g. to start the tosser when mail
 * arrived or to send a notification after a failure.
 *
 * The command line is handed to `/bin/sh -c` as written, so the user may use pipes, redirections
 * and `&&` the way a cron line does. It runs in the config file's directory (relative paths in the
 * command mean what they mean in the config), with stdin closed, and in a process group of its own
 * so that a timeout ends the command and everything it started. What it learns about the session
 * comes in FNPOLL_* environment variables; the hub's password is never among them.
 *
 * A hook never fails the run: a spawn error, a non-zero exit or a timeout is logged as a warning.
 */
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import type { Config } from '../config/types.js';
import { errorText } from '../errors.js';
import { formatAddress } from '../ftn/address.js';
import type { CallResult } from '../poll/call.js';
import type { RunSummary } from '../poll/run.js';
import type { Logger } from './logger.js';

/** The shell hooks run under. */
export const HOOK_SHELL = '/bin/sh';
/** After a timeout the process group gets SIGTERM, then SIGKILL this much later. */
export const HOOK_KILL_GRACE_MS = 2_000;
/**
 * After the hook's own process exits, wait this long for its pipes to close: a hook that starts
 * a daemon in the background (`tosser &`) must not keep the run waiting for the daemon.
 */
export const HOOK_PIPE_LINGER_MS = 500;
/** Output kept from a hook (stdout and stderr together); the rest is counted, not kept. */
export const HOOK_MAX_OUTPUT_BYTES = 16 * 1024;
/** Output lines logged per hook run. */
export const HOOK_MAX_LOG_LINES = 20;
/** Longest output line logged. */
export const HOOK_MAX_LINE_LENGTH = 200;

export type HookName = 'on_success' | 'on_failure' | 'on_run_end';

/** Which hook, if any, follows this result. A skipped call (busy elsewhere) was no session: none. */
export function hookFor(r: CallResult): { name: HookName; command: string } | undefined {
  if (r.status === 'ok' && r.hub.onSuccess) return { name: 'on_success', command: r.hub.onSuccess };
  if (r.status === 'failed' && r.hub.onFailure) return { name: 'on_failure', command: r.hub.onFailure };
  return undefined;
}

/** The inbound this session's files went to (secure only after a real password and M_OK `secure`). */
export function sessionInbound(r: CallResult, config: Config): string {
  return r.session?.secure ? config.node.inbound : config.node.inboundInsecure;
}

/**
 * The FNPOLL_* variables for a hook: hub, result and counts. `FNPOLL_DURATION` is in seconds (one
 * decimal). Pure. The password never goes in, and is blanked should a message ever quote it.
 */
export function hookVariables(r: CallResult, config: Config): Record<string, string> {
  const st = r.session?.stats;
  let message = r.message;
  const pw = r.hub.password;
  if (pw) message = message.split(pw).join('********');
  return {
    FNPOLL_HUB: r.hub.name,
    FNPOLL_ADDRESS: formatAddress(r.hub.address),
    FNPOLL_RESULT: r.status === 'ok' ? 'ok' : 'failed',
    FNPOLL_KIND: r.status === 'ok' ? '' : (r.kind ?? ''),
    FNPOLL_MESSAGE: message,
    FNPOLL_FILES_SENT: String(st?.filesSent ?? 0),
    FNPOLL_FILES_RECEIVED: String(st?.filesReceived ?? 0),
    FNPOLL_BYTES_SENT: String(st?.bytesSent ?? 0),
    FNPOLL_BYTES_RECEIVED: String(st?.bytesReceived ?? 0),
    FNPOLL_DURATION: (r.durationMs / 1000).toFixed(1),
    FNPOLL_INBOUND: sessionInbound(r, config),
  };
}

/**
 * The FNPOLL_* variables for `on_run_end`: the run's totals. Pure. `FNPOLL_HUBS` lists the hubs
 * that had a session, space-separated (section names have no spaces in practice; the JSON-safe
 * form would be unusable in sh).
 */
export function runVariables(s: RunSummary, config: Config): Record<string, string> {
  const sessions = s.results.filter((r) => r.status !== 'skipped');
  return {
    FNPOLL_RESULT: s.exitCode === 0 ? 'ok' : 'failed',
    FNPOLL_EXIT_CODE: String(s.exitCode),
    FNPOLL_HUBS: sessions.map((r) => r.hub.name).join(' '),
    FNPOLL_HUBS_DUE: String(s.due),
    FNPOLL_SESSIONS: String(sessions.length),
    FNPOLL_SESSIONS_OK: String(s.ok),
    FNPOLL_SESSIONS_FAILED: String(s.failed),
    FNPOLL_FILES_SENT: String(s.filesSent),
    FNPOLL_FILES_RECEIVED: String(s.filesReceived),
    FNPOLL_BYTES_SENT: String(s.bytesSent),
    FNPOLL_BYTES_RECEIVED: String(s.bytesReceived),
    FNPOLL_DURATION: (s.durationMs / 1000).toFixed(1),
    FNPOLL_INBOUND: config.node.inbound,
    FNPOLL_INBOUND_INSECURE: config.node.inboundInsecure,
  };
}

/**
 * The hook's whole environment: fnpoll's own (PATH, HOME, LANG…) without any FNPOLL_* variable
 * inherited from the caller, plus this session's variables.
 */
export function hookEnvironment(vars: Record<string, string>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!k.startsWith('FNPOLL_') && v !== undefined) env[k] = v;
  return { ...env, ...vars };
}

export interface HookRunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Aborting ends the hook at once (its process group gets SIGTERM, then SIGKILL). */
  signal?: AbortSignal | undefined;
  killGraceMs?: number | undefined;
  pipeLingerMs?: number | undefined;
  maxOutputBytes?: number | undefined;
}

export interface HookOutcome {
  /** Exit status; undefined when it was ended by a signal or never started. */
  exitCode?: number | undefined;
  /** The signal that ended it, e.g. `SIGTERM`. */
  signal?: string | undefined;
  timedOut: boolean;
  /** Ended early through `signal` (fnpoll is shutting down). */
  aborted: boolean;
  /** Could not be started at all. */
  error?: string | undefined;
  /** Output lines (stdout and stderr interleaved as they came), up to maxOutputBytes. */
  output: string[];
  /** Bytes of output beyond maxOutputBytes that were dropped. */
  droppedBytes: number;
  durationMs: number;
}

/** Send `sig` to the whole process group led by `pid`; quiet when it is already gone. */
function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is gone
  }
}

/**
 * Run `command` with `/bin/sh -c` and wait for it, bounded by `timeoutMs`. Never rejects: every
 * way it can end is described in the outcome.
 */
export function runHook(command: string, opts: HookRunOptions): Promise<HookOutcome> {
  const started = Date.now();
  const maxOutput = opts.maxOutputBytes ?? HOOK_MAX_OUTPUT_BYTES;
  const killGrace = opts.killGraceMs ?? HOOK_KILL_GRACE_MS;
  const linger = opts.pipeLingerMs ?? HOOK_PIPE_LINGER_MS;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let dropped = 0;
    let timedOut = false;
    let aborted = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let done = false;
    const timers: NodeJS.Timeout[] = [];

    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(HOOK_SHELL, ['-c', command], {
        cwd: opts.cwd,
        env: opts.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        // A process group of its own: a timeout ends the command and whatever it started.
        detached: true,
      });
    } catch (err) {
      resolve({ timedOut, aborted, error: errorText(err), output: [], droppedBytes: 0, durationMs: Date.now() - started });
      return;
    }

    const collect = (b: Buffer): void => {
      const room = maxOutput - kept;
      if (room > 0) {
        const piece = b.length <= room ? b : b.subarray(0, room);
        chunks.push(piece);
        kept += piece.length;
      }
      dropped += Math.max(0, b.length - Math.max(0, room));
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);

    const finish = (error?: string): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      opts.signal?.removeEventListener('abort', onAbort);
      child.stdout?.destroy();
      child.stderr?.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      const output = text.split(/\r?\n/).filter((l, i, all) => l !== '' || i < all.length - 1);
      resolve({
        exitCode: exit?.code ?? undefined,
        signal: exit?.signal ?? undefined,
        timedOut,
        aborted,
        error,
        output,
        droppedBytes: dropped,
        durationMs: Date.now() - started,
      });
    };

    const end = (): void => {
      killGroup(child.pid, 'SIGTERM');
      const t = setTimeout(() => killGroup(child.pid, 'SIGKILL'), killGrace);
      t.unref();
      timers.push(t);
    };
    const onAbort = (): void => {
      if (exit || done) return;
      aborted = true;
      end();
    };

    child.on('error', (err) => finish(errorText(err)));
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Output may still be in the pipes; do not wait for a background child holding them open.
      const t = setTimeout(() => finish(), linger);
      t.unref();
      timers.push(t);
    });
    child.on('close', () => finish());

    const timeout = setTimeout(() => {
      if (exit) return;
      timedOut = true;
      end();
    }, opts.timeoutMs);
    timeout.unref();
    timers.push(timeout);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function clipLine(line: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = line.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return flat.length <= HOOK_MAX_LINE_LENGTH ? flat : `${flat.slice(0, HOOK_MAX_LINE_LENGTH - 1)}…`;
}

/** One summary line and the (truncated) output lines, as logged. Pure. */
export function describeHookOutcome(name: HookName, command: string, o: HookOutcome, timeoutMs: number): { level: 'info' | 'warning'; lines: string[] } {
  const secs = (o.durationMs / 1000).toFixed(1);
  let head: string;
  let level: 'info' | 'warning' = 'warning';
  if (o.error !== undefined) head = `${name} hook "${command}" could not be run: ${o.error}`;
  else if (o.timedOut) head = `${name} hook "${command}" timed out after hook_timeout (${Math.round(timeoutMs / 1000)} s); its process group was killed`;
  else if (o.aborted) head = `${name} hook "${command}" ended early: fnpoll is shutting down`;
  else if (o.signal) head = `${name} hook "${command}" was killed by ${o.signal} after ${secs} s`;
  else if (o.exitCode === 0) {
    head = `${name} hook "${command}" exited with status 0 in ${secs} s`;
    level = 'info';
  } else head = `${name} hook "${command}" exited with status ${o.exitCode} in ${secs} s`;
  const out = o.output.slice(0, HOOK_MAX_LOG_LINES).map((l) => `${name} hook output: ${clipLine(l)}`);
  const more = o.output.length - HOOK_MAX_LOG_LINES;
  if (more > 0 || o.droppedBytes > 0) {
    const parts = [more > 0 ? `${more} more line${more === 1 ? '' : 's'}` : '', o.droppedBytes > 0 ? `${o.droppedBytes} more bytes` : ''].filter(Boolean);
    out.push(`${name} hook output: (${parts.join(', ')} not shown)`);
  }
  return { level, lines: [head, ...out] };
}

/** Where signals come from; tests pass an EventEmitter. */
export interface SignalSource {
  on(event: 'SIGTERM' | 'SIGINT', fn: () => void): unknown;
  off(event: 'SIGTERM' | 'SIGINT', fn: () => void): unknown;
}

export interface SessionHookOptions {
  signals?: SignalSource | undefined;
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * Run the hook that follows `r` (if configured) and log how it went. Never throws.
 *
 * Signals while the hook runs follow the rule for sessions: the first SIGTERM/SIGINT leaves it at
 * most `shutdown_grace` more, a second one ends it at once.
 */
export async function runSessionHook(r: CallResult, config: Config, log: Logger, opts: SessionHookOptions = {}): Promise<void> {
  const hook = hookFor(r);
  if (!hook) return;
  await runLoggedHook(hook.name, hook.command, hookVariables(r, config), config, log.child({ hub: r.hub.name }), opts);
}

/** `on_run_end`: once after a run that made at least one session (a busy hub is no session). */
export async function runRunEndHook(s: RunSummary, config: Config, log: Logger, opts: SessionHookOptions = {}): Promise<void> {
  const command = config.poller.onRunEnd;
  if (!command || s.ok + s.failed === 0) return;
  await runLoggedHook('on_run_end', command, runVariables(s, config), config, log, opts);
}

async function runLoggedHook(
  name: HookName,
  command: string,
  vars: Record<string, string>,
  config: Config,
  hubLog: Logger,
  opts: SessionHookOptions,
): Promise<void> {
  const hook = { name, command };
  const signals = opts.signals ?? process;
  const ac = new AbortController();
  let seen = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  const onSignal = (): void => {
    seen++;
    if (seen > 1) return ac.abort();
    graceTimer = setTimeout(() => ac.abort(), config.poller.shutdownGrace);
    graceTimer.unref();
  };
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
  try {
    const timeoutMs = config.poller.hookTimeout;
    hubLog.debug(`running ${hook.name} hook: ${HOOK_SHELL} -c "${hook.command}"`);
    const outcome = await runHook(hook.command, {
      cwd: dirname(config.file),
      env: hookEnvironment(vars, opts.env),
      timeoutMs,
      signal: ac.signal,
    });
    const { level, lines } = describeHookOutcome(hook.name, hook.command, outcome, timeoutMs);
    hubLog.log(level, 'general', lines[0]!, {
      hook: hook.name,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      timedOut: outcome.timedOut || undefined,
      duration: outcome.durationMs,
    });
    for (const l of lines.slice(1)) hubLog.log(level === 'info' ? 'info' : 'warning', 'general', l);
  } catch (err) {
    hubLog.warn(`${hook.name} hook "${hook.command}": ${errorText(err)}`);
  } finally {
    clearTimeout(graceTimer);
    signals.off('SIGTERM', onSignal);
    signals.off('SIGINT', onSignal);
  }
}
