/**
 * Per-file compression of binkd's EXTCMD extension (binkd protocol.c z_send_init/recv_block,
 * compress.c): an M_FILE whose fifth token is `GZ` carries the file as one zlib stream (RFC 1950:
 * deflate with a zlib header and Adler-32 trailer; binkd calls deflateInit/inflateInit, not the
 * gzip wrapper) cut into ordinary data frames. Sizes and offsets on the wire stay uncompressed.
 *
 * The receiver knows the file is complete when the decompressed count reaches the M_FILE size.
 * No empty frame marks the end; the stream's tail (the Adler-32 trailer) may still arrive in a
 * frame after that, and binkd ignores data frames that belong to no file.
 *
 * BZ2 is not offered: no bzip2 library on npm that both compresses and decompresses is kept up
 * (the README says more). An M_FILE with `BZ2` is refused with `M_GET ... NZ`.
 */
import { createDeflate, createInflate, constants, deflateSync, inflateSync, type Deflate, type Inflate } from 'node:zlib';

export type Method = 'GZ' | 'BZ2';
/** What fnpoll can send and receive, best first (binkd prefers BZ2 when both are offered). */
export const SUPPORTED_METHODS: readonly Method[] = ['GZ'];
/** binkd's `zminsize` default: smaller files go plain. */
export const DEFAULT_COMPRESSION_THRESHOLD = 1024;

/**
 * Names of files that are compressed already, so recompressing only costs CPU: arcmail bundles
 * (`*.su0`..`*.sa9`, letters too, as binkd's sample `zdeny` lists them), archive formats, and the
 * compressed media and containers that file echoes carry.
 */
const PRECOMPRESSED = new RegExp(
  '\\.(?:(?:su|mo|tu|we|th|fr|sa)[0-9a-z]' +
    '|zip|gz|tgz|bz2|tbz2?|xz|txz|zst|lz|lzma|lz4|7z|rar|r[0-9]{2}|arj|a[0-9]{2}|lzh|lha|ha|cab|z[0-9]{2}|jar|apk' +
    '|jpe?g|png|gif|webp|mp3|m4a|ogg|opus|flac|mp4|mkv|avi|mov|webm|epub|docx|xlsx|pptx|odt|ods)$',
  'i',
);

export function isPrecompressed(name: string): boolean {
  return PRECOMPRESSED.test(name);
}

/** The method to send `name` with, or undefined for plain: `offered` is what both sides can do. */
export function chooseMethod(
  file: { name: string; size: number },
  offered: readonly Method[],
  threshold: number,
): Method | undefined {
  if (file.size < threshold || isPrecompressed(file.name)) return undefined;
  return SUPPORTED_METHODS.find((m) => offered.includes(m));
}

export class DecompressError extends Error {
  override name = 'DecompressError';
}

/**
 * The receiving half for one file: feed it the payload of each data frame; it returns the
 * decompressed bytes that piece produced. `produced` counts them all; compare it with the size.
 */
export class Decompressor {
  private readonly inflate: Inflate;
  private readonly out: Buffer[] = [];
  private failure: Error | undefined;
  private ended = false;
  produced = 0;

  constructor(readonly method: Method) {
    if (method !== 'GZ') throw new DecompressError(`compression method ${method} is not supported`);
    this.inflate = createInflate();
    this.inflate.on('data', (chunk: Buffer) => this.out.push(chunk));
    this.inflate.on('error', (err) => {
      this.failure = err;
    });
    this.inflate.on('end', () => {
      this.ended = true;
    });
  }

  /** True once the zlib stream's end (trailer included) went through. */
  get streamEnded(): boolean {
    return this.ended;
  }

  push(piece: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.wrap(this.failure));
      if (this.ended || piece.length === 0) return resolve(Buffer.alloc(0));
      const settle = (): void => {
        if (this.failure) return reject(this.wrap(this.failure));
        const bytes = this.out.length === 1 ? this.out.pop()! : Buffer.concat(this.out.splice(0));
        this.produced += bytes.length;
        resolve(bytes);
      };
      this.inflate.once('error', settle);
      this.inflate.write(piece);
      // Z_SYNC_FLUSH hands out everything the input so far decodes to; it changes nothing in
      // what is decoded.
      this.inflate.flush(constants.Z_SYNC_FLUSH, () => {
        this.inflate.off('error', settle);
        settle();
      });
    });
  }

  close(): void {
    this.inflate.destroy();
  }

  private wrap(err: Error): DecompressError {
    return new DecompressError(`${this.method} data does not decompress: ${err.message}`, { cause: err });
  }
}

/**
 * The sending half: the file's bytes from `source` (read from the offset) come out as
 * compressed frame payloads of `frameSize` bytes, the last one shorter. The stream is finished
 * (Z_FINISH) after the last byte of the source, so the trailer is always sent.
 */
export async function* compressFrames(method: Method, source: AsyncIterable<Buffer>, frameSize: number): AsyncGenerator<Buffer> {
  if (method !== 'GZ') throw new DecompressError(`compression method ${method} is not supported`);
  const deflate: Deflate = createDeflate();
  const feeding = (async () => {
    try {
      for await (const chunk of source) {
        if (!deflate.write(chunk)) await new Promise<void>((r) => deflate.once('drain', () => r()));
      }
      deflate.end();
    } catch (err) {
      deflate.destroy(err as Error);
    }
  })();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    for await (const chunk of deflate as AsyncIterable<Buffer>) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= frameSize) {
        const all = Buffer.concat(pending);
        yield all.subarray(0, frameSize);
        pending = [all.subarray(frameSize)];
        pendingBytes = all.length - frameSize;
      }
    }
    if (pendingBytes > 0) yield Buffer.concat(pending);
  } finally {
    deflate.destroy();
    await feeding;
  }
}

/** One-shot forms, for the scripted hub (its files live in memory) and tests. */
export function compressWhole(method: Method, data: Buffer): Buffer {
  if (method !== 'GZ') throw new DecompressError(`compression method ${method} is not supported`);
  return deflateSync(data);
}

/** Everything `compressed` (a prefix of a zlib stream) decodes to so far. Throws DecompressError. */
export function decompressPrefix(method: Method, compressed: Buffer): Buffer {
  if (method !== 'GZ') throw new DecompressError(`compression method ${method} is not supported`);
  try {
    return inflateSync(compressed, { finishFlush: constants.Z_SYNC_FLUSH });
  } catch (err) {
    throw new DecompressError(`${method} data does not decompress: ${(err as Error).message}`, { cause: err });
  }
}
