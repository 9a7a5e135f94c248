import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errCode, errnoText, exists, isErrno, unlinkIfPresent } from '../../src/files.js';
import { IoError } from '../../src/errors.js';

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: x`), { code });

describe('errno helpers', () => {
  test('errCode and isErrno read the code of anything thrown', () => {
    assert.equal(errCode(errno('EACCES')), 'EACCES');
    assert.equal(errCode(new Error('plain')), undefined);
    assert.equal(errCode(undefined), undefined);
    assert.equal(isErrno(errno('ENOTDIR'), 'ENOENT', 'ENOTDIR'), true);
    assert.equal(isErrno(errno('EIO'), 'ENOENT'), false);
  });

  test('errnoText spells the code out, with a hint', () => {
    assert.match(errnoText(errno('EACCES')), /^permission denied \(EACCES\); check the owner and mode/);
    assert.equal(errnoText(errno('EACCES'), false), 'permission denied (EACCES)');
    assert.match(errnoText(errno('EROFS')), /ReadWritePaths=/);
    assert.equal(errnoText(errno('EWHATEVER')), 'EWHATEVER');
    assert.equal(errnoText(new Error('no code here')), 'no code here');
  });
});

describe('file helpers', () => {
  test('unlinkIfPresent and exists', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fnpoll-files-'));
    try {
      const f = path.join(dir, 'a');
      await writeFile(f, 'x');
      assert.equal(await exists(f), true);
      assert.equal(await unlinkIfPresent(f), true);
      assert.equal(await exists(f), false);
      assert.equal(await unlinkIfPresent(f), false, 'already gone is fine');
      await symlink(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
      assert.equal(await exists(path.join(dir, 'dangling')), true, 'a dangling symlink is something');
      await assert.rejects(unlinkIfPresent(dir, 'spool dir'), (err: unknown) => err instanceof IoError && /^spool dir .*: cannot remove it: /.test(err.message));
      await writeFile(f, 'x');
      await assert.rejects(exists(path.join(f, 'below-a-file')), { code: 'ENOTDIR' }, 'only ENOENT means absent');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('errorText', () => {
  test("Node's own message, plus what to do about it", async () => {
    const { errorText } = await import('../../src/errors.js');
    const eacces = Object.assign(new Error("EACCES: permission denied, open '/var/lib/fnpoll/state.json'"), { code: 'EACCES' });
    assert.equal(errorText(eacces), "EACCES: permission denied, open '/var/lib/fnpoll/state.json'; check the owner and mode of the path and its parent directories for the user fnpoll runs as");
    const enoent = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), { code: 'ENOENT' });
    assert.equal(errorText(enoent), "ENOENT: no such file or directory, open '/x'", 'no hint where there is nothing to add');
    assert.equal(errorText(new Error('plain')), 'plain');
  });
});
