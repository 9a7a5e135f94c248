/**
 * Issue 4: fnpoll shares its BSO outbound with the real programs that use one.
 * - crashmail (Debian's tosser) writes the outbound; fnpoll delivers what it wrote.
 * - binkd runs on OUR side too, on the same outbound: as the answering mailer (`binkd -s`) and as
 *   a caller (`binkd -p -P`). Each must see the other's busy flags, holds and .try files.
 * The hubs are binkd as well (test/helpers/binkd.ts). Our-side binkd is started here, because
 * its `domain` line must name the fnpoll node's outbound.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { freePort, leftoverBinkdProcesses, BINKD } from '../helpers/binkd.js';
import { TestNode, fileHash, pseudoRandomBytes, sha256 } from '../helpers/node.js';
import { Cleanups, assertExit, dataFile as makeDataFile, delay, escapeRe, hashes, sessions, waitFor, type DataFile } from '../helpers/interop.js';
import { encodeCommand } from '../../src/binkp/frame.js';
import { Cmd } from '../../src/binkp/commands.js';
import { decodeTry, encodeTry } from '../../src/bso/flags.js';

const US = '2:5020/99@fidonet';
const HUB = '2:5020/1@fidonet';
const HUB_BSO = '139c0001';
const PASSWORD = 'Sekr3tPw';
const MTIME = 1_700_000_000;
const NETMAIL_SIZE = 200;
/** A command-line program we run must end within this; it is killed and the test fails otherwise. */
const PROGRAM_TIMEOUT_MS = 60_000;

const cleanups = new Cleanups();
const { startHub, makeNode, tempDir } = cleanups;
const dataFile = (dir: string, name: string, size: number, seed: number): Promise<DataFile> => makeDataFile(dir, name, size, seed, MTIME);
/** Process groups of the binkds started here (each is spawned as a group leader). */
const ourGroups = new Set<number>();

after(async () => {
  await cleanups.run();
  assert.deepEqual(await leftoverBinkdProcesses(), [], 'a hub binkd outlived its test');
  const alive = [...ourGroups].filter(groupAlive);
  for (const g of alive) signalGroup(g, 'SIGKILL');
  assert.deepEqual(alive, [], 'an our-side binkd outlived its test');
});

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: gone already.
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function count(text: string, re: RegExp): number {
  return text.match(new RegExp(re.source, 'g'))?.length ?? 0;
}

async function readText(path: string): Promise<string> {
  return readFile(path, 'latin1').catch(() => '');
}

