/**
 * The transport (src/binkp/connect.ts) around a real loopback socket, with a manual clock for
 * every timer and token bucket: bandwidth_limit on receiving, how the connection ends when the
 * hub will not stop talking, and binkd's CRYPT switching on at M_OK.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { runSession } from '../../../src/binkp/connect.js';
import { CallerSession, TIMEOUT_LINGER_MS, type SessionEnv, type SessionResult, type PartialFile } from '../../../src/binkp/session.js';
import { Throttle, TokenBucket } from '../../../src/binkp/throttle.js';
import { Cmd } from '../../../src/binkp/commands.js';
import { FrameDecoder, encodeCommand } from '../../../src/binkp/frame.js';
import { sessionKeys } from '../../../src/binkp/crypt.js';
import { ScriptedHub } from '../../../src/demo/hub.js';
import { parseAddress } from '../../../src/ftn/address.js';
import { ManualClock, until } from '../../helpers/clock.js';
import { pseudoRandomBytes } from '../../helpers/node.js';

const HUB_ADDRESS = '2:5020/1@fidonet';
const T = { timeout: 20_000 };

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.splice(0)) await c();
});

/** Receives into memory; sends nothing. */
function memEnv(received: { bytes: number; data: Buffer[] }): SessionEnv {
  return {
    claimAkas: async (akas) => akas,
    queue: async () => [],
    openSource: () => {
      throw new Error('nothing to send');
    },
    confirmed: async () => undefined,
    offer: async () => ({ action: 'receive', offset: 0 }),
    openPartial: async (_file, offset): Promise<PartialFile> => {
      let n = offset;
      return {
        get received() {
          return n;
        },
        write(chunks: readonly Buffer[]): void {
          for (const chunk of chunks) {
            received.data.push(Buffer.from(chunk));
            received.bytes += chunk.length;
            n += chunk.length;
          }
        },
        close: async () => undefined,
      };
    },
    complete: async (file) => `mem/${file.name}`,
  };
}

