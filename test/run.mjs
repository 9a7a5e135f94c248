#!/usr/bin/env node
// Runs the compiled test files (dist/test/**/*.test.js) with node's own test runner.
// `node test/run.mjs [unit|interop ...]` limits the run to those folders. Explicit file lists
// keep helper modules under test/ from being mistaken for tests.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const areas = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('-'));
const dirs = (areas.length ? areas : ['unit', 'interop']).map((a) => join(root, a));

function collect(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries.sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = dirs.flatMap((d) => collect(d, []));
if (files.length === 0) {
  console.error(`no test files under ${dirs.join(', ')} (did tsc run?)`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', ...passThrough, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
