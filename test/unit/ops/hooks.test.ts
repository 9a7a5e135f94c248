import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../../src/config/types.js';
import type { CallResult } from '../../../src/poll/call.js';
import type { RunSummary } from '../../../src/poll/run.js';
import type { SessionResult } from '../../../src/binkp/session.js';
import { Logger, MemorySink } from '../../../src/ops/logger.js';
import { configFromIni } from '../poll/fixtures.js';
import {
  HOOK_MAX_LOG_LINES,
  describeHookOutcome,
  hookEnvironment,
  hookFor,
  hookVariables,
  runHook,
  runRunEndHook,
  runSessionHook,
  type HookOutcome,
} from '../../../src/ops/hooks.js';

const PASSWORD = 'Sekr1t-pw';

function config(dir: string, extra = ''): Config {
  return configFromIni(
    dir,
    `on_failure = global-failure-hook\nshutdown_grace = 1s\n${extra}`,
    `[fido]
hub_address = 2:5020/1
hub_hostname = hub.example.net
password = ${PASSWORD}
on_success = hub-success-hook
[other]
hub_address = 2:5020/2
hub_hostname = other.example.net`,
  );
}

function session(over: Partial<SessionResult> = {}): SessionResult {
  return {
    ok: true,
    stats: { filesSent: 2, bytesSent: 2048, filesReceived: 3, bytesReceived: 4096, filesSkipped: 0 },
    startedAt: 0,
    durationMs: 1500,
    secure: true,
    cram: true,
    nr: false,
    binkp11: true,
    batches: 2,
    remoteAkas: [],
    remoteInfo: {},
    servedAkas: [],
    receivedPaths: [],
    extensions: [],
    ...over,
  };
}

function result(cfg: Config, over: Partial<CallResult> = {}, hub = 'fido'): CallResult {
  return {
    hub: cfg.hubs.find((h) => h.key === hub)!,
    status: 'ok',
    message: 'sent 2 files',
    session: session(),
    startedAt: 0,
    durationMs: 1530,
    ...over,
  };
}

/** Running (not gone, not a zombie): Linux /proc, else kill(pid, 0). */
function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const noSignals = { on: () => undefined, off: () => undefined };

describe('hookFor', () => {
  const cfg = config('/srv/fido');
  test('hub-level on_success, global on_failure inherited by the hub', () => {
    assert.deepEqual(hookFor(result(cfg)), { name: 'on_success', command: 'hub-success-hook' });
    assert.deepEqual(hookFor(result(cfg, { status: 'failed', kind: 'refused' })), { name: 'on_failure', command: 'global-failure-hook' });
  });
  test('no hook for a skipped call or when none is configured', () => {
    assert.equal(hookFor(result(cfg, { status: 'skipped', kind: 'busy' })), undefined);
    assert.equal(hookFor(result(cfg, {}, 'other')), undefined);
  });
});

describe('hookVariables', () => {
  const cfg = config('/srv/fido');
  test('hub, result and counts', () => {
    const v = hookVariables(result(cfg), cfg);
    assert.deepEqual(v, {
      FNPOLL_HUB: 'fido',
      FNPOLL_ADDRESS: '2:5020/1',
      FNPOLL_RESULT: 'ok',
      FNPOLL_KIND: '',
      FNPOLL_MESSAGE: 'sent 2 files',
      FNPOLL_FILES_SENT: '2',
      FNPOLL_FILES_RECEIVED: '3',
      FNPOLL_BYTES_SENT: '2048',
      FNPOLL_BYTES_RECEIVED: '4096',
      FNPOLL_DURATION: '1.5',
      FNPOLL_INBOUND: '/srv/fido/in',
    });
  });
  test('a failure without a session: kind, zero counts, insecure inbound', () => {
    const v = hookVariables(result(cfg, { status: 'failed', kind: 'refused', message: 'connection refused', session: undefined }), cfg);
    assert.equal(v.FNPOLL_RESULT, 'failed');
    assert.equal(v.FNPOLL_KIND, 'refused');
    assert.equal(v.FNPOLL_FILES_RECEIVED, '0');
    assert.equal(v.FNPOLL_INBOUND, '/srv/fido/in/insecure');
  });
  test('never the password, even when a message quotes it', () => {
    const v = hookVariables(result(cfg, { status: 'failed', kind: 'auth', message: `hub said: ${PASSWORD} is wrong` }), cfg);
    for (const value of Object.values(v)) assert.ok(!value.includes(PASSWORD), value);
    assert.equal(v.FNPOLL_MESSAGE, 'hub said: ******** is wrong');
  });
  test('hookEnvironment keeps PATH but drops inherited FNPOLL_* variables', () => {
    const env = hookEnvironment({ FNPOLL_HUB: 'fido' }, { PATH: '/bin', FNPOLL_RESULT: 'stale', FNPOLL_CONFIG: '/x.ini' });
    assert.deepEqual(env, { PATH: '/bin', FNPOLL_HUB: 'fido' });
  });
});

