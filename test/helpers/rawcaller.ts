/**
 * A bare binkp caller for probing a real peer's extensions byte by byte, with fnpoll's codecs
 * (frame, commands, CRAM, CRYPT, GZ) and none of its session logic: it greets, logs in with
 * CRAM-MD5, switches CRYPT on after M_OK when both sides offered it, sends its files (GZ when
 * asked), takes the hub's files (GZ when the hub says so), and ends after an empty second batch
 * (binkp/1.1). Every frame is recorded. For interop tests only.
 */
import { connect, type Socket } from 'node:net';
import { FrameDecoder, encodeCommand, encodeData } from '../../src/binkp/frame.js';
import { Cmd, argText, commandName, cramChallenge, formatFileArgs, formatFileRef, parseFileArgs, parseFileRef, parseNul, parseOptions } from '../../src/binkp/commands.js';
import { cramResponse } from '../../src/binkp/cram.js';
import { sessionKeys } from '../../src/binkp/crypt.js';
import { Decompressor, compressWhole, type Method } from '../../src/binkp/compress.js';

export interface RawFile {
  name: string;
  data: Buffer;
  mtime: number;
  /** Send as one zlib stream with this fifth M_FILE token. */
  method?: Method;
}

export interface RawCallOptions {
  port: number;
  ourAddress: string;
  password: string;
  /** Our OPT tokens. */
  options: string[];
  files?: RawFile[];
  /** Data frame size for what we send. */
  frameSize?: number;
  timeoutMs?: number;
}

export interface RawCallResult {
  /** `in M_FILE ...` / `out M_GOT ...` lines, data as `in data 4096`. */
  frames: string[];
  hubOptions: Set<string>;
  crypt: boolean;
  received: { name: string; data: Buffer; method: string | undefined; wireBytes: number }[];
  acknowledged: string[];
  /** Why it ended: 'ok', or what went wrong. */
  end: string;
}

