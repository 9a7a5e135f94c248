/**
 * binkd's protocol extensions, probed against the real binkd with fnpoll's codecs (./crypt.ts,
 * ./compress.ts) through a bare caller (test/helpers/rawcaller.ts): the cipher's key set-up for
 * each direction, and the zlib stream both ways, proved on binkd's own log and file hashes.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cleanups } from '../helpers/interop.js';
import { sha256 } from '../helpers/node.js';
import { rawCall } from '../helpers/rawcaller.js';

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

const cleanups = new Cleanups();
after(() => cleanups.run());

describe('binkd extensions, byte level', () => {
  test('CRYPT: binkd says "session in CRYPT mode"; files cross intact both ways', async () => {
    const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const down = textPacket(50_000, 1);
    const downPath = join(hub.dir, 'down.bin');
    await writeFile(downPath, down);
    await writeFile(`${hub.outboundFor(US)}.flo`, `^${downPath}\n`);
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
    const downPath = join(hub.dir, 'a1b2c3d4.pkt');
    await writeFile(downPath, down);
    await writeFile(`${hub.outboundFor(US)}.flo`, `^${downPath}\n`);
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
