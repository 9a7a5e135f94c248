import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CRC32_TABLE, crc32, crc32Step, formatCrc, parseCrc } from '../../../src/binkp/crc.js';
import { prng } from '../../helpers/random.js';

/** FTS-1030 §2.4's pseudocode, transcribed line by line: the reference the fast path must match. */
function standardCrc(buffer: Uint8Array): number {
  let crc = 0xffffffff; // Preconditioning
  for (let j = 0; j < buffer.length; j++) {
    let k = (crc ^ buffer[j]!) & 0x000000ff; // (*)
    for (let i = 8; i >= 1; i--) {
      if ((k & 1) !== 0) k = (k >>> 1) ^ 0xedb88320;
      else k = k >>> 1;
    } // (**)
    crc = ((crc >>> 8) & 0x00ffffff) ^ k;
  }
  return ~crc >>> 0; // Postconditioning: flip all bits
}

describe('CRC-32 (FTS-1030)', () => {
  test('the check value of ITU-T V.42 / ISO 3309 CRC-32: "123456789" -> CBF43926', () => {
    const data = Buffer.from('123456789', 'latin1');
    assert.equal(standardCrc(data), 0xcbf43926);
    assert.equal(crc32(data), 0xcbf43926);
  });

  test('empty input, one byte, and the lookup table against the standard pseudocode', () => {
    assert.equal(crc32(Buffer.alloc(0)), 0);
    assert.equal(crc32(Buffer.from([0])), standardCrc(Buffer.from([0])));
    // §2.4: the table holds the inner loop's result for 0..255.
    assert.equal(CRC32_TABLE[0], 0);
    assert.equal(CRC32_TABLE[1], 0x77073096);
    assert.equal(CRC32_TABLE[128], 0xedb88320);
    assert.equal(CRC32_TABLE[255], 0x2d02ef8d);
  });

  test('random buffers: fast path = pseudocode, and summing in pieces = summing at once', () => {
    const rnd = prng(1030);
    for (let round = 0; round < 50; round++) {
      const data = Buffer.alloc(Math.floor(rnd() * 3000));
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(rnd() * 256);
      const whole = crc32(data);
      assert.equal(whole, standardCrc(data), `round ${round}`);
      const cut = Math.floor(rnd() * (data.length + 1));
      assert.equal(crc32(data.subarray(cut), crc32(data.subarray(0, cut))), whole, `round ${round} cut ${cut}`);
    }
  });

  test('the raw table step is the inner update without conditioning', () => {
    let crc = 0xffffffff;
    for (const b of Buffer.from('123456789')) crc = crc32Step(crc, b);
    assert.equal(~crc >>> 0, 0xcbf43926);
  });

  test('M_FILE token: eight upper-case hex digits out; 1-8 hex digits in, any case (§2.2)', () => {
    assert.equal(formatCrc(0xcbf43926), 'CBF43926');
    assert.equal(formatCrc(0x1a), '0000001A');
    assert.equal(parseCrc('CBF43926'), 0xcbf43926);
    assert.equal(parseCrc('cbf43926'), 0xcbf43926);
    assert.equal(parseCrc('1a'), 0x1a);
    for (const bad of ['', 'GZ', 'BZ2', '123456789', '12 34', '-1', '0x12', 'NZ']) assert.equal(parseCrc(bad), undefined, bad);
  });
});
