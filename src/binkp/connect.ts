/**
 * The one place that owns a connection. `runSession()` wires a CallerSession to any connected
 * Duplex (TCP here; TLS or a proxy tunnel plug in the same way): it decodes the hub's bytes into
 * frames, writes the session's frames with coalescing and backpressure, runs the session's timers,
 * applies the bandwidth limit both ways, and closes so that our last frame (an M_ERR) arrives.
 * The connection itself comes from src/net/dial.ts (lookup, happy eyeballs, TLS, proxies).
 */
import { connect as netConnect, type Socket, type TcpNetConnectOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import { FrameDecoder } from './frame.js';
import { inflatePlzFrame } from './plz.js';
import type { CryptKeys } from './crypt.js';
import type { CallerSession, Established, SessionLink, SessionResult, SessionTimer } from './session.js';
import type { Throttle } from './throttle.js';
import { errorText } from '../errors.js';

/** A timer source: `set` returns a cancel function. Tests pass a fake clock's. */
export interface Timers {
  set(ms: number, fn: () => void): () => void;
}

export const realTimers: Timers = {
  set(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

export interface RunOptions {
  /** bandwidth_limit buckets (global, then per hub): both directions draw from them. */
  throttle?: Throttle | undefined;
  timers?: Timers;
}

/**
 * Bytes of one read from a socket we dialled ourselves. One read is handled per event-loop turn
 * (StreamLink.received), so this bounds how long the results of the files of one read wait: 64 KiB
 * (eight 8 KB packets) kept the M_GOT lag of a 1000-packet receive at about 10 ms, where 256 KiB
 * let it reach 30 ms, at no cost for a 200 MB file (`npm run bench`, rows 1b).
 */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Sockets made by connectReusingReads() read into one reused buffer (net's `onread`) instead of a fresh one
 * per read: 200 MB received is then no longer 200 MB of garbage. Their reads reach the link
 * through here; any other Duplex (TLS, a proxy tunnel) emits 'data' as usual.
 */
const reusedReads = new WeakMap<Duplex, ReusedReader>();

/** Reads of a dialled socket; those before the link attached are kept (copied) for it. */
class ReusedReader {
  private deliver: ((chunk: Buffer) => void) | undefined;
  private early: Buffer[] = [];

  read(chunk: Buffer): boolean {
    if (this.deliver) this.deliver(chunk);
    else this.early.push(Buffer.from(chunk));
    return true;
  }

  attach(deliver: (chunk: Buffer) => void): void {
    this.deliver = deliver;
    for (const chunk of this.early.splice(0)) deliver(chunk);
  }
}

/**
 * Bytes queued in the stream before the session is told to wait for 'drain'. Node's default
 * high-water mark (16 KiB) would stop a run of small packets after two of them.
 */
const WRITE_HIGH_WATER = 256 * 1024;

/** Why input is paused; reading resumes when no reason is left. */
const PAUSED_BY_SESSION = 1;
const PAUSED_BY_THROTTLE = 2;
const PAUSED_TO_YIELD = 4;

/** The SessionLink over a Duplex. */
class StreamLink implements SessionLink {
  private readonly decoder: FrameDecoder;
  private readonly timers: Timers;
  private readonly throttle: Throttle | undefined;
  private readonly cancels = new Map<SessionTimer | 'linger', () => void>();
  private paused = 0;
  private corked = false;
  /** The session is over: no more decoding, our last frames drain out, then the connection goes. */
  private closing = false;
  /** Writes waiting for bandwidth tokens, in order. */
  private readonly held: { bytes: Buffer; release: (() => void) | undefined }[] = [];
  private releasing = false;
  private endWhenReleased = false;
  /** binkd CRYPT: our outgoing keys, from M_OK on. */
  private encrypt: CryptKeys | undefined;
  /** Resolves when close() is called: held writes stop waiting for tokens. */
  private readonly closingNow: Promise<void>;
  private markClosing!: () => void;
  readonly closed: Promise<void>;

  constructor(
    private readonly stream: Duplex,
    private readonly session: CallerSession,
    opts: RunOptions,
  ) {
    this.timers = opts.timers ?? realTimers;
    this.throttle = opts.throttle?.active ? opts.throttle : undefined;
    this.closingNow = new Promise<void>((resolve) => (this.markClosing = resolve));
    this.decoder = new FrameDecoder({
      command: (id, arg) => session.command(id, arg),
      data: (piece) => session.data(piece),
    });
    this.closed = new Promise<void>((resolve) => {
      stream.on('close', () => {
        this.cancel('linger');
        resolve();
        session.remoteClosed();
      });
    });
    const reused = reusedReads.get(stream);
    if (reused) reused.attach((chunk) => this.received(chunk));
    else {
      stream.on('data', (chunk: Buffer) => this.received(chunk));
      // A proxy tunnel hands its socket over paused, holding the bytes that followed its handshake
      // (src/net/proxy.ts); an explicitly paused stream does not start flowing by itself.
      stream.resume();
    }
    stream.on('end', () => session.remoteClosed());
    // An error (e.g. a reset right after the hub's M_ERR) is judged like a close: frames that
    // already arrived are handled first, so the hub's own words are not lost.
    stream.on('error', (err) => session.remoteClosed(`connection error: ${errorText(err)}`));
    stream.on('drain', () => {
      if (!this.releasing) session.drained();
    });
  }

  private received(chunk: Buffer): void {
    // While closing, input is read and dropped: unread input would make our close a reset, and a
    // reset can cost the hub the M_ERR we just sent.
    if (this.closing) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.session.badFrame(errorText(err));
      return;
    }
    this.session.endOfRead();
    // One read at a time, then the event loop: libuv reads a busy socket up to 32 times in a row,
    // and a hub faster than us would keep the loop there for megabytes, while the results the
    // session waits for (a received file synced, so its M_GOT can go) sit in the queue. The hub
    // frees its side sooner when our M_GOTs come as the files do.
    if (!this.closing && !(this.paused & PAUSED_TO_YIELD)) {
      this.pause(PAUSED_TO_YIELD);
      setImmediate(() => this.resume(PAUSED_TO_YIELD));
    }
    // bandwidth_limit on receiving: stop reading until the tokens for this chunk are there; TCP
    // backpressure then slows the hub.
    if (this.throttle && !this.closing) {
      this.pause(PAUSED_BY_THROTTLE);
      void this.throttle.take(chunk.length).then(() => this.resume(PAUSED_BY_THROTTLE));
    }
  }

  private pause(why: number): void {
    if (this.paused === 0) this.stream.pause();
    this.paused |= why;
  }

  private resume(why: number): void {
    if (this.paused === 0) return;
    this.paused &= ~why;
    if (this.paused === 0) this.stream.resume();
  }

  write(bytes: Buffer, release?: () => void): boolean {
    // In the order written, so the cipher's keystream matches the hub's (in place: the session
    // does not look at a buffer again once it is written).
    if (this.encrypt) this.encrypt.encrypt(bytes);
    if (this.throttle) {
      this.held.push({ bytes, release });
      void this.releaseHeld();
      return false;
    }
    // Frames written in one turn (a batch of M_GOTs, a file's M_FILE and first data) leave in one
    // writev when the turn ends.
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(() => {
        this.corked = false;
        this.stream.uncork();
      });
    }
    // false with less than WRITE_HIGH_WATER queued: go on; the stream still emits 'drain'.
    return this.stream.write(bytes, release) || this.stream.writableLength < WRITE_HIGH_WATER;
  }

  /** bandwidth_limit on sending: each write waits for its tokens, in order. */
  private async releaseHeld(): Promise<void> {
    if (this.releasing) return;
    this.releasing = true;
    while (this.held.length > 0 && !this.stream.destroyed) {
      const w = this.held[0]!;
      // Once closing, what is held goes at once: our M_ERR waits behind it.
      if (!this.closing) await Promise.race([this.throttle!.take(w.bytes.length), this.closingNow]);
      this.held.shift();
      if (!this.stream.write(w.bytes, w.release)) await this.drainOrClose();
    }
    this.releasing = false;
    if (this.endWhenReleased) this.stream.end();
    else if (!this.closing) this.session.drained();
  }

  private drainOrClose(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
    });
  }

  pauseInput(): void {
    this.pause(PAUSED_BY_SESSION);
  }

  resumeInput(): void {
    this.resume(PAUSED_BY_SESSION);
  }

  setTimer(timer: SessionTimer, ms: number): void {
    this.cancel(timer);
    this.cancels.set(
      timer,
      this.timers.set(ms, () => {
        this.cancels.delete(timer);
        this.session.timerExpired(timer);
      }),
    );
  }

  clearTimer(timer: SessionTimer): void {
    this.cancel(timer);
  }

  private cancel(timer: SessionTimer | 'linger'): void {
    this.cancels.get(timer)?.();
    this.cancels.delete(timer);
  }

  /**
   * binkd's CRYPT (FTN-NOTES §9) starts here: every byte after the M_OK frame is enciphered both
   * ways. The session calls this while handling M_OK, before the decoder goes on to the next
   * frame, so the input transform takes over at exactly that boundary. PLZ (FTS-1029) changes
   * how data frame headers read from here on.
   */
  established(info: Established): void {
    if (info.crypt) {
      const keys = info.crypt;
      this.decoder.setInputTransform((bytes) => keys.in.decrypt(bytes));
      this.encrypt = keys.out;
    }
    if (info.plz) this.decoder.plz = inflatePlzFrame;
  }

  close(_ok: boolean, lingerMs: number): void {
    if (this.closing) return;
    this.closing = true;
    this.markClosing();
    this.cancel('idle');
    this.cancel('session');
    this.paused = 0;
    this.stream.resume();
    if (this.stream.destroyed) return;
    // Half-close after what is written (held writes go without waiting for tokens now), read
    // until the hub closes too, and drop the connection if that takes longer than `lingerMs`.
    if (this.releasing) this.endWhenReleased = true;
    else this.stream.end();
    this.cancels.set(
      'linger',
      this.timers.set(lingerMs, () => this.stream.destroy()),
    );
  }
}

/**
 * Run `session` over a connected `stream` until the session is over and the connection closed.
 * Never rejects for protocol reasons.
 */
export async function runSession(session: CallerSession, stream: Duplex, opts: RunOptions = {}): Promise<SessionResult> {
  const link = new StreamLink(stream, session, opts);
  session.start(link);
  const [result] = await Promise.all([session.result, link.closed]);
  return result;
}

/**
 * A plain TCP connection whose reads go into one reused buffer (see `reusedReads`); src/net/dial.ts
 * makes its plain-binkp attempts with it. Not for a socket that TLS will wrap: TLS reads the
 * connection itself.
 */
export function connectReusingReads(opts: TcpNetConnectOpts): Socket {
  const reader = new ReusedReader();
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const socket = netConnect({
    ...opts,
    // Each read is handled before the next one reuses the buffer: the session copies what it
    // keeps (frames queued behind an env call, data for zlib; command payloads, CRYPT input and
    // PLZ frames are copied by the decoder).
    onread: { buffer, callback: (n: number, buf: Uint8Array) => reader.read(Buffer.from(buf.buffer, buf.byteOffset, n)) },
  });
  reusedReads.set(socket, reader);
  return socket;
}
