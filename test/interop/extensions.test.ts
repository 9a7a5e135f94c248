/**
 * binkd's protocol extensions, probed against the real binkd with fnpoll's codecs (./crypt.ts,
 * ./compress.ts) through a bare caller (test/helpers/rawcaller.ts): the cipher's key set-up for
 * each direction, and the zlib stream both ways, proved on binkd's own log and file hashes.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanups } from '../helpers/interop.js';
import type { BinkdHub } from '../helpers/binkd.js';
import { sha256 } from '../helpers/node.js';
import { rawCall } from '../helpers/rawcaller.js';
import { cutAfterFrame } from '../helpers/cutproxy.js';
import { Cmd } from '../../src/binkp/commands.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/77@fidonet';
const PASSWORD = 'Crypt-Pw';
const MTIME = 1_700_000_000;

/** Text that compresses well, like a packet of echomail. */
function textPacket(size: number, seed: number): Buffer {
  const words = ['FidoNet', 'echomail', 'binkp', 'hub', 'sysop', 'Origin', 'SEEN-BY:', '2:5020/1', 'tosser', 'AREA:'];
  let out = '';
  let n = seed;
  while (out.length < size) {
    n = (n * 1103515245 + 12345) >>> 0;
    out += words[n % words.length] + (n % 7 === 0 ? '\r' : ' ');
  }
  return Buffer.from(out.slice(0, size), 'latin1');
}

/** Put `data` in the hub's outbound for us (a `^` line in its flow file); returns the path. */
async function queueAtHub(hub: BinkdHub, name: string, data: Buffer): Promise<string> {
  const path = join(hub.dir, name);
  await writeFile(path, data);
  await writeFile(`${hub.outboundFor(US)}.flo`, `^${path}\n`);
  return path;
}

const cleanups = new Cleanups();
after(() => cleanups.run());

describe('binkd extensions, byte level', () => {
  test('CRYPT: binkd says "session in CRYPT mode"; files cross intact both ways', async () => {
    const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const down = textPacket(50_000, 1);
    await queueAtHub(hub, 'down.bin', down);
    const up = textPacket(70_000, 2);

    const r = await rawCall({
      port: hub.port,
      ourAddress: US,
      password: PASSWORD,
      options: ['EXTCMD', 'CRYPT'],
      files: [{ name: 'up.bin', data: up, mtime: MTIME }],
    });
    const log = await hub.waitForLog(/done \(from .*\)/);
    assert.equal(r.end, 'ok', `${r.end}\n${r.frames.join('\n')}\n${log}`);
    assert.ok(r.hubOptions.has('CRYPT'), 'binkd offers CRYPT');
    assert.equal(r.crypt, true);
    assert.match(log, /session in CRYPT mode/);
    assert.match(log, /done \(from [^,]*, OK/);
    assert.deepEqual(r.received.map((f) => [f.name, sha256(f.data)]), [['down.bin', sha256(down)]]);
    assert.equal(sha256(await readFile(join(hub.inbound, 'up.bin'))), sha256(up));
  });

  test('CRYPT off when we do not offer it: binkd stays plain', async () => {
    const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const r = await rawCall({ port: hub.port, ourAddress: US, password: PASSWORD, options: ['EXTCMD'], files: [{ name: 'p.bin', data: Buffer.from('plain'), mtime: MTIME }] });
    const log = await hub.waitForLog(/done \(from .*\)/);
    assert.equal(r.end, 'ok', r.frames.join('\n'));
    assert.equal(r.crypt, false);
    assert.doesNotMatch(log, /CRYPT mode/);
  });

  test('GZ: a zlib stream each way; binkd logs it; hashes match; fewer bytes on the wire', async () => {
    const hub = await cleanups.startHub({
      address: HUB,
      nodes: [{ address: US, password: PASSWORD }],
      // binkd compresses only what a zallow rule names, from zminsize (1024) up.
      extraConfig: 'zallow *.pkt',
    });
    const down = textPacket(120_000, 3);
    await queueAtHub(hub, 'a1b2c3d4.pkt', down);
    const up = textPacket(90_000, 4);

    const r = await rawCall({
      port: hub.port,
      ourAddress: US,
      password: PASSWORD,
      options: ['EXTCMD', 'GZ'],
      files: [{ name: '0badcafe.pkt', data: up, mtime: MTIME, method: 'GZ' }],
    });
    const log = await hub.waitForLog(/done \(from .*\)/);
    assert.equal(r.end, 'ok', `${r.end}\n${r.frames.join('\n')}\n${log}`);
    // binkd received our stream: "gzip mode is on" for our file, and the file is whole.
    assert.match(log, /gzip mode is on for 0badcafe\.pkt/);
    assert.equal(sha256(await readFile(join(hub.inbound, '0badcafe.pkt'))), sha256(up));
    // binkd sent its file compressed, and we decoded it.
    const got = r.received.find((f) => f.name === 'a1b2c3d4.pkt');
    assert.ok(got, r.frames.join('\n'));
    assert.equal(got.method, 'GZ');
    assert.equal(sha256(got.data), sha256(down));
    assert.ok(got.wireBytes < down.length / 2, `${got.wireBytes} compressed bytes for ${down.length}`);
    assert.match(log, /gzip mode is on for a1b2c3d4\.pkt/);
  });
});

// ---- fnpoll itself against binkd -------------------------------------------------------------

const HUB_BSO = '139c0001';

async function fnpollNode(hub: { port: number }, extra: Record<string, string> = {}) {
  return cleanups.makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD, extra }] });
}

