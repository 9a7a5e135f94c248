/**
 * summarizeOutbound has its own lean path for planning (no queue built, synchronous stats, one
 * node at a time). It must say exactly what scanNode's summary says, warnings included: these
 * tests build outbounds with every case the scan distinguishes and compare the two.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { OutboundDirCache, scanNode, summarizeOutbound } from '../../../src/bso/outbound.js';
import type { BsoLayout } from '../../../src/bso/types.js';
import { OutboundTrees, put, type OutboundTree } from '../../helpers/bso.js';
import { addressKey, parseAddress, type FtnAddress } from '../../../src/ftn/address.js';
import { seededRandom } from '../poll/fixtures.js';

const trees = new OutboundTrees('fnpoll-summary-');
after(() => trees.remove());
const fresh = (): Promise<OutboundTree> => trees.fresh();

/** scanNode's summary and warnings per node, and summarizeOutbound's, side by side. */
async function both(layout: BsoLayout, nodes: FtnAddress[]) {
  const scanWarnings: string[] = [];
  const scanned = new Map<string, unknown>();
  for (const n of nodes) {
    if (!scanned.has(addressKey(n))) scanned.set(addressKey(n), (await scanNode(layout, n, { warn: (m) => scanWarnings.push(m) })).summary);
  }
  const sumWarnings: string[] = [];
  const summed = await summarizeOutbound(layout, nodes, { warn: (m) => sumWarnings.push(m) });
  return { scanned, summed, scanWarnings: scanWarnings.sort(), sumWarnings: sumWarnings.sort() };
}

describe('summarizeOutbound equals scanNode(...).summary', () => {
  test('every case the scan distinguishes, in one outbound', async () => {
    const { layout, out, files } = await fresh();
    const f = (name: string, size: number) => put(join(files, name), Buffer.alloc(size, 0x41));
    const a = await f('a.zip', 10);
    const b = await f('b.zip', 20);
    const c = await f('c b.zip', 30);
    await mkdir(join(files, 'adir'));
    await symlink(a, join(files, 'link-to-a'));
    // 2:5020/1: netmail of several sizes and cases, flow files of several flavours with every
    // directive, a duplicate across flow files, a missing file, a directory, a blank directive.
    await put(join(out, '139c0001.cut'), Buffer.alloc(61));
    await put(join(out, '139c0001.out'), Buffer.alloc(60)); // empty packet: not counted
    await put(join(out, '139C0001.HUT'), Buffer.alloc(500));
    await put(join(out, '139c0001.dlo'), `^${a}\n#${b}\r\n${c}\n~${a}\n!${b}\n@${join(files, 'missing')}\n-${join(files, 'adir')}\n^\n`);
    await put(join(out, '139c0001.hlo'), `${a}\n${join(files, 'link-to-a')}\n`);
    await put(join(out, '139c0001.clo'), 'relative/none.zip\n');
    await put(join(out, '139c0001.req'), 'FILES\r\n');
    // 2:5020/2: only an empty flow file (poll request) and a hold netmail.
    await put(join(out, '139c0002.ilo'), '\r\n');
    await put(join(out, '139c0002.hut'), Buffer.alloc(100));
    // 2:5020/3: a fully sent flow file, and a .req alone.
    await put(join(out, '139c0003.flo'), `~${a}\n`);
    await put(join(out, '139c0003.req'), 'x');
    // a point, another zone, a zone directory for the default zone, a node with nothing.
    await put(join(out, '139c0001.pnt', '0000002d.flo'), `${b}\n`);
    await put(join(`${out}.015`, '00010064.dlo'), `${c}\n`);
    await put(join(`${out}.002`, '139c0004.cut'), Buffer.alloc(70));
    await put(join(out, '139c0004.flo'), `${a}\n`);
    const nodes = ['2:5020/1', '2:5020/2', '2:5020/3', '2:5020/1.45', '21:1/100', '2:5020/4', '2:5020/9', '2:5020/1'].map((t) =>
      parseAddress(t),
    );
    const r = await both(layout, nodes);
    assert.deepEqual([...r.summed.keys()], [...r.scanned.keys()], 'same nodes in the same order');
    assert.deepEqual(Object.fromEntries(r.summed), Object.fromEntries(r.scanned));
    assert.deepEqual(r.sumWarnings, r.scanWarnings);
    // The comparison is only worth something if the cases really differ.
    assert.deepEqual(r.summed.get('2:5020/1'), { files: 7, bytes: 10 + 20 + 30 + 10 + 61 + 500 + 7, flavour: 'crash', pollRequest: false });
    assert.equal(r.summed.get('2:5020/2')?.pollRequest, true);
    assert.equal(r.summed.get('2:5020/3')?.flavour, undefined);
    assert.ok(r.sumWarnings.some((w) => /already queued/.test(w)));
    assert.ok(r.sumWarnings.some((w) => /not a regular file/.test(w)));
    assert.ok(r.sumWarnings.some((w) => /no such file/.test(w)));
    assert.ok(r.sumWarnings.some((w) => /no file name after the directive/.test(w)));
  });

  test('random outbounds: same summaries and warnings for every node', async () => {
    const rnd = seededRandom(20261122);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    for (let round = 0; round < 6; round++) {
      const { layout, out, files } = await fresh();
      const pool: string[] = [];
      for (let i = 0; i < 12; i++) pool.push(await put(join(files, `f${i}.bin`), Buffer.alloc(Math.floor(rnd() * 200))));
      pool.push(join(files, 'gone.bin'));
      const nodes = Array.from({ length: 8 }, (_, i) => parseAddress(`2:100/${i + 1}`));
      for (const n of nodes) {
        const stem = `0064${n.node.toString(16).padStart(4, '0')}`;
        for (const ext of ['ilo', 'clo', 'dlo', 'flo', 'hlo', 'iut', 'cut', 'dut', 'out', 'hut', 'req']) {
          if (rnd() < 0.5) continue;
          const name = rnd() < 0.2 ? `${stem}.${ext}`.toUpperCase() : `${stem}.${ext}`;
          if (ext.endsWith('lo')) {
            const lines = Array.from({ length: Math.floor(rnd() * 5) }, () => `${pick(['', '^', '#', '~', '!', '-', '@'])}${pick(pool)}`);
            await put(join(out, name), lines.join(rnd() < 0.5 ? '\n' : '\r\n'));
          } else {
            await put(join(out, name), Buffer.alloc(Math.floor(rnd() * 120)));
          }
        }
      }
      const r = await both(layout, nodes);
      assert.deepEqual(Object.fromEntries(r.summed), Object.fromEntries(r.scanned), `round ${round}`);
      assert.deepEqual(r.sumWarnings, r.scanWarnings, `round ${round}`);
    }
  });

  test('a shared listing cache is used: a flow file written after the first listing is not seen', async () => {
    const { layout, out, files } = await fresh();
    const a = await put(join(files, 'a'), 'a');
    const dirs = new OutboundDirCache();
    const A = parseAddress('2:5020/1');
    assert.equal((await summarizeOutbound(layout, [A], { dirs })).get('2:5020/1')?.files, 0);
    await put(join(out, '139c0001.flo'), `${a}\n`);
    assert.equal((await summarizeOutbound(layout, [A], { dirs })).get('2:5020/1')?.files, 0, 'listing reused');
    assert.equal((await summarizeOutbound(layout, [A])).get('2:5020/1')?.files, 1, 'fresh listing');
  });
});
