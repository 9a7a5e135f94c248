import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { binkdSeconds, binkdWords, importBinkd } from '../../../src/config/binkd.js';
import { HUB_KEYS } from '../../../src/config/load.js';
import { parseIni, findSection, findEntry } from '../../../src/config/ini.js';
import { ConfigError } from '../../../src/errors.js';

const BASE = [
  'domain fidonet /spool/outb 2',
  'domain fido alias-for fidonet',
  'domain fsxnet /spool/fsxnet 21',
  'address 2:5020/99@fidonet 21:1/999@fsxnet',
  'sysname "My BBS"',
  'inbound /spool/in',
  'inbound-nonsecure /spool/in-insecure',
];

function run(lines: string[], files: Record<string, string> = {}, hubKeys: readonly string[] = HUB_KEYS) {
  const all: Record<string, string> = { '/etc/binkd/binkd.cfg': lines.join('\n'), ...files };
  return importBinkd('/etc/binkd/binkd.cfg', {
    read: (f) => {
      const t = all[f];
      if (t === undefined) throw new Error('no such file or directory (ENOENT)');
      return t;
    },
    hubKeys,
    now: Date.UTC(2026, 0, 1),
  });
}

function section(ini: string, name: string): Record<string, string> {
  const doc = parseIni(ini, 'x.ini');
  assert.deepEqual(doc.problems, []);
  const s = findSection(doc, name);
  assert.ok(s, `[${name}] in\n${ini}`);
  return Object.fromEntries(s.entries.map((e) => [e.key, e.value]));
}

describe('binkd.cfg syntax', () => {
  test('words, quotes, comments, doubled backslashes', () => {
    assert.deepEqual(binkdWords('sysname "Ivan\'s BBS"  # comment'), ['sysname', "Ivan's BBS"]);
    assert.deepEqual(binkdWords('domain p d:\\\\fido\\\\out 115'), ['domain', 'p', 'd:\\fido\\out', '115']);
    assert.deepEqual(binkdWords('   # only a comment'), []);
    assert.deepEqual(binkdWords('node 1:2/3 h pw#x'), ['node', '1:2/3', 'h', 'pw#x']);
  });

  test('durations as binkd writes them', () => {
    assert.equal(binkdSeconds('600'), 600);
    assert.equal(binkdSeconds('10m'), 600);
    assert.equal(binkdSeconds('1d12h'), 129600);
    assert.equal(binkdSeconds('10x'), undefined);
    assert.equal(binkdSeconds(''), undefined);
  });
});

