/**
 * load.ts checks address syntax itself (node:net cost an idle run several milliseconds to load).
 * Its answers must be node:net's: fixed cases for every rule, then many generated candidates.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import { isIPv4Text, isIPv6Text, splitHostPort } from '../../../src/config/load.js';
import { seededRandom } from '../poll/fixtures.js';

const V6 = [
  '::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '2001:db8::ff00:42:8329',
  'fe80::1%eth0', 'fe80::1%', '::ffff:192.0.2.1', '1:2:3:4:5:6:192.0.2.1', '::192.0.2.1', '1:2:3:4:5::192.0.2.1',
  '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::', '1:2:3:4:5:6:7', '::1.2.3', '1:', '1::1:', '1:::2', ':1::2',
  '::1:2:3:4:5:6:7', '1:2:3:4:5:6::7', 'a:b:c:d:e:f:1.2.3.04', '3f:156.0.0.0::', '::ffff:1.2.3.4:1', ':::', '',
  'ABCD:EF01::', '::%a.b', '1:2:3:4:5:6:7:8%1', '[::1]', ' ::1', '::1 ',
];
const V4 = ['0.0.0.0', '255.255.255.255', '192.0.2.1', '01.2.3.4', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1.2.3.4%x', '', '1..2.3', ' 1.2.3.4', '-1.2.3.4'];

describe('isIPv4Text / isIPv6Text agree with node:net', () => {
  test('fixed cases', () => {
    for (const t of [...V6, ...V4]) {
      assert.equal(isIPv6Text(t), isIPv6(t), `isIPv6(${JSON.stringify(t)})`);
      assert.equal(isIPv4Text(t), isIPv4(t), `isIPv4(${JSON.stringify(t)})`);
    }
  });

  test('generated candidates: groups, dotted quads and zones in every arrangement', () => {
    const rnd = seededRandom(6);
    const n = (k: number): number => Math.floor(rnd() * k);
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      const parts: string[] = [];
      for (let k = n(10); k > 0; k--) {
        const r = n(10);
        parts.push(r < 7 ? n(0x10000).toString(16).slice(0, 1 + n(5)) : r < 8 ? '' : r < 9 ? `${n(300)}.${n(256)}.${n(256)}.${n(256)}` : 'x');
      }
      let s = parts.join(':');
      if (n(3) === 0) {
        const at = n(s.length + 1);
        s = `${s.slice(0, at)}::${s.slice(at)}`;
      }
      if (n(10) === 0) s += `%${['eth0', '', '1', 'a-b.c:d', '#'][n(5)]}`;
      if (isIPv6(s)) valid++;
      assert.equal(isIPv6Text(s), isIPv6(s), `isIPv6(${JSON.stringify(s)})`);
      const q = [n(300), n(300), n(300), n(300)].slice(0, 3 + n(2)).map((x) => (n(8) === 0 ? `0${x}` : String(x))).join('.');
      assert.equal(isIPv4Text(q), isIPv4(q), `isIPv4(${JSON.stringify(q)})`);
    }
    assert.ok(valid > 1000, `only ${valid} valid IPv6 candidates generated`);
  });

  test('splitHostPort still reads every form', () => {
    assert.deepEqual(splitHostPort('[2001:db8::1]:24555'), { host: '2001:db8::1', port: '24555' });
    assert.deepEqual(splitHostPort('2001:db8::1'), { host: '2001:db8::1' });
    assert.deepEqual(splitHostPort('192.0.2.1:24554'), { host: '192.0.2.1', port: '24554' });
    assert.deepEqual(splitHostPort('[1.2.3.4]'), { error: 'has "[1.2.3.4]", which is not an IPv6 address' });
    assert.deepEqual(splitHostPort('1:2:3'), { error: 'is not host[:port] (write an IPv6 address with a port as [addr]:port)' });
  });
});
