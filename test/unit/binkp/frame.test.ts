import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FRAME_HEADER_SIZE,
  FrameDecoder,
  MAX_FRAME_PAYLOAD,
  encodeCommand,
  encodeData,
  writeDataHeader,
} from '../../../src/binkp/frame.js';
import { prng } from '../../helpers/random.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

type Piece = { kind: 'data'; bytes: string; end: boolean };
type Event = { kind: 'command'; id: number; arg: string } | Piece | { kind: 'empty' };

/** Records every handler call; `piece` bytes are copied because the decoder hands out views. */
function recorder(): { decoder: FrameDecoder; events: Event[] } {
  const events: Event[] = [];
  const decoder = new FrameDecoder({
    command: (id, arg) => events.push({ kind: 'command', id, arg: arg.toString('hex') }),
    data: (piece, end) => events.push({ kind: 'data', bytes: Buffer.from(piece).toString('hex'), end }),
    emptyCommand: () => events.push({ kind: 'empty' }),
  });
  return { decoder, events };
}

/**
 * Data pieces depend on how the stream was split; frames do not. Join the pieces of each data
 * frame (checking that only the last one carries end=true) so splits can be compared.
 */
function frames(events: Event[]): Event[] {
  const out: Event[] = [];
  let open: Piece | undefined;
  for (const ev of events) {
    if (ev.kind === 'data') {
      if (open) open.bytes += ev.bytes;
      else open = { kind: 'data', bytes: ev.bytes, end: false };
      if (ev.end) {
        open.end = true;
        out.push(open);
        open = undefined;
      }
    } else {
      assert.equal(open, undefined, 'a data frame was interrupted by another frame');
      out.push(ev);
    }
  }
  if (open) out.push(open);
  return out;
}

function decodeChunks(chunks: Buffer[]): { events: Event[]; idle: boolean } {
  const { decoder, events } = recorder();
  for (const c of chunks) decoder.push(c);
  return { events, idle: decoder.idle };
}

