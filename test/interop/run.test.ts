/**
 * Issue 3: `fnpoll run` (the cron job) against the real binkd: schedule, crash mail, backoff after
 * a refused connection, `reset`, and `--dry-run`. binkd's log counts the sessions it saw.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, stat, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { BinkdHub, freePort, leftoverBinkdProcesses } from '../helpers/binkd.js';
import { TestNode, fileHash, pseudoRandomBytes, sha256 } from '../helpers/node.js';
import { Cleanups, assertExit } from '../helpers/interop.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const HUB_BSO = '139c0001';
const PASSWORD = 'Sekr3tPw';

const cleanups = new Cleanups();
after(async () => {
  await cleanups.run();
  assert.deepEqual(await leftoverBinkdProcesses(), [], 'a binkd process outlived its test');
});

async function startHub(): Promise<BinkdHub> {
  return cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
}

async function makeNode(port: number): Promise<TestNode> {
  return cleanups.makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port, password: PASSWORD }] });
}

/** Connections binkd accepted so far: one `incoming from` line each. */
async function sessionsAt(hub: BinkdHub): Promise<number> {
  return (await hub.log()).match(/incoming from 127\.0\.0\.1/g)?.length ?? 0;
}


interface StatusHubJson {
  name: string;
  due: boolean;
  reason: string;
  consecutiveFailures: number;
  lastAttempt: string | null;
  lastResult: { ok: boolean; kind: string | null; message: string | null } | null;
  nextAttempt: string | null;
}

async function status(node: TestNode): Promise<StatusHubJson> {
  const r = await node.run(['status', '--json']);
  assertExit(r, 0);
  const doc = JSON.parse(r.stdout) as { hubs: StatusHubJson[] };
  assert.equal(doc.hubs.length, 1);
  return doc.hubs[0]!;
}

/** Every path under `dir` with its size and mtime: a fingerprint that any write changes. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = await stat(p);
      out.push(`${p.slice(dir.length)} ${e.isDirectory() ? 'dir' : st.size} ${st.mtimeMs}`);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

describe('fnpoll run against binkd', () => {
  test('a never-polled hub is due; an immediate second run is quiet; a .clo makes the next run call', async () => {
    const hub = await startHub();
    const node = await makeNode(hub.port);

    const first = await node.run(['run']);
    assertExit(first, 0);
    assert.equal(first.stderr, '', 'a successful cron run printed something');
    assert.equal(await sessionsAt(hub), 1, 'the first run did not call the never-polled hub');
    await hub.waitForLog(/done \(from 2:5020\/99@fidonet, OK\b/);
    const st = await status(node);
    assert.equal(st.lastResult?.ok, true);
    assert.equal(st.due, false, `the hub is still due after a successful poll: ${st.reason}`);

    const second = await node.run(['run']);
    assertExit(second, 0);
    assert.equal(second.stderr, '', 'an idle run printed something');
    assert.equal(second.stdout, '');
    assert.equal(await sessionsAt(hub), 1, 'the second run called although nothing was due');

    // Crash mail: due at once, inside poll_frequency (FTS-5005 flavours).
    const data = pseudoRandomBytes(30_000, 81);
    const path = await node.file('crash.bin', data);
    await node.outboundFile(`${HUB_BSO}.clo`, `^${path}\n`);
    const third = await node.run(['run']);
    assertExit(third, 0);
    assert.equal(third.stderr, '');
    assert.equal(await sessionsAt(hub), 2, 'crash mail did not make the run call');
    const log = await hub.waitForLog(/done \(from 2:5020\/99@fidonet, OK\b[^]*done \(from 2:5020\/99@fidonet, OK\b/);
    assert.doesNotMatch(log, /\bfailed\b/);
    assert.match(log, /pwd protected session \(MD5\)/);
    assert.equal(await fileHash(join(hub.inbound, 'crash.bin')), sha256(data));
    assert.ok(!existsSync(path));
    assert.deepEqual(await node.listOutbound(), []);
  });

  test('a refused connection: exit 1, one line; backoff keeps the next run away; reset makes it due', async () => {
    const port = await freePort(); // nothing listens there
    const node = await makeNode(port);

    const first = await node.run(['run']);
    assertExit(first, 1);
    const lines = first.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `expected one line on stderr:\n${first.stderr}`);
    assert.match(lines[0]!, /2:5020\/1@fidonet/);
    assert.match(lines[0]!, new RegExp(`127\\.0\\.0\\.1:${port}\\b.*refused`));

    const st = await status(node);
    assert.equal(st.consecutiveFailures, 1);
    assert.equal(st.lastResult?.ok, false);
    assert.equal(st.lastResult?.kind, 'refused');
    assert.equal(st.due, false);
    assert.ok(st.nextAttempt !== null && Date.parse(st.nextAttempt) > Date.now(), `nextAttempt ${st.nextAttempt} is not in the future`);
    assert.match(st.reason, /backoff/);
    const attempted = st.lastAttempt;

    const second = await node.run(['run']);
    assertExit(second, 0);
    assert.equal(second.stderr, '', 'a run in backoff printed something');
    const st2 = await status(node);
    assert.equal(st2.lastAttempt, attempted, 'the hub was called during its backoff');
    assert.equal(st2.consecutiveFailures, 1);
    assert.equal((await node.log()).match(/"message":"calling /g)?.length, 1, 'a second call was logged');

    const reset = await node.run(['reset', 'hub']);
    assertExit(reset, 0);
    const st3 = await status(node);
    assert.equal(st3.due, true, `not due after reset: ${st3.reason}`);
    assert.equal(st3.consecutiveFailures, 0);

    const third = await node.run(['run']);
    assertExit(third, 1);
    assert.equal((await node.log()).match(/"message":"calling /g)?.length, 2, 'the run after reset did not call');
  });

  test('--dry-run touches nothing: no state, no lock, no flags, no connection', async () => {
    const hub = await startHub();
    const node = await makeNode(hub.port);
    const path = await node.file('queued.bin', pseudoRandomBytes(1_000, 91));
    await node.outboundFile(`${HUB_BSO}.clo`, `^${path}\n`);
    // An expired .hld: a real run deletes it (FTS-5005); a dry run must leave it.
    await writeFile(join(node.outbound, `${HUB_BSO}.hld`), String(Math.floor(Date.now() / 1000) - 3600));
    const old = new Date(Date.now() - 10_000);
    await utimes(join(node.outbound, `${HUB_BSO}.hld`), old, old);
    const before = await snapshot(node.dir);

    for (const args of [['run', '--dry-run'], ['now', '--dry-run'], ['--dry-run']]) {
      const r = await node.run(args);
      assertExit(r, 0);
      assert.match(r.stdout, /^poll +hub +2:5020\/1@fidonet/m, `${args.join(' ')}: the plan does not poll the hub:\n${r.stdout}`);
      assert.match(r.stdout, /nothing was changed/);
      assert.deepEqual(await snapshot(node.dir), before, `${args.join(' ')} changed the node's files`);
    }
    assert.ok(!existsSync(node.stateFile), 'a state file was written');
    assert.ok(!existsSync(`${node.stateFile}.lock`), 'a lock was taken');
    assert.ok(!existsSync(node.logFile), 'a log file was written');
    assert.deepEqual(await node.listOutbound(), [`${HUB_BSO}.clo`, `${HUB_BSO}.hld`]);
    assert.equal(await sessionsAt(hub), 0, 'binkd saw a connection');
  });
});