describe('runHook (real /bin/sh)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fnpoll-hooks-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const env = (vars: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', ...vars });

  test('exit status, output lines from stdout and stderr, cwd and variables', async () => {
    const o = await runHook('echo "hub=$FNPOLL_HUB"; pwd; echo oops >&2; exit 0', { cwd: dir, env: env({ FNPOLL_HUB: 'fido' }), timeoutMs: 10_000 });
    assert.equal(o.exitCode, 0);
    assert.equal(o.timedOut, false);
    assert.deepEqual([...o.output].sort(), ['hub=fido', dir, 'oops'].sort());
  });

  test('a non-zero exit status is reported', async () => {
    const o = await runHook('exit 7', { cwd: dir, env: env(), timeoutMs: 10_000 });
    assert.equal(o.exitCode, 7);
    assert.equal(describeHookOutcome('on_failure', 'exit 7', o, 10_000).level, 'warning');
  });

  test('timeout kills the whole process group, background children included', async () => {
    const pidFile = join(dir, 'bg.pid');
    const o = await runHook(`sleep 30 & echo $! > "${pidFile}"; wait`, { cwd: dir, env: env(), timeoutMs: 300, killGraceMs: 200 });
    assert.equal(o.timedOut, true);
    assert.equal(o.exitCode, undefined);
    const bg = Number((await readFile(pidFile, 'utf8')).trim());
    // The group got SIGTERM. A killed orphan may linger as a zombie until init reaps it: that
    // counts as gone. Poll briefly for the kernel to deliver the signal.
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      alive = processRunning(bg);
      if (alive) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(alive, false, `background child ${bg} survived the timeout`);
  });

  test('aborting ends it at once', async () => {
    const ac = new AbortController();
    const p = runHook('sleep 30', { cwd: dir, env: env(), timeoutMs: 60_000, signal: ac.signal });
    ac.abort();
    const o = await p;
    assert.equal(o.aborted, true);
    assert.equal(o.signal, 'SIGTERM');
  });

  test('output beyond the cap is counted, not kept', async () => {
    const o = await runHook('i=0; while [ $i -lt 100 ]; do echo 0123456789; i=$((i+1)); done', {
      cwd: dir,
      env: env(),
      timeoutMs: 10_000,
      maxOutputBytes: 55,
    });
    assert.equal(o.output.join('\n').length <= 55, true);
    assert.equal(o.droppedBytes, 1100 - 55);
  });

  test('a hook that cannot start (missing directory) is an error, not a throw', async () => {
    const o = await runHook('true', { cwd: join(dir, 'missing'), env: env(), timeoutMs: 10_000 });
    assert.ok(o.error, 'error expected');
    assert.match(describeHookOutcome('on_success', 'true', o, 1000).lines[0]!, /could not be run/);
  });
});

describe('describeHookOutcome', () => {
  const base: HookOutcome = { exitCode: 0, timedOut: false, aborted: false, output: [], droppedBytes: 0, durationMs: 1234 };
  test('success is info, with the status and duration', () => {
    const d = describeHookOutcome('on_success', 'tosser', base, 60_000);
    assert.equal(d.level, 'info');
    assert.deepEqual(d.lines, ['on_success hook "tosser" exited with status 0 in 1.2 s']);
  });
  test('timeout names hook_timeout', () => {
    const d = describeHookOutcome('on_failure', 'notify', { ...base, exitCode: undefined, signal: 'SIGTERM', timedOut: true }, 60_000);
    assert.equal(d.level, 'warning');
    assert.match(d.lines[0]!, /timed out after hook_timeout \(60 s\); its process group was killed/);
  });
  test('output is truncated to a number of lines, each cut and without control characters', () => {
    const output = Array.from({ length: HOOK_MAX_LOG_LINES + 5 }, (_, i) => (i === 0 ? `a\x1b[31m${'x'.repeat(500)}` : `line ${i}`));
    const d = describeHookOutcome('on_success', 'cmd', { ...base, output, droppedBytes: 10 }, 1000);
    assert.equal(d.lines.length, 1 + HOOK_MAX_LOG_LINES + 1);
    assert.ok(!d.lines[1]!.includes('\x1b'));
    assert.ok(d.lines[1]!.length < 250);
    assert.equal(d.lines.at(-1), 'on_success hook output: (5 more lines, 10 more bytes not shown)');
  });
});

