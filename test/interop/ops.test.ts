/**
 * Operations, end to end: a real `fnpoll` process (node bin/fnpoll.cjs, built by tsc) in session
 * with the scripted hub on 127.0.0.1, real signals, and the files it leaves behind.
 *
 * To hold a session in flight, the hub answers M_PWD by hand: M_OK, then an M_FILE of 1 MiB and
 * only its first 4 KiB. fnpoll then sits in the middle of receiving a file (a partial in the temp
 * inbound) until the test lets the hub send the rest, or a signal ends the run.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScriptedHub, type HubSessionContext, type HubFile } from '../../src/demo/hub.js';
import { Cmd, formatFileArgs } from '../../src/binkp/commands.js';
import { cramResponse } from '../../src/binkp/cram.js';
import { parseState } from '../../src/poll/state.js';

const FNPOLL = fileURLToPath(new URL('../../../bin/fnpoll.cjs', import.meta.url));
const PASSWORD = 'Ops-Secret-8472';
const HUB_ADDRESS = '2:5020/1';
const BIG_SIZE = 1024 * 1024;
const FIRST_PIECE = 4096;
const BIG_MTIME = 1_700_000_000;
/** Upper bound for waiting on something a process does; a hang fails the test instead of the suite. */
const WAIT_MS = 15_000;
const TEST_TIMEOUT = 40_000;

interface Env {
  dir: string;
  config: string;
  hub: ScriptedHub;
}

async function makeEnv(hub: ScriptedHub, poller: string, hubExtra = ''): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), 'fnpoll-ops-'));
  const port = await hub.listen(0, '127.0.0.1');
  const config = join(dir, 'fnpoll.ini');
  await writeFile(
    config,
    `[node]
address = 2:5020/1234
system = Ops Test
outbound = out
inbound = in
[poller]
state_file = state.json
log_file = fnpoll.log
log_format = json
metrics_file = metrics/fnpoll.prom
${poller}
[uplink]
hub_address = ${HUB_ADDRESS}
hub_hostname = 127.0.0.1
hub_port = ${port}
password = ${PASSWORD}
${hubExtra}
`,
  );
  return { dir, config, hub };
}

async function dropEnv(env: Env): Promise<void> {
  await env.hub.close();
  await rm(env.dir, { recursive: true, force: true });
}

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startFnpoll(env: Env, args: string[]): Proc {
  const child = spawn(process.execPath, [FNPOLL, ...args, '-c', env.config], {
    cwd: env.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString('utf8')));
  child.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stderr: () => err, stdout: () => out, exit };
}

/** Run fnpoll to completion. */
async function runFnpoll(env: Env, args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const p = startFnpoll(env, args);
  const { code } = await p.exit;
  return { code, stderr: p.stderr(), stdout: p.stdout() };
}

