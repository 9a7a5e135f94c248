import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CryptKeys, sessionKeys } from '../../../src/binkp/crypt.js';
import { encodeCommand, FrameDecoder } from '../../../src/binkp/frame.js';
import { prng } from '../../helpers/random.js';

function randomBytes(rnd: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

describe('CRYPT (binkd crypt.c)', () => {
  test('caller and answerer keys pair up: what one encrypts the other decrypts, both ways', () => {
    const caller = sessionKeys('secret', 'caller');
    const answerer = sessionKeys('secret', 'answerer');
    const rnd = prng(7);
    for (let i = 0; i < 20; i++) {
      const up = randomBytes(rnd, Math.floor(rnd() * 5000));
      const down = randomBytes(rnd, Math.floor(rnd() * 5000));
      const upWire = caller.out.encrypt(Buffer.from(up));
      const downWire = answerer.out.encrypt(Buffer.from(down));
      if (up.length > 16) assert.notDeepEqual(upWire, up);
      assert.deepEqual(answerer.in.decrypt(upWire), up);
      assert.deepEqual(caller.in.decrypt(downWire), down);
    }
  });

  test('the two directions use different keys, and a wrong password garbles the stream', () => {
    const text = Buffer.from('M_EOB and friends, a frame header and all');
    const caller = sessionKeys('secret', 'caller');
    const a = caller.out.encrypt(Buffer.from(text));
    const b = sessionKeys('secret', 'answerer').out.encrypt(Buffer.from(text));
    assert.notDeepEqual(a, b);
    assert.notDeepEqual(sessionKeys('Secret', 'answerer').in.decrypt(Buffer.from(a)), text);
  });

  test('the keystream depends only on the bytes so far: any split gives the same ciphertext', () => {
    const text = randomBytes(prng(3), 1000);
    const whole = new CryptKeys(Buffer.from('pw')).encrypt(Buffer.from(text));
    const keys = new CryptKeys(Buffer.from('pw'));
    const pieces = [text.subarray(0, 1), text.subarray(1, 333), text.subarray(333)].map((p) => keys.encrypt(Buffer.from(p)));
    assert.deepEqual(Buffer.concat(pieces), whole);
  });

  test('"-" then the password is not the same as the password alone (binkd complete_login)', () => {
    const direct = new CryptKeys(Buffer.from('secret')).encrypt(Buffer.alloc(8));
    const dashed = new CryptKeys(Buffer.from('-')).mix(Buffer.from('secret')).encrypt(Buffer.alloc(8));
    const dashSecret = new CryptKeys(Buffer.from('-secret')).encrypt(Buffer.alloc(8));
    assert.notDeepEqual(direct, dashed);
    assert.deepEqual(dashed, dashSecret);
  });

  test('the frame decoder switches to decryption at the frame boundary, inside one chunk', () => {
    const caller = sessionKeys('pw', 'caller');
    const answerer = sessionKeys('pw', 'answerer');
    const plain = encodeCommand(4, 'secure');
    const after = Buffer.concat([encodeCommand(0, 'OPT X'), encodeCommand(5)]);
    const wire = Buffer.concat([plain, answerer.out.encrypt(Buffer.from(after))]);
    const seen: string[] = [];
    const decoder = new FrameDecoder({
      command: (id, arg) => {
        seen.push(`${id} ${arg.toString('latin1')}`);
        if (id === 4) decoder.setInputTransform((b) => caller.in.decrypt(b));
      },
      data: () => assert.fail('no data frames here'),
    });
    const copy = Buffer.from(wire);
    decoder.push(wire);
    assert.deepEqual(seen, ['4 secure', '0 OPT X', '5 ']);
    assert.deepEqual(wire, copy, 'the caller buffer is left alone');
  });
});
