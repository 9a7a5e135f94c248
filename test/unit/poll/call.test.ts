/**
 * callHub() end to end on loopback: a temp node's BSO outbound and inbound, a Config built from
 * INI text, and the scripted hub. What is asserted is what a sysop would find on disk afterwards
 * (FTS-5005 flow directives and control files; FTN-NOTES §3-6) and what the hub saw on the wire.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, stat, readdir } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { callHub, fileIdentity, mailerToken, stableWireName, type CallResult } from '../../../src/poll/call.js';
import { parseIni } from '../../../src/config/ini.js';
import { buildConfig } from '../../../src/config/load.js';
import type { Config, HubConfig } from '../../../src/config/types.js';
import { FlagKeeper } from '../../../src/bso/flags.js';
import { Inbound } from '../../../src/bso/inbound.js';
import { Logger, MemorySink } from '../../../src/ops/logger.js';
import { addressKey } from '../../../src/ftn/address.js';
import { Cmd } from '../../../src/binkp/commands.js';
import { crc32, formatCrc } from '../../../src/binkp/crc.js';
import { ScriptedHub, describeFrames, findFrame, type HubFile, type HubSessionLog, type ScriptedHubOptions } from '../../../src/demo/hub.js';
import { TestNode, pseudoRandomBytes, type HubSection, type NodeOptions } from '../../helpers/node.js';
import { ManualClock, until } from '../../helpers/clock.js';

const HUB_ADDRESS = '2:5020/1@fidonet';
/** 2:5020/1 → 139c0001 (FTS-5005 §2.1). */
const HUB_BASE = '139c0001';
const T0 = 1_700_000_000;
const T = { timeout: 8_000 };

const hubs: ScriptedHub[] = [];
const nodes: TestNode[] = [];

after(async () => {
  await Promise.all(hubs.map((h) => h.close()));
  await Promise.all(nodes.map((n) => n.remove()));
});

async function startHub(opts: Partial<ScriptedHubOptions> = {}): Promise<ScriptedHub> {
  const hub = new ScriptedHub({ addresses: [HUB_ADDRESS], ...opts });
  hubs.push(hub);
  await hub.listen(0, '127.0.0.1');
  return hub;
}

interface Fixture {
  node: TestNode;
  config: Config;
  hub: HubConfig;
}

/** A temp node whose one hub section points at `port`; the Config is built from the INI text. */
async function makeNode(port: number, section: Partial<HubSection> = {}, more: Partial<NodeOptions> = {}): Promise<Fixture> {
  const node = await TestNode.create({
    address: '2:5020/99@fidonet',
    hubs: [{ name: 'hub', address: HUB_ADDRESS, port, ...section }],
    ...more,
  });
  nodes.push(node);
  return { node, ...(await reload(node)) };
}

async function reload(node: TestNode): Promise<{ config: Config; hub: HubConfig }> {
  const text = await readFile(node.configPath, 'utf8');
  const config = buildConfig(parseIni(text, node.configPath), node.configPath);
  return { config, hub: config.hubs[0]! };
}

interface Called {
  r: CallResult;
  sink: MemorySink;
}

async function poll(f: Fixture, clock?: ManualClock): Promise<Called> {
  const sink = new MemorySink('debug');
  const keeper = new FlagKeeper({ staleAge: f.config.poller.staleFlagAge });
  const r = await callHub(f.hub, { config: f.config, log: new Logger([sink]), keeper, ...(clock ? { timers: clock, now: clock.now } : {}) });
  assert.deepEqual(keeper.held(), [], 'callHub left flags held');
  return { r, sink };
}

/** poll() and the hub's log of that session, complete. */
async function pollHub(f: Fixture, hub: ScriptedHub): Promise<Called & { log: HubSessionLog }> {
  const n = hub.sessions.length + 1;
  const c = await poll(f);
  await hub.waitSessions(n);
  return { ...c, log: hub.sessions[n - 1]! };
}

function assertOk(c: Called & { log?: HubSessionLog }): void {
  assert.equal(c.r.status, 'ok', `${c.r.kind}: ${c.r.message}${c.log ? `\n${describeFrames(c.log)}` : ''}`);
}

function warnings(sink: MemorySink): string[] {
  return sink.events.filter((e) => e.level === 'warning').map((e) => e.message);
}

/** Names of BSO control files (`.bsy`, `.csy`) anywhere in the outbound root. */
async function controlFiles(node: TestNode): Promise<string[]> {
  return (await node.listOutbound()).filter((n) => /\.(bsy|csy)$/i.test(n));
}

const hubFile = (name: string, data: Buffer | string, mtime = T0): HubFile => ({
  name,
  data: typeof data === 'string' ? Buffer.from(data) : data,
  mtime,
});

// ---------------------------------------------------------------------------------------------

