import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  Inbound,
  MAX_NAME_BYTES,
  SYNC_EARLY_BYTES,
  candidateNames,
  keepsExtension,
  sanitizeName,
  type IncomingFile,
  type InboundDirs,
  type PartialFile,
} from '../../../src/bso/inbound.js';
import { IoError } from '../../../src/errors.js';
import { GroupSync, type SyncKind } from '../../../src/bso/durable.js';
import { fstatSync } from 'node:fs';

let root: string;
let n = 0;

before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'fnpoll-inbound-'));
});
after(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

/** Fresh, not yet existing directories: Inbound creates them. */
function dirs(): InboundDirs {
  const d = path.join(root, `t${++n}`);
  return { secure: path.join(d, 'in'), insecure: path.join(d, 'in', 'insecure'), temp: path.join(d, 'in', 'tmp') };
}

const MTIME = 1_700_000_000; // unix s

function inbound(d: InboundDirs, extra: Partial<ConstructorParameters<typeof Inbound>[0]> = {}): Inbound {
  return new Inbound({ dirs: d, hubKey: '2:5020/1', minFree: 0, partialMaxAge: 0, ...extra });
}

function incoming(name: string, data: Buffer | string, mtime = MTIME): IncomingFile {
  return { name, size: Buffer.byteLength(data), mtime };
}

/** Receive a whole file in one go, like a session would. */
async function receive(ib: Inbound, f: IncomingFile, data: Buffer | string, secure = true): Promise<string> {
  const offer = await ib.offer(f, secure);
  assert.deepEqual(offer, { action: 'receive', offset: 0 });
  const p = await ib.open(f, 0);
  p.write([Buffer.from(data)]);
  return ib.complete(f, p, secure);
}

async function writePartial(ib: Inbound, f: IncomingFile, data: string): Promise<PartialFile> {
  const p = await ib.open(f, 0);
  p.write([Buffer.from(data)]);
  await p.close();
  return p;
}

async function tempFiles(d: InboundDirs): Promise<string[]> {
  return (await fsp.readdir(d.temp)).sort();
}

describe('sanitizeName', () => {
  const cases: [string, string][] = [
    ['00000001.pkt', '00000001.pkt'],
    ['file with space.zip', 'file with space.zip'],
    ['a/b', 'a_b'],
    ['C:\\x', 'C__x'],
    ['a\u0000b\u0007c\u001fd\u007fe\u0085f', 'a_b_c_d_e_f'],
    ['tab\there\nnl', 'tab_here_nl'],
    ['what?*<>|"', 'what______'],
    ['', '_'],
    ['.', '_'],
    ['..', '__'],
    ['.hidden', '_hidden'],
    ['ünïcödé.txt', 'ünïcödé.txt'],
    ['bad\ud800surrogate', 'bad_surrogate'],
  ];
  for (const [input, want] of cases) {
    test(JSON.stringify(input), () => assert.equal(sanitizeName(input), want));
  }

  test('../../etc/passwd cannot climb', () => {
    const s = sanitizeName('../../etc/passwd');
    assert.equal(s, '___.._etc_passwd');
    assert.equal(path.dirname(path.resolve('/in', s)), '/in');
  });

  test('long names are cut at a character boundary, keeping the extension', () => {
    const s = sanitizeName('é'.repeat(200) + '.zip');
    assert.ok(Buffer.byteLength(s) <= MAX_NAME_BYTES);
    assert.ok(s.endsWith('é.zip'), s.slice(-8));
    assert.equal(Buffer.byteLength(s), MAX_NAME_BYTES - ((MAX_NAME_BYTES - 4) % 2));
    const noExt = sanitizeName('x'.repeat(1000));
    assert.equal(noExt, 'x'.repeat(MAX_NAME_BYTES));
  });

  test('every character below U+0100, first and inside a name, as the rule says (the plain-name fast path agrees)', () => {
    const unsafe = (c: number): boolean => c < 0x20 || (c >= 0x7f && c <= 0x9f) || '/\\:*?"<>|'.includes(String.fromCharCode(c));
    for (let c = 0; c < 0x100; c++) {
      const ch = String.fromCharCode(c);
      const kept = unsafe(c) ? '_' : ch;
      assert.equal(sanitizeName(`a${ch}b`), `a${kept}b`, `U+${c.toString(16)} inside`);
      assert.equal(sanitizeName(`${ch}b`), `${ch === '.' ? '_' : kept}b`, `U+${c.toString(16)} first`);
    }
    assert.equal(sanitizeName('x'.repeat(MAX_NAME_BYTES)), 'x'.repeat(MAX_NAME_BYTES));
    assert.equal(sanitizeName('x'.repeat(MAX_NAME_BYTES - 3) + '.pkt'), 'x'.repeat(MAX_NAME_BYTES - 4) + '.pkt');
  });
});

describe('candidate names on a clash', () => {
  test('which names keep their extension', () => {
    for (const name of ['a.pkt', 'A.PKT', 'x.req', 'x.tic', 'x.zic', 'x.su0', 'x.MO9', 'x.tha', 'x.fr1', 'x.sa5', 'x.we0', 'x.tu3']) {
      assert.equal(keepsExtension(name), true, name);
    }
    for (const name of ['x.zip', 'x.su', 'x.pkt.1', 'x.xx0', 'pkt', 'x.tic0']) {
      assert.equal(keepsExtension(name), false, name);
    }
  });

  test('.pkt: hex counter over the tail of the base name (binkd RENAME_BODY)', () => {
    const it = candidateNames('abcdefgh.pkt');
    const got = Array.from({ length: 20 }, () => it.next().value);
    assert.deepEqual(got.slice(0, 3), ['abcdefgh.pkt', 'abcdefg0.pkt', 'abcdefg1.pkt']);
    assert.equal(got[16], 'abcdefgf.pkt');
    assert.deepEqual(got.slice(17, 20), ['abcdef00.pkt', 'abcdef01.pkt', 'abcdef02.pkt']);
  });

  test('a short base grows instead of giving up', () => {
    const got = [...candidateNames('a.su0')].slice(0, 19);
    assert.deepEqual(got.slice(0, 2), ['a.su0', '0.su0']);
    assert.deepEqual(got.slice(16, 19), ['f.su0', '00.su0', '01.su0']);
  });

  test('other names get .1, .2, ...; the list is finite', () => {
    const all = [...candidateNames('readme.txt')];
    assert.deepEqual(all.slice(0, 3), ['readme.txt', 'readme.txt.1', 'readme.txt.2']);
    assert.equal(all.length, 10_001);
  });
});

describe('Inbound.offer', () => {
  test('a new file is received from 0; directories are created', async () => {
    const d = dirs();
    const ib = inbound(d);
    assert.deepEqual(await ib.offer(incoming('a.zip', 'hello'), true), { action: 'receive', offset: 0 });
    assert.equal(existsSync(d.temp), true);
  });

  test('same name, size and mtime (±2 s) in the target inbound: have', async () => {
    const d = dirs();
    const ib = inbound(d);
    await fsp.mkdir(d.secure, { recursive: true });
    const file = path.join(d.secure, 'a.zip');
    await fsp.writeFile(file, 'hello');
    await fsp.utimes(file, MTIME, MTIME);

    assert.deepEqual(await ib.offer(incoming('a.zip', 'hello'), true), { action: 'have', path: file });
    assert.deepEqual(await ib.offer(incoming('a.zip', 'hello', MTIME + 2), true), { action: 'have', path: file });
    assert.deepEqual(await ib.offer(incoming('a.zip', 'hello', MTIME - 2), true), { action: 'have', path: file });
    assert.equal((await ib.offer(incoming('a.zip', 'hello', MTIME + 3), true)).action, 'receive');
    assert.equal((await ib.offer(incoming('a.zip', 'hellO!'), true)).action, 'receive', 'other size');
    assert.equal((await ib.offer(incoming('a.zip', 'hello'), false)).action, 'receive', 'other inbound');
  });

  test('have also finds a copy stored under a clash name (binkd inb_test)', async () => {
    const d = dirs();
    const ib = inbound(d);
    await fsp.mkdir(d.insecure, { recursive: true });
    await fsp.writeFile(path.join(d.insecure, 'abcdefgh.pkt'), 'other content');
    const renamed = path.join(d.insecure, 'abcdefg0.pkt');
    await fsp.writeFile(renamed, 'packet');
    await fsp.utimes(renamed, MTIME, MTIME);
    assert.deepEqual(await ib.offer(incoming('abcdefgh.pkt', 'packet'), false), { action: 'have', path: renamed });
  });

  test('a partial of this hub is resumed at its length', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('big.zip', '0123456789abcdef');
    await writePartial(ib, f, '0123456789');
    assert.deepEqual(await ib.offer(f, true), { action: 'receive', offset: 10 });
    // Another mtime or size is another file.
    assert.deepEqual(await ib.offer({ ...f, mtime: MTIME + 60 }, true), { action: 'receive', offset: 0 });
    assert.deepEqual(await ib.offer({ ...f, size: 17 }, true), { action: 'receive', offset: 0 });
  });

  test("another hub's partial is neither used nor removed", async () => {
    const d = dirs();
    const mine = inbound(d);
    const theirs = inbound(d, { hubKey: '2:5020/2' });
    const f = incoming('big.zip', '0123456789abcdef');
    await writePartial(mine, f, '0123456789');
    assert.deepEqual(await theirs.offer(f, true), { action: 'receive', offset: 0 });
    const p = await theirs.open(f, 0);
    p.write([Buffer.from('0123456789abcdef')]);
    await theirs.complete(f, p, true);
    assert.deepEqual(await mine.offer(f, false), { action: 'receive', offset: 10 });
  });

  test('a partial .pkt is received again from 0 and discarded', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('00000001.pkt', 'x'.repeat(100));
    await writePartial(ib, f, 'x'.repeat(40));
    const warnings: string[] = [];
    const ib2 = inbound(d, { warn: (m) => warnings.push(m) });
    assert.deepEqual(await ib2.offer(f, true), { action: 'receive', offset: 0 });
    assert.deepEqual(await tempFiles(d), []);
    assert.match(warnings[0]!, /discarding partial of 00000001\.pkt/);
  });

  test('a partial longer than the file is discarded', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('a.zip', '12345');
    await writePartial(ib, f, '123456');
    assert.deepEqual(await ib.offer(f, true), { action: 'receive', offset: 0 });
    assert.deepEqual(await tempFiles(d), []);
  });

  test('a complete partial (ND: acknowledged, not yet placed) is resumed at its size, .pkt too', async () => {
    const d = dirs();
    const ib = inbound(d);
    for (const name of ['a.zip', '0000abcd.pkt']) {
      const f = incoming(name, '12345');
      await writePartial(ib, f, '12345');
      assert.deepEqual(await ib.offer(f, true), { action: 'receive', offset: 5 }, name);
      const p = await ib.open(f, 5);
      assert.equal(p.received, 5);
      const final = await ib.complete(f, p, true);
      assert.equal(await fsp.readFile(final, "utf8"), "12345");
    }
  });

  test('min_free: skip when the file would leave too little space', async () => {
    const d = dirs();
    const seen: string[] = [];
    const freeSpace = async (dir: string): Promise<number> => {
      seen.push(dir);
      return 1000;
    };
    const ib = inbound(d, { minFree: 100, freeSpace });
    const big: IncomingFile = { name: 'big.zip', size: 901, mtime: MTIME };
    const r = await ib.offer(big, true);
    assert.equal(r.action, 'skip');
    assert.match(
      r.action === 'skip' ? r.reason : '',
      /has 1000 bytes free; big\.zip needs 901 more, which would leave less than min_free 100/,
    );
    assert.equal(seen[0], path.resolve(d.temp));
    assert.deepEqual(await ib.offer({ ...big, size: 900 }, true), { action: 'receive', offset: 0 });

    // Resuming needs only the rest.
    await writePartial(ib, big, 'x'.repeat(10));
    assert.deepEqual(await ib.offer(big, true), { action: 'receive', offset: 10 });
  });

  test('min_free against the real filesystem', async () => {
    const d = dirs();
    const f = incoming('a.zip', 'hello');
    assert.equal((await inbound(d, { minFree: 1 }).offer(f, true)).action, 'receive');
    assert.equal((await inbound(d, { minFree: Number.MAX_SAFE_INTEGER }).offer(f, true)).action, 'skip');
  });

  test('a bad size is a protocol error', async () => {
    await assert.rejects(inbound(dirs()).offer({ name: 'a', size: -1, mtime: MTIME }, true), /bad size -1/);
  });
});

