/**
 * The bench's floor caller (test/bench/floorcaller.cts) against the scripted hub: its figures stand
 * for "the least a caller on Node.js can do", so it must do the whole job the others do: log in,
 * store every file whole under its name, acknowledge each one (after the syncs with --fsync), end
 * the session cleanly over two batches, and refuse what it cannot store.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScriptedHub, type HubFile } from '../../../src/demo/hub.js';
import { FLOOR_CALLER } from '../../bench/node.js';

const HUB = ['2:5020/1@fidonet'];
const US = '2:5020/99@fidonet';
const PASSWORD = 'FloorPw1';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup) await c();
});

function files(count: number, size: number, prefix = 'f'): HubFile[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}${String(i).padStart(4, '0')}.pkt`,
    data: Buffer.alloc(size, (i * 7 + 1) & 0xff),
    mtime: 1_700_000_000 + i,
  }));
}

async function run(hubFiles: HubFile[], extra: string[] = [], secondBatch: HubFile[] = []): Promise<{ hub: ScriptedHub; inbound: string; code: number | null; stderr: string }> {
  const hub = new ScriptedHub({ addresses: HUB, password: PASSWORD, files: hubFiles, secondBatch, frameSize: 4096 });
  const port = await hub.listen();
  const inbound = await mkdtemp(join(tmpdir(), 'fnpoll-floor-'));
  cleanup.push(async () => {
    await hub.close();
    await rm(inbound, { recursive: true, force: true });
  });
  const child = spawn(process.execPath, [FLOOR_CALLER, String(port), US, PASSWORD, inbound, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { hub, inbound, code, stderr };
}

async function expectStored(inbound: string, want: HubFile[]): Promise<void> {
  assert.deepEqual((await readdir(inbound)).sort(), want.map((f) => f.name).sort());
  for (const f of want) assert.ok((await readFile(join(inbound, f.name))).equals(f.data), `${f.name} arrived whole`);
}

describe('floor caller', () => {
  test('receives every file whole, acknowledges each, and ends the session over two batches', async () => {
    const first = [...files(20, 8 * 1024), ...files(1, 100_000, 'big'), ...files(1, 0, 'empty')];
    const second = files(3, 5000, 's');
    const { hub, inbound, code, stderr } = await run(first, [], second);
    assert.equal(code, 0, stderr);
    await expectStored(inbound, [...first, ...second]);
    assert.deepEqual(hub.acknowledged.map((f) => f.name).sort(), [...first, ...second].map((f) => f.name).sort());
    assert.equal(hub.outbound.length, 0);
  });

  test('--fsync: the same, with every file synced before its M_GOT', async () => {
    const want = files(50, 8 * 1024);
    const { hub, inbound, code, stderr } = await run(want, ['--fsync']);
    assert.equal(code, 0, stderr);
    await expectStored(inbound, want);
    assert.equal(hub.acknowledged.length, want.length);
  });

  test('refuses a name it cannot store safely, with one line and exit 1', async () => {
    const { hub, inbound, code, stderr } = await run([{ name: '..', data: Buffer.from('x'), mtime: 1_700_000_000 }]);
    assert.equal(code, 1);
    assert.match(stderr, /^floorcaller: refusing the file name "\.\."\n$/);
    assert.deepEqual(await readdir(inbound), []);
    assert.equal(hub.acknowledged.length, 0);
  });

  test('a wrong password ends with the hub\'s error, exit 1', async () => {
    const hub = new ScriptedHub({ addresses: HUB, password: 'other', files: files(1, 10) });
    const port = await hub.listen();
    cleanup.push(() => hub.close());
    const child = spawn(process.execPath, [FLOOR_CALLER, String(port), US, PASSWORD, tmpdir()], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 1);
    assert.match(stderr, /^floorcaller: the hub said M_ERR /);
  });
});
