/**
 * Issue 14: a real install. `npm pack` makes the package; `npm i -g` installs it into a temp
 * prefix; the installed `fnpoll` runs from an unrelated directory (the demo: a whole poll on
 * loopback), `man fnpoll` finds its page, and the shipped systemd units pass
 * `systemd-analyze verify` against that install.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/node.js';
import { Cleanups } from '../helpers/interop.js';

const run = promisify(execFile);
const cleanups = new Cleanups();
after(() => cleanups.run());

/** npm's own variables from `npm test` (npm_config_prefix, ...) must not steer the install. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && !k.startsWith('FNPOLL_')) env[k] = v;
  return { ...env, ...extra };
}

test('npm pack, npm i -g into a temp prefix: fnpoll runs from any directory, man fnpoll, systemd units verify', async () => {
  const tmp = await cleanups.tempDir('fnpoll-install-');
  const prefix = join(tmp, 'prefix');
  const elsewhere = await cleanups.tempDir('fnpoll-elsewhere-');
  const env = cleanEnv();

  // The test run built dist/ already; --ignore-scripts keeps pack from building again.
  const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT, env });
  const tgz = (await readdir(tmp)).find((f) => /^fnpoll-.*\.tgz$/.test(f));
  assert.ok(tgz, `npm pack made no tarball:\n${packed.stdout}${packed.stderr}`);
  await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(tmp, tgz)], { cwd: elsewhere, env, timeout: 120_000 });

  const fnpoll = join(prefix, 'bin', 'fnpoll');
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const v = await run(fnpoll, ['--version'], { cwd: elsewhere, env });
  assert.match(v.stdout, new RegExp(version.replace(/\./g, '\\.')));
  const demo = await run(fnpoll, ['demo'], { cwd: elsewhere, env, timeout: 60_000 });
  assert.match(demo.stdout, /The hub received: .*\.pkt/);
  assert.match(demo.stdout, /Our inbound .* holds: .*welcome\.txt/);

  const pkg = join(prefix, 'lib', 'node_modules', 'fnpoll');
  for (const f of ['LICENSE', 'README.md', 'fnpoll.ini.example', 'cron.example', 'systemd/fnpoll.service', 'systemd/fnpoll.timer']) {
    await readFile(join(pkg, f));
  }

  const manEnv = cleanEnv({ MANPATH: join(prefix, 'share', 'man') });
  const where = await run('man', ['-w', 'fnpoll'], { cwd: elsewhere, env: manEnv });
  assert.match(where.stdout.trim(), /man1\/fnpoll\.1(\.gz)?$/);
  const page = await run('man', ['fnpoll'], { cwd: elsewhere, env: { ...manEnv, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' } });
  assert.match(page.stdout, /EXIT STATUS/);

  // The units as shipped, with ExecStart= pointing at this install instead of /usr/bin/fnpoll.
  const units = join(tmp, 'units');
  await run('mkdir', [units]);
  const service = (await readFile(join(pkg, 'systemd', 'fnpoll.service'), 'utf8')).replace('ExecStart=/usr/bin/fnpoll ', `ExecStart=${fnpoll} `);
  assert.match(service, new RegExp(`ExecStart=${fnpoll} run`));
  await writeFile(join(units, 'fnpoll.service'), service);
  await writeFile(join(units, 'fnpoll.timer'), await readFile(join(pkg, 'systemd', 'fnpoll.timer')));
  const verify = await run('systemd-analyze', ['verify', join(units, 'fnpoll.service'), join(units, 'fnpoll.timer')], { env: manEnv });
  assert.equal(verify.stderr, '', 'systemd-analyze verify: every warning counts');
});