// A small session-like stream mixing every kind of frame (annotated byte by byte).
const STREAM = hex(`
  80 06 00 53 59 53 20 78     # M_NUL "SYS x": cmd bit + len 6, id 0, "SYS x"
  80 01 04                    # M_OK "": len 1, id 4, no argument
  80 00                       # empty command frame (obsolete, ignored by binkd)
  00 03 61 62 63              # data frame "abc"
  00 00                       # empty data frame (a 0-byte file)
  80 05 07 42 75 73 79        # M_ERR "Busy"
  00 01 ff                    # data frame of one 0xff byte
  80 02 05 00                 # M_EOB with a trailing NUL
`.replace(/#.*$/gm, ''));

const STREAM_EVENTS: Event[] = [
  { kind: 'command', id: 0, arg: Buffer.from('SYS x').toString('hex') },
  { kind: 'command', id: 4, arg: '' },
  { kind: 'empty' },
  { kind: 'data', bytes: '616263', end: true },
  { kind: 'data', bytes: '', end: true },
  { kind: 'command', id: 7, arg: Buffer.from('Busy').toString('hex') },
  { kind: 'data', bytes: 'ff', end: true },
  { kind: 'command', id: 5, arg: '00' },
];

describe('encodeCommand', () => {
  test('M_NUL "SYS x" → 80 06 00 53 59 53 20 78', () => {
    assert.deepEqual(encodeCommand(0, 'SYS x'), hex('80 06 00 53 59 53 20 78'));
  });

  test('FTS-1026 §4.2 examples: M_OK "" and M_NUL "TEST"', () => {
    assert.deepEqual(encodeCommand(4), hex('80 01 04'));
    assert.deepEqual(encodeCommand(0, 'TEST'), hex('80 05 00 54 45 53 54'));
  });

  test('string arguments go out as latin1 (one byte per character), Buffers as they are', () => {
    assert.deepEqual(encodeCommand(1, 'é'), hex('80 02 01 e9'));
    assert.deepEqual(encodeCommand(2, Buffer.from([0xc3, 0xa9])), hex('80 03 02 c3 a9'));
  });

  test('the largest argument (32766 bytes) fits; one byte more is rejected', () => {
    const frame = encodeCommand(0, Buffer.alloc(MAX_FRAME_PAYLOAD - 1, 0x41));
    assert.equal(frame.length, FRAME_HEADER_SIZE + MAX_FRAME_PAYLOAD);
    assert.deepEqual(frame.subarray(0, 3), hex('ff ff 00'));
    assert.throws(() => encodeCommand(0, Buffer.alloc(MAX_FRAME_PAYLOAD)), RangeError);
    assert.throws(() => encodeCommand(0, 'x'.repeat(MAX_FRAME_PAYLOAD)), /32767 bytes exceeds the frame limit/);
  });
});

describe('encodeData / writeDataHeader', () => {
  test('data frame "abc" → 00 03 61 62 63; empty data frame → 00 00', () => {
    assert.deepEqual(encodeData(Buffer.from('abc')), hex('00 03 61 62 63'));
    assert.deepEqual(encodeData(Buffer.alloc(0)), hex('00 00'));
  });

  test('the largest data frame has header 7f ff (command bit clear)', () => {
    const frame = encodeData(Buffer.alloc(MAX_FRAME_PAYLOAD, 1));
    assert.deepEqual(frame.subarray(0, 2), hex('7f ff'));
    assert.equal(frame.length, FRAME_HEADER_SIZE + MAX_FRAME_PAYLOAD);
  });

  test('writeDataHeader writes at the offset and rejects lengths outside 0-32767', () => {
    const buf = Buffer.alloc(4, 0xee);
    writeDataHeader(buf, 1, 0x1234);
    assert.deepEqual(buf, hex('ee 12 34 ee'));
    assert.throws(() => writeDataHeader(buf, 0, MAX_FRAME_PAYLOAD + 1), RangeError);
    assert.throws(() => writeDataHeader(buf, 0, -1), RangeError);
    assert.throws(() => encodeData(Buffer.alloc(MAX_FRAME_PAYLOAD + 1)), RangeError);
  });
});

describe('FrameDecoder', () => {
  test('decodes the annotated stream in one chunk', () => {
    const { events, idle } = decodeChunks([STREAM]);
    assert.deepEqual(events, STREAM_EVENTS);
    assert.equal(idle, true);
  });

  test('splitting the stream at any one byte boundary gives the same frames', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const { events, idle } = decodeChunks([STREAM.subarray(0, cut), STREAM.subarray(cut)]);
      assert.deepEqual(frames(events), STREAM_EVENTS, `cut at ${cut}`);
      assert.equal(idle, true);
    }
  });

  test('splitting at any two byte boundaries gives the same frames', () => {
    for (let a = 0; a <= STREAM.length; a++) {
      for (let b = a; b <= STREAM.length; b++) {
        const chunks = [STREAM.subarray(0, a), STREAM.subarray(a, b), STREAM.subarray(b)];
        assert.deepEqual(frames(decodeChunks(chunks).events), STREAM_EVENTS, `cuts at ${a}, ${b}`);
      }
    }
  });

  test('1-byte chunks give the same frames', () => {
    const chunks = Array.from(STREAM, (b) => Buffer.from([b]));
    assert.deepEqual(frames(decodeChunks(chunks).events), STREAM_EVENTS);
  });

  test('a data payload split over chunks arrives in pieces; only the last has end=true', () => {
    const payload = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const wire = encodeData(payload);
    const chunks = [wire.subarray(0, 1), wire.subarray(1, 10), wire.subarray(10, 11), wire.subarray(11, 60), wire.subarray(60)];
    const { events } = decodeChunks(chunks);
    const pieces = events as Piece[];
    assert.ok(pieces.every((e) => e.kind === 'data'));
    assert.deepEqual(
      pieces.map((p) => p.bytes.length / 2),
      [8, 1, 49, 42],
    );
    assert.deepEqual(
      pieces.map((p) => p.end),
      [false, false, false, true],
    );
    assert.deepEqual(Buffer.from(pieces.map((p) => p.bytes).join(''), 'hex'), payload);
  });

  test('a data frame ending mid-chunk is followed by the next frame from the same chunk', () => {
    const wire = Buffer.concat([encodeData(Buffer.from('xy')), encodeCommand(5)]);
    assert.deepEqual(decodeChunks([wire]).events, [
      { kind: 'data', bytes: '7879', end: true },
      { kind: 'command', id: 5, arg: '' },
    ]);
  });

  test('an empty data frame (0-byte file) emits one empty piece with end=true', () => {
    for (const chunks of [[hex('00 00')], [hex('00'), hex('00')]]) {
      const { events, idle } = decodeChunks(chunks);
      assert.deepEqual(events, [{ kind: 'data', bytes: '', end: true }]);
      assert.equal(idle, true);
    }
  });

  test('an empty command frame calls emptyCommand and nothing else', () => {
    const { events, idle } = decodeChunks([hex('80'), hex('00')]);
    assert.deepEqual(events, [{ kind: 'empty' }]);
    assert.equal(idle, true);
  });

  test('an empty command frame without an emptyCommand handler is dropped silently', () => {
    const seen: string[] = [];
    const decoder = new FrameDecoder({ command: () => seen.push('command'), data: () => seen.push('data') });
    decoder.push(hex('80 00 80 01 05'));
    assert.deepEqual(seen, ['command']);
  });

  test('unknown command ids (11-255) are passed through for the session to ignore', () => {
    assert.deepEqual(decodeChunks([hex('80 03 7f 61 62 80 01 ff')]).events, [
      { kind: 'command', id: 127, arg: '6162' },
      { kind: 'command', id: 255, arg: '' },
    ]);
  });

  test('the command argument is a stable copy, not a view into the input chunk', () => {
    let arg: Buffer | undefined;
    const decoder = new FrameDecoder({ command: (_id, a) => (arg = a), data: () => undefined });
    const chunk = encodeCommand(0, 'SYS x');
    decoder.push(chunk);
    chunk.fill(0);
    assert.equal(arg?.toString('latin1'), 'SYS x');
  });

  test('max payload 32767 round trip: data frame and command frame, in odd-sized chunks', () => {
    const rand = prng(7);
    const data = Buffer.from(Array.from({ length: MAX_FRAME_PAYLOAD }, () => Math.floor(rand() * 256)));
    const arg = Buffer.from(Array.from({ length: MAX_FRAME_PAYLOAD - 1 }, () => Math.floor(rand() * 256)));
    const wire = Buffer.concat([encodeData(data), encodeCommand(3, arg)]);
    const chunks: Buffer[] = [];
    for (let pos = 0; pos < wire.length; pos += 4093) chunks.push(wire.subarray(pos, pos + 4093));
    const { events, idle } = decodeChunks(chunks);
    assert.deepEqual(frames(events), [
      { kind: 'data', bytes: data.toString('hex'), end: true },
      { kind: 'command', id: 3, arg: arg.toString('hex') },
    ]);
    assert.equal(idle, true);
  });

  test('idle is true only between frames', () => {
    const { decoder } = recorder();
    assert.equal(decoder.idle, true);
    decoder.push(hex('80')); // half a header
    assert.equal(decoder.idle, false);
    decoder.push(hex('03 00 41')); // header done, one of three payload bytes
    assert.equal(decoder.idle, false);
    decoder.push(hex('42'));
    assert.equal(decoder.idle, true);
    decoder.push(hex('00 02 01')); // data frame, one of two bytes
    assert.equal(decoder.idle, false);
    decoder.push(hex('02 80 00'));
    assert.equal(decoder.idle, true);
  });

  test('random frame sequences round-trip through encode and random splits', () => {
    const rand = prng(2024);
    const int = (n: number): number => Math.floor(rand() * n);
    for (let round = 0; round < 300; round++) {
      const expected: Event[] = [];
      const parts: Buffer[] = [];
      for (let f = int(8); f >= 0; f--) {
        const len = rand() < 0.1 ? 0 : int(rand() < 0.05 ? MAX_FRAME_PAYLOAD : 200);
        const body = Buffer.from(Array.from({ length: len }, () => int(256)));
        if (rand() < 0.5) {
          const id = int(256);
          const arg = body.subarray(0, Math.min(len, MAX_FRAME_PAYLOAD - 1));
          parts.push(encodeCommand(id, arg));
          expected.push({ kind: 'command', id, arg: arg.toString('hex') });
        } else {
          parts.push(encodeData(body));
          expected.push({ kind: 'data', bytes: body.toString('hex'), end: true });
        }
      }
      const wire = Buffer.concat(parts);
      const chunks: Buffer[] = [];
      for (let pos = 0; pos < wire.length; ) {
        const n = 1 + int(rand() < 0.5 ? 4 : 400);
        chunks.push(wire.subarray(pos, pos + n));
        pos += n;
      }
      const { events, idle } = decodeChunks(chunks);
      assert.deepEqual(frames(events), expected, `round ${round}`);
      assert.equal(idle, true, `round ${round}`);
    }
  });

  test('fuzz: random bytes never throw, never exceed the frame limit, and split-independent', () => {
    const rand = prng(0xf1d0);
    const int = (n: number): number => Math.floor(rand() * n);
    for (let round = 0; round < 3000; round++) {
      const buf = Buffer.from(Array.from({ length: int(300) }, () => int(256)));
      const whole = decodeChunks([buf]).events;
      const chunks: Buffer[] = [];
      for (let pos = 0; pos < buf.length; ) {
        const n = 1 + int(20);
        chunks.push(buf.subarray(pos, pos + n));
        pos += n;
      }
      const split = decodeChunks(chunks).events;
      for (const ev of split) {
        if (ev.kind === 'command') assert.ok(1 + ev.arg.length / 2 <= MAX_FRAME_PAYLOAD, `round ${round}`);
        if (ev.kind === 'data') assert.ok(ev.bytes.length / 2 <= MAX_FRAME_PAYLOAD, `round ${round}`);
      }
      assert.deepEqual(frames(split), frames(whole), `round ${round}`);
    }
  });
});

