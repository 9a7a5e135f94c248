/**
 * Live progress for `fnpoll now` on a terminal: one line per running session (hub, file in each
 * direction, bytes, rate, ETA), redrawn about four times a second below the log lines.
 *
 * Only ever on an interactive stderr: never in cron (no TTY), in pipes, or with --quiet / --json
 * (see progressWanted; the caller checks before it even loads this module).
 *
 * How it stays out of the log's way: while running, the display wraps the stream's `write`. Any
 * text written by someone else first erases the bars (cursor up, clear to end of screen), then
 * goes out, then the bars are drawn again under it. So log lines, the per-session result lines
 * and the SIGUSR1 snapshot scroll up above the bars and stay intact; stop() erases the bars and
 * gives the stream its own `write` back. Lines are cut to the terminal width so that no line
 * wraps (a wrapped line would break the cursor arithmetic).
 */
import type { HubConfig } from '../config/types.js';
import type { CallerSession } from '../binkp/session.js';
import { formatBytes, formatDuration, formatRate } from '../format.js';

/** Redraw period: about four times a second. */
export const PROGRESS_INTERVAL_MS = 250;
/** Weight of the newest sample in the smoothed rate. */
const RATE_SMOOTHING = 0.3;
const BAR_WIDTH = 20;

export type ProgressSnapshot = CallerSession['progress'];

/** The part of a terminal stream the display uses (process.stderr, or a fake in tests). */
export interface ProgressStream {
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  write(chunk: string | Uint8Array, ...rest: unknown[]): boolean;
}

export interface ProgressTimers {
  /** Call `fn` every `ms` until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
}

const realTimers: ProgressTimers = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return () => clearInterval(t);
  },
};

/** Progress bars only on a terminal, only for interactive commands, never with --quiet or --json. */
export function progressWanted(
  stream: { isTTY?: boolean | undefined },
  flags: { quiet?: boolean | undefined; json?: boolean | undefined; interactive: boolean },
): boolean {
  return !!stream.isTTY && flags.interactive && !flags.quiet && !flags.json;
}

/** What one line shows, besides the snapshot: smoothed rates in bytes/s. */
export interface LineRates {
  /** Both directions together. */
  total: number;
  received: number;
}

/** `[=======>            ]` for a fraction in [0, 1]. */
export function bar(fraction: number, width = BAR_WIDTH): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.floor(f * width);
  const head = full < width && f > 0 ? '>' : '';
  return `[${'='.repeat(full)}${head}${' '.repeat(width - full - head.length)}]`;
}

/** Cut to `width` columns (by code points), marking the cut with `…`. */
export function fit(text: string, width: number): string {
  const chars = [...text];
  if (width <= 0) return '';
  return chars.length <= width ? text : `${chars.slice(0, width - 1).join('')}…`;
}

/** How much detail a line can afford; tried from the first to the last until the line fits. */
interface Detail {
  barWidth: number;
  eta: boolean;
  /** Longest file name shown (cut in the middle with `…`). */
  nameMax: number;
  /** `1.5 MiB/3.3 MiB` after the percentage. */
  sizes: boolean;
}

const DETAILS: readonly Detail[] = [
  { barWidth: BAR_WIDTH, eta: true, nameMax: 64, sizes: true },
  { barWidth: 10, eta: true, nameMax: 24, sizes: true },
  { barWidth: 0, eta: true, nameMax: 20, sizes: true },
  { barWidth: 0, eta: false, nameMax: 16, sizes: true },
  { barWidth: 0, eta: false, nameMax: 16, sizes: false },
  { barWidth: 0, eta: false, nameMax: 10, sizes: false },
];

/** `0000abcdef….pkt`: the start and the end of a long name, which say most about it. */
function shortName(name: string, max: number): string {
  const chars = [...name];
  if (chars.length <= max) return name;
  const tail = Math.min(4, max - 2);
  return `${chars.slice(0, max - 1 - tail).join('')}…${chars.slice(-tail).join('')}`;
}

/** `recv name [====>   ]  45% 1.5 MiB/3.3 MiB ETA 12s`: the bar only when the size is known. */
function filePart(verb: string, name: string, at: number, size: number, rate: number, d: Detail): string {
  let text = `${verb} ${shortName(name, d.nameMax)}`;
  if (size > 0) {
    const pct = Math.floor((at / size) * 100);
    text += `${d.barWidth ? ` ${bar(at / size, d.barWidth)}` : ''} ${String(pct).padStart(3)}%${d.sizes ? ` ${formatBytes(at)}/${formatBytes(size)}` : ''}`;
    if (d.eta && rate > 0 && at < size) text += ` ETA ${formatDuration(((size - at) / rate) * 1000)}`;
  }
  return text;
}

/**
 * One session's line, fitted to `width` columns: with both directions active, bars narrow, then
 * go, then the ETA, then names shorten, before anything is cut. Pure.
 *   `fido  recv nodelist.zip [=====>     ] 45% 1.5 MiB/3.3 MiB ETA 12s  send 0000abcd.pkt  total 4.1 MiB, 230 KiB/s`
 */
