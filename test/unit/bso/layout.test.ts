/**
 * Where BSO files live [FTS-5005 §2]: zone directories (including `outbound.<our zone>` and
 * other letter cases), points, and domains with their own outbound roots as `hubLayout` derives
 * them from the configuration.
 *
 * Decision on letter case: fnpoll writes lower case only (`out.015`, `139c0001.pnt`), where binkd
 * looks for its flags and where binkd writes. It reads every letter case, as binkd's outbound scan
 * does (ftnq.c q_scan compares the base name with STRNICMP and reads the zone with strtol):
 * `OUT.015`, `out.00F`, `139C0001.PNT/0000002D.CLO`.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createPollRequest,
  finishFlowFile,
  nodeBase,
  parseZoneExtension,
  scanNode,
  summarizeOutbound,
  zoneDir,
  zoneDirsToRead,
} from '../../../src/bso/outbound.js';
import type { BsoLayout } from '../../../src/bso/types.js';
import { parseAddress, addressKey } from '../../../src/ftn/address.js';
import { parseIni } from '../../../src/config/ini.js';
import { buildConfig } from '../../../src/config/load.js';
import type { Config, HubConfig } from '../../../src/config/types.js';
import { hubLayout } from '../../../src/poll/hubfiles.js';
import { gatherInputs } from '../../../src/poll/inputs.js';

let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'fnpoll-layout-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

let counter = 0;
/** A fresh directory holding an outbound root `out` (default zone 2) and a `files` directory. */
async function fresh(): Promise<{ dir: string; layout: BsoLayout; out: string; files: string }> {
  const dir = join(base, `t${++counter}`);
  const out = join(dir, 'out');
  const files = join(dir, 'files');
  await mkdir(out, { recursive: true });
  await mkdir(files, { recursive: true });
  return { dir, layout: { root: out, defaultZone: 2 }, out, files };
}

async function put(path: string, content: string | Buffer): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  return path;
}

/** A netmail packet big enough to be sent (binkd drops 60 bytes or less as empty). */
const PACKET = Buffer.alloc(100, 0x41);

const paths = (q: { items: { path: string }[] }): string[] => q.items.map((i) => i.path).sort();

