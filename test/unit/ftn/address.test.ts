import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addressKey,
  formatAddress,
  parseAddress,
  parseAddressList,
  sameAddress,
  tryParseAddress,
  type FtnAddress,
} from '../../../src/ftn/address.js';

const addr = (zone: number, net: number, node: number, point = 0, domain?: string): FtnAddress => ({
  zone,
  net,
  node,
  point,
  domain,
});

describe('parseAddress / formatAddress', () => {
  test('4D node, point and 5D forms', () => {
    assert.deepEqual(parseAddress('2:5020/1'), addr(2, 5020, 1));
    assert.deepEqual(parseAddress('2:5020/1.45'), addr(2, 5020, 1, 45));
    assert.deepEqual(parseAddress('2:5020/1@fidonet'), addr(2, 5020, 1, 0, 'fidonet'));
    assert.deepEqual(parseAddress('21:1/100.3@fsxnet'), addr(21, 1, 100, 3, 'fsxnet'));
  });

  test('the domain is lower-cased', () => {
    assert.equal(parseAddress('2:5020/1@FidoNet').domain, 'fidonet');
  });

  test('surrounding blanks are trimmed; leading zeros read as decimal', () => {
    assert.deepEqual(parseAddress('  2:5020/1.2 '), addr(2, 5020, 1, 2));
    assert.deepEqual(parseAddress('02:05020/0001'), addr(2, 5020, 1));
  });

  test('ranges (FRL-1002): zone/net 1-32767, node/point 0-32767', () => {
    assert.deepEqual(parseAddress('2:5020/0'), addr(2, 5020, 0));
    assert.deepEqual(parseAddress('1:1/1.0'), addr(1, 1, 1));
    assert.deepEqual(parseAddress('32767:32767/32767.32767'), addr(32767, 32767, 32767, 32767));
    for (const bad of ['0:5020/1', '32768:1/1', '2:0/1', '2:32768/1', '2:5020/32768', '2:5020/1.32768', '2:5020/100000']) {
      assert.equal(tryParseAddress(bad), undefined, bad);
    }
  });

  test('malformed text → undefined, and parseAddress throws a TypeError naming it', () => {
    for (const bad of ['', '2:5020', '5020/1', '2:5020/1.', '2:5020/1@', '2:5020/x', '2:-1/1', '2: 5020/1', '2:5020/1@-net', 'a:b/c']) {
      assert.equal(tryParseAddress(bad), undefined, JSON.stringify(bad));
    }
    assert.throws(() => parseAddress('2:5020/x'), (err: unknown) => err instanceof TypeError && err.message.includes('"2:5020/x"'));
  });

  test('format omits point 0 and, on request, the domain', () => {
    assert.equal(formatAddress(addr(2, 5020, 1)), '2:5020/1');
    assert.equal(formatAddress(addr(2, 5020, 1, 7)), '2:5020/1.7');
    assert.equal(formatAddress(addr(2, 5020, 1, 7, 'fidonet')), '2:5020/1.7@fidonet');
    assert.equal(formatAddress(addr(2, 5020, 1, 7, 'fidonet'), false), '2:5020/1.7');
    assert.equal(addressKey(addr(2, 5020, 1, 7, 'fidonet')), '2:5020/1.7');
  });

  test('parse and format round-trip', () => {
    for (const text of ['2:5020/1', '2:5020/0', '1:1/1.1', '21:4/100.3@fsxnet', '32767:32767/32767.32767@x-y.z_1']) {
      assert.equal(formatAddress(parseAddress(text)), text);
    }
  });
});

describe('sameAddress', () => {
  test('same 4D or 5D address matches; any differing part does not', () => {
    const a = parseAddress('2:5020/1.2@fidonet');
    assert.equal(sameAddress(a, parseAddress('2:5020/1.2@FIDONET')), true);
    for (const other of ['3:5020/1.2', '2:5021/1.2', '2:5020/2.2', '2:5020/1', '2:5020/1.2@othernet']) {
      assert.equal(sameAddress(a, parseAddress(other)), false, other);
    }
  });

  test('a 4D address matches the same node in any domain, either way round', () => {
    const d4 = parseAddress('2:5020/1');
    const d5 = parseAddress('2:5020/1@fidonet');
    assert.equal(sameAddress(d4, d5), true);
    assert.equal(sameAddress(d5, d4), true);
    assert.equal(sameAddress(d4, parseAddress('2:5020/1')), true);
  });
});

describe('parseAddressList', () => {
  test("binkd's M_ADR with a leading space", () => {
    const { addresses, bad } = parseAddressList(' 2:5020/1@fidonet 2:5020/1.1@fidonet');
    assert.deepEqual(addresses, [addr(2, 5020, 1, 0, 'fidonet'), addr(2, 5020, 1, 1, 'fidonet')]);
    assert.deepEqual(bad, []);
  });

  test('junk tokens are reported in `bad`; blanks of any kind separate', () => {
    const { addresses, bad } = parseAddressList('\t2:5020/1  junk 0:1/1\n21:1/100@fsxnet  ');
    assert.deepEqual(addresses.map((a) => formatAddress(a)), ['2:5020/1', '21:1/100@fsxnet']);
    assert.deepEqual(bad, ['junk', '0:1/1']);
  });

  test('empty and blank text give nothing', () => {
    assert.deepEqual(parseAddressList(''), { addresses: [], bad: [] });
    assert.deepEqual(parseAddressList('   '), { addresses: [], bad: [] });
  });
});
