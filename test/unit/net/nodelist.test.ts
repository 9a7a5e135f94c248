import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAddress } from '../../../src/ftn/address.js';
import { hostsOf, indexText, judge, lookupNodelist, parseLine, pickNodelist } from '../../../src/net/nodelist.js';
import { makeTempDir, removeTempDir } from '../../helpers/tmp.js';

/** A small nodelist in FTS-5000 form, written by the test (no real list is committed). */
export const NODELIST = [
  ';A FidoNet Nodelist for Friday, December 4, 2026 -- Day number 339 : 12345',
  ';S test fixture',
  'Zone,2,Europe,Somewhere,Zone_Coordinator,-Unpublished-,300,CM,IBN:zc.example.net',
  'Region,50,Russia,Moscow,Region_Coordinator,-Unpublished-,300,CM,INA:rc.example.net,IBN',
  'Host,5020,Moscow_Net,Moscow,Host_Sysop,-Unpublished-,300,CM,IBN:host.example.net:24555',
  ',1,Hub_One,Moscow,Sysop_One,-Unpublished-,300,CM,INA:one.example.net,IBN,IBN:24556',
  'Hub,2,hub2.example.org,Moscow,Sysop_Two,-Unpublished-,300,CM,IBN',
  ',3,Three,Moscow,Sysop_Three,000-192-0-2-3,300,CM,IBN',
  ',4,Four,Moscow,Sysop_Four,-Unpublished-,300,CM,XA',
  'Down,5,Five,Moscow,Sysop_Five,-Unpublished-,300,IBN:five.example.net',
  'Hold,6,Six,Moscow,Sysop_Six,-Unpublished-,300,IBN:six.example.net',
  'Pvt,7,Seven,Moscow,Sysop_Seven,-Unpublished-,300,CM',
  'Pvt,8,Eight,Moscow,Sysop_Eight,-Unpublished-,300,CM,IBN:[2001:db8::8]:24557',
  ',9,Nine,Moscow,Sysop_Nine,-Unpublished-,300,CM,IBN:nine.example.net,IBN:[2001:db8::9],U,ENC',
  'Host,5030,Other_Net,Piter,Host_Sysop,-Unpublished-,300,CM,IBN:h5030.example.net',
  ',1,Other_One,Piter,Sysop,-Unpublished-,300,CM,INA:o1.example.net,IBN:24554',
  '\x1a',
].join('\r\n');

const a = (text: string) => parseAddress(text);

function entryOf(key: string) {
  const index = indexText(NODELIST);
  const at = index.get(key);
  assert.ok(at, key);
  const nl = NODELIST.indexOf('\n', at[0]);
  return parseLine(NODELIST.slice(at[0], nl === -1 ? undefined : nl), at[1])!;
}

describe('indexText (FTS-5000 branches)', () => {
  test('Zone, Region and Host open branches; other lines are nodes of the current net', () => {
    const index = indexText(NODELIST);
    assert.deepEqual([...index.keys()], [
      '2:2/0', '2:50/0', '2:5020/0', '2:5020/1', '2:5020/2', '2:5020/3', '2:5020/4', '2:5020/5', '2:5020/6', '2:5020/7',
      '2:5020/8', '2:5020/9', '2:5030/0', '2:5030/1',
    ]);
    assert.equal(index.get('2:5020/1')![1], 6);
  });

  test('points through Boss lines', () => {
    const index = indexText('Zone,2,Z,L,S,-Unpublished-,300\nBoss,2:5020/1\nPoint,3,P,L,S,-Unpublished-,300,IBN:p.example\n');
    assert.equal(index.get('2:5020/1.3')![1], 3);
  });

  // Found by the nodelist fuzz target (npm run harden).
  test('a line too short to parse moves the branch but shadows no later entry; bad numbers and Boss lines are ignored', () => {
    const text = [
      'Zone,2,Z,L,S,-Unpublished-,300',
      'Host,5020,truncated',
      ',1,Short',
      ',1,Good,L,S,-Unpublished-,300,IBN:good.example',
      'Region,,Empty,L,S,-Unpublished-,300',
      ',2,Still_5020,L,S,-Unpublished-,300',
      'Host,99999,Too_Big,L,S,-Unpublished-,300',
      'Boss,::5020/1',
      'Point,7,Orphan,L,S,-Unpublished-,300',
    ].join('\n');
    const index = indexText(text);
    assert.deepEqual([...index.keys()], ['2:2/0', '2:5020/1', '2:5020/2']);
    assert.equal(index.get('2:5020/1')![1], 4);
    for (const [key, [offset, line]] of index) {
      assert.ok(parseLine(text.slice(offset).split('\n')[0]!, line), key);
    }
  });
});

