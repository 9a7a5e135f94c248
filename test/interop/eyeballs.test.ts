/**
 * Issue 12, happy eyeballs (RFC 8305) for real: inside a network namespace this test creates, a
 * name with an AAAA record on a black-holed IPv6 route and an A record on loopback. fnpoll must
 * poll the scripted hub over IPv4 without waiting for connect_timeout; with `ip_family = 6` the
 * same call times out, which shows the IPv6 path really is a black hole. dnsmasq answers inside
 * the namespace; no packet leaves it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BIN, ROOT, type TestNode } from '../helpers/node.js';
import { Cleanups } from '../helpers/interop.js';
import { blackholeNetns, startCommand } from '../helpers/peers.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const PORT = 24554;
const DNS_PORT = 53;

const cleanups = new Cleanups();
after(() => cleanups.run());

function runIn(exec: (cmd: string[]) => string[], node: TestNode, args: string[]): Promise<{ code: number | null; out: string }> {
  const argv = exec([process.execPath, BIN, ...args, '-c', node.configPath]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

test('a black-holed IPv6 path: polled over IPv4 at once; IPv6 only times out', { timeout: 40_000 }, async () => {
  const ns = await blackholeNetns(`fnpoll-he-${process.pid}`);
  cleanups.push(ns.remove);
  const hubScript = [
    `const { ScriptedHub } = await import(${JSON.stringify(join(ROOT, 'dist/src/demo/hub.js'))});`,
    `const hub = new ScriptedHub({ addresses: [${JSON.stringify(HUB)}] });`,
    `await hub.listen(${PORT}, '127.0.0.1');`,
    `console.log('listening');`,
    `process.on('SIGTERM', () => hub.close().then(() => process.exit(0)));`,
  ].join('\n');
  const hub = await startCommand(ns.exec([process.execPath, '--input-type=module', '-e', hubScript]), /listening/);
  cleanups.push(() => hub.stop());
  const dns = await startCommand(
    ns.exec([
      'dnsmasq', '--keep-in-foreground', '--log-facility=-', `--port=${DNS_PORT}`, '--listen-address=127.0.0.1', '--bind-interfaces',
      '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--pid-file=', '--local=/he.test/',
      '--host-record=dual.he.test,127.0.0.1,2001:db8::1',
    ]),
    /started, version/,
  );
  cleanups.push(() => dns.stop());

  const node = (connectTimeout: string, extra: Record<string, string>) =>
    cleanups.makeNode({
      address: US,
      hubs: [{ name: 'hub', address: HUB, host: 'dual.he.test', port: PORT, extra }],
      poller: { dns_server: `127.0.0.1:${DNS_PORT}`, connect_timeout: connectTimeout },
    });

  // connect_timeout is a minute, longer than this test may take: the IPv4 attempt must start
  // after connect_attempt_delay while the IPv6 one is still unanswered.
  const dual = await node('60s', {});
  const r = await runIn(ns.exec, dual, ['now']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`ok via dual\\.he\\.test:${PORT} \\[127\\.0\\.0\\.1\\] \\(config\\)`));
  const log = await dual.log();
  const v6 = log.indexOf(`connecting to [2001:db8::1]:${PORT}`);
  const v4 = log.indexOf(`connecting to 127.0.0.1:${PORT}`);
  assert.ok(v6 !== -1 && v4 > v6, `IPv6 tried first, then IPv4:\n${log}`);
  assert.doesNotMatch(log.slice(v6, v4), /2001:db8::1\]:\d+ .*(refused|unreachable)/, 'the IPv6 attempt was still pending when IPv4 started');

  const v6only = await node('2s', { ip_family: '6' });
  const f = await runIn(ns.exec, v6only, ['now']);
  assert.equal(f.code, 1, f.out);
  assert.match(f.out, /failed \(timeout\): no connection to dual\.he\.test:24554 within connect_timeout \(2 s\)/);
});
