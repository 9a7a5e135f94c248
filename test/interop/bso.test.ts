/**
 * Issue 4: BSO fidelity against the real binkd (Debian's 1.1a) as the hub. fnpoll's outbound is
 * laid out the way tossers and binkd lay it out [FTS-5005]: zones, points, domains, flavours,
 * file requests, poll requests, empty netmail, flow files of every shape, a crash mid-session,
 * and on the receiving side name clashes, hostile names, min_free and resume.
 *
 * Each test starts its own binkd on a free loopback port and judges by binkd's log (binkd exits
 * 0 whatever happens) and by the bytes on both ends.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { leftoverBinkdProcesses } from '../helpers/binkd.js';
import { fileHash, pseudoRandomBytes, sha256 } from '../helpers/node.js';
import { Cleanups, assertExit, dataFile as makeDataFile, escapeRe, hashes, sessions, waitFor, type DataFile } from '../helpers/interop.js';
import { parseFlowFile } from '../../src/bso/outbound.js';

const US = '2:5020/99@fidonet';
const HUB = '2:5020/1@fidonet';
const PASSWORD = 'Sekr3tPw';
/** Whole-second mtime for every test file: binkd passes it on the wire. */
const MTIME = 1_700_000_000;
/** Larger than 60 bytes: binkd (and we) drop smaller netmail packets as empty. */
const NETMAIL_SIZE = 200;
/** src/poll/lock.ts treats a run lock untouched for 60 s as stale; age it rather than wait. */
const STALE_LOCK_AGE_MS = 120_000;

const cleanups = new Cleanups();
const { startHub, makeNode, tempDir } = cleanups;
const dataFile = (dir: string, name: string, size: number, seed: number): Promise<DataFile> => makeDataFile(dir, name, size, seed, MTIME);
after(async () => {
  await cleanups.run();
  assert.deepEqual(await leftoverBinkdProcesses(), [], 'a binkd process outlived its test');
});

/** Write a file (creating its directory) and return its path. */
async function put(path: string, data: string | Buffer): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, data);
  return path;
}

/** Every regular file under `dir`, as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name), join(rel, e.name));
      else out.push(join(rel, e.name));
    }
  };
  await walk(dir, '');
  return out.sort();
}

/** binkd saw an authenticated session from `from` end OK and logged no failure. */
function assertBinkdOk(log: string, from = US): void {
  assert.match(log, /pwd protected session \(MD5\)/, `binkd did not log a protected session:\n${log}`);
  assert.match(log, new RegExp(`done \\(from ${escapeRe(from)}, OK\\b`), `binkd did not log an OK session:\n${log}`);
  assert.doesNotMatch(log, /\bfailed\b/, `binkd logged a failure:\n${log}`);
}

/** The files binkd was offered, in order: name and size of each `rcvd msg FILE`. */
function offered(log: string): { name: string; size: number }[] {
  return [...log.matchAll(/rcvd msg FILE (\S+) (\d+) /g)].map((m) => ({ name: m[1]!, size: Number(m[2]) }));
}

