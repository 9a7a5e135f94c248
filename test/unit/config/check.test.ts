import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { checkConfig, hubLines, nodeCheckIo, type CheckIo } from '../../../src/config/check.js';
import { parseIni } from '../../../src/config/ini.js';
import { buildConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';

let root: string;
let counter = 0;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'fnpoll-check-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh directory per test, holding its fnpoll.ini's relative paths. */
async function fresh(): Promise<{ base: string; file: string }> {
  const base = path.join(root, `t${++counter}`);
  await mkdir(base);
  return { base, file: path.join(base, 'fnpoll.ini') };
}

/** A config whose relative paths resolve under `base`; `poller` lines go into [poller], `rest` after it. */
function config(file: string, node: Record<string, string>, poller = '', rest = ''): Config {
  const lines = Object.entries({ address: '2:5020/1234', outbound: 'out', inbound: 'in', ...node }).map(
    ([k, v]) => `${k} = ${v}`,
  );
  const text = `[node]\n${lines.join('\n')}\n[poller]\nstate_file = state/state.json\n${poller}${rest}`;
  return buildConfig(parseIni(text, file), file);
}

/** Real file system, with chosen paths failing or reporting another device. */
function io(overrides: { denied?: string[]; statError?: Record<string, string>; dev?: Record<string, number> }): CheckIo {
  const fail = (code: string): never => {
    throw Object.assign(new Error(code), { code });
  };
  return {
    async stat(p) {
      const code = overrides.statError?.[p];
      if (code) fail(code);
      const st = await nodeCheckIo.stat(p);
      const dev = overrides.dev?.[p];
      return dev === undefined ? st : { isDirectory: () => st.isDirectory(), dev };
    },
    async access(p, mode) {
      if (overrides.denied?.includes(p)) fail('EACCES');
      await nodeCheckIo.access(p, mode);
    },
  };
}

describe('checkConfig: directories', () => {
  test('existing directories, and missing ones under a writable directory, are fine; nothing is created', async () => {
    const { base, file } = await fresh();
    await mkdir(path.join(base, 'out'));
    await mkdir(path.join(base, 'in'));
    const c = config(file, {}, 'log_file = logs/deep/fnpoll.log\nmetrics_file = m/fnpoll.prom\n');
    const r = await checkConfig(c);
    assert.deepEqual(r.problems, []);
    for (const p of ['in/tmp', 'in/insecure', 'state', 'logs', 'm']) {
      assert.equal(existsSync(path.join(base, p)), false, p);
    }
  });

  test('a path that is a file', async () => {
    const { base, file } = await fresh();
    const f = path.join(base, 'afile');
    await writeFile(f, 'x');
    const r = await checkConfig(config(file, { outbound: f }));
    assert.deepEqual(r.problems, [`${file} [node] outbound: "${f}" is not a directory`]);
  });

  test('a path below a file cannot be created', async () => {
    const { base, file } = await fresh();
    const f = path.join(base, 'afile');
    await writeFile(f, 'x');
    const c = config(file, { inbound: 'afile/in', inbound_insecure: 'ok', temp_inbound: 'ok2' });
    const r = await checkConfig(c);
    assert.deepEqual(r.problems, [
      `${file} [node] inbound: "${path.join(f, 'in')}" does not exist and cannot be created: "${f}" is not a directory`,
    ]);
  });

  test('not writable: the directory itself, or the ancestor that would hold it', async () => {
    const { base, file } = await fresh();
    const out = path.join(base, 'out');
    const inbound = path.join(base, 'in');
    await mkdir(out);
    await mkdir(inbound);
    await mkdir(path.join(inbound, 'tmp'));
    await mkdir(path.join(inbound, 'insecure'));
    const c = config(file, {}, 'log_file = /nonexistent-fnpoll-x/y/fnpoll.log\n');
    const r = await checkConfig(c, io({ denied: [out, base, '/'] }));
    assert.deepEqual(r.problems, [
      `${file} [node] outbound: "${out}" is not writable: permission denied (EACCES); check the owner and mode of the path and its parent directories for the user fnpoll runs as`,
      `${file} [poller] state_file: "${path.join(base, 'state')}" does not exist and cannot be created: "${base}" is not writable: permission denied (EACCES); check the owner and mode of the path and its parent directories for the user fnpoll runs as`,
      `${file} [poller] log_file: "/nonexistent-fnpoll-x/y" does not exist and cannot be created: "/" is not writable: permission denied (EACCES); check the owner and mode of the path and its parent directories for the user fnpoll runs as`,
    ]);
  });

  test('a stat error other than ENOENT', async () => {
    const { base, file } = await fresh();
    const inbound = path.join(base, 'in');
    const r = await checkConfig(config(file, {}), io({ statError: { [inbound]: 'EACCES' } }));
    assert.deepEqual(r.problems, [`${file} [node] inbound: "${inbound}" cannot be checked: permission denied (EACCES); check the owner and mode of the path and its parent directories for the user fnpoll runs as`]);
  });

  test('an ancestor that cannot be examined is named once', async () => {
    const { base, file } = await fresh();
    const deep = path.join(base, 'deep');
    const r = await checkConfig(config(file, { inbound: 'deep/in' }), io({ statError: { [deep]: 'EIO' } }));
    assert.deepEqual(r.problems, [`${file} [node] inbound: "${path.join(deep, 'in')}" cannot be checked: "${deep}": input/output error (EIO); the disk may be failing; see the kernel log`]);
  });

  test('each directory is reported once (lock and log file in one directory)', async () => {
    const { base, file } = await fresh();
    const f = path.join(base, 'afile');
    await writeFile(f, 'x');
    const r = await checkConfig(config(file, {}, `lock_file = ${f}/x.lock\nlog_file = ${f}/fnpoll.log\n`));
    assert.deepEqual(r.problems, [`${file} [poller] lock_file: "${f}" is not a directory`]);
  });

  test('hub outbound overrides are checked; hubs without one are not checked again', async () => {
    const { base, file } = await fresh();
    const f = path.join(base, 'afile');
    await writeFile(f, 'x');
    const hubs = `[fsx]\nhub = 21:1/1\nbinkp = a.example\noutbound = afile\n[fido]\nhub = 2:5020/1\nbinkp = b.example\n`;
    const r = await checkConfig(config(file, {}, '', hubs));
    assert.deepEqual(r.problems, [`${file} [fsx] outbound: "${f}" is not a directory`]);
  });
});

describe('checkConfig: temp inbound on the same filesystem', () => {
  test('a different device is a problem for each inbound', async () => {
    const { base, file } = await fresh();
    const inbound = path.join(base, 'in');
    const tmp = path.join(inbound, 'tmp');
    await mkdir(tmp, { recursive: true });
    const r = await checkConfig(config(file, {}), io({ dev: { [tmp]: 4242 } }));
    assert.deepEqual(r.problems, [
      `${file} [node] temp_inbound: "${tmp}" is on another filesystem than inbound "${inbound}" (the final rename would not be atomic)`,
      `${file} [node] temp_inbound: "${tmp}" is on another filesystem than inbound_insecure "${path.join(inbound, 'insecure')}" (the final rename would not be atomic)`,
    ]);
  });

  test('missing directories compare by their nearest existing ancestor', async () => {
    const { base, file } = await fresh();
    // None of in, in/tmp, in/insecure exists: all resolve to `base`, one device.
    const r = await checkConfig(config(file, {}), io({ dev: { [base]: 7 } }));
    assert.deepEqual(r.problems, []);
    // A temp inbound elsewhere whose nearest ancestor is on another device.
    const other = path.join(base, 'mnt');
    await mkdir(other);
    const r2 = await checkConfig(config(file, { temp_inbound: 'mnt/partial' }), io({ dev: { [other]: 8 } }));
    assert.equal(r2.problems.length, 2);
    assert.match(r2.problems[0]!, /temp_inbound: ".*mnt\/partial" is on another filesystem than inbound /);
  });
});

describe('checkConfig: hub lines', () => {
  test('one aligned line per hub; the password is never shown', async () => {
    const { base, file } = await fresh();
    const hubs =
      `[fidonet]\nhub_address = 2:5020/1@fidonet\nhub_hostname = hub.example\npassword = TopSecret\nuse_cram = no\n` +
      `[fsxNet]\nhub = 21:1/100\nbinkp = [2001:db8::1]:24555\nnr_mode = yes\npoll_frequency = 90m\noutbound = /srv/fsx\n`;
    const { lines } = await checkConfig(config(file, {}, '', hubs), io({ denied: [] }));
    const out = path.join(base, 'out');
    assert.deepEqual(lines, [
      `fidonet  2:5020/1@fidonet  binkp hub.example:24554  cram=no nr=no  poll every 1h  password set  outbound ${out}`,
      `fsxNet   21:1/100          binkp [2001:db8::1]:24555  cram=yes nr=yes  poll every 90m  no password  outbound /srv/fsx`,
    ]);
    assert.ok(!lines.join('\n').includes('TopSecret'));
    assert.deepEqual(hubLines([]), []);
  });
});
