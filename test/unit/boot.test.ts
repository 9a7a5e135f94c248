/**
 * Start-up (src/boot.cts): bin/fnpoll.cjs runs the single-file build with V8's code cache, and
 * `--debug` loads it with source maps so that stack traces name the TypeScript sources.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { BUNDLE, CODE_CACHE, loadBundle } from '../../src/boot.cjs';
import type { TestNode } from '../helpers/node.js';
import { Cleanups } from '../helpers/interop.js';

describe('start-up from the single-file build', () => {
  const cleanups = new Cleanups();
  after(() => cleanups.run());
  const node = (): Promise<TestNode> => cleanups.makeNode({ hubs: [{ name: 'hub1', address: '2:5020/1@fidonet', port: 1, password: 'pw' }] });

  test('the build wrote a code cache that this node accepts', async () => {
    // A cache V8 refuses (another Node, a bundle rebuilt without training) costs ~8 ms per run
    // and nothing else would notice.
    assert.ok((await readFile(CODE_CACHE)).length > 10_000, `${CODE_CACHE} is missing or tiny`);
    const loaded = loadBundle();
    assert.equal(loaded.cacheRejected, false);
    assert.equal(typeof loaded.cli.main, 'function');
    assert.equal(loadBundle({ cache: false }).cacheRejected, undefined);
  });

  test('the bundle runs the same CLI: a dry run through bin/fnpoll.cjs', async () => {
    const n = await node();
    const r = await n.run(['run', '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^poll {2}hub1 {2}2:5020\/1@fidonet +never polled successfully$/m);
    assert.match(r.stdout, /dry run: 1 of 1 hub would be polled; nothing was changed/);
    assert.match(await readFile(BUNDLE, 'utf8'), /^var __fnpollModuleUrl = /);
  });

  test('the bundle is ASCII without comments: every run reads it whole into a string', async () => {
    // tsc keeps the comments and esbuild would pass them on; with them (and the odd "§" or "→",
    // which makes V8 build a two-byte string) the file was 567 KB and took ~9 ms to read into a
    // string on the development VM, without them 406 KB and ~4 ms (an idle run ~9 ms sooner).
    const bytes = await readFile(BUNDLE);
    const nonAscii = bytes.findIndex((b) => b > 0x7f);
    assert.equal(nonAscii, -1, `non-ASCII byte at ${nonAscii}: ${bytes.subarray(Math.max(0, nonAscii - 40), nonAscii + 8).toString()}`);
    assert.doesNotMatch(bytes.toString('latin1'), /^\s*(\/\*\*|\/\/ )/m);
  });

  test('an error is one line; with --debug, a stack trace naming the TypeScript sources', async () => {
    const n = await node();
    await writeFile(n.configPath, '[node]\naddress = not-an-address\n');
    const plain = await n.run(['status']);
    assert.equal(plain.code, 78);
    assert.doesNotMatch(plain.stderr, /\n\s+at /);
    assert.match(plain.stderr, /\[node\] address: "not-an-address"/);

    const debug = await n.run(['status', '--debug']);
    assert.equal(debug.code, 78);
    assert.match(debug.stderr, /^ConfigError: /m);
    assert.match(debug.stderr, /\n\s+at .*src\/config\/load\.ts:\d+:\d+/);
  });
});
