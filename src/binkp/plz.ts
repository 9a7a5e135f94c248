/**
 * PLZ, binkp data frame compression [FTS-1029]. Pure.
 *
 * When both sides listed `PLZ` in an OPT, any data frame may be compressed on its own with
 * zlib's compress()/compress2() (a complete RFC 1950 stream per frame). The second-highest bit
 * of the header marks a compressed frame, which leaves 14 bits of length: no data frame of a PLZ
 * session, compressed or not, may exceed 0x3FFF = 16383 bytes. `M_GET ... NZ` asks the other side
 * to stop compressing (FTS-1029 §1).
 */
import { constants, deflateSync, inflateSync } from 'node:zlib';
import { FRAME_HEADER_SIZE } from './frame.js';

/** FTS-1029 §1: "the biggest dataframe in PLZ mode cannot exceed 0x3FFF". */
export const PLZ_MAX_PAYLOAD = 0x3fff;
/** FTS-1029 §1: "the second high bit of the high byte of the frame header". */
export const PLZ_COMPRESSED_BIT = 0x4000;
/**
 * The standard bounds the frame, not what it inflates to. Senders compress one block at a time,
 * so this is generous; it stops a hostile frame from inflating without limit.
 */
export const PLZ_MAX_INFLATED = 0x10000;

export class PlzError extends Error {
  override name = 'PlzError';
}

/**
 * One data frame, header included: compressed and flagged when that makes it smaller, else plain.
 * `payload` must be at most PLZ_MAX_PAYLOAD bytes.
 */
export function encodePlzData(payload: Buffer, compress = true): Buffer {
  if (payload.length > PLZ_MAX_PAYLOAD) throw new RangeError(`PLZ data frame of ${payload.length} bytes exceeds ${PLZ_MAX_PAYLOAD}`);
  const packed = compress && payload.length > 0 ? deflateSync(payload) : undefined;
  const useful = packed !== undefined && packed.length < payload.length;
  const body = useful ? packed : payload;
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + body.length);
  out.writeUInt16BE((useful ? PLZ_COMPRESSED_BIT : 0) | body.length, 0);
  body.copy(out, FRAME_HEADER_SIZE);
  return out;
}

/** The payload of a compressed PLZ frame. Throws PlzError on bad data or a frame that inflates too far. */
export function inflatePlzFrame(body: Buffer): Buffer {
  try {
    return inflateSync(body, { maxOutputLength: PLZ_MAX_INFLATED, finishFlush: constants.Z_FINISH });
  } catch (err) {
    throw new PlzError(`PLZ frame of ${body.length} bytes does not inflate: ${(err as Error).message}`, { cause: err });
  }
}
