/**
 * CallerSession against the scripted hub on 127.0.0.1:0, with an in-memory SessionEnv: the wire
 * as the hub logged it is the evidence (FTS-1026, FTS-1027, FTS-1028; FTN-NOTES §1-3, §8).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createHmac } from 'node:crypto';
import { mkdir, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { runSession } from '../../../src/binkp/connect.js';
import { openFileSource } from '../../../src/bso/source.js';
import { ManualClock, until } from '../../helpers/clock.js';
import {
  CallerSession,
  type IncomingFile,
  type LogLevel,
  type Offer,
  type OutgoingFile,
  type PartialFile,
  type SessionEnv,
  type SessionOptions,
  type SessionResult,
} from '../../../src/binkp/session.js';
import {
  ScriptedHub,
  describeFrames,
  findFrame,
  type HubFile,
  type HubSessionContext,
  type HubSessionLog,
  type ScriptedHubOptions,
} from '../../../src/demo/hub.js';
import { Cmd } from '../../../src/binkp/commands.js';
import { formatAddress, parseAddress, type FtnAddress } from '../../../src/ftn/address.js';
import { makeTempDir, removeTempDir } from '../../helpers/tmp.js';
import { pseudoRandomBytes } from '../../helpers/node.js';

const HUB_ADDRESS = '2:5020/1@fidonet';
const OUR_ADDRESS = '2:5020/99@fidonet';
const MAILER = 'fnpoll/0.0.0-test/linux';
const T0 = 1_700_000_000;
/** Every network test gets a deadline, so a hang fails that test alone. */
const T = { timeout: 8_000 };

// ---------------------------------------------------------------------------------------------
// An in-memory SessionEnv: outgoing files live on disk (the session opens them), everything else
// in maps the tests inspect.

function fileKey(f: { name: string; size: number; mtime: number }): string {
  return `${f.name}|${f.size}|${f.mtime}`;
}

interface LogLine {
  level: LogLevel;
  message: string;
}

class MemEnv implements SessionEnv {
  readonly claims: FtnAddress[][] = [];
  readonly queueCalls: number[] = [];
  readonly confirmedIds: string[] = [];
  readonly skippedIds: string[] = [];
  readonly offers: { file: IncomingFile; secure: boolean }[] = [];
  /** Complete files by wire name. */
  readonly received = new Map<string, { file: IncomingFile; data: Buffer; secure: boolean }>();
  /** Kept partials by fileKey(); survive between sessions like the temp inbound. */
  readonly partials = new Map<string, Buffer>();
  /** Called after every chunk written to a partial. */
  onWrite: ((file: IncomingFile, received: number) => void) | undefined;

  constructor(readonly files: OutgoingFile[] = []) {}

  openSource(file: OutgoingFile): ReturnType<SessionEnv['openSource']> {
    return openFileSource(file.path);
  }

  async claimAkas(akas: FtnAddress[]): Promise<FtnAddress[]> {
    this.claims.push(akas);
    return akas;
  }

  async queue(_akas: FtnAddress[], done: ReadonlySet<string>): Promise<OutgoingFile[]> {
    this.queueCalls.push(done.size);
    return this.files.filter((f) => !done.has(f.id));
  }

  async confirmed(file: OutgoingFile): Promise<void> {
    this.confirmedIds.push(file.id);
  }

  skipped(file: OutgoingFile): void {
    this.skippedIds.push(file.id);
  }

  async offer(file: IncomingFile, secure: boolean): Promise<Offer> {
    this.offers.push({ file, secure });
    const have = this.received.get(file.name);
    if (have && fileKey(have.file) === fileKey(file)) return { action: 'have', path: `mem/${file.name}` };
    return { action: 'receive', offset: this.partials.get(fileKey(file))?.length ?? 0 };
  }

  async openPartial(file: IncomingFile, offset: number): Promise<PartialFile> {
    const key = fileKey(file);
    const kept = this.partials.get(key) ?? Buffer.alloc(0);
    assert.ok(offset <= kept.length, `openPartial ${file.name} at ${offset}, only ${kept.length} kept`);
    const chunks: Buffer[] = [kept.subarray(0, offset)];
    let received = offset;
    const env = this;
    return {
      get received() {
        return received;
      },
      write(data: readonly Buffer[]): void {
        for (const chunk of data) {
          chunks.push(Buffer.from(chunk));
          received += chunk.length;
        }
        env.onWrite?.(file, received);
      },
      async close(): Promise<void> {
        env.partials.set(key, Buffer.concat(chunks));
      },
    };
  }

