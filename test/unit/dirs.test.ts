/**
 * `mkdir -p` that ends: Node's recursive mkdir loops forever under /proc (the parent exists, the
 * child is refused with ENOENT). These tests run the real calls against the real /proc, in a
 * child process with a kill timer, so a regression fails instead of hanging the suite.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirs, makeDirsSync, pseudoFilesystem } from '../../src/dirs.js';
import { BIN, TestNode } from '../helpers/node.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

/** Longer than any answer needs, far shorter than the spin it guards against. */
const HANG_GUARD_MS = 20_000;

describe('makeDirs', () => {
  const dirs: string[] = [];
  const nodes: TestNode[] = [];
  after(async () => {
    for (const d of dirs) await removeTempDir(d);
    for (const n of nodes) await n.remove();
  });

  test('creates missing parents, and is a no-op when the directory exists', async () => {
    const root = await makeTempDir();
    dirs.push(root);
    const deep = join(root, 'a', 'b', 'c');
    await makeDirs(deep);
    assert.ok(statSync(deep).isDirectory());
    makeDirsSync(deep);
    await makeDirs(root);
  });

  test('a file in the way: ENOTDIR or EEXIST, not a loop', async () => {
    const root = await makeTempDir();
    dirs.push(root);
    const n = await TestNode.create({ hubs: [] });
    nodes.push(n);
    assert.throws(() => makeDirsSync(join(n.configPath, 'x')), { code: 'ENOTDIR' });
    assert.throws(() => makeDirsSync(n.configPath), { code: 'EEXIST' });
  });

  test('under /proc: ENOENT after one try (node\'s own recursive mkdir spins here)', () => {
    assert.throws(() => makeDirsSync('/proc/fnpoll-test/inbound/tmp'), { code: 'ENOENT' });
  });

  test('pseudoFilesystem names /proc and its missing children, and nothing for a temp dir', async () => {
    assert.equal(await pseudoFilesystem('/proc/fnpoll-test/x'), 'proc');
    const root = await makeTempDir();
    dirs.push(root);
    assert.equal(await pseudoFilesystem(join(root, 'missing')), undefined);
  });
});

describe('inbound under /proc (issue 11, defect 9)', () => {
  const nodes: TestNode[] = [];
  after(async () => {
    for (const n of nodes) await n.remove();
  });

  for (const [command, exit, line] of [
    ['check', 78, /\[node\] inbound: "\/proc\/fnpoll-test\/in" does not exist and cannot be created: "\/proc" is the kernel's proc filesystem/],
    ['run', 74, /\[node\] inbound: cannot create "\/proc\/fnpoll-test\/in": .*ENOENT/],
  ] as const) {
    test(`\`fnpoll ${command}\` fails at once with one line (exit ${exit})`, async () => {
      const n = await TestNode.create({ hubs: [{ name: 'hub', address: '2:5020/1@fidonet', port: 1 }] });
      nodes.push(n);
      const ini = readFileSync(n.configPath, 'utf8').replace(/^inbound = .*$/m, 'inbound = /proc/fnpoll-test/in');
      writeFileSync(n.configPath, ini);
      const r = spawnSync(process.execPath, [BIN, command, '-c', n.configPath], {
        encoding: 'utf8',
        timeout: HANG_GUARD_MS,
      });
      assert.equal(r.signal, null, `fnpoll ${command} had to be killed: it hung`);
      assert.equal(r.status, exit, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, line);
    });
  }
});
