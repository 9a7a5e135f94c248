/**
 * Deterministic payloads, made once per bench and reused by every round, and the checks that a
 * transfer delivered them intact.
 *
 * Content is AES-128-CTR keystream under a fixed key and a per-file IV: reproducible, written at
 * memory speed, and incompressible (nothing on the path compresses, but a sparse or repeating
 * file could flatter a cache).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';

const KEY = Buffer.from('fnpoll-bench-key'); // 16 bytes
const CHUNK = 4 * 1024 * 1024;
/** Fixed whole-second mtime: binkp carries it and both ends compare it. */
export const PAYLOAD_MTIME = 1_700_000_000;

export interface PayloadFile {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

function ivFor(seed: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed >>> 0, 12);
  return iv;
}

/** Write `size` pseudo-random bytes (seeded) to `path`; returns its sha256. */
export async function writePayloadFile(path: string, size: number, seed: number): Promise<string> {
  const cipher = createCipheriv('aes-128-ctr', KEY, ivFor(seed));
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(Math.min(CHUNK, Math.max(size, 1)));
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(zeros.length, size - done);
      const block = cipher.update(zeros.subarray(0, n));
      hash.update(block);
      await fh.write(block, 0, block.length, done);
      done += n;
    }
  } finally {
    await fh.close();
  }
  await utimes(path, PAYLOAD_MTIME, PAYLOAD_MTIME);
  return hash.digest('hex');
}

/**
 * The throughput payload: `big` bytes in `big.bin` plus `count` packets of `packetSize` bytes
 * named like tossers name them (`%08x.pkt`), all under `dir`.
 */
export async function makePayload(dir: string, big: number, count: number, packetSize: number): Promise<PayloadFile[]> {
  await mkdir(dir, { recursive: true });
  const files: PayloadFile[] = [];
  const bigPath = join(dir, 'big.bin');
  files.push({ name: 'big.bin', path: bigPath, size: big, sha256: await writePayloadFile(bigPath, big, 1) });
  for (let i = 0; i < count; i++) {
    const name = `${(0x5f000000 + i).toString(16)}.pkt`;
    const path = join(dir, name);
    files.push({ name, path, size: packetSize, sha256: await writePayloadFile(path, packetSize, 1000 + i) });
  }
  return files;
}

/**
 * Text packets for the compression rows: words of echomail, seeded, so zlib has something to do
 * (about 4:1), unlike the keystream above. Named `%08x.pkt` like a tosser's.
 */
export async function makeTextPackets(dir: string, count: number, size: number): Promise<PayloadFile[]> {
  await mkdir(dir, { recursive: true });
  const words = ['AREA:FIDOTEST', 'SEEN-BY:', '5020/1', 'PATH:', 'Origin', 'binkp', 'tosser', 'echomail', 'sysop', 'Hello,', 'All!', 'the', 'hub'];
  const files: PayloadFile[] = [];
  for (let i = 0; i < count; i++) {
    let n = 7919 * (i + 1);
    const parts: string[] = [];
    for (let len = 0; len < size; ) {
      n = (Math.imul(n, 1103515245) + 12345) >>> 0;
      const w = words[n % words.length]! + (n % 11 === 0 ? '\r' : ' ');
      parts.push(w);
      len += w.length;
    }
    const data = Buffer.from(parts.join('').slice(0, size), 'latin1');
    const name = `${(0x7e000000 + i).toString(16)}.pkt`;
    const path = join(dir, name);
    const fh = await open(path, 'w');
    await fh.write(data);
    await fh.close();
    await utimes(path, PAYLOAD_MTIME, PAYLOAD_MTIME);
    files.push({ name, path, size, sha256: createHash('sha256').update(data).digest('hex') });
  }
  return files;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Every payload file is in `dir` under its own name with its size and hash; nothing else is
 * there (a renamed duplicate would show a second transfer). Returns problems, one line each.
 */
export async function verifyDelivered(dir: string, files: readonly PayloadFile[]): Promise<string[]> {
  const problems: string[] = [];
  const names = new Set((await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((d) => d.isFile()).map((d) => d.name));
  for (const f of files) {
    if (!names.has(f.name)) {
      problems.push(`${dir}: ${f.name} missing`);
      continue;
    }
    names.delete(f.name);
    const p = join(dir, f.name);
    const st = await stat(p);
    if (st.size !== f.size) problems.push(`${p}: ${st.size} bytes, expected ${f.size}`);
    else if ((await sha256File(p)) !== f.sha256) problems.push(`${p}: sha256 differs from the payload's`);
  }
  if (names.size) problems.push(`${dir}: unexpected files ${[...names].slice(0, 5).join(', ')}${names.size > 5 ? ', ...' : ''}`);
  return problems;
}
