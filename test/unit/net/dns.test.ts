import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../../src/ftn/address.js';
import { fts5004Name, lookupFts5004, orderSrv, type DnsApi } from '../../../src/net/dns.js';

describe('fts5004Name (FTS-5004 §1)', () => {
  test('fully qualified, trailing dot, points in front', () => {
    assert.equal(fts5004Name(parseAddress('2:5020/1'), 'binkp.net'), 'f1.n5020.z2.binkp.net.');
    assert.equal(fts5004Name(parseAddress('2:5020/1.7@fidonet'), '.example.org.'), 'p7.f1.n5020.z2.example.org.');
  });
});

describe('orderSrv (RFC 2782)', () => {
  const rec = (name: string, priority: number, weight: number) => ({ name, port: 1, priority, weight });
  test('lowest priority first; weights pick the order within a priority', () => {
    const records = [rec('c', 20, 1), rec('a', 10, 0), rec('b', 10, 100)];
    // random 0: the first in running-sum order (weight 0 first, as RFC 2782 asks).
    assert.deepEqual(orderSrv(records, () => 0).map((r) => r.name), ['a', 'b', 'c']);
    // random near 1: the heavy one.
    assert.deepEqual(orderSrv(records, () => 0.99).map((r) => r.name), ['b', 'a', 'c']);
  });
  test('a lone `.` target means no service', () => {
    assert.deepEqual(orderSrv([rec('.', 0, 0)]), []);
  });
});

describe('lookupFts5004 (FTS-5004 §3)', () => {
  const notFound = () => Promise.reject(Object.assign(new Error('nx'), { code: 'ENOTFOUND' }));
  test('SRV first, then the name on the default port; nothing when neither exists', async () => {
    const asked: string[] = [];
    const api: DnsApi = {
      resolveSrv: (name) => {
        asked.push(`SRV ${name}`);
        return name.includes('f1.') ? Promise.resolve([{ name: 'hub.example', port: 24555, priority: 0, weight: 1 }]) : notFound();
      },
      addresses: (host) => {
        asked.push(`A ${host}`);
        return host.startsWith('f2.') ? Promise.resolve([{ address: '192.0.2.2', family: 4 }]) : notFound();
      },
    };
    assert.deepEqual(await lookupFts5004('f1.n5020.z2.binkp.net.', api, 0), [{ host: 'hub.example', port: 24555 }]);
    assert.deepEqual(await lookupFts5004('f2.n5020.z2.binkp.net.', api, 0), [{ host: 'f2.n5020.z2.binkp.net.' }]);
    assert.deepEqual(await lookupFts5004('f3.n5020.z2.binkp.net.', api, 0), []);
    assert.deepEqual(asked.slice(0, 3), ['SRV _binkp._tcp.f1.n5020.z2.binkp.net.', 'SRV _binkp._tcp.f2.n5020.z2.binkp.net.', 'A f2.n5020.z2.binkp.net.']);
  });
  test('a failing resolver is an error, not "not found"', async () => {
    const api: DnsApi = {
      resolveSrv: () => Promise.reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })),
      addresses: () => Promise.resolve([]),
    };
    await assert.rejects(lookupFts5004('f1.n1.z1.binkp.net.', api, 0), /timeout/);
  });
});
