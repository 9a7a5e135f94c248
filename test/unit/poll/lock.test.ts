import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  acquireRunLock,
  lockInfoPath,
  lockTimings,
  readLockInfo,
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
      assert.deepEqual(info, { pid: process.pid, host: hostname(), startedAt: '2026-03-01T12:00:00.000Z' });
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

  test('held by a child process; after kill -9 the lock stays until stale, then is taken over', async () => {
    const lockFile = join(dir, 'child.lock');
    const lockUrl = new URL('../../../src/poll/lock.js', import.meta.url).href;
    const code = `
      const { acquireRunLock } = await import(${JSON.stringify(lockUrl)});
      await acquireRunLock(${JSON.stringify(lockFile)});
      process.stdout.write('locked\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(child.stdout, 'data');
      await assert.rejects(acquireRunLock(lockFile), isLockError(new RegExp(`held by pid ${child.pid} since `)));
      const seen = await readLockInfo(lockFile);
      assert.equal(seen?.owner?.pid, child.pid);
      assert.equal(seen?.ownerAlive, true);
      assert.equal(seen?.stale, false);
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    // kill -9 ran no exit handler: the lock is still there and still fresh.
    await assert.rejects(acquireRunLock(lockFile), isLockError(/held by pid/));
    const dead = await readLockInfo(lockFile);
    assert.equal(dead?.ownerAlive, false);
    // Once it has not been refreshed for the stale period, a new run takes it over.
    await makeOld(lockFile, DEFAULT_LOCK_STALE_MS + 5_000);
    assert.equal((await readLockInfo(lockFile))?.stale, true);
    const lock = await acquireRunLock(lockFile);
    try {
      const info = JSON.parse(await readFile(lockInfoPath(lockFile), 'utf8'));
      assert.equal(info.pid, process.pid);
    } finally {
      await lock.release();
    }
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
