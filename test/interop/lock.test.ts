/**
 * Issue 3: the run lock against the real binkd. Five cron runs started at once make exactly one
 * session; a run killed with SIGKILL leaves its lock, flags and a partial at binkd, and the next
 * run takes all of them over once the lock is stale.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BinkdHub, leftoverBinkdProcesses } from '../helpers/binkd.js';
import { TestNode, fileHash, pseudoRandomBytes, sha256 } from '../helpers/node.js';
import { Cleanups, assertExit } from '../helpers/interop.js';
import { acquireRunLock } from '../../src/poll/lock.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const HUB_BSO = '139c0001';
const PASSWORD = 'Sekr3tPw';
/** src/poll/lock.ts DEFAULT_LOCK_STALE_MS is 60 s; a lock this old is certainly stale. */

const cleanups = new Cleanups();
after(async () => {
  await cleanups.run();
  assert.deepEqual(await leftoverBinkdProcesses(), [], 'a binkd process outlived its test');
});

async function startHub(): Promise<BinkdHub> {
  return cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
}

/** A node whose session with the hub is held open by a bandwidth limit (bytes/s). */
async function makeNode(hub: BinkdHub, bandwidthLimit?: string): Promise<TestNode> {
  return cleanups.makeNode({
    address: US,
    hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }],
    ...(bandwidthLimit ? { performance: { bandwidth_limit: bandwidthLimit } } : {}),
  });
}


function count(text: string, re: RegExp): number {
  return text.match(new RegExp(re.source, 'g'))?.length ?? 0;
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Start fnpoll as a child that is SIGKILLed at cleanup if a failed test left it running. */
function spawnTracked(node: TestNode, args: string[]): ReturnType<TestNode['spawn']> {
  const s = node.spawn(args);
  cleanups.push(async () => {
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await s.done;
  });
  return s;
}

/** Wait until binkd's temp inbound holds a partial of at least `bytes`. */
async function waitForPartial(hub: BinkdHub, bytes: number, what: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const names = await readdir(hub.tempInbound);
    const sizes = await Promise.all(names.map(async (n) => (await stat(join(hub.tempInbound, n))).size));
    if (sizes.some((s) => s >= bytes)) return;
    assert.ok(Date.now() < deadline, `binkd received less than ${bytes} bytes within 20 s\n${what()}`);
    await delay(20);
  }
}

describe('run lock against binkd', () => {
  test('five runs at once: one session at the hub, the other four exit 75 naming the holder', async () => {
    const hub = await startHub();
    // 8 MiB at 2 MiB/s: the winner's session lasts ~4 s, far longer than the others take to start.
    const node = await makeNode(hub, '2M');
    const data = pseudoRandomBytes(8 << 20, 101);
    const path = await node.file('mail.bin', data);
    await node.outboundFile(`${HUB_BSO}.clo`, `^${path}\n`);

    const runs = Array.from({ length: 5 }, () => spawnTracked(node, ['run']));
    const results = await Promise.all(runs.map((r) => r.done));

    const winners = results.map((r, i) => ({ r, pid: runs[i]!.child.pid })).filter(({ r }) => r.code !== 75);
    assert.equal(winners.length, 1, `expected one run to get the lock: exit codes ${results.map((r) => r.code).join(', ')}`);
    const winner = winners[0]!;
    assertExit(winner.r, 0);
    assert.equal(winner.r.stderr, '');
    for (const r of results.filter((x) => x.code === 75)) {
      const lines = r.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, `a locked-out run printed more than one line:\n${r.stderr}`);
      assert.match(lines[0]!, new RegExp(`held by pid ${winner.pid}\\b`), `the line does not name the holder (pid ${winner.pid}): ${lines[0]}`);
    }

    const log = await hub.log();
    assert.equal(count(log, /incoming from 127\.0\.0\.1/), 1, `binkd saw more than one connection:\n${log}`);
    assert.equal(count(log, /done \(from 2:5020\/99@fidonet, OK\b/), 1);
    assert.doesNotMatch(log, /\bfailed\b/);
    assert.equal(await fileHash(join(hub.inbound, 'mail.bin')), sha256(data));
    assert.ok(!existsSync(`${node.stateFile}.lock`), 'the winner left its lock behind');
    assert.deepEqual(await node.listOutbound(), []);
  });

  test('nothing due while another run holds the lock: exit 75 naming it, not a quiet 0', async () => {
    const hub = await startHub();
    const node = await makeNode(hub);
    assertExit(await node.run(['run']), 0);
    // The hub was just polled: nothing is due. The idle check must still see the lock.
    const lock = await acquireRunLock(`${node.stateFile}.lock`);
    try {
      const held = await node.run(['run']);
      assertExit(held, 75);
      assert.match(held.stderr, new RegExp(`held by pid ${process.pid}\\b[^\\n]*another fnpoll run is active`));
    } finally {
      await lock.release();
    }
    const idle = await node.run(['run']);
    assertExit(idle, 0);
    assert.equal(idle.stderr, '');
  });

  test('a SIGKILLed run: its lock is taken over at once by the next run, and the call resumes', async () => {
    const hub = await startHub();
    const node = await makeNode(hub, '2M');
    const data = pseudoRandomBytes(16 << 20, 111);
    const path = await node.file('long.bin', data);
    await node.outboundFile(`${HUB_BSO}.clo`, `^${path}\n`);

    const victim = spawnTracked(node, ['run']);
    await waitForPartial(hub, 1 << 20, victim.stderrText);
    victim.child.kill('SIGKILL');
    assert.equal((await victim.done).signal, 'SIGKILL');
    await hub.waitForLog(/receiving of long\.bin interrupted at \d+/);
    const lock = `${node.stateFile}.lock`;
    assert.ok(existsSync(lock), 'the killed run left no lock: nothing to take over');

    // Fresh (refreshed moments ago), but its holder is dead: no waiting for a stale period.
    const before = (await hub.log()).length;
    await node.writeConfig({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const next = await node.run(['run']);
    assertExit(next, 0);
    // Flags of the dead run (its PID inside) are taken over without any aging.
    assert.equal(next.stderr, '', 'the takeover run printed something (a cron run prints only errors)');
    const ourLog = await node.log();
    assert.match(ourLog, /139c0001\.csy: removed stale flag \(PID \d+, that process is not running\)/);
    assert.match(ourLog, /139c0001\.bsy: removed stale flag/);
    assert.match(ourLog, /sending long\.bin from [1-9]\d*/);
    assert.match(ourLog, new RegExp(`took over run lock .*: pid ${victim.child.pid} is no longer running`));

    const log = (await hub.log()).slice(before);
    assert.match(log, /have [1-9]\d* byte\(s\) of long\.bin/);
    assert.match(log, /done \(from 2:5020\/99@fidonet, OK\b/);
    assert.doesNotMatch(log, /\bfailed\b/);
    assert.equal(await fileHash(join(hub.inbound, 'long.bin')), sha256(data));
    assert.ok(!existsSync(lock), 'the takeover run left the lock behind');
    assert.deepEqual(await node.listOutbound(), []);
  });
});
