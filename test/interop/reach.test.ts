/**
 * Issue 12, reaching hubs, with real programs on loopback: the nodelist (a fixture written here),
 * DNS from Debian's dnsmasq (SRV, A, AAAA), binkps through node:tls in front of the scripted hub
 * and through stunnel4 in front of the real binkd, SOCKS5 through danted (with and without
 * user/password), and an HTTP CONNECT proxy. fnpoll runs as the real CLI in a child process.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { leftoverBinkdProcesses, type BinkdHub } from '../helpers/binkd.js';
import type { HubSection, TestNode } from '../helpers/node.js';
import { Cleanups, assertExit } from '../helpers/interop.js';
import { ScriptedHub } from '../../src/demo/hub.js';
import {
  httpConnectProxy,
  makeCerts,
  makeSystemUser,
  startDanted,
  startDnsmasq,
  startStunnel,
  tlsFront,
  type Cert,
} from '../helpers/peers.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const PASSWORD = 'Sekr3tPw';
/** More AKAs of the one hub, so one config can hold several sections calling it (one address each). */
const AKAS = [HUB, '2:5020/11@fidonet', '2:5020/12@fidonet', '2:5020/13@fidonet', '2:5020/14@fidonet'];

const cleanups = new Cleanups();
let dir: string;
let certs: { ca: Cert; server: Cert; selfSigned: Cert };

before(async () => {
  dir = await cleanups.tempDir('fnpoll-reach-');
  certs = await makeCerts(dir);
});
after(async () => {
  await cleanups.run();
  assert.deepEqual(await leftoverBinkdProcesses(), [], 'a binkd process outlived its test');
});

async function binkd(): Promise<BinkdHub> {
  return cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD }], extraConfig: `address ${AKAS.join(' ')}` });
}

async function scripted(): Promise<ScriptedHub> {
  const hub = new ScriptedHub({ addresses: AKAS, password: PASSWORD });
  await hub.listen();
  cleanups.push(() => hub.close());
  return hub;
}

async function node(hubs: HubSection[], poller: Record<string, string | number> = {}): Promise<TestNode> {
  return cleanups.makeNode({ address: US, hubs: hubs.map((h) => ({ password: PASSWORD, ...h })), poller: { connect_timeout: '10s', ...poller } });
}

type HubStateJson = { lastResult: { ok: boolean; kind?: string; message?: string }; reached?: { host: string; port: number; source: string; tls: boolean } };
async function hubState(n: TestNode, name: string): Promise<HubStateJson> {
  return ((await n.state()) as { hubs: Record<string, HubStateJson> }).hubs[name]!;
}

/** `fnpoll now <hub>` must succeed; returns its stderr (the session line). */
async function pollOk(n: TestNode, hub: string): Promise<string> {
  const r = await n.run(['now', hub]);
  assertExit(r, 0);
  const st = await hubState(n, hub);
  assert.equal(st.lastResult.ok, true);
  return `${r.stdout}${r.stderr}`;
}

