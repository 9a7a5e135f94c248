/** Builds the run's logger from config and command-line flags. */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/types.js';
import { ConsoleSink, Logger, type Level, type Sink } from './logger.js';

export interface OutputFlags {
  debug?: boolean | undefined;
  quiet?: boolean | undefined;
  verbose?: boolean | undefined;
}

/** A short id that ties together every line of one invocation. */
export function newRunId(): string {
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
