/**
 * A full disk, for real: a 1 MiB tmpfs (tests run as root, as CI does) holds the inbound or the
 * state file. fnpoll must say what failed in one line, exit with its documented code, lose
 * nothing, and leave no flag behind.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ScriptedHub } from '../../src/demo/hub.js';
import { TestNode, pseudoRandomBytes } from '../helpers/node.js';
import { Cleanups } from '../helpers/interop.js';

const HUB = '2:5020/1@fidonet';
const cleanups = new Cleanups();
after(() => cleanups.run());

/** A 1 MiB tmpfs at `dir`, unmounted afterwards. */
async function tinyDisk(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  cleanups.push(async () => {
    execFileSync('umount', ['-l', dir]);
  });
}

async function hubWith(files: { name: string; data: Buffer }[]): Promise<ScriptedHub> {
  const hub = new ScriptedHub({ addresses: [HUB], files: files.map((f) => ({ ...f, mtime: 1_700_000_000 })) });
  await hub.listen(0, '127.0.0.1');
  cleanups.push(() => hub.close());
  return hub;
}

describe('a full disk', () => {
  test('inbound full: the session fails with one line naming ENOSPC, the hub keeps its file, no flags left', async () => {
    const hub = await hubWith([{ name: 'big.zip', data: pseudoRandomBytes(2 * 1024 * 1024, 5) }]);
    const node = await TestNode.create({ hubs: [{ name: 'hub', address: HUB, port: hub.port }] });
    cleanups.push(() => node.remove());
    const tiny = join(node.dir, 'tiny');
    await tinyDisk(tiny);
    await node.writeConfig({
      hubs: [{ name: 'hub', address: HUB, port: hub.port }],
      node: { inbound_insecure: join(tiny, 'in'), temp_inbound: join(tiny, 'tmp') },
    });

    const r = await node.run(['now']);
    assert.equal(r.code, 1, r.stderr);
    const errors = r.stderr.split('\n').filter((l) => /error/.test(l));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /^hub: error: 2:5020\/1@fidonet failed \(io\): .*ENOSPC/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(hub.acknowledged.length, 0, 'the hub was told we have a file we could not store');
    assert.equal(hub.outbound.length, 1, 'the hub lost its file');
    const state = (await node.state()) as { hubs: { hub: { lastResult: { kind: string } } } };
    assert.equal(state.hubs.hub.lastResult.kind, 'io');
    assert.deepEqual((await node.listOutbound()).filter((n) => /\.(bsy|csy)$/.test(n)), []);
  });

  test('state file on a full disk: exit 74 with one line naming the file; the session itself went through', async () => {
    const hub = await hubWith([{ name: 'small.txt', data: Buffer.from('hello\n') }]);
    const node = await TestNode.create({ hubs: [{ name: 'hub', address: HUB, port: hub.port }] });
    cleanups.push(() => node.remove());
    const tiny = join(node.dir, 'tiny');
    await tinyDisk(tiny);
    // Fill the disk, then put the state file (and its lock) there.
    await writeFile(join(tiny, 'filler'), Buffer.alloc(1024 * 1024)).catch(() => undefined);
    await node.writeConfig({ hubs: [{ name: 'hub', address: HUB, port: hub.port }], poller: { lock_file: join(node.dir, 'run.lock') } });
    const text = await readFile(node.configPath, 'utf8');
    await writeFile(node.configPath, text.replace(/^state_file = .*$/m, `state_file = ${join(tiny, 'state.json')}`));

    const r = await node.run(['now']);
    assert.equal(r.code, 74, r.stderr);
    assert.match(r.stderr, /cannot write state file .*tiny\/state\.json.*ENOSPC/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(await node.listInbound(true), ['small.txt'], 'the mail itself was received');
    assert.deepEqual((await readdir(tiny)).filter((n) => n.startsWith('state.json')), [], 'a torn or temp state file was left');
  });
});
