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

// The interop tests run the real peers from Debian's packages. On a fresh machine, install them
// (as root, with apt-get) rather than skip a test; otherwise say exactly what is missing.
if (dirs.some((d) => d.endsWith('interop'))) ensurePeers();

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function ensurePeers() {
  // systemd-analyze checks the shipped units, man finds the page of an `npm i -g` (install test);
  // faketime moves the clock (disk and clock suite); reaching hubs (issue 12): DNS, binkps in front
  // of binkd, SOCKS5, certificates, a netns.
  const wanted = {
    binkd: 'binkd',
    crashmail: 'crashmail',
    promtool: 'prometheus',
    'systemd-analyze': 'systemd',
    man: 'man-db',
    faketime: 'faketime',
    dnsmasq: 'dnsmasq-base',
    stunnel4: 'stunnel4',
    danted: 'dante-server',
    openssl: 'openssl',
    ip: 'iproute2',
    useradd: 'passwd',
  };
  const missing = Object.entries(wanted).filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !have('apt-get')) {
    console.error(`interop tests need Debian packages: ${missing.join(' ')} (apt-get install ${missing.join(' ')})`);
    process.exit(1);
  }
  console.error(`installing ${missing.join(' ')} for the interop tests (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const steps = [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...missing]];
  for (const args of steps) {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (r.status !== 0) {
      console.error(`apt-get ${args.join(' ')} failed (exit ${r.status})`);
      process.exit(1);
    }
  }
}

const files = dirs.flatMap((d) => collect(d, []));
if (files.length === 0) {
  console.error(`no test files under ${dirs.join(', ')} (did tsc run?)`);
  process.exit(1);
}
// Local times (status, stats, reasons) are asserted as text: pin the zone so that every machine
// prints the same. Tests that are about the zone set TZ themselves.
const r = spawnSync(process.execPath, ['--test', ...passThrough, ...files], { stdio: 'inherit', env: { ...process.env, TZ: 'UTC' } });
process.exit(r.status ?? 1);
