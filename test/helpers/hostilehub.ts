/**
 * A hostile binkp hub for tests: a raw answerer on 127.0.0.1 that speaks just enough binkp to
 * get a caller into the state a case needs, then does what no honest hub would. Unlike the
 * scripted hub (src/demo/hub.ts, the demo's well-behaved hub), every byte it sends is chosen by
 * the case: greeting lines with control characters, frames out of order, a reset mid-file.
 *
 * A case is a `HostileScript`: what to greet with, and hooks called at the points a hostile hub
 * acts (connect, login, each command from the caller, each data frame). The hub records what the
 * caller sent, so a case can check how it reacted.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { FrameDecoder, encodeCommand, encodeData } from '../../src/binkp/frame.js';
import { Cmd, argText, commandName } from '../../src/binkp/commands.js';

/** What the caller sent, in order: `M_FILE a.pkt 3 1700000000 0`, `DATA 3`. */
export type Received = string;

export interface HostileConn {
  readonly socket: Socket;
  readonly received: Received[];
  /** Bytes of data frames received from the caller in this connection. */
  readonly dataBytes: number;
  command(id: number, arg?: string | Buffer): void;
  data(payload: Buffer): void;
  raw(bytes: Buffer): void;
  /** Close after what was written (FIN). */
  end(): void;
  /** Reset the connection (RST): what a crash or a middlebox does mid-transfer. */
  reset(): void;
  /** Run `fn` later; cancelled when the connection closes or the hub stops. */
  later(ms: number, fn: () => void): void;
}

export interface HostileScript {
  /** M_NUL lines of the greeting, before M_ADR; default SYS/ZYZ/LOC/VER (binkp/1.0). */
  greeting?: (string | Buffer)[];
  /** The M_ADR argument; default ` <address>`. */
  adr?: string | Buffer;
  /** Called when the caller connects, before the greeting; return true to skip the greeting. */
  onConnect?(c: HostileConn): boolean | void;
  /** Called on the caller's M_PWD; default: M_OK `non-secure`, then `afterLogin`. */
  onPassword?(c: HostileConn, arg: string): void;
  /** Called after our M_OK. */
  afterLogin?(c: HostileConn): void;
  /** Every command from the caller (after the built-in M_PWD handling). */
  onCommand?(c: HostileConn, id: number, arg: string): void;
  /** Every data frame from the caller (whole frames). */
  onData?(c: HostileConn, payload: Buffer): void;
}

/** binkp/1.0: the session ends after one batch, so scripts need no batch bookkeeping. */
export function defaultGreeting(): string[] {
  return ['SYS hostile hub', 'ZYZ nobody', 'LOC nowhere', 'VER hostile/1.0 binkp/1.0'];
}

export class HostileHub {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  readonly connections: HostileConn[] = [];

  constructor(
    private readonly address: string,
    private readonly script: HostileScript,
  ) {}

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** Every command and data frame from the caller, over all connections. */
  get received(): Received[] {
    return this.connections.flatMap((c) => c.received);
  }

  listen(): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(this.port));
    });
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    const timers = this.timers;
    const mine = new Set<NodeJS.Timeout>();
    socket.on('close', () => {
      this.sockets.delete(socket);
      for (const t of mine) {
        clearTimeout(t);
        timers.delete(t);
      }
    });
    const write = (b: Buffer): void => {
      if (!socket.destroyed && socket.writable) socket.write(b);
    };
    let dataBytes = 0;
    const received: Received[] = [];
    const conn: HostileConn = {
      socket,
      received,
      get dataBytes() {
        return dataBytes;
      },
      command: (id, arg = '') => write(encodeCommand(id, arg)),
      data: (payload) => write(encodeData(payload)),
      raw: (bytes) => write(bytes),
      end: () => socket.end(),
      reset: () => socket.resetAndDestroy(),
      later: (ms, fn) => {
        const t = setTimeout(() => {
          timers.delete(t);
          mine.delete(t);
          if (!socket.destroyed) fn();
        }, ms);
        timers.add(t);
        mine.add(t);
      },
    };
    this.connections.push(conn);
    const script = this.script;
    let loggedIn = false;
    let frame: Buffer[] = [];
    const decoder = new FrameDecoder({
      command: (id, arg) => {
        const text = argText(arg);
        received.push(`${commandName(id)} ${text}`.trimEnd());
        if (id === Cmd.M_PWD && !loggedIn) {
          loggedIn = true;
          if (script.onPassword) script.onPassword(conn, text);
          else {
            conn.command(Cmd.M_OK, 'non-secure');
            script.afterLogin?.(conn);
          }
        }
        script.onCommand?.(conn, id, text);
      },
      data: (piece, end) => {
        frame.push(Buffer.from(piece));
        if (!end) return;
        const payload = Buffer.concat(frame);
        frame = [];
        dataBytes += payload.length;
        received.push(`DATA ${payload.length}`);
        script.onData?.(conn, payload);
      },
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    if (script.onConnect?.(conn) === true) return;
    for (const line of script.greeting ?? defaultGreeting()) conn.command(Cmd.M_NUL, line);
    conn.command(Cmd.M_ADR, script.adr ?? ` ${this.address}`);
  }
}