describe('hostsOf (FTS-5001 flags, FTS-5004 §4 order)', () => {
  test('IBN host and port; INA as the default host of a bare IBN; several flags, several hosts', () => {
    assert.deepEqual(hostsOf(entryOf('2:5020/0')), [{ host: 'host.example.net', port: 24555 }]);
    assert.deepEqual(hostsOf(entryOf('2:5020/1')), [
      { host: 'one.example.net', port: undefined },
      { host: 'one.example.net', port: 24556 },
    ]);
    assert.deepEqual(hostsOf(entryOf('2:50/0')), [{ host: 'rc.example.net', port: undefined }]);
  });

  test('a host in the system-name field, an IP in the phone field, IPv6 in brackets', () => {
    assert.deepEqual(hostsOf(entryOf('2:5020/2')), [{ host: 'hub2.example.org', port: undefined }]);
    assert.deepEqual(hostsOf(entryOf('2:5020/3')), [{ host: '192.0.2.3', port: undefined }]);
    assert.deepEqual(hostsOf(entryOf('2:5020/9')), [
      { host: 'nine.example.net', port: undefined },
      { host: '2001:db8::9', port: undefined },
    ]);
  });

  test('no IBN and no INA: no way in', () => {
    assert.deepEqual(hostsOf(entryOf('2:5020/4')), []);
  });
});

describe('judge: Down, Hold, Pvt', () => {
  const file = '/x/NODELIST.339';
  test('Down and Hold are never called, and say why', () => {
    const down = judge(entryOf('2:5020/5'), a('2:5020/5'), file);
    assert.equal(down.ok, false);
    assert.ok(!down.ok && down.why === 'down' && /listed as Down in NODELIST\.339 line 10/.test(down.message), JSON.stringify(down));
    const hold = judge(entryOf('2:5020/6'), a('2:5020/6'), file);
    assert.ok(!hold.ok && hold.why === 'hold' && /Hold/.test(hold.message));
  });

  test('Pvt without an IP flag is unreachable; Pvt with one is called', () => {
    const pvt = judge(entryOf('2:5020/7'), a('2:5020/7'), file);
    assert.ok(!pvt.ok && pvt.why === 'unreachable' && /Pvt node without an IP flag/.test(pvt.message));
    const ok = judge(entryOf('2:5020/8'), a('2:5020/8'), file);
    assert.ok(ok.ok);
    assert.deepEqual(ok.hosts, [{ host: '2001:db8::8', port: 24557 }]);
  });

  test('no IBN/INA names the fix', () => {
    const r = judge(entryOf('2:5020/4'), a('2:5020/4'), file);
    assert.ok(!r.ok && r.why === 'no-ip' && /no IBN or INA flag in NODELIST\.339 line 9: set hub_hostname/.test(r.message));
  });
});

