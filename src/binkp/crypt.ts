/**
 * binkd's CRYPT mode: the traditional PKZIP stream cipher over every byte of the session after
 * M_OK, frame headers included (binkd crypt.c, protocol.c msg_send2/send_block/recv_block). Pure.
 *
 * Keys start at 305419896, 591751049, 878082192 and are stirred with CRC-32 steps (./crc.ts).
 * Each direction has its own keys. binkd's complete_login():
 * - caller:    out = init(password); in = init("-") then updated with each password byte;
 * - answerer:  in = init(password);  out = init("-") then updated with each password byte.
 * So the caller's outgoing keys are the answerer's incoming ones and the other way round.
 */
import { CRC32_TABLE, crc32Step } from './crc.js';

const KEY0 = 305419896;
const KEY1 = 591751049;
const KEY2 = 878082192;
/** PKZIP's linear congruential multiplier for key 1. */
const KEY1_MULTIPLIER = 134775813;

/** One direction's three keys. Mutated by every byte that passes. */
export class CryptKeys {
  private k0 = KEY0;
  private k1 = KEY1;
  private k2 = KEY2;

  /** Fresh keys stirred with `seed` (binkd init_keys). */
  constructor(seed: Uint8Array) {
    this.mix(seed);
  }

  /** Stir more bytes in (binkd update_keys over a string). */
  mix(bytes: Uint8Array): this {
    for (const b of bytes) this.update(b);
    return this;
  }

  private update(plain: number): void {
    this.k0 = crc32Step(this.k0, plain);
    // binkd keeps keys in C `unsigned long`; only the low 32 bits ever reach the output.
    this.k1 = (Math.imul((this.k1 + (this.k0 & 0xff)) >>> 0, KEY1_MULTIPLIER) + 1) >>> 0;
    this.k2 = crc32Step(this.k2, this.k1 >>> 24);
  }

  /**
   * Encrypt `buf` in place (the keys advance with the plaintext). Returns `buf`. The loop is
   * update() and the keystream byte written out with the keys in locals: this runs over every
   * byte of a CRYPT session.
   */
  encrypt<T extends Uint8Array>(buf: T): T {
    return this.run(buf, true);
  }

  /** Decrypt `buf` in place. Returns `buf`. */
  decrypt<T extends Uint8Array>(buf: T): T {
    return this.run(buf, false);
  }

  private run<T extends Uint8Array>(buf: T, encrypting: boolean): T {
    // Signed 32-bit throughout: V8 keeps int32 in registers, while values above 2^31 (what
    // `>>> 0` and a Uint32Array yield) become heap numbers and make this loop ten times slower.
    const table = TABLE_I32;
    let k0 = this.k0 | 0;
    let k1 = this.k1 | 0;
    let k2 = this.k2 | 0;
    const n = buf.length;
    for (let i = 0; i < n; i++) {
      // decrypt_byte(): the keystream byte from key 2.
      const t = (k2 & 0xffff) | 2;
      const stream = (Math.imul(t, t ^ 1) >>> 8) & 0xff;
      const byte = buf[i]!;
      // Both ways the wire byte is the other one XOR the keystream; the keys take the plaintext.
      buf[i] = byte ^ stream;
      const plain = encrypting ? byte : byte ^ stream;
      // update_keys(plain)
      k0 = table[(k0 ^ plain) & 0xff]! ^ (k0 >>> 8);
      k1 = (Math.imul((k1 + (k0 & 0xff)) | 0, KEY1_MULTIPLIER) + 1) | 0;
      k2 = table[(k2 ^ (k1 >>> 24)) & 0xff]! ^ (k2 >>> 8);
    }
    this.k0 = k0 >>> 0;
    this.k1 = k1 >>> 0;
    this.k2 = k2 >>> 0;
    return buf;
  }
}

/** CRC32_TABLE as signed integers, for run(). */
const TABLE_I32 = new Int32Array(CRC32_TABLE.buffer, CRC32_TABLE.byteOffset, CRC32_TABLE.length);

export type CryptRole = 'caller' | 'answerer';

/** The two key sets of one side of a CRYPT session, keyed by the session password. */
export function sessionKeys(password: string, role: CryptRole): { out: CryptKeys; in: CryptKeys } {
  const pwd = Buffer.from(password, 'utf8');
  const direct = new CryptKeys(pwd);
  // binkd: init_keys(k, "-") and then update_keys(k, c) for each password byte.
  const dashed = new CryptKeys(Buffer.from('-', 'latin1')).mix(pwd);
  return role === 'caller' ? { out: direct, in: dashed } : { out: dashed, in: direct };
}
