/**
 * Issue 2: `fnpoll now` against the real binkd (Debian's 1.1a) as the hub. Every test starts its
 * own binkd on a free loopback port and an fnpoll node in a temp dir, runs the real CLI as a
 * child process, and judges the session by file hashes on both ends AND by binkd's own log
 * (binkd exits 0 whatever happens; its log is the only witness of how it saw the session).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BinkdHub, leftoverBinkdProcesses, type BinkdNode } from '../helpers/binkd.js';
import { TestNode, fileHash, pseudoRandomBytes, sha256, type HubSection } from '../helpers/node.js';
import { Cleanups, assertExit } from '../helpers/interop.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
/** Our outbound base name for the hub (FTS-5005: %04x%04x of net/node). */
const HUB_BSO = '139c0001';
const PASSWORD = 'Sekr3tPw';
/** Fixed, whole-second mtimes: binkd passes them on the wire and the receiver must keep them. */
const MTIME = 1_700_000_000;

const cleanups = new Cleanups();
after(async () => {
  await cleanups.run();
  assert.deepEqual(await leftoverBinkdProcesses(), [], 'a binkd process outlived its test');
});

async function startHub(nodes: BinkdNode[], opts: { noCram?: boolean } = {}): Promise<BinkdHub> {
  return cleanups.startHub({ address: HUB, nodes, noCram: opts.noCram });
}

async function makeNode(hub: BinkdHub, section: Partial<HubSection> = {}, more: { performance?: Record<string, string | number> } = {}): Promise<TestNode> {
  return cleanups.makeNode({
    address: US,
    hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD, ...section }],
    ...(more.performance ? { performance: more.performance } : {}),
  });
}

/** A file with pseudo-random content and a fixed mtime under `dir`; returns path and hash. */
async function dataFile(dir: string, name: string, size: number, seed: number): Promise<{ path: string; hash: string; data: Buffer }> {
  await mkdir(dir, { recursive: true });
  const data = pseudoRandomBytes(size, seed);
  const path = join(dir, name);
  await writeFile(path, data);
  await utimes(path, MTIME, MTIME);
  return { path, hash: sha256(data), data };
}

/** name → sha256 of every regular file in `dir` (none when it does not exist). */
async function hashes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isFile()) out.set(e.name, await fileHash(join(dir, e.name)));
  return out;
}

/** What binkd logged from `offset` on: one session's lines when offset is the log length before it. */
async function logSince(hub: BinkdHub, offset: number): Promise<string> {
  return (await hub.log()).slice(offset);
}

/** The session as binkd saw it: authenticated as expected, ended OK, nothing failed. */
function assertBinkdOk(log: string, auth: 'MD5' | 'plain text' = 'MD5'): void {
  assert.match(log, new RegExp(`pwd protected session \\(${auth}\\)`), `binkd did not log a ${auth} session:\n${log}`);
  assert.match(log, /done \(from 2:5020\/99@fidonet, OK\b/, `binkd did not log an OK session:\n${log}`);
  assert.doesNotMatch(log, /\bfailed\b/, `binkd logged a failure:\n${log}`);
}


/** Lines fnpoll printed at error level on stderr (the console sink tags them `error: `). */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /(^|: )error: /.test(l));
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

