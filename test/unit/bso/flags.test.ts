import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  FlagKeeper,
  decodeTry,
  encodeTry,
  flagBusy,
  pidAlive,
  readHold,
  sweepFlagTemps,
  EMPTY_FLAG_GRACE_MS,
  readTry,
  removeHold,
  writeHold,
  writeTry,
  type Scheduler,
} from '../../../src/bso/flags.js';

let root: string;
let n = 0;
/** A fresh node base path (no extension) in its own directory. */
async function base(): Promise<string> {
  const dir = path.join(root, `d${++n}`);
  await fsp.mkdir(dir);
  return path.join(dir, '139c0001');
}

const T0 = 1_700_000_000_000; // ms
const MINUTE = 60_000;
const noTimer: Scheduler = () => () => undefined;

before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'fnpoll-flags-'));
});
after(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

async function setMtime(file: string, ms: number): Promise<void> {
  await fsp.utimes(file, new Date(ms), new Date(ms));
}

describe('FlagKeeper.acquire', () => {
  test('creates the flag with our PID and a newline, exclusively', async () => {
    const bsy = (await base()) + '.bsy';
    const a = new FlagKeeper({ staleAge: 10 * MINUTE, pid: 4242, schedule: noTimer });
    assert.deepEqual(await a.acquire(bsy), { ok: true });
    assert.equal(await fsp.readFile(bsy, 'latin1'), '4242\n');
    assert.deepEqual(a.held(), [bsy]);
    assert.deepEqual(await a.acquire(bsy), { ok: true }, 'holding it already is fine');
    await a.release(bsy);
    assert.equal(existsSync(bsy), false);
    assert.deepEqual(a.held(), []);
  });

  test('a second keeper is refused and told who holds the flag', async () => {
    const bsy = (await base()) + '.bsy';
    const now = () => T0 + 5000;
    const a = new FlagKeeper({ staleAge: 10 * MINUTE, pid: 1111, now, schedule: noTimer });
    const b = new FlagKeeper({ staleAge: 10 * MINUTE, pid: 2222, now, isAlive: () => true, schedule: noTimer });
    assert.equal((await a.acquire(bsy)).ok, true);
    await setMtime(bsy, T0);
    const r = await b.acquire(bsy);
    assert.deepEqual(r, { ok: false, holder: { path: bsy, pid: 1111, ageMs: 5000 } });
    assert.equal(await fsp.readFile(bsy, 'latin1'), '1111\n', 'untouched');
    await b.release(bsy); // not b's: must stay
    assert.equal(existsSync(bsy), true);
    await a.release(bsy);
    assert.equal(existsSync(bsy), false);
  });

  test('creates missing directories (point and zone outbounds)', async () => {
    const bsy = path.join(await base(), '..', '139c0001.pnt', '00000002.bsy');
    const a = new FlagKeeper({ staleAge: 0, schedule: noTimer });
    assert.equal((await a.acquire(bsy)).ok, true);
    assert.equal(existsSync(bsy), true);
    a.releaseAllSync();
  });

  test('a flag older than staleAge is removed with a warning and taken', async () => {
    const bsy = (await base()) + '.bsy';
    await fsp.writeFile(bsy, '3333\n');
    await setMtime(bsy, T0);
    const warnings: string[] = [];
    const opts = { staleAge: 10 * MINUTE, pid: 4444, isAlive: () => true, schedule: noTimer, warn: (m: string) => warnings.push(m) };

    const young = new FlagKeeper({ ...opts, now: () => T0 + 10 * MINUTE });
    const r = await young.acquire(bsy);
    assert.equal(r.ok, false, 'exactly staleAge old is not stale yet');

    const old = new FlagKeeper({ ...opts, now: () => T0 + 10 * MINUTE + 1 });
    assert.deepEqual(await old.acquire(bsy), { ok: true });
    assert.equal(await fsp.readFile(bsy, 'latin1'), '4444\n');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /139c0001\.bsy: removed stale flag \(PID 3333, 600 s old/);
    assert.deepEqual((await fsp.readdir(path.dirname(bsy))).sort(), ['139c0001.bsy'], 'no leftovers');
    old.releaseAllSync();
  });

  test('staleAge 0 never makes a flag stale by age', async () => {
    const bsy = (await base()) + '.bsy';
    await fsp.writeFile(bsy, '3333\n');
    await setMtime(bsy, 0);
    const k = new FlagKeeper({ staleAge: 0, pid: 4444, isAlive: () => true, schedule: noTimer, now: () => T0 });
    assert.equal((await k.acquire(bsy)).ok, false);
  });

  test('a flag whose PID has exited is stale', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const pid = child.pid!;
    await once(child, 'exit');
    assert.equal(pidAlive(pid), false, 'the child is gone');

    const bsy = (await base()) + '.bsy';
    await fsp.writeFile(bsy, `${pid}\n`);
    const warnings: string[] = [];
    const k = new FlagKeeper({ staleAge: 0, schedule: noTimer, warn: (m) => warnings.push(m) });
    assert.deepEqual(await k.acquire(bsy), { ok: true });
    assert.equal(await fsp.readFile(bsy, 'latin1'), `${process.pid}\n`);
    assert.match(warnings[0]!, new RegExp(`PID ${pid}, that process is not running`));
    await k.releaseAll();
  });

  test('live PIDs: our own, and EPERM counts as alive', () => {
    assert.equal(pidAlive(process.pid), true);
    assert.equal(pidAlive(1), true); // init: alive whether kill(1, 0) succeeds or gives EPERM
  });

  test('a flag without a PID line is only stale by age', async () => {
    const bsy = (await base()) + '.csy';
    await fsp.writeFile(bsy, 'binkd on host x\n');
    await setMtime(bsy, T0);
    const k = new FlagKeeper({ staleAge: MINUTE, isAlive: () => false, schedule: noTimer, now: () => T0 + 1000 });
    assert.deepEqual(await k.acquire(bsy), { ok: false, holder: { path: bsy, ageMs: 1000 } });
  });

  test('a stale flag replaced by someone else while we look is left to them', async () => {
    const bsy = (await base()) + '.bsy';
    await fsp.writeFile(bsy, '3333\n');
    // The liveness check runs after our stat: another program swaps in its own flag right then
    // (created first and renamed over, so the inode differs).
    const isAlive = (pid: number): boolean => {
      if (pid === 3333) {
        writeFileSync(bsy + '.new', '5555\n');
        renameSync(bsy + '.new', bsy);
      }
      return pid !== 3333;
    };
    const warnings: string[] = [];
    const k = new FlagKeeper({ staleAge: 0, pid: 4444, isAlive, schedule: noTimer, warn: (m) => warnings.push(m) });
    const r = await k.acquire(bsy);
    assert.equal(r.ok, false);
    assert.equal(r.ok === false && r.holder.pid, 5555);
    assert.equal(await fsp.readFile(bsy, 'latin1'), '5555\n', 'their flag is back in place');
    assert.deepEqual((await fsp.readdir(path.dirname(bsy))).sort(), ['139c0001.bsy']);
    assert.deepEqual(k.held(), []);
  });
});