describe('outbound layout against binkd hubs', () => {
  test('zones: outbound.zzz in any letter case and outbound.<our zone> reach hubs in those zones', async () => {
    const z2 = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    // A hub in zone 3 of the same domain: binkd's default zone is its own (3), so its files for
    // us (zone 2) live in its outbound.002.
    const z3 = await startHub({ address: '3:633/1@fidonet', nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({
      address: US,
      hubs: [
        { name: 'z2', address: HUB, port: z2.port, password: PASSWORD },
        { name: 'z3', address: '3:633/1@fidonet', port: z3.port, password: PASSWORD },
      ],
    });
    const files = join(node.dir, 'files');
    const a = await dataFile(files, 'root.bin', 3_000, 1);
    const b = await dataFile(files, 'dot002.bin', 3_100, 2);
    const c = await dataFile(files, 'dot003.bin', 3_200, 3);
    const d = await dataFile(files, 'upper003.bin', 3_300, 4);
    const netmail = pseudoRandomBytes(NETMAIL_SIZE, 5);
    await node.outboundFile('139c0001.flo', `^${a.path}\n`);
    // FTS-5005 §2: a tosser may write our own zone with its extension; binkd never reads it.
    await put(join(`${node.outbound}.002`, '139c0001.dlo'), `^${b.path}\n`);
    await put(join(`${node.outbound}.003`, '02790001.flo'), `^${c.path}\n`);
    await put(join(`${node.outbound}.003`, '02790001.out'), netmail);
    // Upper-case zone directory and names (binkd's outbound scan accepts them too).
    await put(join(node.dir, 'OUTBOUND.003', '02790001.CLO'), `^${d.path}\n`);

    const back = await dataFile(join(z3.dir, 'files'), 'from-zone3.bin', 2_500, 6);
    await writeFile(`${z3.outboundFor(US)}.flo`, `^${back.path}\n`);
    assert.match(z3.outboundFor(US), /\/outbound\.002\/139c0063$/, 'the zone-3 hub keeps our files in its outbound.002');

    const r = await node.run(['now']);
    assertExit(r, 0);
    assertBinkdOk(await z2.log());
    assertBinkdOk(await z3.log());

    assert.deepEqual(await hashes(z2.inbound), new Map([[a.name, a.hash], [b.name, b.hash]]), 'zone 2 hub received the wrong files');
    const at3 = await hashes(z3.inbound);
    const pkts = [...at3].filter(([n]) => /^[0-9a-f]{8}\.pkt$/.test(n));
    assert.deepEqual(pkts.map(([, h]) => h), [sha256(netmail)], `zone 3 hub: netmail not received as one .pkt (${[...at3.keys()].join(', ')})`);
    assert.equal(at3.get(c.name), c.hash);
    assert.equal(at3.get(d.name), d.hash);
    assert.equal(at3.size, 3, `zone 3 hub received more: ${[...at3.keys()].join(', ')}`);
    assert.equal((await hashes(node.inbound)).get(back.name), back.hash, 'the zone-3 hub\'s file did not arrive');

    for (const dir of [node.outbound, `${node.outbound}.002`, `${node.outbound}.003`, join(node.dir, 'OUTBOUND.003')]) {
      assert.deepEqual(await filesUnder(dir), [], `${dir} still holds files`);
    }
  });

  test('a hub with AKAs in two zones gets the mail for both in one session', async () => {
    // binkd presents every `address` in its M_ADR; we serve each AKA we can flag busy.
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }], extraConfig: 'address 3:633/1@fidonet' });
    const node = await makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const files = join(node.dir, 'files');
    const main = await dataFile(files, 'main-aka.bin', 1_000, 7);
    const other = await dataFile(files, 'zone3-aka.bin', 1_100, 8);
    await node.outboundFile('139c0001.flo', `^${main.path}\n`);
    // Hold flavour: it never makes a call, but goes out when the AKA is in session anyway.
    await put(join(`${node.outbound}.003`, '02790001.hlo'), `^${other.path}\n`);

    const r = await node.run(['now']);
    assertExit(r, 0);
    const log = await hub.log();
    assert.match(log, /send message ADR {2}2:5020\/1@fidonet 3:633\/1@fidonet/, `binkd did not present both AKAs:\n${log}`);
    assertBinkdOk(log);
    assert.deepEqual(await hashes(hub.inbound), new Map([main, other].map((f) => [f.name, f.hash])));
    assert.deepEqual(await filesUnder(`${node.outbound}.003`), [], 'files or a .bsy left for the second AKA');
  });

  test('points: a hub that is a point (NNNNnnnn.pnt/0000pppp.*), and our own point address', async () => {
    // 1. The hub is the point 2:5020/1.5.
    const pointHub = await startHub({ address: '2:5020/1.5@fidonet', nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({ address: US, hubs: [{ name: 'pnt', address: '2:5020/1.5@fidonet', port: pointHub.port, password: PASSWORD }] });
    const files = join(node.dir, 'files');
    const p1 = await dataFile(files, 'to-point.bin', 4_000, 11);
    const p2 = await dataFile(files, 'to-point-upper.bin', 4_100, 12);
    const boss = await dataFile(files, 'to-boss.bin', 4_200, 13);
    const netmail = pseudoRandomBytes(NETMAIL_SIZE, 14);
    await node.outboundFile('139c0001.pnt/00000005.flo', `^${p1.path}\n`);
    await node.outboundFile('139c0001.pnt/00000005.out', netmail);
    await node.outboundFile('139C0001.PNT/00000005.CLO', `^${p2.path}\n`);
    // The boss node's own files are not the point's.
    await node.outboundFile('139c0001.flo', `^${boss.path}\n`);
    const back = await dataFile(join(pointHub.dir, 'files'), 'from-point.bin', 3_000, 15);
    await writeFile(`${pointHub.outboundFor(US)}.flo`, `^${back.path}\n`);

    const r = await node.run(['now']);
    assertExit(r, 0);
    assertBinkdOk(await pointHub.log());
    const atHub = await hashes(pointHub.inbound);
    assert.equal(atHub.get(p1.name), p1.hash);
    assert.equal(atHub.get(p2.name), p2.hash);
    assert.deepEqual([...atHub].filter(([n]) => n.endsWith('.pkt')).map(([, h]) => h), [sha256(netmail)]);
    assert.equal(atHub.size, 3, `the point hub received more: ${[...atHub.keys()].join(', ')}`);
    assert.equal((await hashes(node.inbound)).get(back.name), back.hash);
    assert.deepEqual(await filesUnder(node.outbound), ['139c0001.flo'], 'point files (or flags) left, or the boss node\'s file sent');

    // 2. We are the point 2:5020/1.99 of the hub 2:5020/1: the hub keeps our mail in
    // 139c0001.pnt/00000063.*; our outbound for the hub is plain 139c0001.*.
    const ME = '2:5020/1.99@fidonet';
    const hub = await startHub({ address: HUB, nodes: [{ address: ME, password: PASSWORD }] });
    const me = await makeNode({ address: ME, hubs: [{ name: 'boss', address: HUB, port: hub.port, password: PASSWORD }] });
    const up = await dataFile(join(me.dir, 'files'), 'from-our-point.bin', 5_000, 16);
    await me.outboundFile('139c0001.clo', `^${up.path}\n`);
    const hubBase = hub.outboundFor(ME);
    assert.match(hubBase, /139c0001\.pnt\/00000063$/);
    const down = await dataFile(join(hub.dir, 'files'), 'to-our-point.bin', 5_100, 17);
    await writeFile(`${hubBase}.flo`, `^${down.path}\n`);

    const r2 = await me.run(['now']);
    assertExit(r2, 0);
    assertBinkdOk(await hub.log(), ME);
    assert.equal((await hashes(hub.inbound)).get(up.name), up.hash);
    assert.equal((await hashes(me.inbound)).get(down.name), down.hash);
    assert.deepEqual(await filesUnder(me.outbound), []);
  });

  test('two domains, each with its own outbound root; the second domain has a hub outside its default zone', async () => {
    const FSX_US = '21:1/999@fsxnet';
    const fido = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const fsx = await startHub({ address: '21:1/100@fsxnet', nodes: [{ address: FSX_US, password: PASSWORD }] });
    const fsx22 = await startHub({ address: '22:1/1@fsxnet', nodes: [{ address: FSX_US, password: PASSWORD }] });
    const fidoHub = { name: 'fido', address: HUB, port: fido.port, password: PASSWORD };
    const node = await makeNode({ address: US, aka: [FSX_US], hubs: [fidoHub] });
    const fsxRoot = join(node.dir, 'fsxnet');
    await node.writeConfig({
      address: US,
      aka: [FSX_US],
      hubs: [
        fidoHub,
        // binkd: `domain fsxnet <root> 21`: zone 21 in the root, zone 22 in <root>.016.
        { name: 'fsx', address: '21:1/100@fsxnet', port: fsx.port, password: PASSWORD, extra: { outbound: fsxRoot, address: FSX_US } },
        { name: 'fsx22', address: '22:1/1@fsxnet', port: fsx22.port, password: PASSWORD, extra: { outbound: fsxRoot, address: FSX_US } },
      ],
    });
    const files = join(node.dir, 'files');
    const f = await dataFile(files, 'fidonet.bin', 2_000, 21);
    const x = await dataFile(files, 'fsxnet.bin', 2_100, 22);
    const y = await dataFile(files, 'fsxnet-zone22.bin', 2_200, 23);
    const decoy = await dataFile(files, 'decoy.bin', 2_300, 24);
    await node.outboundFile('139c0001.flo', `^${f.path}\n`);
    await put(join(fsxRoot, '00010064.flo'), `^${x.path}\n`);
    await put(join(`${fsxRoot}.016`, '00010001.flo'), `^${y.path}\n`);
    // 21:1/100 in the fidonet tree is another node (21:1/100@fidonet): not the fsxnet hub's.
    await put(join(`${node.outbound}.015`, '00010064.flo'), `^${decoy.path}\n`);
    const back = await dataFile(join(fsx.dir, 'files'), 'from-fsxnet.bin', 1_500, 25);
    await writeFile(`${fsx.outboundFor(FSX_US)}.flo`, `^${back.path}\n`);

    const r = await node.run(['now']);
    assertExit(r, 0);
    assertBinkdOk(await fido.log());
    assertBinkdOk(await fsx.log(), FSX_US);
    assertBinkdOk(await fsx22.log(), FSX_US);
    assert.deepEqual(await hashes(fido.inbound), new Map([[f.name, f.hash]]));
    assert.deepEqual(await hashes(fsx.inbound), new Map([[x.name, x.hash]]));
    assert.deepEqual(await hashes(fsx22.inbound), new Map([[y.name, y.hash]]));
    assert.equal((await hashes(node.inbound)).get(back.name), back.hash);
    assert.deepEqual(await filesUnder(fsxRoot), []);
    assert.deepEqual(await filesUnder(`${fsxRoot}.016`), []);
    assert.deepEqual(await filesUnder(`${node.outbound}.015`), ['00010064.flo'], 'the decoy was touched');
    assert.ok(existsSync(decoy.path));

    // Control files and poll requests go where binkd, configured with `domain fsxnet <root> 21`,
    // looks for them: zone 22 in <root>.016, not in the root.
    const poll = await node.run(['poll', 'fsx', 'fsx22']);
    assertExit(poll, 0);
    assert.deepEqual(await filesUnder(fsxRoot), ['00010064.dlo']);
    assert.deepEqual(await filesUnder(`${fsxRoot}.016`), ['00010001.dlo']);
  });
});

