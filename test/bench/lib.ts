/**
 * The bench's own small toolbox: settings from the environment, timing child processes (wall
 * time, and peak RSS through `/usr/bin/time` or /proc), medians, and the result table.
 *
 * Nothing here knows binkp or BSO; the scenario modules do.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// Settings

export type Scale = 'small' | 'full';

export interface BenchSettings {
  /** `FNPOLL_BENCH_SCALE`: `full` (default) is the workload; `small` a quick smoke run. */
  scale: Scale;
  /** `FNPOLL_BENCH_ROUNDS`: measured rounds per comparison (default 3 full, 1 small), after one warm-up. */
  rounds: number;
  /** `FNPOLL_BENCH_ONLY`: comma-separated scenario names; default all. */
  only: Set<string> | undefined;
  /** `FNPOLL_BENCH_DIR`: where payloads, outbounds and hubs live; default tmpfs when there is one. */
  dir: string;
  /** What `dir` is, for the table header. */
  dirKind: string;
  /**
   * `FNPOLL_BENCH_DISK_DIR`: where the "files on disk" rows live (default the OS temp dir, where
   * the tests run). Sysops' spools are on disks, not tmpfs.
   */
  diskDir: string;
  /** `FNPOLL_BENCH_ROWS`: comma-separated row ids (e.g. `1b,1b-disk`); default all rows of the scenarios run. */
  rows: Set<string> | undefined;
  /** `FNPOLL_BENCH_JSON`: also write the rows as JSON to this file. */
  json: string | undefined;
}

/** Integer from the environment, or `fallback`; a bad value is an error that names the variable. */
export function envInt(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name}="${raw}" is not a whole number >= ${min}`);
  return n;
}

/**
 * Variables Node acts on at every start, before any of fnpoll's code runs: NODE_OPTIONS adds
 * flags, NODE_EXTRA_CA_CERTS makes it read and parse a PEM bundle (~40 ms of a ~110 ms start on
 * the development machine, whose sandbox sets it), the others turn on coverage, debug output or
 * a compile cache. cron and systemd timers start fnpoll without them, so the measured programs
 * (fnpoll, `node -e 0`, the floor caller; binkd ignores them) run without them too, unless
 * FNPOLL_BENCH_NODE_ENV=keep. The header names what was removed.
 */
export const NODE_START_ENV = ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'NODE_V8_COVERAGE', 'NODE_DEBUG', 'NODE_DEBUG_NATIVE', 'NODE_COMPILE_CACHE', 'NODE_PENDING_DEPRECATION'];

/** Remove NODE_START_ENV from this process's environment, which every child inherits; returns the names removed. */
export function dropNodeStartEnv(env: NodeJS.ProcessEnv): string[] {
  const mode = env['FNPOLL_BENCH_NODE_ENV'];
  if (mode !== undefined && mode !== '' && mode !== 'keep') throw new Error(`FNPOLL_BENCH_NODE_ENV="${mode}" is not "keep"`);
  if (mode === 'keep') return [];
  const removed = NODE_START_ENV.filter((name) => env[name] !== undefined);
  for (const name of removed) delete env[name];
  return removed;
}

const SHM = '/dev/shm';

function writableDir(dir: string): boolean {
  try {
    accessSync(dir, fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const scaleText = (env['FNPOLL_BENCH_SCALE'] ?? 'full').toLowerCase();
  if (scaleText !== 'small' && scaleText !== 'full') throw new Error(`FNPOLL_BENCH_SCALE="${scaleText}" is not small or full`);
  const scale: Scale = scaleText;
  const onlyText = env['FNPOLL_BENCH_ONLY'];
  const only = onlyText ? new Set(onlyText.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) : undefined;
  let dir = env['FNPOLL_BENCH_DIR'];
  let dirKind: string;
  if (dir) dirKind = 'FNPOLL_BENCH_DIR';
  else if (writableDir(SHM)) {
    // tmpfs on both sides: the disk's write-back would otherwise add noise to every transfer.
    dir = SHM;
    dirKind = 'tmpfs';
  } else {
    dir = tmpdir();
    dirKind = 'OS temp dir';
  }
  return {
    scale,
    rounds: envInt(env, 'FNPOLL_BENCH_ROUNDS', scale === 'full' ? 3 : 1),
    only,
    dir,
    dirKind: `${dirKind} (${dir})`,
    diskDir: env['FNPOLL_BENCH_DISK_DIR'] || tmpdir(),
    rows: env['FNPOLL_BENCH_ROWS'] ? new Set(env['FNPOLL_BENCH_ROWS'].split(',').map((s) => s.trim()).filter(Boolean)) : undefined,
    json: env['FNPOLL_BENCH_JSON'] || undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Statistics

/** The median (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Least-squares slope and intercept of y over x, and how well a line fits (r²). */
export function linearFit(xs: readonly number[], ys: readonly number[]): { slope: number; intercept: number; r2: number } {
  const n = xs.length;
  if (n < 2 || ys.length !== n) throw new RangeError('linearFit needs two or more (x, y) pairs');
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const r2 = sxx === 0 || syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { slope, intercept: my - slope * mx, r2 };
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmtMs(ms: number): string {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms.toFixed(ms >= 100 ? 0 : 1)} ms`;
}

