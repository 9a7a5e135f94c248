import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { interleave, race, RaceError, type Attempt } from '../../../src/net/eyeballs.js';
import { ManualClock } from '../../helpers/clock.js';
import type { IpAddress } from '../../../src/net/dns.js';

const flush = () => new Promise<void>((r) => setImmediate(r));

/** Attempts the test settles by hand. */
class Dialer {
  readonly started: { address: string; at: number; resolve: (v: string) => void; reject: (e: Error) => void; cancelled: boolean }[] = [];
  constructor(private readonly timers: ManualClock) {}
  connect = (a: IpAddress): Attempt<string> => {
    let resolve!: (v: string) => void;
    let reject!: (e: Error) => void;
    const done = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const rec = { address: a.address, at: this.timers.now(), resolve, reject, cancelled: false };
    this.started.push(rec);
    return { done, cancel: () => (rec.cancelled = true) };
  };
  get(address: string) {
    const r = this.started.find((s) => s.address === address);
    assert.ok(r, `${address} was not attempted`);
    return r;
  }
}

const v6 = (address: string): IpAddress => ({ address, family: 6 });
const v4 = (address: string): IpAddress => ({ address, family: 4 });

describe('interleave (RFC 8305 §4)', () => {
  test('alternates families starting with the first', () => {
    const out = interleave([v6('a'), v6('b'), v6('c'), v4('1'), v4('2')]).map((x) => x.address);
    assert.deepEqual(out, ['a', '1', 'b', '2', 'c']);
    assert.deepEqual(interleave([v4('1'), v6('a')]).map((x) => x.address), ['1', 'a']);
  });
});

describe('race (RFC 8305 §5)', () => {
  test('a black-holed IPv6 does not hold up IPv4: the next attempt starts after the delay', async () => {
    const timers = new ManualClock(0);
    const d = new Dialer(timers);
    const { result } = race({ addresses: [v6('2001:db8::1'), v4('127.0.0.1')], delay: 250, connect: d.connect, timers });
    await flush();
    assert.deepEqual(d.started.map((s) => s.address), ['2001:db8::1']);
    await timers.advance(249);
    assert.equal(d.started.length, 1);
    await timers.advance(1);
    assert.deepEqual(d.started.map((s) => [s.address, s.at]), [['2001:db8::1', 0], ['127.0.0.1', 250]]);
    d.get('127.0.0.1').resolve('v4 socket');
    assert.deepEqual(await result, { value: 'v4 socket', address: v4('127.0.0.1') });
    assert.equal(d.get('2001:db8::1').cancelled, true);
  });

  test('a slow first attempt is not abandoned when the delay passes: it may still win', async () => {
    const timers = new ManualClock(0);
    const d = new Dialer(timers);
    const { result } = race({ addresses: [v6('far'), v4('farther')], delay: 250, connect: d.connect, timers });
    await timers.advance(250);
    d.get('farther').reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    await timers.advance(2000);
    assert.equal(d.get('far').cancelled, false);
    d.get('far').resolve('slow but there');
    assert.equal((await result).value, 'slow but there');
  });

  test('a failure starts the next attempt at once', async () => {
    const timers = new ManualClock(0);
    const d = new Dialer(timers);
    const { result } = race({ addresses: [v4('a'), v4('b')], delay: 250, connect: d.connect, timers });
    await flush();
    d.get('a').reject(new Error('refused'));
    await flush();
    assert.equal(d.get('b').at, 0);
    d.get('b').resolve('b');
    assert.equal((await result).address.address, 'b');
  });

  test('all failed: RaceError with every error in order; abort ends the race', async () => {
    const timers = new ManualClock(0);
    const d = new Dialer(timers);
    const { result } = race({ addresses: [v4('a'), v4('b')], delay: 250, connect: d.connect, timers });
    await flush();
    d.get('a').reject(new Error('one'));
    await flush();
    d.get('b').reject(new Error('two'));
    await assert.rejects(result, (err: unknown) => err instanceof RaceError && err.errors.map((e) => e.address.address).join() === 'a,b' && /a: one; b: two/.test(err.message));

    const d2 = new Dialer(timers);
    const r2 = race({ addresses: [v4('x')], delay: 250, connect: d2.connect, timers });
    r2.abort(new Error('connect_timeout'));
    await assert.rejects(r2.result, /connect_timeout/);
    assert.equal(d2.get('x').cancelled, true);
  });
});
