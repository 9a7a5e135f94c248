/**
 * binkp command ids and argument syntax [FTS-1026 §5-6]. Pure.
 */

/** FTS-1026 §5.1 command ids. */
export const Cmd = {
  M_NUL: 0,
  M_ADR: 1,
  M_PWD: 2,
  M_FILE: 3,
  M_OK: 4,
  M_EOB: 5,
  M_GOT: 6,
  M_ERR: 7,
  M_BSY: 8,
  M_GET: 9,
  M_SKIP: 10,
} as const;
export type CmdId = (typeof Cmd)[keyof typeof Cmd];

const NAMES = ['M_NUL', 'M_ADR', 'M_PWD', 'M_FILE', 'M_OK', 'M_EOB', 'M_GOT', 'M_ERR', 'M_BSY', 'M_GET', 'M_SKIP'];

export function commandName(id: number): string {
  return NAMES[id] ?? `M_${id}`;
}

/**
 * Decode a command argument to text. binkd sends no trailing NUL but FTS-1026 allows one, so a
 * trailing NUL is dropped. latin1 keeps every byte as one character so nothing is lost.
 */
export function argText(arg: Buffer): string {
  const end = arg.length > 0 && arg[arg.length - 1] === 0 ? arg.length - 1 : arg.length;
  return arg.toString('latin1', 0, end);
}

// FTS-1026 §5.4: alpha, digit and these "safe" characters go plain; everything else is escaped.
const SAFE = new Set(Array.from('!"#$%&\'()*+,-./:;<=>?@[]^_`{|}~'));
/** Every character in isPlain()'s set: the digits, letters and SAFE (no space, no backslash). */
const ALL_PLAIN_RE = /^[0-9A-Za-z!"#$%&'()*+,\-./:;<=>?@[\]^_`{|}~]*$/;

function isPlain(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) ||
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    SAFE.has(String.fromCharCode(byte))
  );
}

/**
 * Escape a file name for the wire: every byte outside FTS-1026 §5.4's plain set, and always space
 * and `\`, becomes `\xHH` (lowercase, as binkd sends). Non-ASCII names are escaped byte by byte
 * from their UTF-8 form.
 */
