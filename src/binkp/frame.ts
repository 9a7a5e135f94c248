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
}

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
  private halted = false;

  constructor(private readonly handler: FrameHandler) {}

  /**
   * Called from a handler: stop after the frame being delivered, and have push() return the rest
   * of its chunk undecoded. For a stream transform that starts at a frame boundary (binkd's CRYPT
   * enciphers every byte after M_OK): the caller transforms the rest and pushes it again.
   */
  halt(): void {
    this.halted = true;
  }

  /** True when the decoder sits between frames (nothing partial buffered). */
  get idle(): boolean {
    return this.state === State.Header && this.headerByte < 0;
  }

  /** Decode `chunk`; returns the bytes left undecoded when a handler called halt(), else undefined. */
  push(chunk: Buffer): Buffer | undefined {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.halted) {
        this.halted = false;
        return chunk.subarray(pos);
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
          } else if (this.remaining === 0) {
            // FTN-NOTES §1: a 0-byte file is sent as one empty data frame.
            this.handler.data(chunk.subarray(pos, pos), true);
          } else {
            this.state = State.Data;
          }
          break;
        }
        case State.Command: {
          const n = Math.min(this.remaining, len - pos);
          chunk.copy(this.command!, this.commandFill, pos, pos + n);
          this.commandFill += n;
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0) {
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
    this.halted = false;
    return undefined;
  }
}

/** Encode a command frame: header, command byte, argument text (no trailing NUL, as binkd). */
export function encodeCommand(id: number, arg: string | Buffer = ''): Buffer {
  const argBytes = typeof arg === 'string' ? Buffer.from(arg, 'latin1') : arg;
  const payload = 1 + argBytes.length;
  if (payload > MAX_FRAME_PAYLOAD) {
    throw new RangeError(`binkp command argument of ${argBytes.length} bytes exceeds the frame limit`);
  }
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload);
  out.writeUInt16BE(COMMAND_BIT | payload, 0);
  out[2] = id;
  argBytes.copy(out, 3);
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
