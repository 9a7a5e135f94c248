/**
 * Issue 6, item 3: the cost of planning. `fnpoll run --dry-run` with 1000 hubs configured and an
 * outbound holding 100 000 flow-file lines and 10 000 netmail packets spread over them. Target:
 * ≤ 1 s and peak RSS ≤ 200 MB, growing linearly (100, 1000 and 5000 hubs at the same density).
 *
 * Per hub: 100 flow-file lines in a `.flo`, `.dlo` and `.hlo` (every directive, one line in ten
 * already sent `~`), and 10 netmail packets: the five flavours in the outbound root and in
 * `outbound.002` (FTS-5005 §2 lets a tosser put the default zone there; fnpoll reads both). One
 * packet in ten is a bare header (≤ 60 bytes), which binkd and fnpoll drop rather than send.
 * Lines name files from a shared pool of at most 100 000 real files, distinct within each hub.
 * The state file has every hub polled a minute ago with a full history.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serializeState, type State } from '../../src/poll/state.js';
import { HISTORY_LIMIT } from '../../src/poll/backoff.js';
import { BenchNode } from './node.js';
import { expectExit, fmtMB, fmtMs, linearFit, measure, median, progress, type BenchSettings, type Row } from './lib.js';

export const LINES_PER_HUB = 100;
export const NETMAIL_PER_HUB = 10;
const POOL_MAX = 100_000;
const FILES_PER_DIR = 1000;
const TIME_TARGET_MS = 1000;
const RSS_TARGET = 200 * 1024 * 1024;
const TARGET_HUBS = 1000;
/** Linear: the cost of a hub added between the middle and the largest size ≤ this × between the smallest and the middle. */
const LINEAR_SLACK = 1.25;

const FLOW_SPLIT: ReadonlyArray<readonly [string, number]> = [
  ['flo', 50],
  ['dlo', 30],
  ['hlo', 20],
];
const NETMAIL_EXTS = ['iut', 'cut', 'dut', 'out', 'hut'];
const DIRECTIVES = ['^', '#', '', '-', '@', '^', '#', '', '^', '~'];

const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');

export function hubAddress(i: number): { net: number; node: number } {
  return { net: 1000 + Math.floor(i / 200), node: (i % 200) + 1 };
}

/** What the dry run must report for every hub: sendable files (netmail > 60 bytes + unsent lines). */
export const EXPECTED_FILES_PER_HUB =
  NETMAIL_PER_HUB - NETMAIL_PER_HUB / 10 + LINES_PER_HUB - LINES_PER_HUB / DIRECTIVES.length;

/** Build the outbound (and the file pool) for `hubs` hubs under `node`. Synchronous writes: tmpfs, many tiny files. */
export function buildPlanningOutbound(node: BenchNode, hubs: number, poolDir: string): void {
  const pool = Math.min(POOL_MAX, hubs * LINES_PER_HUB);
  for (let d = 0; d * FILES_PER_DIR < pool; d++) {
    const dir = join(poolDir, hex(d, 3));
    mkdirSync(dir, { recursive: true });
    for (let k = 0; k < FILES_PER_DIR && d * FILES_PER_DIR + k < pool; k++) writeFileSync(join(dir, `f${hex(k, 3)}.bin`), 'x'.repeat(100 + (k % 7)));
  }
  const poolPath = (n: number): string => join(poolDir, hex(Math.floor(n / FILES_PER_DIR), 3), `f${hex(n % FILES_PER_DIR, 3)}.bin`);
  const zoneDir = `${node.outbound}.002`;
  mkdirSync(zoneDir, { recursive: true });
  let line = 0;
  for (let i = 0; i < hubs; i++) {
    const { net, node: nn } = hubAddress(i);
    const stem = hex(net, 4) + hex(nn, 4);
    for (const [ext, count] of FLOW_SPLIT) {
      const text: string[] = [];
      for (let k = 0; k < count; k++, line++) text.push(`${DIRECTIVES[line % DIRECTIVES.length]}${poolPath(line % pool)}`);
      writeFileSync(join(node.outbound, `${stem}.${ext}`), `${text.join('\n')}\n`);
    }
    for (let k = 0; k < NETMAIL_PER_HUB; k++) {
      const dir = k < 5 ? node.outbound : zoneDir;
      // One in ten is a bare packet header: dropped, not sent.
      const size = k === 7 ? 58 : 200 + ((i * 31 + k * 17) % 3000);
      writeFileSync(join(dir, `${stem}.${NETMAIL_EXTS[k % 5]}`), Buffer.alloc(size, 0x20));
    }
  }
}

function planningState(hubs: number, now: number): State {
  const state: State = { version: 1, hubs: {} };
  for (let i = 0; i < hubs; i++) {
    state.hubs[`hub${i + 1}`] = {
      lastAttempt: now - 60_000,
      lastSuccess: now - 60_000,
      lastResult: { ok: true },
      consecutiveFailures: 0,
      totals: { sessionsOk: 100, sessionsFailed: 1, filesSent: 900, filesReceived: 700, bytesSent: 9e6, bytesReceived: 7e6 },
      history: Array.from({ length: HISTORY_LIMIT }, (_, k) => ({
        startedAt: now - 60_000 - k * 3_600_000,
        durationMs: 900,
        ok: true,
        filesSent: 9,
        filesReceived: 7,
        bytesSent: 90_000,
        bytesReceived: 70_000,
      })),
    };
  }
  return state;
}

