import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  acquireRunLock,
  lockInfoPath,
  lockTimings,
  processStartTime,
  readLockInfo,
  takeoverGuardPath,
  OWNERLESS_GRACE_MS,
  DEFAULT_LOCK_STALE_MS,
} from '../../../src/poll/lock.js';
import { ExitCode, IoError, LockError } from '../../../src/errors.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fnpoll-lock-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function makeOld(path: string, ageMs: number): Promise<void> {
  const t = new Date(Date.now() - ageMs);
  await utimes(path, t, t);
}

function isLockError(re: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof LockError, String(err));
    assert.equal(err.exitCode, ExitCode.LOCKED);
    assert.equal(err.code, 'ELOCKED');
    assert.match(err.message, re);
    assert.ok(!err.message.includes('\n'));
    return true;
  };
}

const lockUrl = new URL('../../../src/poll/lock.js', import.meta.url).href;

/** A child process that holds `lockFile` until killed. */
async function lockingChild(lockFile: string): Promise<ReturnType<typeof spawn>> {
  const code = `
    const { acquireRunLock } = await import(${JSON.stringify(lockUrl)});
    await acquireRunLock(${JSON.stringify(lockFile)});
    process.stdout.write('locked\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  return child;
}

/** A child that waits for wall-clock `at`, tries to take `lockFile`, holds it 500 ms if it got it, and says what happened. */
async function raceChild(lockFile: string, at: number): Promise<string> {
  const code = `
    const { acquireRunLock } = await import(${JSON.stringify(lockUrl)});
    while (Date.now() < ${at}) {}
    try {
      const lock = await acquireRunLock(${JSON.stringify(lockFile)}, { onTakeover: () => {} });
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 500));
      const t1 = Date.now();
      await lock.release();
      process.stdout.write('locked ' + t0 + ' ' + t1 + '\\n');
    } catch (err) {
      process.stdout.write('refused ' + err.code + ' ' + err.message + '\\n');
    }
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await once(child, 'exit');
  return out.trim();
}

