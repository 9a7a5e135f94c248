/**
 * Issue 11, defect 8: bad files must not hang or flood the loaders. The config and the state file
 * are opened without blocking, must be regular files, are read up to a limit, and must be text.
 * The cases that used to hang (a FIFO, a symlink to /dev/zero) run the real CLI in a child with a
 * kill timer, so a regression fails instead of blocking the test process.
 */
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { emptyHubState, emptyState, loadState, serializeState } from '../../src/poll/state.js';
import { MAX_CONFIG_BYTES, NotTextFileError, decodeText, readBoundedSync } from '../../src/textfile.js';
import { BIN, TestNode } from '../helpers/node.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const HANG_GUARD_MS = 20_000;

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  assert.equal(r.status, 0, `mkfifo ${path}: ${r.stderr}`);
}

let dir: string;
before(async () => {
  dir = await makeTempDir('fnpoll-textfile-');
});
after(async () => {
  await removeTempDir(dir);
});

describe('decodeText', () => {
  test('drops a UTF-8 BOM and keeps invalid UTF-8 as U+FFFD (a Latin-1 sysop name)', () => {
    assert.equal(decodeText(Buffer.from('\ufeff[node]\n')), '[node]\n');
    assert.equal(decodeText(Buffer.from([0x73, 0xfc, 0x0d, 0x0a, 0x09, 0x0c, 0x1a])), 's\ufffd\r\n\t\f\x1a');
  });
  test('UTF-16 (with a BOM either way, or without one) and binary are refused in one line', () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('[node]', 'utf16le')]), /^is UTF-16, not a text config/],
      [Buffer.from([0xfe, 0xff, 0, 0x5b]), /^is UTF-16/],
      [Buffer.from('[node]\n', 'utf16le'), /^looks like UTF-16 without a BOM/],
      [Buffer.from([0x5b, 0x6e, 0x1b, 0x5b]), /^is binary \(byte 0x1b at offset 2\), not a text config$/],
      [Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x00]), /^is binary \(byte 0x02 at offset 4\)/],
    ];
    for (const [bytes, re] of cases) {
      assert.throws(() => decodeText(bytes, 'text config'), (err: unknown) => err instanceof NotTextFileError && re.test(err.message) && !err.message.includes('\n'));
    }
  });
});

describe('readBoundedSync', () => {
  test('a file over the limit is refused before it is read', () => {
    const big = join(dir, 'big.ini');
    writeFileSync(big, Buffer.alloc(MAX_CONFIG_BYTES + 1, 0x3b));
    assert.throws(() => readBoundedSync(big, MAX_CONFIG_BYTES), /^NotTextFileError: is 1\.0 MiB; at most 1\.0 MiB is read$/);
    assert.equal(readBoundedSync(big, MAX_CONFIG_BYTES + 1).length, MAX_CONFIG_BYTES + 1);
  });
  test('a directory, a FIFO and /dev/zero are named for what they are, without blocking', () => {
    const fifo = join(dir, 'pipe');
    mkfifo(fifo);
    assert.throws(() => readBoundedSync(dir, 100), /is a directory, not a regular file/);
    assert.throws(() => readBoundedSync(fifo, 100), /is a FIFO, not a regular file/);
    assert.throws(() => readBoundedSync('/dev/zero', 100), /is a character device, not a regular file/);
    assert.throws(() => readBoundedSync(join(dir, 'missing'), 100), { code: 'ENOENT' });
  });
});

describe('loadConfig refuses what is not a text config (one line each)', () => {
  const nodes: TestNode[] = [];
  after(async () => {
    for (const n of nodes) await n.remove();
  });

  async function configError(file: string): Promise<string> {
    try {
      await loadConfig(file);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.problems.length, 1, err.message);
      return err.message;
    }
    return assert.fail(`${file} loaded`);
  }

  test('UTF-16, binary, too large', async () => {
    const u16 = join(dir, 'u16.ini');
    writeFileSync(u16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('[node]\r\naddress = 2:5020/1\r\n', 'utf16le')]));
    assert.match(await configError(u16), /u16\.ini: is UTF-16, not a text config in UTF-8/);
    const bin = join(dir, 'bin.ini');
    writeFileSync(bin, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x41]));
    assert.match(await configError(bin), /bin\.ini: is binary \(byte 0x1f at offset 0\), not a text config$/);
    const big = join(dir, 'huge.ini');
    writeFileSync(big, `; ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    assert.match(await configError(big), /huge\.ini: is 1\.0 MiB; at most 1\.0 MiB is read$/);
  });

  test('a config with a UTF-8 BOM is read', async () => {
    const n = await TestNode.create({ hubs: [{ name: 'hub', address: '2:5020/1@fidonet', port: 1 }] });
    nodes.push(n);
    writeFileSync(n.configPath, `\ufeff${readFileSync(n.configPath, 'utf8')}`);
    assert.equal((await loadConfig(n.configPath)).hubs.length, 1);
  });

  for (const [what, make, re] of [
    ['a FIFO', (p: string) => mkfifo(p), /is a FIFO, not a regular file/],
    ['a symlink to /dev/zero', (p: string) => symlinkSync('/dev/zero', p), /is a character device, not a regular file/],
  ] as const) {
    test(`\`fnpoll check\` with ${what} as its config: exit 78 at once, one line`, () => {
      const cfg = join(dir, `cfg-${what.length}.ini`);
      make(cfg);
      const r = spawnSync(process.execPath, [BIN, 'check', '-c', cfg], { encoding: 'utf8', timeout: HANG_GUARD_MS });
      assert.equal(r.signal, null, 'fnpoll check hung and was killed');
      assert.equal(r.status, 78, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, re);
    });
  }
});

describe('loadState', () => {
  const now = () => Date.UTC(2026, 0, 2, 3, 4, 5);

  test('a state file with a UTF-8 BOM is read, not quarantined', async () => {
    const sub = join(dir, 'bom');
    const file = join(sub, 'state.json');
    const state = emptyState();
    state.hubs.fido = { ...emptyHubState(), consecutiveFailures: 3 };
    mkdirSync(sub);
    writeFileSync(file, `\ufeff${serializeState(state)}`);
    const warnings: string[] = [];
    const loaded = await loadState(file, { now, warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings, []);
    assert.equal(loaded.hubs.fido?.consecutiveFailures, 3);
    assert.deepEqual(readdirSync(sub), ['state.json']);
  });

  test('a FIFO or a symlink to /dev/zero as the state file is moved aside, without blocking', async () => {
    for (const [name, make] of [
      ['fifo', (p: string) => mkfifo(p)],
      ['zero', (p: string) => symlinkSync('/dev/zero', p)],
    ] as const) {
      const sub = join(dir, `state-${name}`);
      mkdirSync(sub);
      const file = join(sub, 'state.json');
      make(file);
      const warnings: string[] = [];
      assert.deepEqual(await loadState(file, { now, warn: (m) => warnings.push(m) }), emptyState());
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /is (a FIFO|a character device), not a regular file\); moved it to .*state\.json\.corrupt-20260102T030405Z/);
    }
  });
});