function session(env: SessionEnv, clock: ManualClock, over: Partial<ConstructorParameters<typeof CallerSession>[0]> = {}): CallerSession {
  return new CallerSession({
    hubAddress: parseAddress(HUB_ADDRESS),
    ourAddresses: [parseAddress('2:5020/99@fidonet')],
    useCram: false,
    nrMode: false,
    system: 'Test',
    sysop: 'Test',
    location: 'Test',
    nodeinfo: 'TCP,BINKP',
    mailer: 'fnpoll/0.0.0-test/linux',
    idleTimeout: 600_000,
    env,
    now: clock.now,
    ...over,
  });
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('bandwidth_limit on receiving', () => {
  test('the socket is read only as fast as the bucket allows, so the hub is slowed by TCP', T, async () => {
    const rate = 100_000;
    const burst = 32 * 1024;
    const size = 1_000_000;
    const data = pseudoRandomBytes(size, 41);
    const hub = new ScriptedHub({ addresses: [HUB_ADDRESS], files: [{ name: 'big.bin', data, mtime: 1_700_000_000 }], frameSize: 4096 });
    await hub.listen(0, '127.0.0.1');
    closers.push(() => hub.close());

    const clock = new ManualClock(0);
    const bucket = new TokenBucket(rate, burst, clock);
    const received = { bytes: 0, data: [] as Buffer[] };
    const s = session(memEnv(received), clock);
    let result: SessionResult | undefined;
    void runSession(s, await openSocket(hub.port), { throttle: new Throttle([bucket]), timers: clock }).then((r) => (result = r));

    /** One TCP read at most beyond the bucket: the read that found it empty. */
    const slack = burst + 64 * 1024 + 4096;
    let worst = -Infinity;
    while (!result) {
      // Wait until the link sleeps on the bucket again (or the session is over), then let 100 ms pass.
      await until(() => !!result || clock.pending.some((ms) => ms < 60_000), 'the link to wait for tokens');
      worst = Math.max(worst, received.bytes - (rate * clock.t) / 1000);
      assert.ok(received.bytes <= (rate * clock.t) / 1000 + slack, `${received.bytes} bytes received after ${clock.t} ms at ${rate} B/s`);
      if (!result) await clock.advance(100);
    }
    assert.ok(result.ok, result.error?.message);
    assert.deepEqual(Buffer.concat(received.data), data);
    // The whole file took (almost) size / rate of the clock: the limit held, and it was not idle.
    assert.ok(clock.t >= ((size - slack) / rate) * 1000, `done after ${clock.t} ms`);
    assert.ok(clock.t <= (size / rate) * 1000 + 1_000, `done after ${clock.t} ms`);
    assert.ok(worst <= slack);
  });
});

describe('reading', () => {
  test('one read per event-loop turn: files completed by an earlier read get their M_GOT before the next read is handled', T, async () => {
    // A hub that sends a thousand small files back to back, faster than they are handled. Each
    // file's completion (like the inbound's fdatasync) resolves in a later turn of the loop. Read
    // after read in one turn (libuv reads a busy socket up to 32 times in a row), the M_GOTs would
    // wait until the hub's whole batch had been read; one read per turn, they go as files arrive.
    const count = 1000;
    const files = Array.from({ length: count }, (_, i) => ({ name: `${(0x5f000000 + i).toString(16)}.pkt`, data: pseudoRandomBytes(8192, 100 + i), mtime: 1_700_000_000 }));
    const hub = new ScriptedHub({ addresses: [HUB_ADDRESS], files, frameSize: 4096 });
    await hub.listen(0, '127.0.0.1');
    closers.push(() => hub.close());
    const received = { bytes: 0, data: [] as Buffer[] };
    const env = memEnv(received);
    let offered = 0;
    let completed = 0;
    let worst = 0;
    const s = session(
      {
        ...env,
        offer: async (file, secure) => {
          offered++;
          worst = Math.max(worst, offered - completed);
          return env.offer(file, secure);
        },
        complete: (file) =>
          new Promise<string>((resolve) =>
            setImmediate(() => {
              completed++;
              resolve(`mem/${file.name}`);
            }),
          ),
      },
      new ManualClock(0),
    );
    const result = await runSession(s, await openSocket(hub.port));
    assert.ok(result.ok, result.error?.message);
    assert.equal(completed, count);
    assert.equal(received.bytes, count * 8192);
    // A read holds at most 64 KiB: 8 of these files (or a piece of two more).
    assert.ok(worst <= 16, `${worst} files were waiting for their M_GOT at once`);
  });
});

describe('the end of a session', () => {
  test('after a timeout the connection is gone within the linger bound, however the hub floods; nothing more is handled', T, async () => {
    // A hostile hub: a greeting, then M_NUL as fast as the socket takes it, forever.
    let sawErr: string | undefined;
    let sawPwd = false;
    let hubClosed = false;
    // allowHalfOpen: our FIN does not make it close; it keeps talking.
    const server: Server = createServer({ allowHalfOpen: true }, (sock) => {
      const decoder = new FrameDecoder({
        command: (id, arg) => {
          if (id === Cmd.M_PWD) sawPwd = true;
          if (id === Cmd.M_ERR) sawErr = arg.toString('latin1');
        },
        data: () => undefined,
      });
      sock.on('data', (chunk: Buffer) => decoder.push(chunk));
      sock.on('error', () => undefined);
      sock.on('close', () => (hubClosed = true));
      sock.write(Buffer.concat([encodeCommand(Cmd.M_NUL, 'SYS flood hub'), encodeCommand(Cmd.M_ADR, HUB_ADDRESS)]));
      const chunk = Buffer.concat(Array.from({ length: 500 }, (_, i) => encodeCommand(Cmd.M_NUL, `K${i} ${'x'.repeat(100)}`)));
      const flood = (): void => {
        while (!sock.destroyed && sock.write(chunk));
        if (!sock.destroyed) sock.once('drain', flood);
      };
      flood();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;

    const clock = new ManualClock(0);
    const logs: string[] = [];
    const received = { bytes: 0, data: [] as Buffer[] };
    const s = session(memEnv(received), clock, { sessionTimeout: 5_000, log: (_level, _cat, message) => logs.push(message) });
    let result: SessionResult | undefined;
    void runSession(s, await openSocket(port), { timers: clock }).then((r) => (result = r));

    await until(() => sawPwd && logs.length > 2_000, 'the flood to be under way');
    await clock.advance(5_000);
    const atTimeout = logs.length;
    assert.match(logs[atTimeout - 1]!, /send M_ERR session took longer than session_timeout/);
    await until(() => sawErr !== undefined, 'our M_ERR at the hub');
    assert.equal(sawErr, 'session took longer than session_timeout (5 s)');
    // The hub goes on; we wait for it to close for at most the linger bound, then drop it.
    await clock.advance(TIMEOUT_LINGER_MS - 1);
    assert.equal(result, undefined, 'the connection was dropped before the linger bound');
    assert.equal(hubClosed, false);
    await clock.advance(1);
    await until(() => !!result && hubClosed, 'the end');
    assert.ok(TIMEOUT_LINGER_MS < 1_000);
    assert.equal(result!.error?.kind, 'timeout');
    assert.equal(logs.length, atTimeout, `handled after the end: ${logs.slice(atTimeout, atTimeout + 3).join(' | ')}`);
    // What the hub said is kept bounded: known keys only.
    assert.deepEqual(Object.keys(result!.remoteInfo), ['SYS']);
  });
});

describe("binkd's CRYPT on the link (SessionLink.established)", () => {
  test('frames after M_OK in the same read are deciphered, and everything written after it is enciphered', T, async () => {
    const password = 'sesame';
    const hubSaw: string[] = [];
    let wireAfterOk = Buffer.alloc(0);
    const server: Server = createServer((sock) => {
      const keys = sessionKeys(password, 'answerer');
      let enciphered = false;
      const decoder: FrameDecoder = new FrameDecoder({
        command: (id, arg) => {
          hubSaw.push(`${id} ${arg.toString('latin1')}`);
          if (id === Cmd.M_PWD) {
            // binkd's answering side: the caller enciphers from the byte after our M_OK. That M_OK
            // and enciphered frames behind it go in one write, so the caller reads them together.
            enciphered = true;
            decoder.setInputTransform((b) => keys.in.decrypt(b));
            const after = Buffer.concat([encodeCommand(Cmd.M_NUL, 'TRF 0 0'), encodeCommand(Cmd.M_EOB)]);
            sock.write(Buffer.concat([encodeCommand(Cmd.M_OK, 'secure'), keys.out.encrypt(after)]));
          }
          if (id === Cmd.M_EOB) sock.end();
        },
        data: () => undefined,
      });
      sock.on('data', (chunk: Buffer) => {
        if (enciphered) wireAfterOk = Buffer.concat([wireAfterOk, chunk]);
        decoder.push(chunk);
      });
      sock.on('error', () => undefined);
      sock.write(
        Buffer.concat([
          encodeCommand(Cmd.M_NUL, `OPT CRAM-MD5-${'0123456789abcdef'.repeat(2)}`),
          encodeCommand(Cmd.M_NUL, 'OPT CRYPT'),
          encodeCommand(Cmd.M_ADR, HUB_ADDRESS),
        ]),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;

    const clock = new ManualClock(0);
    const s = session(memEnv({ bytes: 0, data: [] }), clock, {
      password,
      useCram: true,
      extensions: { compression: false, crc: false, crypt: true, nd: false, compressionThreshold: 1024 },
    });
    const result = await runSession(s, await openSocket(port), { timers: clock });
    assert.ok(result.ok, result.error?.message);
    assert.deepEqual(result.extensions, ['CRYPT']);
    assert.equal(result.remoteInfo['TRF'], '0 0', 'the enciphered M_NUL behind M_OK in the same read was deciphered');
    // Our M_EOB went out enciphered (not as the plain frame) and the hub deciphered it.
    assert.equal(hubSaw.at(-1), '5 ');
    assert.ok(wireAfterOk.length > 0 && !wireAfterOk.equals(encodeCommand(Cmd.M_EOB)));
    assert.equal(result.batches, 1);
  });
});
