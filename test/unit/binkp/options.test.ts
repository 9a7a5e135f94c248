import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  describeNegotiated,
  formatFileExtras,
  hasNz,
  negotiate,
  ourOptions,
  parseFileExtras,
  type ExtensionPrefs,
  type LoginFacts,
} from '../../../src/binkp/options.js';

const ALL: ExtensionPrefs = { compression: true, crc: true, crypt: true, nd: true, nr: false };
const NONE: ExtensionPrefs = { compression: false, crc: false, crypt: false, nd: false, nr: false };
const SECURE_CRAM: LoginFacts = { password: true, cram: true, secure: true };
const set = (s: string): Set<string> => new Set(s.split(' ').filter(Boolean));
/** What binkd 1.1a (Debian, zlib only) says before M_OK to a caller that offered ND NDA CRYPT. */
const BINKD_OPT = set('EXTCMD NR NDA CRYPT GZ');

describe('our OPT', () => {
  test("binkd's order, only what is allowed and implemented", () => {
    assert.deepEqual(ourOptions(ALL, true), ['NDA', 'EXTCMD', 'NR', 'ND', 'CRYPT', 'GZ', 'PLZ', 'CRC']);
    assert.deepEqual(ourOptions(NONE, true), []);
    assert.deepEqual(ourOptions({ ...NONE, nr: true }, true), ['NR']);
  });

  test('CRYPT only with a password; BZ2 never', () => {
    assert.ok(!ourOptions(ALL, false).includes('CRYPT'));
    assert.ok(!ourOptions(ALL, true).includes('BZ2'));
  });
});

describe('negotiation', () => {
  const ours = ourOptions(ALL, true);

  test('against binkd: CRYPT and GZ on; ND one-sided (binkd sends in ND mode, NDA), no CRC, no PLZ', () => {
    const n = negotiate(ours, BINKD_OPT, SECURE_CRAM);
    assert.equal(n.crypt, true);
    assert.deepEqual(n.sendMethods, ['GZ']);
    assert.deepEqual(n.receiveMethods, ['GZ']);
    assert.equal(n.plz, false);
    assert.equal(n.sendCrc, false);
    assert.equal(n.verifyCrc, true);
    assert.equal(n.receiveNd, true);
    assert.equal(n.sendNd, false);
    assert.deepEqual(describeNegotiated(n, true), ['GZ', 'CRYPT', 'ND']);
    assert.deepEqual(describeNegotiated(negotiate(ours, set('CRC NR'), SECURE_CRAM), true), ['CRC', 'NR']);
  });

  test('CRYPT needs both offers, a password, CRAM-MD5 and M_OK secure', () => {
    assert.equal(negotiate(ours, set('CRYPT'), SECURE_CRAM).crypt, true);
    assert.equal(negotiate(ours, set('GZ'), SECURE_CRAM).crypt, false);
    assert.equal(negotiate(['GZ'], set('CRYPT'), SECURE_CRAM).crypt, false);
    assert.equal(negotiate(ours, set('CRYPT'), { ...SECURE_CRAM, cram: false }).crypt, false);
    assert.equal(negotiate(ours, set('CRYPT'), { ...SECURE_CRAM, password: false }).crypt, false);
    assert.equal(negotiate(ours, set('CRYPT'), { ...SECURE_CRAM, secure: false }).crypt, false);
  });

  test('GZ is sent only when the hub said EXTCMD and GZ; BZ2 alone gives nothing', () => {
    assert.deepEqual(negotiate(ours, set('GZ'), SECURE_CRAM).sendMethods, []);
    assert.deepEqual(negotiate(ours, set('EXTCMD BZ2'), SECURE_CRAM).sendMethods, []);
    assert.deepEqual(negotiate(ours, set('EXTCMD GZ BZ2'), SECURE_CRAM).sendMethods, ['GZ']);
    assert.deepEqual(negotiate(ourOptions(NONE, true), set('EXTCMD GZ'), SECURE_CRAM).sendMethods, []);
  });

  test('CRC: we send it when the hub offered CRC; we verify whenever we offered it (FTS-1030 §2.2)', () => {
    const n = negotiate(ours, set('CRC'), SECURE_CRAM);
    assert.equal(n.sendCrc, true);
    assert.equal(n.verifyCrc, true);
    const off = negotiate(ourOptions({ ...ALL, crc: false }, true), set('CRC'), SECURE_CRAM);
    assert.equal(off.sendCrc, false);
    assert.equal(off.verifyCrc, false);
  });

  test('PLZ needs both', () => {
    assert.equal(negotiate(ours, set('PLZ'), SECURE_CRAM).plz, true);
    assert.equal(negotiate(['CRC'], set('PLZ'), SECURE_CRAM).plz, false);
  });

  test('ND as binkd decides it: symmetric with ND, one-sided only with NDA, else off', () => {
    const both = negotiate(ours, set('ND'), SECURE_CRAM);
    assert.deepEqual([both.sendNd, both.receiveNd], [true, true]);
    const asym = negotiate(ours, set('NDA'), SECURE_CRAM);
    assert.deepEqual([asym.sendNd, asym.receiveNd], [false, true]);
    const none = negotiate(ours, set('NR'), SECURE_CRAM);
    assert.deepEqual([none.sendNd, none.receiveNd], [false, false]);
    const notOurs = negotiate(ourOptions({ ...ALL, nd: false }, true), set('ND NDA'), SECURE_CRAM);
    assert.deepEqual([notOurs.sendNd, notOurs.receiveNd], [false, false], 'use_nd = no: never ND');
  });
});

describe('M_FILE extras', () => {
  test('GZ/BZ2 name the method; a hex token is a CRC only when we offered CRC', () => {
    assert.deepEqual(parseFileExtras(['GZ'], true), { method: 'GZ', unknown: [] });
    assert.deepEqual(parseFileExtras(['BZ2'], true), { method: 'BZ2', unknown: [] });
    assert.deepEqual(parseFileExtras(['cbf43926'], true), { crc: 0xcbf43926, unknown: [] });
    assert.deepEqual(parseFileExtras(['1A'], true), { crc: 0x1a, unknown: [] });
    assert.deepEqual(parseFileExtras(['CBF43926'], false), { unknown: ['CBF43926'] });
    assert.deepEqual(parseFileExtras(['XYZ'], true), { unknown: ['XYZ'] });
  });

  test('FTS-1030 §3: a compressed file goes without the checksum', () => {
    assert.equal(formatFileExtras('GZ', 'CBF43926'), ' GZ');
    assert.equal(formatFileExtras(undefined, 'CBF43926'), ' CBF43926');
    assert.equal(formatFileExtras(undefined, undefined), '');
  });

  test('NZ anywhere after the offset', () => {
    assert.equal(hasNz(['NZ']), true);
    assert.equal(hasNz(['GZ', 'NZ']), true);
    assert.equal(hasNz(['GZ']), false);
  });
});