export function formatProgressLine(label: string, snap: ProgressSnapshot | undefined, rates: LineRates, width: number): string {
  if (!snap) return fit(`${label}  connecting…`, width);
  const files = snap.filesSent + snap.filesReceived;
  const total = `total ${formatBytes(snap.bytesSent + snap.bytesReceived)}${files ? ` (${files} file${files === 1 ? '' : 's'} done)` : ''}, ${formatRate(rates.total)}`;
  let line = '';
  for (const d of DETAILS) {
    const parts: string[] = [label];
    if (snap.receivingName !== undefined) {
      parts.push(filePart('recv', snap.receivingName, snap.receivingOffset ?? 0, snap.receivingSize ?? 0, rates.received, d));
    }
    if (snap.sendingName !== undefined) {
      const sentRate = Math.max(0, rates.total - rates.received);
      parts.push(filePart('send', snap.sendingName, snap.sendingOffset ?? 0, snap.sendingSize ?? 0, sentRate, d));
    }
    parts.push(total);
    line = parts.join('  ');
    if ([...line].length <= width) return line;
  }
  return fit(line, width);
}

interface Entry {
  label: string;
  source: () => ProgressSnapshot | undefined;
  lastAt?: number;
  lastTotal: number;
  lastReceived: number;
  rates: LineRates;
}

export interface ProgressDisplayOptions {
  stream: ProgressStream;
  now?: () => number;
  timers?: ProgressTimers;
  intervalMs?: number;
}

export class ProgressDisplay {
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly timers: ProgressTimers;
  private readonly intervalMs: number;
  private readonly entries = new Map<string, Entry>();
  /** Lines of bars currently on screen (below the cursor's line start). */
  private drawn = 0;
  /** Someone else's text ended without a newline: draw nothing until the line is finished. */
  private midLine = false;
  private running = false;
  private cancelTimer: (() => void) | undefined;
  private originalWrite: ProgressStream['write'] | undefined;
  private hadOwnWrite = false;

  constructor(opts: ProgressDisplayOptions) {
    this.stream = opts.stream;
    this.now = opts.now ?? Date.now;
    this.timers = opts.timers ?? realTimers;
    this.intervalMs = opts.intervalMs ?? PROGRESS_INTERVAL_MS;
  }

  /** For executeRun's onSessionStart / onSessionEnd. */
  readonly sessionStarted = (hub: HubConfig, session: CallerSession): void => {
    this.add(hub.key, hub.name, () => session.progress);
  };
  readonly sessionEnded = (hub: HubConfig): void => {
    this.remove(hub.key);
  };

  start(): void {
    if (this.running) return;
    this.running = true;
    const stream = this.stream;
    this.hadOwnWrite = Object.hasOwn(stream, 'write');
    const original = stream.write;
    this.originalWrite = original;
    const self = this;
    stream.write = function (this: unknown, chunk: string | Uint8Array, ...rest: unknown[]): boolean {
      self.erase();
      const ok = original.call(stream, chunk, ...rest);
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      if (text.length) self.midLine = !text.endsWith('\n');
      self.draw();
      return ok;
    } as ProgressStream['write'];
    this.cancelTimer = this.timers.every(this.intervalMs, () => this.tick());
  }

  /** Erase the bars and give the stream its `write` back. Idempotent. */
  stop(): void {
    if (!this.running) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.erase();
    this.running = false;
    if (this.hadOwnWrite) this.stream.write = this.originalWrite!;
    else delete (this.stream as { write?: unknown }).write;
    this.originalWrite = undefined;
  }

  add(key: string, label: string, source: () => ProgressSnapshot | undefined): void {
    this.entries.set(key, { label, source, lastTotal: 0, lastReceived: 0, rates: { total: 0, received: 0 } });
    this.redraw();
  }

  remove(key: string): void {
    if (!this.entries.delete(key)) return;
    this.redraw();
  }

  /** Sample every session's counters and redraw (the timer calls this). */
  tick(): void {
    const t = this.now();
    for (const e of this.entries.values()) {
      const snap = e.source();
      if (!snap) continue;
      const total = snap.bytesSent + snap.bytesReceived;
      if (e.lastAt !== undefined && t > e.lastAt) {
        const secs = (t - e.lastAt) / 1000;
        const smooth = (old: number, sample: number): number => (old === 0 ? sample : old + RATE_SMOOTHING * (sample - old));
        e.rates = {
          total: smooth(e.rates.total, Math.max(0, total - e.lastTotal) / secs),
          received: smooth(e.rates.received, Math.max(0, snap.bytesReceived - e.lastReceived) / secs),
        };
      }
      e.lastAt = t;
      e.lastTotal = total;
      e.lastReceived = snap.bytesReceived;
    }
    this.redraw();
  }

  /** The bar lines as they would be drawn now. */
  lines(): string[] {
    // A pty without a size reports 0 columns: assume the classic 80.
    const width = Math.max(20, (this.stream.columns || 80) - 1);
    const labelWidth = Math.min(16, Math.max(0, ...[...this.entries.values()].map((e) => e.label.length)));
    return [...this.entries.values()].map((e) => formatProgressLine(e.label.padEnd(labelWidth), e.source(), e.rates, width));
  }

  private redraw(): void {
    if (!this.running) return;
    this.erase();
    this.draw();
  }

  private raw(text: string): void {
    if (text) this.originalWrite!.call(this.stream, text);
  }

  private erase(): void {
    if (!this.running || this.drawn === 0) return;
    // Up to the first bar line, then clear from there to the end of the screen.
    this.raw(`\x1b[${this.drawn}A\r\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.running || this.midLine || this.drawn > 0) return;
    const lines = this.lines();
    if (!lines.length) return;
    this.raw(lines.map((l) => `${l}\n`).join(''));
    this.drawn = lines.length;
  }
}
