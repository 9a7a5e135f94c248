import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { buildConfig } from '../../../src/config/load.js';
import { parseIni } from '../../../src/config/ini.js';
import type { HubConfig } from '../../../src/config/types.js';
import { SessionError } from '../../../src/errors.js';
import { dial } from '../../../src/net/dial.js';
import type { DnsApi, IpAddress } from '../../../src/net/dns.js';
import { lookupHub, resolutionText } from '../../../src/net/lookup.js';
import { makeTempDir, removeTempDir } from '../../helpers/tmp.js';
import { NODELIST } from './nodelist.test.js';

function hub(lines: string, dir = '/tmp'): HubConfig {
  const text = `[node]\naddress = 2:5020/99\noutbound = ${dir}/out\ninbound = ${dir}/in\n[h]\n${lines}\n`;
  return buildConfig(parseIni(text, `${dir}/f.ini`), `${dir}/f.ini`).hubs[0]!;
}

/** Names → addresses; SRV by name. Everything else does not exist. */
function fakeDns(hosts: Record<string, string[]>, srv: Record<string, { name: string; port: number }[]> = {}): DnsApi & { asked: string[] } {
  const asked: string[] = [];
  const nx = () => Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
  return {
    asked,
    resolveSrv: (name) => {
      asked.push(`SRV ${name}`);
      const s = srv[name];
      return s ? Promise.resolve(s.map((r) => ({ ...r, priority: 0, weight: 1 }))) : nx();
    },
    addresses: (host, family) => {
      asked.push(`A ${host}`);
      const list = hosts[host];
      if (!list) return nx();
      return Promise.resolve(
        list.map((address): IpAddress => ({ address, family: address.includes(':') ? 6 : 4 })).filter((a) => !family || a.family === family),
      );
    },
  };
}

/** Connects only to the addresses in `open`; every other one refuses. */
function fakeConnect(open: string[], tried: string[] = []) {
  return (a: IpAddress, port: number) => {
    tried.push(`${a.address}:${port}`);
    const ok = open.includes(`${a.address}:${port}`);
    const done = ok
      ? Promise.resolve({ destroy() {} } as unknown as Socket)
      : Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    return { done, cancel: () => undefined };
  };
}

describe('lookup chain', () => {
  let dir: string;
  after(async () => removeTempDir(dir));

  test('hub_hostname wins; `*` or absent: nodelist, then DNS (FTS-5004 name, SRV)', async () => {
    dir = await makeTempDir('fnpoll-dial-');
    const list = join(dir, 'NODELIST.339');
    await writeFile(list, NODELIST);
    const dns = fakeDns({}, { '_binkp._tcp.f1.n5030.z2.binkp.net.': [{ name: 'srv.example', port: 24560 }] });
    const opts = { dns: () => Promise.resolve(dns as DnsApi) };

    const cfg = await lookupHub(hub('hub = 2:5020/1\nhub_hostname = a.example;b.example:24555;[2001:db8::1]'), opts);
    assert.equal(resolutionText(hub('hub = 2:5020/1\nhub_hostname = a.example;b.example:24555;[2001:db8::1]'), cfg), 'a.example:24554, b.example:24555, [2001:db8::1]:24554 (config)');

    const nl = await lookupHub(hub(`hub = 2:5020/1\nhub_hostname = *\nnodelist = ${dir}/NODELIST.*`), opts);
    assert.deepEqual(nl, {
      ok: true,
      candidates: [
        { host: 'one.example.net', port: undefined, source: 'nodelist NODELIST.339 line 6' },
        { host: 'one.example.net', port: 24556, source: 'nodelist NODELIST.339 line 6' },
      ],
    });

    // Not in the nodelist: DNS is asked next (and knows nothing either).
    const viaDns = await lookupHub(hub(`hub = 2:5040/1\nnodelist = ${list}`), opts);
    assert.ok(!viaDns.ok && viaDns.kind === 'dns' && /2:5040\/1 is not in NODELIST\.339; f1\.n5040\.z2\.binkp\.net\. is not in DNS/.test(viaDns.message), JSON.stringify(viaDns));
    const viaSrv = await lookupHub(hub(`hub = 2:5030/1\nlookup = dns`), opts);
    assert.deepEqual(viaSrv, { ok: true, candidates: [{ host: 'srv.example', port: 24560, source: 'dns SRV _binkp._tcp.f1.n5030.z2.binkp.net.' }] });
    assert.ok(dns.asked.includes('SRV _binkp._tcp.f1.n5040.z2.binkp.net.'));
  });

  test('Down, Hold and Pvt stop the chain; no IBN/INA and no DNS name give their own kinds', async () => {
    const dns = fakeDns({});
    const opts = { dns: () => Promise.resolve(dns as DnsApi) };
    const list = join(dir, 'NODELIST.339');
    for (const [node, re] of [[5, /Down/], [6, /Hold/], [7, /Pvt node without an IP flag/]] as const) {
      const r = await lookupHub(hub(`hub = 2:5020/${node}\nnodelist = ${list}`), opts);
      assert.ok(!r.ok && r.kind === 'nodelist' && re.test(r.message), JSON.stringify(r));
    }
    assert.ok(!dns.asked.some((q) => q.includes('f5.') || q.includes('f6.') || q.includes('f7.')), 'Down/Hold/Pvt nodes are not looked up in DNS');
    const noIp = await lookupHub(hub(`hub = 2:5020/4\nnodelist = ${list}`), opts);
    assert.ok(!noIp.ok && noIp.kind === 'nodelist' && /no IBN or INA flag/.test(noIp.message) && /not in DNS/.test(noIp.message));
    const none = await lookupHub(hub('hub = 2:5040/1\nlookup = dns\ndns_root = example.org'), opts);
    assert.ok(!none.ok && none.kind === 'dns' && /f1\.n5040\.z2\.example\.org\. is not in DNS/.test(none.message), JSON.stringify(none));
  });
});