const MB = 1024 * 1024;

export function fmtMB(bytes: number): string {
  return `${(bytes / MB).toFixed(bytes >= 100 * MB ? 0 : 1)} MB`;
}

export function fmtRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / MB).toFixed(2)} MB/s`;
}

/** One line of the result table. `ratio` and `target` are shown as given; `met` decides the verdict. */
export interface Row {
  /** Short id, e.g. `1a`. */
  id: string;
  what: string;
  fnpoll: string;
  baseline: string;
  ratio: string;
  target: string;
  /** undefined: informational (no target). */
  met: boolean | undefined;
  /** Extra facts for the notes under the table (rounds, raw values). */
  note?: string;
}

/** A GitHub-flavoured Markdown table, so the README can quote it as it is. */
export function formatTable(rows: readonly Row[]): string {
  const head = ['#', 'benchmark', 'fnpoll', 'baseline', 'ratio', 'target', 'result'];
  const body = rows.map((r) => [r.id, r.what, r.fnpoll, r.baseline, r.ratio, r.target, r.met === undefined ? '-' : r.met ? 'met' : 'MISSED']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Child processes

export interface Measured {
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Wall time from spawn to exit, ms. */
  wallMs: number;
  /** Peak resident set of the measured program, bytes; undefined when not asked for. */
  peakRss: number | undefined;
  stdout: string;
  stderr: string;
}

export interface MeasureOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Also measure peak RSS. Through `/usr/bin/time -f %M` when present, else by polling VmHWM. */
  rss?: boolean;
  /** Kill the process (group) after this long; the result then has signal SIGKILL. */
  timeoutMs?: number;
  /** Make the child a process-group leader and kill the whole group on timeout (binkd forks). */
  group?: boolean;
}

const GNU_TIME = '/usr/bin/time';
let gnuTimeChecked: boolean | undefined;

function haveGnuTime(): boolean {
  if (gnuTimeChecked === undefined) {
    try {
      accessSync(GNU_TIME, fsConstants.X_OK);
      gnuTimeChecked = true;
    } catch {
      gnuTimeChecked = false;
    }
  }
  return gnuTimeChecked;
}

let seq = 0;

/**
 * Run `cmd args` and time it. With `rss`, GNU time reports the child's ru_maxrss (exact, from
 * wait4) into a file of its own, so the program's stderr stays clean; without GNU time, VmHWM
 * is polled every 10 ms (it is a high-water mark, so a late read still sees the peak reached).
 */
export async function measure(cmd: string, args: readonly string[], opts: MeasureOptions = {}): Promise<Measured> {
  const viaTime = opts.rss === true && haveGnuTime();
  const rssFile = viaTime ? join(tmpdir(), `fnpoll-bench-rss-${process.pid}-${++seq}.txt`) : undefined;
  const file = viaTime ? GNU_TIME : cmd;
  const argv = viaTime ? ['-f', '%M', '-o', rssFile!, cmd, ...args] : [...args];
  const started = performance.now();
  const child = spawn(file, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.group === true,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  let polledPeak = 0;
  let poller: NodeJS.Timeout | undefined;
  if (opts.rss && !viaTime && child.pid !== undefined) {
    const pid = child.pid;
    const poll = async (): Promise<void> => {
      const kb = await readVmHwm(pid);
      if (kb !== undefined) polledPeak = Math.max(polledPeak, kb * 1024);
    };
    poller = setInterval(() => void poll(), 10);
  }
  let timer: NodeJS.Timeout | undefined;
  if (opts.timeoutMs) {
    timer = setTimeout(() => {
      if (child.pid === undefined) return;
      try {
        process.kill(opts.group ? -child.pid : child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs);
  }
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve({ code: c, signal: s }));
  });
  const wallMs = performance.now() - started;
  clearTimeout(timer);
  clearInterval(poller);
  let peakRss: number | undefined;
  if (rssFile) {
    const text = await readFile(rssFile, 'utf8').catch(() => '');
    await rm(rssFile, { force: true });
    // GNU time prints "Command exited with non-zero status N" before the value when the child failed.
    const kb = Number(text.trim().split('\n').pop());
    peakRss = Number.isFinite(kb) && kb > 0 ? kb * 1024 : undefined;
  } else if (opts.rss) {
    peakRss = polledPeak || undefined;
  }
  return {
    pid: child.pid,
    code,
    signal,
    wallMs,
    peakRss,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
  };
}

/** VmHWM of a live process in kB, or undefined once it is gone. */
export async function readVmHwm(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Throw with the output when a measured run did not exit as expected. */
export function expectExit(m: Measured, code: number, what: string): void {
  if (m.code !== code) {
    const tail = (s: string): string => s.split('\n').slice(-15).join('\n');
    throw new Error(`${what}: exited ${m.code} (signal ${m.signal}), expected ${code}\nstdout:\n${tail(m.stdout)}\nstderr:\n${tail(m.stderr)}`);
  }
}

/** A line of progress on stderr (the table goes to stdout). */
export function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}
