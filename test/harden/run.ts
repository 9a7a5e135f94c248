/**
 * `npm run harden`: runs every suite `dist/test/harden/*.suite.js`, prints one summary table of
 * their figures, and exits 1 when a figure that must be 0 is not (or a suite crashed or ran past
 * its time).
 *
 *   npm run harden                         every suite, full size
 *   npm run harden -- --small              every suite, the small size (as in npm test)
 *   npm run harden -- fuzz hostile         only these suites
 *
 * Each suite runs in a child process of its own (./child.ts), so that one that hangs for real (an
 * endless loop in synchronous code cannot be interrupted from inside) is killed at its time limit
 * and counted, and the others still run. The child sends its figures back over the IPC channel.
 */
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addFigures, summaryTable, violations, type Figures, type Size } from './lib.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** A whole suite, at most; FNPOLL_HARDEN_TIMEOUT (seconds) overrides. */
const SUITE_TIMEOUT_MS: Readonly<Record<Size, number>> = { full: 40 * 60_000, small: 10 * 60_000 };

function suiteTimeout(size: Size): number {
  const env = process.env['FNPOLL_HARDEN_TIMEOUT'];
  return env && /^\d+$/.test(env) ? Number(env) * 1000 : SUITE_TIMEOUT_MS[size];
}

function runSuite(file: string, size: Size, timeoutMs: number): Promise<Figures> {
  return new Promise((resolve) => {
    let figures: Figures | undefined;
    let timedOut = false;
    const child = fork(join(HERE, 'child.js'), [file, size], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('message', (m: unknown) => {
      if (m && typeof m === 'object' && 'figures' in m) figures = (m as { figures: Figures }).figures;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        process.stdout.write(`harden: ${file} ran past ${timeoutMs / 1000} s and was killed\n`);
        resolve({ ...figures, hangs: (figures?.hangs ?? 0) + 1 });
      } else if (!figures || code !== 0) {
        process.stdout.write(`harden: ${file} ended without figures (exit ${code ?? signal})\n`);
        resolve({ ...figures, failures: (figures?.failures ?? 0) + 1 });
      } else {
        resolve(figures);
      }
    });
  });
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const size: Size = args.includes('--small') || process.env['FNPOLL_HARDEN_SIZE'] === 'small' ? 'small' : 'full';
  const only = args.filter((a) => !a.startsWith('-'));
  const all = readdirSync(HERE).filter((n) => n.endsWith('.suite.js')).sort();
  const chosen = only.length ? all.filter((n) => only.includes(n.replace(/\.suite\.js$/, ''))) : all;
  const unknown = only.filter((o) => !all.includes(`${o}.suite.js`));
  if (unknown.length || chosen.length === 0) {
    process.stderr.write(`harden: no suite named ${unknown.join(', ') || '(none)'}; suites: ${all.map((n) => n.replace(/\.suite\.js$/, '')).join(', ')}\n`);
    return 64;
  }
  const started = Date.now();
  const columns: { name: string; figures: Figures }[] = [];
  for (const file of chosen) {
    const name = file.replace(/\.suite\.js$/, '');
    process.stdout.write(`\nharden: ${name} (${size})\n`);
    columns.push({ name, figures: await runSuite(join(HERE, file), size, suiteTimeout(size)) });
  }
  const total = columns.reduce<Figures>((t, c) => addFigures(t, c.figures), {});
  const bad = violations(total);
  process.stdout.write(`\nharden: ${size} run of ${columns.map((c) => c.name).join(', ')} in ${Math.round((Date.now() - started) / 1000)} s\n`);
  process.stdout.write(`${summaryTable(columns)}\n`);
  process.stdout.write(bad.length ? `harden: FAILED: ${bad.join(', ')}\n` : 'harden: every figure that must be 0 is 0\n');
  return bad.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`harden: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
