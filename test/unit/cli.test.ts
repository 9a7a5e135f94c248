/**
 * The command line as an interface: exit codes, one-line errors without stack traces, and the
 * commands that need no network (check, status, --dry-run, poll, reset).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { main, type Io } from '../../src/cli.js';
import { TestNode } from '../helpers/node.js';

function capture(): Io & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out(t: string) {
      io.stdout += t;
    },
    err(t: string) {
      io.stderr += t;
    },
  };
  return io;
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = capture();
  const code = await main(argv, io);
  process.exitCode = 0;
  return { code, stdout: io.stdout, stderr: io.stderr };
}

describe('fnpoll CLI', () => {
  const nodes: TestNode[] = [];
  after(async () => {
    for (const n of nodes) await n.remove();
  });
  async function node(): Promise<TestNode> {
    const n = await TestNode.create({ hubs: [{ name: 'hub1', address: '2:5020/1@fidonet', port: 1, password: 'pw' }] });
    nodes.push(n);
    return n;
  }

  test('unknown command is a usage error (64) with one line', async () => {
    const r = await run(['frobnicate']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /^fnpoll: unknown command "frobnicate" \(commands: run, now/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('unknown option is a usage error (64)', async () => {
    const n = await node();
    const r = await run(['status', '--bogus', '-c', n.configPath]);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /Unknown option `--bogus`/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  test('unknown hub is a usage error naming the known hubs', async () => {
    const n = await node();
    const r = await run(['now', 'nosuchhub', '-c', n.configPath]);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /unknown hub "nosuchhub" \(known hubs: hub1\)/);
  });

  test('missing config file is a config error (78) naming the file', async () => {
    const r = await run(['check', '-c', '/nonexistent/dir/fnpoll.ini']);
    assert.equal(r.code, 78);
    assert.equal(r.stderr, 'fnpoll: /nonexistent/dir/fnpoll.ini: cannot read config: ENOENT\n');
  });

  test('$FNPOLL_CONFIG is used when -c is absent', async () => {
    const old = process.env.FNPOLL_CONFIG;
    process.env.FNPOLL_CONFIG = '/nonexistent/env.ini';
    try {
      const r = await run(['check']);
      assert.equal(r.code, 78);
      assert.match(r.stderr, /\/nonexistent\/env\.ini: cannot read config/);
    } finally {
      if (old === undefined) delete process.env.FNPOLL_CONFIG;
      else process.env.FNPOLL_CONFIG = old;
    }
  });

  test('check prints one line per hub and never the password', async () => {
    const n = await node();
    const r = await run(['check', '-c', n.configPath]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hub1\s+2:5020\/1@fidonet\s+binkp 127\.0\.0\.1:1/);
    assert.match(r.stdout, /ok, 1 hub\n$/);
    assert.doesNotMatch(r.stdout + r.stderr, /\bpw\b/);
  });

  test('a malformed config gives 78 and one line per problem', async () => {
    const n = await node();
    const text = (await readFile(n.configPath, 'utf8')).replace('address = 2:5020/99@fidonet', 'address = 2:5020/x').replace('hub_port = 1', 'hub_port = 99999');
    await (await import('node:fs/promises')).writeFile(n.configPath, text);
    const r = await run(['check', '-c', n.configPath]);
    assert.equal(r.code, 78);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0]!, /\[node\] address: "2:5020\/x"/);
    assert.match(lines[1]!, /\[hub1\] hub_port: "99999"/);
  });

  test('--dry-run on run touches nothing and says why', async () => {
    const n = await node();
    await n.outboundFile('139c0001.clo', '');
    const r = await run(['run', '--dry-run', '-c', n.configPath]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^poll\s+hub1\s+2:5020\/1@fidonet\s+.*poll request/m);
    assert.match(r.stdout, /dry run: 1 of 1 hub would be polled; nothing was changed/);
    await assert.rejects(stat(n.stateFile), { code: 'ENOENT' });
    await assert.rejects(stat(`${n.stateFile}.lock`), { code: 'ENOENT' });
    assert.deepEqual(await n.listOutbound(), ['139c0001.clo']);
  });

  test('an idle run prints nothing, writes nothing and exits 0', async () => {
    const n = await node();
    const { writeFile } = await import('node:fs/promises');
    const now = new Date().toISOString();
    await writeFile(
      n.stateFile,
      JSON.stringify({
        version: 1,
        hubs: {
          hub1: {
            lastAttempt: now,
            lastSuccess: now,
            lastResult: { ok: true },
            consecutiveFailures: 0,
            nextAttempt: null,
            heldUntil: null,
            totals: { sessionsOk: 1, sessionsFailed: 0, filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 },
            history: [],
          },
        },
      }),
    );
    const before = (await stat(n.stateFile)).mtimeMs;
    const r = await run(['-c', n.configPath]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout + r.stderr, '');
    assert.equal((await stat(n.stateFile)).mtimeMs, before);
    assert.deepEqual((await readdir(n.dir)).sort(), ['files', 'fnpoll.ini', 'outbound', 'state.json']);
  });

  test('status --json has the stable field names', async () => {
    const n = await node();
    const r = await run(['status', '--json', '-c', n.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { hubs: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(j.hubs[0]!), [
      'name',
      'address',
      'due',
      'reason',
      'lastAttempt',
      'lastSuccess',
      'lastResult',
      'consecutiveFailures',
      'nextAttempt',
      'heldUntil',
      'queued',
      'host',
      'reached',
    ]);
    assert.deepEqual(Object.keys(j.hubs[0]!.queued as object), ['files', 'bytes', 'flavour']);
  });

  test('poll creates an empty .dlo without calling', async () => {
    const n = await node();
    const r = await run(['poll', 'hub1', '-c', n.configPath]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await n.listOutbound(), ['139c0001.dlo']);
    assert.equal((await stat(join(n.outbound, '139c0001.dlo'))).size, 0);
    const bad = await run(['poll', 'hub1', '--flavour', 'hold', '-c', n.configPath]);
    assert.equal(bad.code, 64);
  });

  test('reset clears backoff in the state', async () => {
    const n = await node();
    const { writeFile } = await import('node:fs/promises');
    const later = new Date(Date.now() + 3_600_000).toISOString();
    await writeFile(
      n.stateFile,
      JSON.stringify({
        version: 1,
        hubs: {
          hub1: {
            lastAttempt: new Date().toISOString(),
            lastSuccess: null,
            lastResult: { ok: false, kind: 'refused', message: 'connection refused' },
            consecutiveFailures: 3,
            nextAttempt: later,
            heldUntil: null,
            totals: { sessionsOk: 0, sessionsFailed: 3, filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 },
            history: [],
          },
        },
      }),
    );
    const before = JSON.parse((await run(['status', '--json', '-c', n.configPath])).stdout) as { hubs: { due: boolean }[] };
    assert.equal(before.hubs[0]!.due, false);
    const r = await run(['reset', 'hub1', '-c', n.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(await readFile(n.stateFile, 'utf8')) as { hubs: { hub1: { consecutiveFailures: number; nextAttempt: unknown } } };
    assert.equal(s.hubs.hub1.consecutiveFailures, 0);
    assert.equal(s.hubs.hub1.nextAttempt, null);
    const afterReset = JSON.parse((await run(['status', '--json', '-c', n.configPath])).stdout) as { hubs: { due: boolean }[] };
    assert.equal(afterReset.hubs[0]!.due, true);
  });

  test('a state file that cannot be written is a local I/O error (74) naming it', async () => {
    const n = await node();
    const { writeFile } = await import('node:fs/promises');
    const blocker = join(n.dir, 'not-a-dir');
    await writeFile(blocker, 'a regular file where a directory should be');
    const text = (await readFile(n.configPath, 'utf8')).replace(/^state_file = .*$/m, `state_file = ${join(blocker, 'state.json')}`);
    await writeFile(n.configPath, text);
    const r = await run(['now', '-c', n.configPath]);
    assert.equal(r.code, 74, r.stderr);
    assert.match(r.stderr, /not-a-dir/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  test('--version prints the version', async () => {
    const lines: string[] = [];
    const orig = console.info;
    console.info = (...a: unknown[]) => void lines.push(a.join(' '));
    try {
      const r = await run(['--version']);
      assert.equal(r.code, 0);
    } finally {
      console.info = orig;
    }
    assert.match(lines.join('\n'), /^fnpoll\/\d+\.\d+\.\d+/);
  });
});