describe('what is sent, and when', () => {
  test('flavour order: immediate, crash, direct, normal, hold; netmail before files within a flavour', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const files = join(node.dir, 'files');
    const order: string[] = [];
    const flavours = [
      ['i', 'immediate'],
      ['c', 'crash'],
      ['d', 'direct'],
      ['', 'normal'],
      ['h', 'hold'],
    ] as const;
    // Written in reverse, so that neither creation order nor directory order explains the result.
    for (const [i, [letter, name]] of [...flavours.entries()].reverse()) {
      const ext = letter === '' ? ['out', 'flo'] : [`${letter}ut`, `${letter}lo`];
      // Netmail leaves under a generated .pkt name: tell the packets apart by size.
      await node.outboundFile(`139c0001.${ext[0]}`, pseudoRandomBytes(NETMAIL_SIZE + i, 30 + i));
      const file = await dataFile(files, `${name}.bin`, 1_000 + i, 40 + i);
      await node.outboundFile(`139c0001.${ext[1]}`, `^${file.path}\n`);
    }
    for (const [i, [, name]] of flavours.entries()) order.push(`pkt:${NETMAIL_SIZE + i}`, `${name}.bin`);

    const r = await node.run(['now']);
    assertExit(r, 0);
    const log = await hub.log();
    assertBinkdOk(log);
    const seen = offered(log).map((o) => (o.name.endsWith('.pkt') ? `pkt:${o.size}` : o.name));
    assert.deepEqual(seen, order);
  });

  test('run: hold mail, a .req and empty netmail never make a call; immediate does, and everything goes', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({
      address: US,
      hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD, extra: { poll_frequency: '1d' } }],
    });
    const first = await node.run(['run']);
    assertExit(first, 0);
    await hub.waitForLog(/done \(from 2:5020\/99@fidonet, OK\b/);
    assert.equal(sessions(await hub.log()), 1);

    const files = join(node.dir, 'files');
    const held = await dataFile(files, 'held.bin', 2_000, 51);
    const holdNetmail = pseudoRandomBytes(NETMAIL_SIZE, 52);
    const req = 'ALLFILES\r\nFILES.ZIP !secret\r\n';
    await node.outboundFile('139c0001.hlo', `^${held.path}\n`);
    await node.outboundFile('139c0001.hut', holdNetmail);
    await node.outboundFile('139c0001.req', req);
    // 60 bytes: binkd's limit for an empty packet (a bare header). Crash flavour, yet no call.
    await node.outboundFile('139c0001.cut', pseudoRandomBytes(60, 53));
    for (const args of [['run'], ['run', '--verbose']]) {
      const quiet = await node.run(args);
      assertExit(quiet, 0);
    }
    assert.equal(sessions(await hub.log()), 1, 'hold mail, a .req or a 60-byte packet made a call');

    const urgent = await dataFile(files, 'urgent.bin', 2_100, 54);
    await node.outboundFile('139c0001.ilo', `^${urgent.path}\n`);
    const second = await node.run(['run']);
    assertExit(second, 0);
    assert.equal(second.stderr, '');
    const log = await hub.log();
    assert.equal(sessions(log), 2, 'immediate mail did not make the run call');
    assertBinkdOk(log);

    const atHub = await hashes(hub.inbound);
    assert.equal(atHub.get(urgent.name), urgent.hash);
    assert.equal(atHub.get(held.name), held.hash, 'hold mail is sent once the hub is called');
    const pkts = [...atHub].filter(([n]) => n.endsWith('.pkt'));
    assert.deepEqual(pkts.map(([, h]) => h), [sha256(holdNetmail)], 'the 60-byte packet was sent, or the hold packet was not');
    const reqs = [...atHub].filter(([n]) => n.endsWith('.req'));
    assert.equal(reqs.length, 1, `one .req expected at the hub: ${[...atHub.keys()].join(', ')}`);
    assert.match(reqs[0]![0], /^[0-9a-f]{8}\.req$/);
    assert.notEqual(reqs[0]![0], '139c0001.req', 'the .req went out under its outbound name');
    assert.equal(reqs[0]![1], sha256(Buffer.from(req)));
    assert.equal(atHub.size, 4, `unexpected files at the hub: ${[...atHub.keys()].join(', ')}`);
    assert.deepEqual(await node.listOutbound(), [], 'the .req, the empty packet or a flow file is left');
    // Said in the log (and at --verbose), never in a quiet cron run's output (asserted above).
    assert.match(await node.log(), /removed empty netmail packet \S*139c0001\.cut \(60 bytes or less/);
  });

  test('file request: `now` with only a .req; the answer lands in the inbound; the .req goes only after success', async () => {
    // binkd answers file requests through SRIF: it runs this script with the request list and
    // sends what the script writes to the response list, in the session's next batch.
    const srif = await tempDir('fnpoll-srif-');
    const served = await dataFile(join(srif, 'files'), 'ANSWER.TXT', 7_000, 61);
    const script = join(srif, 'srif.sh');
    await writeFile(
      script,
      [
        '#!/bin/sh',
        `req=$(sed -n 's/^RequestList //p' "$1")`,
        `rsp=$(sed -n 's/^ResponseList //p' "$1")`,
        `cp "$req" ${srif}/seen.req`,
        `tr -d '\\r' < "$req" | while read -r name rest; do`,
        `  if [ -f "${srif}/files/$name" ]; then echo "+${srif}/files/$name" >> "$rsp"; fi`,
        'done',
        '',
      ].join('\n'),
    );
    await chmod(script, 0o755);
    const hub = await startHub({
      address: HUB,
      nodes: [{ address: US, password: PASSWORD }],
      extraConfig: `exec "/bin/sh ${script} *S" *.req *.REQ`,
    });
    const node = await makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: 'WrongPw' }] });
    const req = 'ANSWER.TXT\r\nNOSUCH.ZIP\r\n';
    const reqPath = await node.outboundFile('139c0001.req', req);

    const failed = await node.run(['now']);
    assertExit(failed, 1);
    assert.equal(await readFile(reqPath, 'utf8'), req, 'the .req did not survive a failed session');

    await node.writeConfig({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const before = (await hub.log()).length;
    const r = await node.run(['now']);
    assertExit(r, 0);
    const log = (await hub.log()).slice(before);
    assertBinkdOk(log);
    const sentAs = offered(log).filter((o) => o.name.endsWith('.req'));
    assert.equal(sentAs.length, 1, `binkd was not offered one .req:\n${log}`);
    assert.match(sentAs[0]!.name, /^[0-9a-f]{8}\.req$/, 'the .req did not go out under a unique name');
    assert.equal(await readFile(join(srif, 'seen.req'), 'utf8'), req, 'binkd did not get our request list');
    assert.equal((await hashes(node.inbound)).get(served.name), served.hash, 'the answer did not land in the inbound');
    assert.ok(!existsSync(reqPath), 'the .req is still queued after a successful session');
    assert.deepEqual(await node.listOutbound(), []);
  });

  test('poll requests: `fnpoll poll` queues one without calling; `run` honours it and removes it only after success', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const hubSection = { name: 'hub', address: HUB, port: hub.port, password: PASSWORD, extra: { poll_frequency: '1d' } };
    const node = await makeNode({ address: US, hubs: [hubSection] });
    assertExit(await node.run(['run']), 0);
    await hub.waitForLog(/done \(from 2:5020\/99@fidonet, OK\b/);

    const poll = await node.run(['poll', 'hub']);
    assertExit(poll, 0);
    const dlo = join(node.outbound, '139c0001.dlo');
    assert.match(poll.stdout, new RegExp(escapeRe(dlo)));
    assert.equal((await stat(dlo)).size, 0, 'the poll request is not an empty .dlo');
    assert.equal(sessions(await hub.log()), 1, '`fnpoll poll` called the hub');
    assert.deepEqual(await node.listOutbound(), ['139c0001.dlo']);

    assertExit(await node.run(['run']), 0);
    assert.equal(sessions(await hub.log()), 2, 'the poll request did not make the run call');
    assert.deepEqual(await node.listOutbound(), [], 'the poll request was not removed after the session');

    // A poll request as binkd makes one (`binkd -P`: an empty flow file); the hub is down.
    await node.outboundFile('139c0001.ilo', '');
    await hub.stop();
    const down = await node.run(['run']);
    assertExit(down, 1);
    assert.deepEqual(await node.listOutbound(), ['139c0001.ilo'], 'the poll request was lost with a failed session');
  });

  test('flow files in LF and CRLF, relative paths, and lines whose files vanished', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const files = join(node.dir, 'files');
    const lf1 = await dataFile(files, 'lf-delete.bin', 3_000, 71);
    const lf2 = await dataFile(files, 'lf-truncate.bin', 3_100, 72);
    const rel = await dataFile(files, 'relative.bin', 3_200, 73);
    const crlf1 = await dataFile(files, 'crlf-delete.bin', 3_300, 74);
    const crlf2 = await dataFile(files, 'crlf-keep.bin', 3_400, 75);
    const gone = await dataFile(files, 'vanished.bin', 3_500, 76);
    const gone2 = await dataFile(files, 'vanished-too.bin', 3_600, 77);
    // Relative paths resolve against the outbound root (src/bso/outbound.ts scanNode).
    await node.outboundFile('139c0001.flo', [`^${lf1.path}`, `^${gone.path}`, `#${lf2.path}`, '^../files/relative.bin', ''].join('\n'));
    await node.outboundFile('139c0001.clo', [`^${crlf1.path}`, `${crlf2.path}`, `^${gone2.path}`, ''].join('\r\n'));
    // The tosser's files vanish after it wrote the flow files.
    await unlink(gone.path);
    await unlink(gone2.path);

    const r = await node.run(['now']);
    assertExit(r, 0);
    const log = await hub.log();
    assertBinkdOk(log);
    assert.deepEqual(
      await hashes(hub.inbound),
      new Map([lf1, lf2, rel, crlf1, crlf2].map((f) => [f.name, f.hash])),
      'the hub did not receive exactly the files that exist',
    );
    for (const f of [gone, gone2]) {
      assert.ok(!log.includes(f.name), `binkd was offered ${f.name}, which does not exist`);
      assert.match(r.stderr, new RegExp(`${escapeRe(f.path)}.*no such file`), `no warning names ${f.path}`);
    }
    assert.ok(!existsSync(lf1.path) && !existsSync(rel.path) && !existsSync(crlf1.path));
    assert.equal((await stat(lf2.path)).size, 0);
    assert.equal(await fileHash(crlf2.path), crlf2.hash);
    // Vanished lines are marked done as binkd does, so no flow file is left behind.
    assert.deepEqual(await node.listOutbound(), []);
  });

  test('a crash mid-session: nothing confirmed is sent again, nothing unconfirmed is dropped', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const section = { name: 'hub', address: HUB, port: hub.port, password: PASSWORD };
    // 64 KiB/s: six 40 KB files take about four seconds, so the kill lands mid-queue.
    const node = await makeNode({ address: US, hubs: [section], performance: { bandwidth_limit: '64k' } });
    const files = join(node.dir, 'files');
    const all = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => dataFile(files, `part${i}.bin`, 40_000, 80 + i)));
    const flo = await node.outboundFile('139c0001.flo', all.map((f) => `^${f.path}`).join('\n') + '\n');

    const first = node.spawn(['now']);
    cleanups.push(async () => {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
      await first.done;
    });
    // Kill once at least two files are confirmed (marked `~` in our flow file).
    await waitFor('two confirmed files', async () => {
      const marked = parseFlowFile(await readFile(flo)).filter((l) => l.sent).length;
      return marked >= 2 ? marked : undefined;
    });
    first.child.kill('SIGKILL');
    assert.equal((await first.done).signal, 'SIGKILL');
    await hub.waitForLog(/done \(from 2:5020\/99@fidonet, failed/);

    const lines = parseFlowFile(await readFile(flo));
    const confirmed = lines.filter((l) => l.sent).map((l) => l.path);
    const pending = lines.filter((l) => !l.sent).map((l) => l.path);
    assert.ok(pending.length > 0, 'the kill came too late: every file was confirmed');

    await utimes(`${node.stateFile}.lock`, new Date(Date.now() - STALE_LOCK_AGE_MS), new Date(Date.now() - STALE_LOCK_AGE_MS));
    await node.writeConfig({ address: US, hubs: [section] });
    const before = (await hub.log()).length;
    const second = await node.run(['now']);
    assertExit(second, 0);
    const log = (await hub.log()).slice(before);
    assertBinkdOk(log);
    const again = offered(log).map((o) => o.name);
    for (const p of confirmed) {
      const name = p.slice(files.length + 1);
      assert.ok(!again.includes(name), `${name} was confirmed before the crash and offered again`);
    }
    for (const p of pending) assert.ok(again.includes(p.slice(files.length + 1)), `${p} was not offered after the crash`);
    assert.deepEqual(await hashes(hub.inbound), new Map(all.map((f) => [f.name, f.hash])), 'the hub does not hold every file exactly once');
    for (const f of all) assert.ok(!existsSync(f.path), `${f.path} was not deleted`);
    assert.deepEqual(await node.listOutbound(), []);
  });
});

