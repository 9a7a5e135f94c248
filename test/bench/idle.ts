/**
 * Issue 6, item 2: `fnpoll run` with 100 hubs configured and nothing due, against `node -e 0` on
 * the same machine. Target: wall time ≤ 1.5 × node's, peak RSS ≤ 60 MB.
 *
 * "Nothing due": every hub polled successfully a minute ago (poll_frequency 1 h), a full history
 * in the state file, an empty outbound, and `log_file` set, as a real cron setup has.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serializeState, type HubState, type State } from '../../src/poll/state.js';
import { HISTORY_LIMIT } from '../../src/poll/backoff.js';
import { BenchNode } from './node.js';
import { expectExit, fmtMB, fmtMs, measure, median, progress, type BenchSettings, type Row } from './lib.js';

const HUBS = 100;
const RATIO_TARGET = 1.5;
const RSS_TARGET = 60 * 1024 * 1024;

function hubState(now: number): HubState {
  const history = Array.from({ length: HISTORY_LIMIT }, (_, k) => ({
    startedAt: now - 60_000 - (HISTORY_LIMIT - 1 - k) * 3_600_000,
    durationMs: 1_200,
    ok: true,
    filesSent: 3,
    filesReceived: 2,
    bytesSent: 40_000,
    bytesReceived: 25_000,
  }));
  return {
    lastAttempt: now - 60_000,
    lastSuccess: now - 60_000,
    lastResult: { ok: true },
    consecutiveFailures: 0,
    totals: { sessionsOk: 500, sessionsFailed: 3, filesSent: 1500, filesReceived: 1000, bytesSent: 2e7, bytesReceived: 1.2e7 },
    history,
  };
}

/**
 * A nodelist in FTS-5000 form, written by the bench (no real list is committed): `lines` lines,
 * zone 2, nets of 100 nodes, every node with IBN; the bench's hubs are in it.
 */
export function benchNodelist(lines: number): string {
  const out = [';A bench nodelist -- Day number 339 : 00000', 'Zone,2,Europe,Somewhere,ZC,-Unpublished-,300,CM,IBN'];
  for (let net = 5000; out.length < lines; net++) {
    out.push(`Host,${net},Net_${net},City,NC_${net},-Unpublished-,300,CM,IBN:nc${net}.example.net`);
    for (let node = 1; node <= 100 && out.length < lines; node++) {
      out.push(`,${node},BBS_${node},City,Sysop,-Unpublished-,300,CM,IBN`);
    }
  }
  return `${out.join('\r\n')}\r\n`;
}

/** Full-size FidoNet nodelist: ~30 000 lines, over 1 MB (issue 12). */
const NODELIST_LINES = 30_000;

export async function benchIdle(settings: BenchSettings, root: string): Promise<Row[]> {
  const hubs = Array.from({ length: HUBS }, (_, i) => ({
    name: `hub${i + 1}`,
    address: `2:${5000 + Math.floor(i / 50)}/${(i % 50) + 1}@fidonet`,
    port: 24554,
    password: `secret${i + 1}`,
  }));
  const rows = await idleRows(settings, join(root, 'idle'), hubs, undefined);
  // The same, with every hub looked up in a full-size nodelist (`hub_hostname = *`): an idle run
  // must not read it.
  const listDir = join(root, 'idle-nodelist');
  await mkdir(listDir, { recursive: true });
  const list = join(listDir, 'NODELIST.339');
  const text = benchNodelist(NODELIST_LINES);
  await writeFile(list, text);
  const looked = hubs.map((h) => ({ ...h, host: '*' }));
  rows.push(...(await idleRows(settings, listDir, looked, { path: list, bytes: Buffer.byteLength(text) })));
  return rows;
}

