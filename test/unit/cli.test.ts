/**
 * The command line as an interface: exit codes, one-line errors without stack traces, and the
 * commands that need no network (check, status, --dry-run, poll, reset).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { main } from '../../src/cli.js';
import type { Io } from '../../src/commands/io.js';
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
    assert.equal(r.stderr, 'fnpoll: /nonexistent/dir/fnpoll.ini: cannot read config: no such file or directory (ENOENT)\n');
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

  test('check and status count mail that no hub will carry; queue lists it', async () => {
    const n = await node();
    await n.outboundFile('139c0007.out', Buffer.alloc(300, 1));
    for (const cmd of ['check', 'status']) {
      const r = await run([cmd, '-c', n.configPath]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^fnpoll: warning: 1 node has mail that no hub will carry \(1 file, 300 B\); see `fnpoll queue`$/m, cmd);
    }
    const q = await run(['queue', '-c', n.configPath]);
    assert.equal(q.code, 0);
    assert.match(q.stdout, /^2:5020\/7@fidonet +normal +1 +300 B +\S+ +- \(no hub: never leaves\)$/m);
    assert.match(q.stderr, /^fnpoll: warning: mail for 2:5020\/7@fidonet \(1 file, 300 B\) will never leave/m);
  });

  test('status <hub>: one hub in detail with its recent sessions, in local time', async () => {
    const n = await node();
    const t = Date.UTC(2026, 2, 1, 11, 0, 0);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(
      n.stateFile,
      JSON.stringify({
        version: 1,
        hubs: {
          hub1: {
            lastAttempt: new Date(t).toISOString(),
            lastSuccess: null,
            lastResult: { ok: false, kind: 'auth', message: 'hub refused the password', remote: 'Bad password' },
            consecutiveFailures: 1,
            nextAttempt: new Date(t + 6 * 3_600_000).toISOString(),
            history: [{ startedAt: new Date(t).toISOString(), durationMs: 1200, ok: false, kind: 'auth', message: 'hub refused the password', filesSent: 0, filesReceived: 0, bytesSent: 0, bytesReceived: 0 }],
          },
        },
      }),
    );
    const saved = process.env.TZ;
    process.env.TZ = 'Europe/Berlin';
    try {
      const r = await run(['status', 'hub1', '-c', n.configPath]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^hub1 \(2:5020\/1@fidonet\)$/m);
      assert.match(r.stdout, /^  last attempt  2026-03-01 12:00:00 \([^)]+ ago\)$/m, 'local time (UTC+1)');
      assert.match(r.stdout, /^  last result   auth: hub refused the password \(hub said: Bad password\)$/m);
      assert.match(r.stdout, /^    2026-03-01 12:00:00  failed +1\.2 s  auth: hub refused the password$/m);
      const j = await run(['status', 'hub1', '--json', '-c', n.configPath]);
      const doc = JSON.parse(j.stdout) as { lastAttempt: string; recent: unknown[] };
      assert.equal(doc.lastAttempt, '2026-03-01T11:00:00.000Z', 'UTC in --json');
      assert.equal(doc.recent.length, 1);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  test('a closed stdout (fnpoll check | head -1) ends quietly', async () => {
    const n = await node();
    const many = (await readFile(n.configPath, 'utf8')) + Array.from({ length: 2000 }, (_, i) => `[x${i}]\nhub_address = 2:5021/${i + 1}\nhub_hostname = x${i}.example\n`).join('');
    await (await import('node:fs/promises')).writeFile(n.configPath, many);
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../helpers/node.js');
    const child = spawn(process.execPath, [BIN, 'check', '-c', n.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.equal(stderr, '', 'no EPIPE trace');
    assert.equal(code, 0);
  });

  test('every command\'s --help says what it does and shows an example', async () => {
    const { spawnSync } = await import('node:child_process');
    const { BIN } = await import('../helpers/node.js');
    for (const cmd of ['run', 'now', 'status', 'check', 'queue', 'reset', 'poll', 'stats', 'health', 'import', 'demo']) {
      const r = spawnSync(process.execPath, [BIN, cmd, '--help'], { encoding: 'utf8' });
      assert.equal(r.status, 0, cmd);
      const lines = r.stdout.split('\n');
      assert.match(lines[2] ?? '', /^[A-Z]\S* /, `${cmd}: a one-line description after the version line:\n${r.stdout}`);
      assert.match(r.stdout, new RegExp(`Examples:\\n(?:.*\\n)*fnpoll ${cmd}\\b`), `${cmd}: an example`);
    }
  });

  test('-v is --version alone and --verbose after a command, never ignored', async () => {
    const { spawnSync } = await import('node:child_process');
    const { BIN } = await import('../helpers/node.js');
    const alone = spawnSync(process.execPath, [BIN, '-v'], { encoding: 'utf8' });
    assert.match(alone.stdout, /^fnpoll\/\d+\.\d+\.\d+/);
    // Two nodes: after the first failure the hub would be in backoff, not due.
    const a = await node();
    const b = await node();
    for (const n of [a, b]) await n.outboundFile('139c0001.clo', '');
    const plain = spawnSync(process.execPath, [BIN, 'run', '-c', a.configPath], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    const verbose = spawnSync(process.execPath, [BIN, 'run', '-v', '-c', b.configPath], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    assert.equal(plain.status, 1, 'port 1 refuses');
    assert.equal(verbose.status, 1);
    assert.doesNotMatch(plain.stderr, /calling 2:5020\/1/);
    assert.match(verbose.stderr, /calling 2:5020\/1@fidonet at 127\.0\.0\.1:1/, verbose.stderr);
  });

  test('a held hub that a forced call reaches says it is out of hold, even under --quiet', async () => {
    const { ScriptedHub } = await import('../../src/demo/hub.js');
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../helpers/node.js');
    const hub = new ScriptedHub({ addresses: ['2:5020/1@fidonet'], password: 'pw' });
    const port = await hub.listen(0, '127.0.0.1');
    try {
      const n = await TestNode.create({ hubs: [{ name: 'hub1', address: '2:5020/1@fidonet', port, password: 'pw' }] });
      nodes.push(n);
      const until = Date.now() + 3_600_000;
      const { writeFile } = await import('node:fs/promises');
      await writeFile(n.stateFile, JSON.stringify({ version: 1, hubs: { hub1: { consecutiveFailures: 3, heldUntil: new Date(until).toISOString(), nextAttempt: new Date(until).toISOString() } } }));
      await n.outboundFile('139c0001.hld', String(Math.floor(until / 1000)));
      const child = spawn(process.execPath, [BIN, 'now', 'hub1', '--quiet', '-c', n.configPath], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      assert.equal(code, 0, stderr);
      assert.match(stderr, /^hub1: out of hold: the call succeeded \(removed \S+139c0001\.hld\)$/m);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.deepEqual((await n.listOutbound()).filter((f) => f.endsWith('.hld')), []);
    } finally {
      await hub.close();
    }
  });

  test('--debug says once why a hub is due', async () => {
    const { spawnSync } = await import('node:child_process');
    const { BIN } = await import('../helpers/node.js');
    const r = spawnSync(process.execPath, [BIN, 'demo', '--debug'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stderr.split('\n').filter((l) => /\bdue: /.test(l)), ['demohub: due: forced (fnpoll now)']);
  });

  test('check names each value that came from the environment', async () => {
    const n = await node();
    process.env.FNPOLL_POLLER_LOG_LEVEL = 'warning';
    process.env.FNPOLL_HUB1_PASSWORD = 'from-env';
    try {
      const r = await run(['check', '-c', n.configPath]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\[hub1\] password = \*{8} \(from \$FNPOLL_HUB1_PASSWORD\)$/m);
      assert.match(r.stdout, /^\[poller\] log_level = "warning" \(from \$FNPOLL_POLLER_LOG_LEVEL\)$/m);
      assert.doesNotMatch(r.stdout + r.stderr, /from-env/, 'the password is never shown');
    } finally {
      delete process.env.FNPOLL_POLLER_LOG_LEVEL;
      delete process.env.FNPOLL_HUB1_PASSWORD;
    }
  });

  test('a run that finds the lock taken exits 75: one line, and nothing at all under --quiet', async () => {
    const n = await node();
    await n.outboundFile('139c0001.clo', '');
    const { acquireRunLock } = await import('../../src/poll/lock.js');
    const lock = await acquireRunLock(`${n.stateFile}.lock`);
    try {
      const loud = await run(['run', '-c', n.configPath]);
      assert.equal(loud.code, 75);
      assert.match(loud.stderr, /^fnpoll: .*\.lock is held by pid \d+/);
      assert.equal(loud.stderr.trim().split('\n').length, 1, loud.stderr);
      for (const quiet of ['-q', '--quiet']) {
        const r = await run(['run', quiet, '-c', n.configPath]);
        assert.equal(r.code, 75);
        assert.equal(r.stderr + r.stdout, '', 'cron mails whatever a job prints');
      }
    } finally {
      await lock.release();
    }
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
