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
import { callHub, mailerToken, type CallResult } from '../../../src/poll/call.js';
import { parseIni } from '../../../src/config/ini.js';
import { buildConfig } from '../../../src/config/load.js';
import type { Config, HubConfig } from '../../../src/config/types.js';
import { FlagKeeper } from '../../../src/bso/flags.js';
import { Inbound } from '../../../src/bso/inbound.js';
import { Logger, MemorySink } from '../../../src/ops/logger.js';
import { addressKey } from '../../../src/ftn/address.js';
import { Cmd } from '../../../src/binkp/commands.js';
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