describe('Inbound.open / PartialFile', () => {
  test('resume writes after the offset and cuts anything beyond it', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('doc.txt', 'abcdefghij');
    await writePartial(ib, f, 'abcdeXXX');
    const p = await ib.open(f, 5);
    assert.equal(p.received, 5);
    p.write([Buffer.from('fghij')]);
    assert.equal(p.received, 10);
    const final = await ib.complete(f, p, true);
    assert.equal(await fsp.readFile(final, 'utf8'), 'abcdefghij');
  });

  test('an offset beyond the partial is refused', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('doc.txt', 'abcdefghij');
    await writePartial(ib, f, 'abc');
    await assert.rejects(ib.open(f, 5), (err: unknown) => err instanceof IoError && /partial has only 3 bytes/.test(err.message));
  });

  test('data is in the partial as soon as write() returns (a kill keeps all of it)', async () => {
    const d = dirs();
    const ib = inbound(d);
    const data = Buffer.alloc(600 * 1024, 7);
    const f = incoming('big.bin', data);
    const p = await ib.open(f, 0);
    // One read's frames in one call, as the session writes them.
    p.write([data.subarray(0, 1024), data.subarray(1024, 4096), data.subarray(4096, 500 * 1024)]);
    const [part] = (await fsp.readdir(d.temp)).filter((n) => n.endsWith('.part'));
    assert.equal((await fsp.stat(path.join(d.temp, part!))).size, 500 * 1024, 'not written through before close');
    p.write([data.subarray(500 * 1024)]);
    const final = await ib.complete(f, p, true);
    assert.deepEqual(await fsp.readFile(final), data);
  });

  test('the sidecar is written only for a partial that outlives its first write, and goes with it', async () => {
    const d = dirs();
    const ib = inbound(d);
    // A packet that arrives whole in one read: no sidecar at any time.
    const small = incoming('0000abcd.pkt', 'whole');
    const p1 = await ib.open(small, 0);
    p1.write([Buffer.from('who'), Buffer.from('le')]);
    assert.deepEqual((await tempFiles(d)).filter((n) => n.endsWith('.json')), []);
    await ib.complete(small, p1, true);
    // A file that arrives in pieces: the sidecar is there before the first piece is written.
    const big = incoming('big.zip', '0123456789');
    const p2 = await ib.open(big, 0);
    assert.deepEqual((await tempFiles(d)).filter((n) => n.endsWith('.json')), []);
    p2.write([Buffer.from('0123')]);
    const [json] = (await tempFiles(d)).filter((n) => n.endsWith('.json'));
    assert.deepEqual(JSON.parse(await fsp.readFile(path.join(d.temp, json!), 'utf8')), { hub: '2:5020/1', name: 'big.zip', size: 10, mtime: MTIME });
    p2.write([Buffer.from('456789')]);
    await ib.complete(big, p2, true);
    assert.deepEqual(await tempFiles(d), []);
    // Closed before any data: kept, with its sidecar.
    const none = incoming('later.zip', 'abc');
    await (await ib.open(none, 0)).close();
    assert.equal((await tempFiles(d)).length, 2);
  });

  test('a large file is synced while it arrives, one sync at a time; the M_GOT sync then writes the tail', async () => {
    const d = dirs();
    const calls: { path: string; kind: SyncKind; fd: number | undefined; bytes: number }[] = [];
    const durable = new GroupSync(true, async (p, kind, fd) => void calls.push({ path: p, kind, fd, bytes: fd === undefined ? -1 : fstatSync(fd).size }), () => false);
    const ib = inbound(d, { durable });
    const MiB = 1024 * 1024;
    const chunk = Buffer.alloc(MiB, 1);
    const f: IncomingFile = { name: 'big.bin', size: 2 * SYNC_EARLY_BYTES + 8 * MiB, mtime: MTIME };
    const p = await ib.open(f, 0);
    for (let at = 0; at < f.size; at += MiB) {
      p.write([chunk]);
      await new Promise((r) => setImmediate(r));
    }
    const early = calls.filter((c) => c.kind === 'file');
    assert.deepEqual(early.map((c) => c.bytes), [SYNC_EARLY_BYTES, 2 * SYNC_EARLY_BYTES], 'a sync each time 16 MiB more arrived');
    assert.ok(early.every((c) => c.fd !== undefined && c.path.endsWith('.part')));
    await ib.complete(f, p, true);
    assert.deepEqual(calls.filter((c) => c.kind === 'file').map((c) => c.bytes), [SYNC_EARLY_BYTES, 2 * SYNC_EARLY_BYTES, f.size]);
    // The fsync debug line: every sync served a request.
    assert.ok(durable.stats.syncs <= durable.stats.requests, JSON.stringify(durable.stats));

    // No early sync for a file that is not larger than the step, nor with fsync = no.
    calls.length = 0;
    const small: IncomingFile = { name: 'small.bin', size: SYNC_EARLY_BYTES, mtime: MTIME };
    const q = await ib.open(small, 0);
    for (let at = 0; at < small.size; at += MiB) q.write([chunk]);
    await ib.complete(small, q, true);
    assert.deepEqual(calls.filter((c) => c.kind === 'file').map((c) => c.bytes), [SYNC_EARLY_BYTES]);
    let unsynced = 0;
    const off = inbound(dirs(), { durable: new GroupSync(false, async () => void unsynced++) });
    const r = await off.open(f, 0);
    for (let at = 0; at < f.size; at += MiB) r.write([chunk]);
    await off.complete(f, r, true);
    assert.equal(unsynced, 0);
    // On a memory filesystem the early sync is asked for once, not at every write after 16 MiB
    // (the debug line counts what was skipped there).
    const mem = new GroupSync(true, async () => void unsynced++, () => true);
    const inMem = inbound(dirs(), { durable: mem });
    const t = await inMem.open(f, 0);
    for (let at = 0; at < f.size; at += MiB) t.write([chunk]);
    await inMem.complete(f, t, true);
    assert.equal(unsynced, 0);
    assert.ok(mem.stats.inMemory <= 3, `${mem.stats.inMemory} syncs skipped for one file`);
  });

  test('an early sync that failed fails the file (no M_GOT); a close waits for the sync in flight', async () => {
    const MiB = 1024 * 1024;
    const chunk = Buffer.alloc(MiB, 2);
    const f: IncomingFile = { name: 'eio.bin', size: SYNC_EARLY_BYTES + 4 * MiB, mtime: MTIME };
    // Linux reports a writeback error once per descriptor: the sync before the M_GOT would pass.
    let failed = false;
    const d = dirs();
    const ib = inbound(d, {
      durable: new GroupSync(true, async (_p, _k, fd) => {
        if (!failed && fd !== undefined) {
          failed = true;
          throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        }
      }, () => false),
    });
    const p = await ib.open(f, 0);
    for (let at = 0; at < f.size; at += MiB) {
      p.write([chunk]);
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(failed);
    await assert.rejects(ib.complete(f, p, true), (err: unknown) => err instanceof IoError && /fsync failed: .*EIO/.test(err.message));
    assert.equal(existsSync(path.join(d.secure, 'eio.bin')), false, 'a file whose data may not be on disk was put in the inbound');

    // A sync still running when the session closes the partial: the descriptor stays open for it.
    let release!: () => void;
    let fdSeen: number | undefined;
    let fdValid = false;
    const held = inbound(dirs(), {
      durable: new GroupSync(true, (_p, _k, fd) => {
        fdSeen = fd;
        return new Promise<void>((r) => (release = () => {
          fdValid = fd !== undefined && fstatSync(fd).size > 0;
          r();
        }));
      }, () => false),
    });
    const q = await held.open({ ...f, name: 'held.bin' }, 0);
    for (let at = 0; at < SYNC_EARLY_BYTES; at += MiB) q.write([chunk]);
    assert.notEqual(fdSeen, undefined, 'no early sync started');
    let closed = false;
    const closing = q.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(closed, false, 'closed while its sync was running');
    release();
    await closing;
    assert.ok(fdValid, 'the descriptor was closed under the sync');
  });

  test('write after close throws', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('a.txt', 'abc');
    const p = await ib.open(f, 0);
    await p.close();
    await p.close(); // idempotent
    assert.throws(() => p.write([Buffer.from('x')]), /write after close/);
  });

  test('failures are IoErrors naming the path', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('a.txt', 'abc');
    await assert.rejects(ib.open(f, 2), (err: unknown) => err instanceof IoError && /cannot resume a\.txt at 2/.test(err.message));
    await fsp.rm(d.temp, { recursive: true, force: true });
    await fsp.writeFile(d.temp, 'a file where the temp inbound should be');
    await assert.rejects(ib.open(f, 0), (err: unknown) => err instanceof IoError && err.message.includes(d.temp));
  });
});

