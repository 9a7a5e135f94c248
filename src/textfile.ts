/**
 * Reading the small text files fnpoll is given (config, state) without trusting what they are.
 * A config that is a symlink to /dev/zero reads without end, a FIFO blocks the open or the read
 * forever, a multi-gigabyte file fills memory: so the file is opened non-blocking, must be a
 * regular file by fstat on that descriptor (no race with a swap of the name), and is read up to a
 * limit. What is read must look like text: a UTF-8 BOM is dropped, UTF-16 and binary data are
 * refused with one line instead of being parsed into pages of mojibake.
 */
import { createRequire } from 'node:module';

// Synchronous, through require(): small files read once at start, on the idle cron path.
const fs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');

/** The config is hand-written INI; anything near this size is not one. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/**
 * The state file grows with the hubs (about 3.5 KB each with a full history): 5000 hubs are
 * ~17 MB. The bound is there so that a wrong file cannot fill memory, not to limit hubs.
 */
export const MAX_STATE_BYTES = 64 * 1024 * 1024;

/** Why a file was not read as text. The message completes `<file> ...`. */
export class NotTextFileError extends Error {
  override name = 'NotTextFileError';
}

function kindOf(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${bytes} bytes`;
}

/**
 * The file's bytes, at most `maxBytes`. Throws the errno error of open/read (ENOENT, EACCES…)
 * unchanged, and NotTextFileError for a file that is not a regular file or is too large.
 */
export function readBoundedSync(file: string, maxBytes: number): Buffer {
  return readBounded(file, maxBytes).bytes;
}

function readBounded(file: string, maxBytes: number): { bytes: Buffer; stats: import('node:fs').Stats } {
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new NotTextFileError(`is ${kindOf(st)}, not a regular file`);
    if (st.size > maxBytes) throw new NotTextFileError(`is ${sizeText(st.size)}; at most ${sizeText(maxBytes)} is read`);
    // One byte more than allowed tells a file that grew since the fstat.
    const buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let got = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
      if (got === buf.length) {
        if (got > maxBytes) throw new NotTextFileError(`grew past ${sizeText(maxBytes)} while being read`);
        break;
      }
    }
    return { bytes: buf.subarray(0, got), stats: st };
  } finally {
    fs.closeSync(fd);
  }
}

/** C0 controls a text file may hold: tab, LF, VT, FF, CR, and DOS's end-of-file ^Z. */
function isTextControl(byte: number): boolean {
  return byte === 0x09 || byte === 0x0a || byte === 0x0b || byte === 0x0c || byte === 0x0d || byte === 0x1a;
}

/** The C0 controls that isTextControl refuses. */
const FORBIDDEN_CONTROL = /[\x00-\x08\x0e-\x19\x1b-\x1f]/;

/**
 * The text of `bytes`: UTF-8 (invalid sequences become U+FFFD, as a Latin-1 sysop name should not
 * stop a run), without a BOM. Throws NotTextFileError for UTF-16 (by its BOM, or by the NUL bytes
 * of ASCII in UTF-16) and for binary data (NUL or other control bytes).
 */
export function decodeText(bytes: Buffer, what = 'text file'): string {
  if (bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))) {
    throw new NotTextFileError(`is UTF-16, not a ${what} in UTF-8 (convert it: iconv -f UTF-16 -t UTF-8)`);
  }
  const text = bytes.toString('utf8');
  // The common case in one native scan instead of a loop over every byte (a 350 KB state file cost
  // ~5 ms in that loop on an idle run). UTF-8 decoding keeps every byte below 0x80 as that character
  // and makes none from other bytes, so the text has a control character iff the bytes have it.
  if (!FORBIDDEN_CONTROL.test(text)) return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  // Which one, and where (a byte offset): the loop below.
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b >= 0x20 || isTextControl(b)) continue;
    if (b === 0 && bytes.length >= 2 && (bytes[i ^ 1] ?? 0) >= 0x20 && bytes.indexOf(0, i + 2) === i + 2) {
      throw new NotTextFileError(`looks like UTF-16 without a BOM, not a ${what} in UTF-8 (convert it: iconv -f UTF-16 -t UTF-8)`);
    }
    throw new NotTextFileError(`is binary (byte 0x${b.toString(16).padStart(2, '0')} at offset ${i}), not a ${what}`);
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** readBoundedSync + decodeText. */
export function readTextFileSync(file: string, maxBytes: number, what?: string): string {
  return decodeText(readBoundedSync(file, maxBytes), what);
}

/** readTextFileSync, with the fstat of the file that was read (its mode, owner). */
export function readTextFileStatSync(file: string, maxBytes: number, what?: string): { text: string; stats: import('node:fs').Stats } {
  const { bytes, stats } = readBounded(file, maxBytes);
  return { text: decodeText(bytes, what), stats };
}
