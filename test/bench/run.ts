/**
 * `npm run bench`: issue 6's benchmarks, each comparison run side by side in this process tree,
 * printed as one Markdown table of medians, ratios and targets (met / MISSED).
 *
 * Environment:
 *   FNPOLL_BENCH_SCALE=small   a quick smoke run (small payloads, one round); default full
 *   FNPOLL_BENCH_ROUNDS=N      measured rounds per comparison after one warm-up (default 3)
 *   FNPOLL_BENCH_ONLY=a,b      only these scenarios: throughput, idle, planning, concurrency,
 *                              memory, bandwidth, durability
 *   FNPOLL_BENCH_ROWS=1b,1b-disk  only these rows of the scenarios run (where a scenario allows)
 *   FNPOLL_BENCH_DIR=dir       where everything is written (default tmpfs if present, else the
 *                              OS temp dir); removed afterwards
 *   FNPOLL_BENCH_DISK_DIR=dir  where the "files on disk" rows live (default the OS temp dir)
 *   FNPOLL_BENCH_JSON=file     also write the rows as JSON
 *   FNPOLL_KEEP_TMP=1          keep the bench directory for inspection
 *   FNPOLL_BENCH_NODE_ENV=keep  keep NODE_OPTIONS, NODE_EXTRA_CA_CERTS and the like for the
 *                              measured programs (default: removed, as cron starts them; below)
 *
 * Exit status: 0 when every run was verified (targets missed or not), 1 when a scenario failed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { dropNodeStartEnv, formatTable, NODE_START_ENV, progress, readSettings, type BenchSettings, type Row } from './lib.js';
import { benchIdle } from './idle.js';
import { benchPlanning } from './planning.js';
import { benchThroughput } from './throughput.js';
import { benchConcurrency } from './concurrency.js';
import { benchMemory, benchBandwidth } from './memory.js';
import { benchDurability } from './durability.js';

type Scenario = (settings: BenchSettings, root: string) => Promise<Row[]>;

const SCENARIOS: ReadonlyArray<readonly [string, Scenario]> = [
  ['throughput', benchThroughput],
  ['idle', benchIdle],
  ['planning', benchPlanning],
  ['concurrency', benchConcurrency],
  ['memory', benchMemory],
  ['bandwidth', benchBandwidth],
  ['durability', benchDurability],
];

async function main(): Promise<number> {
  const settings = readSettings();
  const keptNodeEnv = process.env['FNPOLL_BENCH_NODE_ENV'] === 'keep' ? NODE_START_ENV.filter((n) => process.env[n] !== undefined) : [];
  const droppedNodeEnv = dropNodeStartEnv(process.env);
  if (settings.only) {
    const known = new Set(SCENARIOS.map(([n]) => n));
    for (const n of settings.only) if (!known.has(n)) throw new Error(`FNPOLL_BENCH_ONLY: unknown scenario "${n}" (known: ${[...known].join(', ')})`);
  }
  const root = await mkdtemp(join(settings.dir, 'fnpoll-bench-'));
  // Every temp dir the helpers make (binkd hubs, callers) lands next to ours, on the same file system.
  process.env['TMPDIR'] = root;
  const started = performance.now();
  const rows: Row[] = [];
  const failures: string[] = [];
  try {
    for (const [name, run] of SCENARIOS) {
      if (settings.only && !settings.only.has(name)) continue;
      const t0 = performance.now();
      progress(`${name}: start`);
      try {
        rows.push(...(await run(settings, root)));
      } catch (err) {
        const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
        failures.push(`${name}: ${msg}`);
        rows.push({ id: '!', what: `${name}: FAILED (see below)`, fnpoll: '-', baseline: '-', ratio: '-', target: '-', met: false });
      }
      progress(`${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    if (process.env['FNPOLL_KEEP_TMP'] === '1') progress(`FNPOLL_KEEP_TMP=1: kept ${root}`);
    else await rm(root, { recursive: true, force: true });
  }
  const total = (performance.now() - started) / 1000;
  const cpu = cpus();
  const head = [
    `fnpoll bench, scale ${settings.scale}, ${settings.rounds} measured round(s) after a warm-up; node ${process.version}`,
    `${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}, load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `files on ${settings.dirKind.replace(/ \(.*\)$/, '')}; whole bench ${total.toFixed(0)} s`,
    droppedNodeEnv.length
      ? `environment as cron's: ${droppedNodeEnv.join(', ')} removed for the measured programs (FNPOLL_BENCH_NODE_ENV=keep keeps them)`
      : keptNodeEnv.length
        ? `environment: ${keptNodeEnv.join(', ')} kept (FNPOLL_BENCH_NODE_ENV=keep): Node acts on them at every start, cron does not set them`
        : "environment as cron's: no NODE_OPTIONS, NODE_EXTRA_CA_CERTS or the like was set",
  ];
  const notes = rows.filter((r) => r.note).map((r) => `- ${r.id} ${r.what}: ${r.note}`);
  process.stdout.write(`${head.join('\n')}\n\n${formatTable(rows)}\n\n${notes.join('\n')}\n`);
  if (failures.length) process.stdout.write(`\nFailures:\n${failures.join('\n\n')}\n`);
  if (settings.json) await writeFile(settings.json, `${JSON.stringify({ settings: { ...settings, only: settings.only && [...settings.only] }, totalSeconds: total, rows, failures }, null, 2)}\n`);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