describe('flags never exist without an owner (issue 11, defect 1)', () => {
  test('an empty flag (its creator killed before writing its PID) is stale after a few seconds', async () => {
    const csy = (await base()) + '.csy';
    await fsp.writeFile(csy, '');
    await setMtime(csy, T0);
    const warnings: string[] = [];
    const opts = { staleAge: 6 * 60 * MINUTE, pid: 4444, isAlive: () => true, schedule: noTimer, warn: (m: string) => warnings.push(m) };
    const early = new FlagKeeper({ ...opts, now: () => T0 + 1000 });
    assert.deepEqual(await early.acquire(csy), { ok: false, holder: { path: csy, ageMs: 1000 } }, 'a creator may still be writing');
    const later = new FlagKeeper({ ...opts, now: () => T0 + EMPTY_FLAG_GRACE_MS + 1 });
    assert.deepEqual(await later.acquire(csy), { ok: true });
    assert.equal(await fsp.readFile(csy, 'latin1'), '4444\n');
    assert.match(warnings[0]!, /139c0001\.csy: removed stale flag \(no PID, empty for 5 s/);
    const holder = await flagBusy(csy, { staleAge: 0, now: Date.now, isAlive: () => true });
    assert.equal(holder?.pid, 4444, 'ours now, and it names us');
    later.releaseAllSync();
  });

  test('our flag appears with its PID already in it, and no temp file stays', async () => {
    const dir = path.dirname((await base()) + '.bsy');
    const bsy = path.join(dir, '139c0001.bsy');
    // Watch every event in the directory: the flag must never be seen empty.
    const seen: number[] = [];
    const { watch, statSync } = await import('node:fs');
    const w = watch(dir, (_ev, name) => {
      if (name !== '139c0001.bsy') return;
      try {
        seen.push(statSync(bsy).size);
      } catch {
        // removed again
      }
    });
    try {
      for (let i = 0; i < 20; i++) {
        const k = new FlagKeeper({ staleAge: 0, pid: 70000 + i, schedule: noTimer });
        assert.deepEqual(await k.acquire(bsy), { ok: true });
        seen.push((await fsp.stat(bsy)).size);
        await k.release(bsy);
      }
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      w.close();
    }
    assert.ok(seen.length >= 20);
    assert.deepEqual(seen.filter((n) => n === 0), [], 'a flag was seen empty');
    assert.deepEqual(await fsp.readdir(dir), []);
  });

  test('sweepFlagTemps removes temp files of dead PIDs only', async () => {
    const b = await base();
    const dir = path.dirname(b);
    const names = [`139c0001.csy.111-0a0b0c0d.tmp`, `139c0001.bsy.222-01234567.stale`, `139c0001.hld.333-89abcdef.tmp`, '139c0001.csy', 'x.tmp'];
    for (const n of names) await fsp.writeFile(path.join(dir, n), '1\n');
    const removed = await sweepFlagTemps(dir, (pid) => pid === 333);
    assert.deepEqual(removed.sort(), ['139c0001.bsy.222-01234567.stale', '139c0001.csy.111-0a0b0c0d.tmp']);
    assert.deepEqual((await fsp.readdir(dir)).sort(), ['139c0001.csy', '139c0001.hld.333-89abcdef.tmp', 'x.tmp']);
  });
});

describe('FlagKeeper.release', () => {
  test('leaves a flag that another program put in place of ours', async () => {
    const bsy = (await base()) + '.bsy';
    const warnings: string[] = [];
    const k = new FlagKeeper({ staleAge: 0, schedule: noTimer, warn: (m) => warnings.push(m) });
    await k.acquire(bsy);
    await fsp.writeFile(bsy + '.x', '9999\n');
    await fsp.rename(bsy + '.x', bsy);
    await k.release(bsy);
    assert.equal(await fsp.readFile(bsy, 'latin1'), '9999\n');
    assert.match(warnings[0]!, /replaced by another program/);
  });

  test('releaseAllSync removes every held flag and nothing else', async () => {
    const b = await base();
    const other = b.replace(/139c0001$/, '139c0002.bsy');
    await fsp.writeFile(other, '1\n');
    const k = new FlagKeeper({ staleAge: 0, schedule: noTimer });
    await k.acquire(b + '.bsy');
    await k.acquire(b + '.csy');
    assert.equal(k.held().length, 2);
    k.releaseAllSync();
    assert.deepEqual(k.held(), []);
    assert.deepEqual(await fsp.readdir(path.dirname(b)), ['139c0002.bsy']);
  });

  test('releaseAll removes every held flag', async () => {
    const b = await base();
    const k = new FlagKeeper({ staleAge: 0, schedule: noTimer });
    await k.acquire(b + '.bsy');
    await k.acquire(b + '.csy');
    await k.releaseAll();
    assert.deepEqual(await fsp.readdir(path.dirname(b)), []);
  });
});

describe('FlagKeeper touch timer', () => {
  test('runs while flags are held, touches them, stops when none are', async () => {
    const b = await base();
    let clock = T0;
    const timers: { cb: () => Promise<void>; everyMs: number; stopped: boolean }[] = [];
    const schedule: Scheduler = (cb, everyMs) => {
      const t = { cb, everyMs, stopped: false };
      timers.push(t);
      return () => {
        t.stopped = true;
      };
    };
    const k = new FlagKeeper({ staleAge: 0, now: () => clock, schedule, touchEvery: 1234 });
    assert.equal(timers.length, 0, 'no timer before any flag is held');
    await k.acquire(b + '.bsy');
    await k.acquire(b + '.csy');
    assert.equal(timers.length, 1);
    assert.equal(timers[0]!.everyMs, 1234);

    clock = T0 + 90_000;
    await timers[0]!.cb();
    for (const ext of ['.bsy', '.csy']) {
      assert.equal((await fsp.stat(b + ext)).mtimeMs, T0 + 90_000, ext);
    }

    await k.release(b + '.bsy');
    assert.equal(timers[0]!.stopped, false, 'still holding .csy');
    await k.release(b + '.csy');
    assert.equal(timers[0]!.stopped, true);

    await k.acquire(b + '.bsy');
    assert.equal(timers.length, 2, 'restarted for the next flag');
    k.releaseAllSync();
    assert.equal(timers[1]!.stopped, true);
  });

  test('the default interval is 60 s', async () => {
    const b = await base();
    const seen: number[] = [];
    const k = new FlagKeeper({ staleAge: 0, schedule: (_cb, ms) => (seen.push(ms), () => undefined) });
    await k.acquire(b + '.bsy');
    assert.deepEqual(seen, [60_000]);
    k.releaseAllSync();
  });
});

describe('flagBusy', () => {
  test('absent, fresh, stale', async () => {
    const bsy = (await base()) + '.bsy';
    const opts = { staleAge: MINUTE, now: () => T0 + 30_000, isAlive: () => true };
    assert.equal(await flagBusy(bsy, opts), undefined);
    await fsp.writeFile(bsy, '77\n');
    await setMtime(bsy, T0);
    assert.deepEqual(await flagBusy(bsy, opts), { path: bsy, pid: 77, ageMs: 30_000 });
    assert.equal(await flagBusy(bsy, { ...opts, now: () => T0 + 2 * MINUTE }), undefined);
    assert.equal(await flagBusy(bsy, { ...opts, isAlive: () => false }), undefined);
    assert.equal(existsSync(bsy), true, 'never removes anything');
  });

  test('FlagKeeper.busy ignores flags the keeper holds', async () => {
    const bsy = (await base()) + '.bsy';
    const k = new FlagKeeper({ staleAge: 0, pid: 88, schedule: noTimer });
    await k.acquire(bsy);
    assert.equal(await k.busy(bsy), undefined);
    assert.equal((await flagBusy(bsy, { staleAge: 0, isAlive: () => true }))?.pid, 88);
    k.releaseAllSync();
  });
});

describe('.hld', () => {
  const now = T0; // ms
  const nowS = T0 / 1000;

  test('a future time is returned, the file kept', async () => {
    const b = await base();
    await fsp.writeFile(b + '.hld', String(nowS + 3600));
    assert.equal(await readHold(b, now), nowS + 3600);
    assert.equal(existsSync(b + '.hld'), true);
  });

  test('whitespace around the number is accepted', async () => {
    const b = await base();
    await fsp.writeFile(b + '.hld', ` ${nowS + 1}\r\n`);
    assert.equal(await readHold(b, now), nowS + 1);
  });

  test('a past (or current) time deletes the file', async () => {
    const b = await base();
    await fsp.writeFile(b + '.hld', String(nowS));
    assert.equal(await readHold(b, now), undefined);
    assert.equal(existsSync(b + '.hld'), false);
  });

  test('garbage is reported, treated as absent and left alone', async () => {
    const b = await base();
    await fsp.writeFile(b + '.hld', 'tomorrow');
    const warnings: string[] = [];
    assert.equal(await readHold(b, now, (m) => warnings.push(m)), undefined);
    assert.equal(existsSync(b + '.hld'), true);
    assert.match(warnings[0]!, /139c0001\.hld: not a unix time: "tomorrow"/);
  });

  test('absent', async () => {
    assert.equal(await readHold(await base(), now), undefined);
  });

  test('writeHold writes the bare number like binkd; removeHold removes it', async () => {
    const b = await base();
    await writeHold(b, 1700003600);
    assert.equal(await fsp.readFile(b + '.hld', 'latin1'), '1700003600');
    await writeHold(b, 1700007200);
    assert.equal(await fsp.readFile(b + '.hld', 'latin1'), '1700007200', 'replaced');
    assert.deepEqual(await fsp.readdir(path.dirname(b)), ['139c0001.hld'], 'no temp files left');
    await removeHold(b);
    await removeHold(b); // absent is fine
    assert.equal(existsSync(b + '.hld'), false);
  });

  test('writeHold refuses a non-time', async () => {
    await assert.rejects(writeHold(await base(), Number.NaN), /hold time NaN/);
  });
});

describe('.try', () => {
  // binkd's write_try(): nok 258, nbad 3, comment "Connection refused", low byte first.
  const fixture = Buffer.concat([
    Buffer.from([0x02, 0x01, 0x03, 0x00, 18]),
    Buffer.from('Connection refused', 'latin1'),
  ]);

  test('encodes little-endian, as binkd does', () => {
    assert.deepEqual(encodeTry({ nok: 258, nbad: 3, comment: 'Connection refused' }), fixture);
    assert.deepEqual(decodeTry(fixture), { nok: 258, nbad: 3, comment: 'Connection refused' });
  });

  test('writeTry / readTry on disk', async () => {
    const b = await base();
    await writeTry(b, { nok: 258, nbad: 3, comment: 'Connection refused' });
    assert.deepEqual(await fsp.readFile(b + '.try'), fixture);
    assert.deepEqual(await readTry(b), { nok: 258, nbad: 3, comment: 'Connection refused' });
    assert.deepEqual(await fsp.readdir(path.dirname(b)), ['139c0001.try']);
  });

  test('comment is cut to 255 bytes without splitting a character; counters clamp to u16', () => {
    const long = 'x'.repeat(254) + 'é' + 'y';
    const buf = encodeTry({ nok: 70000, nbad: -1, comment: long });
    assert.equal(buf.readUInt16LE(0), 0xffff);
    assert.equal(buf.readUInt16LE(2), 0);
    assert.equal(buf[4], 254, 'the two-byte é would exceed 255');
    assert.equal(buf.length, 5 + 254);
    assert.equal(encodeTry({ nok: 0, nbad: 0, comment: 'z'.repeat(300) })[4], 255);
  });

  test('short or absent files', async () => {
    assert.equal(decodeTry(Buffer.from([1, 0, 2])), undefined);
    assert.deepEqual(decodeTry(Buffer.from([1, 0, 2, 0])), { nok: 1, nbad: 2, comment: '' });
    assert.deepEqual(decodeTry(Buffer.from([1, 0, 2, 0, 9, 0x61])), { nok: 1, nbad: 2, comment: 'a' });
    assert.equal(await readTry(await base()), undefined);
  });
});