describe('importBinkd', () => {
  test('node, domains, inbounds, hub flags and include carry over', () => {
    const r = run([...BASE, 'try 5', 'hold 10m', 'minfree 2048', 'include links.inc'], {
      '/etc/binkd/links.inc': 'node 5020/1@fido -md -nr hub.example.net:24555 secret\nnode 21:1/100@fsxnet * pw1,pkt,pw2\n',
    });
    const node = section(r.ini, 'node');
    assert.equal(node.address, '2:5020/99@fidonet');
    assert.equal(node.aka, '21:1/999@fsxnet');
    assert.equal(node.outbound, '/spool/outb');
    assert.equal(node.inbound, '/spool/in');
    assert.equal(node.inbound_insecure, '/spool/in-insecure');
    assert.equal(node.system, 'My BBS');
    const poller = section(r.ini, 'poller');
    assert.equal(poller.max_retries, '5');
    assert.equal(poller.hold_time, '600s');
    assert.equal(poller.minfree, '2048k');
    assert.deepEqual(section(r.ini, 'fidonet'), {
      hub_address: '2:5020/1@fidonet',
      binkp: 'hub.example.net:24555',
      password: 'secret',
      use_cram: 'yes',
      nr_mode: 'yes',
    });
    const fsx = section(r.ini, 'fsxnet');
    assert.equal(fsx.binkp, 'f100.n1.z21.binkp.net:24554', '`*`: binkd asks DNS under binkp.net');
    assert.equal(fsx.password, 'pw2', 'the outgoing password');
    assert.equal(fsx.outbound, '/spool/fsxnet');
    assert.equal(fsx.address, '21:1/999@fsxnet');
    assert.ok(r.dropped.some((d) => /node 21:1\/100@fsxnet: no -md: .*plain text/.test(d)));
    assert.ok(r.dropped.some((d) => /packet password: dropped/.test(d)));
  });

  test('one line per dropped thing, naming file and line', () => {
    const r = run([...BASE, 'log /var/log/binkd.log', 'percents', 'frobnicate 1', 'node 2:5020/7 - pw', 'node 2:5020/8 a.example;b.example pw'], {});
    assert.ok(r.dropped.includes('/etc/binkd/binkd.cfg:8: log: dropped: fnpoll writes its own log ([poller] log_file)'));
    assert.ok(r.dropped.some((d) => d.startsWith('/etc/binkd/binkd.cfg:9: percents: dropped: ')));
    assert.ok(r.dropped.includes('/etc/binkd/binkd.cfg:10: frobnicate: dropped: no counterpart in fnpoll'));
    assert.ok(r.dropped.some((d) => /:11: node 2:5020\/7@fidonet: dropped: no host/.test(d)));
    assert.ok(r.dropped.some((d) => /:12: node 2:5020\/8@fidonet: hosts b\.example: dropped/.test(d)));
    assert.equal(new Set(r.dropped).size, r.dropped.length, 'no line twice');
  });

  test('-nd and -crypt: the keys when this fnpoll knows them, else commented out with a note', () => {
    const withNode = [...BASE, 'node 2:5020/1 -nd -crypt h.example pw'];
    const unknown = run(withNode, {}, ['hub_address']);
    assert.match(unknown.ini, /^; use_nd = yes {3}; binkd -nd: this fnpoll does not know use_nd yet$/m);
    assert.match(unknown.ini, /^; use_crypt = yes /m);
    assert.ok(unknown.dropped.some((d) => /-nd: written commented out/.test(d)));
    const known = run(withNode, {}, [...HUB_KEYS, 'use_nd', 'use_crypt']);
    assert.match(known.ini, /^use_nd = yes$/m);
    assert.match(known.ini, /^use_crypt = yes$/m);
  });

  test('a passwords file gives the password of a node line that has none; the node line wins', () => {
    const r = run([...BASE, 'passwords pw.lst', 'node 2:5020/1 -md a.example', 'node 2:5020/2 -md b.example own', 'node 21:1/100@fsxnet -md c.example -'], {
      '/etc/binkd/pw.lst': 'password 2:5020/1 from-file\n5020/2 not-this\n21:1/100@fsxnet in,pkt,out\nbroken\n',
    });
    assert.equal(section(r.ini, 'fidonet').password, 'from-file');
    assert.equal(section(r.ini, 'fidonet-2').password, 'own');
    assert.equal(section(r.ini, 'fsxnet').password, 'out');
    assert.ok(r.dropped.includes('/etc/binkd/pw.lst:4: dropped: expected `<address> <password>`'), r.dropped.join('\n'));
    assert.ok(!r.dropped.some((d) => /: passwords: dropped/.test(d)));
  });

  test('a password that the INI reader would cut is quoted', () => {
    const r = run([...BASE, 'node 2:5020/1 -md h.example "pw ;x"']);
    assert.equal(section(r.ini, 'fidonet').password, 'pw ;x');
  });

  test('what fnpoll cannot do without is an error naming the file', () => {
    assert.throws(() => run(['address 2:5020/99']), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => /no `domain/.test(p)) && err.problems.some((p) => /no `inbound`/.test(p)));
    assert.throws(() => run([...BASE, 'include missing.inc']), (err: unknown) => err instanceof ConfigError && /missing\.inc: cannot read/.test(err.message));
    assert.throws(() => run([...BASE, 'include /etc/binkd/binkd.cfg']), (err: unknown) => err instanceof ConfigError && /nested too deep/.test(err.message));
  });

  test('the hub section name is the domain; a second hub in it gets a suffix', () => {
    const r = run([...BASE, 'node 2:5020/1 -md a.example pw', 'node 2:5020/2 -md b.example pw']);
    assert.equal(section(r.ini, 'fidonet').hub_address, '2:5020/1@fidonet');
    assert.equal(section(r.ini, 'fidonet-2').hub_address, '2:5020/2@fidonet');
    assert.ok(findEntry(findSection(parseIni(r.ini, 'x'), 'node')!, 'address'));
  });
});