describe('Inbound.complete', () => {
  test('moves into the secure or insecure inbound, sets mtime, cleans the temp inbound', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('report.txt', 'content', 1_600_000_123);
    const sec = await receive(ib, f, 'content', true);
    assert.equal(sec, path.join(path.resolve(d.secure), 'report.txt'));
    assert.equal((await fsp.stat(sec)).mtimeMs, 1_600_000_123_000);
    assert.deepEqual(await tempFiles(d), []);

    const g = incoming('other.txt', 'x');
    assert.equal(await receive(ib, g, 'x', false), path.join(path.resolve(d.insecure), 'other.txt'));
  });

  test('a hostile name lands inside the inbound', async () => {
    const d = dirs();
    const ib = inbound(d);
    const final = await receive(ib, incoming('../../etc/passwd', 'root'), 'root');
    assert.equal(path.dirname(final), path.resolve(d.secure));
    assert.equal(path.basename(final), '___.._etc_passwd');
    const dot = await receive(ib, incoming('..', 'x'), 'x');
    assert.equal(path.basename(dot), '__');
  });

  test('never overwrites: clash names per kind', async () => {
    const d = dirs();
    const ib = inbound(d);
    await fsp.mkdir(d.secure, { recursive: true });
    const cases: [string, string[]][] = [
      ['0000abcd.pkt', ['0000abc0.pkt']],
      ['0000abcd.su0', ['0000abc0.su0']],
      ['file.tic', ['fil0.tic']],
      ['00010002.req', ['00010000.req', '00010001.req']],
      ['notes.txt', ['notes.txt.1', 'notes.txt.2']],
    ];
    for (const [name, taken] of cases) {
      const existing = [name, ...taken.slice(0, -1)];
      for (const e of existing) await fsp.writeFile(path.join(d.secure, e), `old ${e}`);
      const want = taken[taken.length - 1]!;
      const final = await receive(ib, incoming(name, 'new data'), 'new data');
      assert.equal(path.basename(final), want, name);
      assert.equal(await fsp.readFile(final, 'utf8'), 'new data');
      for (const e of existing) {
        assert.equal(await fsp.readFile(path.join(d.secure, e), 'utf8'), `old ${e}`, `${e} untouched`);
      }
    }
  });

  test('a target created after the offer is not overwritten either', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('race.zip', 'mine');
    assert.equal((await ib.offer(f, true)).action, 'receive');
    const p = await ib.open(f, 0);
    p.write([Buffer.from('mine')]);
    await fsp.mkdir(d.secure, { recursive: true });
    await fsp.writeFile(path.join(d.secure, 'race.zip'), 'theirs');
    const final = await ib.complete(f, p, true);
    assert.equal(path.basename(final), 'race.zip.1');
    assert.equal(await fsp.readFile(path.join(d.secure, 'race.zip'), 'utf8'), 'theirs');
  });

  test('an existing symlink is not followed or replaced', async () => {
    const d = dirs();
    const ib = inbound(d);
    await fsp.mkdir(d.secure, { recursive: true });
    const outside = path.join(root, `outside-${n}`);
    await fsp.writeFile(outside, 'precious');
    await fsp.symlink(outside, path.join(d.secure, 'link.txt'));
    const final = await receive(ib, incoming('link.txt', 'evil'), 'evil');
    assert.equal(path.basename(final), 'link.txt.1');
    assert.equal(await fsp.readFile(outside, 'utf8'), 'precious');
  });

  test('an incomplete file is refused and kept for resume', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('half.zip', '0123456789');
    const p = await ib.open(f, 0);
    p.write([Buffer.from('01234')]);
    await assert.rejects(ib.complete(f, p, true), /half\.zip has 5 of 10 bytes/);
    assert.deepEqual(await ib.offer(f, true), { action: 'receive', offset: 5 });
  });

  test('a zero-byte file', async () => {
    const d = dirs();
    const ib = inbound(d);
    const f = incoming('empty.flg', '');
    const p = await ib.open(f, 0);
    const final = await ib.complete(f, p, true);
    assert.equal((await fsp.stat(final)).size, 0);
  });
});