describe('zone directories', () => {
  test('names: default zone in the root, others in root.zzz, lower case; outbound.<default> is read too', () => {
    const layout: BsoLayout = { root: '/ftn/out', defaultZone: 2 };
    assert.equal(zoneDir(layout, 2), '/ftn/out');
    assert.equal(zoneDir(layout, 21), '/ftn/out.015');
    assert.equal(zoneDir(layout, 4095), '/ftn/out.fff');
    assert.equal(zoneDir(layout, 32767), '/ftn/out.7fff');
    assert.deepEqual(zoneDirsToRead(layout, 2), ['/ftn/out', '/ftn/out.002']);
    assert.deepEqual(zoneDirsToRead(layout, 21), ['/ftn/out.015']);
  });

  test('parseZoneExtension: any letter case, 1 to 4 hex digits, nothing else', () => {
    assert.equal(parseZoneExtension('out', 'out.015'), 21);
    assert.equal(parseZoneExtension('out', 'OUT.015'), 21);
    assert.equal(parseZoneExtension('outbound', 'OutBound.00F'), 15);
    assert.equal(parseZoneExtension('OUTBOUND', 'outbound.002'), 2);
    assert.equal(parseZoneExtension('out', 'out.1000'), 4096);
    assert.equal(parseZoneExtension('out', 'out.15'), 21, 'binkd reads the extension as a hex number');
    for (const name of ['out', 'out.', 'out.bak', 'out.015x', 'out.0015f', 'out.000', 'out.8000', 'outx.015', 'ou.015', 'out.015.old']) {
      assert.equal(parseZoneExtension('out', name), undefined, name);
    }
  });

  test('the default zone is read from the root and from outbound.<default zone>, each file once', async () => {
    const { layout, out } = await fresh();
    const a = parseAddress('2:5020/1');
    await put(join(out, '139c0001.out'), PACKET);
    await put(join(`${out}.002`, '139c0001.cut'), PACKET);
    await put(join(`${out}.002`, '139c0002.cut'), PACKET); // another node
    const q = await scanNode(layout, a);
    assert.deepEqual(paths(q), [join(out, '139c0001.out'), join(`${out}.002`, '139c0001.cut')].sort());
    assert.equal(q.summary.flavour, 'crash');
  });

  test('zone directories in other letter cases are read: OUT.015, out.00F, OUT.002 for the default zone', async () => {
    const { layout, dir } = await fresh();
    await put(join(dir, 'OUT.015', '00010064.OUT'), PACKET);
    await put(join(dir, 'out.015', '00010064.dut'), PACKET);
    await put(join(dir, 'out.00F', '00010001.flo'), ''); // a poll request for 15:1/1
    await put(join(dir, 'OUT.002', '139C0001.HUT'), PACKET);
    // Look-alikes that are not zone directories of this root.
    await put(join(dir, 'out.bak', '00010064.out'), PACKET);
    await put(join(dir, 'outx.015', '00010064.out'), PACKET);
    await put(join(dir, 'out.015.old', '00010064.out'), PACKET);

    const z21 = await scanNode(layout, parseAddress('21:1/100'));
    assert.deepEqual(paths(z21), [join(dir, 'OUT.015', '00010064.OUT'), join(dir, 'out.015', '00010064.dut')].sort());
    const z15 = await scanNode(layout, parseAddress('15:1/1'));
    assert.deepEqual(z15.pollRequests, [join(dir, 'out.00F', '00010001.flo')]);
    assert.equal(z15.summary.flavour, 'normal');
    const z2 = await scanNode(layout, parseAddress('2:5020/1'));
    assert.deepEqual(paths(z2), [join(dir, 'OUT.002', '139C0001.HUT')]);
  });

  test('we write lower case, even next to an upper-case zone directory (binkd looks there for its flags)', async () => {
    const { layout, dir } = await fresh();
    await mkdir(join(dir, 'OUT.015'));
    const path = await createPollRequest(layout, parseAddress('21:1/100'));
    assert.equal(path, join(dir, 'out.015', '00010064.dlo'));
    assert.equal(nodeBase(layout, parseAddress('21:1/100')), join(dir, 'out.015', '00010064'));
    // Both directories are read; the poll request is found.
    const q = await scanNode(layout, parseAddress('21:1/100'));
    assert.deepEqual(q.pollRequests, [path]);
  });
});

describe('points', () => {
  test('a hub that is a point: NNNNnnnn.pnt/0000pppp.*, in any letter case and in other zones', async () => {
    const { layout, dir, out } = await fresh();
    const hub = parseAddress('2:5020/1.5');
    assert.equal(nodeBase(layout, hub), join(out, '139c0001.pnt', '00000005'));
    assert.equal(nodeBase(layout, parseAddress('3:633/1.5')), join(dir, 'out.003', '02790001.pnt', '00000005'));
    await put(join(out, '139c0001.pnt', '00000005.cut'), PACKET);
    await put(join(out, '139C0001.PNT', '00000005.HUT'), PACKET);
    await put(join(out, '139c0001.pnt', '00000006.cut'), PACKET); // another point
    await put(join(out, '139c0001.cut'), PACKET); // the boss node
    await put(join(dir, 'out.003', '02790001.pnt', '00000005.out'), PACKET);
    assert.deepEqual(paths(await scanNode(layout, hub)), [
      join(out, '139C0001.PNT', '00000005.HUT'),
      join(out, '139c0001.pnt', '00000005.cut'),
    ]);
    assert.deepEqual(paths(await scanNode(layout, parseAddress('2:5020/1'))), [join(out, '139c0001.cut')]);
    assert.deepEqual(paths(await scanNode(layout, parseAddress('3:633/1.5'))), [join(dir, 'out.003', '02790001.pnt', '00000005.out')]);
  });

  test('a poll request for a point creates its .pnt directory, lower case', async () => {
    const { layout, out } = await fresh();
    const path = await createPollRequest(layout, parseAddress('2:5020/1.99'), 'crash');
    assert.equal(path, join(out, '139c0001.pnt', '00000063.clo'));
    assert.deepEqual(await readdir(join(out, '139c0001.pnt')), ['00000063.clo']);
  });

  test('summarizeOutbound keys points apart from their boss node', async () => {
    const { layout, out } = await fresh();
    await put(join(out, '139c0001.pnt', '00000063.cut'), PACKET);
    await put(join(out, '139c0001.hut'), PACKET);
    const boss = parseAddress('2:5020/1');
    const point = parseAddress('2:5020/1.99');
    const sums = await summarizeOutbound(layout, [boss, point]);
    assert.equal(sums.get(addressKey(boss))?.flavour, 'hold');
    assert.equal(sums.get(addressKey(point))?.flavour, 'crash');
  });
});

