/**
 * Proves the real-binkd harness works: binkd starts on loopback, answers our codec, calls out with
 * runBinkdCaller, and leaves nothing running.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { access, readFile, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { FrameDecoder, encodeCommand } from '../../src/binkp/frame.js';
import { Cmd, argText, commandName } from '../../src/binkp/commands.js';
import { cramResponse } from '../../src/binkp/cram.js';
import { ScriptedHub, describeFrames } from '../../src/demo/hub.js';
import { BinkdHub, leftoverBinkdProcesses, runBinkdCaller } from '../helpers/binkd.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const T = { timeout: 30_000 };
const HUB = '2:5020/1@fidonet';
const CALLER = '2:5020/2@fidonet';
const T0 = 1_700_000_000;

const started: BinkdHub[] = [];
const scripted: ScriptedHub[] = [];

after(async () => {
  await Promise.all(started.map((h) => h.stop()));
  await Promise.all(scripted.map((h) => h.close()));
  assert.deepEqual(await leftoverBinkdProcesses(), [], 'binkd processes left running');
});

async function startBinkd(opts: Parameters<typeof BinkdHub.start>[0]): Promise<BinkdHub> {
  const hub = await BinkdHub.start(opts);
  started.push(hub);
  return hub;
}

interface Cmdf {
  id: number;
  arg: string;
}

/** Just enough of a caller: collects command frames, ignores data. */
function rawConnect(port: number): Promise<{ socket: Socket; next: () => Promise<Cmdf | undefined>; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const frames: Cmdf[] = [];
    let wake: (() => void) | undefined;
    let closed = false;
    const socket = connect(port, '127.0.0.1', () => {
      const decoder = new FrameDecoder({
        command: (id, arg) => {
          frames.push({ id, arg: argText(arg) });
          wake?.();
        },
        data: () => {},
      });
      socket.on('data', (c: Buffer) => decoder.push(c));
      const closedP = new Promise<void>((r) =>
        socket.on('close', () => {
          closed = true;
          wake?.();
          r();
        }),
      );
      const next = async (): Promise<Cmdf | undefined> => {
        while (frames.length === 0) {
          if (closed) return undefined;
          await new Promise<void>((r) => (wake = r));
        }
        return frames.shift();
      };
      resolve({ socket, next, closed: closedP });
    });
    socket.once('error', reject);
  });
}

async function until(next: () => Promise<Cmdf | undefined>, id: number): Promise<{ arg: string; before: Cmdf[] }> {
  const before: Cmdf[] = [];
  for (;;) {
    const f = await next();
    assert.ok(f, `connection closed before ${commandName(id)}; saw ${before.map((b) => commandName(b.id)).join(' ')}`);
    if (f.id === id) return { arg: f.arg, before };
    before.push(f);
  }
}