describe('Inbound.cleanStale', () => {
  test('removes partials and sidecars older than partialMaxAge, of any hub', async () => {
    const d = dirs();
    const T = 1_700_000_000_000;
    const DAY = 86_400_000;
    const a = inbound(d, { hubKey: 'hub-a' });
    const b = inbound(d, { hubKey: 'hub-b' });
    await writePartial(a, incoming('old-a.zip', 'xxxxxxxxxx'), 'xx');
    await writePartial(b, incoming('old-b.zip', 'xxxxxxxxxx'), 'xx');
    const before = await tempFiles(d);
    assert.equal(before.length, 4, 'two partials, two sidecars');
    for (const name of before) await fsp.utimes(path.join(d.temp, name), (T - 3 * DAY) / 1000, (T - 3 * DAY) / 1000);
    await writePartial(a, incoming('fresh.zip', 'xxxxxxxxxx'), 'xx');
    await fsp.writeFile(path.join(d.temp, 'unrelated.dat'), 'keep');
    await fsp.utimes(path.join(d.temp, 'unrelated.dat'), 0, 0);
    for (const name of await tempFiles(d)) {
      if (!before.includes(name) && name !== 'unrelated.dat') {
        await fsp.utimes(path.join(d.temp, name), (T - DAY) / 1000, (T - DAY) / 1000);
      }
    }

    const warnings: string[] = [];
    const cleaner = inbound(d, { hubKey: 'hub-c', partialMaxAge: 2 * DAY, now: () => T, warn: (m) => warnings.push(m) });
    assert.equal(await cleaner.cleanStale(), 2);
    const left = await tempFiles(d);
    assert.equal(left.length, 3, left.join(' '));
    assert.ok(left.includes('unrelated.dat'));
    assert.equal(warnings.length, 2);
    assert.deepEqual(await a.offer(incoming('fresh.zip', 'xxxxxxxxxx'), true), { action: 'receive', offset: 2 });
    assert.deepEqual(await a.offer(incoming('old-a.zip', 'xxxxxxxxxx'), true), { action: 'receive', offset: 0 });

    assert.equal(await inbound(d, { partialMaxAge: 0, now: () => T + 100 * DAY }).cleanStale(), 0, '0 = off');
    assert.equal(await inbound(dirs(), { partialMaxAge: DAY }).cleanStale(), 0, 'no temp dir yet');
  });
});

