/**
 * The log file: one structured line per event (JSON lines, or binkd-like text), rotated by size
 * and/or interval with rotating-file-stream, old files gzipped, at most `maxFiles` kept.
 *
 * Lazy: nothing is opened and rotating-file-stream (with child_process and zlib behind it) is not
 * even loaded until the first line is written, so a run that logs nothing pays nothing for its
 * log file. Its CommonJS build is loaded with require(): cheaper than the ESM graph, and
 * synchronous, so the first write() needs no promise.
 *
 * Batched: rotating-file-stream writes each chunk with its own awaited file write, so a session
 * that logs two lines per file for a thousand files queued two thousand writes, and the run
 * waited ~150 ms at exit for them to drain. A quiet run's line goes out at the end of the
 * event-loop turn that logged it; while lines keep coming, what piled up goes out at most every
 * FLUSH_INTERVAL_MS, as one chunk of at most BATCH_MAX bytes (less with a small
 * log_rotate_size, so rotation stays as fine-grained). Per turn, a session receiving a thousand
 * small packets still made ~500 writes, each a thread-pool round trip and a promise.
 */
import { basename, dirname } from 'node:path';
import { makeDirsSync } from '../dirs.js';
import { createRequire } from 'node:module';
import type { RotatingFileStream } from 'rotating-file-stream';
import { formatJson, formatText, type Level, type LogEvent, type Sink } from './logger.js';

type RotatingFileStreamModule = typeof import('rotating-file-stream');

export interface FileSinkOptions {
  file: string;
  level: Level;
  format: 'json' | 'text';
  /** bytes; 0 = no size rotation */
  rotateSize: number;
  /** e.g. `1d`, `12h`; undefined = none */
  rotateInterval?: string | undefined;
  maxFiles: number;
  /** Called once if the stream fails (disk full, permissions): logging must never crash a run. */
  onError?: (err: Error) => void;
  /** Bytes waiting for the disk before lines are dropped (default MAX_QUEUED_BYTES). */
  maxQueued?: number;
  /** Clock for the flush interval, ms (tests); default Date.now. */
  now?: () => number;
}

/**
 * rotating-file-stream, loaded at the first line: a run that logs nothing does not pay for it.
 * In the single-file build (where `require` is the bundle's) esbuild sees the literal require()
 * and puts the package into the bundle, evaluated only when this runs; from the ES modules under
 * dist/src (the tests) there is no `require`, and Node's loader fetches it. Loaded from
 * node_modules through Node's module resolution, it delayed a session's dial by ~10 ms.
 */
function loadRotation(): RotatingFileStreamModule {
  return typeof require === 'function'
    ? (require('rotating-file-stream') as RotatingFileStreamModule)
    : (createRequire(import.meta.url)('rotating-file-stream') as RotatingFileStreamModule);
}

/** Upper bound of one batched write. */
const BATCH_MAX = 64 * 1024;
/** While busy, lines wait at most this long (ms) for the ones after them. */
export const FLUSH_INTERVAL_MS = 50;
/**
 * Log text waiting for the disk, at most. A hub that floods M_NUL at log_level = debug once piled
 * hundreds of MB here, and the run lingered at exit writing them. Beyond it lines are dropped and
 * counted; a warning line says how many once there is room again.
 */
export const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

export class FileSink implements Sink {
  level: Level;
  private stream: RotatingFileStream | undefined;
  private readonly format: (ev: LogEvent) => string;
  private failed = false;
  /** Lines not yet handed to the stream, and their length in characters. */
  private pending = '';
  private flushScheduled = false;
  private flushTimer: NodeJS.Timeout | undefined;
  /** When the last chunk was handed to the stream (opts.now). */
  private lastFlush = -Infinity;
  private readonly now: () => number;
  private readonly batchMax: number;
  private readonly maxQueued: number;
  /** Lines dropped since the last summary. */
  private dropped = 0;