/** binkd's view of the session: MD5 login, OK, nothing failed. */
function assertBinkdOk(log: string): void {
  assert.match(log, /pwd protected session \(MD5\)/, log);
  assert.match(log, /done \(from 2:5020\/77@fidonet, OK\b/, log);
  assert.doesNotMatch(log, /\bfailed\b|error/i, log);
}

describe('fnpoll now against binkd: extensions', () => {
  test('GZ both ways: binkd logs both streams; hashes match; the session line names GZ', async () => {
    const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }], extraConfig: 'zallow *.pkt' });
    const down = textPacket(300_000, 5);
    await queueAtHub(hub, 'beefcafe.pkt', down);
    const node = await fnpollNode(hub);
    const up = textPacket(400_000, 6);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${await node.file('0123abcd.pkt', up)}\n`);

    const r = await node.run(['now']);
    assert.equal(r.code, 0, r.stderr);
    const log = await hub.waitForLog(/done \(from .*\)/);
    assertBinkdOk(log);
    // binkd took our zlib stream ("gzip mode is on" on its receiving side) and sent its own.
    assert.match(log, /receiving 0123abcd\.pkt/);
    assert.match(log, /gzip mode is on for 0123abcd\.pkt/);
    assert.match(log, /gzip mode is on for beefcafe\.pkt/);
    assert.match(log, /Compressed 300000 bytes to \d+ for beefcafe\.pkt/);
    assert.equal(sha256(await readFile(join(hub.inbound, '0123abcd.pkt'))), sha256(up));
    assert.equal(sha256(await readFile(join(node.inbound, 'beefcafe.pkt'))), sha256(down));
    const stats = (await node.log()).split('\n').filter((l) => l.includes('"category":"stats"') && l.includes('"extensions"'));
    assert.ok(stats.some((l) => /"extensions":"GZ"/.test(l)), stats.join('\n'));
  });

  test('CRYPT both ways with use_crypt = yes: "session in CRYPT mode", files intact', async () => {
    const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const down = textPacket(200_000, 7);
    await queueAtHub(hub, 'crypted.bin', down);
    const node = await fnpollNode(hub, { use_crypt: 'yes' });
    const up = textPacket(250_000, 8);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${await node.file('secret.bin', up)}\n`);

    const r = await node.run(['now']);
    assert.equal(r.code, 0, r.stderr);
    const log = await hub.waitForLog(/done \(from .*\)/);
    assertBinkdOk(log);
    assert.match(log, /Remote requests CRYPT mode/);
    assert.match(log, /session in CRYPT mode/);
    assert.equal(sha256(await readFile(join(hub.inbound, 'secret.bin'))), sha256(up));
    assert.equal(sha256(await readFile(join(node.inbound, 'crypted.bin'))), sha256(down));
    const stats = (await node.log()).split('\n').filter((l) => l.includes('"category":"stats"') && l.includes('"extensions"'));
    assert.ok(stats.some((l) => /"extensions":"[^"]*CRYPT/.test(l)), stats.join('\n'));
  });

  test('use_crypt = no (the default): binkd stays plain', async () => {
    const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await fnpollNode(hub);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${await node.file('plain.bin', textPacket(5000, 9))}\n`);
    const r = await node.run(['now']);
    assert.equal(r.code, 0, r.stderr);
    const log = await hub.waitForLog(/done \(from .*\)/);
    assertBinkdOk(log);
    assert.doesNotMatch(log, /CRYPT/);
  });
});

describe('ND against binkd: a session killed in the M_GOT window', () => {
  test('we send: the confirmed file is not sent again, and binkd places it once (binkd -nd, use_nd = yes)', async () => {
    const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD, flags: '-nd' }] });
    const proxy = await cutAfterFrame(hub.port, 'down', Cmd.M_GOT);
    cleanups.push(() => proxy.close());
    // First session through the relay, which cuts right after binkd's M_GOT for our file.
    const node = await cleanups.makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: proxy.port, password: PASSWORD, extra: { use_nd: 'yes' } }] });
    const data = textPacket(6000, 21);
    const path = await node.file('ndfile.bin', data, MTIME);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${path}\n`);
    const r1 = await node.run(['now']);
    assert.equal(r1.code, 1, `the cut session fails\n${r1.stderr}`);
    await proxy.cut;
    const log1 = await hub.waitForLog(/done \(from .*\)|session closed|\[\d+\] done/);
    assert.match(log1, /we are in ND mode|remote is in ND mode/, log1);
    assert.match(log1, /complete received, waiting for renaming|ndfile\.bin/);
    // Confirmed: deleted on our side, remembered in binkd's own status format.
    assert.equal(existsSync(path), false, 'the confirmed file was deleted');
    const stc = join(node.outbound, `${HUB_BSO}.stc`);
    assert.equal(readFileSync(stc, 'latin1'), `ndfile.bin 6000 ${MTIME}`);
    assert.equal(existsSync(join(hub.inbound, 'ndfile.bin')), false, 'binkd has not placed it yet');

    // Second session, straight to binkd: the status goes first, without data.
    await writeFile(node.configPath, (await readFile(node.configPath, 'utf8')).replace(`hub_port = ${proxy.port}`, `hub_port = ${hub.port}`));
    const before = (await hub.log()).length;
    const r2 = await node.run(['now']);
    assert.equal(r2.code, 0, r2.stderr);
    await hub.waitForLog(/done \(from 2:5020\/77@fidonet, OK/);
    const log2 = (await hub.log()).slice(before);
    assert.match(log2, /receiving ndfile\.bin \(6000 byte\(s\), off 6000\)/, log2);
    assert.equal(sha256(await readFile(join(hub.inbound, 'ndfile.bin'))), sha256(data));
    assert.deepEqual((await readdir(hub.inbound)).filter((n) => n.startsWith('ndfile')), ['ndfile.bin'], 'placed once');
    assert.equal(existsSync(stc), false, 'the status is gone');
  });

  test('binkd sends: our M_GOT reached binkd, we were cut before placing; next session places it, no data again', async () => {
    const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD, flags: '-nd' }] });
    const data = textPacket(7000, 22);
    const hubPath = await queueAtHub(hub, 'fromhub.bin', data);
    const proxy = await cutAfterFrame(hub.port, 'up', Cmd.M_GOT);
    cleanups.push(() => proxy.close());
    const node = await cleanups.makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: proxy.port, password: PASSWORD, extra: { use_nd: 'yes' } }] });
    const r1 = await node.run(['now']);
    assert.equal(r1.code, 1, r1.stderr);
    await proxy.cut;
    assert.deepEqual(await node.listInbound(), [], 'not placed: binkd may not have our M_GOT');
    assert.deepEqual((await readdir(node.tempInbound)).filter((n) => n.endsWith('.part')).length, 1, 'kept complete in the temp inbound');
    // binkd took our M_GOT: its file is gone and its status names it.
    await hub.waitForLog(/fromhub\.bin/);
    for (let i = 0; i < 100 && existsSync(hubPath); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(existsSync(hubPath), false, 'binkd deleted its confirmed file');

    await writeFile(node.configPath, (await readFile(node.configPath, 'utf8')).replace(`hub_port = ${proxy.port}`, `hub_port = ${hub.port}`));
    const before = (await hub.log()).length;
    const r2 = await node.run(['now']);
    assert.equal(r2.code, 0, r2.stderr);
    await hub.waitForLog(/done \(from 2:5020\/77@fidonet, OK/);
    const log2 = (await hub.log()).slice(before);
    assert.equal(sha256(await readFile(join(node.inbound, 'fromhub.bin'))), sha256(data));
    assert.deepEqual((await readdir(node.inbound)).filter((n) => n.startsWith('fromhub')), ['fromhub.bin']);
    assert.doesNotMatch(log2, /sent: .*fromhub\.bin \(7000/, 'no data sent again');
  });
});
