import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { FrameDecoder, encodeCommand, encodeData } from '../../../src/binkp/frame.js';
import { PLZ_COMPRESSED_BIT, PLZ_MAX_INFLATED, PLZ_MAX_PAYLOAD, PlzError, encodePlzData, inflatePlzFrame } from '../../../src/binkp/plz.js';
import { prng } from '../../helpers/random.js';

function decodeAll(wire: Buffer, plz: boolean, split = wire.length): { data: Buffer[]; commands: string[] } {
  const data: Buffer[] = [];
  const commands: string[] = [];
  let open: Buffer[] = [];
  const d = new FrameDecoder({
    command: (id, arg) => commands.push(`${id} ${arg.toString('latin1')}`),
    data: (piece, end) => {
      open.push(Buffer.from(piece));
      if (end) {
        data.push(Buffer.concat(open));
        open = [];
      }
    },
  });
  d.plz = plz ? inflatePlzFrame : undefined;
  for (let i = 0; i < wire.length; i += split) d.push(wire.subarray(i, i + split));
  return { data, commands };
}

describe('PLZ (FTS-1029)', () => {
  test('vector: a compressible frame gets bit 14 and a zlib body; the header length is the body', () => {
    const payload = Buffer.from('A'.repeat(1000));
    const frame = encodePlzData(payload);
    const header = frame.readUInt16BE(0);
    assert.equal(header & 0x8000, 0, 'still a data frame');
    assert.equal(header & PLZ_COMPRESSED_BIT, PLZ_COMPRESSED_BIT);
    assert.equal(header & 0x3fff, frame.length - 2);
    // "compressed with 'compress' or 'compress2' methods of ZLib": a zlib stream.
    assert.deepEqual(frame.subarray(2), deflateSync(payload));
    assert.equal(frame[2], 0x78);
  });

  test('incompressible or empty data goes plain, without the bit', () => {
    const rnd = prng(5);
    const noise = Buffer.alloc(3000);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(rnd() * 256);
    const frame = encodePlzData(noise);
    assert.equal(frame.readUInt16BE(0), noise.length);
    assert.deepEqual(frame.subarray(2), noise);
    assert.deepEqual(encodePlzData(Buffer.alloc(0)), Buffer.from([0, 0]));
    assert.equal(encodePlzData(Buffer.from('A'.repeat(100)), false).readUInt16BE(0), 100);
  });

  test('"the biggest dataframe in PLZ mode cannot exceed 0x3FFF"', () => {
    assert.equal(PLZ_MAX_PAYLOAD, 16383);
    assert.doesNotThrow(() => encodePlzData(Buffer.alloc(16383)));
    assert.throws(() => encodePlzData(Buffer.alloc(16384)), RangeError);
  });

  test('decoder in PLZ mode: mixed compressed, plain and command frames, any split', () => {
    const rnd = prng(11);
    const payloads = [Buffer.from('x'.repeat(16383)), Buffer.from('hello'), Buffer.alloc(0), Buffer.from('abc'.repeat(2000))];
    const noise = Buffer.alloc(500);
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(rnd() * 256);
    payloads.push(noise);
    const wire = Buffer.concat([
      ...payloads.slice(0, 2).map((p) => encodePlzData(p)),
      encodeCommand(6, 'name 1 2'),
      ...payloads.slice(2).map((p) => encodePlzData(p)),
    ]);
    for (const split of [1, 2, 3, 7, 100, wire.length]) {
      const r = decodeAll(wire, true, split);
      assert.deepEqual(r.data, payloads, `split ${split}`);
      assert.deepEqual(r.commands, ['6 name 1 2']);
    }
  });

  test('without PLZ mode the same bits are part of the length (a 20000-byte plain frame)', () => {
    const big = Buffer.alloc(20000, 7);
    assert.deepEqual(decodeAll(encodeData(big), false).data, [big]);
  });

  test('a hostile frame: bad zlib, or one that inflates past the cap, is a PlzError', () => {
    const bad = Buffer.from([0x40 | 0, 4, 1, 2, 3, 4]);
    assert.throws(() => decodeAll(bad, true), PlzError);
    const bomb = deflateSync(Buffer.alloc(PLZ_MAX_INFLATED + 1));
    assert.ok(bomb.length <= PLZ_MAX_PAYLOAD);
    const header = Buffer.alloc(2);
    header.writeUInt16BE(PLZ_COMPRESSED_BIT | bomb.length);
    assert.throws(() => decodeAll(Buffer.concat([header, bomb]), true), PlzError);
    assert.equal(inflatePlzFrame(deflateSync(Buffer.alloc(PLZ_MAX_INFLATED))).length, PLZ_MAX_INFLATED);
  });
});