  async complete(file: IncomingFile, partial: PartialFile, secure: boolean): Promise<string> {
    await partial.close();
    const key = fileKey(file);
    const data = this.partials.get(key)!;
    this.partials.delete(key);
    this.received.set(file.name, { file, data, secure });
    return `mem/${file.name}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

let tmp: string;
let fileNo = 0;
const hubs: ScriptedHub[] = [];

before(async () => {
  tmp = await makeTempDir('fnpoll-session-');
});

after(async () => {
  await Promise.all(hubs.map((h) => h.close()));
  await removeTempDir(tmp);
});

/** A file on disk to send; `sendName` defaults to `name`. Each call gets its own directory. */
async function outFile(name: string, data: Buffer | string, opts: { sendName?: string; mtime?: number } = {}): Promise<OutgoingFile> {
  const dir = join(tmp, `f${++fileNo}`);
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  await writeFile(path, buf);
  const mtime = opts.mtime ?? T0;
  await utimes(path, mtime, mtime);
  return { id: `file:${path}`, path, sendName: opts.sendName ?? name, size: buf.length, mtime };
}

const hubFile = (name: string, data: Buffer | string, mtime = T0): HubFile => ({
  name,
  data: typeof data === 'string' ? Buffer.from(data) : data,
  mtime,
});

async function startHub(opts: Partial<ScriptedHubOptions> = {}): Promise<ScriptedHub> {
  const hub = new ScriptedHub({ addresses: [HUB_ADDRESS], ...opts });
  hubs.push(hub);
  await hub.listen(0, '127.0.0.1');
  return hub;
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

interface Call {
  result: SessionResult;
  /** The hub's log of this session, complete (the hub saw the connection close). */
  log: HubSessionLog;
  logs: LogLine[];
  env: MemEnv;
}

/** One session from a fresh socket to `hub`; resolves when both sides are done. */
async function call(
  hub: ScriptedHub,
  opts: Partial<Omit<SessionOptions, 'env'>> & {
    env?: MemEnv;
    setup?: (s: CallerSession, env: MemEnv) => void;
    /** Session timers and clock; real ones without it. */
    clock?: ManualClock;
    /** Runs alongside the session (e.g. moves the clock). */
    during?: (s: CallerSession, hubLog: () => HubSessionLog | undefined, logs: LogLine[]) => Promise<void>;
  } = {},
): Promise<Call> {
  const { env = new MemEnv(), setup, clock, during, ...rest } = opts;
  const logs: LogLine[] = [];
  const session = new CallerSession({
    hubAddress: parseAddress(HUB_ADDRESS),
    ourAddresses: [parseAddress(OUR_ADDRESS)],
    password: undefined,
    useCram: true,
    nrMode: false,
    system: 'Test System',
    sysop: 'Test Sysop',
    location: 'Test Town',
    nodeinfo: '115200,TCP,BINKP',
    mailer: MAILER,
    idleTimeout: 5_000,
    timeText: () => 'Tue, 14 Nov 2023 22:13:20 +0000',
    log: (level, _category, message) => logs.push({ level, message }),
    now: clock?.now ?? Date.now,
    ...rest,
    env,
  });
  setup?.(session, env);
  const n = hub.sessions.length + 1;
  const socket = await openSocket(hub.port);
  const running = runSession(session, socket, clock ? { timers: clock } : {});
  if (during) await during(session, () => hub.sessions[n - 1], logs);
  const result = await running;
  await hub.waitSessions(n);
  return { result, log: hub.sessions[n - 1]!, logs, env };
}

/** Command frames in one direction as `M_NAME arg` lines. */
function commands(log: HubSessionLog, dir: 'in' | 'out'): string[] {
  return log.frames.flatMap((f) => (f.dir === dir && f.kind === 'command' ? [`${f.name} ${f.arg}`.trimEnd()] : []));
}

function assertOk(c: Call): void {
  assert.ok(c.result.ok, `session failed: ${c.result.error?.kind}: ${c.result.error?.message}\n${describeFrames(c.log)}`);
  assert.equal(c.log.result, 'ok', `hub says ${c.log.reason}\n${describeFrames(c.log)}`);
}

function assertFailed(c: Call, kind: string): string {
  assert.equal(c.result.ok, false, `session should have failed\n${describeFrames(c.log)}`);
  assert.equal(c.result.error?.kind, kind, `${c.result.error?.kind}: ${c.result.error?.message}`);
  return c.result.error!.message;
}

function hasWarning(c: Call, re: RegExp): boolean {
  return c.logs.some((l) => l.level === 'warning' && re.test(l.message));
}

// ---------------------------------------------------------------------------------------------

describe('CallerSession handshake', () => {
  test('greeting order: SYS ZYZ LOC NDL TIME VER, then M_ADR, no OPT without nr_mode; "-" without a password', T, async () => {
    const hub = await startHub();
    const c = await call(hub);
    assertOk(c);
    assert.deepEqual(commands(c.log, 'in').slice(0, 8), [
      'M_NUL SYS Test System',
      'M_NUL ZYZ Test Sysop',
      'M_NUL LOC Test Town',
      'M_NUL NDL 115200,TCP,BINKP',
      'M_NUL TIME Tue, 14 Nov 2023 22:13:20 +0000',
      `M_NUL VER ${MAILER} binkp/1.1`,
      `M_ADR ${OUR_ADDRESS}`,
      'M_PWD -',
    ]);
    // FTN-NOTES §2: the mailer token of VER carries no spaces.
    assert.equal(c.log.callerVersion?.split(' ').length, 2);
    assert.deepEqual(c.log.callerOptions, []);
    assert.equal(findFrame(c.log, 'in', 'M_NUL', (a) => a.startsWith('OPT')), -1);
    assert.equal(c.result.secure, false);
    assert.equal(c.result.cram, false);
    assert.equal(c.result.binkp11, true);
    assert.deepEqual(c.result.remoteAkas, [HUB_ADDRESS]);
    assert.equal(c.result.remoteInfo['SYS'], 'fnpoll scripted hub');
    assert.deepEqual(c.env.claims.map((l) => l.map((a) => formatAddress(a))), [[HUB_ADDRESS]]);
  });

  test('nr_mode: OPT NR right after M_ADR and before M_PWD, nothing else advertised', T, async () => {
    const hub = await startHub();
    const c = await call(hub, { nrMode: true });
    assertOk(c);
    const adr = findFrame(c.log, 'in', 'M_ADR');
    const f = c.log.frames[adr + 1]!;
    assert.ok(f.kind === 'command' && f.name === 'M_NUL' && f.arg === 'OPT NR', describeFrames(c.log));
    assert.ok(adr + 1 < findFrame(c.log, 'in', 'M_PWD'));
    assert.deepEqual(c.log.callerOptions, ['NR']);
    assert.equal(c.result.nr, true);
  });

  test('M_PWD waits for the hub\'s M_ADR; CRAM-MD5 digest per FTS-1027', T, async () => {
    // The FTS-1027 test vector, served as the hub's challenge.
    const challenge = Buffer.from('f0315b074d728d483d6887d0182fc328', 'hex');
    const hub = await startHub({ password: 'tanstaaftanstaaf', adrDelayMs: 150, random: () => challenge });
    const c = await call(hub, { password: 'tanstaaftanstaaf' });
    assertOk(c);
    const adrOut = findFrame(c.log, 'out', 'M_ADR');
    const pwdIn = findFrame(c.log, 'in', 'M_PWD');
    assert.ok(adrOut >= 0 && pwdIn > adrOut, `M_PWD before the hub's M_ADR:\n${describeFrames(c.log)}`);
    assert.equal(c.log.callerPassword, 'CRAM-MD5-56be002162a4a15ba7a9064f0c93fd00');
    assert.equal(c.result.cram, true);
    assert.equal(c.result.secure, true);
  });

  test('CRAM digest for a random challenge equals HMAC-MD5(password, challenge)', T, async () => {
    const challenge = pseudoRandomBytes(16, 7);
    const hub = await startHub({ password: 'Sécret pass', random: () => challenge });
    const c = await call(hub, { password: 'Sécret pass' });
    assertOk(c);
    const digest = createHmac('md5', Buffer.from('Sécret pass', 'utf8')).update(challenge).digest('hex');
    assert.equal(c.log.callerPassword, `CRAM-MD5-${digest}`);
    assert.equal(c.log.secure, true);
  });

  test('hub M_ADR without the address we called: M_ERR, no M_PWD, kind protocol', T, async () => {
    const hub = await startHub({ addresses: ['2:5020/7@fidonet', '2:5020/8@fidonet'], password: 'secret' });
    const c = await call(hub, { password: 'secret' });
    const message = assertFailed(c, 'protocol');
    assert.match(message, /2:5020\/1@fidonet/);
    assert.match(message, /2:5020\/7@fidonet/);
    assert.ok(findFrame(c.log, 'in', 'M_ERR') >= 0, describeFrames(c.log));
    assert.equal(findFrame(c.log, 'in', 'M_PWD'), -1, describeFrames(c.log));
    assert.deepEqual(c.env.claims, []);
  });

  test('every hub AKA busy (claimAkas gives none): M_BSY, kind busy, no password sent', T, async () => {
    const hub = await startHub({ password: 'secret' });
    const env = new MemEnv();
    env.claimAkas = async () => [];
    const c = await call(hub, { password: 'secret', env });
    assertFailed(c, 'busy');
    assert.ok(findFrame(c.log, 'in', 'M_BSY') >= 0, describeFrames(c.log));
    assert.equal(findFrame(c.log, 'in', 'M_PWD'), -1);
  });

  test('use_cram = yes and no challenge offered: kind auth naming use_cram = no; no password on the wire', T, async () => {
    const hub = await startHub({ cram: false, password: 'secret' });
    const c = await call(hub, { password: 'secret', useCram: true });
    const message = assertFailed(c, 'auth');
    assert.match(message, /use_cram = no/);
    assert.equal(findFrame(c.log, 'in', 'M_PWD'), -1, describeFrames(c.log));
    assert.ok(!c.log.frames.some((f) => f.kind === 'command' && f.arg.includes('secret')));
    assert.ok(findFrame(c.log, 'in', 'M_ERR') >= 0);
  });

  test('use_cram = no: the password goes in plain text, with a warning, and is accepted', T, async () => {
    const hub = await startHub({ cram: false, password: 'secret' });
    const c = await call(hub, { password: 'secret', useCram: false });
    assertOk(c);
    assert.equal(c.log.callerPassword, 'secret');
    assert.equal(c.result.secure, true);
    assert.equal(c.result.cram, false);
    assert.ok(hasWarning(c, /plain text/), JSON.stringify(c.logs));
  });

  test('requireCram hub: CRAM is accepted; a plain-text password gets "You must support MD5" (kind auth)', T, async () => {
    const hub = await startHub({ password: 'secret', requireCram: true });
    const good = await call(hub, { password: 'secret' });
    assertOk(good);
    assert.equal(good.result.cram, true);

    hub.configure({ cram: false });
    const bad = await call(hub, { password: 'secret', useCram: false });
    assert.match(assertFailed(bad, 'auth'), /You must support MD5/);
  });

  test('M_OK non-secure after a password: warning, and received files are offered as insecure', T, async () => {
    const hub = await startHub({ files: [hubFile('news.txt', 'hello')] });
    const c = await call(hub, { password: 'secret' });
    assertOk(c);
    assert.equal(c.result.secure, false);
    assert.ok(hasWarning(c, /non-secure/), JSON.stringify(c.logs));
    assert.deepEqual(c.env.offers.map((o) => o.secure), [false]);
    assert.equal(c.env.received.get('news.txt')?.secure, false);
  });

  test('a secure session offers and completes received files as secure', T, async () => {
    const hub = await startHub({ password: 'secret', files: [hubFile('news.txt', 'hello')] });
    const c = await call(hub, { password: 'secret' });
    assertOk(c);
    assert.equal(c.result.secure, true);
    assert.equal(c.env.received.get('news.txt')?.secure, true);
    assert.ok(!hasWarning(c, /non-secure/));
  });

  test('wrong password: kind auth with the hub\'s text', T, async () => {
    const hub = await startHub({ password: 'right' });
    const c = await call(hub, { password: 'wrong' });
    assert.match(assertFailed(c, 'auth'), /Bad password/);
    assert.equal(c.result.error?.remote, 'Bad password');
  });

  test('no password to a hub that has one: kind auth', T, async () => {
    const hub = await startHub({ password: 'right' });
    const c = await call(hub);
    assert.equal(c.log.callerPassword, '-');
    assertFailed(c, 'auth');
  });

  test('M_BSY: kind busy with the hub\'s text', T, async () => {
    const hub = await startHub({ busy: 'Too many servers' });
    const c = await call(hub);
    assert.match(assertFailed(c, 'busy'), /Too many servers/);
    assert.equal(c.result.error?.remote, 'Too many servers');
  });

  test('M_ERR after M_PWD: kind auth for a password complaint, protocol otherwise', T, async () => {
    const hub = await startHub({ errorAfterPwd: 'Incorrect password' });
    assert.match(assertFailed(await call(hub), 'auth'), /Incorrect password/);
    hub.configure({ errorAfterPwd: 'Internal error: disk full' });
    assert.match(assertFailed(await call(hub), 'protocol'), /disk full/);
  });

  test('M_ERR after M_PWD is an auth failure by its stage, whatever the wording; busy and disk full are not', T, async () => {
    // FTN-NOTES §9: some answering mailers say "Security violation" to a wrong password.
    const hub = await startHub({ errorAfterPwd: 'Security violation' });
    const c = await call(hub, { password: 'secret' });
    assert.match(assertFailed(c, 'auth'), /Security violation/);
    assert.equal(c.result.error?.remote, 'Security violation');
    hub.configure({ errorAfterPwd: 'Access denied' });
    assertFailed(await call(hub, { password: 'secret' }), 'auth');
    hub.configure({ errorAfterPwd: 'System busy, try again later' });
    assertFailed(await call(hub, { password: 'secret' }), 'busy');
    hub.configure({ errorAfterPwd: 'No space left: disk full' });
    assertFailed(await call(hub, { password: 'secret' }), 'protocol');
  });

  test('M_ERR after M_OK is not an auth failure, even when it mentions a password', T, async () => {
    const hub = await startHub({
      handlers: { [Cmd.M_EOB]: (_arg, ctx) => ctx.send(Cmd.M_ERR, 'password database locked') },
    });
    const out = await outFile('one.txt', 'one');
    assert.match(assertFailed(await call(hub, { password: 'secret', env: new MemEnv([out]) }), 'protocol'), /password database locked/);
  });

  test('M_NUL from the hub is kept only for known keys, cut to a bounded length: a chattering hub cannot grow our memory', T, async () => {
    const hub = await startHub({
      handlers: {
        [Cmd.M_ADR]: (arg, ctx) => {
          for (let i = 0; i < 3000; i++) ctx.send(Cmd.M_NUL, `K${i} ${'v'.repeat(500)}`);
          ctx.send(Cmd.M_NUL, `LOC ${'L'.repeat(20_000)}`);
          ctx.send(Cmd.M_NUL, `OPT ${Array.from({ length: 2000 }, (_, i) => `X${i}`).join(' ')}`);
          ctx.handle(Cmd.M_ADR, arg);
        },
      },
    });
    const c = await call(hub);
    assertOk(c);
    assert.deepEqual(Object.keys(c.result.remoteInfo).sort(), ['LOC', 'NDL', 'SYS', 'TIME', 'VER', 'ZYZ']);
    for (const [k, v] of Object.entries(c.result.remoteInfo)) assert.ok(v.length <= 300, `${k}: ${v.length} characters kept`);
    assert.match(c.result.remoteInfo['LOC']!, /^L+… \(\d+ more characters\)$/);
  });

  test('control characters from the hub are escaped in every log line and in the result; long texts are cut', T, async () => {
    const evil = 'Evil\x1b[2J\rBBS\x08\x7f\x9b31m\n! 01 Dec 00:00:00 fake line';
    const hub = await startHub({
      files: [hubFile('bad\x1b[31mname\x07.txt', 'data')],
      handlers: {
        [Cmd.M_ADR]: (arg, ctx) => {
          ctx.send(Cmd.M_NUL, `SYS ${evil}`);
          ctx.send(Cmd.M_NUL, `XYZ ${evil}`);
          ctx.handle(Cmd.M_ADR, arg);
        },
        [Cmd.M_EOB]: (_arg, ctx) => ctx.send(Cmd.M_ERR, `${evil}${'z'.repeat(5000)}`),
      },
    });
    const c = await call(hub);
    const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
    const shown = [...c.logs.map((l) => l.message), c.result.error?.message ?? '', c.result.error?.remote ?? '', ...Object.values(c.result.remoteInfo)];
    for (const text of shown) assert.ok(!CONTROL.test(text), `raw control character in ${JSON.stringify(text)}`);
    assert.equal(c.result.remoteInfo['SYS'], 'Evil\\x1b[2J\\x0dBBS\\x08\\x7f\\x9b31m\\x0a! 01 Dec 00:00:00 fake line');
    assert.ok(c.logs.some((l) => l.message.includes('bad\\x1b[31mname\\x07.txt')), JSON.stringify(c.logs));
    assert.match(assertFailed(c, 'protocol'), /^hub error: Evil\\x1b\[2J/);
    assert.ok(c.result.error!.message.length < 1000, `${c.result.error!.message.length} characters`);
    // The file itself arrived under its real name: escaping is for showing, not for the data.
    assert.ok(c.env.received.has('bad\x1b[31mname\x07.txt'));
  });
});

