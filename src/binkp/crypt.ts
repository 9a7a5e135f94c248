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
import { crc32Step } from './crc.js';

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

  private streamByte(): number {
    const t = (this.k2 & 0xffff) | 2;
    return (Math.imul(t, t ^ 1) >>> 8) & 0xff;
  }

  /** Encrypt `buf` in place (the keys advance with the plaintext). Returns `buf`. */
  encrypt<T extends Uint8Array>(buf: T): T {
    for (let i = 0; i < buf.length; i++) {
      const plain = buf[i]!;
      buf[i] = plain ^ this.streamByte();
      this.update(plain);
    }
    return buf;
  }

  /** Decrypt `buf` in place. Returns `buf`. */
  decrypt<T extends Uint8Array>(buf: T): T {
    for (let i = 0; i < buf.length; i++) {
      const plain = buf[i]! ^ this.streamByte();
      buf[i] = plain;
      this.update(plain);
    }
    return buf;
  }
}

export type CryptRole = 'caller' | 'answerer';

/** The two key sets of one side of a CRYPT session, keyed by the session password. */
export function sessionKeys(password: string, role: CryptRole): { out: CryptKeys; in: CryptKeys } {
  const pwd = Buffer.from(password, 'utf8');
  const direct = new CryptKeys(pwd);
  // binkd: init_keys(k, "-") and then update_keys(k, c) for each password byte.
  const dashed = new CryptKeys(Buffer.from('-', 'latin1')).mix(pwd);
  return role === 'caller' ? { out: direct, in: dashed } : { out: dashed, in: direct };
}
