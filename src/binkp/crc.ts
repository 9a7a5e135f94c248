/**
 * CRC-32 as FTS-1030 §2.4 defines it (ITU-T V.42, reflected polynomial 0xEDB88320, pre- and
 * post-conditioned), and the fifth M_FILE argument that carries it [FTS-1030 §2.2]. Pure.
 *
 * The same table drives binkd's CRYPT key schedule (./crypt.ts), which updates keys one byte at
 * a time without the conditioning: `crc32Step` is that raw step.
 */
import { crc32 as zlibCrc32 } from 'node:zlib';

/**
 * FTS-1030 §2.4's constant: the V.42 polynomial, bit-reversed. (§2.2's printed polynomial lacks
 * the X^23 term; the pseudocode's EDB88320 is what every implementation uses.)
 */
const POLYNOMIAL = 0xedb88320;

/** FTS-1030 §2.4: "generate a lookup table with the results of the inner loop for 0 up to 255". */
export const CRC32_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let k = n;
    for (let i = 0; i < 8; i++) k = k & 1 ? (k >>> 1) ^ POLYNOMIAL : k >>> 1;
    table[n] = k;
  }
  return table;
})();

/** One unconditioned table step: `table[(crc ^ byte) & 0xff] ^ (crc >>> 8)`. */
export function crc32Step(crc: number, byte: number): number {
  return (CRC32_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)) >>> 0;
}

/**
 * The conditioned CRC-32 of `data`, continuing from `previous` (the CRC of the bytes before it,
 * 0 to start), so a file can be summed piece by piece. zlib computes this very CRC natively.
 */
export function crc32(data: Uint8Array, previous = 0): number {
  return zlibCrc32(data, previous) >>> 0;
}

/** FTS-1030 §2.2: "up to eight hexadecimal digits"; we always send all eight, upper case. */
export function formatCrc(crc: number): string {
  return (crc >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

const CRC_TOKEN = /^[0-9a-fA-F]{1,8}$/;

/**
 * The checksum in an M_FILE's fifth argument, or undefined when the token is not one. FTS-1030
 * §2.2: leading zeros may be omitted and a-f may be lower case.
 */
export function parseCrc(token: string): number | undefined {
  return CRC_TOKEN.test(token) ? Number.parseInt(token, 16) >>> 0 : undefined;
}
