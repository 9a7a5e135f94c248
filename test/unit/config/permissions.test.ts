/**
 * Local security (issue 11): a config that holds hub passwords must not be readable by others
 * (a warning, an error with strict_permissions), and inbound_mode is validated.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ExitCode } from '../../../src/errors.js';
import { loadConfig, passwordExposure } from '../../../src/config/load.js';

const NODE = '[node]\naddress = 2:5020/99\noutbound = out\ninbound = in\n';
const HUB = '[hub]\nhub_address = 2:5020/1\nhub_hostname = hub.example.net\n';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fnpoll-perm-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function config(text: string, mode: number): Promise<string> {
  const file = join(dir, `c${++n}.ini`);
  await writeFile(file, text);
  await chmod(file, mode);
  return file;
}

describe('a config holding passwords', () => {
  test('readable by group or others: one warning naming the file, the mode and the fix', async () => {
    for (const [mode, who] of [[0o644, 'group and others'], [0o640, 'group'], [0o604, 'others']] as const) {
      const file = await config(`${NODE}${HUB}password = secret\n`, mode);
      const c = await loadConfig(file);
      assert.deepEqual(c.warnings, [
        `${file}: holds hub passwords but is readable by ${who} (mode ${mode.toString(8)}); chmod 600 ${file}`,
      ]);
    }
  });

  test('mode 600 or 620 (nobody else reads it), or no password at all: no warning', async () => {
    assert.deepEqual((await loadConfig(await config(`${NODE}${HUB}password = secret\n`, 0o600))).warnings, []);
    assert.deepEqual((await loadConfig(await config(`${NODE}${HUB}password = secret\n`, 0o620))).warnings, []);
    assert.deepEqual((await loadConfig(await config(`${NODE}${HUB}password = -\n`, 0o644))).warnings, []);
    assert.deepEqual((await loadConfig(await config(`${NODE}${HUB}`, 0o644))).warnings, []);
  });

  test('with strict_permissions = yes it is a configuration error (exit 78), one line', async () => {
    const file = await config(`${NODE}[poller]\nstrict_permissions = yes\n${HUB}password = secret\n`, 0o644);
    await assert.rejects(loadConfig(file), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.exitCode, ExitCode.CONFIG);
      assert.deepEqual(err.problems, [
        `${file}: holds hub passwords but is readable by group and others (mode 644); chmod 600 ${file} (strict_permissions = yes)`,
      ]);
      return true;
    });
    const ok = await config(`${NODE}[poller]\nstrict_permissions = yes\n${HUB}password = secret\n`, 0o600);
    assert.equal((await loadConfig(ok)).poller.strictPermissions, true);
  });

  test('passwordExposure looks at the permission bits only', async () => {
    const c = await loadConfig(await config(`${NODE}${HUB}password = secret\n`, 0o600));
    assert.equal(passwordExposure(c, 0o100600), undefined);
    assert.match(passwordExposure(c, 0o100644)!, /readable by group and others \(mode 644\)/);
  });
});

describe('inbound_mode', () => {
  test('octal with or without a leading 0; must let the owner read and write', async () => {
    const mode = async (v: string): Promise<number> => (await loadConfig(await config(`${NODE}inbound_mode = ${v}\n`, 0o600))).node.inboundMode;
    assert.equal(await mode('600'), 0o600);
    assert.equal(await mode('0664'), 0o664);
    assert.equal((await loadConfig(await config(NODE, 0o600))).node.inboundMode, 0o640, 'default');
    for (const [v, why] of [['rw-r-----', 'is not a file mode in octal'], ['0800', 'is not a file mode in octal'], ['0440', 'must let the owner read and write']]) {
      const file = await config(`${NODE}inbound_mode = ${v}\n`, 0o600);
      await assert.rejects(loadConfig(file), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.problems.length, 1);
        assert.match(err.problems[0]!, new RegExp(`:5 \\[node\\] inbound_mode: "${v}" ${why}`));
        return true;
      });
    }
  });
});