describe('names that collide after sanitising (issue 11, defect 4)', () => {
  const NAMES = ['x:y', 'x_y', 'x*y', 'x|y'];

  test('x:y, x_y, x*y and x|y of one size and mtime are four files; a resend of each is "have" its own', async () => {
    const d = dirs();
    const ib = inbound(d);
    const stored = new Map<string, string>();
    for (const [i, name] of NAMES.entries()) {
      const f = incoming(name, `data${i}`);
      stored.set(name, await receive(ib, f, `data${i}`));
    }
    assert.equal(new Set(stored.values()).size, 4, [...stored.values()].join(' '));
    for (const [i, name] of NAMES.entries()) {
      assert.equal(await fsp.readFile(stored.get(name)!, 'utf8'), `data${i}`);
      // A new Inbound, as in the next session: what it knows comes from the disk.
      assert.deepEqual(await inbound(d).offer(incoming(name, `data${i}`), true), { action: 'have', path: stored.get(name) });
    }
  });

  test('a file stored by someone else under the clean name (no record) is not taken for x:y', async () => {
    const d = dirs();
    await fsp.mkdir(d.secure, { recursive: true });
    const other = path.join(d.secure, 'x_y');
    await fsp.writeFile(other, 'abcd');
    await fsp.utimes(other, MTIME, MTIME);
    assert.deepEqual(await inbound(d).offer(incoming('x:y', 'abcd'), true), { action: 'receive', offset: 0 });
    assert.deepEqual(await inbound(d).offer(incoming('x_y', 'abcd'), true), { action: 'have', path: other }, 'binkd\'s rule for clean names');
  });

  test('a record outlives its file: the next file of that name is not judged by it, and cleanStale drops it', async () => {
    const d = dirs();
    const ib = inbound(d);
    const first = await receive(ib, incoming('a:b', 'same'), 'same');
    const records = (await fsp.readdir(d.temp)).filter((n) => n.endsWith('.name'));
    assert.equal(records.length, 1);
    await fsp.unlink(first); // the tosser took it
    // Same name, size and mtime, stored by another program: the old record must not vouch for it.
    await fsp.writeFile(first, 'same');
    await fsp.utimes(first, MTIME, MTIME);
    assert.deepEqual(await inbound(d).offer(incoming('a:b', 'same'), true), { action: 'receive', offset: 0 });
    await inbound(d).cleanStale();
    assert.deepEqual((await fsp.readdir(d.temp)).filter((n) => n.endsWith('.name')), []);
  });

  test('clean names write no record (nothing extra on the hot path)', async () => {
    const d = dirs();
    await receive(inbound(d), incoming('00000001.pkt', 'pkt'), 'pkt');
    assert.deepEqual(await fsp.readdir(d.temp), []);
  });
});

describe('inbound_mode (issue 11)', () => {
  test('partials, sidecars, received files and name records get the mode exactly, whatever the umask', async () => {
    const old = process.umask(0o077);
    try {
      const d = dirs();
      const ib = inbound(d);
      const f = incoming('odd:name.txt', 'hello');
      const partial = await writePartial(ib, f, 'hel');
      for (const name of await tempFiles(d)) assert.equal((await fsp.stat(path.join(d.temp, name))).mode & 0o777, 0o640, name);
      assert.equal((await ib.offer(f, true) as { offset: number }).offset, 3);
      const p = await ib.open(f, 3);
      p.write([Buffer.from('lo')]);
      const final = await ib.complete(f, p, true);
      assert.equal((await fsp.stat(final)).mode & 0o777, 0o640);
      assert.ok(partial);
      for (const name of await tempFiles(d)) assert.equal((await fsp.stat(path.join(d.temp, name))).mode & 0o777, 0o640, name);
      const other = await receive(inbound(dirs(), { mode: 0o600 }), incoming('b.pkt', 'x'), 'x');
      assert.equal((await fsp.stat(other)).mode & 0o777, 0o600);
    } finally {
      process.umask(old);
    }
  });
});