describe('control files', () => {
  test('.bsy/.csy of a live process are respected until older than stale_flag_age, then removed with a warning', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({
      address: US,
      hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }],
      poller: { stale_flag_age: '1h' },
    });
    const mail = await dataFile(join(node.dir, 'files'), 'waiting.bin', 2_000, 121);
    await node.outboundFile('139c0001.clo', `^${mail.path}\n`);
    // A flag in binkd's format held by a live process that is not fnpoll (this test runner).
    for (const ext of ['bsy', 'csy']) {
      const flag = await node.outboundFile(`139c0001.${ext}`, `${process.pid}\n`);
      const r = await node.run(['now']);
      // `now` could not do what it was asked: EX_TEMPFAIL (issue 11, defect 1).
      assertExit(r, 75);
      assert.match(r.stderr, new RegExp(`\\.${ext} held by pid ${process.pid}`), `no word of the .${ext}:\n${r.stderr}`);
      assert.equal(sessions(await hub.log()), 0, `fnpoll called a hub flagged by a live .${ext}`);
      assert.equal(await readFile(flag, 'utf8'), `${process.pid}\n`, `fnpoll touched a live .${ext}`);
      if (ext === 'bsy') await unlink(flag);
    }

    // Two hours without a touch (binkd touches its flags every 60 s): stale, PID or not.
    const old = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(node.outbound, '139c0001.csy'), old, old);
    const r = await node.run(['now']);
    assertExit(r, 0);
    assert.match(r.stderr, new RegExp(`139c0001\\.csy: removed stale flag \\(PID ${process.pid}, \\d+ s old \\(stale after 3600 s\\)\\)`));
    assertBinkdOk(await hub.log());
    assert.equal((await hashes(hub.inbound)).get(mail.name), mail.hash);
    assert.deepEqual(await node.listOutbound(), []);
  });

  test('.hld: in the future, `run` does not call (`now` does); in the past, it is deleted and the hub is called', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const hld = await node.outboundFile('139c0001.hld', String(Math.floor(Date.now() / 1000) + 3_600));
    const first = await dataFile(join(node.dir, 'files'), 'first.bin', 1_000, 131);
    await node.outboundFile('139c0001.clo', `^${first.path}\n`);

    assertExit(await node.run(['run']), 0);
    assert.equal(sessions(await hub.log()), 0, '`run` called a held hub');
    assertExit(await node.run(['now']), 0);
    assert.equal(sessions(await hub.log()), 1, '`now` did not call the held hub');
    assert.ok(existsSync(hld), 'a future .hld was removed');

    const second = await dataFile(join(node.dir, 'files'), 'second.bin', 1_100, 132);
    await node.outboundFile('139c0001.clo', `^${second.path}\n`);
    // binkd writes the bare number; a hold that has expired is deleted by whoever reads it.
    await writeFile(hld, String(Math.floor(Date.now() / 1000) - 60));
    assertExit(await node.run(['run']), 0);
    assert.equal(sessions(await hub.log()), 2, '`run` did not call after the hold expired');
    assert.ok(!existsSync(hld), 'the expired .hld is still there');
    assert.deepEqual(await hashes(hub.inbound), new Map([first, second].map((f) => [f.name, f.hash])));
  });
});