describe('CallerSession batches', () => {
  test('binkp/1.1: secondBatch files arrive; the session ends after an empty batch', T, async () => {
    const hub = await startHub({
      files: [hubFile('first.txt', 'one')],
      secondBatch: [hubFile('second.txt', 'two')],
    });
    const out = await outFile('mine.txt', 'to the hub');
    const c = await call(hub, { env: new MemEnv([out]) });
    assertOk(c);
    assert.equal(c.result.binkp11, true);
    // 1: first.txt and mine.txt; 2: second.txt; 3: nothing, the end.
    assert.equal(c.result.batches, 3);
    assert.equal(c.log.batches, 3);
    assert.equal(c.env.received.get('first.txt')?.data.toString(), 'one');
    assert.equal(c.env.received.get('second.txt')?.data.toString(), 'two');
    assert.deepEqual(c.env.confirmedIds, [out.id]);
    assert.equal(hub.received[0]?.data.toString(), 'to the hub');
    // The last two command frames are the M_EOB pair of the empty batch.
    const cmds = c.log.frames.filter((f) => f.kind === 'command').slice(-2);
    assert.deepEqual(cmds.map((f) => (f.kind === 'command' ? f.name : '')), ['M_EOB', 'M_EOB']);
    assert.equal(c.result.stats.filesReceived, 2);
    assert.equal(c.result.stats.filesSent, 1);
  });

  test('an empty first batch ends the session at once', T, async () => {
    const hub = await startHub();
    const c = await call(hub);
    assertOk(c);
    assert.equal(c.result.batches, 1);
    assert.deepEqual(commands(c.log, 'in').slice(-1), ['M_EOB']);
  });

  test('binkp/1.0 hub: the session ends after the first batch, still ok', T, async () => {
    const hub = await startHub({
      version: '1.0',
      files: [hubFile('first.txt', 'one')],
      secondBatch: [hubFile('second.txt', 'two')],
    });
    const out = await outFile('mine.txt', 'to the hub');
    const c = await call(hub, { env: new MemEnv([out]) });
    assertOk(c);
    assert.equal(c.result.binkp11, false);
    assert.equal(c.result.batches, 1);
    assert.ok(c.env.received.has('first.txt'));
    assert.ok(!c.env.received.has('second.txt'));
    assert.deepEqual(c.env.confirmedIds, [out.id]);
  });
});

