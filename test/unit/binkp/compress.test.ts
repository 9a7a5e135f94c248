import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync, inflateSync } from 'node:zlib';
import {
  DecompressError,
  Decompressor,
  chooseMethod,
  compressFrames,
  compressWhole,
  decompressPrefix,
  isPrecompressed,
} from '../../../src/binkp/compress.js';
import { prng } from '../../helpers/random.js';

function text(size: number, seed: number): Buffer {
  const rnd = prng(seed);
  const words = ['AREA:FIDO', 'SEEN-BY:', 'Origin', 'binkp', 'tosser', 'hub'];
  let s = '';
  while (s.length < size) s += words[Math.floor(rnd() * words.length)] + ' ';
  return Buffer.from(s.slice(0, size));
}

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe('GZ: binkd per-file compression', () => {
  test('the stream is zlib (RFC 1950: CMF 0x78), not gzip (1f 8b)', async () => {
    const data = text(10_000, 1);
    const frames: Buffer[] = [];
    for await (const f of compressFrames('GZ', chunks(data, 777), 4096)) frames.push(f);
    const stream = Buffer.concat(frames);
    assert.equal(stream[0], 0x78);
    assert.notEqual(stream[0], 0x1f);
    assert.deepEqual(decompressPrefix('GZ', stream), data);
    assert.equal(compressWhole('GZ', data)[0], 0x78);
  });

  test('frames are full except the last; the stream is finished (trailer sent)', async () => {
    const data = Buffer.concat([text(200_000, 2), Buffer.from(prng(9)().toString())]);
    const frames: Buffer[] = [];
    for await (const f of compressFrames('GZ', chunks(data, 65536), 1000)) frames.push(f);
    assert.ok(frames.length > 2);
    for (const f of frames.slice(0, -1)) assert.equal(f.length, 1000);
    assert.ok(frames.at(-1)!.length <= 1000 && frames.at(-1)!.length > 0);
    // A stream that was not finished (no trailer) fails a strict inflate.
    assert.deepEqual(inflateSync(Buffer.concat(frames)), data);
  });

  test('an empty file is still a complete stream', async () => {
    const frames: Buffer[] = [];
    for await (const f of compressFrames('GZ', chunks(Buffer.alloc(0), 10), 4096)) frames.push(f);
    assert.equal(frames.length, 1);
    assert.deepEqual(decompressPrefix('GZ', frames[0]!), Buffer.alloc(0));
  });

  test('receiving: any split of the stream; the count reaches the size before the trailer arrives', async () => {
    const data = text(50_000, 3);
    const stream = compressWhole('GZ', data);
    const rnd = prng(4);
    for (let round = 0; round < 10; round++) {
      const z = new Decompressor('GZ');
      const out: Buffer[] = [];
      let sizeReachedAt = -1;
      for (let pos = 0; pos < stream.length; ) {
        const n = 1 + Math.floor(rnd() * 3000);
        out.push(await z.push(stream.subarray(pos, pos + n)));
        pos += n;
        if (sizeReachedAt < 0 && z.produced === data.length) sizeReachedAt = Math.min(pos, stream.length);
      }
      assert.deepEqual(Buffer.concat(out), data);
      assert.ok(sizeReachedAt > 0);
      z.close();
    }
    // The last 4 bytes (Adler-32) carry no data: the size is reached without them.
    const z = new Decompressor('GZ');
    await z.push(stream.subarray(0, stream.length - 4));
    assert.equal(z.produced, data.length);
    assert.equal(z.streamEnded, false);
    z.close();
  });

  test('corrupt data and gzip data are a DecompressError, not a crash', async () => {
    const z = new Decompressor('GZ');
    await assert.rejects(z.push(gzipSync(Buffer.from('hello'))), DecompressError);
    const bad = compressWhole('GZ', text(5000, 5));
    bad[10] ^= 0xff;
    const z2 = new Decompressor('GZ');
    await assert.rejects(async () => {
      await z2.push(bad);
    }, DecompressError);
    assert.throws(() => decompressPrefix('GZ', Buffer.from('not zlib at all')), DecompressError);
  });

  test('BZ2 is not offered (no kept bzip2 library); asking for it is an error', () => {
    assert.throws(() => new Decompressor('BZ2'), DecompressError);
    assert.throws(() => compressWhole('BZ2', Buffer.alloc(1)), DecompressError);
  });

  test('already compressed files are never recompressed; small files go plain', () => {
    for (const name of ['0000fffe.su0', '0000FFFE.MO9', 'x.TUa', 'y.we1', 'z.th7', 'a.fr3', 'b.sa0', 'f.zip', 'f.gz', 'f.tgz', 'f.rar', 'f.7z', 'f.bz2', 'f.arj', 'f.xz', 'pic.JPG', 'song.mp3', 'clip.mp4']) {
      assert.equal(isPrecompressed(name), true, name);
      assert.equal(chooseMethod({ name, size: 1 << 20 }, ['GZ'], 1024), undefined, name);
    }
    for (const name of ['12345678.pkt', 'file.tic', 'nodelist.123', 'readme.txt', 'sub.summary', 'zip.txt', 'su0', 'x.sux1']) {
      assert.equal(isPrecompressed(name), false, name);
    }
    assert.equal(chooseMethod({ name: 'a.pkt', size: 1024 }, ['GZ'], 1024), 'GZ');
    assert.equal(chooseMethod({ name: 'a.pkt', size: 1023 }, ['GZ'], 1024), undefined);
    assert.equal(chooseMethod({ name: 'a.pkt', size: 5000 }, [], 1024), undefined);
    assert.equal(chooseMethod({ name: 'a.pkt', size: 5000 }, ['BZ2'], 1024), undefined, 'BZ2 offered alone: plain');
    assert.equal(chooseMethod({ name: 'a.pkt', size: 5000 }, ['BZ2', 'GZ'], 1024), 'GZ');
  });
});