describe('callHub: BSO bookkeeping', () => {
  test('fsync: received files are synced before their name appears and their M_GOT goes; a ~ mark before its ^ file goes (issue 11, defect 5)', T, async () => {
    const hub = await startHub({ password: 'secret', files: [hubFile('one.pkt', 'first packet'), hubFile('two.pkt', 'second packet')] });
    const f = await makeNode(hub.port, { password: 'secret' });
    const del = await f.node.file('del.bin', 'delete me after the mark is durable');
    const flow = await f.node.outboundFile(`${HUB_BASE}.flo`, `^${del}\n`);
    const events: string[] = [];
    const syncPath = async (p: string, kind: 'file' | 'dir'): Promise<void> => {
      if (p === flow) events.push(`flow synced: ${(await readFile(flow, 'utf8')).startsWith('~') ? 'marked' : 'unmarked'}, file ${existsSync(del) ? 'still there' : 'gone'}`);
      else if (kind === 'file') {
        // No name in the inbound may point at this partial's inode yet.
        const ino = (await stat(p)).ino;
        const linked = [];
        for (const n of await f.node.listInbound()) if ((await stat(join(f.node.inbound, n))).ino === ino) linked.push(n);
        events.push(`data synced: ${linked.length ? `already in the inbound as ${linked.join(', ')}` : 'not yet in the inbound'}`);
      }
      else events.push(`dir synced: inbound holds ${(await f.node.listInbound()).length}`);
    };
    const sink = new MemorySink('debug');
    const keeper = new FlagKeeper({ staleAge: f.config.poller.staleFlagAge });
    const r = await callHub(f.hub, { config: f.config, log: new Logger([sink]), keeper, syncPath });
    assert.equal(r.status, 'ok', r.message);
    assert.equal(existsSync(del), false);
    assert.ok(events.includes('flow synced: marked, file still there'), events.join('\n'));
    const data = events.filter((e) => e.startsWith('data synced'));
    assert.equal(data.length, 2, events.join('\n'));
    for (const e of data) assert.match(e, /not yet in the inbound$/, 'a name appeared before its data was synced');
    assert.ok(events.includes('dir synced: inbound holds 2'), events.join('\n'));
    assert.deepEqual(await f.node.listInbound(), ['one.pkt', 'two.pkt']);
  });

  test('a netmail packet keeps its wire name across sessions, so a resend after a crash is recognised (issue 11, defect 3)', T, async () => {
    const hub = await startHub();
    const f = await makeNode(hub.port);
    const packet = pseudoRandomBytes(300, 12);
    const netmail = await f.node.outboundFile(`${HUB_BASE}.cut`, packet);
    const other = await f.node.outboundFile(`${HUB_BASE}.hut`, pseudoRandomBytes(300, 13));
    const wire = stableWireName(fileIdentity(netmail), 'pkt');
    assert.match(wire, /^[0-9a-f]{8}\.pkt$/);
    assert.equal(stableWireName(fileIdentity(netmail), 'pkt'), wire, 'the same file, the same name');
    assert.notEqual(stableWireName(fileIdentity(other), 'pkt'), wire, 'another packet, another name');
    assert.notEqual(stableWireName(fileIdentity(netmail), 'pkt', new Set([wire])), wire, 'a clash within a session moves on');
    // A reused inode with the same size and (coarse) time but other content: another name.
    assert.notEqual(stableWireName({ ...fileIdentity(netmail), contentHash: '0'.repeat(64) }, 'pkt'), wire);

    // First session: the hub refuses the packet (M_SKIP), as a lost M_GOT would leave it queued.
    hub.configure({ skip: [wire] });
    assertOk(await pollHub(f, hub));
    assert.ok(existsSync(netmail), 'a skipped packet stays queued');
    // Second session: offered again under the same name (today: a new one each session).
    hub.configure({ skip: [] });
    const second = await pollHub(f, hub);
    assertOk(second);
    assert.ok(hub.received.some((r) => r.name === wire), hub.received.map((r) => r.name).join(' '));
    assert.equal(existsSync(netmail), false);
  });

  test('flow directives after M_GOT, netmail as a unique .pkt, .req after success, M_SKIP keeps its line', T, async () => {
    const hub = await startHub({ password: 'secret', skip: ['later.txt'], files: [hubFile('welcome.txt', 'welcome!')] });
    const f = await makeNode(hub.port, { password: 'secret' });
    const { node } = f;
    const del = await node.file('del.txt', 'delete me');
    const trunc = await node.file('trunc.txt', 'truncate me');
    const keep = await node.file('keep.txt', 'keep me');
    const later = await node.file('later.txt', 'send me later');
    const empty = await node.file('empty.txt', '');
    const flowLines = [`^${del}`, `#${trunc}`, keep, later, `^${empty}`];
    const flow = await node.outboundFile(`${HUB_BASE}.flo`, flowLines.join('\n') + '\n');
    const packet = pseudoRandomBytes(200, 11);
    const netmail = await node.outboundFile(`${HUB_BASE}.out`, packet);
    const req = await node.outboundFile(`${HUB_BASE}.req`, 'NODELIST\r\n');

    const c = await pollHub(f, hub);
    assertOk(c);
    assert.equal(c.log.callerVersion, `${mailerToken()} binkp/1.1`);
    assert.match(mailerToken(), /^fnpoll\/[^\s/]+\/[^\s/]+$/);

    // ^ deleted, # truncated, plain kept; the skipped file untouched.
    assert.equal(existsSync(del), false);
    assert.equal(existsSync(empty), false);
    assert.equal((await stat(trunc)).size, 0);
    assert.equal(await readFile(keep, 'utf8'), 'keep me');
    assert.equal(await readFile(later, 'utf8'), 'send me later');
    // Lines marked in place with `~`; the skipped line as it was; the flow file stays.
    const lines = (await readFile(flow, 'utf8')).split('\n');
    assert.deepEqual(lines, [`~${del}`, `~${trunc}`, `~${keep.slice(1)}`, later, `~${empty}`, '']);

    // Netmail under a unique .pkt name, then deleted; the .req under a unique .req, deleted after success.
    const pkt = hub.received.find((r) => r.name.endsWith('.pkt'));
    assert.ok(pkt && /^[0-9a-f]{8}\.pkt$/.test(pkt.name), hub.received.map((r) => r.name).join(' '));
    assert.deepEqual(pkt.data, packet);
    assert.equal(existsSync(netmail), false);
    const sentReq = hub.received.find((r) => r.name.endsWith('.req'));
    assert.ok(sentReq && /^[0-9a-f]{8}\.req$/.test(sentReq.name));
    assert.equal(sentReq.data.toString(), 'NODELIST\r\n');
    assert.equal(existsSync(req), false);
    assert.deepEqual(hub.received.map((r) => r.name).filter((n) => !/\.(pkt|req)$/.test(n)).sort(), [
      'del.txt',
      'empty.txt',
      'keep.txt',
      'trunc.txt',
    ]);

    // The hub's file went to the secure inbound with the sender's mtime.
    assert.deepEqual(await node.listInbound(), ['welcome.txt']);
    assert.equal(Math.round((await stat(join(node.inbound, 'welcome.txt'))).mtimeMs / 1000), T0);
    assert.deepEqual(await controlFiles(node), []);

    // Next session: the skipped file goes, every line is `~`, the flow file is removed.
    hub.configure({ skip: [] });
    const again = await pollHub(f, hub);
    assertOk(again);
    assert.deepEqual(commands(again.log, 'in', 'M_FILE').map((a) => a.split(' ')[0]), ['later.txt']);
    assert.equal(existsSync(flow), false);
    assert.equal(await readFile(keep, 'utf8'), 'keep me');
    assert.equal(await readFile(later, 'utf8'), 'send me later');
  });

  test('a .req sent in a session that then fails is kept', T, async () => {
    const hub = await startHub({
      // The hub drops the line at our M_EOB, after it acknowledged everything.
      handlers: { [Cmd.M_EOB]: (_arg, ctx) => ctx.destroy('test: drop at the caller\'s M_EOB') },
    });
    const f = await makeNode(hub.port);
    const req = await f.node.outboundFile(`${HUB_BASE}.req`, 'FILES\r\n');
    const c = await pollHub(f, hub);
    assert.equal(c.r.status, 'failed', describeFrames(c.log));
    assert.ok(hub.received.some((r) => r.name.endsWith('.req')), describeFrames(c.log));
    assert.equal(existsSync(req), true);
    assert.deepEqual(await controlFiles(f.node), []);
  });

  test('one name from two directories: both sent, in different batches; the flow file goes', T, async () => {
    const offered: { arg: string; batch: number }[] = [];
    const hub = await startHub({
      onFrame: (log, fr) => {
        if (fr.dir === 'in' && fr.kind === 'command' && fr.name === 'M_FILE') offered.push({ arg: fr.arg, batch: log.batches });
      },
    });
    const f = await makeNode(hub.port);
    const a = await f.node.file('a/dup.txt', 'from a');
    const b = await f.node.file('b/dup.txt', 'from b, longer');
    const flow = await f.node.outboundFile(`${HUB_BASE}.flo`, `^${a}\n^${b}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    const dups = offered.filter((o) => o.arg.startsWith('dup.txt '));
    assert.equal(dups.length, 2, JSON.stringify(offered));
    assert.notEqual(dups[0]!.batch, dups[1]!.batch, JSON.stringify(offered));
    assert.deepEqual(hub.received.map((r) => r.data.toString()).sort(), ['from a', 'from b, longer']);
    assert.equal(existsSync(a) || existsSync(b) || existsSync(flow), false);
  });

  test('M_OK non-secure after a password: warning, the hub\'s files go to the insecure inbound', T, async () => {
    const hub = await startHub({ files: [hubFile('news.txt', 'news')] });
    const f = await makeNode(hub.port, { password: 'secret' });
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.equal(c.r.session?.secure, false);
    assert.ok(warnings(c.sink).some((w) => /non-secure/.test(w)), warnings(c.sink).join('\n'));
    assert.deepEqual(await f.node.listInbound(true), ['news.txt']);
    assert.deepEqual(await f.node.listInbound(false), []);
  });

  test('large files both ways: the last piece filling the write buffer does not stall the session', T, async () => {
    // A 1 MiB file whose final frames fill the partial's write buffer used to wait for a 'drain'
    // that an ending stream never emits: the session then hung until idle_timeout.
    const big = Buffer.alloc(1024 * 1024 + 123, 7);
    const hub = await startHub({ files: [{ name: 'big.zip', data: big, mtime: 1_700_000_000 }] });
    const f = await makeNode(hub.port, {}, { poller: { idle_timeout: '5s' } });
    const out = await f.node.file('out.bin', Buffer.alloc(3 * 1024 * 1024 + 7, 9));
    await f.node.outboundFile('139c0001.flo', `^${out}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    // No password: a non-secure session, so the insecure inbound.
    assert.deepEqual(await f.node.listInbound(true), ['big.zip']);
    assert.ok((await readFile(join(f.node.insecureInbound, 'big.zip'))).equals(big));
    assert.equal(hub.received[0]?.size, 3 * 1024 * 1024 + 7);
  });

  test('a partial in the temp inbound is resumed with M_GET at its length', T, async () => {
    const data = pseudoRandomBytes(70_000, 12);
    const hub = await startHub({ password: 'secret', files: [hubFile('nodelist.z47', data)] });
    const f = await makeNode(hub.port, { password: 'secret' });
    // What an interrupted session would have left: the first 30 000 bytes.
    const inbound = new Inbound({
      dirs: { secure: f.config.node.inbound, insecure: f.config.node.inboundInsecure, temp: f.config.node.tempInbound },
      hubKey: addressKey(f.hub.address),
      minFree: 0,
      partialMaxAge: 0,
    });
    const partial = await inbound.open({ name: 'nodelist.z47', size: data.length, mtime: T0 }, 0);
    partial.write([data.subarray(0, 30_000)]);
    await partial.close();

    const c = await pollHub(f, hub);
    assertOk(c);
    assert.ok(findFrame(c.log, 'in', 'M_GET', (a) => a === `nodelist.z47 70000 ${T0} 30000`) >= 0, describeFrames(c.log));
    assert.deepEqual(await readFile(join(f.node.inbound, 'nodelist.z47')), data);
    assert.equal(c.r.session?.stats.bytesReceived, 40_000);
    assert.deepEqual(await readdir(f.config.node.tempInbound), []);
  });
});

function commands(log: HubSessionLog, dir: 'in' | 'out', name: string): string[] {
  return log.frames.flatMap((fr) => (fr.dir === dir && fr.kind === 'command' && fr.name === name ? [fr.arg] : []));
}

describe('callHub: busy flags', () => {
  test('.csy during the call, .bsy per hub AKA after M_ADR, all removed after success and after failure', T, async () => {
    const seen: Record<string, boolean>[] = [];
    let f: Fixture | undefined;
    const snapshot = (): Record<string, boolean> => {
      const at = (n: string) => existsSync(join(f!.node.outbound, n));
      return { csy: at('139c0001.csy'), bsy1: at('139c0001.bsy'), bsy2: at('139c0002.bsy') };
    };
    const hub = await startHub({
      addresses: [HUB_ADDRESS, '2:5020/2@fidonet'],
      password: 'secret',
      onFrame: (_log, fr) => {
        // Synchronous with the hub's write of M_ADR: the caller cannot have seen it yet.
        if (fr.kind === 'command' && fr.dir === 'out' && fr.name === 'M_ADR') seen.push(snapshot());
        if (fr.kind === 'command' && fr.dir === 'in' && fr.name === 'M_PWD') seen.push(snapshot());
      },
    });
    f = await makeNode(hub.port, { password: 'secret' });
    const ok = await pollHub(f, hub);
    assertOk(ok);
    assert.deepEqual(seen, [
      { csy: true, bsy1: false, bsy2: false },
      { csy: true, bsy1: true, bsy2: true },
    ]);
    assert.equal(ok.r.session?.servedAkas.length, 2);
    assert.deepEqual(await controlFiles(f.node), []);

    seen.length = 0;
    hub.configure({ password: 'other' });
    const bad = await pollHub(f, hub);
    assert.equal(bad.r.status, 'failed');
    assert.equal(bad.r.kind, 'auth');
    assert.deepEqual(seen, [
      { csy: true, bsy1: false, bsy2: false },
      { csy: true, bsy1: true, bsy2: true },
    ]);
    assert.deepEqual(await controlFiles(f.node), []);
  });

  test('an AKA whose .bsy another process holds is not served; the session goes on for the others', T, async () => {
    const hub = await startHub({ addresses: [HUB_ADDRESS, '2:5020/2@fidonet'] });
    const f = await makeNode(hub.port);
    const mine = await f.node.file('mine.txt', 'for 2:5020/1');
    const theirs = await f.node.file('theirs.txt', 'for 2:5020/2');
    await f.node.outboundFile(`${HUB_BASE}.flo`, `^${mine}\n`);
    const otherFlow = await f.node.outboundFile('139c0002.flo', `^${theirs}\n`);
    await f.node.outboundFile('139c0002.bsy', `${process.ppid}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.deepEqual(c.r.session?.servedAkas.map((a) => `${a.net}/${a.node}`), ['5020/1']);
    assert.ok(warnings(c.sink).some((w) => /2:5020\/2/.test(w) && /busy/.test(w)), warnings(c.sink).join('\n'));
    assert.deepEqual(hub.received.map((r) => r.name), ['mine.txt']);
    assert.equal(existsSync(theirs), true);
    assert.equal(await readFile(otherFlow, 'utf8'), `^${theirs}\n`);
    assert.deepEqual(await controlFiles(f.node), ['139c0002.bsy']);
  });

  test('a hub whose .bsy another live process holds is skipped, its flag left alone', T, async () => {
    const hub = await startHub();
    const f = await makeNode(hub.port);
    // Our parent process is alive and is not us: a fresh flag of a running mailer.
    const bsy = await f.node.outboundFile(`${HUB_BASE}.bsy`, `${process.ppid}\n`);
    const c = await poll(f);
    assert.equal(c.r.status, 'skipped');
    assert.equal(c.r.kind, 'busy');
    assert.match(c.r.message, /2:5020\/1@fidonet/);
    assert.match(c.r.message, new RegExp(`pid ${process.ppid}`));
    assert.equal(hub.sessions.length, 0);
    assert.equal(await readFile(bsy, 'utf8'), `${process.ppid}\n`);
    assert.deepEqual(await controlFiles(f.node), [`${HUB_BASE}.bsy`]);
  });

  test('a hub whose .csy another live process holds is skipped too', T, async () => {
    const hub = await startHub();
    const f = await makeNode(hub.port);
    await f.node.outboundFile(`${HUB_BASE}.csy`, `${process.ppid}\n`);
    const c = await poll(f);
    assert.equal(c.r.status, 'skipped');
    assert.match(c.r.message, /\.csy/);
    assert.equal(hub.sessions.length, 0);
    assert.deepEqual(await controlFiles(f.node), [`${HUB_BASE}.csy`]);
  });
});

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A loopback port whose accept queue is full, so a new SYN goes unanswered: a worker thread
 * listens with backlog 1 and then blocks (Atomics.wait) so it never accepts; two connections fill
 * the queue (Linux queues backlog + 1). `release()` lets the worker go and closes everything.
 */
async function deafPort(): Promise<{ port: number; release: () => Promise<void> }> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const server = require('node:net').createServer((s) => s.destroy());
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(workerData, 0, 0);
       server.close();
     });`,
    { eval: true, workerData: flag },
  );
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const fillers: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('error', () => undefined);
    fillers.push(s);
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  }
  return {
    port,
    release: async () => {
      for (const s of fillers) s.destroy();
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      await worker.terminate();
    },
  };
}

describe('callHub: connection failures and timeouts', () => {
  test('refused: a closed port gives kind refused, and no flag is left', T, async () => {
    const port = await closedPort();
    const f = await makeNode(port);
    const c = await poll(f);
    assert.equal(c.r.status, 'failed');
    assert.equal(c.r.kind, 'refused');
    assert.match(c.r.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.deepEqual(await controlFiles(f.node), []);
  });

  test('connect_timeout: a listener that never accepts', T, async () => {
    const deaf = await deafPort();
    try {
      const f = await makeNode(deaf.port, {}, { poller: { connect_timeout: '0.3' } });
      const clock = new ManualClock();
      const polling = poll(f, clock);
      await until(() => clock.pending.length > 0, 'the connect timer');
      assert.deepEqual(clock.pending, [300]);
      await clock.advance(300);
      const c = await polling;
      assert.equal(c.r.status, 'failed');
      assert.equal(c.r.kind, 'timeout', c.r.message);
      assert.match(c.r.message, /connect_timeout/);
      assert.deepEqual(await controlFiles(f.node), []);
    } finally {
      await deaf.release();
    }
  });

  test('idle_timeout from the config: a hub that never answers M_PWD', T, async () => {
    const hub = await startHub({ stallAfter: 'pwd' });
    const f = await makeNode(hub.port, {}, { poller: { idle_timeout: '0.3' } });
    const clock = new ManualClock();
    const n = hub.sessions.length + 1;
    const polling = poll(f, clock);
    await until(() => findFrame(hub.sessions[n - 1] ?? ({ frames: [] } as never), 'in', 'M_PWD') >= 0, 'our M_PWD at the hub');
    await clock.advance(300);
    const c = await polling;
    assert.equal(c.r.status, 'failed');
    assert.equal(c.r.kind, 'timeout');
    assert.match(c.r.message, /idle_timeout/);
    assert.deepEqual(await controlFiles(f.node), []);
  });

  test('session_timeout from the config', T, async () => {
    const hub = await startHub({ stallAfter: 'pwd' });
    const f = await makeNode(hub.port, {}, { poller: { idle_timeout: '30', session_timeout: '0.3' } });
    const clock = new ManualClock();
    const n = hub.sessions.length + 1;
    const polling = poll(f, clock);
    await until(() => findFrame(hub.sessions[n - 1] ?? ({ frames: [] } as never), 'in', 'M_PWD') >= 0, 'our M_PWD at the hub');
    await clock.advance(300);
    const c = await polling;
    assert.equal(c.r.kind, 'timeout');
    assert.match(c.r.message, /session_timeout/);
  });

  test('wrong password: kind auth with the hub\'s text; the outbound is untouched', T, async () => {
    const hub = await startHub({ password: 'right' });
    const f = await makeNode(hub.port, { password: 'wrong' });
    const file = await f.node.file('x.txt', 'x');
    const flow = await f.node.outboundFile(`${HUB_BASE}.flo`, `^${file}\n`);
    const c = await pollHub(f, hub);
    assert.equal(c.r.status, 'failed');
    assert.equal(c.r.kind, 'auth');
    assert.match(c.r.message, /Bad password/);
    assert.equal(c.r.remote, 'Bad password');
    assert.equal(await readFile(flow, 'utf8'), `^${file}\n`);
    assert.equal(existsSync(file), true);
  });

  test('a file named in a flow file that is gone: one warning line, and the line is marked', T, async () => {
    const hub = await startHub();
    const f = await makeNode(hub.port);
    const real = await f.node.file('real.txt', 'here');
    const gone = join(f.node.files, 'gone.txt');
    const flow = await f.node.outboundFile(`${HUB_BASE}.flo`, `^${gone}\n^${real}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    const about = warnings(c.sink).filter((w) => w.includes('gone.txt'));
    assert.equal(about.length, 1, about.join('\n'));
    assert.match(about[0]!, /line 1: ".*gone\.txt": no such file, skipped/);
    assert.equal(existsSync(flow), false, 'both lines done: the flow file is gone');
  });

  test('an empty netmail packet (60 bytes or less) is removed after success, and that is said at info level', T, async () => {
    const hub = await startHub();
    const f = await makeNode(hub.port);
    const empty = await f.node.outboundFile(`${HUB_BASE}.cut`, Buffer.alloc(58, 0));
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.equal(existsSync(empty), false);
    const said = c.sink.events.filter((e) => /removed empty netmail packet/.test(e.message));
    assert.deepEqual(said.map((e) => e.level), ['info']);
    assert.ok(said[0]!.message.includes(empty));
  });

  test('an empty flow file (poll request) is removed only after a successful session', T, async () => {
    const hub = await startHub({ busy: 'Too busy' });
    const f = await makeNode(hub.port);
    const flow = await f.node.outboundFile(`${HUB_BASE}.dlo`, '');
    const busy = await pollHub(f, hub);
    assert.equal(busy.r.kind, 'busy');
    assert.equal(existsSync(flow), true);
    hub.configure({ busy: undefined });
    assertOk(await pollHub(f, hub));
    assert.equal(existsSync(flow), false);
  });
});

// ---- protocol extensions (issue 13) against the scripted hub ------------------------------------

/** Text like echomail: compresses well. */
function textLike(size: number, seed = 1): Buffer {
  const words = ['AREA:FIDO', 'SEEN-BY:', '2:5020/1', 'Origin', 'binkp', 'tosser', 'hub', 'sysop'];
  let s = '';
  for (let n = seed; s.length < size; ) {
    n = (n * 1103515245 + 12345) >>> 0;
    s += words[n % words.length] + (n % 9 ? ' ' : '\r');
  }
  return Buffer.from(s.slice(0, size));
}

const crcOf = (data: Buffer): string => formatCrc(crc32(data));

/** The caller's M_FILE lines as the hub saw them. */
const inFiles = (log: HubSessionLog): string[] => commands(log, 'in', 'M_FILE');

describe('callHub: protocol extensions', () => {
  test('GZ both ways: zlib streams, sizes uncompressed, fewer bytes on the wire, files intact', T, async () => {
    const down = textLike(40_000, 2);
    const hub = await startHub({ password: 'pw', loginOptions: ['EXTCMD', 'GZ'], sendMethod: 'GZ', files: [hubFile('0000abcd.pkt', down)] });
    const f = await makeNode(hub.port, { password: 'pw' });
    const up = textLike(60_000, 3);
    await f.node.outboundFile(`${HUB_BASE}.flo`, `^${await f.node.file('a1b2c3d4.pkt', up)}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.match(inFiles(c.log)[0]!, /^a1b2c3d4\.pkt 60000 \d+ 0 GZ$/);
    assert.deepEqual(c.log.received[0]!.data, up);
    assert.ok(c.log.bytesIn < up.length / 2, `${c.log.bytesIn} bytes on the wire for ${up.length}`);
    assert.deepEqual(await readFile(join(f.node.inbound, '0000abcd.pkt')), down);
    assert.ok(c.log.bytesOut < down.length / 2);
    assert.deepEqual(c.r.session?.extensions, ['GZ']);
    assert.deepEqual(c.r.session?.stats.bytesReceived, down.length, 'stats count file bytes, not wire bytes');
  });

  test('never recompressed: arcmail, archives, files under compression_threshold; use_compression = no', T, async () => {
    const hub = await startHub({ loginOptions: ['EXTCMD', 'GZ'] });
    const f = await makeNode(hub.port, { extra: { compression_threshold: '2k' } });
    const lines: string[] = [];
    for (const [name, size] of [['0000fffe.su0', 5000], ['mail.zip', 5000], ['small.txt', 2047], ['big.txt', 2048]] as const) {
      lines.push(`^${await f.node.file(name, textLike(size))}`);
    }
    await f.node.outboundFile(`${HUB_BASE}.flo`, lines.join('\n') + '\n');
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.deepEqual(inFiles(c.log).map((l) => `${l.split(' ')[0]} ${l.split(' ')[4] ?? '-'}`), ['0000fffe.su0 -', 'mail.zip -', 'small.txt -', 'big.txt GZ']);

    const off = await makeNode(hub.port, {}, { performance: { use_compression: 'no' } });
    await off.node.outboundFile(`${HUB_BASE}.flo`, `^${await off.node.file('big.txt', textLike(9000))}\n`);
    const c2 = await pollHub(off, hub);
    assertOk(c2);
    assert.doesNotMatch(c2.log.callerOptions.join(' '), /GZ|EXTCMD|PLZ/);
    assert.doesNotMatch(inFiles(c2.log)[0]!, /GZ/);
  });

  test('BZ2 offered by the hub is never used; a BZ2 file is refused with M_GET ... NZ and arrives plain', T, async () => {
    const down = textLike(8000, 4);
    const hub = await startHub({ loginOptions: ['EXTCMD', 'GZ', 'BZ2'], sendMethod: 'BZ2', files: [hubFile('bz.txt', down)] });
    const f = await makeNode(hub.port);
    await f.node.outboundFile(`${HUB_BASE}.flo`, `^${await f.node.file('up.txt', textLike(5000))}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.doesNotMatch(c.log.callerOptions.join(' '), /BZ2/);
    assert.match(inFiles(c.log)[0]!, / GZ$/, 'GZ, not BZ2');
    assert.deepEqual(commands(c.log, 'in', 'M_GET'), ['bz.txt 8000 1700000000 0 NZ']);
    assert.deepEqual(commands(c.log, 'out', 'M_FILE'), ['bz.txt 8000 1700000000 0 BZ2', 'bz.txt 8000 1700000000 0']);
    assert.deepEqual(await readFile(join(f.node.insecureInbound, 'bz.txt')), down);
  });

  test("GZ received over many reads of the dialled socket's reused read buffer: files intact", T, async () => {
    // Incompressible data: the wire carries about 3 MB, so the dialled socket fills its one read
    // buffer again and again while frames wait for zlib (test/unit/binkp/session.test.ts has the
    // deterministic case of a buffer overwritten after each read).
    const noise = pseudoRandomBytes(3_000_000, 21);
    const text = textLike(200_000, 5);
    const hub = await startHub({
      password: 'pw',
      loginOptions: ['EXTCMD', 'GZ'],
      sendMethod: 'GZ',
      files: [hubFile('noise.bin', noise), hubFile('0000beef.pkt', text)],
    });
    const f = await makeNode(hub.port, { password: 'pw' });
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.deepEqual(commands(c.log, 'out', 'M_FILE').map((l) => l.split(' ').at(-1)), ['GZ', 'GZ']);
    assert.ok((await readFile(join(f.node.inbound, 'noise.bin'))).equals(noise), 'noise.bin intact');
    assert.ok((await readFile(join(f.node.inbound, '0000beef.pkt'))).equals(text), '0000beef.pkt intact');
  });

  test('GZ with NR (the hub offers -1) and a resume (we send from its offset): a fresh zlib stream per M_FILE', T, async () => {
    const down = textLike(50_000, 15);
    const up = textLike(40_000, 16);
    const hub = await startHub({
      loginOptions: ['EXTCMD', 'GZ'],
      sendMethod: 'GZ',
      nr: true,
      files: [hubFile('nrdown.txt', down)],
      // The hub asks for our file from 10000 on, as for a partial it holds.
      getOffset: { name: 'gzup.txt', offset: 10_000 },
    });
    const f = await makeNode(hub.port);
    await f.node.outboundFile(`${HUB_BASE}.flo`, `^${await f.node.file('gzup.txt', up)}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    // NR: the method goes with the -1 offer and again with the M_FILE that carries the data.
    assert.deepEqual(commands(c.log, 'out', 'M_FILE'), ['nrdown.txt 50000 1700000000 -1 GZ', 'nrdown.txt 50000 1700000000 0 GZ']);
    assert.deepEqual(await readFile(join(f.node.insecureInbound, 'nrdown.txt')), down);
    const ours = inFiles(c.log);
    assert.match(ours[0]!, /^gzup\.txt 40000 \d+ 0 GZ$/);
    assert.match(ours[1]!, /^gzup\.txt 40000 \d+ 10000 GZ$/);
    assert.deepEqual(c.log.received[0]!.data, up.subarray(10_000), 'a new stream from the offset');
  });

  test('GZ data that does not decompress: asked for again uncompressed (M_GET ... NZ), arrives whole', T, async () => {
    const down = textLike(30_000, 14);
    const hub = await startHub({
      loginOptions: ['EXTCMD', 'GZ'],
      sendMethod: 'GZ',
      files: [hubFile('broken.txt', down)],
      // The zlib header's first byte: "incorrect header check" at once.
      corruptByte: { name: 'broken.txt', offset: 0, wire: true },
    });
    const f = await makeNode(hub.port);
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.deepEqual(commands(c.log, 'in', 'M_GET'), ['broken.txt 30000 1700000000 0 NZ']);
    assert.deepEqual(commands(c.log, 'out', 'M_FILE'), ['broken.txt 30000 1700000000 0 GZ', 'broken.txt 30000 1700000000 0']);
    assert.deepEqual(await readFile(join(f.node.insecureInbound, 'broken.txt')), down);
    assert.ok(warnings(c.sink).some((w) => /broken\.txt: GZ data does not decompress: .*asking for it again uncompressed from 0 \(NZ\)/.test(w)));
  });

  test('CRC (FTS-1030): checksums both ways when both offer CRC; none with use_crc = no', T, async () => {
    const down = Buffer.from('from the hub, with a checksum');
    const hub = await startHub({ loginOptions: ['CRC'], files: [hubFile('down.txt', down)] });
    const f = await makeNode(hub.port);
    const up = Buffer.from('to the hub, with a checksum');
    await f.node.outboundFile(`${HUB_BASE}.flo`, `^${await f.node.file('up.txt', up)}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.equal(inFiles(c.log)[0]!.split(' ')[4], crcOf(up));
    assert.equal(commands(c.log, 'out', 'M_FILE')[0]!.split(' ')[4], crcOf(down));
    assert.deepEqual(c.log.crcRejected, []);
    assert.deepEqual(await readFile(join(f.node.insecureInbound, 'down.txt')), down);
    assert.deepEqual(c.r.session?.extensions, ['CRC']);

    const off = await makeNode(hub.port, { extra: { use_crc: 'no' } });
    await off.node.outboundFile(`${HUB_BASE}.flo`, `^${await off.node.file('up2.txt', up)}\n`);
    const c2 = await pollHub(off, hub);
    assertOk(c2);
    assert.equal(inFiles(c2.log)[0]!.split(' ').length, 4, 'no checksum token');
  });

  test('CRC: a flipped byte is caught; the file is discarded, refused with M_SKIP, and arrives whole next time', T, async () => {
    const data = textLike(20_000, 5);
    const hub = await startHub({ loginOptions: ['CRC'], files: [hubFile('flip.txt', data)], corruptByte: { name: 'flip.txt', offset: 12_345 } });
    const f = await makeNode(hub.port);
    const c = await pollHub(f, hub);
    assert.equal(c.r.status, 'ok', c.r.message);
    assert.deepEqual(commands(c.log, 'in', 'M_SKIP'), ['flip.txt 20000 1700000000']);
    assert.deepEqual(await f.node.listInbound(true), [], 'the corrupt file is not kept');
    assert.deepEqual(await readdir(f.node.tempInbound).catch(() => []), [], 'no partial of it either');
    assert.ok(warnings(c.sink).some((w) => /flip\.txt: CRC-32 of the received data is [0-9A-F]{8}, the hub said [0-9A-F]{8}; file discarded/.test(w)));
    assert.equal(hub.outbound.length, 1, 'M_SKIP: the hub keeps it');

    hub.configure({ corruptByte: undefined });
    const again = await pollHub(f, hub);
    assertOk(again);
    assert.deepEqual(await readFile(join(f.node.insecureInbound, 'flip.txt')), data);
  });

  test('CRC: a second mismatch in one session ends it with M_ERR', T, async () => {
    const hub = await startHub({
      loginOptions: ['CRC'],
      files: [hubFile('one.txt', textLike(3000, 6)), hubFile('two.txt', textLike(3000, 7))],
      corruptByte: [
        { name: 'one.txt', offset: 1 },
        { name: 'two.txt', offset: 2999 },
      ],
    });
    const f = await makeNode(hub.port);
    const c = await pollHub(f, hub);
    assert.equal(c.r.status, 'failed');
    assert.equal(c.r.kind, 'protocol');
    assert.match(c.r.message, /two\.txt: CRC-32 .* second CRC failure in this session/);
    assert.deepEqual(commands(c.log, 'in', 'M_SKIP'), ['one.txt 3000 1700000000']);
    assert.equal(commands(c.log, 'in', 'M_ERR').length, 1);
    assert.deepEqual(await f.node.listInbound(true), []);
  });

  test('PLZ (FTS-1029): compressed frames both ways when both offer PLZ', T, async () => {
    const down = textLike(50_000, 10);
    const hub = await startHub({ loginOptions: ['PLZ'], files: [hubFile('down.txt', down)] });
    const f = await makeNode(hub.port);
    const up = textLike(70_000, 11);
    await f.node.outboundFile(`${HUB_BASE}.flo`, `^${await f.node.file('up.txt', up)}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.deepEqual(c.log.extensions, ['PLZ']);
    assert.deepEqual(c.log.received[0]!.data, up);
    assert.deepEqual(await readFile(join(f.node.insecureInbound, 'down.txt')), down);
    assert.deepEqual(c.r.session?.extensions, ['PLZ']);
  });

  test('CRYPT with the scripted hub: both directions enciphered after M_OK; off unless use_crypt = yes', T, async () => {
    const down = textLike(30_000, 12);
    const hub = await startHub({ password: 'sesame', loginOptions: ['CRYPT'], files: [hubFile('down.txt', down)] });
    const f = await makeNode(hub.port, { password: 'sesame', extra: { use_crypt: 'yes' } });
    const up = textLike(25_000, 13);
    await f.node.outboundFile(`${HUB_BASE}.flo`, `^${await f.node.file('up.txt', up)}\n`);
    const c = await pollHub(f, hub);
    assertOk(c);
    assert.deepEqual(c.log.extensions, ['CRYPT']);
    assert.deepEqual(c.r.session?.extensions, ['CRYPT']);
    assert.deepEqual(c.log.received[0]!.data, up);
    assert.deepEqual(await readFile(join(f.node.inbound, 'down.txt')), down);

    const plain = await makeNode(hub.port, { password: 'sesame' });
    const c2 = await pollHub(plain, hub);
    assertOk(c2);
    assert.ok(!c2.log.callerOptions.includes('CRYPT'), 'use_crypt defaults to no');
    assert.deepEqual(c2.log.extensions, []);
  });
});