/** Run a program to its end (killed after PROGRAM_TIMEOUT_MS); its own process group. */
function runProgram(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined && cmd === BINKD) ourGroups.add(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('latin1').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('latin1').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: still running after ${PROGRAM_TIMEOUT_MS} ms\n${stderr}`));
    }, PROGRAM_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      // binkd -p waits for its session child; nothing of the group may be left.
      if (child.pid !== undefined && groupAlive(child.pid)) signalGroup(child.pid, 'SIGKILL');
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A bare binkp caller: connects, presents `address` in M_ADR and then waits (as a slow hub would)
 * until the test destroys the socket. Whatever the other side sends is ignored.
 */
async function bareCall(port: number, address: string): Promise<Socket> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  cleanups.push(async () => void socket.destroy());
  socket.on('data', () => undefined);
  socket.on('error', () => undefined);
  socket.write(encodeCommand(Cmd.M_NUL, 'SYS a slow hub'));
  socket.write(encodeCommand(Cmd.M_ADR, address));
  return socket;
}

/**
 * binkd on our side of the link, sharing the fnpoll node's outbound (`domain` line) and address.
 * Its inbound is its own, so the assertions below can tell who received what.
 */
class OurBinkd {
  readonly dir: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly inbound: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.configPath = join(dir, 'binkd.conf');
    this.logPath = join(dir, 'binkd.log');
    this.inbound = join(dir, 'inbound');
  }

  /** `hubs`: nodes binkd may call (address, port, password). `extra`: more config lines. */
  static async create(node: TestNode, hubs: { address: string; port: number; password: string }[], extra: string[] = []): Promise<OurBinkd> {
    const b = new OurBinkd(await tempDir('fnpoll-our-binkd-'));
    for (const d of ['inbound', 'inbound-insecure', 'temp']) await mkdir(join(b.dir, d));
    const lines = [
      `log ${b.logPath}`,
      'loglevel 6',
      'conlog 0',
      // `binkd -p` prints its queue to stderr: which nodes it sees busy ("busy"/"call") or held.
      'printq',
      `pid-file ${join(b.dir, 'binkd.pid')}`,
      `domain fidonet ${node.outbound} 2`,
      `address ${US}`,
      'sysname "our binkd"',
      'sysop "Interop Test"',
      'location "Loopback"',
      'nodeinfo 115200,TCP,BINKP',
      `inbound ${b.inbound}`,
      `inbound-nonsecure ${join(b.dir, 'inbound-insecure')}`,
      `temp-inbound ${join(b.dir, 'temp')}`,
      'timeout 30s',
      'connect-timeout 10s',
      'rescan-delay 1s',
      'call-delay 1s',
      ...hubs.map((h) => `node ${h.address} 127.0.0.1:${h.port} ${h.password}`),
      ...extra,
    ];
    await writeFile(b.configPath, lines.join('\n') + '\n');
    return b;
  }

  log(): Promise<string> {
    return readText(this.logPath);
  }

  /** `binkd -p -P <address>`: create a poll, call whatever is due, quit. */
  poll(address: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runProgram(BINKD, ['-p', '-P', address, this.configPath], this.dir);
  }

  /** `binkd -s` on a free loopback port, until stop(). */
  async serve(): Promise<{ port: number; stop: () => Promise<void> }> {
    const port = await freePort();
    await writeFile(this.configPath, (await readFile(this.configPath, 'utf8')) + `listen 127.0.0.1:${port}\n`);
    const child = spawn(BINKD, ['-s', this.configPath], { cwd: this.dir, detached: true, stdio: 'ignore' });
    const pgid = child.pid!;
    ourGroups.add(pgid);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const stop = async (): Promise<void> => {
      signalGroup(pgid, 'SIGTERM');
      await Promise.race([exited, delay(5_000)]);
      for (let i = 0; groupAlive(pgid) && i < 200; i++) await delay(25);
      if (groupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
      await exited;
    };
    cleanups.push(stop);
    await waitFor('our binkd to listen', async () => ((await this.log()).includes(`servmgr listen on 127.0.0.1:${port}`) ? true : undefined), 10_000);
    return { port, stop };
  }
}

describe('a tosser writes the outbound', () => {
  test('crashmail tosses netmail into the BSO outbound; `fnpoll now` delivers the packets byte for byte', async () => {
    const z2 = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const z3 = await startHub({ address: '3:633/1@fidonet', nodes: [{ address: US, password: PASSWORD }] });
    const point = await startHub({ address: '2:5020/1.5@fidonet', nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({
      address: US,
      hubs: [
        { name: 'z2', address: HUB, port: z2.port, password: PASSWORD },
        { name: 'z3', address: '3:633/1@fidonet', port: z3.port, password: PASSWORD },
        { name: 'point', address: '2:5020/1.5@fidonet', port: point.port, password: PASSWORD },
      ],
    });

    const cm = await tempDir('fnpoll-crashmail-');
    for (const d of ['inbound', 'tmp', 'packets', 'write', 'netmail', 'bad']) await mkdir(join(cm, d));
    const prefs = join(cm, 'crashmail.prefs');
    await writeFile(
      prefs,
      [
        'SYSOP "Test Sysop"',
        `LOGFILE "${join(cm, 'crashmail.log')}"`,
        'LOGLEVEL 6',
        `DUPEFILE "${join(cm, 'dupes')}" 200`,
        'DUPEMODE BAD',
        `STATSFILE "${join(cm, 'stats')}"`,
        'DEFAULTZONE 2',
        `INBOUND "${join(cm, 'inbound')}"`,
        `OUTBOUND "${node.outbound}"`,
        `TEMPDIR "${join(cm, 'tmp')}"`,
        `CREATEPKTDIR "${join(cm, 'tmp')}"`,
        `PACKETDIR "${join(cm, 'packets')}"`,
        'AKA 2:5020/99.0',
        'DOMAIN "fidonet"',
        'NODE 2:5020/1.0 "" ""',
        'NODE 3:633/1.0 "" ""',
        'NODE 2:5020/1.5 "" ""',
        'ROUTE "2:5020/1.5" "2:5020/1.5" 2:5020/99.0',
        'ROUTE "3:*/*.*" "3:633/1.0" 2:5020/99.0',
        'ROUTE "*:*/*.*" "2:5020/1.0" 2:5020/99.0',
        `NETMAIL "NETMAIL" 2:5020/99.0 MSG "${join(cm, 'netmail')}"`,
        `AREA "BAD" 2:5020/99.0 MSG "${join(cm, 'bad')}"`,
        '',
      ].join('\n'),
    );
    const text = join(cm, 'text.txt');
    await writeFile(text, 'A netmail that crashmail routed into our outbound.\n');
    for (const [to, subject] of [
      ['2:5020/1', 'to the hub'],
      ['3:633/1', 'to zone 3'],
      ['2:5020/1.5', 'to a point'],
    ] as const) {
      const w = await runProgram(
        'crashwrite',
        ['DIR', join(cm, 'write'), 'FROMNAME', 'Test Sysop', 'FROMADDR', '2:5020/99', 'TONAME', 'Hub Sysop', 'TOADDR', to, 'SUBJECT', subject, 'TEXT', text],
        cm,
      );
      assert.equal(w.code, 0, `crashwrite failed:\n${w.stdout}${w.stderr}`);
    }
    const toss = await runProgram('crashmail', ['SETTINGS', prefs, 'TOSSDIR', join(cm, 'write'), 'NOSECURITY'], cm);
    assert.equal(toss.code, 0, `crashmail failed:\n${toss.stdout}${toss.stderr}`);
    assert.match(toss.stdout, /Routed netmails: +3/, `crashmail did not route 3 netmails:\n${toss.stdout}`);

    // What crashmail wrote, where FTS-5005 says: our zone in the root, zone 3 in .003, points in .pnt.
    const written = {
      z2: join(node.outbound, `${HUB_BSO}.out`),
      z3: join(`${node.outbound}.003`, '02790001.out'),
      point: join(node.outbound, `${HUB_BSO}.pnt`, '00000005.out'),
    };
    const expected: Record<string, string> = {};
    for (const [k, p] of Object.entries(written)) {
      assert.ok(existsSync(p), `crashmail did not write ${p}`);
      assert.ok((await stat(p)).size > 60, `${p} is no bigger than an empty packet`);
      expected[k] = await fileHash(p);
    }

    const r = await node.run(['now']);
    assertExit(r, 0);
    for (const [k, hub] of [
      ['z2', z2],
      ['z3', z3],
      ['point', point],
    ] as const) {
      const log = await hub.log();
      assert.match(log, /done \(from 2:5020\/99@fidonet, OK\b/, `${k}: binkd did not log an OK session:\n${log}`);
      const got = [...(await hashes(hub.inbound))];
      assert.equal(got.length, 1, `${k}: expected one packet, got ${got.map(([n]) => n).join(', ')}`);
      assert.match(got[0]![0], /^[0-9a-f]{8}\.pkt$/);
      assert.equal(got[0]![1], expected[k], `${k}: the packet changed on the way`);
      assert.ok(!existsSync(written[k]), `${written[k]} was not removed after delivery`);
    }
  });
});

describe('binkd on our side, same outbound', () => {
  test('while our answering binkd holds the hub\'s .bsy, `fnpoll run` does not call it', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const crash = await dataFile(join(node.dir, 'files'), 'crash.bin', 5_000, 1);
    await node.outboundFile(`${HUB_BSO}.clo`, `^${crash.path}\n`);

    // Our binkd answers calls. The hub "calls" it: a bare binkp client that presents the hub's
    // address and then waits, as a slow hub would. binkd creates the .bsy on M_ADR (protocol.c
    // ADR: bsy_add) and keeps it until the session ends.
    const ours = await OurBinkd.create(node, []);
    const server = await ours.serve();
    const socket = await bareCall(server.port, HUB);
    const bsy = join(node.outbound, `${HUB_BSO}.bsy`);
    await waitFor('binkd to create the hub\'s .bsy', async () => (existsSync(bsy) ? true : undefined));
    const binkdPid = Number((await readFile(bsy, 'latin1')).trim());
    assert.ok(binkdPid > 0 && binkdPid !== process.pid, 'the .bsy does not hold binkd\'s PID');
    assert.match(await ours.log(), new RegExp(`created ${escapeRe(bsy)}`));

    const quiet = await node.run(['run']);
    assertExit(quiet, 0);
    // --verbose: the whole run, logged (a quiet cron run stops at "nothing due").
    const r = await node.run(['run', '--verbose']);
    assertExit(r, 0);
    assert.equal(sessions(await hub.log()), 0, 'fnpoll called the hub while binkd held its .bsy');
    assert.match(r.stderr, new RegExp(`skipped: 2:5020/1@fidonet is busy \\(\\.bsy held by pid ${binkdPid}\\b`));
    assert.equal(await readFile(bsy, 'latin1'), `${binkdPid}\n`, 'fnpoll touched binkd\'s flag');
    assert.ok(existsSync(crash.path));
    // `now` was asked to call it and could not: EX_TEMPFAIL, with the holder named (issue 11, defect 1).
    const forced = await node.run(['now']);
    assertExit(forced, 75);
    assert.match(forced.stderr, new RegExp(`skipped: 2:5020/1@fidonet is busy \\(\\.bsy held by pid ${binkdPid}\\b`));
    assert.equal(sessions(await hub.log()), 0, 'fnpoll now called the hub while binkd held its .bsy');

    // The session ends; binkd removes its flag; the next run calls.
    socket.destroy();
    await waitFor('binkd to remove the .bsy', async () => (existsSync(bsy) ? undefined : true));
    const again = await node.run(['run']);
    assertExit(again, 0);
    assert.equal(sessions(await hub.log()), 1);
    assert.equal((await hashes(hub.inbound)).get(crash.name), crash.hash);
    await server.stop();
  });

  test('while fnpoll is in session, `binkd -p -P <hub>` does not call the hub and our answering binkd refuses it', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    // 64 KiB/s for 300 KB: the session lasts about five seconds.
    const node = await makeNode({
      address: US,
      hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }],
      performance: { bandwidth_limit: '64k' },
    });
    const big = await dataFile(join(node.dir, 'files'), 'slow.bin', 300_000, 2);
    await node.outboundFile(`${HUB_BSO}.flo`, `^${big.path}\n`);
    const ours = await OurBinkd.create(node, [{ address: HUB, port: hub.port, password: PASSWORD }]);
    const answering = await OurBinkd.create(node, [{ address: HUB, port: hub.port, password: PASSWORD }]);
    const server = await answering.serve();

    const run = node.spawn(['now']);
    cleanups.push(async () => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.done;
    });
    const csy = join(node.outbound, `${HUB_BSO}.csy`);
    const bsy = join(node.outbound, `${HUB_BSO}.bsy`);
    await hub.waitForLog(/receiving slow\.bin/, 30_000);
    assert.ok(existsSync(csy) && existsSync(bsy), 'fnpoll holds no .csy/.bsy during its session');

    const b = await ours.poll(HUB);
    const blog = await ours.log();
    assert.equal(run.child.exitCode, null, 'the fnpoll session ended before binkd looked: make it longer');
    assert.match(blog, /creating a poll for 2:5020\/1@fidonet/);
    assert.match(blog, /the queue is empty, quitting/, `binkd did not give up on the busy node:\n${blog}`);
    assert.doesNotMatch(blog, /call to 2:5020\/1@fidonet|trying 127\.0\.0\.1/, `binkd called the busy hub:\n${blog}`);
    // printq: binkd's view of the queue, with the node marked busy.
    assert.match(b.stderr, /2:5020\/1@fidonet\s*(busy|call)/, `binkd did not see the node as busy:\n${b.stderr}`);
    assert.equal(sessions(await hub.log()), 1);

    // The hub calls our answering binkd meanwhile: binkd cannot flag the AKA (fnpoll's .bsy) and
    // answers busy (protocol.c ADR: bsy_add fails; a node with a password is a secure AKA -> M_BSY).
    const caller = await bareCall(server.port, HUB);
    const alog = await waitFor('our binkd to refuse the busy AKA', async () => {
      const text = await answering.log();
      return /send message BSY/.test(text) ? text : undefined;
    });
    assert.match(alog, /addr: 2:5020\/1@fidonet \(n\/a or busy\)/);
    assert.match(alog, /send message BSY Secure AKA 2:5020\/1@fidonet busy/);
    assert.equal(run.child.exitCode, null, 'the fnpoll session ended before binkd answered: make it longer');
    caller.destroy();

    const done = await run.done;
    assertExit(done, 0);
    assert.equal((await hashes(hub.inbound)).get(big.name), big.hash);
    assert.ok(!existsSync(csy) && !existsSync(bsy), 'fnpoll left its flags');
    // binkd's poll request (an empty .dlo) came during fnpoll's first batch; the next batch
    // (binkp/1.1) read the outbound again and served it, so the successful session removed it.
    assert.match(blog, /creating a poll for 2:5020\/1@fidonet \(`d' flavour\)/);
    assert.deepEqual(await node.listOutbound(), [], 'binkd\'s poll request outlived the session that served it');
    assert.equal(sessions(await hub.log()), 1);
    await server.stop();
  });

  test('binkd -p -P and fnpoll alternate on one outbound for 20 rounds; the hub gets every file exactly once', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    const node = await makeNode({ address: US, hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }] });
    const ours = await OurBinkd.create(node, [{ address: HUB, port: hub.port, password: PASSWORD }]);
    const files = join(node.dir, 'files');
    const expected = new Map<string, string>();
    const packets: string[] = [];
    const ROUNDS = 20;

    for (let round = 1; round <= ROUNDS; round++) {
      // New mail each round, as a tosser leaves it: a file attach in a flow file (appended, in
      // the flavour of the round) and a netmail packet.
      const f = await dataFile(files, `round${String(round).padStart(2, '0')}.bin`, 1_000 + round, 200 + round);
      expected.set(f.name, f.hash);
      const flavour = ['flo', 'clo', 'dlo', 'hlo'][round % 4]!;
      const flo = join(node.outbound, `${HUB_BSO}.${flavour}`);
      const previous = await readFile(flo, 'latin1').catch(() => '');
      await writeFile(flo, `${previous}^${f.path}${round % 2 ? '\r\n' : '\n'}`);
      const pkt = pseudoRandomBytes(NETMAIL_SIZE + round, 300 + round);
      packets.push(sha256(pkt));
      await writeFile(join(node.outbound, `${HUB_BSO}.out`), pkt);

      if (round % 2) {
        const b = await ours.poll(HUB);
        const blog = await ours.log();
        assert.match(blog, new RegExp(`done \\(to ${escapeRe(HUB)}, OK\\b[^]*$`), `round ${round}: binkd's call failed:\n${blog}\n${b.stderr}`);
      } else {
        assertExit(await node.run(['now']), 0);
      }
      const atHub = await hashes(hub.inbound);
      assert.equal(atHub.get(f.name), f.hash, `round ${round}: ${f.name} did not arrive`);
      assert.deepEqual(await node.listOutbound(), [], `round ${round}: the outbound is not empty`);
    }

    const atHub = await hashes(hub.inbound);
    for (const [name, hash] of expected) assert.equal(atHub.get(name), hash, name);
    const pkts = [...atHub].filter(([n]) => n.endsWith('.pkt')).map(([, h]) => h);
    assert.deepEqual(pkts.sort(), [...packets].sort(), 'the hub does not hold every packet exactly once');
    assert.equal(atHub.size, ROUNDS * 2, `unexpected files at the hub: ${[...atHub.keys()].join(', ')}`);
    // Exactly once on the wire too: no file was offered twice (a resend the hub skipped as a
    // duplicate would not show in its inbound).
    const log = await hub.log();
    for (const name of expected.keys()) assert.equal(count(log, new RegExp(`rcvd msg FILE ${escapeRe(name)} `)), 1, `${name} offered more than once`);
    assert.equal(count(log, /done \(from 2:5020\/99@fidonet, OK\b/), ROUNDS);
    assert.doesNotMatch(log, /\bfailed\b/);
  });

  test('a .hld that fnpoll writes after max_retries is respected by `binkd -p -P`; `fnpoll reset` lifts it', async () => {
    const hub = await startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
    // fnpoll sees the hub down (nothing listens on its port); our binkd knows the real one.
    const deadPort = await freePort();
    const node = await makeNode({
      address: US,
      hubs: [{ name: 'hub', address: HUB, port: deadPort, password: PASSWORD, extra: { max_retries: 1, hold_time: '2h' } }],
    });
    const crash = await dataFile(join(node.dir, 'files'), 'held.bin', 3_000, 3);
    await node.outboundFile(`${HUB_BSO}.clo`, `^${crash.path}\n`);

    const t0 = Math.floor(Date.now() / 1000);
    const quiet = await node.run(['run', '--quiet']);
    assertExit(quiet, 1);
    // Issue 14: going into hold is said in one line, even in a quiet cron run.
    const holdLines = quiet.stderr.split('\n').filter((l) => /on hold until/.test(l));
    assert.equal(holdLines.length, 1, quiet.stderr);
    assert.match(holdLines[0]!, /^hub: warning: on hold until \S+ after 1 failure \(wrote \S+\.hld\); `fnpoll reset hub` retries at once$/);
    const hld = join(node.outbound, `${HUB_BSO}.hld`);
    const text = await readFile(hld, 'latin1');
    assert.match(text, /^\d+$/, `the .hld is not a bare unix time as binkd writes it: ${JSON.stringify(text)}`);
    const until = Number(text);
    assert.ok(until >= t0 + 7_000 && until <= Math.ceil(Date.now() / 1000) + 7_200 + 1, `hold until ${until}, expected about 2 h from ${t0}`);

    // ftnq.c: q_not_empty() skips a node whose hold_until is in the future, -P or not.
    const ours = await OurBinkd.create(node, [{ address: HUB, port: hub.port, password: PASSWORD }]);
    const held = await ours.poll(HUB);
    let blog = await ours.log();
    assert.match(blog, /the queue is empty, quitting/, `binkd did not skip the held node:\n${blog}`);
    assert.doesNotMatch(blog, /call to 2:5020\/1@fidonet/);
    assert.match(held.stderr, /2:5020\/1@fidonet \(hold until /, `binkd's queue does not show the hold:\n${held.stderr}`);
    assert.equal(sessions(await hub.log()), 0, 'binkd called a node fnpoll holds');
    assert.equal(await readFile(hld, 'latin1'), text, 'binkd changed the .hld');

    // `fnpoll reset` removes the hold it wrote; binkd then calls and delivers.
    assertExit(await node.run(['reset', 'hub']), 0);
    assert.ok(!existsSync(hld), '`fnpoll reset` left the .hld');
    const before = blog.length;
    await ours.poll(HUB);
    blog = (await ours.log()).slice(before);
    assert.match(blog, /done \(to 2:5020\/1@fidonet, OK\b/, `binkd did not call once the hold was lifted:\n${blog}`);
    assert.equal((await hashes(hub.inbound)).get(crash.name), crash.hash);
  });

  test('.try: fnpoll writes binkd\'s little-endian format, and binkd counts on from it', async () => {
    const deadPort = await freePort();
    const node = await makeNode({
      address: US,
      hubs: [{ name: 'hub', address: HUB, port: deadPort, password: PASSWORD }],
      poller: { binkd_try_files: 'yes' },
    });
    assertExit(await node.run(['now']), 1);
    const tryPath = join(node.outbound, `${HUB_BSO}.try`);
    const ours = decodeTry(await readFile(tryPath));
    assert.ok(ours, 'no .try written');
    assert.equal(ours.nok, 0);
    assert.equal(ours.nbad, 1);
    assert.match(ours.comment, /refused/);
    assert.deepEqual(await readFile(tryPath), encodeTry(ours));

    // binkd with `try 3`: it reads nbad = 1 from our file, fails once more (2: no hold yet), then
    // once more (3: it holds the node). Read big-endian, 1 would be 256 and binkd would hold at once.
    const binkd = await OurBinkd.create(node, [{ address: HUB, port: deadPort, password: PASSWORD }], ['try 3', 'hold 1h']);
    await binkd.poll(HUB);
    let theirs = decodeTry(await readFile(tryPath));
    assert.equal(theirs?.nbad, 2, `binkd did not count on from our .try: ${JSON.stringify(theirs)}`);
    assert.ok(!existsSync(join(node.outbound, `${HUB_BSO}.hld`)), 'binkd held the node after its first failure');
    await binkd.poll(HUB);
    assert.match(await binkd.log(), /holding 2:5020\/1@fidonet/);
    assert.ok(existsSync(join(node.outbound, `${HUB_BSO}.hld`)));
    theirs = decodeTry(await readFile(tryPath));
    assert.equal(theirs?.nbad, 0, 'binkd resets nbad when it holds');
  });
});