/** A config built from INI text, as `fnpoll` loads it (no I/O). */
function config(text: string): Config {
  const file = '/etc/fnpoll/fnpoll.ini';
  return buildConfig(parseIni(text, file), file);
}

function hub(c: Config, name: string): HubConfig {
  const h = c.hubs.find((x) => x.key === name);
  assert.ok(h, `no hub ${name}`);
  return h;
}

describe('domains: hubLayout', () => {
  const NODE = `[node]
address = 2:5020/99@fidonet
aka = 21:1/999@fsxnet, 1:104/99@fidonet
outbound = /ftn/out
inbound = /ftn/in
`;

  test('hubs without an outbound key share [node] outbound; its default zone is our main zone', () => {
    const c = config(`${NODE}
[fido]
hub_address = 2:5020/1@fidonet
hub_hostname = h1
[zone1]
hub_address = 1:104/1@fidonet
hub_hostname = h2
`);
    assert.deepEqual(hubLayout(c, hub(c, 'fido')), { root: '/ftn/out', defaultZone: 2 });
    assert.deepEqual(hubLayout(c, hub(c, 'zone1')), { root: '/ftn/out', defaultZone: 2 });
    assert.equal(nodeBase(hubLayout(c, hub(c, 'zone1')), hub(c, 'zone1').address), '/ftn/out.001/00680001');
  });

  test('another domain: its own root, whose default zone is our address in that domain', () => {
    const c = config(`${NODE}
[fsx]
hub_address = 21:1/100@fsxnet
hub_hostname = h1
outbound = /ftn/fsxnet
[fsx22]
hub_address = 22:1/1@fsxnet
hub_hostname = h2
outbound = /ftn/fsxnet
`);
    assert.deepEqual(hubLayout(c, hub(c, 'fsx')), { root: '/ftn/fsxnet', defaultZone: 21 });
    // A second hub of the domain in another zone agrees on the default zone: its files are in root.zzz.
    assert.deepEqual(hubLayout(c, hub(c, 'fsx22')), { root: '/ftn/fsxnet', defaultZone: 21 });
    assert.equal(nodeBase(hubLayout(c, hub(c, 'fsx')), hub(c, 'fsx').address), '/ftn/fsxnet/00010064');
    assert.equal(nodeBase(hubLayout(c, hub(c, 'fsx22')), hub(c, 'fsx22').address), '/ftn/fsxnet.016/00010001');
  });

  test("the hub's own address key counts before [node]; with no address in the domain, the first hub's zone", () => {
    const c = config(`[node]
address = 2:5020/99@fidonet
outbound = /ftn/out
inbound = /ftn/in
[amiga-hub-of-zone-40]
hub_address = 40:1/1@amiganet
hub_hostname = h1
outbound = /ftn/amiganet
[amiga]
hub_address = 39:1/1@amiganet
hub_hostname = h2
outbound = /ftn/amiganet
address = 39:1/99@amiganet
[other]
hub_address = 44:1/1@othernet
hub_hostname = h3
outbound = /ftn/othernet
`);
    assert.equal(hubLayout(c, hub(c, 'amiga-hub-of-zone-40')).defaultZone, 39);
    assert.equal(hubLayout(c, hub(c, 'amiga')).defaultZone, 39);
    assert.deepEqual(hubLayout(c, hub(c, 'other')), { root: '/ftn/othernet', defaultZone: 44 });
  });

  test('a hub that names [node] outbound again gets the same layout as one that names none', () => {
    const c = config(`${NODE}
[zone1]
hub_address = 1:104/1@fidonet
hub_hostname = h2
outbound = /ftn/out/
`);
    assert.equal(hubLayout(c, hub(c, 'zone1')).defaultZone, 2);
    assert.equal(nodeBase(hubLayout(c, hub(c, 'zone1')), hub(c, 'zone1').address), '/ftn/out.001/00680001');
  });

  test('planning reads each domain from its own tree', async () => {
    const { dir } = await fresh();
    const out = join(dir, 'out');
    const fsx = join(dir, 'fsxnet');
    const c = config(`[node]
address = 2:5020/99@fidonet
aka = 21:1/999@fsxnet
outbound = ${out}
inbound = ${join(dir, 'in')}
[fido]
hub_address = 2:5020/1@fidonet
hub_hostname = h1
[fsx]
hub_address = 21:1/100@fsxnet
hub_hostname = h2
outbound = ${fsx}
[fsx22]
hub_address = 22:1/1@fsxnet
hub_hostname = h3
outbound = ${fsx}
`);
    await put(join(out, '139c0001.hut'), PACKET);
    await put(join(fsx, '00010064.cut'), PACKET);
    await put(join(`${fsx}.016`, '00010001.iut'), PACKET);
    // Decoys: the fsxnet hub's node number in the fidonet tree, and zone 21 with an extension
    // in the fidonet tree.
    await put(join(out, '00010064.iut'), PACKET);
    await put(join(`${out}.015`, '00010064.iut'), PACKET);
    const inputs = await gatherInputs(c, c.hubs, Date.now());
    assert.equal(inputs.queued.get('fido')?.flavour, 'hold');
    assert.equal(inputs.queued.get('fsx')?.flavour, 'crash');
    assert.equal(inputs.queued.get('fsx22')?.flavour, 'immediate');
    assert.deepEqual(
      [...inputs.queued].map(([k, s]) => [k, s.files]),
      [
        ['fido', 1],
        ['fsx', 1],
        ['fsx22', 1],
      ],
    );
  });
});