interface SizeResult {
  hubs: number;
  wallMs: number;
  peakRss: number | undefined;
}

async function measureSize(settings: BenchSettings, root: string, hubs: number): Promise<SizeResult> {
  const dir = join(root, `planning-${hubs}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const hubList = Array.from({ length: hubs }, (_, i) => {
    const a = hubAddress(i);
    return { name: `hub${i + 1}`, address: `2:${a.net}/${a.node}@fidonet`, port: 24554, password: `pw${i + 1}` };
  });
  const node = await BenchNode.create(dir, { address: '2:5020/99@fidonet', hubs: hubList, poller: { poll_interval: '1h' } });
  progress(`planning: building ${hubs} hubs, ${hubs * LINES_PER_HUB} flow lines, ${hubs * NETMAIL_PER_HUB} packets`);
  buildPlanningOutbound(node, hubs, join(dir, 'files'));
  await writeFile(node.stateFile, serializeState(planningState(hubs, Date.now())));

  const walls: number[] = [];
  const rss: number[] = [];
  for (let r = 0; r < settings.rounds + 1; r++) {
    const m = await measure(process.execPath, node.args('run', '--dry-run'), { rss: true });
    expectExit(m, 0, `fnpoll run --dry-run (${hubs} hubs)`);
    verifyDryRun(m.stdout, hubs);
    if (r === 0) continue; // warm-up: page cache, dentries
    walls.push(m.wallMs);
    if (m.peakRss) rss.push(m.peakRss);
  }
  await rm(dir, { recursive: true, force: true });
  return { hubs, wallMs: median(walls), peakRss: rss.length ? Math.max(...rss) : undefined };
}

/** Every hub is listed, due for its immediate mail, with every sendable file counted. */
function verifyDryRun(stdout: string, hubs: number): void {
  const lines = stdout.split('\n').filter((l) => /^(poll|skip) /.test(l));
  if (lines.length !== hubs) throw new Error(`planning: dry run listed ${lines.length} hubs, expected ${hubs}`);
  for (const l of lines) {
    const m = /^poll .*immediate mail queued \((\d+) files,/.exec(l);
    if (!m || Number(m[1]) !== EXPECTED_FILES_PER_HUB) {
      throw new Error(`planning: expected "poll ... immediate mail queued (${EXPECTED_FILES_PER_HUB} files, ...)", got: ${l}`);
    }
  }
}

export async function benchPlanning(settings: BenchSettings, root: string): Promise<Row[]> {
  const sizes = settings.scale === 'full' ? [100, TARGET_HUBS, 5000] : [20, 100, 300];
  const results: SizeResult[] = [];
  for (const hubs of sizes) results.push(await measureSize(settings, root, hubs));

  const rows: Row[] = [];
  for (const r of results) {
    const atTarget = r.hubs === TARGET_HUBS;
    rows.push({
      id: '3',
      what: `dry run, ${r.hubs} hubs, ${r.hubs * LINES_PER_HUB} lines, ${r.hubs * NETMAIL_PER_HUB} packets`,
      fnpoll: fmtMs(r.wallMs),
      baseline: '-',
      ratio: `${((r.wallMs * 1000) / r.hubs).toFixed(0)} µs/hub`,
      target: atTarget ? `≤ ${fmtMs(TIME_TARGET_MS)}` : '-',
      met: atTarget ? r.wallMs <= TIME_TARGET_MS : undefined,
    });
    if (r.peakRss !== undefined) {
      rows.push({
        id: '3',
        what: `dry run, ${r.hubs} hubs: peak RSS`,
        fnpoll: fmtMB(r.peakRss),
        baseline: '-',
        ratio: `${((r.peakRss / r.hubs) / 1024).toFixed(0)} KB/hub`,
        target: atTarget ? `≤ ${fmtMB(RSS_TARGET)}` : '-',
        met: atTarget ? r.peakRss <= RSS_TARGET : undefined,
      });
    }
  }
  const [a, b, c] = results as [SizeResult, SizeResult, SizeResult];
  const low = (b.wallMs - a.wallMs) / (b.hubs - a.hubs);
  const high = (c.wallMs - b.wallMs) / (c.hubs - b.hubs);
  const fit = linearFit(
    results.map((r) => r.hubs),
    results.map((r) => r.wallMs),
  );
  rows.push({
    id: '3',
    what: `growth: ms per added hub, ${a.hubs}→${b.hubs} vs ${b.hubs}→${c.hubs}`,
    fnpoll: `${high.toFixed(3)} ms`,
    baseline: `${low.toFixed(3)} ms`,
    ratio: (high / low).toFixed(2),
    target: `≤ ${LINEAR_SLACK} (linear)`,
    met: high <= low * LINEAR_SLACK,
    note: `fit: ${fit.intercept.toFixed(0)} ms + ${fit.slope.toFixed(3)} ms/hub, r² ${fit.r2.toFixed(4)}`,
  });
  return rows;
}