describe('inbound against binkd', () => {
  test('name clashes are renamed as binkd does; hostile names are sanitised', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const base = hub.outboundFor(US);
    const theirs = join(hub.dir, 'files');

    const send = async (round: number): Promise<Record<string, { hash: string }>> => {
      // Sizes differ per round: the same name, size and time would count as "already have it".
      const pkt = await dataFile(join(theirs, `r${round}`), '0000abcd.pkt', 500 + round, 90 + round);
      const txt = await dataFile(join(theirs, `r${round}`), 'readme.txt', 600 + round, 92 + round);
      const arc = await dataFile(join(theirs, `r${round}`), '0000abcd.su0', 700 + round, 94 + round);
      // binkd itself cuts a name at its last `/`, `\\` or `:`; what it does send raw: control
      // characters and characters Windows refuses.
      const odd = await dataFile(join(theirs, `r${round}`), 'we\x01ird*<name>?.txt', 800 + round, 96 + round);
      await writeFile(`${base}.flo`, [pkt, txt, arc, odd].map((f) => `^${f.path}`).join('\n') + '\n');
      assertExit(await node.run(['now']), 0);
      return { pkt, txt, arc, odd };
    };
    const r1 = await send(1);
    const r2 = await send(2);
    assertBinkdOk(await hub.log());

    const inbound = await hashes(node.inbound);
    const nameOf = (hash: string) => [...inbound].find(([, h]) => h === hash)?.[0];
    assert.equal(nameOf(r1.pkt!.hash), '0000abcd.pkt');
    assert.equal(nameOf(r1.txt!.hash), 'readme.txt');
    assert.equal(nameOf(r1.arc!.hash), '0000abcd.su0');
    assert.match(await hub.log(), /send message FILE we\\x01ird\*<name>\?\.txt /, 'binkd did not send the raw name');
    assert.equal(nameOf(r1.odd!.hash), 'we_ird__name__.txt', 'control characters and `*<>?` must become `_`');
    // binkd's RENAME_BODY for .pkt/arcmail: a hex counter over the tail of the base name.
    assert.equal(nameOf(r2.pkt!.hash), '0000abc0.pkt');
    assert.equal(nameOf(r2.arc!.hash), '0000abc0.su0');
    assert.equal(nameOf(r2.txt!.hash), 'readme.txt.1');
    assert.equal(nameOf(r2.odd!.hash), 'we_ird__name__.txt.1');
    assert.equal(inbound.size, 8, `unexpected files: ${[...inbound.keys()].join(', ')}`);
  });

  test('partials: a broken file is resumed from where it broke; a partial .pkt starts again from 0', async () => {
    // binkd sends slowly (limit-rate), so each kill lands mid-file.
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }], extraConfig: 'limit-rate all 48k *' });
    const section = { name: 'hub', address: HUB, port: hub.port, password: PASSWORD };
    const node = await makeNode({ address: US, hubs: [section] });
    const theirs = join(hub.dir, 'files');
    const pkt = await dataFile(theirs, '0badc0de.pkt', 60_000, 111);
    const bin = await dataFile(theirs, 'resume.bin', 150_000, 112);
    await writeFile(`${hub.outboundFor(US)}.flo`, `^${pkt.path}\n^${bin.path}\n`);

    /** Run `fnpoll now` and SIGKILL it once our partial of `name` holds at least 20 000 bytes. */
    const killMidFile = async (name: string): Promise<number> => {
      const run = node.spawn(['now']);
      cleanups.push(async () => {
        if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
        await run.done;
      });
      const size = await waitFor(`a partial of ${name}`, async () => {
        for (const e of await readdir(node.tempInbound).catch(() => [] as string[])) {
          if (!e.endsWith('.json')) continue;
          const meta = JSON.parse(await readFile(join(node.tempInbound, e), 'utf8').catch(() => '{}')) as { name?: string };
          if (meta.name !== name) continue;
          const st = await stat(join(node.tempInbound, e.replace(/\.json$/, '.part'))).catch(() => undefined);
          if (st && st.size >= 20_000) return st.size;
        }
        return undefined;
      });
      run.child.kill('SIGKILL');
      await run.done;
      await hub.waitForLog(new RegExp(`as ${escapeRe(name)} [^]*done \\(from 2:5020\\/99@fidonet, failed`));
      // The next run may take over the killed run's lock and flags at once.
      const old = new Date(Date.now() - STALE_LOCK_AGE_MS);
      await utimes(`${node.stateFile}.lock`, old, old);
      return size;
    };

    await killMidFile(pkt.name);
    let before = (await hub.log()).length;
    await killMidFile(bin.name);
    let log = (await hub.log()).slice(before);
    // binkd close_partial(): a partial .pkt is never resumed. We take it again from 0.
    assert.doesNotMatch(log, /rcvd msg GET 0badc0de\.pkt/, 'we asked binkd to resume a .pkt');
    assert.match(await node.log(), /discarding partial of 0badc0de\.pkt/);
    assert.equal((await hashes(node.inbound)).get(pkt.name), pkt.hash, 'the restarted .pkt is not intact');

    const have = (await stat(join(node.tempInbound, (await readdir(node.tempInbound)).find((n) => n.endsWith('.part'))!))).size;
    before = (await hub.log()).length;
    const last = await node.run(['now']);
    assertExit(last, 0);
    log = (await hub.log()).slice(before);
    assert.match(log, new RegExp(`rcvd msg GET resume\\.bin 150000 ${MTIME} ${have}\\b`), `we did not ask binkd to resume at ${have}:\n${log}`);
    assert.match(log, /done \(from 2:5020\/99@fidonet, OK\b/);
    assert.equal((await hashes(node.inbound)).get(bin.name), bin.hash, 'the resumed file is corrupt');
    assert.deepEqual((await readdir(node.tempInbound)).filter((n) => !n.startsWith('.')), [], 'partials left behind');
  });

  test('min_free: a file that would leave too little space is refused with M_SKIP and the log says why', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({
      address: US,
      hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }],
      // Far more than any test machine has free.
      poller: { minfree: '100000G' },
    });
    const big = await dataFile(join(hub.dir, 'files'), 'toobig.bin', 50_000, 101);
    const flo = `${hub.outboundFor(US)}.flo`;
    await writeFile(flo, `^${big.path}\n`);

    const r = await node.run(['now']);
    assertExit(r, 0);
    const log = await hub.log();
    assert.match(log, /rcvd msg SKIP toobig\.bin 50000 /, `binkd got no M_SKIP:\n${log}`);
    assert.match(log, /done \(from 2:5020\/99@fidonet, OK\b/);
    assert.deepEqual(await hashes(node.inbound), new Map());
    assert.match(await node.log(), /toobig\.bin.*min_free/, 'our log does not say why the file was refused');
    // binkd keeps a skipped file for the next session.
    assert.ok(existsSync(big.path) && existsSync(flo), 'binkd dropped the skipped file');
  });
});
