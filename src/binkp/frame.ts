/**
 * binkp frame codec [FTS-1026 §4]. Pure: no sockets, no timers.
 *
 * A frame is a 2-byte big-endian header followed by up to 32767 bytes of payload. Bit 15 of the
 * header marks a command frame; the low 15 bits are the payload length (header not counted).
 */

/** FTS-1026 §4: the 15-bit length field caps every payload. */
export const MAX_FRAME_PAYLOAD = 0x7fff;
export const FRAME_HEADER_SIZE = 2;
const COMMAND_BIT = 0x8000;

export interface FrameHandler {
  /** A complete command frame: `id` is the command byte, `arg` the rest of the payload. */
  command(id: number, arg: Buffer): void;
  /**
   * Part of a data frame's payload. A frame's payload may arrive in several pieces; `end` is true on
   * the last piece of a frame. `piece` is a view into the input chunk: copy it to keep it.
   */
  data(piece: Buffer, end: boolean): void;
  /** An empty command frame (payload length 0), which carries no command byte: ignored by binkd. */
  emptyCommand?(): void;
}

const enum State {
  Header,
  Command,
  Data,
  /** A compressed PLZ data frame being assembled [FTS-1029]. */
  Packed,
}

/** FTS-1029: in PLZ mode bit 14 flags a compressed data frame and 14 bits are left for the length. */
const PLZ_BIT = 0x4000;
const PLZ_LENGTH = 0x3fff;

/**
 * Incremental decoder: `push()` any split of the byte stream; frames come out through the handler
 * in order. Data payloads are streamed through without copying; only command payloads (at most
 * 32767 bytes) are assembled.
 */
export class FrameDecoder {
  private state = State.Header;
  /** Payload bytes still to come in the current frame. */
  private remaining = 0;
  private headerByte = -1;
  private command: Buffer | undefined;
  private commandFill = 0;

  /**
   * PLZ mode [FTS-1029], switched on by the session once both sides offered `PLZ`: data frame
   * headers carry the compressed flag, and this inflates a flagged payload (./plz.ts
   * inflatePlzFrame; it throws on bad data, and then so does push()).
   */
  plz: ((body: Buffer) => Buffer) | undefined;

  /** Applied to every input byte not yet decoded (CRYPT); see setInputTransform. */
  private transform: ((bytes: Buffer) => void) | undefined;
  private transformChanged = false;

  constructor(private readonly handler: FrameHandler) {}

  /**
   * From the next undecoded byte on, pass input through `fn` (in place) before decoding. Called
   * from a handler callback, it takes effect at that frame boundary, even within one pushed
   * chunk: binkd's CRYPT starts with the first byte after M_OK (protocol.c recv_block).
   */
  setInputTransform(fn: ((bytes: Buffer) => void) | undefined): void {
    this.transform = fn;
    this.transformChanged = true;
  }

  /** True when the decoder sits between frames (nothing partial buffered). */
  get idle(): boolean {
    return this.state === State.Header && this.headerByte < 0;
  }

  push(input: Buffer): void {
    let chunk = input;
    this.transformChanged = false;
    if (this.transform) {
      chunk = Buffer.from(input);
      this.transform(chunk);
    }
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.transformChanged) {
        this.transformChanged = false;
        if (this.transform) {
          // Copy: the caller's buffer is not ours to rewrite.
          chunk = chunk === input ? Buffer.from(input) : chunk;
          this.transform(chunk.subarray(pos));
        }
      }
      switch (this.state) {
        case State.Header: {
          let header: number;
          if (this.headerByte >= 0) {
            header = (this.headerByte << 8) | chunk[pos++]!;
            this.headerByte = -1;
          } else if (len - pos >= 2) {
            header = chunk.readUInt16BE(pos);
            pos += 2;
          } else {
            this.headerByte = chunk[pos++]!;
            break;
          }
          this.remaining = header & MAX_FRAME_PAYLOAD;
          if (header & COMMAND_BIT) {
            if (this.remaining === 0) {
              this.handler.emptyCommand?.();
            } else {
              this.state = State.Command;
              this.command = Buffer.allocUnsafe(this.remaining);
              this.commandFill = 0;
            }
          } else if (this.plz && header & PLZ_BIT) {
            this.remaining = header & PLZ_LENGTH;
            this.state = State.Packed;
            this.command = Buffer.allocUnsafe(this.remaining);
            this.commandFill = 0;
            if (this.remaining === 0) this.unpack();
          } else if (this.remaining === 0) {
            // FTN-NOTES §1: a 0-byte file is sent as one empty data frame.
            this.handler.data(chunk.subarray(pos, pos), true);
          } else {
            this.state = State.Data;
          }
          break;
        }
        case State.Packed:
        case State.Command: {
          const n = Math.min(this.remaining, len - pos);
          chunk.copy(this.command!, this.commandFill, pos, pos + n);
          this.commandFill += n;
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0 && this.state === State.Packed) {
            this.unpack();
          } else if (this.remaining === 0) {
            const payload = this.command!;
            this.command = undefined;
            this.state = State.Header;
            this.handler.command(payload[0]!, payload.subarray(1));
          }
          break;
        }
        case State.Data: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const piece = chunk.subarray(pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.state = State.Header;
          this.handler.data(piece, this.remaining === 0);
          break;
        }
      }
    }
  }

  private unpack(): void {
    const body = this.command!;
    this.command = undefined;
    this.state = State.Header;
    this.handler.data(this.plz!(body), true);
  }
}

/** Encode a command frame: header, command byte, argument text (no trailing NUL, as binkd). */
export function encodeCommand(id: number, arg: string | Buffer = ''): Buffer {
  // latin1: one byte per character, so the length is known before encoding: one buffer, no copy.
  const length = arg.length;
  const payload = 1 + length;
  if (payload > MAX_FRAME_PAYLOAD) {
    throw new RangeError(`binkp command argument of ${length} bytes exceeds the frame limit`);
  }
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload);
  out.writeUInt16BE(COMMAND_BIT | payload, 0);
  out[2] = id;
  if (typeof arg === 'string') out.write(arg, 3, 'latin1');
  else arg.copy(out, 3);
  return out;
}

/** Write a data-frame header for `length` payload bytes into `buf` at `offset`. */
export function writeDataHeader(buf: Buffer, offset: number, length: number): void {
  if (length < 0 || length > MAX_FRAME_PAYLOAD) throw new RangeError(`data frame of ${length} bytes`);
  buf.writeUInt16BE(length, offset);
}

/** Encode one data frame (copies `payload`; the sender's hot path uses writeDataHeader instead). */
export function encodeData(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  writeDataHeader(out, 0, payload.length);
  payload.copy(out, FRAME_HEADER_SIZE);
  return out;
}
