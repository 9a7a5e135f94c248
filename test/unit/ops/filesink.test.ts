import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FLUSH_INTERVAL_MS, FileSink, type FileSinkOptions } from '../../../src/ops/filesink.js';
import { Logger } from '../../../src/ops/logger.js';
import { withTempDir } from '../../helpers/tmp.js';

const ROTATED = /^fnpoll\.log\.\d{8}T\d{4}-\d{2}\.gz$/;

function sink(dir: string, over: Partial<FileSinkOptions> = {}): FileSink {
  return new FileSink({ file: join(dir, 'fnpoll.log'), level: 'info', format: 'json', rotateSize: 0, maxFiles: 5, ...over });
}

/** Parse JSON lines, failing on any line that is not a JSON object. */
function jsonLines(text: string): Record<string, unknown>[] {
  assert.ok(text === '' || text.endsWith('\n'), 'file does not end with a newline');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const o = JSON.parse(l) as unknown;
      assert.equal(typeof o, 'object', l);
      return o as Record<string, unknown>;
    });
}

async function rotatedFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.gz')).sort();
}

function messagesOf(chunk: string): unknown[] {
  return jsonLines(chunk).map((l) => l.message);
}

/** Resolves once `done()` holds; fails after 5 s. */
async function waitFor(done: () => boolean): Promise<void> {
  for (let waited = 0; !done(); waited += 5) {
    if (waited > 5000) assert.fail('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Write `count` info lines of about 140 bytes: `line 0`, `line 1`, ... */
function writeLines(log: Logger, count: number): void {
  for (let i = 0; i < count; i++) log.info(`line ${i}`, { pad: 'x'.repeat(40) });
}

describe('FileSink', () => {
  test('a flood faster than the disk is capped: lines beyond the queue limit are dropped and counted', async () => {
    await withTempDir(async (dir) => {
      const fileSink = sink(dir, { level: 'debug', maxQueued: 64 * 1024 });
      const log = new Logger([fileSink], { runId: 'r1' });
      // One turn of the event loop: nothing reaches the disk meanwhile, as under an M_NUL flood.
      let peak = 0;
      for (let i = 0; i < 10_000; i++) {
        log.debug(`recv M_NUL X${i} ${'y'.repeat(100)}`, undefined, 'protocol');
        peak = Math.max(peak, fileSink.queued);
      }
      assert.ok(peak < 64 * 1024 + 1024, `queued ${peak} characters`);
      await log.close();
      const lines = jsonLines(await readFile(join(dir, 'fnpoll.log'), 'utf8'));
      assert.ok(lines.length < 1000, `${lines.length} lines written`);
      const summary = lines[lines.length - 1]!;
      assert.equal(summary.level, 'warning');
      const dropped = Number(/^(\d+) log lines dropped/.exec(String(summary.message))?.[1]);
      assert.equal(dropped + lines.length - 1, 10_000, String(summary.message));
    }, 'fnpoll-filesink-');
  });

  test('after a flood, the next line that fits is preceded by the count of those dropped', async () => {
    await withTempDir(async (dir) => {
      const fileSink = sink(dir, { maxQueued: 4 * 1024 });
      const log = new Logger([fileSink]);
      writeLines(log, 200);
      // Let the stream write what it has; then there is room again.
      await new Promise<void>((resolve) => {
        const wait = (): void => (fileSink.queued === 0 ? resolve() : void setTimeout(wait, 5));
        wait();
      });
      log.info('after the flood');
      await log.close();
      const messages = jsonLines(await readFile(join(dir, 'fnpoll.log'), 'utf8')).map((l) => String(l.message));
      assert.match(messages[messages.length - 2]!, /^\d+ log lines dropped: the log file could not keep up$/);
      assert.equal(messages[messages.length - 1], 'after the flood');
      const dropped = Number(/^(\d+)/.exec(messages[messages.length - 2]!)![1]);
      assert.equal(messages.length - 2 + dropped, 200);
    }, 'fnpoll-filesink-');
  });

  test('a quiet line goes out at the end of its turn; lines that keep coming go out together, once per interval', async () => {
    await withTempDir(async (dir) => {
      let now = 1_000_000;
      const fileSink = sink(dir, { now: () => now });
      const log = new Logger([fileSink]);
      log.info('first');
      // The stream exists from the first line on: record what is handed to it.
      const stream = (fileSink as unknown as { stream: { write: (chunk: string) => boolean } }).stream;
      const chunks: string[] = [];
      const write = stream.write.bind(stream);
      stream.write = (chunk: string) => {
        chunks.push(chunk);
        return write(chunk);
      };
      const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
      await turn();
      assert.deepEqual(chunks.map(messagesOf), [['first']]);

      // Within the interval: the next lines wait for it, across turns, and then go as one chunk.
      now += FLUSH_INTERVAL_MS / 2;
      log.info('second');
      await turn();
      log.info('third');
      await turn();
      assert.equal(chunks.length, 1, 'a line went out before the interval was over');
      await waitFor(() => chunks.length === 2);
      assert.deepEqual(chunks.map(messagesOf), [['first'], ['second', 'third']]);

      // A clock that jumped back waits no longer than the interval (not an hour).
      now -= 3_600_000;
      log.info('fourth');
      await waitFor(() => chunks.length === 3);
      // close() writes what waits at once.
      now += 3_600_000;
      log.info('fifth');
      await log.close();
      assert.deepEqual(chunks.map(messagesOf), [['first'], ['second', 'third'], ['fourth'], ['fifth']]);
      const lines = jsonLines(await readFile(join(dir, 'fnpoll.log'), 'utf8')).map((l) => l.message);
      assert.deepEqual(lines, ['first', 'second', 'third', 'fourth', 'fifth']);
    }, 'fnpoll-filesink-');
  });

  test('writes JSON lines that read back after close(), filtered by level', async () => {
    await withTempDir(async (dir) => {
      const log = new Logger([sink(join(dir, 'sub'))], { runId: 'r1' });
      log.debug('not written');
      log.info('first', { file: 'a.pkt' });
      log.child({ hub: 'hub1', sessionId: 's1' }).warn('second', undefined, 'protocol');
      await log.close();
      const lines = jsonLines(await readFile(join(dir, 'sub', 'fnpoll.log'), 'utf8'));
      assert.deepEqual(
        lines.map(({ time, ...rest }) => (assert.equal(typeof time, 'string'), rest)),
        [
          { level: 'info', category: 'general', run: 'r1', message: 'first', file: 'a.pkt' },
          { level: 'warning', category: 'protocol', run: 'r1', session: 's1', hub: 'hub1', message: 'second' },
        ],
      );
    }, 'fnpoll-filesink-');
  });

  test('appends to an existing log file', async () => {
    await withTempDir(async (dir) => {
      for (const message of ['one', 'two']) {
        const log = new Logger([sink(dir)]);
        log.info(message);
        await log.close();
      }
      const lines = jsonLines(await readFile(join(dir, 'fnpoll.log'), 'utf8'));
      assert.deepEqual(lines.map((l) => l.message), ['one', 'two']);
    }, 'fnpoll-filesink-');
  });

  test('text format writes binkd-like lines', async () => {
    await withTempDir(async (dir) => {
      const log = new Logger([sink(dir, { format: 'text' })], { runId: 'r1' });
      log.error('boom');
      await log.close();
      assert.match(await readFile(join(dir, 'fnpoll.log'), 'utf8'), /^! \d\d \w{3} \d\d:\d\d:\d\d \[r1\] boom\n$/);
    }, 'fnpoll-filesink-');
  });

  test('rotates by size into a gzipped file; no line is lost or reordered', async () => {
    await withTempDir(async (dir) => {
      const log = new Logger([sink(dir, { rotateSize: 2048, maxFiles: 10 })]);
      writeLines(log, 20); // ~2.8 KB: one rotation at 2 KiB
      await log.close();
      const rotated = await rotatedFiles(dir);
      assert.equal(rotated.length, 1, `rotated files: ${rotated.join(', ')}`);
      assert.match(rotated[0]!, ROTATED);
      const old = jsonLines(gunzipSync(await readFile(join(dir, rotated[0]!))).toString('utf8'));
      const live = jsonLines(await readFile(join(dir, 'fnpoll.log'), 'utf8'));
      assert.ok(old.length > 0 && live.length > 0);
      assert.deepEqual(
        [...old, ...live].map((l) => l.message),
        Array.from({ length: 20 }, (_, i) => `line ${i}`),
      );
    }, 'fnpoll-filesink-');
  });

  test('keeps at most maxFiles rotated files over many rotations, the newest ones', async () => {
    await withTempDir(async (dir) => {
      const log = new Logger([sink(dir, { rotateSize: 2048, maxFiles: 2 })]);
      const total = 200; // ~28 KB: about a dozen rotations
      writeLines(log, total);
      await log.close();
      const rotated = await rotatedFiles(dir);
      assert.equal(rotated.length, 2, `rotated files: ${rotated.join(', ')}`);
      const kept: number[] = [];
      for (const name of rotated) {
        assert.match(name, ROTATED);
        const lines = jsonLines(gunzipSync(await readFile(join(dir, name))).toString('utf8'));
        kept.push(...lines.map((l) => Number(String(l.message).slice('line '.length))));
      }
      const live = jsonLines(await readFile(join(dir, 'fnpoll.log'), 'utf8'));
      kept.push(...live.map((l) => Number(String(l.message).slice('line '.length))));
      kept.sort((a, b) => a - b);
      // What survives is one unbroken run of the most recent lines.
      assert.equal(kept[kept.length - 1], total - 1);
      assert.deepEqual(kept, Array.from({ length: kept.length }, (_, i) => total - kept.length + i));
      assert.ok(kept.length < total);
    }, 'fnpoll-filesink-');
  });

  test('a stream failure is reported once through onError; later writes and close() are harmless', async () => {
    await withTempDir(async (dir) => {
      await mkdir(join(dir, 'fnpoll.log')); // the log "file" is a directory
      const errors: Error[] = [];
      let reported!: () => void;
      const failed = new Promise<void>((resolve) => (reported = resolve));
      const s = sink(dir, {
        onError: (err) => {
          errors.push(err);
          reported();
        },
      });
      const log = new Logger([s]);
      log.info('lost');
      await failed;
      log.info('also lost');
      await log.close();
      assert.equal(errors.length, 1);
      assert.match(errors[0]!.message, /fnpoll\.log/);
    }, 'fnpoll-filesink-');
  });
});