describe('runSessionHook', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fnpoll-hooks-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('runs in the config directory with the variables, never the password, and logs the outcome', async () => {
    const cfg = config(dir);
    cfg.hubs[0]!.onSuccess = 'env > hook-env.txt; echo done';
    const sink = new MemorySink('debug');
    await runSessionHook(result(cfg), cfg, new Logger([sink]), { signals: noSignals });
    const env = await readFile(join(dir, 'hook-env.txt'), 'utf8');
    assert.match(env, /^FNPOLL_HUB=fido$/m);
    assert.match(env, /^FNPOLL_BYTES_RECEIVED=4096$/m);
    assert.ok(!env.includes(PASSWORD), 'the password reached the hook');
    const msgs = sink.events.map((e) => `${e.level} ${e.hub} ${e.message}`);
    assert.equal(msgs.length, 3, msgs.join('\n'));
    assert.match(msgs[0]!, /^debug fido running on_success hook/);
    assert.match(msgs[1]!, /^info fido on_success hook "env > hook-env.txt; echo done" exited with status 0 in \d+\.\d s$/);
    assert.equal(msgs[2], 'info fido on_success hook output: done');
  });

  test('a failing hook is logged as a warning and does not throw', async () => {
    const cfg = config(dir);
    cfg.hubs[0]!.onFailure = 'echo broken >&2; exit 2';
    const sink = new MemorySink('debug');
    await runSessionHook(result(cfg, { status: 'failed', kind: 'protocol', message: 'x' }), cfg, new Logger([sink]), { signals: noSignals });
    const warn = sink.events.filter((e) => e.level === 'warning').map((e) => e.message);
    assert.equal(warn.length, 2);
    assert.match(warn[0]!, /^on_failure hook "echo broken >&2; exit 2" exited with status 2 in /);
    assert.equal(warn[1], 'on_failure hook output: broken');
  });

  test('a second SIGTERM while the hook runs ends it at once', async () => {
    const cfg = config(dir, 'hook_timeout = 1h');
    cfg.hubs[0]!.onSuccess = 'echo started; sleep 30';
    const signals = new EventEmitter();
    const sink = new MemorySink('debug');
    const logger = new Logger([sink]);
    // runSessionHook listens and has spawned the hook (uv_spawn returns after exec) when it returns.
    const p = runSessionHook(result(cfg), { ...cfg, poller: { ...cfg.poller, shutdownGrace: 3_600_000 } }, logger, { signals });
    signals.emit('SIGTERM');
    signals.emit('SIGTERM');
    await p;
    assert.ok(sink.events.some((e) => e.message.includes('ended early: fnpoll is shutting down')), sink.events.map((e) => e.message).join('\n'));
    assert.equal(signals.listenerCount('SIGTERM'), 0);
    assert.equal(signals.listenerCount('SIGINT'), 0);
  });

  test('after one SIGINT the hook gets shutdown_grace, then ends', async () => {
    const cfg = config(dir, 'hook_timeout = 1h');
    cfg.hubs[0]!.onSuccess = 'sleep 30';
    const signals = new EventEmitter();
    const sink = new MemorySink('debug');
    const p = runSessionHook(result(cfg), { ...cfg, poller: { ...cfg.poller, shutdownGrace: 100 } }, new Logger([sink]), { signals });
    signals.emit('SIGINT');
    await p;
    assert.ok(sink.events.some((e) => e.message.includes('ended early')));
  });

  test('no hook configured: nothing runs, nothing is logged', async () => {
    const cfg = config(dir);
    const sink = new MemorySink('debug');
    await runSessionHook(result(cfg, {}, 'other'), cfg, new Logger([sink]), { signals: noSignals });
    assert.equal(sink.events.length, 0);
  });
});

