/**
 * Issue 10: how a session ends, seen from the real binkd. Whatever makes fnpoll give up (a
 * signal, a timeout), binkd must get our M_ERR before the connection goes: its log then says
 * `rerror: <our text>`, not just "connection closed".
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { BinkdHub, leftoverBinkdProcesses } from '../helpers/binkd.js';
import { TestNode, pseudoRandomBytes } from '../helpers/node.js';
import { Cleanups, escapeRe } from '../helpers/interop.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const HUB_BSO = '139c0001';
const PASSWORD = 'Sekr3tPw';
/** Slow enough that the file below is still on its way when the test acts. */
const LIMIT = 64 * 1024;

const cleanups = new Cleanups();
after(async () => {
  await cleanups.run();
  assert.deepEqual(await leftoverBinkdProcesses(), [], 'a binkd process outlived its test');
});

async function setup(poller: Record<string, string | number> = {}): Promise<{ hub: BinkdHub; node: TestNode }> {
  const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
  const node = await cleanups.makeNode({
    address: US,
    hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }],
    performance: { bandwidth_limit: LIMIT },
    poller,
  });
  // About 30 s at the limit: far longer than any of these tests lets it run.
  const path = await node.file('big.bin', pseudoRandomBytes(2 * 1024 * 1024, 91));
  await node.outboundFile(`${HUB_BSO}.clo`, `${path}\n`);
  return { hub, node };
}

describe('the end of a session, against binkd', () => {
  test('a second SIGTERM aborts the transfer: binkd logs our M_ERR (rerror)', async () => {
    const { hub, node } = await setup();
    const run = node.spawn(['now']);
    try {
      await hub.waitForLog(/receiving big\.bin/);
      run.child.kill('SIGTERM');
      run.child.kill('SIGTERM');
      const r = await run.done;
      assert.notEqual(r.code, 0, r.stderr);
      const log = await hub.waitForLog(/rerror: /);
      assert.match(log, /rerror: Shutting down/);
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    }
  });

  test('session_timeout: binkd logs our M_ERR naming the timeout', async () => {
    const { hub, node } = await setup({ session_timeout: '2s' });
    const r = await node.run(['now']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /session_timeout/);
    const log = await hub.waitForLog(/rerror: /);
    assert.match(log, new RegExp(`rerror: ${escapeRe('session took longer than session_timeout (2 s)')}`));
  });
});