describe('CallerSession NR mode (FTS-1028)', () => {
  test('nr_mode: we offer -1, send after M_GET with a fresh M_FILE; the hub\'s -1 offers get M_GET 0', T, async () => {
    const data = pseudoRandomBytes(50_000, 3);
    const hub = await startHub({ files: [hubFile('from-hub.bin', pseudoRandomBytes(9_000, 4))] });
    const out = await outFile('to-hub.bin', data);
    const c = await call(hub, { nrMode: true, env: new MemEnv([out]) });
    assertOk(c);
    const offer = findFrame(c.log, 'in', 'M_FILE', (a) => a === `to-hub.bin 50000 ${T0} -1`);
    const get = findFrame(c.log, 'out', 'M_GET', (a) => a === `to-hub.bin 50000 ${T0} 0`, offer);
    const fresh = findFrame(c.log, 'in', 'M_FILE', (a) => a === `to-hub.bin 50000 ${T0} 0`, get);
    assert.ok(offer >= 0 && get > offer && fresh > get, describeFrames(c.log));
    // No data of ours before the fresh M_FILE.
    assert.ok(!c.log.frames.slice(0, fresh).some((f) => f.kind === 'data' && f.dir === 'in' && f.bytes > 0), describeFrames(c.log));
    assert.deepEqual(hub.received[0]?.data, data);
    assert.equal(hub.received[0]?.offsetStart, 0);
    // The hub honoured our OPT NR: it offered with -1, and we asked from 0.
    assert.ok(findFrame(c.log, 'out', 'M_FILE', (a) => a === `from-hub.bin 9000 ${T0} -1`) >= 0, describeFrames(c.log));
    assert.ok(findFrame(c.log, 'in', 'M_GET', (a) => a === `from-hub.bin 9000 ${T0} 0`) >= 0, describeFrames(c.log));
    assert.deepEqual(c.env.received.get('from-hub.bin')?.data, pseudoRandomBytes(9_000, 4));
    assert.equal(c.result.nr, true);
  });

  test('hub in NR mode: M_GET 0 for a new file, M_GET at the partial length for a kept partial', T, async () => {
    const fresh = pseudoRandomBytes(12_000, 5);
    const resumed = pseudoRandomBytes(20_000, 6);
    const hub = await startHub({ nr: true, files: [hubFile('fresh.bin', fresh), hubFile('resumed.bin', resumed)] });
    const env = new MemEnv();
    env.partials.set(fileKey({ name: 'resumed.bin', size: 20_000, mtime: T0 }), resumed.subarray(0, 7_777));
    const c = await call(hub, { env });
    assertOk(c);
    assert.deepEqual(commands(c.log, 'in').filter((l) => l.startsWith('M_GET')), [
      `M_GET fresh.bin 12000 ${T0} 0`,
      `M_GET resumed.bin 20000 ${T0} 7777`,
    ]);
    assert.deepEqual(env.received.get('fresh.bin')?.data, fresh);
    assert.deepEqual(env.received.get('resumed.bin')?.data, resumed);
    assert.equal(c.result.stats.bytesReceived, 12_000 + 20_000 - 7_777);
    assert.equal(c.result.nr, true);
  });

  test('the hub\'s OPT NR (before M_OK) makes us offer with -1', T, async () => {
    const hub = await startHub({ loginOptions: ['NR'] });
    const out = await outFile('x.txt', 'xyz');
    const c = await call(hub, { env: new MemEnv([out]) });
    assertOk(c);
    assert.ok(findFrame(c.log, 'in', 'M_FILE', (a) => a === `x.txt 3 ${T0} -1`) >= 0, describeFrames(c.log));
    assert.equal(hub.received[0]?.data.toString(), 'xyz');
  });
});

