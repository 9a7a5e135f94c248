import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GroupSync, inMemoryDir, type SyncKind } from '../../../src/bso/durable.js';
import { execFileSync } from 'node:child_process';
import { Inbound } from '../../../src/bso/inbound.js';
import { IoError } from '../../../src/errors.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fnpoll-durable-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A sync that records its calls and finishes only when released, like a slow disk. */
function slowDisk() {
  const calls: [string, SyncKind][] = [];
  const gates: (() => void)[] = [];
  const sync = (path: string, kind: SyncKind): Promise<void> => {
    calls.push([path, kind]);
    return new Promise<void>((r) => gates.push(r));
  };
  const release = (): void => {
    for (const g of gates.splice(0)) g();
  };
  return { calls, sync, release };
}

/** Let every pending callback and the next round's setImmediate run. */
const tick = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

describe('GroupSync (issue 11, defect 5: group commit)', () => {
  test('requests of one turn share a round; requests during a round wait for the next one', async () => {
    const disk = slowDisk();
    const g = new GroupSync(true, disk.sync);
    const done: string[] = [];
    const req = (p: string, k: SyncKind) => g.sync(p, k).then(() => void done.push(p));
    const first = [req('/a', 'file'), req('/b', 'file'), req('/a', 'file'), req('/d', 'dir')];
    await tick();
    // One round: each path once, files before directories.
    assert.deepEqual(disk.calls, [['/a', 'file'], ['/b', 'file']]);
    const second = [req('/c', 'file'), req('/d', 'dir')];
    disk.release();
    await tick();
    assert.deepEqual(disk.calls.slice(2), [['/d', 'dir']], 'directories after the files of the round');
    disk.release();
    await Promise.all(first);
    assert.deepEqual(done.sort(), ['/a', '/a', '/b', '/d']);
    await tick();
    // The requests made during the first round went into the second.
    assert.deepEqual(disk.calls.slice(3), [['/c', 'file']]);
    disk.release();
    await tick();
    disk.release();
    await Promise.all(second);
    assert.deepEqual(g.stats, { syncs: 5, rounds: 2, requests: 6, inMemory: 0 });
    await g.drain();
  });

  test('a failed sync rejects its waiters only, with an IoError naming the path', async () => {
    const g = new GroupSync(true, async (p) => {
      if (p === '/bad') throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    });
    const [good, bad] = await Promise.allSettled([g.sync('/good', 'file'), g.sync('/bad', 'file')]);
    assert.equal(good.status, 'fulfilled');
    assert.equal(bad.status, 'rejected');
    assert.ok(bad.status === 'rejected' && bad.reason instanceof IoError);
    assert.match(String((bad as PromiseRejectedResult).reason.message), /^\/bad: fsync failed: EIO/);
  });

  test('received files still open are synced through their descriptor, in batches: 32 at once, or what came within 10 ms', async () => {
    const disk = slowDisk();
    const g = new GroupSync(true, (p, k, fd) => {
      assert.equal(typeof fd, 'number', `${p}: synced without its descriptor`);
      return disk.sync(p, k);
    });
    const done: number[] = [];
    const first = Array.from({ length: 40 }, (_, i) => g.syncOpenFile(`/f${i}`, 100 + i).then(() => void done.push(i)));
    // The 32nd file started the batch; the other 8 wait for the window.
    assert.equal(disk.calls.length, 32);
    assert.deepEqual(disk.calls.slice(0, 2), [['/f0', 'file'], ['/f1', 'file']]);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(disk.calls.length, 40, 'the rest went when the window closed');
    assert.deepEqual(done, [], 'none answered before its own sync finished');
    disk.release();
    await Promise.all(first);
    assert.equal(done.length, 40);
    assert.deepEqual(g.stats, { syncs: 40, rounds: 2, requests: 40, inMemory: 0 });
    // drain() does not wait for the window.
    const late = g.syncOpenFile('/late', 7);
    const drained = g.drain();
    assert.deepEqual(disk.calls.at(-1), ['/late', 'file']);
    disk.release();
    await Promise.all([late, drained]);
  });

  test('a memory filesystem (tmpfs) is not synced: its fsync is a no-op in the kernel', async () => {
    let calls = 0;
    const g = new GroupSync(true, async () => void calls++, (d) => d.startsWith('/mem'));
    await Promise.all([g.sync('/mem/a', 'file'), g.sync('/mem', 'dir'), g.syncOpenFile('/mem/b', 3), g.sync('/disk', 'dir')]);
    assert.equal(calls, 1);
    assert.deepEqual(g.stats, { syncs: 1, rounds: 1, requests: 4, inMemory: 3 });
    // What inMemoryDir says about a directory agrees with what coreutils' stat says about its filesystem.
    for (const d of ['/dev/shm', tmpdir(), '/proc']) {
      const type = execFileSync('stat', ['-f', '-c', '%T', d], { encoding: 'utf8' }).trim();
      assert.equal(inMemoryDir(d), type === 'tmpfs' || type === 'ramfs', `${d} is ${type}`);
    }
  });

  test('fsync = no: resolves at once, never syncs', async () => {
    let calls = 0;
    const g = new GroupSync(false, async () => void calls++);
    await g.sync('/x', 'file');
    assert.equal(calls, 0);
  });

  test('the inbound syncs a received file before its name appears, and the directory before it answers', async () => {
    const events: string[] = [];
    const inboundDir = join(dir, 'in');
    // The inbound is listed when the sync is asked for, not after an await of the fake's own: a
    // file whose data is durable may be linked while the others of its round are still syncing.
    const g = new GroupSync(true, async (p, kind) => {
      let listed: string[] = [];
      try {
        listed = readdirSync(inboundDir);
      } catch {
        // not made yet
      }
      events.push(`${kind} ${p.startsWith(inboundDir) ? 'inbound' : 'temp'} (inbound holds ${listed.length})`);
    });
    const inbound = new Inbound({
      dirs: { secure: inboundDir, insecure: join(dir, 'insecure'), temp: join(dir, 'tmp') },
      hubKey: 'h',
      minFree: 0,
      partialMaxAge: 0,
      durable: g,
    });
    const files = [1, 2, 3].map((n) => ({ name: `f${n}.pkt`, size: 3, mtime: 1_700_000_000 }));
    const partials = await Promise.all(files.map((f) => inbound.open(f, 0)));
    partials.forEach((p) => p.write([Buffer.from('abc')]));
    // Three files completing together: their data in one round, the directory once, in the next.
    const placed = await Promise.all(files.map((f, i) => inbound.complete(f, partials[i]!, true)));
    assert.deepEqual(placed.map((p) => p.slice(inboundDir.length + 1)), ['f1.pkt', 'f2.pkt', 'f3.pkt']);
    assert.deepEqual(events, [
      'file temp (inbound holds 0)',
      'file temp (inbound holds 0)',
      'file temp (inbound holds 0)',
      'dir inbound (inbound holds 3)',
    ]);
    assert.equal(g.stats.rounds, 2);
  });
});