describe('BinkdHub (real binkd as the answering side)', () => {
  test('greets our codec with OPT CRAM-MD5 first and M_ADR, and accepts a CRAM login', T, async () => {
    const hub = await startBinkd({ address: HUB, nodes: [{ address: CALLER, password: 'secret' }] });
    assert.ok(hub.port > 0);
    const c = await rawConnect(hub.port);
    const { arg: adr, before } = await until(c.next, Cmd.M_ADR);
    assert.equal(before[0]?.id, Cmd.M_NUL);
    const cram = /^OPT .*CRAM-MD5-([0-9a-f]+)/.exec(before[0]!.arg);
    assert.ok(cram, `first M_NUL: ${before[0]!.arg}`);
    assert.ok(before.some((f) => /^VER binkd\/\S+ binkp\/1\.1$/.test(f.arg)));
    assert.equal(adr.split(/\s+/).filter(Boolean)[0], HUB);
    assert.ok(adr.startsWith(' '), 'binkd starts M_ADR with a space');

    c.socket.write(encodeCommand(Cmd.M_NUL, 'VER raw-test/0 binkp/1.1'));
    c.socket.write(encodeCommand(Cmd.M_ADR, CALLER));
    c.socket.write(encodeCommand(Cmd.M_PWD, cramResponse('secret', cram[1]!)));
    assert.equal((await until(c.next, Cmd.M_OK)).arg, 'secure');
    await until(c.next, Cmd.M_EOB); // binkd has nothing for us
    c.socket.write(encodeCommand(Cmd.M_EOB));
    await c.closed;
    const log = await hub.waitForLog(/done \(from 2:5020\/2@fidonet, OK/);
    assert.match(log, /pwd protected session \(MD5\)/);
  });

  test('noCram (-m): no challenge offered; a wrong password gets M_ERR', T, async () => {
    const hub = await startBinkd({ address: HUB, nodes: [{ address: CALLER, password: 'secret' }], noCram: true });
    const c = await rawConnect(hub.port);
    const { before } = await until(c.next, Cmd.M_ADR);
    assert.ok(!before.some((f) => f.arg.includes('CRAM')), before.map((f) => f.arg).join(' | '));
    c.socket.write(encodeCommand(Cmd.M_ADR, CALLER));
    c.socket.write(encodeCommand(Cmd.M_PWD, 'wrong'));
    assert.equal((await until(c.next, Cmd.M_ERR)).arg, 'Bad password');
    await c.closed;
    await hub.waitForLog(/incorrect password/);
  });

  test('stop() removes the temp dir and the process group', T, async () => {
    const hub = await BinkdHub.start({ address: HUB, nodes: [] });
    await access(hub.logPath);
    await hub.stop();
    await assert.rejects(access(hub.dir));
  });
});

describe('runBinkdCaller (real binkd as the calling side)', () => {
  test('calls the scripted hub: CRAM login, files both ways, multi-batch, both sides OK', T, async () => {
    const hub = new ScriptedHub({
      addresses: [HUB],
      password: 'pw',
      files: [{ name: 'to caller.txt', data: Buffer.from('from the hub'), mtime: T0 }],
      secondBatch: [{ name: 'late.bin', data: Buffer.alloc(9000, 1), mtime: T0 }],
    });
    scripted.push(hub);
    const port = await hub.listen();
    const r = await runBinkdCaller({
      address: CALLER,
      hub: { address: HUB, port, password: 'pw' },
      files: [{ name: 'to-hub.pkt', data: Buffer.alloc(200, 2), mtime: T0 + 5 }],
    });
    await hub.waitSessions(1);
    const s = hub.sessions[0]!;
    assert.equal(r.ok, true, r.log);
    assert.equal(s.result, 'ok', describeFrames(s));
    assert.equal(s.secure, true);
    assert.match(s.callerPassword ?? '', /^CRAM-MD5-/);
    assert.equal(s.batches, 3);
    assert.deepEqual(
      hub.received.map((f) => [f.name, f.size, f.mtime]),
      [['to-hub.pkt', 200, T0 + 5]],
    );
    assert.deepEqual(
      r.received.map((f) => [f.name, f.data.length, f.secure]),
      [
        ['late.bin', 9000, true],
        ['to caller.txt', 12, true],
      ],
    );
  });

  test('calls a second real binkd: each side receives the other\'s file', T, async () => {
    const hub = await startBinkd({ address: HUB, nodes: [{ address: CALLER, password: 'both' }] });
    const files = await makeTempDir('fnpoll-interop-files-');
    try {
      const path = join(files, 'for-caller.txt');
      await writeFile(path, 'hub to caller');
      await utimes(path, T0, T0);
      await writeFile(`${hub.outboundFor(CALLER)}.flo`, `${path}\n`);
      const r = await runBinkdCaller({
        address: CALLER,
        hub: { address: HUB, port: hub.port, password: 'both' },
        files: [{ name: 'for-hub.txt', data: Buffer.from('caller to hub'), mtime: T0 }],
      });
      assert.equal(r.ok, true, r.log);
      assert.deepEqual(r.received.map((f) => [f.name, f.data.toString(), f.secure]), [['for-caller.txt', 'hub to caller', true]]);
      assert.equal(await readFile(join(hub.inbound, 'for-hub.txt'), 'latin1'), 'caller to hub');
      const log = await hub.waitForLog(/done \(from 2:5020\/2@fidonet, OK/);
      assert.match(log, /sent: .*for-caller\.txt/);
    } finally {
      await removeTempDir(files);
    }
  });

  test('a refused call is not ok, although binkd exits 0', T, async () => {
    const hub = new ScriptedHub({ addresses: [HUB], busy: 'come back later' });
    scripted.push(hub);
    const port = await hub.listen();
    const r = await runBinkdCaller({ address: CALLER, hub: { address: HUB, port } });
    assert.equal(r.exitCode, 0);
    assert.equal(r.ok, false);
    assert.match(r.log, /got M_BSY: come back later/);
  });
});