describe('CallerSession resend, skip and resume', () => {
  test('M_GET from the hub: a fresh M_FILE at that offset before data; the hub gets the rest intact', T, async () => {
    const data = pseudoRandomBytes(100_000, 8);
    const hub = await startHub({ getOffset: { name: 'big.bin', offset: 40_000 } });
    const out = await outFile('big.bin', data);
    const c = await call(hub, { env: new MemEnv([out]) });
    assertOk(c);
    const get = findFrame(c.log, 'out', 'M_GET', (a) => a === `big.bin 100000 ${T0} 40000`);
    assert.ok(get >= 0, describeFrames(c.log));
    const next = c.log.frames.slice(get + 1).find((f) => f.kind === 'command' && f.dir === 'in');
    assert.ok(next?.kind === 'command' && next.name === 'M_FILE' && next.arg === `big.bin 100000 ${T0} 40000`, describeFrames(c.log));
    assert.equal(hub.received.length, 1);
    assert.equal(hub.received[0]!.offsetStart, 40_000);
    assert.deepEqual(hub.received[0]!.data, data.subarray(40_000));
    assert.deepEqual(c.env.confirmedIds, [out.id]);
  });

  test('M_GET at the very end of the file: fresh M_FILE and one empty data frame, then M_GOT', T, async () => {
    const hub = await startHub({ getOffset: { name: 'small.txt', offset: 5 } });
    const out = await outFile('small.txt', 'hello');
    const c = await call(hub, { env: new MemEnv([out]), idleTimeout: 2_000 });
    assertOk(c);
    assert.ok(findFrame(c.log, 'in', 'M_FILE', (a) => a === `small.txt 5 ${T0} 5`) >= 0, describeFrames(c.log));
    assert.equal(hub.received[0]?.offsetStart, 5);
    assert.deepEqual(c.env.confirmedIds, [out.id]);
  });

  test('M_GET past the end of the file: M_ERR and kind protocol', T, async () => {
    const hub = await startHub({ getOffset: { name: 'small.txt', offset: 6 } });
    const out = await outFile('small.txt', 'hello');
    const c = await call(hub, { env: new MemEnv([out]) });
    assert.match(assertFailed(c, 'protocol'), /offset 6/);
    assert.ok(findFrame(c.log, 'in', 'M_ERR') >= 0, describeFrames(c.log));
    assert.deepEqual(c.env.confirmedIds, []);
  });

  test('the hub resumes our file from its partial after a dropped line', T, async () => {
    const data = pseudoRandomBytes(60_000, 9);
    const hub = await startHub({ closeAfterBytes: 25_000 });
    const out = await outFile('resume.bin', data);
    const env = new MemEnv([out]);
    const first = await call(hub, { env });
    assertFailed(first, 'protocol');
    assert.deepEqual(env.confirmedIds, []);
    assert.equal(hub.partialLength('resume.bin'), 25_000);

    hub.configure({ closeAfterBytes: undefined });
    const second = await call(hub, { env });
    assertOk(second);
    assert.ok(findFrame(second.log, 'out', 'M_GET', (a) => a === `resume.bin 60000 ${T0} 25000`) >= 0, describeFrames(second.log));
    assert.deepEqual(hub.received[0]?.data, data);
    assert.deepEqual(env.confirmedIds, [out.id]);
  });

  test('M_SKIP: the file is not confirmed, not offered again this session; the session is ok', T, async () => {
    const hub = await startHub({ skip: ['later.txt'] });
    const a = await outFile('now.txt', 'now');
    const b = await outFile('later.txt', 'later');
    const c = await call(hub, { env: new MemEnv([a, b]) });
    assertOk(c);
    assert.deepEqual(c.env.confirmedIds, [a.id]);
    assert.deepEqual(c.env.skippedIds, [b.id]);
    assert.equal(c.result.stats.filesSkipped, 1);
    assert.equal(commands(c.log, 'in').filter((l) => l.startsWith('M_FILE later.txt')).length, 1);
    assert.ok(hasWarning(c, /later\.txt/));
  });

  test('an interrupted receive keeps its partial; the next session asks for the rest with M_GET', T, async () => {
    const data = pseudoRandomBytes(300_000, 10);
    const hub = await startHub({ files: [hubFile('long.bin', data)] });
    const env = new MemEnv();
    const first = await call(hub, {
      env,
      setup: (s, e) => {
        e.onWrite = (_f, received) => {
          if (received >= 50_000) s.abort('test: line dropped');
        };
      },
    });
    assertFailed(first, 'aborted');
    env.onWrite = undefined;
    const kept = env.partials.get(fileKey({ name: 'long.bin', size: 300_000, mtime: T0 }));
    assert.ok(kept && kept.length >= 50_000 && kept.length < 300_000, `partial of ${kept?.length} bytes`);
    assert.deepEqual(kept, data.subarray(0, kept.length));

    const second = await call(hub, { env });
    assertOk(second);
    assert.ok(findFrame(second.log, 'in', 'M_GET', (a) => a === `long.bin 300000 ${T0} ${kept.length}`) >= 0, describeFrames(second.log));
    assert.ok(findFrame(second.log, 'out', 'M_FILE', (a) => a === `long.bin 300000 ${T0} ${kept.length}`) >= 0, describeFrames(second.log));
    assert.deepEqual(env.received.get('long.bin')?.data, data);
    assert.equal(second.result.stats.bytesReceived, 300_000 - kept.length);
  });
});

