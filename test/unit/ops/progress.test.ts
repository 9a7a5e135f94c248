import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ProgressDisplay,
  bar,
  fit,
  formatProgressLine,
  progressWanted,
  type ProgressSnapshot,
  type ProgressTimers,
} from '../../../src/ops/progress.js';

/**
 * A fake terminal: interprets what the display writes (text, `\n`, `\r`, cursor up `ESC[nA`,
 * clear to end of screen `ESC[J`) into screen lines, so tests can assert what a user would see.
 */
class FakeTty {
  readonly isTTY = true;
  columns = 60;
  readonly raw: string[] = [];
  screen: string[] = [''];
  row = 0;
  col = 0;

  write(chunk: string | Uint8Array): boolean {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    this.raw.push(text);
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (c === '\x1b') {
        const m = /^\x1b\[(\d*)([AJ])/.exec(text.slice(i));
        assert.ok(m, `unexpected escape sequence ${JSON.stringify(text.slice(i, i + 6))}`);
        if (m[2] === 'A') this.row = Math.max(0, this.row - Number(m[1] || 1));
        else {
          this.screen[this.row] = (this.screen[this.row] ?? '').slice(0, this.col);
          this.screen.length = this.row + 1;
        }
        i += m[0].length - 1;
      } else if (c === '\n') {
        this.row++;
        this.col = 0;
        if (this.screen.length <= this.row) this.screen.push('');
      } else if (c === '\r') {
        this.col = 0;
      } else {
        const line = (this.screen[this.row] ?? '').padEnd(this.col);
        this.screen[this.row] = line.slice(0, this.col) + c + line.slice(this.col + 1);
        this.col++;
      }
    }
    return true;
  }

  /** Visible lines, without the empty line the cursor sits on. */
  get lines(): string[] {
    const l = [...this.screen];
    while (l.length && l[l.length - 1] === '') l.pop();
    return l;
  }
}