describe('no text from the network or a flow file reaches a shell (issue 11)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fnpoll-hooks-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a hub message full of shell syntax arrives in FNPOLL_MESSAGE verbatim, and runs nothing', async () => {
    const hostile = 'M_ERR $(touch pwned-1) `touch pwned-2`; touch pwned-3 | touch pwned-4 && touch pwned-5 \' " \\ \n > pwned-6';
    const cfg = config(dir);
    cfg.hubs[0]!.onFailure = 'printf %s "$FNPOLL_MESSAGE" > message.txt';
    const r = result(cfg, { status: 'failed', kind: 'protocol', message: hostile, session: session({ ok: false, receivedPaths: [join(dir, '$(touch pwned-7).pkt')] }) });
    await runSessionHook(r, cfg, new Logger([new MemorySink('debug')]), { signals: noSignals });
    assert.equal(await readFile(join(dir, 'message.txt'), 'utf8'), hostile);
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('pwned')), []);
  });

  test('the only child process fnpoll starts is the configured hook, through runHook', () => {
    // Every module of the built CLI: child_process appears in ops/hooks.js alone, and there it is
    // spawn(HOOK_SHELL, ['-c', <the configured command>]) with the session in the environment.
    const srcRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src');
    const users: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.js') && /(from |require\()['"](node:)?child_process['"]/.test(readFileSync(p, 'utf8'))) users.push(p.slice(srcRoot.length + 1));
      }
    };
    walk(srcRoot);
    // demo/ starts no process either; build/ runs at build time only.
    assert.deepEqual(users.filter((u) => !u.startsWith('build/')).sort(), ['ops/hooks.js']);
    const hooks = readFileSync(join(srcRoot, 'ops', 'hooks.js'), 'utf8');
    assert.equal(hooks.match(/\bspawn\(/g)?.length, 1);
    assert.match(hooks, /spawn\(HOOK_SHELL, \['-c', command\]/);
    assert.doesNotMatch(hooks, /\bexec(Sync|File|FileSync)?\(/);
  });
});

describe('on_run_end', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fnpoll-runend-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function summary(cfg: Config, results: CallResult[]): RunSummary {
    const ok = results.filter((r) => r.status === 'ok').length;
    const failed = results.filter((r) => r.status === 'failed').length;
    return {
      startedAt: 0,
      durationMs: 2500,
      considered: cfg.hubs.length,
      due: results.length,
      polled: results.length,
      ok,
      failed,
      skipped: results.length - ok - failed,
      bytesSent: 2048,
      bytesReceived: 4096,
      filesSent: 2,
      filesReceived: 3,
      exitCode: failed ? 1 : 0,
      plan: [],
      results,
    };
  }

  test('runs once with the run totals in its environment, never a password', async () => {
    const cfg = config(dir, 'on_run_end = env > run-env.txt');
    const s = summary(cfg, [result(cfg), result(cfg, { status: 'failed', kind: 'refused', message: 'x' }, 'other')]);
    const sink = new MemorySink('debug');
    await runRunEndHook(s, cfg, new Logger([sink]), { signals: noSignals });
    const env = await readFile(join(dir, 'run-env.txt'), 'utf8');
    for (const line of ['FNPOLL_RESULT=failed', 'FNPOLL_EXIT_CODE=1', 'FNPOLL_HUBS=fido other', 'FNPOLL_SESSIONS=2', 'FNPOLL_SESSIONS_OK=1', 'FNPOLL_SESSIONS_FAILED=1', 'FNPOLL_FILES_RECEIVED=3', 'FNPOLL_BYTES_RECEIVED=4096', 'FNPOLL_DURATION=2.5', `FNPOLL_INBOUND=${cfg.node.inbound}`]) {
      assert.match(env, new RegExp(`^${line}$`, 'm'), line);
    }
    assert.ok(!env.includes(PASSWORD));
    assert.match(sink.events.map((e) => e.message).join('\n'), /on_run_end hook "env > run-env.txt" exited with status 0/);
  });

  test('not run when the run made no session (nothing due, or every hub busy elsewhere)', async () => {
    const cfg = config(dir, 'on_run_end = touch ran.txt');
    await runRunEndHook(summary(cfg, []), cfg, new Logger([]), { signals: noSignals });
    await runRunEndHook(summary(cfg, [result(cfg, { status: 'skipped', message: 'busy' })]), cfg, new Logger([]), { signals: noSignals });
    await assert.rejects(readFile(join(dir, 'ran.txt')), { code: 'ENOENT' });
    await runRunEndHook(summary(cfg, [result(cfg)]), cfg, new Logger([]), { signals: noSignals });
    await readFile(join(dir, 'ran.txt'));
  });
});
