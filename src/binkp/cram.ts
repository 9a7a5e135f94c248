/**
 * CRAM-MD5 for binkp [FTS-1027]. The hub offers `OPT CRAM-MD5-<hex challenge>`; the caller
 * answers M_PWD `CRAM-MD5-<hex HMAC-MD5(password, challenge bytes)>`.
 */
import { createHmac } from 'node:crypto';

/** FTS-1027 §3: challenges are 8 to 64 bytes (16 to 128 hex digits). */
export const MIN_CHALLENGE_BYTES = 8;
export const MAX_CHALLENGE_BYTES = 64;

export class CramError extends Error {
  override name = 'CramError';
}

/** Decode the hex challenge; throws CramError when it is not even-length hex of an allowed size. */
export function decodeChallenge(hex: string): Buffer {
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) {
    throw new CramError('CRAM challenge is not hex');
  }
  const bytes = Buffer.from(hex, 'hex');
  if (bytes.length < MIN_CHALLENGE_BYTES || bytes.length > MAX_CHALLENGE_BYTES) {
    throw new CramError(`CRAM challenge of ${bytes.length} bytes is outside ${MIN_CHALLENGE_BYTES}-${MAX_CHALLENGE_BYTES}`);
  }
  return bytes;
}

/** The M_PWD argument for a CRAM-MD5 challenge (FTS-1027 §4: key = password, text = challenge). */
export function cramResponse(password: string, challengeHex: string): string {
  const digest = createHmac('md5', Buffer.from(password, 'utf8')).update(decodeChallenge(challengeHex)).digest('hex');
  return `CRAM-MD5-${digest}`;
}
