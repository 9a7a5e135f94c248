/**
 * Issue 14: `fnpoll import binkd.cfg`. A node that polled its hub with `binkd -p -P` switches to
 * fnpoll: the same binkd.cfg (with an `include`d node line) first drives the real binkd caller,
 * then goes through `fnpoll import`; the imported file passes `fnpoll check`, and `fnpoll now`
 * polls the same binkd hub the same way: same address, same password, CRAM-MD5 required by the
 * hub (`-md` on its side and ours), NR mode, files both ways. The hub's own log is the witness.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { leftoverBinkdProcesses, runBinkdPoll } from '../helpers/binkd.js';
import { BIN, fileHash, pseudoRandomBytes, sha256 } from '../helpers/node.js';
import { Cleanups, assertExit, escapeRe } from '../helpers/interop.js';
import { spawn } from 'node:child_process';
import type { RunResult } from '../helpers/node.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const PASSWORD = 'Imp0rt-pw';
/** Our outbound base name for the hub (FTS-5005: %04x%04x of net/node). */
const HUB_BSO = '139c0001';

const cleanups = new Cleanups();
after(async () => {
  await cleanups.run();
  assert.deepEqual(await leftoverBinkdProcesses(), [], 'a binkd process outlived its test');
});

function fnpoll(args: string[], cwd: string): Promise<RunResult> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** The hub's log lines of the session with us that ended last. */
function lastSession(log: string): string {
  const lines = log.split('\n');
  let end = lines.length - 1;
  while (end >= 0 && !/done \(from 2:5020\/99@fidonet/.test(lines[end]!)) end--;
  let start = end;
  while (start > 0 && !/incoming session with/.test(lines[start]!)) start--;
  return lines.slice(start, end + 1).join('\n');
}

test('a binkd.cfg imported by fnpoll polls the same binkd hub the same way', async () => {
  const hub = await cleanups.startHub({ address: HUB, nodes: [{ address: US, password: PASSWORD, flags: '-md' }] });
  const dir = await cleanups.tempDir('fnpoll-import-');
  const outbound = join(dir, 'outb');
  const inbound = join(dir, 'inbound');
  for (const d of [outbound, inbound, join(dir, 'insecure'), join(dir, 'temp'), join(dir, 'files')]) await mkdir(d, { recursive: true });
  const cfg = join(dir, 'binkd.cfg');
  await writeFile(
    cfg,
    [
      '# the node as it polled with `binkd -p -P` from cron',
      `log ${join(dir, 'binkd.log')}`,
      'loglevel 6',
      'conlog 0',
      `pid-file ${join(dir, 'binkd.pid')}`,
      `domain fidonet ${outbound} 2`,
      'domain fido alias-for fidonet',
      `address ${US}`,
      'sysname "Imported Node"',
      'sysop "Ivan Sysop"',
      'location "Loopback"',
      'nodeinfo 115200,TCP,BINKP',
      `inbound ${inbound}`,
      `inbound-nonsecure ${join(dir, 'insecure')}`,
      `temp-inbound ${join(dir, 'temp')}`,
      'timeout 30s',
      'connect-timeout 10s',
      'try 3',
      'hold 1h',
      'percents',
      'include links.inc',
      '',
    ].join('\n'),
  );
  // A 3D address: the import must complete it from our own address, as binkd does.
  await writeFile(join(dir, 'links.inc'), `# our hub\nnode 5020/1 -md -nr 127.0.0.1:${hub.port} ${PASSWORD}\n`);

  // 1. binkd polls with it.
  const first = pseudoRandomBytes(20_000, 1);
  await writeFile(join(dir, 'files', 'first.txt'), first);
  await writeFile(join(outbound, `${HUB_BSO}.flo`), `^${join(dir, 'files', 'first.txt')}\n`);
  const binkd = await runBinkdPoll(['-p', '-P', HUB, cfg], dir);
  assert.equal(binkd.timedOut, false);
  const binkdLog = await readFile(join(dir, 'binkd.log'), 'latin1');
  assert.match(binkdLog, new RegExp(`done \\(to ${escapeRe(HUB)}, OK`), binkdLog);
  const byBinkd = lastSession(await hub.log());

  // 2. fnpoll imports it.
  const ini = join(dir, 'fnpoll.ini');
  const imported = await fnpoll(['import', cfg, '-o', ini], dir);
  assertExit(imported, 0);
  for (const kw of ['log', 'loglevel', 'conlog', 'pid-file', 'percents']) {
    assert.match(imported.stderr, new RegExp(`binkd\\.cfg:\\d+: ${kw}: dropped: `), `one line for ${kw}`);
  }
  assert.doesNotMatch(imported.stderr, /: (include|node|domain|address|inbound|try|hold):/, 'carried, not dropped');
  const text = await readFile(ini, 'utf8');
  assert.match(text, /^hub_address = 2:5020\/1@fidonet$/m);
  assert.match(text, new RegExp(`^binkp = 127\\.0\\.0\\.1:${hub.port}$`, 'm'));
  assert.match(text, /^use_cram = yes$/m);
  assert.match(text, /^nr_mode = yes$/m);
  assert.match(text, /^max_retries = 3$/m);
  // The state and log go to this test's dir rather than /var/lib/fnpoll, /var/log/fnpoll.
  await writeFile(
    ini,
    text
      .replace(/^state_file = .*$/m, `state_file = ${join(dir, 'state.json')}`)
      .replace(/^log_file = .*$/m, `log_file = ${join(dir, 'fnpoll.log')}`),
  );
  const check = await fnpoll(['check', '-c', ini], dir);
  assertExit(check, 0);
  assert.equal(check.stderr, '', 'no warning about the imported file');

  // 3. fnpoll polls with the imported file: a file each way.
  const second = pseudoRandomBytes(30_000, 2);
  await writeFile(join(dir, 'files', 'second.txt'), second);
  await writeFile(join(outbound, `${HUB_BSO}.flo`), `^${join(dir, 'files', 'second.txt')}\n`);
  const toUs = pseudoRandomBytes(10_000, 3);
  const base = hub.outboundFor(US);
  await writeFile(`${base}.dat`, toUs);
  await writeFile(`${base}.flo`, `^${base}.dat\n`);
  const now = await fnpoll(['now', '-c', ini], dir);
  assertExit(now, 0);
  const byFnpoll = lastSession(await hub.log());
  assert.notEqual(byFnpoll, byBinkd);

  // The hub saw the same caller, authenticated the same way, in the same mode.
  for (const [what, re] of [
    ['our address', new RegExp(`incoming session with .*\\n(?:.*\\n)*.*addr: ${escapeRe(US)}`)],
    ['a CRAM-MD5 password', /pwd protected session \(MD5\)/],
    ['NR mode', /\bNR\b/],
    ['success', /done \(from 2:5020\/99@fidonet, OK/],
  ] as const) {
    assert.match(byBinkd, re, `binkd's session: ${what}\n${byBinkd}`);
    assert.match(byFnpoll, re, `fnpoll's session: ${what}\n${byFnpoll}`);
  }
  assert.equal(await fileHash(join(hub.inbound, 'first.txt')), sha256(first));
  assert.equal(await fileHash(join(hub.inbound, 'second.txt')), sha256(second));
  assert.equal(await fileHash(join(inbound, '139c0063.dat')), sha256(toUs), 'received into the imported inbound');
});
