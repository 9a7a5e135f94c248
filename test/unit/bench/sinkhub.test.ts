/**
 * The bench's streaming sink hub, driven frame by frame over loopback: it must log in a caller,
 * count and check what arrives without keeping it, and acknowledge complete files.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createHash } from 'node:crypto';
import { FrameDecoder, encodeCommand, encodeData } from '../../../src/binkp/frame.js';
import { Cmd, argText } from '../../../src/binkp/commands.js';
import { SinkHub } from '../../bench/sinkhub.js';

const hubs: SinkHub[] = [];
after(async () => {
  await Promise.all(hubs.map((h) => h.close()));
});

interface Frame {
  id: number;
  arg: string;
}

async function caller(port: number): Promise<{ socket: Socket; next: (id: number) => Promise<Frame>; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  const decoder = new FrameDecoder({
    command: (id, arg) => {
      frames.push({ id, arg: argText(arg) });
      wake?.();
    },
    data: () => {},
  });
  socket.on('data', (c: Buffer) => decoder.push(c));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const next = async (id: number): Promise<Frame> => {
    for (;;) {
      const i = frames.findIndex((f) => f.id === id);
      if (i >= 0) return frames.splice(i, 1)[0]!;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  return { socket, next, closed };
}

async function started(check: 'zeros' | 'sha256'): Promise<{ hub: SinkHub; port: number }> {
  const hub = new SinkHub('2:5020/1@fidonet', check);
  hubs.push(hub);
  return { hub, port: await hub.listen() };
}

describe('SinkHub', () => {
  test('greets, logs in without a password, acknowledges files split over frames and chunks', async () => {
    const { hub, port } = await started('sha256');
    const c = await caller(port);
    assert.match((await c.next(Cmd.M_ADR)).arg, /2:5020\/1@fidonet/);
    c.socket.write(Buffer.concat([encodeCommand(Cmd.M_ADR, '2:5020/99@fidonet'), encodeCommand(Cmd.M_PWD, '-')]));
    assert.equal((await c.next(Cmd.M_OK)).arg, 'non-secure');
    await c.next(Cmd.M_EOB);
    const data = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff));
    const wire = Buffer.concat([
      encodeCommand(Cmd.M_FILE, 'a\\x20b.bin 70000 1700000000 0'),
      encodeData(data.subarray(0, 32767)),
      encodeData(data.subarray(32767, 65534)),
      encodeData(data.subarray(65534)),
      encodeCommand(Cmd.M_FILE, 'empty 0 1700000001 0'),
      encodeData(Buffer.alloc(0)),
    ]);
    // Byte by byte for the first frames: the sink must not care how TCP cuts the stream.
    for (let i = 0; i < 40; i++) c.socket.write(wire.subarray(i, i + 1));
    c.socket.write(wire.subarray(40));
    assert.equal((await c.next(Cmd.M_GOT)).arg, 'a\\x20b.bin 70000 1700000000');
    assert.equal((await c.next(Cmd.M_GOT)).arg, 'empty 0 1700000001');
    c.socket.end(encodeCommand(Cmd.M_EOB));
    await c.closed;
    const [f, e] = hub.files;
    assert.equal(f!.name, 'a b.bin');
    assert.equal(f!.received, 70_000);
    assert.equal(f!.complete, true);
    assert.equal(f!.sha256, createHash('sha256').update(data).digest('hex'));
    assert.ok(f!.offeredAt <= f!.firstDataAt! && f!.firstDataAt! <= f!.lastDataAt!);
    assert.equal(e!.complete, true);
    assert.equal(hub.sessions[0]!.eob, true);
    assert.equal(hub.sessions[0]!.callerAddress, '2:5020/99@fidonet');
  });

  test('zeros mode notices a single non-zero byte; NR offers get M_GET from 0', async () => {
    const { hub, port } = await started('zeros');
    const c = await caller(port);
    c.socket.write(Buffer.concat([encodeCommand(Cmd.M_ADR, '2:5020/99'), encodeCommand(Cmd.M_PWD, '-')]));
    await c.next(Cmd.M_OK);
    c.socket.write(encodeCommand(Cmd.M_FILE, 'z 1000 1 -1'));
    assert.equal((await c.next(Cmd.M_GET)).arg, 'z 1000 1 0');
    const dirty = Buffer.alloc(1000);
    dirty[999] = 1;
    c.socket.write(Buffer.concat([encodeCommand(Cmd.M_FILE, 'z 1000 1 0'), encodeData(Buffer.alloc(1000)), encodeCommand(Cmd.M_FILE, 'y 1000 1 0'), encodeData(dirty)]));
    await c.next(Cmd.M_GOT);
    await c.next(Cmd.M_GOT);
    c.socket.destroy();
    assert.deepEqual(
      hub.files.map((f) => [f.name, f.zeros, f.complete]),
      [
        ['z', true, true],
        ['y', false, true],
      ],
    );
  });

  test('more data than announced ends the session with M_ERR', async () => {
    const { hub, port } = await started('zeros');
    const c = await caller(port);
    c.socket.write(Buffer.concat([encodeCommand(Cmd.M_ADR, '2:5020/99'), encodeCommand(Cmd.M_PWD, '-'), encodeCommand(Cmd.M_FILE, 'x 10 1 0'), encodeData(Buffer.alloc(11))]));
    assert.match((await c.next(Cmd.M_ERR)).arg, /x: more than 10 bytes/);
    await c.closed;
    assert.match(hub.sessions[0]!.error!, /more than 10 bytes/);
  });
});
