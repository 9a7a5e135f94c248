/**
 * Build step (`npm run build`, after tsc and esbuild): writes V8's code cache for the single-file
 * build (src/boot.cts explains why). It compiles the bundle from source, runs the command cron
 * runs most often (an idle `fnpoll run`: 100 hubs, all polled a minute ago, an empty outbound) in
 * this process, then saves the bytecode V8 produced. Nothing else is exercised: the cache should
 * hold what a start-up needs, not the whole program.
 *
 * Fails the build (exit 1) when the run does not end as an idle run should.
 */
import { mkdtemp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CODE_CACHE, loadBundle } from '../boot.cjs';
import { loadConfig } from '../config/load.js';
import { applyOutcome } from '../poll/backoff.js';
import { serializeState, type State } from '../poll/state.js';

const HUBS = 100;
const SESSIONS = 10;

async function idleNode(dir: string): Promise<string> {
  await mkdir(join(dir, 'outbound'), { recursive: true });
  await mkdir(join(dir, 'inbound'), { recursive: true });
  const lines = [
    '[node]',
    'address = 2:5020/99@fidonet',
    'outbound = outbound',
    'inbound = inbound',
    '',
    '[poller]',
    'state_file = state.json',
    'log_file = fnpoll.log',
    'poll_interval = 1h',
    '',
  ];
  for (let i = 1; i <= HUBS; i++) {
    lines.push(`[hub${i}]`, `hub_address = 2:${5000 + Math.floor(i / 50)}/${i % 50 + 1}@fidonet`);
    lines.push(`hub_hostname = hub${i}.example.net`, `password = secret${i}`, '');
  }
  const configFile = join(dir, 'fnpoll.ini');
  await writeFile(configFile, lines.join('\n'));

  // A realistic state: every hub with a full history, the last success a minute ago.
  const config = await loadConfig(configFile);
  const now = Date.now();
  const state: State = { version: 1, hubs: {} };
  for (const hub of config.hubs) {
    let hs = undefined;
    for (let s = SESSIONS; s >= 1; s--) {
      const startedAt = now - 60_000 - (s - 1) * 3_600_000;
      const stats = { startedAt, durationMs: 1200, filesSent: 3, filesReceived: 2, bytesSent: 40_000, bytesReceived: 25_000 };
      hs = applyOutcome(hs, { ok: true, stats }, hub, startedAt + 1200, Math.random);
    }
    state.hubs[hub.key] = hs!;
  }
  await writeFile(config.poller.stateFile, serializeState(state));
  return configFile;
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'fnpoll-train-'));
  try {
    const configFile = await idleNode(dir);
    const { cli, script } = loadBundle({ cache: false });
    const said: string[] = [];
    const io = { out: (t: string) => void said.push(t), err: (t: string) => void said.push(t) };
    const code = await cli.main(['run', '-c', configFile], io);
    process.exitCode = 0;
    if (code !== 0 || said.length > 0) {
      process.stderr.write(`train-cache: the idle run ended with exit ${code}: ${said.join('').trim()}\n`);
      return 1;
    }
    const data = script.createCachedData();
    await writeFile(`${CODE_CACHE}.tmp`, data);
    await rename(`${CODE_CACHE}.tmp`, CODE_CACHE);
    return 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