export function rawCall(opts: RawCallOptions): Promise<RawCallResult> {
  const result: RawCallResult = { frames: [], hubOptions: new Set(), crypt: false, received: [], acknowledged: [], end: 'unfinished' };
  const keys = sessionKeys(opts.password, 'caller');
  const frameSize = opts.frameSize ?? 4096;
  let socket: Socket;
  let encrypting = false;
  let localEob = 0;
  let remoteEob = 0;
  let pendingAcks = 0;
  let incoming: { name: string; size: number; mtime: number; method: string | undefined; z?: Decompressor; chunks: Buffer[]; have: number; wire: number; done: boolean } | undefined;
  let work: Promise<void> = Promise.resolve();

  return new Promise((resolve) => {
    const finish = (why: string): void => {
      if (result.end !== 'unfinished') return;
      result.end = why;
      socket.destroy();
      resolve(result);
    };
    const write = (frame: Buffer): void => {
      socket.write(encrypting ? keys.out.encrypt(Buffer.from(frame)) : frame);
    };
    const send = (id: number, arg = ''): void => {
      result.frames.push(`out ${commandName(id)} ${arg}`.trimEnd());
      write(encodeCommand(id, arg));
    };
    const sendFiles = (): void => {
      for (const f of opts.files ?? []) {
        const body = f.method ? compressWhole(f.method, f.data) : f.data;
        send(Cmd.M_FILE, `${formatFileArgs({ name: f.name, size: f.data.length, mtime: f.mtime }, 0)}${f.method ? ` ${f.method}` : ''}`);
        for (let pos = 0; pos < body.length || pos === 0; pos += frameSize) {
          write(encodeData(body.subarray(pos, pos + frameSize)));
          if (body.length === 0) break;
        }
        result.frames.push(`out data ${body.length}`);
        pendingAcks++;
      }
    };
    const maybeEob = (): void => {
      if (localEob <= remoteEob && localEob < 2 && pendingAcks === 0 && !incoming) {
        localEob++;
        send(Cmd.M_EOB);
      }
      if (localEob === 2 && remoteEob === 2) finish('ok');
    };
    const onCommand = (id: number, text: string): void => {
      result.frames.push(`in ${commandName(id)} ${text}`.trimEnd());
      switch (id) {
        case Cmd.M_NUL:
          break;
        case Cmd.M_ADR: {
          const cram = cramChallenge([...result.hubOptions]);
          send(Cmd.M_PWD, cram ? cramResponse(opts.password, cram.challenge) : opts.password);
          break;
        }
        case Cmd.M_OK:
          sendFiles();
          maybeEob();
          break;
        case Cmd.M_FILE: {
          const f = parseFileArgs(text)!;
          const method = f.extra.find((t) => t === 'GZ' || t === 'BZ2');
          incoming = { name: f.name, size: f.size, mtime: f.mtime, method, chunks: [], have: 0, wire: 0, done: false };
          if (method) incoming.z = new Decompressor(method as Method);
          break;
        }
        case Cmd.M_GOT:
          result.acknowledged.push(parseFileRef(text)!.name);
          pendingAcks--;
          maybeEob();
          break;
        case Cmd.M_EOB:
          remoteEob++;
          maybeEob();
          break;
        case Cmd.M_ERR:
        case Cmd.M_BSY:
          finish(`${commandName(id)} ${text}`);
          break;
        default:
          break;
      }
    };
    const onData = async (piece: Buffer, end: boolean): Promise<void> => {
      const inc = incoming;
      if (!inc || inc.done) return; // binkd: data after the file is complete belongs to no file
      inc.wire += piece.length;
      const plain = inc.z ? await inc.z.push(piece) : piece;
      inc.chunks.push(Buffer.from(plain));
      inc.have += plain.length;
      if (inc.have > inc.size) return finish(`${inc.name}: ${inc.have} bytes for size ${inc.size}`);
      if (inc.have === inc.size && (end || inc.z)) {
        inc.done = true;
        inc.z?.close();
        result.received.push({ name: inc.name, data: Buffer.concat(inc.chunks), method: inc.method, wireBytes: inc.wire });
        result.frames.push(`in data ${inc.wire}`);
        incoming = undefined;
        send(Cmd.M_GOT, formatFileRef(inc));
        maybeEob();
      }
    };
    const decoder = new FrameDecoder({
      command: (id, arg) => {
        const text = argText(arg);
        const nul = id === Cmd.M_NUL ? parseNul(text) : undefined;
        if (nul?.key === 'OPT') for (const o of parseOptions(nul.value)) result.hubOptions.add(o);
        if (id === Cmd.M_OK) {
          // Decided at once, at the frame boundary: binkd encrypts every byte after M_OK.
          const opt = (o: string): boolean => opts.options.includes(o) && result.hubOptions.has(o);
          result.crypt = opt('CRYPT') && text.trim() === 'secure';
          if (result.crypt) {
            decoder.setInputTransform((b) => keys.in.decrypt(b));
            encrypting = true;
          }
        }
        work = work.then(() => onCommand(id, text));
      },
      data: (piece, end) => {
        const copy = Buffer.from(piece);
        work = work.then(() => onData(copy, end)).catch((err: Error) => finish(`data: ${err.message}`));
      },
    });

    socket = connect(opts.port, '127.0.0.1', () => {
      send(Cmd.M_NUL, 'SYS raw probe');
      send(Cmd.M_NUL, 'ZYZ Probe');
      send(Cmd.M_NUL, 'VER rawprobe/1.0 binkp/1.1');
      send(Cmd.M_ADR, opts.ourAddress);
      send(Cmd.M_NUL, `OPT ${opts.options.join(' ')}`);
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        finish(`decode: ${(err as Error).message}`);
      }
    });
    socket.on('error', (err) => finish(`socket: ${err.message}`));
    socket.on('close', () => finish('closed by the hub'));
    const timer = setTimeout(() => finish('timeout'), opts.timeoutMs ?? 15_000);
    timer.unref();
  });
}