function fakeTimers(): ProgressTimers & { fire(): void; active: number } {
  let fn: (() => void) | undefined;
  let active = 0;
  return {
    every(_ms, f) {
      fn = f;
      active++;
      return () => {
        fn = undefined;
        active--;
      };
    },
    fire() {
      fn?.();
    },
    get active() {
      return active;
    },
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function snap(over: Partial<ProgressSnapshot> = {}): Mutable<ProgressSnapshot> {
  return { filesSent: 0, bytesSent: 0, filesReceived: 0, bytesReceived: 0, filesSkipped: 0, ...over };
}

describe('progressWanted', () => {
  test('only on a TTY, only interactive, never with --quiet or --json', () => {
    const tty = { isTTY: true };
    assert.equal(progressWanted(tty, { interactive: true }), true);
    assert.equal(progressWanted({ isTTY: false }, { interactive: true }), false);
    assert.equal(progressWanted({}, { interactive: true }), false);
    assert.equal(progressWanted(tty, { interactive: false }), false);
    assert.equal(progressWanted(tty, { interactive: true, quiet: true }), false);
    assert.equal(progressWanted(tty, { interactive: true, json: true }), false);
  });
});

describe('line formatting', () => {
  test('bar and fit', () => {
    assert.equal(bar(0, 10), '[          ]');
    assert.equal(bar(0.5, 10), '[=====>    ]');
    assert.equal(bar(1, 10), '[==========]');
    assert.equal(bar(NaN, 4), '[    ]');
    assert.equal(fit('abcdef', 4), 'abc…');
    assert.equal(fit('abc', 4), 'abc');
  });

  test('connecting, receiving with ETA, sending', () => {
    assert.equal(formatProgressLine('fido', undefined, { total: 0, received: 0 }, 80), 'fido  connecting…');
    const line = formatProgressLine(
      'fido',
      snap({ receivingName: 'nodelist.zip', receivingOffset: 1024 * 1024, receivingSize: 4 * 1024 * 1024, bytesReceived: 1024 * 1024, sendingName: '0000abcd.pkt', bytesSent: 2048, filesSent: 1 }),
      { total: 102400, received: 102400 },
      200,
    );
    assert.equal(
      line,
      'fido  recv nodelist.zip [=====>              ]  25% 1 MiB/4 MiB ETA 30s  send 0000abcd.pkt  total 1 MiB (1 file done), 100 KiB/s',
    );
  });

  test('both directions with sizes fit 80 columns, every part still labelled', () => {
    const line = formatProgressLine(
      'fidonet',
      snap({
        receivingName: 'nodelist.z47', receivingOffset: 1024 * 1024, receivingSize: 4 * 1024 * 1024, bytesReceived: 1024 * 1024,
        sendingName: '0123abcd.pkt', sendingOffset: 8 * 1024, sendingSize: 32 * 1024, bytesSent: 8 * 1024,
      }),
      { total: 150_000, received: 100_000 },
      80,
    );
    assert.ok([...line].length <= 80, `${[...line].length}: ${line}`);
    assert.doesNotMatch(line, /…$/, 'nothing cut off');
    assert.match(line, /^fidonet  recv nodelist\.z47 .*25%.*  send 0123abcd\.pkt .*25%.*  total 1 MiB, 146 KiB\/s$/);
  });

  test('never wider than the terminal', () => {
    const line = formatProgressLine('fido', snap({ receivingName: 'x'.repeat(300), receivingSize: 10, receivingOffset: 1 }), { total: 1, received: 1 }, 50);
    assert.equal([...line].length, 50);
  });
});

describe('ProgressDisplay', () => {
  test('draws one line per session, keeps log lines above, and leaves only them when stopped', () => {
    const tty = new FakeTty();
    const timers = fakeTimers();
    let now = 0;
    const d = new ProgressDisplay({ stream: tty, now: () => now, timers });
    const a = snap();
    const b = snap();
    d.start();
    d.add('fido', 'fido', () => a);
    d.add('fsx', 'fsxnet', () => b);
    assert.equal(tty.lines.length, 2);
    assert.match(tty.lines[0]!, /^fido {4}total 0 B, 0 B\/s$/);

    // Someone logs while the bars are up: the line goes above them, the bars are redrawn below.
    tty.write('fido: receiving nodelist.zip (4096 bytes)\n');
    assert.equal(tty.lines.length, 3);
    assert.equal(tty.lines[0], 'fido: receiving nodelist.zip (4096 bytes)');

    // A tick a second later: counters moved, the rate follows.
    a.receivingName = 'nodelist.zip';
    a.receivingSize = 4096;
    a.receivingOffset = 0;
    timers.fire();
    now = 1000;
    a.bytesReceived = 2048;
    a.receivingOffset = 2048;
    timers.fire();
    assert.equal(tty.lines[1], 'fido    recv nodelist.zip  50%  total 2 KiB, 2 KiB/s', 'narrow: the compact form, nothing cut');
    tty.columns = 200;
    d.tick();
    assert.equal(tty.lines[1], 'fido    recv nodelist.zip [==========>         ]  50% 2 KiB/4 KiB ETA 1s  total 2 KiB, 2 KiB/s');

    d.remove('fsx');
    tty.write('fsxnet: 21:1/100 ok: sent 0 files\n');
    d.remove('fido');
    tty.write('fido: 2:5020/1 ok: received 1 file\n');
    d.stop();
    assert.deepEqual(tty.lines, ['fido: receiving nodelist.zip (4096 bytes)', 'fsxnet: 21:1/100 ok: sent 0 files', 'fido: 2:5020/1 ok: received 1 file']);
    assert.equal(timers.active, 0);
  });

  test('stop() gives the stream its own write back: later output has no cursor movement', () => {
    const tty = new FakeTty();
    const ownWrite = tty.write;
    const d = new ProgressDisplay({ stream: tty, timers: fakeTimers() });
    d.start();
    assert.notEqual(tty.write, ownWrite);
    d.add('fido', 'fido', () => snap());
    d.stop();
    d.stop();
    assert.equal(tty.write, ownWrite);
    tty.raw.length = 0;
    tty.write('after\n');
    assert.deepEqual(tty.raw, ['after\n']);
    assert.deepEqual(tty.lines, ['after']);
  });

  test('a partial line from someone else is not split by a redraw', () => {
    const tty = new FakeTty();
    const timers = fakeTimers();
    const d = new ProgressDisplay({ stream: tty, timers });
    d.start();
    d.add('fido', 'fido', () => snap());
    tty.write('half a ');
    timers.fire();
    tty.write('line\n');
    d.stop();
    assert.deepEqual(tty.lines, ['half a line']);
  });

  test('unused, it writes nothing at all', () => {
    const tty = new FakeTty();
    const d = new ProgressDisplay({ stream: tty, timers: fakeTimers() });
    d.start();
    d.tick();
    d.stop();
    assert.deepEqual(tty.raw, []);
  });

  test('sessionStarted / sessionEnded fit executeRun callbacks', () => {
    const tty = new FakeTty();
    const d = new ProgressDisplay({ stream: tty, timers: fakeTimers() });
    d.start();
    const hub = { key: 'fido', name: 'Fido' } as Parameters<typeof d.sessionEnded>[0];
    d.sessionStarted(hub, { progress: snap({ sendingName: 'a.pkt' }) } as Parameters<typeof d.sessionStarted>[1]);
    assert.match(tty.lines[0]!, /^Fido {2}send a\.pkt/);
    d.sessionEnded(hub);
    assert.deepEqual(tty.lines, []);
    d.stop();
  });
});