  constructor(private readonly opts: FileSinkOptions) {
    this.level = opts.level;
    this.format = opts.format === 'text' ? formatText : formatJson;
    this.batchMax = opts.rotateSize > 0 ? Math.max(1, Math.min(BATCH_MAX, Math.floor(opts.rotateSize / 8))) : BATCH_MAX;
    this.maxQueued = opts.maxQueued ?? MAX_QUEUED_BYTES;
    this.now = opts.now ?? Date.now;
  }

  /** Characters handed over but not yet on disk. */
  get queued(): number {
    return this.pending.length + (this.stream?.writableLength ?? 0);
  }

  write(ev: LogEvent): void {
    if (this.failed) return;
    if (!this.stream && !this.open()) return;
    if (this.queued >= this.maxQueued) {
      this.dropped++;
      return;
    }
    if (this.dropped > 0) this.summariseDropped(ev);
    this.pending += `${this.format(ev)}\n`;
    if (this.pending.length >= this.batchMax) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // At most the interval, whatever the wall clock did since the last chunk.
      const wait = Math.min(FLUSH_INTERVAL_MS, this.lastFlush + FLUSH_INTERVAL_MS - this.now());
      if (!(wait > 0)) setImmediate(() => this.flush());
      // Not unref'd: a process that ends without close() still writes its last lines.
      else this.flushTimer = setTimeout(() => this.flush(), Math.ceil(wait));
    }
  }

  close(): Promise<void> {
    if (this.dropped > 0 && !this.failed && this.stream) this.summariseDropped({ time: new Date(), level: 'warning', category: 'general', message: '' });
    this.flush();
    return new Promise((resolve) => {
      const stream = this.stream;
      if (this.failed || !stream) return resolve();
      stream.end(() => resolve());
    });
  }

  /** One line saying how many lines were dropped, with the context of the event that follows. */
  private summariseDropped(next: LogEvent): void {
    const { fields: _fields, ...context } = next;
    const n = this.dropped;
    this.dropped = 0;
    const line = { ...context, time: new Date(), level: 'warning' as const, category: 'general' as const, message: `${n} log line${n === 1 ? '' : 's'} dropped: the log file could not keep up` };
    this.pending += `${this.format(line)}\n`;
  }

  /** Hand what is pending to the stream as one chunk. */
  private flush(): void {
    this.flushScheduled = false;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.pending) return;
    this.lastFlush = this.now();
    const chunk = this.pending;
    this.pending = '';
    if (!this.failed) this.stream?.write(chunk);
  }

  /** Create the directory and the rotating stream; a failure is reported once and the sink goes quiet. */
  private open(): RotatingFileStream | undefined {
    const opts = this.opts;
    try {
      makeDirsSync(dirname(opts.file));
      const { createStream } = loadRotation();
      const name = basename(opts.file);
      const stream = createStream(
        // Rotated files: `fnpoll.log.20261122T0318-01.gz` (UTC); the live file keeps its configured name.
        (time: Date | number | null, index?: number) => {
          if (!time) return name;
          const d = typeof time === 'number' ? new Date(time) : time;
          const stamp = d.toISOString().replace(/[-:]/g, '').slice(0, 13);
          return `${name}.${stamp}-${String(index ?? 1).padStart(2, '0')}.gz`;
        },
        {
          path: dirname(opts.file),
          ...(opts.rotateSize > 0 ? { size: `${Math.max(1, Math.ceil(opts.rotateSize / 1024))}K` as `${number}K` } : {}),
          ...(opts.rotateInterval ? { interval: opts.rotateInterval as `${number}d` } : {}),
          maxFiles: opts.maxFiles,
          compress: 'gzip',
          history: `.${name}.history`,
        },
      );
      stream.on('error', (err: Error) => this.fail(err));
      this.stream = stream;
      return stream;
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return undefined;
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.opts.onError?.(err);
  }
}