/** `fnpoll now <hub>` must fail with `kind`; returns the recorded message. */
async function pollFails(n: TestNode, hub: string, kind: string): Promise<string> {
  const r = await n.run(['now', hub]);
  assertExit(r, 1);
  const st = await hubState(n, hub);
  assert.equal(st.lastResult.kind, kind, `expected kind ${kind}: ${JSON.stringify(st.lastResult)}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`failed \\(${kind}\\)`));
  return st.lastResult.message!;
}

describe('where the host comes from', () => {
  test('nodelist: IBN host and port; state, status and check name the source; Down and Pvt are never called', async () => {
    const hub = await binkd();
    const list = join(dir, 'NODELIST.339');
    await writeFile(
      list,
      [
        ';A test nodelist written by the test -- Day number 339',
        'Zone,2,Europe,Somewhere,ZC,-Unpublished-,300,CM,IBN',
        'Host,5020,Moscow,Moscow,NC,-Unpublished-,300,CM',
        `Hub,1,The_Hub,Moscow,Hub_Sysop,-Unpublished-,300,CM,XA,INA:127.0.0.1,IBN:${hub.port}`,
        'Down,2,Gone,Moscow,Somebody,-Unpublished-,300,IBN:127.0.0.1',
        'Pvt,3,Hidden,Moscow,Somebody,-Unpublished-,300,CM',
        '',
      ].join('\r\n'),
    );
    const n = await node(
      [
        { name: 'hub', address: HUB, host: '*', port: 1 },
        { name: 'gone', address: '2:5020/2@fidonet', host: '*', port: 1 },
        { name: 'hidden', address: '2:5020/3@fidonet', host: '*', port: 1, extra: { lookup: 'nodelist' } },
      ].map((h) => ({ ...h, extra: { nodelist: join(dir, 'NODELIST.*'), lookup: 'nodelist', ...h.extra } })),
    );
    // hub_port = 1 is the default port for hosts without one; IBN's own port wins.
    const out = await pollOk(n, 'hub');
    assert.match(out, new RegExp(`ok via 127\\.0\\.0\\.1:${hub.port} \\(nodelist NODELIST\\.339 line 4\\)`));
    assert.deepEqual((await hubState(n, 'hub')).reached, { host: '127.0.0.1', port: hub.port, address: '127.0.0.1', source: 'nodelist NODELIST.339 line 4', tls: false });
    assert.match(await hub.log(), /done \(from 2:5020\/99@fidonet, OK\b/);
    const kept = (await readdir(n.dir)).filter((f) => f.startsWith('state.json.nodelist-index-'));
    assert.equal(kept.length, 1, 'the nodelist index is kept beside the state');

    const down = await pollFails(n, 'gone', 'nodelist');
    assert.match(down, /2:5020\/2@fidonet is listed as Down in NODELIST\.339 line 5 \(not operational\): not called/);
    const pvt = await pollFails(n, 'hidden', 'nodelist');
    assert.match(pvt, /Pvt node without an IP flag in NODELIST\.339 line 6: unreachable/);
    assert.equal((await hub.log()).match(/incoming from/g)?.length, 1, 'Down and Pvt nodes were not called');

    const check = await n.run(['check']);
    assertExit(check, 0);
    assert.match(check.stdout, new RegExp(`hub +resolves to 127\\.0\\.0\\.1:${hub.port} \\(nodelist NODELIST\\.339 line 4\\)`));
    assert.match(check.stdout, /gone +resolves to nodelist: .*listed as Down/);
    const status = await n.run(['status', '--json']);
    const rows = (JSON.parse(status.stdout) as { hubs: { name: string; host: string; reached: unknown; lastResult: { kind: string } | null }[] }).hubs;
    assert.match(rows[0]!.host, /^127\.0\.0\.1:\d+ \(nodelist NODELIST\.339 line 4\)$/);
    assert.deepEqual(rows[0]!.reached, { host: '127.0.0.1', port: hub.port, address: '127.0.0.1', source: 'nodelist NODELIST.339 line 4', tls: false });
    assert.equal(rows[1]!.lastResult!.kind, 'nodelist');
  });

  test('DNS (dnsmasq): SRV under dns_root, fully qualified; a name not in DNS is kind dns', async () => {
    const hub = await binkd();
    const dns = await startDnsmasq('binkp.test', [
      `--srv-host=_binkp._tcp.f1.n5020.z2.binkp.test,hub.binkp.test,${hub.port},0,1`,
      '--host-record=hub.binkp.test,127.0.0.1',
    ]);
    cleanups.push(() => dns.stop());
    const n = await node(
      [
        { name: 'hub', address: HUB, host: '*', port: 1, extra: { lookup: 'nodelist,dns', dns_root: 'binkp.test' } },
        { name: 'nx', address: '2:5020/7@fidonet', host: '*', port: 1, extra: { lookup: 'dns', dns_root: 'binkp.test' } },
      ],
      { dns_server: `127.0.0.1:${dns.port}` },
    );
    const out = await pollOk(n, 'hub');
    assert.match(out, new RegExp(`ok via hub\\.binkp\\.test:${hub.port} \\[127\\.0\\.0\\.1\\] \\(dns SRV _binkp\\._tcp\\.f1\\.n5020\\.z2\\.binkp\\.test\\.\\)`));
    assert.match(await hub.log(), /done \(from 2:5020\/99@fidonet, OK\b/);
    // The query went out as the FTS-5004 name itself: no search domain appended.
    assert.match(dns.output(), /query\[SRV\] _binkp\._tcp\.f1\.n5020\.z2\.binkp\.test from 127\.0\.0\.1/);

    const message = await pollFails(n, 'nx', 'dns');
    assert.match(message, /^f7\.n5020\.z2\.binkp\.test\. is not in DNS \(no SRV, A or AAAA record\): check hub_address and dns_root, or set hub_hostname$/);
    const status = await n.run(['status']);
    assert.match(status.stdout, /^nx .*dns \d+s ago \(f7\.n5020\.z2\.binkp\.test\. is not in DNS/m);
  });

  test('several hosts: refused ones are skipped, the session line says which one answered', async () => {
    const hub = await binkd();
    const closed = 1; // nothing listens on port 1 of loopback
    const n = await node([{ name: 'hub', address: HUB, host: `127.0.0.1:${closed};localhost:${closed};127.0.0.1:${hub.port}`, port: 1 }]);
    const out = await pollOk(n, 'hub');
    assert.match(out, new RegExp(`ok via 127\\.0\\.0\\.1:${hub.port} \\(config\\)`));
    const none = await node([{ name: 'hub', address: HUB, host: `127.0.0.1:${closed};localhost:${closed}`, port: 1 }]);
    const message = await pollFails(none, 'hub', 'refused');
    assert.match(message, /^every host refused: connection to 127\.0\.0\.1:1 refused; /);
  });
});

describe('binkps', () => {
  test('the scripted hub behind node:tls: a certificate from tls_ca; a pinned fingerprint; a wrong pin; no trust at all', async () => {
    const plain = await scripted();
    const front = await tlsFront(plain.port, certs.server);
    cleanups.push(front.stop);
    const self = await tlsFront(plain.port, certs.selfSigned);
    cleanups.push(self.stop);
    let i = 0;
    const hub = (name: string, host: string, port: number, extra: Record<string, string>): HubSection => ({ name, address: AKAS[i++]!, host, port, extra: { tls: 'required', ...extra } });
    const wrongPin = certs.server.fingerprint;
    const n = await node([
      hub('ca', 'localhost', front.port, { tls_ca: certs.ca.cert, ip_family: '4' }),
      hub('pinned', '127.0.0.1', self.port, { tls_fingerprint: certs.selfSigned.fingerprint }),
      hub('wrongpin', '127.0.0.1', self.port, { tls_fingerprint: wrongPin }),
      hub('untrusted', '127.0.0.1', self.port, {}),
      hub('insecure', '127.0.0.1', self.port, { tls_insecure: 'yes' }),
    ]);
    assert.match(await pollOk(n, 'ca'), new RegExp(`ok via localhost:${front.port} \\[127\\.0\\.0\\.1\\] \\(config, TLS\\)`));
    assert.equal((await hubState(n, 'ca')).reached!.tls, true);
    assert.match(await pollOk(n, 'pinned'), /\(config, TLS\)/);
    assert.equal(plain.sessions.length, 2);
    // CRAM-MD5 still runs inside TLS.
    assert.ok(plain.sessions.every((s) => s.frames.some((f) => f.dir === 'in' && f.kind === 'command' && f.name === 'M_PWD' && /^CRAM-MD5-/.test(f.arg))));

    const mismatch = await pollFails(n, 'wrongpin', 'fingerprint');
    const fp = certs.selfSigned.fingerprint.toLowerCase();
    assert.match(mismatch, new RegExp(`presented a certificate with SHA-256 ${fp}, not the pinned tls_fingerprint`));
    const untrusted = await pollFails(n, 'untrusted', 'tls');
    assert.match(untrusted, new RegExp(`TLS certificate of 127\\.0\\.0\\.1:${self.port} failed verification: .*\\(its SHA-256 is ${fp}\\); set tls_ca`));
    assert.equal(plain.sessions.length, 2, 'nothing reached the hub when the certificate was refused');

    const insecure = await pollOk(n, 'insecure');
    assert.match(insecure, /tls_insecure = yes: the hub's certificate is not checked/);
  });

  test('tls = required against a plaintext hub fails and never falls back; tls = yes falls back to plain binkp', async () => {
    const plain = await scripted();
    const n = await node([
      { name: 'required', address: HUB, host: '127.0.0.1', port: plain.port, extra: { tls: 'required' } },
      { name: 'yes', address: AKAS[1]!, host: '127.0.0.1', port: plain.port, extra: { tls: 'yes' } },
    ]);
    const message = await pollFails(n, 'required', 'tls');
    assert.match(message, new RegExp(`127\\.0\\.0\\.1:${plain.port} did not complete a TLS handshake .*required never does`));
    assert.ok(plain.sessions.every((s) => !s.frames.some((f) => f.dir === 'in' && f.kind === 'command' && f.name === 'M_PWD')), 'no password went out in plain text');
    const out = await pollOk(n, 'yes');
    assert.match(out, /tls = yes: trying plain binkp/);
    assert.match(out, new RegExp(`ok via 127\\.0\\.0\\.1:${plain.port} \\(config\\)`));
  });

  test('the real binkd behind stunnel4, pinned', async () => {
    const hub = await binkd();
    const tunnel = await startStunnel(dir, hub.port, certs.selfSigned);
    cleanups.push(() => tunnel.stop());
    const n = await node([{ name: 'hub', address: HUB, host: '127.0.0.1', port: tunnel.port, extra: { tls: 'required', tls_fingerprint: certs.selfSigned.fingerprint } }]);
    assert.match(await pollOk(n, 'hub'), /\(config, TLS\)/);
    const log = await hub.log();
    assert.match(log, /pwd protected session \(MD5\)/);
    assert.match(log, /done \(from 2:5020\/99@fidonet, OK\b/);
  });
});

describe('proxies', () => {
  test('SOCKS5 through danted, without and with user/password; a wrong password is proxy_auth', async () => {
    const hub = await binkd();
    const open = await startDanted(dir);
    cleanups.push(() => open.stop());
    const user = `fnpt${process.pid % 100000}`;
    const removeUser = await makeSystemUser(user, 'Pr0xyPass');
    cleanups.push(removeUser);
    const authed = await startDanted(dir, { user: true });
    cleanups.push(() => authed.stop());
    let i = 0;
    const at = (name: string, proxy: string): HubSection => ({ name, address: AKAS[i++]!, host: '127.0.0.1', port: hub.port, extra: { proxy } });
    const n = await node([
      at('open', `socks5://127.0.0.1:${open.port}`),
      at('authed', `socks5://${user}:Pr0xyPass@127.0.0.1:${authed.port}`),
      at('badpass', `socks5://${user}:wrong@127.0.0.1:${authed.port}`),
      at('down', `socks5://127.0.0.1:1`),
    ]);
    assert.match(await pollOk(n, 'open'), new RegExp(`ok via 127\\.0\\.0\\.1:${hub.port} \\(config, via socks5://127\\.0\\.0\\.1:${open.port}\\)`));
    assert.match(await pollOk(n, 'authed'), /via socks5:/);
    const bad = await pollFails(n, 'badpass', 'proxy_auth');
    assert.match(bad, /refused our credentials .*check the user and password in proxy/);
    assert.doesNotMatch(bad, /wrong/, 'the password is never shown');
    const refused = await pollFails(n, 'down', 'proxy');
    assert.match(refused, /^proxy socks5:\/\/127\.0\.0\.1:1: refused the connection/);
    assert.equal((await hub.log()).match(/done \(from 2:5020\/99@fidonet, OK\b/g)?.length, 2);
  });

  test('HTTP CONNECT, with Basic auth; a missing password is proxy_auth', async () => {
    const hub = await binkd();
    const proxy = await httpConnectProxy('fido:net');
    cleanups.push(proxy.stop);
    const n = await node([
      { name: 'good', address: HUB, host: '127.0.0.1', port: hub.port, extra: { proxy: `http://fido:net@127.0.0.1:${proxy.port}` } },
      { name: 'noauth', address: AKAS[1]!, host: '127.0.0.1', port: hub.port, extra: { proxy: `http://127.0.0.1:${proxy.port}` } },
    ]);
    assert.match(await pollOk(n, 'good'), /via http:\/\/127\.0\.0\.1:\d+\)/);
    assert.deepEqual(proxy.requests[0], `CONNECT 127.0.0.1:${hub.port} HTTP/1.1`);
    const message = await pollFails(n, 'noauth', 'proxy_auth');
    assert.match(message, /HTTP 407 Proxy Authentication Required/);
    assert.match(await readFile(hub.logPath, 'utf8'), /done \(from 2:5020\/99@fidonet, OK\b/);
  });
});
