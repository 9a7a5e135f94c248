import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import {
  ConsoleSink,
  Logger,
  MemorySink,
  formatJson,
  formatJsonObject,
  formatText,
  levelEnabled,
  type LogEvent,
} from '../../../src/ops/logger.js';

// Local time, because formatText prints local time as binkd does.
const WHEN = new Date(2026, 10, 22, 3, 18, 5);

const event = (over: Partial<LogEvent> = {}): LogEvent => ({
  time: WHEN,
  level: 'info',
  category: 'general',
  message: 'hello',
  ...over,
});

/** A writable that collects what is written, standing in for stderr. */
function collector(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('levelEnabled', () => {
  test('a sink takes its own level and everything above', () => {
    assert.equal(levelEnabled('info', 'debug'), false);
    assert.equal(levelEnabled('info', 'info'), true);
    assert.equal(levelEnabled('info', 'warning'), true);
    assert.equal(levelEnabled('error', 'warning'), false);
    assert.equal(levelEnabled('debug', 'debug'), true);
  });
});

describe('Logger', () => {
  test('notice reaches every sink, even a quiet cron run\'s errors-only console (hold transitions)', () => {
    const quietConsole = new MemorySink('error');
    const log = new Logger([quietConsole]).child({ hub: 'fido' });
    log.info('not shown');
    log.notice('warning', 'on hold until 2026-03-01T16:00:00Z after 5 failures');
    log.notice('info', 'out of hold: the call succeeded');
    assert.deepEqual(quietConsole.events.map((e) => [e.level, e.hub, e.message]), [
      ['warning', 'fido', 'on hold until 2026-03-01T16:00:00Z after 5 failures'],
      ['info', 'fido', 'out of hold: the call succeeded'],
    ]);
  });

  test('each sink filters by its own level', () => {
    const verbose = new MemorySink('debug');
    const quiet = new MemorySink('warning');
    const log = new Logger([verbose, quiet]);
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    assert.deepEqual(verbose.events.map((e) => e.message), ['d', 'i', 'w', 'e']);
    assert.deepEqual(quiet.events.map((e) => e.message), ['w', 'e']);
    assert.deepEqual(verbose.events.map((e) => e.level), ['debug', 'info', 'warning', 'error']);
  });

  test('categories: general by default, error for error(), or as given', () => {
    const sink = new MemorySink();
    const log = new Logger([sink]);
    log.info('a');
    log.error('b');
    log.debug('c', undefined, 'protocol');
    log.log('info', 'stats', 'd', { bytes: 1 });
    assert.deepEqual(
      sink.events.map((e) => e.category),
      ['general', 'error', 'protocol', 'stats'],
    );
    assert.deepEqual(sink.events[3]!.fields, { bytes: 1 });
    assert.ok(sink.events[0]!.time instanceof Date);
  });

  test('child() merges its context over the parent and leaves the parent alone', () => {
    const sink = new MemorySink();
    const root = new Logger([sink], { runId: 'r1' });
    const session = root.child({ sessionId: 's1', hub: 'hub1' });
    const other = session.child({ hub: 'hub2' });
    root.info('root');
    session.info('session');
    other.info('other');
    const ctx = sink.events.map((e) => [e.runId, e.sessionId, e.hub]);
    assert.deepEqual(ctx, [
      ['r1', undefined, undefined],
      ['r1', 's1', 'hub1'],
      ['r1', 's1', 'hub2'],
    ]);
  });

  test('enabled() says whether any sink listens at a level', () => {
    const log = new Logger([new MemorySink('warning'), new MemorySink('info')]);
    assert.equal(log.enabled('debug'), false);
    assert.equal(log.enabled('info'), true);
    assert.equal(new Logger([]).enabled('error'), false);
  });

  test('setLevel() changes every sink, in both directions', () => {
    const a = new MemorySink('info');
    const b = new MemorySink('error');
    const log = new Logger([a, b]);
    log.setLevel('debug');
    log.debug('now visible');
    assert.equal(a.events.length, 1);
    assert.equal(b.events.length, 1);
    log.setLevel('error');
    log.warn('hidden');
    assert.equal(a.events.length, 1);
    assert.deepEqual(log.sinkList.map((s) => s.level), ['error', 'error']);
  });

  test('close() closes every sink that can be closed, in order', async () => {
    const closed: string[] = [];
    const sink = (name: string): MemorySink =>
      Object.assign(new MemorySink(), {
        close: async () => {
          closed.push(name);
        },
      });
    await new Logger([sink('a'), new MemorySink(), sink('b')]).close();
    assert.deepEqual(closed, ['a', 'b']);
  });
});

describe('formatJson', () => {
  test('stable field names in order: time level category run session hub message, then fields', () => {
    const line = formatJson(
      event({ runId: 'r1', sessionId: 's2', hub: 'hub1', category: 'transfer', fields: { file: 'a.pkt', bytes: 10 } }),
    );
    const o = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(Object.keys(o), ['time', 'level', 'category', 'run', 'session', 'hub', 'message', 'file', 'bytes']);
    assert.deepEqual(o, {
      time: WHEN.toISOString(),
      level: 'info',
      category: 'transfer',
      run: 'r1',
      session: 's2',
      hub: 'hub1',
      message: 'hello',
      file: 'a.pkt',
      bytes: 10,
    });
    assert.ok(!line.includes('\n'));
  });

  test('absent context and undefined fields are dropped; fields cannot overwrite the fixed names', () => {
    const o = JSON.parse(formatJson(event({ fields: { gone: undefined, kept: null, message: 'spoof', level: 'x' } })));
    assert.deepEqual(o, { time: WHEN.toISOString(), level: 'info', category: 'general', message: 'hello', kept: null });
  });

  test('the text-built line is byte for byte what stringifying the object gives', () => {
    const own = (k: string, v: unknown): Record<string, unknown> => Object.defineProperty({}, k, { value: v, enumerable: true });
    const cases: Partial<LogEvent>[] = [
      {},
      { runId: 'r1', sessionId: 's2', hub: 'hub "quoted" \\ \u001b[2J', message: 'received a.pkt → /in/a.pkt\r\u0085' },
      { fields: { run: 'no run id, kept', session: 'kept', hub: 'kept', file: 'a', size: 8192, ok: true, none: null } },
      { runId: 'r', sessionId: 's', hub: 'h', fields: { run: 'dropped', session: 'dropped', hub: 'dropped', time: 1, level: 2, category: 3, message: 4 } },
      { fields: { constructor: 'inherited name', toString: 'x', hasOwnProperty: 'y', valueOf: 1 } },
      { fields: own('__proto__', { a: 1 }) },
      { fields: { when: new Date(0), list: [1, 'two', { three: 3 }], nested: { deep: { n: -0 } }, nan: Number.NaN, inf: Infinity } },
      { fields: { fn: () => 1, sym: Symbol('s'), undef: undefined, json: { toJSON: () => 'custom' } } },
      { fields: { 'quote"key': 1, 'line\nkey': 2, 'ünïcödé': 'ü', '\ud800': 'lone' } },
      { fields: { b: 1, 10: 'index', 2: 'index', a: 2, '01': 'not an index' } },
    ];
    for (const c of cases) assert.equal(formatJson(event(c)), formatJsonObject(event(c)), JSON.stringify(Object.keys(c.fields ?? {})));
  });

  test('a message with newlines stays on one line', () => {
    const line = formatJson(event({ message: 'a\nb' }));
    assert.ok(!line.includes('\n'));
    assert.equal((JSON.parse(line) as { message: string }).message, 'a\nb');
  });
});

describe('formatText', () => {
  test('binkd-like: mark, local day month time, [run/session], hub, message', () => {
    assert.equal(
      formatText(event({ level: 'error', runId: 'r1', sessionId: 's2', hub: 'hub1', message: 'boom' })),
      '! 22 Nov 03:18:05 [r1/s2] hub1: boom',
    );
  });

  test('level marks: debug "-", info " ", warning "?"', () => {
    assert.equal(formatText(event({ level: 'debug', runId: 'r' })), '- 22 Nov 03:18:05 [r] hello');
    assert.equal(formatText(event({ level: 'info', runId: 'r' })), '  22 Nov 03:18:05 [r] hello');
    assert.equal(formatText(event({ level: 'warning', runId: 'r' })), '? 22 Nov 03:18:05 [r] hello');
  });

  test('without run or session ids, the process id stands in', () => {
    assert.equal(formatText(event()), `  22 Nov 03:18:05 [${process.pid}] hello`);
  });
});

describe('MemorySink / ConsoleSink', () => {
  test('MemorySink keeps the events it is given and defaults to debug', () => {
    const sink = new MemorySink();
    assert.equal(sink.level, 'debug');
    const ev = event();
    sink.write(ev);
    assert.deepEqual(sink.events, [ev]);
  });

  test('ConsoleSink writes short lines: hub prefix, warning/error tag, no colour when asked', () => {
    const { stream, text } = collector();
    const sink = new ConsoleSink('debug', stream, false);
    sink.write(event({ hub: 'hub1', message: 'connected' }));
    sink.write(event({ level: 'warning', message: 'slow' }));
    sink.write(event({ level: 'error', hub: 'hub1', message: 'refused' }));
    assert.equal(text(), 'hub1: connected\nwarning: slow\nhub1: error: refused\n');
  });

  test('ConsoleSink colours warnings and errors when colour is on', () => {
    const { stream, text } = collector();
    const sink = new ConsoleSink('debug', stream, true);
    sink.write(event({ level: 'error', message: 'x' }));
    sink.write(event({ level: 'info', message: 'y' }));
    assert.equal(text(), '\x1b[31merror: x\x1b[0m\ny\n');
  });
});
