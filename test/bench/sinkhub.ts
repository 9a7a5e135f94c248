/**
 * A streaming sink: the least of an answering binkp hub [FTS-1026 §6.1.2, §6.2] that takes files
 * and keeps none of their bytes. The scripted hub (src/demo/hub.ts) assembles every received file
 * in memory, which a 2 GB transfer cannot afford; this one checks each data piece as it arrives
 * (all zeros, or a running sha256), counts, times, and drops it.
 *
 * It announces binkp/1.0, offers no CRAM, expects no password (M_PWD "-", answered M_OK
 * non-secure), has nothing to send (M_EOB at once), answers NR offers with M_GET from 0, and sends
 * M_GOT when a file is complete. A 1.0 peer ends the session after the first batch.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createHash, type Hash } from 'node:crypto';
import { FrameDecoder, encodeCommand, MAX_FRAME_PAYLOAD } from '../../src/binkp/frame.js';
import { Cmd, argText, formatFileRef, parseFileArgs } from '../../src/binkp/commands.js';

export type SinkCheck = 'zeros' | 'sha256';

export interface SinkFile {
  name: string;
  size: number;
  mtime: number;
  received: number;
  /** 'zeros': every byte was 0; 'sha256': hex digest of what arrived. */
  zeros?: boolean;
  sha256?: string;
  /** performance.now() of the M_FILE (the sender starts reading, and waiting for tokens, then). */
  offeredAt: number;
  /** performance.now() of the first and the last data byte. */
  firstDataAt: number | undefined;
  lastDataAt: number | undefined;
  complete: boolean;
}

export interface SinkSession {
  callerAddress: string | undefined;
  files: SinkFile[];
  /** The caller sent M_EOB. */
  eob: boolean;
  closed: boolean;
  error: string | undefined;
}

const ZEROS = Buffer.alloc(MAX_FRAME_PAYLOAD);

export class SinkHub {
  readonly sessions: SinkSession[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly address: string,
    private readonly check: SinkCheck,
  ) {}

  listen(): Promise<number> {
    const server = createServer((s) => this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const a = server.address();
        resolve(a && typeof a === 'object' ? a.port : 0);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Every file of every session, in arrival order. */
  get files(): SinkFile[] {
    return this.sessions.flatMap((s) => s.files);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const session: SinkSession = { callerAddress: undefined, files: [], eob: false, closed: false, error: undefined };
    this.sessions.push(session);
    const send = (id: number, arg = ''): void => {
      if (!socket.destroyed) socket.write(encodeCommand(id, arg));
    };
    let current: { file: SinkFile; hash: Hash | undefined } | undefined;
    let loggedIn = false;

    const finishFile = (): void => {
      const c = current!;
      current = undefined;
      c.file.complete = true;
      if (c.hash) c.file.sha256 = c.hash.digest('hex');
      send(Cmd.M_GOT, formatFileRef(c.file));
    };
    const fail = (why: string): void => {
      session.error ??= why;
      send(Cmd.M_ERR, why);
      socket.destroy();
    };

    const decoder = new FrameDecoder({
      command: (id, argBuf) => {
        const arg = argText(argBuf);
        switch (id) {
          case Cmd.M_ADR:
            session.callerAddress = arg.trim().split(/\s+/)[0];
            return;
          case Cmd.M_PWD:
            if (loggedIn) return;
            loggedIn = true;
            send(Cmd.M_OK, 'non-secure');
            // Nothing to send: our batch is empty.
            send(Cmd.M_EOB);
            return;
          case Cmd.M_FILE: {
            const f = parseFileArgs(arg);
            if (!f) return fail(`malformed M_FILE: ${arg}`);
            if (f.offset === -1) {
              // FTS-1028: the caller waits for our offset.
              send(Cmd.M_GET, `${formatFileRef(f)} 0`);
              return;
            }
            if (f.offset !== 0) return fail(`sink takes files from offset 0 only, got ${f.offset}`);
            const file: SinkFile = {
              name: f.name,
              size: f.size,
              mtime: f.mtime,
              received: 0,
              offeredAt: performance.now(),
              firstDataAt: undefined,
              lastDataAt: undefined,
              complete: false,
              ...(this.check === 'zeros' ? { zeros: true } : {}),
            };
            session.files.push(file);
            current = { file, hash: this.check === 'sha256' ? createHash('sha256') : undefined };
            if (f.size === 0) finishFile();
            return;
          }
          case Cmd.M_EOB:
            session.eob = true;
            return;
          case Cmd.M_ERR:
          case Cmd.M_BSY:
            session.error ??= `caller sent ${id === Cmd.M_ERR ? 'M_ERR' : 'M_BSY'} ${arg}`;
            return;
          default:
            return; // M_NUL and the rest: nothing to do
        }
      },
      data: (piece) => {
        const c = current;
        if (!c || piece.length === 0) return;
        const t = performance.now();
        c.file.firstDataAt ??= t;
        c.file.lastDataAt = t;
        c.file.received += piece.length;
        if (c.file.received > c.file.size) return fail(`${c.file.name}: more than ${c.file.size} bytes`);
        if (c.hash) c.hash.update(piece);
        else if (c.file.zeros && !piece.equals(ZEROS.subarray(0, piece.length))) c.file.zeros = false;
        if (c.file.received === c.file.size) finishFile();
      },
    });

    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        fail(`bad frame: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    socket.on('error', (err) => {
      session.error ??= `connection error: ${err.message}`;
    });
    socket.on('close', () => {
      session.closed = true;
      this.sockets.delete(socket);
    });
    // Greeting: what a binkp/1.0 answering side says before the caller's password.
    send(Cmd.M_NUL, 'SYS fnpoll bench sink');
    send(Cmd.M_NUL, 'ZYZ Bench Sysop');
    send(Cmd.M_NUL, 'VER fnpoll-bench-sink/1.0 binkp/1.0');
    send(Cmd.M_ADR, this.address);
  }
}
