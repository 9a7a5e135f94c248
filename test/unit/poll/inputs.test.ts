/**
 * gatherInputs reads each outbound directory once and looks at a hub's control files only when
 * that listing shows one. These tests check that the shortcut changes nothing a plan depends on:
 * fresh and stale flags, holds in the future and the past, points, hubs with their own outbound.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';
import { gatherInputs } from '../../../src/poll/inputs.js';
import { hubLayout, listedControlFiles } from '../../../src/poll/hubfiles.js';
import { OutboundDirCache } from '../../../src/bso/outbound.js';

let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'fnpoll-inputs-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const HOUR = 3_600_000;
let counter = 0;

/**
 * A node with hubs 2:5020/1 (a), 2:5020/1.45 (p, a point), 2:5020/2 (b) and 21:1/100@fsxnet
 * (other), which has its own outbound root whose default zone is 21 (hubfiles.ts: no address of
 * ours in fsxnet, so the hub's zone): its files and flags sit in that root itself.
 */
async function fresh(): Promise<{ config: Config; out: string; own: string }> {
  const dir = join(base, `t${++counter}`);
  const out = join(dir, 'out');
  const own = join(dir, 'fsx');
  await mkdir(out, { recursive: true });
  const ini = [
    '[node]',
    'address = 2:5020/99@fidonet',
    `outbound = ${out}`,
    `inbound = ${join(dir, 'in')}`,
    '[poller]',
    `state_file = ${join(dir, 'state.json')}`,
    'stale_flag_age = 6h',
    '[a]',
    'hub_address = 2:5020/1',
    'hub_hostname = a.example',
    '[p]',
    'hub_address = 2:5020/1.45',
    'hub_hostname = p.example',
    '[b]',
    'hub_address = 2:5020/2',
    'hub_hostname = b.example',
    '[other]',
    'hub_address = 21:1/100@fsxnet',
    'hub_hostname = other.example',
    `outbound = ${own}`,
    '',
  ].join('\n');
  const file = join(dir, 'fnpoll.ini');
  await writeFile(file, ini);
  return { config: await loadConfig(file), out, own };
}

async function put(path: string, content: string, mtimeMs?: number): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  if (mtimeMs !== undefined) await utimes(path, mtimeMs / 1000, mtimeMs / 1000);
  return path;
}

describe('gatherInputs', () => {
  test('a clean outbound: nothing busy, empty queues for every hub', async () => {
    const { config } = await fresh();
    const r = await gatherInputs(config, config.hubs, NOW, { readOnly: true });
    assert.deepEqual([...r.busy], []);
    assert.deepEqual([...r.queued.keys()].sort(), ['a', 'b', 'other', 'p']);
    for (const q of r.queued.values()) assert.deepEqual(q, { files: 0, bytes: 0, flavour: undefined, pollRequest: false });
  });

  test('fresh .bsy / .csy make a hub busy; stale ones and upper-case names do not', async () => {
    const { config, out, own } = await fresh();
    // our own PID: alive, so only age can make these stale
    await put(join(out, '139c0001.bsy'), `${process.pid}\n`, NOW - 60_000);
    await put(join(out, '139c0001.pnt', '0000002d.csy'), `${process.pid}\n`, NOW - 60_000);
    await put(join(out, '139c0002.bsy'), `${process.pid}\n`, NOW - 7 * HOUR);
    // flags.ts opens the exact lower-case name, and so the listing looks for that name only
    await put(join(own, '00010064.BSY'), `${process.pid}\n`, NOW - 60_000);
    const r = await gatherInputs(config, config.hubs, NOW, { readOnly: true });
    assert.deepEqual([...r.busy.keys()].sort(), ['a', 'p']);
    assert.match(r.busy.get('a')!, /2:5020\/1 is busy \(\.bsy held by pid \d+ for 60 s\)/);
    assert.match(r.busy.get('p')!, /2:5020\/1\.45 is busy \(\.csy held/);
  });

  test('a future .hld holds the hub unless forced; a past one is removed, except read-only', async () => {
    const { config, out, own } = await fresh();
    await put(join(out, '139c0002.hld'), String(Math.floor(NOW / 1000) + 3600));
    const past = await put(join(own, '00010064.hld'), String(Math.floor(NOW / 1000) - 3600));
    let r = await gatherInputs(config, config.hubs, NOW, { readOnly: true });
    assert.deepEqual([...r.busy.keys()], ['b']);
    assert.match(r.busy.get('b')!, /^on hold until 2026-11-22 13:00:00 \(\.hld\)$/);
    assert.ok((await readdir(own)).includes('00010064.hld'), 'read-only leaves the past .hld');

    r = await gatherInputs(config, config.hubs, NOW, { force: true });
    assert.deepEqual([...r.busy.keys()], [], 'fnpoll now ignores holds');
    assert.ok((await readdir(own)).includes('00010064.hld'), 'a forced run does not read holds at all');

    r = await gatherInputs(config, config.hubs, NOW, {});
    assert.deepEqual([...r.busy.keys()], ['b']);
    assert.equal((await readdir(own)).includes('00010064.hld'), false, `${past} removed`);
  });

  test('a busy hub is reported as busy even when it also has a hold', async () => {
    const { config, out } = await fresh();
    await put(join(out, '139c0002.csy'), 'someone else\n', NOW - 1000);
    await put(join(out, '139c0002.hld'), String(Math.floor(NOW / 1000) + 3600));
    const r = await gatherInputs(config, config.hubs, NOW, { readOnly: true });
    assert.match(r.busy.get('b')!, /is busy \(\.csy held for 1 s\)/);
  });

  test('queues are summarised per hub from the same listing', async () => {
    const { config, out, own } = await fresh();
    const f = await put(join(base, `payload${counter}.bin`), '12345');
    await put(join(out, '139c0001.clo'), `${f}\n`);
    await put(join(out, '139c0001.pnt', '0000002d.hlo'), `${f}\n`);
    await put(join(own, '00010064.dlo'), '');
    const r = await gatherInputs(config, config.hubs, NOW, { readOnly: true });
    assert.deepEqual(r.queued.get('a'), { files: 1, bytes: 5, flavour: 'crash', pollRequest: false });
    assert.deepEqual(r.queued.get('p'), { files: 1, bytes: 5, flavour: 'hold', pollRequest: false });
    assert.deepEqual(r.queued.get('other'), { files: 0, bytes: 0, flavour: 'direct', pollRequest: true });
    assert.deepEqual(r.queued.get('b'), { files: 0, bytes: 0, flavour: undefined, pollRequest: false });
  });
});

describe('listedControlFiles', () => {
  test('names exactly the lower-case flags beside the hub, from one listing', async () => {
    const { config, out } = await fresh();
    const a = config.hubs.find((h) => h.key === 'a')!;
    const layout = hubLayout(config, a);
    const dirs = new OutboundDirCache();
    assert.deepEqual(await listedControlFiles(layout, a.address, dirs), { bsy: false, csy: false, hld: false });
    await put(join(out, '139c0001.bsy'), '1\n');
    await put(join(out, '139c0001.hld'), '1');
    await put(join(out, '139C0001.CSY'), '1\n');
    assert.deepEqual(await listedControlFiles(layout, a.address, dirs), { bsy: false, csy: false, hld: false }, 'listing is cached');
    assert.deepEqual(await listedControlFiles(layout, a.address, new OutboundDirCache()), { bsy: true, csy: false, hld: true });
  });
});
