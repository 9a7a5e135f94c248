/**
 * The log file: one structured line per event (JSON lines, or binkd-like text), rotated by size
 * and/or interval with rotating-file-stream, old files gzipped, at most `maxFiles` kept.
 */
import { basename, dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { createStream, type RotatingFileStream } from 'rotating-file-stream';
import { formatJson, formatText, type Level, type LogEvent, type Sink } from './logger.js';

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
}

export class FileSink implements Sink {
  level: Level;
  private readonly stream: RotatingFileStream;
  private readonly format: (ev: LogEvent) => string;
  private failed = false;

  constructor(opts: FileSinkOptions) {
    this.level = opts.level;
    this.format = opts.format === 'text' ? formatText : formatJson;
    mkdirSync(dirname(opts.file), { recursive: true });
    const name = basename(opts.file);
    this.stream = createStream(
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
    this.stream.on('error', (err: Error) => {
      if (this.failed) return;
      this.failed = true;
      opts.onError?.(err);
    });
  }

  write(ev: LogEvent): void {
    if (this.failed) return;
    this.stream.write(`${this.format(ev)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.failed) return resolve();
      this.stream.end(() => resolve());
    });
  }
}
