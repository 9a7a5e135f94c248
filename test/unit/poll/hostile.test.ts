/**
 * A hostile (or broken) hub: a raw binkp answerer on 127.0.0.1 that logs in properly and then
 * sends what no honest hub would. fnpoll must end the session with one clear message naming what
 * the hub did, write nothing outside its inbound, and leave no flag behind.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeCommand, encodeData } from '../../../src/binkp/frame.js';
import { Cmd } from '../../../src/binkp/commands.js';
import { callHub, type CallResult } from '../../../src/poll/call.js';
import { parseIni } from '../../../src/config/ini.js';
import { buildConfig } from '../../../src/config/load.js';
import { FlagKeeper } from '../../../src/bso/flags.js';
import { Logger, MemorySink } from '../../../src/ops/logger.js';
import { TestNode } from '../../helpers/node.js';
import { HostileHub } from '../../helpers/hostilehub.js';

const HUB = '2:5020/1@fidonet';
const T = { timeout: 8_000 };
const hubs: HostileHub[] = [];
const nodes: TestNode[] = [];
after(async () => {
  for (const h of hubs) await h.close();
  for (const n of nodes) await n.remove();
});

/**
 * A hub that greets, takes any password, answers M_OK, then runs `script` with a way to send raw
 * frames (test/helpers/hostilehub.ts).
 */
async function rawHub(script: (send: (frame: Buffer) => void, socket: Socket) => void): Promise<{ port: number; received: string[] }> {
  const hub = new HostileHub(HUB, { afterLogin: (c) => script(c.raw, c.socket) });
  hubs.push(hub);
  const port = await hub.listen();
  return { port, received: hub.received };
}

async function poll(port: number): Promise<{ r: CallResult; node: TestNode }> {
  const node = await TestNode.create({ hubs: [{ name: 'hub', address: HUB, port }], poller: { idle_timeout: '3s' } });
  nodes.push(node);
  const text = await readFile(node.configPath, 'utf8');
  const config = buildConfig(parseIni(text, node.configPath), node.configPath);
  const keeper = new FlagKeeper({ staleAge: config.poller.staleFlagAge });
  const r = await callHub(config.hubs[0]!, { config, log: new Logger([new MemorySink()]), keeper });
  assert.deepEqual(keeper.held(), [], 'flags left held');
  assert.deepEqual((await node.listOutbound()).filter((n) => /\.(bsy|csy)$/.test(n)), [], 'flag files left');
  return { r, node };
}

describe('a hostile hub', () => {
  test('more data than the M_FILE announced: protocol failure naming the file', T, async () => {
    const { port } = await rawHub((send) => {
      send(encodeCommand(Cmd.M_FILE, 'evil.bin 4 1700000000 0'));
      send(encodeData(Buffer.from('0123456789')));
    });
    const { r, node } = await poll(port);
    assert.equal(r.status, 'failed');
    assert.equal(r.kind, 'protocol');
    assert.match(r.message, /hub sent more data than the 4 bytes it announced for evil\.bin/);
    assert.deepEqual(await node.listInbound(true), []);
  });

  test('a malformed M_FILE: protocol failure quoting it', T, async () => {
    const { port } = await rawHub((send) => send(encodeCommand(Cmd.M_FILE, 'name-without-size')));
    const { r } = await poll(port);
    assert.equal(r.kind, 'protocol');
    assert.match(r.message, /malformed M_FILE: name-without-size/);
  });

  test('names that try to leave the inbound land inside it, sanitised', T, async () => {
    const { port } = await rawHub((send) => {
      for (const name of ['..\\x2f..\\x2fescape.txt', '\\x2fetc\\x2fpasswd']) {
        send(encodeCommand(Cmd.M_FILE, `${name} 3 1700000000 0`));
        send(encodeData(Buffer.from('abc')));
      }
      send(encodeCommand(Cmd.M_EOB));
    });
    const { r, node } = await poll(port);
    assert.equal(r.status, 'ok', r.message);
    const names = await node.listInbound(true);
    assert.equal(names.length, 2, names.join(' '));
    for (const n of names) assert.doesNotMatch(n, /\//);
    // Nothing was written beside the node's directories.
    assert.deepEqual((await readdir(node.dir)).sort(), ['files', 'fnpoll.ini', 'inbound', 'outbound']);
  });

  test('a flood of unknown and empty command frames is ignored; the session still ends cleanly', T, async () => {
    const { port } = await rawHub((send) => {
      for (let i = 0; i < 2000; i++) send(encodeCommand(100 + (i % 27), 'x'.repeat(i % 300)));
      send(Buffer.from([0x80, 0x00])); // an empty command frame
      send(encodeCommand(Cmd.M_EOB));
    });
    const { r } = await poll(port);
    assert.equal(r.status, 'ok', r.message);
  });

  test('M_FILE before M_OK: protocol failure, nothing received', T, async () => {
    const hub = new HostileHub(HUB, {
      onConnect: (c) => {
        c.command(Cmd.M_ADR, HUB);
        c.command(Cmd.M_FILE, 'early.bin 3 1700000000 0');
        return true;
      },
    });
    hubs.push(hub);
    const port = await hub.listen();
    const { r, node } = await poll(port);
    assert.equal(r.kind, 'protocol');
    assert.match(r.message, /hub sent M_FILE before M_OK/);
    assert.deepEqual(await node.listInbound(true), []);
  });

  test('the hub closes mid-file: failure says so, and the partial is kept for a resume', T, async () => {
    const { port } = await rawHub((send, socket) => {
      send(encodeCommand(Cmd.M_FILE, 'half.bin 100 1700000000 0'));
      send(encodeData(Buffer.alloc(40, 1)));
      setTimeout(() => socket.destroy(), 50);
    });
    const { r, node } = await poll(port);
    assert.equal(r.status, 'failed');
    assert.match(r.message, /during transfer/);
    const parts = (await readdir(node.tempInbound)).filter((n) => n.endsWith('.part'));
    assert.equal(parts.length, 1);
    assert.equal((await readFile(join(node.tempInbound, parts[0]!))).length, 40);
  });
});