describe('FrameDecoder.halt', () => {
  test('a handler that halts gets the rest of the chunk back, undecoded, from the frame boundary on', () => {
    // M_OK, then bytes a stream cipher would have changed: here each byte is XORed with 0x55.
    const okFrame = encodeCommand(4, 'secure');
    const after = Buffer.concat([encodeCommand(0, 'TRF 0 0'), encodeData(Buffer.from('xyz'))]);
    const enciphered = Buffer.from(after.map((b) => b ^ 0x55));
    const seen: string[] = [];
    let decoder!: FrameDecoder;
    decoder = new FrameDecoder({
      command: (id, arg) => {
        seen.push(`${id} ${arg.toString('latin1')}`);
        if (id === 4) decoder.halt();
      },
      data: (piece) => seen.push(`data ${piece.toString('latin1')}`),
    });
    const rest = decoder.push(Buffer.concat([okFrame, enciphered]));
    assert.deepEqual(rest, enciphered);
    assert.deepEqual(seen, ['4 secure']);
    assert.equal(decoder.push(Buffer.from(rest!.map((b) => b ^ 0x55))), undefined);
    assert.deepEqual(seen, ['4 secure', '0 TRF 0 0', 'data xyz']);
  });

  test('halting on the last frame of a chunk leaves nothing to return; the next push decodes normally', () => {
    let decoder!: FrameDecoder;
    const seen: number[] = [];
    decoder = new FrameDecoder({
      command: (id) => {
        seen.push(id);
        decoder.halt();
      },
      data: () => undefined,
    });
    assert.equal(decoder.push(encodeCommand(4, 'secure')), undefined);
    assert.equal(decoder.push(encodeCommand(5)), undefined);
    assert.deepEqual(seen, [4, 5]);
  });
});
