/**
 * Builds the run's logger from config and command-line flags. `fnpoll run` imports this module
 * up front but an idle cron run never calls it, so what it needs (the logger, node:crypto, the
 * file sink) is loaded on first use.
 */
import { createRequire } from 'node:module';
import type { Config } from '../config/types.js';
import type { Level, Logger, Sink } from './logger.js';

const requireCjs = createRequire(import.meta.url);

export interface OutputFlags {
  debug?: boolean | undefined;
  quiet?: boolean | undefined;
  verbose?: boolean | undefined;
}

/** A short id that ties together every line of one invocation. */
export function newRunId(): string {
  const { randomBytes } = requireCjs('node:crypto') as typeof import('node:crypto');
  return randomBytes(4).toString('hex');
}

/**
 * stderr level: `--quiet` errors only; `--debug` everything; otherwise `interactive` commands
 * (now, demo) show info and cron's `run` shows errors only, so an idle cron run prints nothing.
 */
export function consoleLevel(flags: OutputFlags, interactive: boolean): Level {
  if (flags.debug) return 'debug';
  if (flags.quiet) return 'error';
  if (flags.verbose || interactive) return 'info';
  return 'error';
}

export async function createLogger(config: Config | undefined, flags: OutputFlags, interactive: boolean, runId = newRunId()): Promise<Logger> {
  const { ConsoleSink, Logger } = await import('./logger.js');
  const sinks: Sink[] = [new ConsoleSink(consoleLevel(flags, interactive))];
  if (config?.poller.logFile) {
    const { FileSink } = await import('./filesink.js');
    const p = config.poller;
    const warnOnce = (err: unknown): void => {
      process.stderr.write(`fnpoll: warning: ${config.file} [poller] log_file: "${p.logFile}": ${err instanceof Error ? err.message : String(err)}; logging to stderr only\n`);
    };
    try {
      sinks.push(
        new FileSink({
          file: p.logFile!,
          level: flags.debug ? 'debug' : p.logLevel,
          format: p.logFormat,
          rotateSize: p.logRotateSize,
          rotateInterval: p.logRotateInterval,
          maxFiles: p.logMaxFiles,
          onError: warnOnce,
        }),
      );
    } catch (err) {
      // A log file we cannot open must not stop the mail: stderr still gets every error.
      warnOnce(err);
    }
  }
  return new Logger(sinks, { runId });
}
