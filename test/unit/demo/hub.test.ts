import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { FrameDecoder, encodeCommand, encodeData } from '../../../src/binkp/frame.js';
import { Cmd, argText, commandName } from '../../../src/binkp/commands.js';
import { cramResponse } from '../../../src/binkp/cram.js';
import { crc32, formatCrc } from '../../../src/binkp/crc.js';
import { deflateSync } from 'node:zlib';
import {
  HubSession,
  ScriptedHub,
  describeFrames,
  findFrame,
  formatBinkpTime,
  newHubState,
  newSessionLog,
  type HubSessionLog,
  type ScriptedHubOptions,
} from '../../../src/demo/hub.js';

type Frame = { kind: 'cmd'; id: number; arg: string } | { kind: 'data'; data: Buffer };

/** A minimal binkp caller on the frame codec: it only does what each test tells it to. */
class RawClient {
  private readonly frames: Frame[] = [];
  private waiting: (() => void) | undefined;
  private dataParts: Buffer[] = [];
  readonly closed: Promise<void>;
  private isClosed = false;

  private constructor(private readonly socket: Socket) {
    const decoder = new FrameDecoder({
      command: (id, arg) => this.push({ kind: 'cmd', id, arg: argText(arg) }),
      data: (piece, end) => {
        this.dataParts.push(Buffer.from(piece));
        if (end) {
          this.push({ kind: 'data', data: Buffer.concat(this.dataParts) });
          this.dataParts = [];
        }
      },
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private push(f: Frame): void {
    this.frames.push(f);
    this.wake();
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  /** The next frame, or undefined once the hub closed and nothing is left. */
  async next(): Promise<Frame | undefined> {
    while (this.frames.length === 0) {
      if (this.isClosed) return undefined;
      await new Promise<void>((r) => (this.waiting = r));
    }
    return this.frames.shift();
  }

  /** The next frame must be command `id`: returns its argument. */
  async expect(id: number): Promise<string> {
    const f = await this.next();
    assert.ok(f, `expected ${commandName(id)}, the hub closed`);
    assert.equal(f.kind, 'cmd', `expected ${commandName(id)}, got a data frame`);
    assert.equal(commandName(f.id), commandName(id), `expected ${commandName(id)}, got ${commandName(f.id)} ${f.arg}`);
    return f.arg;
  }

  /** Read frames until command `id`; returns its argument and what came before. */
  async until(id: number): Promise<{ arg: string; before: Frame[] }> {
    const before: Frame[] = [];
    for (;;) {
      const f = await this.next();
      assert.ok(f, `hub closed before ${commandName(id)}`);
      if (f.kind === 'cmd' && f.id === id) return { arg: f.arg, before };
      before.push(f);
    }
  }

  async data(): Promise<Buffer> {
    const f = await this.next();
    assert.ok(f && f.kind === 'data', 'expected a data frame');
    return f.data;
  }

  send(id: number, arg = ''): void {
    this.socket.write(encodeCommand(id, arg));
  }

  sendData(payload: Buffer): void {
    this.socket.write(encodeData(payload));
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closed;
  }

  /** Read the greeting, present `address`, answer the challenge: returns the M_OK argument. */
  async login(opts: { password?: string; version?: string; address?: string; plaintext?: boolean } = {}): Promise<string> {
    const { arg: adr, before } = await this.until(Cmd.M_ADR);
    assert.match(adr, /2:5020\/1@fidonet/);
    const first = before[0];
    const challenge = first?.kind === 'cmd' ? /CRAM-MD5-([0-9a-f]+)/.exec(first.arg)?.[1] : undefined;
    this.send(Cmd.M_NUL, `VER raw-test/0 binkp/${opts.version ?? '1.1'}`);
    this.send(Cmd.M_ADR, opts.address ?? '2:5020/2@fidonet');
    const pwd = opts.password;
    if (pwd === undefined) this.send(Cmd.M_PWD, '-');
    else if (challenge && !opts.plaintext) this.send(Cmd.M_PWD, cramResponse(pwd, challenge));
    else this.send(Cmd.M_PWD, pwd);
    return this.until(Cmd.M_OK).then((r) => r.arg);
  }

  /** login() to a hub with nothing to send: it sends M_EOB right after M_OK, as binkd does. */
  async loginToIdleHub(opts: Parameters<RawClient['login']>[0] = {}): Promise<string> {
    const ok = await this.login(opts);
    assert.equal(await this.expect(Cmd.M_EOB), '');
    return ok;
  }
}

const HUB = ['2:5020/1@fidonet'];
const hubs: ScriptedHub[] = [];

async function startHub(opts: Partial<ScriptedHubOptions> = {}): Promise<{ hub: ScriptedHub; port: number }> {
  const hub = new ScriptedHub({ addresses: HUB, ...opts });
  hubs.push(hub);
  return { hub, port: await hub.listen() };
}

async function endedSession(hub: ScriptedHub, n = 1): Promise<HubSessionLog> {
  await hub.waitSessions(n);
  return hub.sessions[n - 1]!;
}

after(async () => {
  await Promise.all(hubs.map((h) => h.close()));
});

const T0 = 1_700_000_000;
/** Every network test gets a deadline, so a hang fails that test alone. */
const T = { timeout: 5_000 };
const file = (name: string, text: string, mtime = T0) => ({ name, data: Buffer.from(text), mtime });

describe('ScriptedHub greeting and login', () => {
  test('greeting: CRAM challenge first, info lines, VER, then M_ADR with a leading space', T, async () => {
    const { port } = await startHub({
      addresses: ['2:5020/1@fidonet', '2:5020/1.1@fidonet'],
      random: (n) => Buffer.alloc(n, 0xab),
      now: () => Date.UTC(2024, 0, 7, 9, 5, 3),
    });
    const c = await RawClient.open(port);
    const nuls: string[] = [];
    for (let i = 0; i < 7; i++) nuls.push(await c.expect(Cmd.M_NUL));
    assert.deepEqual(nuls, [
      `OPT CRAM-MD5-${'ab'.repeat(16)}`,
      'SYS fnpoll scripted hub',
      'ZYZ Hub Sysop',
      'LOC Loopback',
      'NDL 115200,TCP,BINKP',
      'TIME Sun,  7 Jan 2024 09:05:03 +0000',
      'VER scripted-hub/1.0 binkp/1.1',
    ]);
    assert.equal(await c.expect(Cmd.M_ADR), ' 2:5020/1@fidonet 2:5020/1.1@fidonet');
    await c.close();
  });

  test('no CRAM offered when cram is false; version 1.0 announced', T, async () => {
    const { port } = await startHub({ cram: false, version: '1.0' });
    const c = await RawClient.open(port);
    const { before } = await c.until(Cmd.M_ADR);
    const texts = before.map((f) => (f.kind === 'cmd' ? f.arg : ''));
    assert.ok(!texts.some((t) => t.includes('CRAM')), texts.join('|'));
    assert.ok(texts.includes('VER scripted-hub/1.0 binkp/1.0'));
    await c.close();
  });

  test('CRAM-MD5 login gives M_OK secure; an empty batch ends the session ok', T, async () => {
    const { hub, port } = await startHub({ password: 'tanstaaf' });
    const c = await RawClient.open(port);
    assert.equal(await c.login({ password: 'tanstaaf' }), 'secure');
    assert.equal(await c.expect(Cmd.M_EOB), '');
    c.send(Cmd.M_EOB);
    await c.closed;
    const log = await endedSession(hub);
    assert.equal(log.result, 'ok', describeFrames(log));
    assert.equal(log.secure, true);
    assert.equal(log.batches, 1);
    assert.deepEqual(log.callerAddresses, ['2:5020/2@fidonet']);
    assert.match(log.callerPassword ?? '', /^CRAM-MD5-[0-9a-f]{32}$/);
    // The order the caller did things in is on record.
    assert.ok(findFrame(log, 'out', 'M_ADR') < findFrame(log, 'in', 'M_PWD'));
  });

  test('plaintext password is accepted unless CRAM is required', T, async () => {
    const { port } = await startHub({ password: 'pw' });
    const c = await RawClient.open(port);
    assert.equal(await c.login({ password: 'pw', plaintext: true }), 'secure');
    await c.close();

    const strict = await startHub({ password: 'pw', requireCram: true });
    const d = await RawClient.open(strict.port);
    await d.until(Cmd.M_ADR);
    d.send(Cmd.M_ADR, '2:5020/2@fidonet');
    d.send(Cmd.M_PWD, 'pw');
    assert.equal(await d.until(Cmd.M_ERR).then((r) => r.arg), 'You must support MD5');
    await d.closed;
    const log = await endedSession(strict.hub);
    assert.equal(log.result, 'failed');
  });

  test('wrong password: M_ERR "Bad password" and the session fails', T, async () => {
    const { hub, port } = await startHub({ password: 'right' });
    const c = await RawClient.open(port);
    const challenge = (await c.expect(Cmd.M_NUL)).replace('OPT CRAM-MD5-', '');
    await c.until(Cmd.M_ADR);
    c.send(Cmd.M_ADR, '2:5020/2@fidonet');
    c.send(Cmd.M_PWD, cramResponse('wrong', challenge));
    assert.equal(await c.expect(Cmd.M_ERR), 'Bad password');
    await c.closed;
    const log = await endedSession(hub);
    assert.equal(log.result, 'failed');
    assert.match(log.reason ?? '', /bad password/);
    assert.equal(findFrame(log, 'out', 'M_OK'), -1);
  });

  test('no password configured: "-" and any password give a non-secure session', T, async () => {
    const { port } = await startHub();
    const c = await RawClient.open(port);
    assert.equal(await c.login(), 'non-secure');
    await c.close();
    const d = await RawClient.open(port);
    assert.equal(await d.login({ password: 'whatever' }), 'non-secure');
    await d.close();
  });

  test('busy: M_BSY right after the greeting, then the hub closes', T, async () => {
    const { hub, port } = await startHub({ busy: 'Too many servers' });
    const c = await RawClient.open(port);
    const { before } = await c.until(Cmd.M_ADR);
    assert.ok(before.length >= 7);
    assert.equal(await c.expect(Cmd.M_BSY), 'Too many servers');
    assert.equal(await c.next(), undefined);
    const log = await endedSession(hub);
    assert.equal(log.result, 'failed');
    assert.equal(log.reason, 'busy: Too many servers');
  });

  test('errorAfterPwd answers M_ERR instead of M_OK', T, async () => {
    const { port } = await startHub({ errorAfterPwd: 'Go away' });
    const c = await RawClient.open(port);
    await c.until(Cmd.M_ADR);
    c.send(Cmd.M_ADR, '2:5020/2@fidonet');
    c.send(Cmd.M_PWD, '-');
    assert.equal(await c.expect(Cmd.M_ERR), 'Go away');
    await c.closed;
  });

  test('M_FILE before M_OK is refused (FTS-1026 Table 2)', T, async () => {
    const { port } = await startHub();
    const c = await RawClient.open(port);
    await c.until(Cmd.M_ADR);
    c.send(Cmd.M_FILE, 'a.txt 1 1 0');
    assert.match(await c.expect(Cmd.M_ERR), /M_FILE before M_OK/);
    await c.closed;
  });

  test('adrDelayMs: a caller that sends M_PWD before our M_ADR shows up in the log', T, async () => {
    const { hub, port } = await startHub({ adrDelayMs: 60_000 });
    const c = await RawClient.open(port);
    await c.until(Cmd.M_NUL); // the challenge is out, M_ADR is held back
    c.send(Cmd.M_ADR, '2:5020/2@fidonet');
    c.send(Cmd.M_PWD, '-');
    await c.until(Cmd.M_ADR); // sent as soon as M_PWD arrived, before M_OK
    assert.equal(await c.expect(Cmd.M_OK), 'non-secure');
    await c.close();
    const log = await endedSession(hub);
    assert.ok(findFrame(log, 'in', 'M_PWD') < findFrame(log, 'out', 'M_ADR'), describeFrames(log));
  });

  test('stallAfter pwd: no answer to M_PWD; the session fails when the caller gives up', T, async () => {
    const { hub, port } = await startHub({ stallAfter: 'pwd' });
    const c = await RawClient.open(port);
    await c.until(Cmd.M_ADR);
    c.send(Cmd.M_ADR, '2:5020/2@fidonet');
    c.send(Cmd.M_PWD, '-');
    c.send(Cmd.M_NUL, 'PING'); // read and logged, never answered
    // Wait until the hub has logged our frames before hanging up.
    while (findFrame(hub.sessions[0]!, 'in', 'M_NUL', (a) => a === 'PING') < 0) await new Promise((r) => setImmediate(r));
    await c.close();
    const log = await endedSession(hub);
    assert.equal(log.result, 'failed');
    assert.match(log.reason ?? '', /stalled/);
    assert.equal(findFrame(log, 'out', 'M_OK'), -1);
  });

  test('a replacement handler takes over a command', T, async () => {
    const { port } = await startHub({
      handlers: {
        [Cmd.M_PWD]: (arg, ctx) => {
          if (arg === 'magic') ctx.handle(Cmd.M_PWD, '-');
          else {
            ctx.send(Cmd.M_ERR, `no magic in ${arg}`);
            ctx.end('failed', 'handler refused');
          }
        },
      },
    });
    const c = await RawClient.open(port);
    await c.until(Cmd.M_ADR);
    c.send(Cmd.M_ADR, '2:5020/2@fidonet');
    c.send(Cmd.M_PWD, 'plain');
    assert.equal(await c.expect(Cmd.M_ERR), 'no magic in plain');
    await c.closed;
    const d = await RawClient.open(port);
    await d.until(Cmd.M_ADR);
    d.send(Cmd.M_ADR, '2:5020/2@fidonet');
    d.send(Cmd.M_PWD, 'magic');
    assert.equal(await d.expect(Cmd.M_OK), 'non-secure');
    await d.close();
  });
});

describe('ScriptedHub transfer', () => {
  test('hub sends a file, waits for M_GOT before M_EOB, then multi-batch: batch 2 and an empty batch 3', T, async () => {
    const big = Buffer.alloc(10_000, 0x5a);
    const { hub, port } = await startHub({
      files: [file('a.pkt', 'packet-bytes')],
      secondBatch: [{ name: 'late file.zip', data: big, mtime: T0 + 1 }],
    });
    const c = await RawClient.open(port);
    await c.login();
    assert.equal(await c.expect(Cmd.M_FILE), `a.pkt 12 ${T0} 0`);
    assert.equal((await c.data()).toString(), 'packet-bytes');
    c.send(Cmd.M_EOB);
    c.send(Cmd.M_GOT, `a.pkt 12 ${T0}`);
    assert.equal(await c.expect(Cmd.M_EOB), '');
    // Batch 2: the file that arrived meanwhile; default 4096-byte frames.
    assert.equal(await c.expect(Cmd.M_FILE), `late\\x20file.zip 10000 ${T0 + 1} 0`);
    const parts = [await c.data(), await c.data(), await c.data()];
    assert.deepEqual(parts.map((p) => p.length), [4096, 4096, 1808]);
    assert.ok(Buffer.concat(parts).equals(big));
    c.send(Cmd.M_GOT, `late\\x20file.zip 10000 ${T0 + 1}`);
    c.send(Cmd.M_EOB);
    assert.equal(await c.expect(Cmd.M_EOB), '');
    // Batch 3 carries nothing but the two EOBs: the hub closes.
    assert.equal(await c.expect(Cmd.M_EOB), '');
    c.send(Cmd.M_EOB);
    await c.closed;
    const log = await endedSession(hub);
    assert.equal(log.result, 'ok', describeFrames(log));
    assert.equal(log.batches, 3);
    assert.deepEqual(log.acknowledged, ['a.pkt', 'late file.zip']);
    assert.deepEqual(hub.outbound, []);
    // M_EOB went out only after the M_GOT for a.pkt came in.
    assert.ok(findFrame(log, 'in', 'M_GOT') < findFrame(log, 'out', 'M_EOB'));
  });

  test('hub receives a file in several frames and answers M_GOT after the last byte', T, async () => {
    const { hub, port } = await startHub();
    const c = await RawClient.open(port);
    await c.login();
    c.send(Cmd.M_FILE, `my\\x20file.txt 11 ${T0} 0`);
    c.sendData(Buffer.from('hello '));
    c.sendData(Buffer.from('world'));
    // Having nothing to send, the hub sent its M_EOB right after M_OK.
    const { arg, before } = await c.until(Cmd.M_GOT);
    assert.equal(arg, `my\\x20file.txt 11 ${T0}`);
    assert.ok(before.some((f) => f.kind === 'cmd' && f.id === Cmd.M_EOB));
    c.send(Cmd.M_EOB);
    // The batch carried a file: a second, empty batch ends the session.
    await c.expect(Cmd.M_EOB);
    c.send(Cmd.M_EOB);
    await c.closed;
    const log = await endedSession(hub);
    assert.equal(log.result, 'ok', describeFrames(log));
    assert.equal(log.batches, 2);
    assert.deepEqual(
      hub.received.map((f) => [f.name, f.size, f.mtime, f.data.toString(), f.offsetStart]),
      [['my file.txt', 11, T0, 'hello world', 0]],
    );
  });

  test('a 0-byte file needs its empty data frame before M_GOT', T, async () => {
    const { hub, port } = await startHub();
    const c = await RawClient.open(port);
    await c.login();
    c.send(Cmd.M_FILE, `empty 0 ${T0} 0`);
    c.send(Cmd.M_NUL, 'MARK');
    while (findFrame(hub.sessions[0]!, 'in', 'M_NUL', (a) => a === 'MARK') < 0) await new Promise((r) => setImmediate(r));
    assert.equal(findFrame(hub.sessions[0]!, 'out', 'M_GOT'), -1);
    c.sendData(Buffer.alloc(0));
    assert.equal(await c.until(Cmd.M_GOT).then((r) => r.arg), `empty 0 ${T0}`);
    await c.close();
  });

  test('the hub sends a 0-byte file as M_FILE plus one empty data frame', T, async () => {
    const { port } = await startHub({ files: [file('zero.txt', '')] });
    const c = await RawClient.open(port);
    await c.login();
    assert.equal(await c.expect(Cmd.M_FILE), `zero.txt 0 ${T0} 0`);
    assert.equal((await c.data()).length, 0);
    await c.close();
  });

  test('binkp/1.0 caller: the session ends after the first batch even when it carried files', T, async () => {
    const { hub, port } = await startHub({ files: [file('x.txt', 'x')] });
    const c = await RawClient.open(port);
    await c.login({ version: '1.0' });
    await c.expect(Cmd.M_FILE);
    await c.data();
    c.send(Cmd.M_GOT, `x.txt 1 ${T0}`);
    c.send(Cmd.M_EOB);
    await c.expect(Cmd.M_EOB);
    await c.closed;
    const log = await endedSession(hub);
    assert.equal(log.result, 'ok');
    assert.equal(log.batches, 1);
  });

  test('M_GET from the caller: a fresh M_FILE at the offset, then data from there', T, async () => {
    const { hub, port } = await startHub({ files: [file('r.txt', '0123456789')] });
    const c = await RawClient.open(port);
    await c.login();
    await c.expect(Cmd.M_FILE);
    await c.data();
    c.send(Cmd.M_GET, `r.txt 10 ${T0} 4`);
    assert.equal(await c.expect(Cmd.M_FILE), `r.txt 10 ${T0} 4`);
    assert.equal((await c.data()).toString(), '456789');
    c.send(Cmd.M_GOT, `r.txt 10 ${T0}`);
    c.send(Cmd.M_EOB);
    await c.expect(Cmd.M_EOB);
    await c.close();
    const log = await endedSession(hub);
    assert.deepEqual(log.acknowledged, ['r.txt']);
  });

  test('M_GET past the end of the file: M_ERR and the hub drops the session', T, async () => {
    const { hub, port } = await startHub({ files: [file('r.txt', '0123')] });
    const c = await RawClient.open(port);
    await c.login();
    await c.expect(Cmd.M_FILE);
    await c.data();
    c.send(Cmd.M_GET, `r.txt 4 ${T0} 9`);
    assert.match(await c.expect(Cmd.M_ERR), /^Invalid M_GET violates binkp: offset 9 after end of file, file r\.txt size 4$/);
    await c.closed;
    assert.equal((await endedSession(hub)).result, 'failed');
  });

  test('NR mode: the hub offers -1 and sends data only after M_GET', T, async () => {
    const { hub, port } = await startHub({ nr: true, files: [file('n.txt', 'abcdef'), file('m.txt', 'zz')] });
    const c = await RawClient.open(port);
    await c.login();
    assert.equal(await c.expect(Cmd.M_FILE), `n.txt 6 ${T0} -1`);
    c.send(Cmd.M_NUL, 'MARK');
    while (findFrame(hub.sessions[0]!, 'in', 'M_NUL', (a) => a === 'MARK') < 0) await new Promise((r) => setImmediate(r));
    // Nothing else went out while the hub waits for our M_GET.
    assert.equal(hub.sessions[0]!.frames.filter((f) => f.dir === 'out' && (f.kind === 'data' || f.name === 'M_FILE')).length, 1);
    c.send(Cmd.M_GET, `n.txt 6 ${T0} 2`);
    assert.equal(await c.expect(Cmd.M_FILE), `n.txt 6 ${T0} 2`);
    assert.equal((await c.data()).toString(), 'cdef');
    assert.equal(await c.expect(Cmd.M_FILE), `m.txt 2 ${T0} -1`);
    await c.close();
  });

  test('the caller\'s OPT NR also makes the hub offer -1', T, async () => {
    const { port } = await startHub({ files: [file('n.txt', 'abc')] });
    const c = await RawClient.open(port);
    await c.until(Cmd.M_ADR);
    c.send(Cmd.M_NUL, 'OPT NR');
    c.send(Cmd.M_ADR, '2:5020/2@fidonet');
    c.send(Cmd.M_PWD, '-');
    await c.expect(Cmd.M_OK);
    assert.equal(await c.expect(Cmd.M_FILE), `n.txt 3 ${T0} -1`);
    await c.close();
  });

  test('the caller\'s -1 offer is answered with M_GET at offset 0', T, async () => {
    const { hub, port } = await startHub();
    const c = await RawClient.open(port);
    await c.loginToIdleHub();
    c.send(Cmd.M_FILE, `nr.bin 3 ${T0} -1`);
    assert.equal(await c.expect(Cmd.M_GET), `nr.bin 3 ${T0} 0`);
    c.send(Cmd.M_FILE, `nr.bin 3 ${T0} 0`);
    c.sendData(Buffer.from('abc'));
    assert.equal(await c.expect(Cmd.M_GOT), `nr.bin 3 ${T0}`);
    await c.close();
    assert.equal(hub.received[0]?.data.toString(), 'abc');
  });

  test('getOffset fault: M_GET at the offset; the caller resumes there', T, async () => {
    const { hub, port } = await startHub({ getOffset: { name: 'res.txt', offset: 6 } });
    const c = await RawClient.open(port);
    await c.loginToIdleHub();
    c.send(Cmd.M_FILE, `res.txt 10 ${T0} 0`);
    c.sendData(Buffer.from('012345')); // sent before our M_GET arrived: ignored by the hub
    assert.equal(await c.expect(Cmd.M_GET), `res.txt 10 ${T0} 6`);
    c.send(Cmd.M_FILE, `res.txt 10 ${T0} 6`);
    c.sendData(Buffer.from('6789'));
    assert.equal(await c.expect(Cmd.M_GOT), `res.txt 10 ${T0}`);
    await c.close();
    const log = await endedSession(hub);
    const get = findFrame(log, 'out', 'M_GET');
    assert.ok(findFrame(log, 'in', 'M_FILE', (a) => a.endsWith(' 6'), get) > get);
    assert.deepEqual([hub.received[0]?.data.toString(), hub.received[0]?.offsetStart], ['6789', 6]);
  });

  test('skip: M_SKIP for listed names, data after it ignored, others received', T, async () => {
    const { hub, port } = await startHub({ skip: ['big.zip'] });
    const c = await RawClient.open(port);
    await c.loginToIdleHub();
    c.send(Cmd.M_FILE, `big.zip 4 ${T0} 0`);
    c.sendData(Buffer.from('zzzz'));
    assert.equal(await c.expect(Cmd.M_SKIP), `big.zip 4 ${T0}`);
    c.send(Cmd.M_FILE, `ok.txt 2 ${T0} 0`);
    c.sendData(Buffer.from('ok'));
    assert.equal(await c.expect(Cmd.M_GOT), `ok.txt 2 ${T0}`);
    await c.close();
    assert.deepEqual(hub.received.map((f) => f.name), ['ok.txt']);
  });

  test('the caller\'s M_SKIP keeps the hub\'s file for a later session', T, async () => {
    const { hub, port } = await startHub({ files: [file('keep.txt', 'k')] });
    const c = await RawClient.open(port);
    await c.login();
    await c.expect(Cmd.M_FILE);
    await c.data();
    c.send(Cmd.M_SKIP, `keep.txt 1 ${T0}`);
    assert.equal(await c.expect(Cmd.M_EOB), '');
    await c.close();
    const log = await endedSession(hub);
    assert.deepEqual(log.skipped, ['keep.txt']);
    assert.deepEqual(hub.outbound.map((f) => f.name), ['keep.txt']);
  });

  test('closeAfterBytes drops the line mid-file; the next session resumes from the kept partial', T, async () => {
    const { hub, port } = await startHub({ closeAfterBytes: 5 });
    const c = await RawClient.open(port);
    await c.loginToIdleHub();
    c.send(Cmd.M_FILE, `arc.zip 8 ${T0} 0`);
    c.sendData(Buffer.from('abc'));
    c.sendData(Buffer.from('defgh'));
    await c.closed;
    const first = await endedSession(hub, 1);
    assert.equal(first.result, 'failed');
    assert.match(first.reason ?? '', /closeAfterBytes/);
    assert.equal(hub.partialLength('arc.zip'), 5);

    hub.configure({ closeAfterBytes: undefined });
    const d = await RawClient.open(port);
    await d.loginToIdleHub();
    // Asked for the offset (NR), the hub names the partial's length ...
    d.send(Cmd.M_FILE, `arc.zip 8 ${T0} -1`);
    assert.equal(await d.expect(Cmd.M_GET), `arc.zip 8 ${T0} 5`);
    // ... and an offer from 0 gets the same answer, as binkd's does.
    d.send(Cmd.M_FILE, `arc.zip 8 ${T0} 0`);
    assert.equal(await d.expect(Cmd.M_GET), `arc.zip 8 ${T0} 5`);
    d.send(Cmd.M_FILE, `arc.zip 8 ${T0} 5`);
    d.sendData(Buffer.from('fgh'));
    assert.equal(await d.expect(Cmd.M_GOT), `arc.zip 8 ${T0}`);
    await d.close();
    assert.deepEqual([hub.received[0]?.data.toString(), hub.received[0]?.offsetStart], ['abcdefgh', 5]);
    assert.equal(hub.partialLength('arc.zip'), undefined);
  });

  test('a file already received complete is acknowledged without receiving it again', T, async () => {
    const { hub, port } = await startHub();
    const c = await RawClient.open(port);
    await c.loginToIdleHub();
    c.send(Cmd.M_FILE, `d.txt 1 ${T0} 0`);
    c.sendData(Buffer.from('d'));
    await c.expect(Cmd.M_GOT);
    c.send(Cmd.M_FILE, `d.txt 1 ${T0} 0`);
    assert.equal(await c.expect(Cmd.M_GOT), `d.txt 1 ${T0}`);
    await c.close();
    assert.equal(hub.received.length, 1);
  });

  test('stallAfter eob: nothing more after the caller\'s M_EOB', T, async () => {
    const { hub, port } = await startHub({ stallAfter: 'eob' });
    const c = await RawClient.open(port);
    await c.login();
    c.send(Cmd.M_EOB);
    c.send(Cmd.M_NUL, 'MARK');
    while (findFrame(hub.sessions[0]!, 'in', 'M_NUL', (a) => a === 'MARK') < 0) await new Promise((r) => setImmediate(r));
    await c.close();
    const log = await endedSession(hub);
    // Our M_EOB went out right after M_OK (nothing to send); after the caller's nothing did.
    const last = log.frames.filter((f) => f.dir === 'out').pop();
    assert.ok(last && last.kind === 'command' && last.name === 'M_EOB');
    assert.ok(findFrame(log, 'out', 'M_EOB') < findFrame(log, 'in', 'M_EOB'));
    assert.equal(log.result, 'failed');
  });
});

describe('HubSession without a socket', () => {
  test('fed one byte at a time, it answers the same as over TCP', () => {
    const written: Buffer[] = [];
    const log = newSessionLog(1);
    let ended = false;
    const session = new HubSession(
      { addresses: HUB, password: 'pw', random: (n) => Buffer.alloc(n, 1), now: () => 0 },
      log,
      newHubState(),
      { write: (b) => (written.push(b), true), end: () => (ended = true), destroy: () => (ended = true) },
      { set: () => () => {} },
    );
    session.start();
    const input = Buffer.concat([
      encodeCommand(Cmd.M_NUL, 'VER x/1 binkp/1.1'),
      encodeCommand(Cmd.M_ADR, '2:5020/2@fidonet'),
      encodeCommand(Cmd.M_PWD, cramResponse('pw', '01'.repeat(16))),
      encodeCommand(Cmd.M_FILE, `f 3 ${T0} 0`),
      encodeData(Buffer.from('xyz')),
      encodeCommand(Cmd.M_EOB),
    ]);
    for (const byte of input) session.feed(Buffer.from([byte]));
    const out: string[] = [];
    new FrameDecoder({ command: (id, arg) => out.push(`${commandName(id)} ${argText(arg)}`), data: () => {} }).push(Buffer.concat(written));
    assert.deepEqual(out.slice(-4), ['M_OK secure', 'M_EOB ', `M_GOT f 3 ${T0}`, 'M_EOB ']);
    // Batch 1 carried a file, so batch 2 started with our M_EOB; its pair completes with the caller's.
    session.feed(encodeCommand(Cmd.M_EOB));
    assert.equal(ended, true);
    assert.equal(log.result, 'ok');
    assert.equal(log.batches, 2);
    assert.equal(log.received[0]?.data.toString(), 'xyz');
  });
});

test('formatBinkpTime pads the day with a space like binkd', () => {
  assert.equal(formatBinkpTime(Date.UTC(2026, 10, 22, 3, 25, 17)), 'Sun, 22 Nov 2026 03:25:17 +0000');
  assert.equal(formatBinkpTime(0), 'Thu,  1 Jan 1970 00:00:00 +0000');
});

test('bad options name the field', () => {
  assert.throws(() => new ScriptedHub({ addresses: ['2:5020/x'] }), /options\.addresses\[0\]: "2:5020\/x" is not an FTN address/);
  assert.throws(() => new ScriptedHub({ addresses: HUB, frameSize: 40000 }), /options\.frameSize: 40000/);
});

// ---- protocol extensions (issue 13): the hub's own side, driven by raw frames ------------------

describe('extensions on the hub side', () => {
  /** login() after saying OPT `opts` first. */
  async function loginWith(c: RawClient, opts: string): Promise<void> {
    c.send(Cmd.M_NUL, `OPT ${opts}`);
    await c.loginToIdleHub();
  }

  test('CRC: a wrong checksum from the caller is refused with M_SKIP and not kept; a right one is taken', T, async () => {
    const { hub, port } = await startHub({ loginOptions: ['CRC'] });
    const c = await RawClient.open(port);
    await loginWith(c, 'CRC');
    const good = Buffer.from('checksummed');
    c.send(Cmd.M_FILE, `bad.txt ${good.length} ${T0} 0 ${formatCrc(crc32(good) ^ 1)}`);
    c.sendData(good);
    assert.equal(await c.expect(Cmd.M_SKIP), `bad.txt ${good.length} ${T0}`);
    c.send(Cmd.M_FILE, `ok.txt ${good.length} ${T0} 0 ${formatCrc(crc32(good)).toLowerCase()}`);
    c.sendData(good);
    assert.equal(await c.expect(Cmd.M_GOT), `ok.txt ${good.length} ${T0}`);
    await c.close();
    const log = await endedSession(hub);
    assert.deepEqual(log.crcRejected, ['bad.txt']);
    assert.deepEqual(hub.received.map((f) => f.name), ['ok.txt']);
    assert.deepEqual(log.extensions, ['CRC']);
  });

  test('GZ from the caller: complete when the decompressed count reaches the size, trailer or not', T, async () => {
    const { hub, port } = await startHub({ loginOptions: ['EXTCMD', 'GZ'] });
    const c = await RawClient.open(port);
    await loginWith(c, 'EXTCMD GZ');
    const data = Buffer.from('hello hello hello hello hello hello '.repeat(200));
    const z = deflateSync(data);
    c.send(Cmd.M_FILE, `z.txt ${data.length} ${T0} 0 GZ`);
    // Everything but the 4-byte Adler-32 trailer: the file is complete already.
    c.sendData(z.subarray(0, z.length - 4));
    assert.equal(await c.expect(Cmd.M_GOT), `z.txt ${data.length} ${T0}`);
    c.sendData(z.subarray(z.length - 4));
    await c.close();
    await endedSession(hub);
    assert.deepEqual(hub.received[0]!.data, data);
  });

  test('a method the hub did not offer is refused with M_ERR', T, async () => {
    const { hub, port } = await startHub({ loginOptions: ['EXTCMD', 'GZ'] });
    const c = await RawClient.open(port);
    await loginWith(c, 'EXTCMD GZ');
    c.send(Cmd.M_FILE, `b.txt 5 ${T0} 0 BZ2`);
    assert.equal(await c.expect(Cmd.M_ERR), "Can't handle BZ2 for b.txt");
    await c.close();
    assert.equal((await endedSession(hub)).result, 'failed');
  });
});