describe('run lock', () => {
  test('timings: several refreshes per stale period, within proper-lockfile limits', () => {
    for (const staleMs of [0, 2_000, 10_000, DEFAULT_LOCK_STALE_MS, 600_000]) {
      const { stale, update } = lockTimings(staleMs);
      assert.ok(stale >= 2_000);
      assert.ok(update >= 1_000 && update * 2 <= stale, `stale ${stale} update ${update}`);
    }
    assert.equal(lockTimings().stale, DEFAULT_LOCK_STALE_MS);
  });

  test('a second acquisition fails at once with who holds it and since when; release frees it', async () => {
    const lockFile = join(dir, 'a', 'state.json.lock');
    const fixed = Date.UTC(2026, 2, 1, 12, 0, 0);
    const lock = await acquireRunLock(lockFile, { now: () => fixed });
    try {
      assert.equal(lock.info.pid, process.pid);
      assert.ok((await stat(lockFile)).isDirectory());
      const info = JSON.parse(await readFile(lockInfoPath(lockFile), 'utf8'));
      assert.deepEqual(
        { pid: info.pid, host: info.host, startedAt: info.startedAt, lockIno: info.lockIno },
        { pid: process.pid, host: hostname(), startedAt: '2026-03-01T12:00:00.000Z', lockIno: (await stat(lockFile)).ino },
      );
      assert.equal(info.procStart, processStartTime(process.pid));
      assert.match(info.bootId, /^[0-9a-f-]{36}$/);
      const escaped = lockFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      await assert.rejects(
        acquireRunLock(lockFile),
        isLockError(
          new RegExp(`^${escaped} is held by pid ${process.pid} since 2026-03-01T12:00:00.000Z \\(another fnpoll run is active\\)$`),
        ),
      );
    } finally {
      await lock.release();
    }
    await assert.rejects(stat(lockFile), { code: 'ENOENT' });
    await assert.rejects(stat(lockInfoPath(lockFile)), { code: 'ENOENT' });
    await lock.release(); // idempotent
    const again = await acquireRunLock(lockFile);
    again.releaseSync();
    await assert.rejects(stat(lockFile), { code: 'ENOENT' });
  });

  test('held by a child process; after kill -9 the lock is taken over at once, never called active', async () => {
    const lockFile = join(dir, 'child.lock');
    const child = await lockingChild(lockFile);
    try {
      await assert.rejects(acquireRunLock(lockFile), isLockError(new RegExp(`held by pid ${child.pid} since .*\\(another fnpoll run is active\\)$`)));
      const seen = await readLockInfo(lockFile);
      assert.equal(seen?.owner?.pid, child.pid);
      assert.equal(seen?.ownerAlive, true);
      assert.equal(seen?.stale, false);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    // kill -9 ran no exit handler: the lock is still there, fresh, but its holder is dead.
    assert.ok((await stat(lockFile)).isDirectory());
    assert.equal((await readLockInfo(lockFile))?.ownerAlive, false);
    const taken: string[] = [];
    const started = Date.now();
    const lock = await acquireRunLock(lockFile, { onTakeover: (m) => taken.push(m) });
    try {
      assert.ok(Date.now() - started < 1_000, 'the take-over waited');
      const info = JSON.parse(await readFile(lockInfoPath(lockFile), 'utf8'));
      assert.equal(info.pid, process.pid);
      assert.equal(taken.length, 1);
      assert.match(taken[0]!, new RegExp(`took over run lock .*child\\.lock from pid ${child.pid} since .*: pid ${child.pid} is no longer running`));
      await assert.rejects(stat(takeoverGuardPath(lockFile)), { code: 'ENOENT' }, 'the guard was left behind');
    } finally {
      await lock.release();
    }
  });

  test('PID reuse: a live process with the holder\'s PID but another start time is not the holder', async () => {
    const lockFile = join(dir, 'reuse.lock');
    await mkdir(lockFile);
    const { ino, birthtimeMs: lockBirth } = await stat(lockFile);
    // Our own PID is alive, but the record says it started at another time: a reused PID.
    await writeFile(
      lockInfoPath(lockFile),
      JSON.stringify({ pid: process.pid === 1 ? 2 : 1, host: hostname(), startedAt: new Date().toISOString(), procStart: '1', lockIno: ino, lockBirth }),
    );
    const pid1Start = processStartTime(1);
    if (pid1Start === '1') throw new Error('init started at tick 1: pick another fake start time');
    const lock = await acquireRunLock(lockFile, { onTakeover: () => undefined });
    await lock.release();
    // The same record with the right start time is a live holder.
    await mkdir(lockFile);
    await writeFile(
      lockInfoPath(lockFile),
      JSON.stringify({ pid: 1, host: hostname(), startedAt: new Date().toISOString(), procStart: pid1Start, lockIno: (await stat(lockFile)).ino, lockBirth: (await stat(lockFile)).birthtimeMs }),
    );
    await assert.rejects(acquireRunLock(lockFile), isLockError(/held by pid 1 since .*another fnpoll run is active/));
    await rm(lockFile, { recursive: true });
  });

  test('a new holder whose owner file is not written yet is not mistaken for the dead one before it', async () => {
    const lockFile = join(dir, 'fresh.lock');
    await mkdir(lockFile);
    // The owner file of a dead holder of an older directory (another inode).
    await writeFile(
      lockInfoPath(lockFile),
      JSON.stringify({ pid: 999_999_999, host: hostname(), startedAt: new Date().toISOString(), lockIno: (await stat(lockFile)).ino + 1 }),
    );
    await assert.rejects(acquireRunLock(lockFile), isLockError(/held by an unknown process .*\(its holder is starting or just ended\)$/));
    // Without an owner file of its own for longer than the grace period, its holder died early.
    await makeOld(lockFile, OWNERLESS_GRACE_MS + 1_000);
    const lock = await acquireRunLock(lockFile, { onTakeover: () => undefined });
    await lock.release();
  });

  test('two runs take over one dead lock at once: never both hold it, and a loser is told who', async () => {
    let refusals = 0;
    for (let round = 0; round < 8; round++) {
      const lockFile = join(dir, `race${round}.lock`);
      const child = await lockingChild(lockFile);
      child.kill('SIGKILL');
      await once(child, 'exit');
      // Two processes, as two cron runs would be, released at the same instant so the race is real.
      const at = Date.now() + 400;
      const outcomes = await Promise.all([raceChild(lockFile, at), raceChild(lockFile, at)]);
      const held = outcomes.filter((o) => o.startsWith('locked')).map((o) => o.split(' ').slice(1).map(Number) as [number, number]);
      assert.ok(held.length >= 1, outcomes.join('\n'));
      if (held.length === 2) {
        const [[a0, a1], [b0, b1]] = held as [[number, number], [number, number]];
        assert.ok(a1 <= b0 || b1 <= a0, `both held the lock at once:\n${outcomes.join('\n')}`);
      }
      for (const o of outcomes.filter((x) => x.startsWith('refused'))) {
        refusals++;
        assert.match(o, /^refused ELOCKED .*(another fnpoll run is active|is taking it over|starting or just ended)/);
      }
      await rm(lockFile, { recursive: true, force: true });
    }
    assert.ok(refusals > 0, 'the two runs never overlapped: the race was not exercised');
  });

  test('a lock with no owner file still names the lock and its last refresh', async () => {
    const lockFile = join(dir, 'bare.lock');
    await mkdir(lockFile);
    await assert.rejects(acquireRunLock(lockFile), isLockError(/bare\.lock is held by an unknown process \(no owner info, last refreshed \d{4}-/));
  });

  test('a regular file in the way is an I/O error, not "held"', async () => {
    const lockFile = join(dir, 'file.lock');
    await writeFile(lockFile, 'x');
    await assert.rejects(acquireRunLock(lockFile), (err: unknown) => {
      assert.ok(err instanceof IoError, String(err));
      assert.match(err.message, /file\.lock is not a lock directory/);
      return true;
    });
  });

  test('an owner file that cannot be written: one I/O error naming it, the lock released, no temp file left', async () => {
    const sub = join(dir, 'owner');
    await mkdir(sub);
    const lockFile = join(sub, 'run.lock');
    // A directory where the owner file goes: the rename into place fails.
    await mkdir(lockInfoPath(lockFile));
    await assert.rejects(acquireRunLock(lockFile), (err: unknown) => {
      assert.ok(err instanceof IoError, String(err));
      assert.match(err.message, /^cannot write lock owner file .*run\.lock\.info: /);
      return true;
    });
    assert.deepEqual((await readdir(sub)).sort(), ['run.lock.info']);
    await rm(lockInfoPath(lockFile), { recursive: true });
    const lock = await acquireRunLock(lockFile);
    assert.deepEqual((await readdir(sub)).sort(), ['run.lock', 'run.lock.info']);
    await lock.release();
    assert.deepEqual(await readdir(sub), []);
  });

  test('readLockInfo: no lock → undefined', async () => {
    assert.equal(await readLockInfo(join(dir, 'none.lock')), undefined);
  });

  test('a healthy run keeps refreshing; a lost lock is reported through the callback, not thrown', async () => {
    // The one test here that waits on real time: proper-lockfile's refresh timer runs on the wall
    // clock (shortest allowed periods: stale 2 s, refresh 1 s).
    const lockFile = join(dir, 'refresh.lock');
    let report: (m: string) => void = () => {};
    const compromised = new Promise<string>((r) => (report = r));
    const lock = await acquireRunLock(lockFile, { staleMs: 2_000, onCompromised: (m) => report(m) });
    const first = (await stat(lockFile)).mtimeMs;
    let refreshed = first;
    for (let i = 0; i < 50 && refreshed === first; i++) {
      await new Promise((r) => setTimeout(r, 100));
      refreshed = (await stat(lockFile)).mtimeMs;
    }
    assert.notEqual(refreshed, first, 'the lock mtime was never refreshed');
    // Someone else touches the lock (as a takeover would): the next refresh notices.
    await makeOld(lockFile, 60_000);
    // proper-lockfile's timer is unref'd: a referenced timer keeps the loop alive (and bounds the wait).
    let guard: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      guard = setTimeout(() => reject(new Error('onCompromised was never called')), 10_000);
    });
    const message = await Promise.race([compromised, timeout]).finally(() => clearTimeout(guard));
    assert.match(message, /run lock .*refresh\.lock was lost/);
    assert.equal(lock.compromised, true);
    await lock.release(); // no throw, and leaves the (new holder's) lock alone
    assert.ok((await stat(lockFile)).isDirectory());
  });
});
