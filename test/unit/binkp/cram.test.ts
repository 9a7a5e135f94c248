import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  CramError,
  MAX_CHALLENGE_BYTES,
  MIN_CHALLENGE_BYTES,
  cramResponse,
  decodeChallenge,
} from '../../../src/binkp/cram.js';

/** HMAC-MD5 spelled out from RFC 2104 with plain MD5, as an independent check of cramResponse. */
function hmacMd5(key: Buffer, text: Buffer): string {
  const md5 = (b: Buffer): Buffer => createHash('md5').update(b).digest();
  const k = Buffer.alloc(64);
  (key.length > 64 ? md5(key) : key).copy(k);
  const ipad = Buffer.from(k.map((b) => b ^ 0x36));
  const opad = Buffer.from(k.map((b) => b ^ 0x5c));
  return md5(Buffer.concat([opad, md5(Buffer.concat([ipad, text]))])).toString('hex');
}

describe('cramResponse', () => {
  test('FTS-1027 vector: tanstaaftanstaaf / f0315b07… → CRAM-MD5-56be0021…', () => {
    assert.equal(
      cramResponse('tanstaaftanstaaf', 'f0315b074d728d483d6887d0182fc328'),
      'CRAM-MD5-56be002162a4a15ba7a9064f0c93fd00',
    );
  });

  test('upper-case hex in the challenge gives the same answer; the digest is lower-case hex', () => {
    const r = cramResponse('tanstaaftanstaaf', 'F0315B074D728D483D6887D0182FC328');
    assert.equal(r, 'CRAM-MD5-56be002162a4a15ba7a9064f0c93fd00');
  });

  test('agrees with HMAC-MD5 built from MD5 (long key, UTF-8 password, 64-byte challenge)', () => {
    const challenge = Buffer.from(Array.from({ length: MAX_CHALLENGE_BYTES }, (_, i) => (i * 37) & 0xff));
    for (const password of ['p', 'pässwörd', 'x'.repeat(100), '']) {
      assert.equal(
        cramResponse(password, challenge.toString('hex')),
        `CRAM-MD5-${hmacMd5(Buffer.from(password, 'utf8'), challenge)}`,
        `password ${JSON.stringify(password)}`,
      );
    }
  });

  test('a bad challenge throws CramError before any digest', () => {
    assert.throws(() => cramResponse('pw', 'xyz'), CramError);
  });
});

describe('decodeChallenge', () => {
  test('decodes 8 to 64 bytes (FTS-1027)', () => {
    assert.deepEqual(decodeChallenge('0011223344556677'), Buffer.from('0011223344556677', 'hex'));
    assert.equal(decodeChallenge('ab'.repeat(MIN_CHALLENGE_BYTES)).length, 8);
    assert.equal(decodeChallenge('AB'.repeat(MAX_CHALLENGE_BYTES)).length, 64);
  });

  test('not hex, odd length, too short, too long → CramError', () => {
    const cases: [string, RegExp][] = [
      ['zz'.repeat(8), /not hex/],
      ['0011223344556677g', /not hex/],
      ['0011-22334455667788', /not hex/],
      ['001122334455667', /not hex/], // odd length
      ['', /0 bytes/],
      ['00'.repeat(MIN_CHALLENGE_BYTES - 1), /7 bytes is outside 8-64/],
      ['00'.repeat(MAX_CHALLENGE_BYTES + 1), /65 bytes is outside 8-64/],
    ];
    for (const [hex, message] of cases) {
      assert.throws(
        () => decodeChallenge(hex),
        (err: unknown) => err instanceof CramError && err.name === 'CramError' && message.test(err.message),
        JSON.stringify(hex),
      );
    }
  });
});
