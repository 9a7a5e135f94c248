/**
 * Start-up (src/boot.cts): bin/fnpoll.cjs runs the single-file build with V8's code cache, and
 * `--debug` loads it with source maps so that stack traces name the TypeScript sources.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serializeState } from '../../src/poll/state.js';
import { BUNDLE, CODE_CACHE, loadBundle } from '../../src/boot.cjs';
import type { TestNode } from '../helpers/node.js';
import { Cleanups } from '../helpers/interop.js';

/** dist/src/boot.cjs, loaded by a child that looks at what Node loaded. */
const BOOT_CJS = fileURLToPath(new URL('../../src/boot.cjs', import.meta.url));

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

  test('an idle run loads none of the I/O machinery it does not use (streams, fs/promises, net, TLS, DNS)', async () => {
    // Each costs an idle cron run milliseconds for nothing (src/files.ts fsp(), src/cli.ts).
    const n = await cleanups.makeNode({ hubs: [{ name: 'hub1', address: '2:5020/1@fidonet', port: 1, password: 'pw' }], poller: { poll_interval: '1h' } });
    const now = Date.now();
    await writeFile(n.stateFile, serializeState({ version: 1, hubs: { hub1: { lastAttempt: now - 60_000, lastSuccess: now - 60_000, lastResult: { ok: true }, consecutiveFailures: 0, totals: { sessionsOk: 1, sessionsFailed: 0, filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 }, history: [] } } }));
    const script = `
      const before = new Set(process.moduleLoadList);
      const { loadBundle } = require(${JSON.stringify(BOOT_CJS)});
      loadBundle().cli.main(['run', '-c', ${JSON.stringify(n.configPath)}], { out: (t) => require('fs').writeSync(1, t), err: (t) => require('fs').writeSync(2, t) }).then((code) => {
        const loaded = process.moduleLoadList.filter((m) => !before.has(m));
        require('fs').writeSync(1, JSON.stringify({ code, loaded }));
      });
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const { code, loaded } = JSON.parse(r.stdout) as { code: number; loaded: string[] };
    assert.equal(code, 0);
    const unwanted = loaded.filter((m) => /^NativeModule (net|tls|dns|stream|fs\/promises|timers\/promises|internal\/streams\/readable|child_process|zlib)$/.test(m));
    assert.deepEqual(unwanted, [], `an idle run loaded: ${unwanted.join(', ')}`);
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