describe('CallerSession timeouts', () => {
  test('idle_timeout: a hub that stops answering after its greeting', T, async () => {
    const hub = await startHub({ stallAfter: 'greeting', adrDelayMs: 60_000 });
    const clock = new ManualClock();
    let before: boolean | undefined;
    const c = await call(hub, {
      idleTimeout: 200,
      clock,
      during: async (_s, hubLog) => {
        await until(() => findFrame(hubLog() ?? { frames: [] } as never, 'in', 'M_ADR') >= 0, 'our greeting at the hub');
        await clock.advance(199);
        before = hubLog()?.result === undefined;
        await clock.advance(1);
      },
    });
    assert.equal(before, true, 'the session ended before idle_timeout');
    const message = assertFailed(c, 'timeout');
    assert.match(message, /idle_timeout/);
    assert.match(message, /greeting/);
  });

  test('idle_timeout counts progress, not chatter: a hub that only sends M_NUL after M_OK is idle', T, async () => {
    let hubCtx: HubSessionContext | undefined;
    // The hub takes our file and never acknowledges it; it only chatters.
    const hub = await startHub({ handlers: { [Cmd.M_FILE]: (_arg, ctx) => (hubCtx = ctx) } });
    const out = await outFile('held.txt', 'x'.repeat(10_000));
    const clock = new ManualClock();
    let chatterBefore = 0;
    const c = await call(hub, {
      env: new MemEnv([out]),
      idleTimeout: 300,
      clock,
      during: async (s, hubLog, logs) => {
        await until(() => hubLog()?.bytesIn === 10_000, 'our file at the hub');
        for (let i = 1; i <= 5 && s.progress.bytesSent === 10_000; i++) {
          const last = logs.length;
          hubCtx!.send(Cmd.M_NUL, `TRF chatter ${i}`);
          await until(() => logs.slice(last).some((l) => l.message.includes(`chatter ${i}`)) || hubLog()?.result !== undefined, 'the chatter');
          if (hubLog()?.result !== undefined) break;
          chatterBefore = i;
          await clock.advance(100);
        }
      },
    });
    const message = assertFailed(c, 'timeout');
    assert.match(message, /no transfer progress for 0.3 s \(idle_timeout\) during transfer/);
    assert.equal(chatterBefore, 3, 'the session should end 300 ms after the last progress, chatter or not');
  });

  test('session_timeout: a hub that never answers M_PWD', T, async () => {
    const hub = await startHub({ stallAfter: 'pwd' });
    const clock = new ManualClock();
    const c = await call(hub, {
      idleTimeout: 30_000,
      sessionTimeout: 250,
      clock,
      during: async (_s, hubLog) => {
        await until(() => findFrame(hubLog() ?? { frames: [] } as never, 'in', 'M_PWD') >= 0, 'our M_PWD at the hub');
        await clock.advance(250);
      },
    });
    assert.match(assertFailed(c, 'timeout'), /session_timeout/);
    assert.equal(c.log.result, 'failed');
  });
});

