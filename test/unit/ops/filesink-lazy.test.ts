/**
 * The file sink opens nothing and loads no rotation code until the first line: an idle cron run
 * with log_file set must not pay for its log. (A file of its own: node --test runs each file in a
 * fresh process, so the module cache below starts empty.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { FileSink } from '../../../src/ops/filesink.js';
import { Logger } from '../../../src/ops/logger.js';
import { withTempDir } from '../../helpers/tmp.js';

const requireCjs = createRequire(import.meta.url);
const rotationLoaded = (): boolean => Object.keys(requireCjs.cache).some((k) => k.includes('rotating-file-stream'));
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

test('no file and no rotating-file-stream before the first line; both after it', async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, 'sub', 'fnpoll.log');
    const quiet = new Logger([new FileSink({ file, level: 'info', format: 'json', rotateSize: 0, maxFiles: 3 })]);
    quiet.debug('below the level');
    await quiet.close();
    assert.equal(await exists(join(dir, 'sub')), false, 'directory created without a line');
    assert.equal(rotationLoaded(), false, 'rotating-file-stream loaded without a line');

    const log = new Logger([new FileSink({ file, level: 'info', format: 'json', rotateSize: 0, maxFiles: 3 })]);
    log.info('hello');
    await log.close();
    assert.equal(rotationLoaded(), true);
    assert.match(await readFile(file, 'utf8'), /"message":"hello"/);
  }, 'fnpoll-filesink-lazy-');
});

test('a directory that cannot be made is reported once through onError at the first line', async () => {
  await withTempDir(async (dir) => {
    const blocker = join(dir, 'not-a-dir');
    await writeFile(blocker, 'x');
    const errors: Error[] = [];
    const sink = new FileSink({ file: join(blocker, 'fnpoll.log'), level: 'info', format: 'text', rotateSize: 0, maxFiles: 3, onError: (e) => errors.push(e) });
    assert.equal(errors.length, 0, 'nothing happens at construction');
    const log = new Logger([sink]);
    log.info('one');
    log.info('two');
    await log.close();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /not-a-dir/);
  }, 'fnpoll-filesink-lazy-');
});
