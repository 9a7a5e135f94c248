import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  parseBool,
  parseDuration,
  parseSize,
  tryParseBool,
  tryParseCount,
  tryParseDuration,
  tryParseSize,
} from '../../../src/config/units.js';

describe('parseDuration', () => {
  test('plain numbers are seconds', () => {
    assert.equal(parseDuration('90'), 90_000);
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration(' 15 '), 15_000);
  });

  test('s, m, h, d suffixes, either case', () => {
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('1d'), 86_400_000);
    assert.equal(parseDuration('2H'), 7_200_000);
    assert.equal(parseDuration('5 m'), 300_000);
  });

  test('fractions round to whole milliseconds', () => {
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('0.0005'), 1);
  });

  test('rejects other units, signs and junk', () => {
    for (const bad of ['1w', '-5m', '', 'm', '5mm', '1h30m', '1e3', 'abc', '5 minutes']) {
      assert.equal(tryParseDuration(bad), undefined, bad);
    }
  });

  test('parseDuration throws a message quoting the text', () => {
    assert.throws(() => parseDuration('1w'), { name: 'TypeError', message: /^"1w" is not a duration \(/ });
  });
});

describe('parseSize', () => {
  test('plain bytes and binary suffixes', () => {
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('64k'), 65_536);
    assert.equal(parseSize('64K'), 65_536);
    assert.equal(parseSize('64KB'), 65_536);
    assert.equal(parseSize('10M'), 10_485_760);
    assert.equal(parseSize('10MB'), 10_485_760);
    assert.equal(parseSize('1G'), 1_073_741_824);
    assert.equal(parseSize('512B'), 512);
    assert.equal(parseSize('1.5k'), 1536);
    assert.equal(parseSize('0'), 0);
  });

  test('rejects unknown suffixes and junk', () => {
    for (const bad of ['1T', '-1', 'k', '', '10 MiB', '1,000', 'x']) {
      assert.equal(tryParseSize(bad), undefined, bad);
    }
  });

  test('parseSize throws a message quoting the text', () => {
    assert.throws(() => parseSize('1T'), { name: 'TypeError', message: /^"1T" is not a size \(/ });
  });
});

describe('parseBool', () => {
  test('accepts yes/no, true/false, on/off, 1/0 in any case', () => {
    for (const t of ['yes', 'YES', 'true', 'True', 'on', '1', ' on ']) assert.equal(parseBool(t), true, t);
    for (const f of ['no', 'No', 'false', 'FALSE', 'off', '0']) assert.equal(parseBool(f), false, f);
  });

  test('rejects anything else', () => {
    for (const bad of ['y', 'n', '2', '', 'enabled']) assert.equal(tryParseBool(bad), undefined, bad);
    assert.throws(() => parseBool('maybe'), { message: /^"maybe" is not a boolean/ });
  });
});

describe('tryParseCount', () => {
  test('whole non-negative numbers only', () => {
    assert.equal(tryParseCount('0'), 0);
    assert.equal(tryParseCount(' 42 '), 42);
    for (const bad of ['-1', '1.5', '1e3', '', 'x', '99999999999999999999']) {
      assert.equal(tryParseCount(bad), undefined, bad);
    }
  });
});