export function escapeName(name: string): string {
  // Most names are plain already (8.3 packets, archives): nothing to escape.
  if (ALL_PLAIN_RE.test(name)) return name;
  const bytes = Buffer.from(name, 'utf8');
  let out = '';
  for (const b of bytes) {
    out += isPlain(b) ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

const HEX2 = /^[0-9a-fA-F]{2}$/;
/** A backslash, or a character that may be one byte of a UTF-8 sequence sent unescaped. */
const NEEDS_UNESCAPE = /[\\\u0080-\uffff]/;

/**
 * Undo escaping: `\xHH` (any case), and the FSP-1011 `\HH` form that FTS-1026 §5.2 says a mailer
 * SHOULD still decode. A lone `\` that starts neither form is kept. Bytes are reassembled as
 * UTF-8 when they form valid UTF-8, else kept as latin1.
 */
export function unescapeName(wire: string): string {
  // Most names are plain ASCII with nothing escaped: nothing to undo.
  if (!NEEDS_UNESCAPE.test(wire)) return wire;
  const bytes: number[] = [];
  for (let i = 0; i < wire.length; i++) {
    const c = wire.charCodeAt(i);
    if (c === 0x5c) {
      if ((wire[i + 1] === 'x' || wire[i + 1] === 'X') && HEX2.test(wire.slice(i + 2, i + 4))) {
        bytes.push(parseInt(wire.slice(i + 2, i + 4), 16));
        i += 3;
        continue;
      }
      if (HEX2.test(wire.slice(i + 1, i + 3))) {
        bytes.push(parseInt(wire.slice(i + 1, i + 3), 16));
        i += 2;
        continue;
      }
    }
    bytes.push(c & 0xff);
  }
  const buf = Buffer.from(bytes);
  const utf8 = buf.toString('utf8');
  return Buffer.from(utf8, 'utf8').equals(buf) ? utf8 : buf.toString('latin1');
}

/** M_FILE / M_GET argument: `name size unixtime offset` [FTS-1026 §6.3]. */
export interface FileArgs {
  /** Unescaped name. */
  name: string;
  size: number;
  /** Unix time, seconds. */
  mtime: number;
  /** Byte offset; -1 in NR mode [FTS-1028]. */
  offset: number;
  /** Tokens after the offset (binkd may append `GZ`, `BZ2`): kept, not interpreted. */
  extra: string[];
}

/** M_GOT / M_SKIP argument: `name size unixtime`. */
export interface FileRef {
  name: string;
  size: number;
  mtime: number;
}

const INT = /^-?\d+$/;

function toInt(token: string | undefined): number | undefined {
  if (token === undefined || !INT.test(token)) return undefined;
  const n = Number(token);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Parse `name size time offset [extra...]`; undefined when malformed. */
export function parseFileArgs(text: string): FileArgs | undefined {
  const t = text.split(' ').filter((s) => s.length > 0);
  const size = toInt(t[1]);
  const mtime = toInt(t[2]);
  const offset = toInt(t[3]);
  if (t[0] === undefined || size === undefined || mtime === undefined || offset === undefined) return undefined;
  if (size < 0 || offset < -1) return undefined;
  return { name: unescapeName(t[0]), size, mtime, offset, extra: t.slice(4) };
}

/** Parse `name size time` (extra tokens tolerated); undefined when malformed. */
export function parseFileRef(text: string): FileRef | undefined {
  const t = text.split(' ').filter((s) => s.length > 0);
  const size = toInt(t[1]);
  const mtime = toInt(t[2]);
  if (t[0] === undefined || size === undefined || mtime === undefined || size < 0) return undefined;
  return { name: unescapeName(t[0]), size, mtime };
}

export function formatFileArgs(f: { name: string; size: number; mtime: number }, offset: number): string {
  return `${escapeName(f.name)} ${f.size} ${f.mtime} ${offset}`;
}

export function formatFileRef(f: { name: string; size: number; mtime: number }): string {
  return `${escapeName(f.name)} ${f.size} ${f.mtime}`;
}

/** A map key for a file: name, size and time, as binkd matches acknowledgements. */
export function fileKey(f: FileRef): string {
  return `${f.name}\u0000${f.size}\u0000${f.mtime}`;
}

/** Same file? binkd matches acknowledgements by name, size and time. */
export function sameFile(a: FileRef, b: FileRef): boolean {
  return a.name === b.name && a.size === b.size && a.mtime === b.mtime;
}

/**
 * Split an M_NUL argument into its keyword and value (`SYS My BBS` → ["SYS", "My BBS"]).
 * FTS-1026 §6.1 lists SYS ZYZ LOC NDL TIME VER TRF OPT PHN.
 */
export function parseNul(text: string): { key: string; value: string } {
  const m = /^\s*(\S+)\s?(.*)$/s.exec(text);
  return m ? { key: m[1]!.toUpperCase(), value: m[2]! } : { key: '', value: '' };
}

/**
 * Options from an `OPT` M_NUL value. Synchronet BinkIT 1.123 sends `NR` alone without the `OPT `
 * prefix (FTN-NOTES §8); the caller treats a bare known option keyword the same way.
 */
export function parseOptions(value: string): string[] {
  return value.split(/\s+/).filter((s) => s.length > 0);
}

/** From `OPT` tokens, the CRAM challenge if offered: `CRAM-MD5-<hex>` [FTS-1027 §3]. */
export function cramChallenge(options: string[]): { algorithm: string; challenge: string } | undefined {
  for (const opt of options) {
    const m = /^CRAM-([A-Za-z0-9/]+)-([0-9a-fA-F]+)$/.exec(opt);
    if (!m) continue;
    const algorithms = m[1]!.toUpperCase().split('/');
    if (algorithms.includes('MD5')) return { algorithm: 'MD5', challenge: m[2]! };
  }
  return undefined;
}