describe('fnpoll now against binkd', () => {
  test('both directions: netmail and every flow directive in several flavours', async () => {
    const hub = await startHub([{ address: US, password: PASSWORD }]);
    const node = await makeNode(hub);

    // Our side: two netmail packets (> 60 bytes, or binkd-style empty-packet dropping applies)
    // and flow files of five flavours with every directive, including the synonyms.
    const ours = join(node.dir, 'files');
    const netNormal = pseudoRandomBytes(300, 11);
    const netCrash = pseudoRandomBytes(200, 12);
    await node.outboundFile(`${HUB_BSO}.out`, netNormal);
    await node.outboundFile(`${HUB_BSO}.cut`, netCrash);
    const del1 = await dataFile(ours, 'del1.bin', 100_000, 1);
    const trunc1 = await dataFile(ours, 'trunc1.bin', 70_000, 2);
    const keep1 = await dataFile(ours, 'keep1.bin', 5_000, 3);
    const sent1 = await dataFile(ours, 'sent1.bin', 4_000, 4);
    const del2 = await dataFile(ours, 'del2.bin', 40_000, 5);
    const empty = await dataFile(ours, 'empty.bin', 0, 6);
    const spaced = await dataFile(ours, 'with space.txt', 1_234, 7);
    const trunc2 = await dataFile(ours, 'trunc2.bin', 33_000, 8);
    const keep2 = await dataFile(ours, 'keep2.bin', 9_000, 9);
    const dash = await dataFile(ours, 'dash.bin', 3_000, 10);
    const bang = await dataFile(ours, 'bang.bin', 3_100, 13);
    const at = await dataFile(ours, 'at.bin', 3_200, 14);
    const big = await dataFile(ours, 'big.bin', 1_500_000, 15);
    await node.outboundFile(`${HUB_BSO}.flo`, [`^${del1.path}`, `#${trunc1.path}`, keep1.path, `~${sent1.path}`, ''].join('\n'));
    await node.outboundFile(`${HUB_BSO}.clo`, [`^${del2.path}`, `^${empty.path}`, `^${spaced.path}`, ''].join('\r\n'));
    await node.outboundFile(`${HUB_BSO}.hlo`, [`#${trunc2.path}`, `-${dash.path}`, ''].join('\n'));
    await node.outboundFile(`${HUB_BSO}.dlo`, [`${keep2.path}`, `!${bang.path}`, `@${at.path}`, ''].join('\n'));
    await node.outboundFile(`${HUB_BSO}.ilo`, [`^${big.path}`, ''].join('\n'));

    // The hub's side: files for us in a flow file, a hold flow file and a netmail packet.
    const theirs = join(hub.dir, 'files');
    const h1 = await dataFile(theirs, 'hub1.bin', 250_000, 21);
    const h2 = await dataFile(theirs, 'hub two.txt', 777, 22);
    const h3 = await dataFile(theirs, 'hold.bin', 12_345, 23);
    const hubNet = pseudoRandomBytes(400, 24);
    const base = hub.outboundFor(US);
    await writeFile(`${base}.flo`, `^${h1.path}\n^${h2.path}\n`);
    await writeFile(`${base}.hlo`, `^${h3.path}\n`);
    await writeFile(`${base}.out`, hubNet);

    const r = await node.run(['now']);
    assertExit(r, 0);
    const log = await hub.log();
    assertBinkdOk(log);

    // At the hub: everything we queued except the `~`/`!` lines, byte for byte.
    const atHub = await hashes(hub.inbound);
    const expectSent = [del1, trunc1, keep1, del2, empty, spaced, trunc2, keep2, dash, at, big];
    for (const f of expectSent) {
      const name = f.path.slice(ours.length + 1);
      assert.equal(atHub.get(name), f.hash, `${name} did not arrive intact at the hub (hub inbound: ${[...atHub.keys()].join(', ')})`);
    }
    assert.ok(!atHub.has('sent1.bin'), '`~` line was sent again');
    assert.ok(!atHub.has('bang.bin'), '`!` line was sent again');
    // Netmail goes out under a .pkt name (FTS-5005); which name is ours to choose.
    const pktHashes = [...atHub].filter(([n]) => n.endsWith('.pkt')).map(([, h]) => h).sort();
    assert.deepEqual(pktHashes, [sha256(netNormal), sha256(netCrash)].sort(), 'netmail packets did not arrive as .pkt');
    assert.equal(atHub.size, expectSent.length + 2, `unexpected files at the hub: ${[...atHub.keys()].join(', ')}`);
    assert.doesNotMatch(log, /sent1\.bin|bang\.bin/, 'binkd saw a file whose line was already marked sent');

    // Directives applied on our side.
    for (const f of [del1, del2, empty, spaced, dash, big]) assert.ok(!existsSync(f.path), `${f.path} (^ / -) still exists`);
    for (const f of [trunc1, trunc2]) assert.equal((await stat(f.path)).size, 0, `${f.path} (#) was not truncated`);
    for (const f of [keep1, keep2, at, sent1, bang]) assert.equal(await fileHash(f.path), f.hash, `${f.path} (kept) changed`);
    const left = await node.listOutbound();
    assert.deepEqual(
      left,
      [],
      `our outbound still holds ${left.join(', ')} (flow files with every line done, sent netmail and flags must be gone)`,
    );

    // At our end: the hub's files, byte for byte, with the sender's mtime; its netmail as a .pkt.
    const atUs = await hashes(node.inbound);
    for (const f of [h1, h2, h3]) {
      const name = f.path.slice(theirs.length + 1);
      assert.equal(atUs.get(name), f.hash, `${name} did not arrive intact here (inbound: ${[...atUs.keys()].join(', ')})`);
      assert.equal(Math.floor((await stat(join(node.inbound, name))).mtimeMs / 1000), MTIME, `${name}: mtime not kept`);
    }
    assert.deepEqual(
      [...atUs].filter(([n]) => n.endsWith('.pkt')).map(([, h]) => h),
      [sha256(hubNet)],
      `the hub's netmail did not arrive as one .pkt (inbound: ${[...atUs.keys()].join(', ')})`,
    );
    assert.equal(atUs.size, 4, `unexpected files here: ${[...atUs.keys()].join(', ')}`);
    assert.deepEqual(await hashes(node.insecureInbound), new Map(), 'a secure session put files in the insecure inbound');
    // binkd applied its own `^` directives and removed its flow files.
    assert.deepEqual((await readdir(hub.outbound)).sort(), [], 'binkd did not clear its outbound for us');
  });

  test('one name twice (FTN-NOTES §8): binkd keeps the session; the namesake goes in the next batch', async () => {
    const hub = await startHub([{ address: US, password: PASSWORD }]);
    const node = await makeNode(hub);
    const ours = join(node.dir, 'files');
    const a = await dataFile(join(ours, 'd1'), 'same.bin', 10_000, 121);
    const b = await dataFile(join(ours, 'd2'), 'same.bin', 12_000, 122);
    const twice = await dataFile(ours, 'twice.bin', 5_000, 123);
    // The same file on three lines of two flow files, and two different files with one name.
    await node.outboundFile(`${HUB_BSO}.flo`, `^${a.path}\n#${twice.path}\n^${twice.path}\n`);
    await node.outboundFile(`${HUB_BSO}.clo`, `^${b.path}\n${twice.path}\n`);

    const r = await node.run(['now']);
    assertExit(r, 0);
    const log = await hub.log();
    assertBinkdOk(log);
    assert.equal(log.match(/rcvd msg FILE twice\.bin/g)?.length, 1, 'one file listed three times was offered more than once');
    // binkd renames the second same.bin to same.bin.1; which one came first is the flavour order.
    const atHub = await hashes(hub.inbound);
    assert.deepEqual([atHub.get('same.bin'), atHub.get('same.bin.1')].sort(), [a.hash, b.hash].sort());
    assert.equal(atHub.get('twice.bin'), twice.hash);
    assert.ok(!existsSync(a.path) && !existsSync(b.path));
    // Listed as keep, truncate and delete: the least destructive directive wins.
    assert.equal(await fileHash(twice.path), twice.hash);
    assert.deepEqual(await node.listOutbound(), []);
  });

  test('wrong password: exit 1, one error line, binkd logs the bad password, nothing moves', async () => {
    const hub = await startHub([{ address: US, password: PASSWORD }]);
    const node = await makeNode(hub, { password: 'NotTheRightOne' });
    const ours = await dataFile(join(node.dir, 'files'), 'mine.bin', 20_000, 31);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${ours.path}\n`);
    const theirs = await dataFile(join(hub.dir, 'files'), 'theirs.bin', 20_000, 32);
    const base = hub.outboundFor(US);
    await writeFile(`${base}.flo`, `^${theirs.path}\n`);

    const r = await node.run(['now']);
    assertExit(r, 1);
    const errors = errorLines(r.stderr);
    assert.equal(errors.length, 1, `expected one error line on stderr:\n${r.stderr}`);
    assert.match(errors[0]!, /2:5020\/1@fidonet/, 'the error line does not name the hub');
    assert.match(errors[0]!, /Bad password/, 'the error line does not say why');

    const log = await hub.log();
    assert.match(log, /incorrect password/, `binkd did not log the bad password:\n${log}`);
    assert.match(log, /send message ERR Bad password/);
    assert.match(log, /done \(from 2:5020\/99@fidonet, failed/);
    assert.doesNotMatch(log, /rcvd msg FILE|send message FILE/, 'a file was offered after a failed login');
    assert.deepEqual(await hashes(hub.inbound), new Map());
    assert.deepEqual(await hashes(hub.insecureInbound), new Map());
    assert.deepEqual(await hashes(node.inbound), new Map());
    assert.deepEqual(await hashes(node.insecureInbound), new Map());
    // Both queues are intact: our flow line unmarked, the file still there; binkd's too.
    assert.equal(await readFile(join(node.outbound, `${HUB_BSO}.flo`), 'utf8'), `^${ours.path}\n`);
    assert.equal(await fileHash(ours.path), ours.hash);
    assert.equal(await readFile(`${base}.flo`, 'utf8'), `^${theirs.path}\n`);
    assert.deepEqual(
      (await node.listOutbound()).filter((n) => /\.(bsy|csy)$/.test(n)),
      [],
      'busy flags left behind after a failed session',
    );
    const state = (await node.state()) as { hubs: Record<string, { consecutiveFailures: number; lastResult: { ok: boolean; kind?: string; remote?: string } }> };
    assert.equal(state.hubs['hub']?.consecutiveFailures, 1);
    assert.deepEqual(
      { ok: state.hubs['hub']?.lastResult.ok, kind: state.hubs['hub']?.lastResult.kind, remote: state.hubs['hub']?.lastResult.remote },
      { ok: false, kind: 'auth', remote: 'Bad password' },
    );
    // Issue 14: the line says when the next attempt is, and how to retry at once.
    assert.match(errors[0]!, /; next attempt \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(in [45]h[^)]*\); check the password, then `fnpoll reset hub` retries at once$/);

    // The sysop fixes the password: the next cron run calls at once instead of waiting retry_max.
    const text = await readFile(node.configPath, 'utf8');
    await writeFile(node.configPath, text.replace('password = NotTheRightOne', `password = ${PASSWORD}`));
    const fixed = await node.run(['run']);
    assertExit(fixed, 0);
    assert.match(fixed.stderr, /password or host changed in the config: the backoff the old one earned is cleared/);
    assert.equal(await fileHash(join(hub.inbound, 'mine.bin')), ours.hash);
  });

  test('hub without CRAM: refused by default without the password on the wire; use_cram = no works', async () => {
    const hub = await startHub([{ address: US, password: PASSWORD }], { noCram: true });
    const node = await makeNode(hub);
    const ours = await dataFile(join(node.dir, 'files'), 'plain.bin', 8_000, 41);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${ours.path}\n`);

    const refused = await node.run(['now']);
    assertExit(refused, 1);
    const errors = errorLines(refused.stderr);
    assert.equal(errors.length, 1, `expected one error line:\n${refused.stderr}`);
    assert.match(errors[0]!, /use_cram = no/, 'the refusal does not say how to allow plain text');
    let log = await hub.log();
    // loglevel 6: binkd logs every frame it receives ("rcvd msg ..."), so this is the wire.
    assert.match(log, /rcvd msg ADR 2:5020\/99@fidonet/, 'binkd log does not show received frames');
    assert.ok(!log.includes(PASSWORD), `the password went over the wire:\n${log}`);
    assert.doesNotMatch(log, /rcvd msg PWD/, 'an M_PWD was sent to a hub that offered no CRAM');
    assert.ok(existsSync(ours.path), 'a file was sent before authentication');

    const before = log.length;
    await node.writeConfig({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD, extra: { use_cram: 'no' } }] });
    const plain = await node.run(['now']);
    assertExit(plain, 0);
    log = await logSince(hub, before);
    assertBinkdOk(log, 'plain text');
    assert.equal((await hashes(hub.inbound)).get('plain.bin'), ours.hash);
    assert.ok(!existsSync(ours.path));
    // Our debug log shows every frame, but never a password.
    const ourLog = await node.log();
    assert.match(ourLog, /send M_PWD \*+/);
    assert.ok(!ourLog.includes(PASSWORD), 'our log holds the password');
  });

  test('node line -nr: binkd asks for NR mode and files go both ways', async () => {
    const hub = await startHub([{ address: US, password: PASSWORD, flags: '-nr' }]);
    const node = await makeNode(hub);
    const ours = await dataFile(join(node.dir, 'files'), 'to-hub.bin', 150_000, 51);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${ours.path}\n`);
    const theirs = await dataFile(join(hub.dir, 'files'), 'from-hub.bin', 90_000, 52);
    await writeFile(`${hub.outboundFor(US)}.flo`, `^${theirs.path}\n`);

    const r = await node.run(['now']);
    assertExit(r, 0);
    const log = await hub.log();
    assertBinkdOk(log);
    assert.match(log, /send message NUL OPT .*\bNR\b/, 'binkd did not send OPT NR');
    // FTS-1028: we offer with offset -1 and wait for binkd's M_GET.
    assert.match(log, /rcvd msg FILE to-hub\.bin 150000 \d+ -1/, 'our M_FILE did not carry offset -1');
    assert.match(log, /remote is in NR mode/);
    assert.equal((await hashes(hub.inbound)).get('to-hub.bin'), ours.hash);
    assert.equal((await hashes(node.inbound)).get('from-hub.bin'), theirs.hash);
    assert.ok(!existsSync(ours.path));
  });

  test('nr_mode = yes: we ask binkd for NR mode, it offers with -1 and we answer M_GET', async () => {
    const hub = await startHub([{ address: US, password: PASSWORD }]);
    const node = await makeNode(hub, { extra: { nr_mode: 'yes' } });
    const ours = await dataFile(join(node.dir, 'files'), 'up.bin', 60_000, 61);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${ours.path}\n`);
    const theirs = await dataFile(join(hub.dir, 'files'), 'down.bin', 80_000, 62);
    await writeFile(`${hub.outboundFor(US)}.flo`, `^${theirs.path}\n`);

    const r = await node.run(['now']);
    assertExit(r, 0);
    const log = await hub.log();
    assertBinkdOk(log);
    assert.match(log, /rcvd msg NUL OPT (.* )?NR\b/);
    assert.match(log, /Remote requests NR mode/);
    assert.match(log, /rcvd msg GET down\.bin 80000 \d+ 0/, 'we did not answer binkd\'s -1 offer with M_GET');
    assert.match(await node.log(), /recv M_FILE down\.bin 80000 \d+ -1/, 'binkd did not offer with -1');
    assert.equal((await hashes(hub.inbound)).get('up.bin'), ours.hash);
    assert.equal((await hashes(node.inbound)).get('down.bin'), theirs.hash);
  });

  test('resume: a SIGKILLed caller leaves a partial at binkd; the next call resends from its offset', async () => {
    const hub = await startHub([{ address: US, password: PASSWORD }]);
    // 4 MiB/s: the 24 MiB file takes about 6 s, so the kill lands mid-file.
    const node = await makeNode(hub, {}, { performance: { bandwidth_limit: '4M' } });
    const big = await dataFile(join(node.dir, 'files'), 'big.bin', 24 << 20, 71);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${big.path}\n`);

    const first = spawnTracked(node, ['now']);
    // Progress at binkd: its temp inbound holds the growing partial (binkd names it *.dt).
    const deadline = Date.now() + 20_000;
    for (;;) {
      const sizes = await Promise.all((await readdir(hub.tempInbound)).map(async (n) => (await stat(join(hub.tempInbound, n))).size));
      if (sizes.some((s) => s >= 1 << 20)) break;
      assert.ok(Date.now() < deadline, `binkd received nothing within 20 s\n${first.stderrText()}`);
      await delay(20);
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.signal, 'SIGKILL');
    const interrupted = await hub.waitForLog(/receiving of big\.bin interrupted at (\d+)/);
    const have = Number(/receiving of big\.bin interrupted at (\d+)/.exec(interrupted)![1]);
    assert.ok(have > 0 && have < big.data.length, `binkd kept ${have} bytes`);

    // A SIGKILLed fnpoll leaves its flags (PID inside) and its run lock behind.
    const flags = (await node.listOutbound()).filter((n) => /\.(bsy|csy)$/.test(n));
    assert.deepEqual(flags, [`${HUB_BSO}.bsy`, `${HUB_BSO}.csy`], 'the killed run left no flags: nothing to take over');
    // The run lock goes stale only after 60 s without a refresh (src/poll/lock.ts); age it rather
    // than wait. The flags are NOT aged: their dead PID alone must make them stale.
    const lock = `${node.stateFile}.lock`;
    const old = new Date(Date.now() - 120_000);
    await utimes(lock, old, old);

    const before = (await hub.log()).length;
    await node.writeConfig({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const second = await node.run(['now']);
    assertExit(second, 0);
    assert.match(second.stderr, /139c0001\.bsy: removed stale flag \(PID \d+, that process is not running\)/);
    assert.match(second.stderr, /139c0001\.csy: removed stale flag/);
    assert.match(second.stderr, new RegExp(`sending big\\.bin from ${have}\\b`), 'we did not resume from binkd\'s offset');
    const log = await logSince(hub, before);
    assertBinkdOk(log);
    assert.match(log, new RegExp(`have ${have} byte\\(s\\) of big\\.bin`));
    assert.match(log, new RegExp(`send message GET big\\.bin ${big.data.length} ${MTIME} ${have}`));
    assert.match(log, new RegExp(`receiving big\\.bin \\(${big.data.length} byte\\(s\\), off ${have}\\)`));
    assert.equal(await fileHash(join(hub.inbound, 'big.bin')), big.hash, 'the resumed file is corrupt');
    assert.ok(!existsSync(big.path));
    assert.deepEqual(await node.listOutbound(), []);
  });
});