describe('CallerSession files', () => {
  test('a 0-byte file in both directions', T, async () => {
    const hub = await startHub({ files: [hubFile('empty-in.txt', '')] });
    const out = await outFile('empty-out.txt', '');
    const c = await call(hub, { env: new MemEnv([out]) });
    assertOk(c);
    assert.equal(hub.received.length, 1);
    assert.equal(hub.received[0]!.name, 'empty-out.txt');
    assert.equal(hub.received[0]!.size, 0);
    assert.deepEqual(c.env.confirmedIds, [out.id]);
    assert.deepEqual(c.env.received.get('empty-in.txt')?.data, Buffer.alloc(0));
    assert.ok(findFrame(c.log, 'in', 'M_GOT', (a) => a === `empty-in.txt 0 ${T0}`) >= 0, describeFrames(c.log));
  });

  test('the same name twice: never offered twice in one batch, the second goes in the next batch', T, async () => {
    const a = await outFile('dup.txt', 'first copy');
    const b = await outFile('dup.txt', 'second, longer copy');
    const other = await outFile('other.txt', 'other');
    // Which batch the hub was in when each of our M_FILEs arrived.
    const offered: { arg: string; batch: number }[] = [];
    const hub = await startHub({
      onFrame: (log, f) => {
        if (f.dir === 'in' && f.kind === 'command' && f.name === 'M_FILE') offered.push({ arg: f.arg, batch: log.batches });
      },
    });
    const c = await call(hub, { env: new MemEnv([a, b, other]) });
    assertOk(c);
    const dups = offered.filter((o) => o.arg.startsWith('dup.txt '));
    assert.equal(dups.length, 2, JSON.stringify(offered));
    assert.notEqual(dups[0]!.batch, dups[1]!.batch, JSON.stringify(offered));
    assert.deepEqual(hub.received.map((r) => r.data.toString()).sort(), ['first copy', 'other', 'second, longer copy']);
    assert.deepEqual([...c.env.confirmedIds].sort(), [a.id, b.id, other.id].sort());
    assert.equal(c.result.batches, 3);
  });

  test('a file we already have is acknowledged without receiving it again', T, async () => {
    const news = hubFile('news.txt', 'same news');
    const hub = await startHub({ files: [news] });
    const env = new MemEnv();
    assertOk(await call(hub, { env }));
    hub.addFiles([news]);
    const again = await call(hub, { env });
    assertOk(again);
    assert.ok(findFrame(again.log, 'in', 'M_GOT', (a) => a === `news.txt 9 ${T0}`) >= 0, describeFrames(again.log));
    assert.equal(again.result.stats.filesReceived, 0);
    assert.equal(again.result.stats.bytesReceived, 0);
    assert.equal(hub.outbound.length, 0);
  });

  test('names with spaces and backslashes are escaped on the wire and matched back', T, async () => {
    const hub = await startHub({ files: [hubFile('hub file\\1.txt', 'from hub')] });
    const out = await outFile('my file.txt', 'from us');
    const c = await call(hub, { env: new MemEnv([out]) });
    assertOk(c);
    assert.ok(findFrame(c.log, 'in', 'M_FILE', (a) => a.startsWith('my\\x20file.txt ')) >= 0, describeFrames(c.log));
    assert.equal(hub.received[0]?.name, 'my file.txt');
    assert.deepEqual(c.env.confirmedIds, [out.id]);
    assert.equal(c.env.received.get('hub file\\1.txt')?.data.toString(), 'from hub');
  });

  test('many frames both ways at odd frame sizes arrive intact', T, async () => {
    const down = [pseudoRandomBytes(200_001, 21), pseudoRandomBytes(3, 22)];
    const up = [pseudoRandomBytes(150_000, 23), pseudoRandomBytes(70_001, 24)];
    const hub = await startHub({ frameSize: 777, files: down.map((d, i) => hubFile(`down${i}.bin`, d)) });
    const outs = [await outFile('up0.bin', up[0]!), await outFile('up1.bin', up[1]!)];
    const c = await call(hub, { bufferSize: 1000, env: new MemEnv(outs) });
    assertOk(c);
    assert.deepEqual(c.env.received.get('down0.bin')?.data, down[0]);
    assert.deepEqual(c.env.received.get('down1.bin')?.data, down[1]);
    assert.deepEqual(hub.received.map((r) => r.data), up);
    const dataIn = c.log.frames.filter((f) => f.kind === 'data' && f.dir === 'in');
    // 1000-byte frames: 150 + 71 of them.
    assert.equal(dataIn.reduce((n, f) => n + (f.kind === 'data' ? f.frames : 0), 0), 150 + 71);
    assert.equal(c.result.stats.bytesSent, 220_001);
    assert.equal(c.result.stats.bytesReceived, 200_004);
  });

  test('a file that vanished before sending is skipped with a warning; the rest goes', T, async () => {
    const gone: OutgoingFile = { id: 'file:gone', path: join(tmp, 'no-such-dir', 'gone.txt'), sendName: 'gone.txt', size: 10, mtime: T0 };
    const kept = await outFile('kept.txt', 'kept');
    const c = await call(await startHub(), { env: new MemEnv([gone, kept]) });
    assertOk(c);
    assert.ok(hasWarning(c, /gone\.txt/), JSON.stringify(c.logs));
    assert.equal(findFrame(c.log, 'in', 'M_FILE', (a) => a.startsWith('gone.txt')), -1);
    assert.deepEqual(c.env.confirmedIds, [kept.id]);
  });
});