describe('dial', () => {
  test('several hosts in order; the answer says which host and source', async () => {
    const tried: string[] = [];
    const dns = fakeDns({ 'a.example': ['192.0.2.1'], 'b.example': ['192.0.2.2'] });
    const r = await dial(hub('hub = 2:5020/1\nhub_hostname = a.example;b.example:24555'), { connectTimeout: 1000, dns, connect: fakeConnect(['192.0.2.2:24555'], tried) });
    assert.deepEqual(tried, ['192.0.2.1:24554', '192.0.2.2:24555']);
    assert.deepEqual(r.reached, { host: 'b.example', port: 24555, address: '192.0.2.2', source: 'config', tls: false, proxy: undefined });
  });

  test('every host refused: kind refused, each host named', async () => {
    const dns = fakeDns({ 'a.example': ['192.0.2.1'], 'b.example': ['192.0.2.2'] });
    await assert.rejects(
      dial(hub('hub = 2:5020/1\nhub_hostname = a.example;b.example'), { connectTimeout: 1000, dns, connect: fakeConnect([]) }),
      (err: unknown) =>
        err instanceof SessionError &&
        err.kind === 'refused' &&
        err.message === 'every host refused: connection to a.example:24554 refused; connection to b.example:24554 refused',
    );
  });

  test('ip_family and bind_address pick the family; an unknown host is a dns failure', async () => {
    const tried: string[] = [];
    const dns = fakeDns({ 'd.example': ['2001:db8::1', '192.0.2.1'] });
    await dial(hub('hub = 2:5020/1\nhub_hostname = d.example\nip_family = 4'), { connectTimeout: 1000, dns, connect: fakeConnect(['192.0.2.1:24554'], tried) });
    await dial(hub('hub = 2:5020/1\nhub_hostname = d.example\nbind_address = ::1'), { connectTimeout: 1000, dns, connect: fakeConnect(['2001:db8::1:24554'], tried) });
    assert.deepEqual(tried, ['192.0.2.1:24554', '2001:db8::1:24554']);
    await assert.rejects(
      dial(hub('hub = 2:5020/1\nhub_hostname = nx.example'), { connectTimeout: 1000, dns, connect: fakeConnect([]) }),
      (err: unknown) => err instanceof SessionError && err.kind === 'dns' && /cannot resolve nx\.example: no such host name/.test(err.message),
    );
  });
});