async function idleRows(
  settings: BenchSettings,
  dir: string,
  hubs: { name: string; address: string; port: number; password: string; host?: string }[],
  nodelist: { path: string; bytes: number } | undefined,
): Promise<Row[]> {
  await mkdir(dir, { recursive: true });
  const node = await BenchNode.create(dir, { address: '2:5020/99@fidonet', hubs, poller: { poll_interval: '1h' } });
  if (nodelist) {
    const config = await readFile(node.configPath, 'utf8');
    await writeFile(node.configPath, config.replace('[node]\n', `[node]\nnodelist = ${nodelist.path}\n`));
  }
  const label = nodelist ? `, nodelist ${fmtMB(nodelist.bytes)} (${NODELIST_LINES} lines)` : '';
  const now = Date.now();
  const state: State = { version: 1, hubs: {} };
  for (const h of hubs) state.hubs[h.name] = hubState(now);
  await writeFile(node.stateFile, serializeState(state));
  const stateBefore = await readFile(node.stateFile, 'utf8');

  // Verify once that the scenario is what it claims: nothing due, nothing written.
  const dry = await measure(process.execPath, node.args('run', '--dry-run'));
  expectExit(dry, 0, 'fnpoll run --dry-run (idle)');
  if (!dry.stdout.includes(`0 of ${HUBS} hubs would be polled`)) throw new Error(`idle: some hub is due:\n${dry.stdout.slice(-400)}`);

  const runs = settings.scale === 'full' ? 21 : 5;
  const warm = 3;
  const fn: number[] = [];
  const base: number[] = [];
  progress(`idle: ${warm} warm-up + ${runs} runs each of node -e 0 and fnpoll run (${HUBS} hubs), interleaved`);
  for (let i = 0; i < warm + runs; i++) {
    const b = await measure(process.execPath, ['-e', '0']);
    const f = await measure(process.execPath, node.args('run'));
    expectExit(f, 0, 'fnpoll run (idle)');
    if (f.stdout || f.stderr) throw new Error(`idle: fnpoll run printed something:\n${f.stdout}${f.stderr}`);
    if (i >= warm) {
      base.push(b.wallMs);
      fn.push(f.wallMs);
    }
  }
  const rssRuns = settings.scale === 'full' ? 5 : 2;
  const rss: number[] = [];
  const baseRss: number[] = [];
  for (let i = 0; i < rssRuns; i++) {
    const f = await measure(process.execPath, node.args('run'), { rss: true });
    expectExit(f, 0, 'fnpoll run (idle, RSS)');
    if (f.peakRss) rss.push(f.peakRss);
    const b = await measure(process.execPath, ['-e', '0'], { rss: true });
    if (b.peakRss) baseRss.push(b.peakRss);
  }
  if ((await readFile(node.stateFile, 'utf8')) !== stateBefore) throw new Error('idle: fnpoll run changed the state file');
  if (nodelist && (await readdir(dir)).some((f) => f.includes('nodelist-index'))) {
    throw new Error('idle: an idle run indexed the nodelist');
  }
  const logWritten = await stat(node.logFile).then(
    () => true,
    () => false,
  );

  const f = median(fn);
  const b = median(base);
  const ratio = f / b;
  const rows: Row[] = [
    {
      id: '2',
      what: `idle run, ${HUBS} hubs, nothing due${label} (wall)`,
      fnpoll: fmtMs(f),
      baseline: `${fmtMs(b)} (node -e 0)`,
      ratio: ratio.toFixed(2),
      target: `≤ ${RATIO_TARGET}`,
      met: ratio <= RATIO_TARGET,
      note: `median of ${runs} runs each after ${warm} warm-up; log file ${logWritten ? 'was' : 'not'} created`,
    },
  ];
  if (rss.length) {
    const peak = Math.max(...rss);
    rows.push({
      id: '2',
      what: `idle run, ${HUBS} hubs${label}: peak RSS (max of ${rss.length})`,
      fnpoll: fmtMB(peak),
      baseline: baseRss.length ? `${fmtMB(Math.max(...baseRss))} (node -e 0)` : '-',
      ratio: '-',
      target: `≤ ${fmtMB(RSS_TARGET)}`,
      met: peak <= RSS_TARGET,
    });
  }
  return rows;
}