describe('files: glob, index cache', () => {
  let dir: string;
  after(async () => removeTempDir(dir));

  test('NODELIST.* picks the newest day number, across a year end, then mtime', async () => {
    dir = await makeTempDir('fnpoll-nodelist-');
    const t = Date.now() / 1000;
    for (const [name, age] of [['NODELIST.346', 30], ['NODELIST.353', 20], ['NODELIST.003', 10], ['NODELIST.Z53', 0]] as const) {
      await writeFile(join(dir, name), NODELIST);
      await utimes(join(dir, name), t - age * 86400, t - age * 86400);
    }
    assert.equal(await pickNodelist(join(dir, 'NODELIST.*')), join(dir, 'NODELIST.003'));
    assert.equal(await pickNodelist(join(dir, 'nodelist.3*')), join(dir, 'NODELIST.353'));
    assert.equal(await pickNodelist(join(dir, 'NOPE.*')), undefined);
    // Same day number: the newer file wins.
    await writeFile(join(dir, 'other.003'), NODELIST);
    assert.equal(await pickNodelist(join(dir, '*.003')), join(dir, 'other.003'));
  });

  test('lookup through a cached index; a changed list (size, mtime) is indexed again', async () => {
    const list = join(dir, 'NODELIST.100');
    const cache = join(dir, 'state.json.nodelist-index');
    await writeFile(list, NODELIST);
    const r = await lookupNodelist(list, a('2:5020/1@fidonet'), { cacheFile: cache });
    assert.ok(r.ok);
    assert.equal(r.entry.line, 6);
    const [name] = (await readdir(dir)).filter((n) => n.startsWith('state.json.nodelist-index-'));
    assert.ok(name, 'the index is written beside the state');
    const indexFile = join(dir, name);
    const saved = await readFile(indexFile, 'latin1');
    const st = await stat(list);
    assert.ok(saved.startsWith(`fnpoll nodelist index 1\t${st.size}\t${st.mtimeMs}\t${list}\n`), saved.slice(0, 200));
    assert.match(saved, new RegExp(`\\n2:5020/1 ${NODELIST.indexOf(',1,Hub_One')} 6\\n`));

    // The index is what is used while size and mtime match: a doctored index is believed.
    const nine = /\n2:5020\/9 (\d+ \d+)\n/.exec(saved)![1]!;
    await writeFile(indexFile, saved.replace(/\n2:5020\/1 \d+ \d+\n/, `\n2:5020/1 ${nine}\n`), 'latin1');
    const fromCache = await lookupNodelist(list, a('2:5020/1'), { cacheFile: cache });
    assert.ok(fromCache.ok && fromCache.entry.name === 'Nine');

    // A new list (other size) is indexed afresh.
    await writeFile(list, `${NODELIST}\r\n;extra\r\n`);
    const fresh = await lookupNodelist(list, a('2:5020/1'), { cacheFile: cache });
    assert.ok(fresh.ok && fresh.entry.name === 'Hub_One');

    const absent = await lookupNodelist(list, a('2:9999/1'), { cacheFile: cache });
    assert.ok(!absent.ok && absent.why === 'absent' && /is not in NODELIST\.100/.test(absent.message));
  });
});

describe('hostile lists', () => {
  test('random bytes and mangled lines never throw; hosts that are no host names are ignored', () => {
    let x = 12345;
    const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const alphabet = ',:;[]\r\n\x1b\x00IBNINAZoneHostDownPvt0123456789.abc -_';
    for (let round = 0; round < 200; round++) {
      const text = Array.from({ length: 400 }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
      const index = indexText(text);
      for (const [, [offset, line]] of index) {
        const nl = text.indexOf('\n', offset);
        const entry = parseLine(text.slice(offset, nl === -1 ? undefined : nl), line);
        if (entry) for (const h of hostsOf(entry)) assert.doesNotMatch(h.host, /[\x00-\x1f ,]/);
      }
    }
    const evil = parseLine(',1,x,y,z,-Unpublished-,300,IBN:\x1b[2Jevil.example,INA:bad host,IBN:ok.example:99999', 1)!;
    assert.deepEqual(hostsOf(evil), []);
  });
});