describe('flow-file lines whose files vanished', () => {
  test('with the outbound root, finishFlowFile marks them `~` (binkd\'s remove_from_spool) and then drops the file', async () => {
    const { out, files } = await fresh();
    const kept = await put(join(files, 'kept.bin'), 'x');
    // Relative paths resolve against the root, as when scanning: ../files/kept.bin exists.
    const text = `~${kept}\r\n^${join(files, 'gone.bin')}\r\n#../files/gone-too.bin\r\n`;
    const flo = await put(join(out, '139c0001.flo'), text);
    assert.equal(await finishFlowFile(flo), false, 'without the root nothing changes');
    assert.equal(await readFile(flo, 'utf8'), text);

    const warned: string[] = [];
    assert.equal(await finishFlowFile(flo, { root: out, warn: (m) => warned.push(m) }), true);
    assert.equal(warned.length, 2, warned.join('\n'));
    assert.match(warned[0]!, /139c0001\.flo line 2: ".*gone\.bin" no longer exists; line marked sent/);
  });

  test('a line whose file exists keeps the flow file; vanished lines are marked in place', async () => {
    const { out, files } = await fresh();
    await put(join(files, 'here.bin'), 'x');
    const flo = await put(join(out, '139c0001.clo'), `^${join(files, 'gone.bin')}\n../files/here.bin\n`);
    assert.equal(await finishFlowFile(flo, { root: out }), false);
    assert.equal(await readFile(flo, 'utf8'), `~${join(files, 'gone.bin')}\n../files/here.bin\n`);
  });
});