/** Poll `check` until it returns a value (not undefined/false) or fail naming `what`. */
async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, detail?: () => string): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${detail ? `\n${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function readOr(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

/** Every file under `dir`, relative paths. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name), join(rel, e.name));
      else out.push(join(rel, e.name));
    }
  };
  await walk(dir, '');
  return out;
}

/**
 * A hub that, after the caller's M_PWD, starts sending a 1 MiB file and stops after 4 KiB.
 * `release()` sends the rest and finishes the binkp/1.1 session properly.
 */
function stallingHub(): { hub: ScriptedHub; ready: Promise<HubSessionContext>; release: () => void } {
  const data = Buffer.alloc(BIG_SIZE, 0x41);
  let resolveReady!: (ctx: HubSessionContext) => void;
  const ready = new Promise<HubSessionContext>((r) => (resolveReady = r));
  let ctx: HubSessionContext | undefined;
  let callerEobs = 0;
  const hub = new ScriptedHub({
    addresses: [HUB_ADDRESS],
    password: PASSWORD,
    handlers: {
      [Cmd.M_PWD]: (_arg, c) => {
        ctx = c;
        c.send(Cmd.M_OK, 'secure');
        c.send(Cmd.M_FILE, formatFileArgs({ name: 'big.zip', size: BIG_SIZE, mtime: BIG_MTIME }, 0));
        c.sendData(data.subarray(0, FIRST_PIECE));
        resolveReady(c);
      },
      // The caller has nothing to send: its M_EOB comes at once (batch 1), and again for batch 2.
      [Cmd.M_EOB]: (_arg, c) => {
        callerEobs++;
        if (callerEobs === 2) c.send(Cmd.M_EOB);
      },
      [Cmd.M_GOT]: () => undefined,
    },
  });
  const release = (): void => {
    const c = ctx!;
    for (let at = FIRST_PIECE; at < BIG_SIZE; at += 32767) c.sendData(data.subarray(at, Math.min(BIG_SIZE, at + 32767)));
    c.send(Cmd.M_EOB);
  };
  return { hub, ready, release };
}

/** The partial of big.zip in the temp inbound, once it holds the first piece. */
async function partialInTemp(env: Env): Promise<string> {
  const temp = join(env.dir, 'in', 'tmp');
  return waitFor('the partial in the temp inbound', async () => {
    for (const name of await readdir(temp).catch(() => [] as string[])) {
      if (!name.endsWith('.part')) continue;
      const st = await stat(join(temp, name)).catch(() => undefined);
      if (st && st.size >= FIRST_PIECE) return join(temp, name);
    }
    return undefined;
  });
}

async function assertCleanEnd(env: Env): Promise<void> {
  const outbound = await listFiles(join(env.dir, 'out'));
  assert.deepEqual(outbound.filter((f) => /\.(bsy|csy)$/.test(f)), [], 'busy flags left behind');
  const top = await readdir(env.dir);
  assert.ok(!top.includes('state.json.lock'), 'run lock left behind');
  assert.ok(!top.includes('state.json.lock.info'), 'run lock owner file left behind');
}

function logLines(text: string): { level: string; message: string }[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: string; message: string });
}

/**
 * Start `fnpoll run` against a hub that stalls in the middle of a file, wait until the partial is
 * on disk, run `body`, and clean up whatever happens.
 */
async function inSession(
  extraConfig: string,
  body: (ctx: { s: ReturnType<typeof stallingHub>; env: Env; p: ReturnType<typeof startFnpoll> }) => Promise<void>,
): Promise<void> {
  const s = stallingHub();
  const env = await makeEnv(s.hub, extraConfig);
  try {
    const p = startFnpoll(env, ['run']);
    await s.ready;
    await partialInTemp(env);
    await body({ s, env, p });
  } finally {
    await dropEnv(env);
  }
}

describe('signals in session (real fnpoll process, scripted hub)', { timeout: 5 * TEST_TIMEOUT }, () => {
  test('SIGTERM mid-session: exit 143, state saved with the session, no flags, lock released, partial kept', { timeout: TEST_TIMEOUT }, async () => {
    const s = stallingHub();
    const env = await makeEnv(s.hub, 'shutdown_grace = 1s');
    try {
      const p = startFnpoll(env, ['run']);
      await s.ready;
      const partial = await partialInTemp(env);
      p.child.kill('SIGTERM');
      const { code } = await p.exit;
      assert.equal(code, 143, p.stderr());
      const state = parseState(await readFile(join(env.dir, 'state.json'), 'utf8'));
      const h = state.hubs.uplink!;
      assert.equal(h.history.length, 1);
      assert.equal(h.lastResult?.ok, false);
      assert.equal(h.lastResult?.ok === false && h.lastResult.kind, 'aborted');
      assert.ok(h.totals.bytesReceived >= FIRST_PIECE);
      await assertCleanEnd(env);
      assert.ok((await stat(partial)).size >= FIRST_PIECE, 'partial removed');
      const log = await readFile(join(env.dir, 'fnpoll.log'), 'utf8');
      assert.match(log, /SIGTERM: starting no new session; 1 running session\(s\) get 1 s to finish/);
      // The metrics file is written on this path too, with the signal's exit code.
      assert.match(await readFile(join(env.dir, 'metrics', 'fnpoll.prom'), 'utf8'), /^fnpoll_run_exit_code 143$/m);
    } finally {
      await dropEnv(env);
    }
  });

  test('SIGINT mid-session: exit 130', { timeout: TEST_TIMEOUT }, async () => {
    await inSession('shutdown_grace = 0', async ({ env, p }) => {
      p.child.kill('SIGINT');
      const { code } = await p.exit;
      assert.equal(code, 130, p.stderr());
      await assertCleanEnd(env);
    });
  });

  test('a second SIGTERM ends the run at once, state still saved and flags removed', { timeout: TEST_TIMEOUT }, async () => {
    // With an hour of grace, only the second signal can end this run within the test's timeout.
    await inSession('shutdown_grace = 1h', async ({ env, p }) => {
      p.child.kill('SIGTERM');
      await waitFor('the first SIGTERM in the log', async () => /SIGTERM: starting no new session/.test(await readOr(join(env.dir, 'fnpoll.log'))));
      p.child.kill('SIGTERM');
      const { code } = await p.exit;
      assert.equal(code, 143, p.stderr());
      const log = await readFile(join(env.dir, 'fnpoll.log'), 'utf8');
      assert.match(log, /SIGTERM again: ending every session now/);
      const state = parseState(await readFile(join(env.dir, 'state.json'), 'utf8'));
      assert.equal(state.hubs.uplink?.history.length, 1);
      await assertCleanEnd(env);
    });
  });

  test('SIGHUP with a broken config is logged, the old config kept, and the run completes', { timeout: TEST_TIMEOUT }, async () => {
    await inSession('shutdown_grace = 1s', async ({ env, p, s }) => {
      const good = await readFile(env.config, 'utf8');
      await writeFile(env.config, `${good}\n[broken]\nhub_address = not-an-address\n`);
      p.child.kill('SIGHUP');
      const logFile = join(env.dir, 'fnpoll.log');
      await waitFor('the SIGHUP rejection in the log', async () => /SIGHUP: new config rejected, keeping the old one: .*not-an-address/.test(await readOr(logFile)), () => p.stderr());
      s.release();
      const { code } = await p.exit;
      assert.equal(code, 0, p.stderr());
      const state = parseState(await readFile(join(env.dir, 'state.json'), 'utf8'));
      assert.equal(state.hubs.uplink?.lastResult?.ok, true);
      const received = await readFile(join(env.dir, 'in', 'big.zip'));
      assert.equal(received.length, BIG_SIZE);
      await assertCleanEnd(env);
    });
  });

  test('SIGUSR1 prints a statistics snapshot on stderr (and in the log)', { timeout: TEST_TIMEOUT }, async () => {
    await inSession('shutdown_grace = 0', async ({ env, p }) => {
      p.child.kill('SIGUSR1');
      const text = await waitFor('the snapshot on stderr', () => /statistics: 1 session\(s\) running, 0 done\n(.*)\n/.exec(p.stderr())?.[1], () => p.stderr());
      assert.match(text, /^uplink: \d+ s, sent 0 files 0 B, received 0 files 4(\.0)? KiB, .*\/s, receiving big\.zip 4096\/1048576$/);
      const log = logLines(await readFile(join(env.dir, 'fnpoll.log'), 'utf8'));
      assert.ok(log.some((l) => l.message === 'statistics: 1 session(s) running, 0 done'));
      p.child.kill('SIGTERM');
      assert.equal((await p.exit).code, 143);
    });
  });

  test('SIGUSR2 turns debug logging on: debug lines start appearing in the log file', { timeout: TEST_TIMEOUT }, async () => {
    const s = stallingHub();
    const env = await makeEnv(s.hub, 'shutdown_grace = 0\nlog_level = info');
    try {
      const p = startFnpoll(env, ['run']);
      const ctx = await s.ready;
      await partialInTemp(env);
      const logFile = join(env.dir, 'fnpoll.log');
      assert.deepEqual(logLines(await readOr(logFile)).filter((l) => l.level === 'debug'), []);
      p.child.kill('SIGUSR2');
      await waitFor('the SIGUSR2 line', async () => /SIGUSR2: debug logging on/.test(await readOr(logFile)));
      // Give the session something to log at debug level: a frame from the hub.
      ctx.send(Cmd.M_NUL, 'ZYZ Still There');
      await waitFor('a debug line', async () => logLines(await readOr(logFile)).some((l) => l.level === 'debug' && /recv M_NUL ZYZ Still There/.test(l.message)));
      p.child.kill('SIGTERM');
      assert.equal((await p.exit).code, 143);
    } finally {
      await dropEnv(env);
    }
  });
});

describe('secrets and metrics after real sessions', { timeout: 2 * TEST_TIMEOUT }, () => {
  let env: Env;
  const files: HubFile[] = [{ name: 'mail.pkt', data: Buffer.alloc(3000, 0x20), mtime: BIG_MTIME }];
  before(async () => {
    const hub = new ScriptedHub({ addresses: [HUB_ADDRESS], password: PASSWORD, files });
    env = await makeEnv(hub, 'log_level = debug', 'on_success = env > hook-env.txt; echo "hook ran for $FNPOLL_HUB"');
  });
  after(async () => {
    await dropEnv(env);
  });

  test('no password, CRAM digest or challenge in stderr, log file, state, metrics or the hook (log_level = debug, then --debug)', { timeout: TEST_TIMEOUT }, async () => {
    const first = await runFnpoll(env, ['now']);
    assert.equal(first.code, 0, first.stderr);
    const second = await runFnpoll(env, ['now', '--debug']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(env.hub.sessions.length, 2);
    assert.ok(second.stderr.includes('recv M_'), 'expected debug frame lines on stderr with --debug');

    const secrets: string[] = [PASSWORD];
    for (const s of env.hub.sessions) {
      const greeting = s.frames.find((f) => f.kind === 'command' && f.dir === 'out' && f.arg.startsWith('OPT CRAM-MD5-'));
      assert.ok(greeting && greeting.kind === 'command', 'the hub offered CRAM');
      const challenge = greeting.arg.slice('OPT CRAM-MD5-'.length);
      const digest = cramResponse(PASSWORD, challenge).slice('CRAM-MD5-'.length);
      assert.equal(s.callerPassword, `CRAM-MD5-${digest}`, 'fnpoll answered with CRAM-MD5');
      assert.equal(s.secure, true);
      secrets.push(challenge, digest);
    }
    const places: [string, string][] = [
      ['stderr of the log_level=debug run', first.stderr],
      ['stderr of the --debug run', second.stderr],
      ['log file', await readFile(join(env.dir, 'fnpoll.log'), 'utf8')],
      ['state file', await readFile(join(env.dir, 'state.json'), 'utf8')],
      ['metrics file', await readFile(join(env.dir, 'metrics', 'fnpoll.prom'), 'utf8')],
      ['hook environment', await readFile(join(env.dir, 'hook-env.txt'), 'utf8')],
    ];
    const log = places[2]![1];
    assert.ok(logLines(log).some((l) => l.level === 'debug'), 'the log file has debug lines');
    assert.match(log, /on_success hook output: hook ran for uplink/);
    for (const [where, text] of places) {
      for (const secret of secrets) {
        for (const form of new Set([secret, secret.toLowerCase(), secret.toUpperCase()])) {
          const line = text.split('\n').find((l) => l.includes(form));
          assert.ok(
            line === undefined,
            `${where} contains ${secret === PASSWORD ? 'the password' : 'a CRAM challenge or digest'}: ${line?.split(form).join('<SECRET>')}`,
          );
        }
      }
    }
  });

  test('promtool check metrics passes on the metrics file', () => {
    const file = join(env.dir, 'metrics', 'fnpoll.prom');
    // `promtool check metrics < file`
    const r = spawnSync('promtool', ['check', 'metrics'], { input: readFileSync(file), encoding: 'utf8' });
    assert.equal(r.error, undefined, `promtool not runnable (Debian package prometheus): ${r.error?.message}`);
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  });

  test('stats and health read the state the runs left', async () => {
    const stats = await runFnpoll(env, ['stats', 'uplink', '--json']);
    assert.equal(stats.code, 0, stats.stderr);
    const doc = JSON.parse(stats.stdout) as { hubs: { totals: { sessionsOk: number; filesReceived: number } }[] };
    assert.equal(doc.hubs[0]!.totals.sessionsOk, 2);
    assert.equal(doc.hubs[0]!.totals.filesReceived, 1);
    const health = await runFnpoll(env, ['health']);
    assert.equal(health.code, 0, health.stdout);
    assert.match(health.stdout, /^FNPOLL OK - 1 hub ok \| uplink_age=\d+s;7200;21600;0 uplink_failures=0;;;0\n$/);
  });
});
