import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOutbound } from '../../../src/bso/queue.js';
import { formatQueueTable, strandedSummary, strandedWarnings } from '../../../src/commands/queue.js';
import { formatAddress, parseAddress } from '../../../src/ftn/address.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const NOW = Date.UTC(2026, 2, 1, 12, 0, 0);
const HOUR = 3_600_000;

async function tree(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'fnpoll-queue-'));
  dirs.push(d);
  const out = join(d, 'out');
  await mkdir(join(out, '139c0001.pnt'), { recursive: true });
  await mkdir(`${out}.015`, { recursive: true });
  await mkdir(join(d, 'files'));
  const put = async (p: string, size: number, agoMs: number): Promise<void> => {
    await writeFile(p, Buffer.alloc(size, 'x'));
    await utimes(p, (NOW - agoMs) / 1000, (NOW - agoMs) / 1000);
  };
  await put(join(out, '139c0001.cut'), 100, HOUR); // crash netmail for the hub
  await put(join(d, 'files', 'a.zip'), 2000, 10 * HOUR);
  await writeFile(join(out, '139C0001.FLO'), `^${join(d, 'files', 'a.zip')}\n`); // upper case, as some tossers write
  await utimes(join(out, '139C0001.FLO'), (NOW - 3 * HOUR) / 1000, (NOW - 3 * HOUR) / 1000);
  await put(join(out, '139c0001.pnt', '00000005.hut'), 80, HOUR); // a point of the hub: no hub for it
  await writeFile(join(out, '139c0002.dlo'), ''); // a poll request only
  await put(join(out, '139c0007.out'), 300, 48 * HOUR); // a node nobody serves
  await put(join(`${out}.015`, '00010064.out'), 300, HOUR); // zone 21, no hub in it
  return d;
}

describe('fnpoll queue', () => {
  test('every node per flavour, which hub carries it, and what never leaves', async () => {
    const d = await tree();
    const layout = { root: join(d, 'out'), defaultZone: 2 };
    const r = await readOutbound([{ name: 'fidonet', address: parseAddress('2:5020/1@fidonet'), layout }]);
    const rows = r.rows.map((x) => [formatAddress(x.address), x.flavour, x.files, x.bytes, x.hub ?? null, x.pollOnly, x.oldest === undefined ? null : (NOW - x.oldest) / HOUR]);
    assert.deepEqual(rows, [
      ['2:5020/1@fidonet', 'crash', 1, 100, 'fidonet', false, 1],
      ['2:5020/1@fidonet', 'normal', 1, 2000, 'fidonet', false, 3],
      ['2:5020/1.5@fidonet', 'hold', 1, 80, null, false, 1],
      ['2:5020/2@fidonet', 'direct', 0, 0, null, true, rows[3]![6]],
      ['2:5020/7@fidonet', 'normal', 1, 300, null, false, 48],
      ['21:1/100@fidonet', 'normal', 1, 300, null, false, 1],
    ]);
    assert.deepEqual(r.unreadZoneDirs, [{ dir: `${join(d, 'out')}.015`, zone: 21, nodes: 1 }]);
    assert.equal(strandedSummary(r), '3 nodes have mail that no hub will carry (3 files, 680 B); see `fnpoll queue`');
    const w = strandedWarnings(r);
    assert.equal(w.length, 4, w.join('\n'));
    assert.match(w[0]!, /^mail for 2:5020\/1\.5@fidonet \(1 file, 80 B\) will never leave: no hub/);
    assert.match(w[3]!, /out\.015: zone 21 has mail for 1 node, but no hub in zone 21 uses this outbound$/);
    const table = formatQueueTable(r, NOW);
    assert.match(table, /^NODE +FLAVOUR +FILES +BYTES +OLDEST +HUB$/m);
    assert.match(table, /^2:5020\/7@fidonet +normal +1 +300 B +2d +- \(no hub: never leaves\)$/m);
    assert.match(table, /^total: 5 files, 2\.7 KiB for 5 nodes$/m);
  });

  test('nothing queued: no warning, no count', async () => {
    const d = await mkdtemp(join(tmpdir(), 'fnpoll-queue-'));
    dirs.push(d);
    const r = await readOutbound([{ name: 'h', address: parseAddress('2:5020/1@fidonet'), layout: { root: join(d, 'out'), defaultZone: 2 } }]);
    assert.deepEqual(r.rows, []);
    assert.equal(strandedSummary(r), undefined);
    assert.equal(formatQueueTable(r, NOW), 'outbound empty\n');
  });
});
