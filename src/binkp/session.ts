/**
 * The calling side of a binkp/1.1 session [FTS-1026, FTS-1027, FTS-1028, FSP-1024 as summarised in
 * FTN-NOTES §2-3]. The session owns no sockets of its own making and knows nothing of the BSO
 * layout: it runs over any Duplex (TCP, TLS, a test pipe) and reaches the file system only
 * through the `SessionEnv` it is given.
 *
 * Flow: greeting → (hub M_ADR) → M_PWD → (M_OK) → batches of transfer → close.
 * Incoming frames are processed strictly in order by one async pump; the sender runs as a
 * second loop that streams file data and reacts to M_GET / M_GOT / M_SKIP.
 */
import type { Duplex } from 'node:stream';
import { closeSync, openSync, readvSync } from 'node:fs';
import { FrameDecoder, encodeCommand, writeDataHeader, FRAME_HEADER_SIZE, MAX_FRAME_PAYLOAD } from './frame.js';
import {
  Cmd,
  argText,
  commandName,
  cramChallenge,
  fileKey,
  formatFileArgs,
  formatFileRef,
  parseFileArgs,
  parseFileRef,
  parseNul,
  parseOptions,
  sameFile,
  type FileArgs,
  type FileRef,
} from './commands.js';
import { cramResponse, CramError } from './cram.js';
import { formatAddress, parseAddressList, sameAddress, type FtnAddress } from '../ftn/address.js';
import { SessionError, errorText, type FailureKind } from '../errors.js';
import type { Throttle } from './throttle.js';

/** binkd waits this long for input before giving up; we take the same idea for idle. */
const DEFAULT_IDLE_TIMEOUT = 300_000;
/** How many bytes of file data go to the socket in one write (many frames coalesced). */
const WRITE_BATCH_BYTES = 256 * 1024;
/** Write buffers in flight per session: enough to keep the socket busy while the next is read. */
const WRITE_BUFFERS = 3;
/** A CRAM offer inside an M_NUL, for masking in logs. */
const CRAM_IN_TEXT = /(CRAM-[A-Za-z0-9/]+-)[0-9a-fA-F]+/g;
/** Frames queued for the pump before the socket is paused. */
const MAX_QUEUED_EVENTS = 512;

/** What streamData reads from. */
interface SendSource {
  readv(buffers: Buffer[], position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/**
 * Files are read with synchronous calls, as binkd reads them: from the page cache a 256 KiB readv
 * takes microseconds, where each awaited one is a thread-pool round trip (measured: a 200 MB send
 * 15 % faster, a thousand small packets several times faster). One readv fills the payload slots
 * of a whole write batch.
 */
function syncSource(path: string): SendSource {
  const fd = openSync(path, 'r');
  return {
    readv: async (buffers, position) => ({ bytesRead: readvSync(fd, buffers, position) }),
    close: async () => closeSync(fd),
  };
}

/** A file we can send. `sendName` is the name offered on the wire (unescaped). */
export interface OutgoingFile {
  /** Stable identity for this session (e.g. kind + path + flow line). */
  id: string;
  path: string;
  sendName: string;
  size: number;
  mtime: number;
}

/** `name` = unescaped wire name, `mtime` = unix seconds. */
export interface IncomingFile {
  name: string;
  size: number;
  mtime: number;
}

export type Offer =
  /** Same name + size + mtime (±2 s) already in the target inbound: answer M_GOT at once. */
  | { action: 'have'; path: string }
  /** 0, or the length of a resumable partial: answer M_GET at that offset (or take the data). */
  | { action: 'receive'; offset: number }
  /** e.g. min_free: answer M_SKIP. */
  | { action: 'skip'; reason: string };

export interface PartialFile {
  /** Bytes in the partial so far (offset + written). */
  readonly received: number;
  /**
   * Queue a chunk. false = buffer full: wait for onDrain before more. Throws IoError once the
   * file has failed (disk full, ...); onDrain callbacks also fire on failure so nobody waits forever.
   */
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  /**
   * Flush and close, keeping the partial for a later resume (FTS-1026 §5.5: an interrupted file
   * "MUST be saved as unfinished"). Rejects with the write error, if any.
   */
  close(): Promise<void>;
}

/** What the session needs from the world outside the wire. */
export interface SessionEnv {
  /**
   * Called once the hub's M_ADR arrived and matched: claim the hub's AKAs (BSO `.bsy`). Returns
   * the AKAs we may serve in this session; an empty list means every AKA is busy.
   */
  claimAkas(akas: FtnAddress[]): Promise<FtnAddress[]>;
  /** Files to send to these AKAs, best flavour first, excluding ids in `done`. */
  queue(akas: FtnAddress[], done: ReadonlySet<string>): Promise<OutgoingFile[]>;
  /** M_GOT arrived for a file we sent: apply the flow-file directive. */
  confirmed(file: OutgoingFile): Promise<void>;
  /** M_SKIP arrived for a file we sent (it stays queued). */
  skipped?(file: OutgoingFile, reason: string): void;
  offer(file: IncomingFile, secure: boolean): Promise<Offer>;
  openPartial(file: IncomingFile, offset: number): Promise<PartialFile>;
  /** Returns the final path. */
  complete(file: IncomingFile, partial: PartialFile, secure: boolean): Promise<string>;
}

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';
export type LogCategory = 'protocol' | 'transfer' | 'auth' | 'general';
export type SessionLogger = (level: LogLevel, category: LogCategory, message: string, fields?: Record<string, unknown>) => void;

export interface SessionOptions {
  hubAddress: FtnAddress;
  /** Our AKAs, presented in M_ADR. */
  ourAddresses: FtnAddress[];
  /** undefined = no password (`-`). */
  password?: string | undefined;
  useCram: boolean;
  nrMode: boolean;
  system: string;
  sysop: string;
  location: string;
  nodeinfo: string;
  /** `fnpoll/<version>/<os>`, no spaces (FTN-NOTES §2). */
  mailer: string;
  /** Data frame payload, 1..32767. */
  bufferSize?: number;
  idleTimeout?: number;
  sessionTimeout?: number;
  throttle?: Throttle | undefined;
  env: SessionEnv;
  log?: SessionLogger;
  now?: () => number;
  /** Extra time info for `TIME`; defaults to the current date. */
  timeText?: () => string;
}

export interface TransferStats {
  filesSent: number;
  bytesSent: number;
  filesReceived: number;
  bytesReceived: number;
  filesSkipped: number;
}

export interface SessionResult {
  ok: boolean;
  error?: SessionError;
  stats: TransferStats;
  startedAt: number;
  durationMs: number;
  /** We sent a real password and the hub answered M_OK `secure`. */
  secure: boolean;
  cram: boolean;
  /** NR mode used in either direction. */
  nr: boolean;
  /** Both sides speak binkp/1.1 (multiple batches). */
  binkp11: boolean;
  batches: number;
  remoteAkas: string[];
  remoteInfo: Record<string, string>;
  /** AKAs we served (claimed `.bsy`). */
  servedAkas: FtnAddress[];
  receivedPaths: string[];
}

interface SendState {
  file: OutgoingFile;
  /** Bytes of the file handed to the socket so far (for progress). */
  position?: number;
  /** Pending interruption set by the pump: re-position, or stop. */
  interrupt?: { kind: 'get'; offset: number } | { kind: 'got' } | { kind: 'skip' };
  /** NR: resolved when the hub's M_GET (or M_GOT/M_SKIP) arrives. */
  waitingGet?: () => void;
}

interface RecvState {
  file: IncomingFile;
  partial: PartialFile;
}

type Stage = 'greeting' | 'auth' | 'transfer' | 'done';

type Event = { kind: 'cmd'; id: number; arg: Buffer } | { kind: 'data'; piece: Buffer; end: boolean };

/**
 * One call. `run(socket)` resolves with a result; it never rejects for protocol reasons.
 */
export class CallerSession {
  private readonly opts: SessionOptions;
  private readonly env: SessionEnv;
  private readonly log: SessionLogger;
  private readonly now: () => number;
  private readonly frameSize: number;

  private socket!: Duplex;
  private stage: Stage = 'greeting';
  private finished = false;
  private finish!: (r: SessionResult) => void;
  private readonly startedAt: number;

  // remote facts
  private remoteOptions = new Set<string>();
  private challenge: string | undefined;
  private remoteAkas: FtnAddress[] = [];
  private remoteInfo: Record<string, string> = {};
  private remote11 = false;
  private servedAkas: FtnAddress[] = [];
  private passwordSent = false;
  private usedCram = false;
  private secure = false;
  private nrSeen = false;

  // batch state
  private batches = 0;
  private batchMsgs = 0;
  private localEob = false;
  private remoteEob = false;
  private sending: SendState | undefined;
  private senderRunning = false;
  private senderWake: (() => void) | undefined;
  private readonly awaitingAck = new Map<string, OutgoingFile>();
  private readonly resend: { file: OutgoingFile; offset: number }[] = [];
  private readonly done = new Set<string>();
  private receiving: RecvState | undefined;
  /** M_GETs we sent that await the hub's fresh M_FILE (binkd's GET_FILE_balance). */
  private readonly getsPending = new Map<string, number>();
  private stopAfterBatch = false;

  private readonly stats: TransferStats = { filesSent: 0, bytesSent: 0, filesReceived: 0, bytesReceived: 0, filesSkipped: 0 };
  private readonly receivedPaths: string[] = [];

  // input pump
  private readonly events: Event[] = [];
  private eventHead = 0;
  private pumping = false;
  private pausedForQueue = false;
  private pausedForDisk = false;

  // timers
  private idleTimer: NodeJS.Timeout | undefined;
  private sessionTimer: NodeJS.Timeout | undefined;

  // write buffers
  private readonly freeBuffers: Buffer[] = [];
  private bufferWaiters: (() => void)[] = [];

  constructor(opts: SessionOptions) {
    this.opts = opts;
    this.env = opts.env;
    this.log = opts.log ?? (() => undefined);
    this.now = opts.now ?? Date.now;
    this.frameSize = Math.min(MAX_FRAME_PAYLOAD, Math.max(1, opts.bufferSize ?? MAX_FRAME_PAYLOAD));
    this.startedAt = this.now();
  }

  /** Live counters for progress and SIGUSR1 snapshots. */
  get progress(): Readonly<TransferStats> & {
    sendingName?: string;
    sendingOffset?: number;
    sendingSize?: number;
    receivingName?: string;
    receivingOffset?: number;
    receivingSize?: number;
  } {
    return {
      ...this.stats,
      sendingName: this.sending?.file.sendName,
      sendingOffset: this.sending?.position,
      sendingSize: this.sending?.file.size,
      receivingName: this.receiving?.file.name,
      receivingOffset: this.receiving?.partial.received,
      receivingSize: this.receiving?.file.size,
    };
  }

  run(socket: Duplex): Promise<SessionResult> {
    this.socket = socket;
    const result = new Promise<SessionResult>((resolve) => {
      this.finish = resolve;
    });
    const decoder = new FrameDecoder({
      command: (id, arg) => this.enqueue({ kind: 'cmd', id, arg }),
      data: (piece, end) => this.onDataFrame(piece, end),
    });
    socket.on('data', (chunk: Buffer) => {
      this.armIdle();
      try {
        decoder.push(chunk);
      } catch (err) {
        this.fail('protocol', `bad frame from hub: ${errorText(err)}`);
      }
    });
    socket.on('end', () => this.onRemoteClose());
    socket.on('close', () => this.onRemoteClose());
    // An error (e.g. a reset right after the hub's M_ERR) is judged like a close: frames that
    // already arrived are processed first, so the hub's own words are not lost.
    socket.on('error', (err) => this.onRemoteClose(`connection error: ${errorText(err)}`));
    this.armIdle();
    const sessionTimeout = this.opts.sessionTimeout ?? 0;
    if (sessionTimeout > 0) {
      this.sessionTimer = setTimeout(
        () => this.fail('timeout', `session took longer than session_timeout (${Math.round(sessionTimeout / 1000)} s)`),
        sessionTimeout,
      );
    }
    this.sendGreeting();
    return result;
  }

  /** End the session now (signal, run timeout). Partials are kept. */
  abort(reason: string): void {
    if (this.finished) return;
    this.sendCmd(Cmd.M_ERR, reason);
    this.fail('aborted', reason);
  }

  /**
   * Finish gracefully: offer no new file, let the file in flight finish, skip new incoming files,
   * and end after the current batch.
   */
  drain(): void {
    this.stopAfterBatch = true;
    this.senderWake?.();
  }

  // ---------------------------------------------------------------------------------------------
  // Outgoing frames

  private sendCmd(id: number, text: string | Buffer = ''): void {
    if (this.finished || this.socket.destroyed) return;
    if (this.stage === 'transfer') this.batchMsgs++;
    const shown = id === Cmd.M_PWD ? '********' : typeof text === 'string' ? text : '<binary>';
    this.log('debug', 'protocol', `send ${commandName(id)} ${shown}`.trimEnd());
    // Commands sent in one go (a file's M_GOT after each of many small files in one socket read)
    // leave in one write.
    if (this.stage === 'transfer') this.corkTick();
    this.socket.write(encodeCommand(id, text));
  }

  private sendGreeting(): void {
    const o = this.opts;
    // FTN-NOTES §2: SYS, ZYZ, LOC, NDL, TIME, VER, then M_ADR, then OPT with only what we implement.
    this.sendCmd(Cmd.M_NUL, `SYS ${o.system}`);
    this.sendCmd(Cmd.M_NUL, `ZYZ ${o.sysop}`);
    this.sendCmd(Cmd.M_NUL, `LOC ${o.location}`);
    this.sendCmd(Cmd.M_NUL, `NDL ${o.nodeinfo}`);
    this.sendCmd(Cmd.M_NUL, `TIME ${(o.timeText ?? (() => new Date(this.now()).toUTCString()))()}`);
    this.sendCmd(Cmd.M_NUL, `VER ${o.mailer} binkp/1.1`);
    this.sendCmd(Cmd.M_ADR, o.ourAddresses.map((a) => formatAddress(a)).join(' '));
    // FTS-1028: OPT NR asks the hub to offer its files with offset -1. We list nothing else: we
    // implement neither CRYPT, GZ/BZ2 (EXTCMD), ND/NDA, PLZ nor CRC.
    if (o.nrMode) this.sendCmd(Cmd.M_NUL, 'OPT NR');
  }

  // ---------------------------------------------------------------------------------------------
  // Incoming frames: one ordered pump

  private enqueue(ev: Event): void {
    if (this.finished) return;
    this.events.push(ev);
    if (this.events.length - this.eventHead > MAX_QUEUED_EVENTS && !this.pausedForQueue) {
      this.pausedForQueue = true;
      this.socket.pause();
    }
    if (!this.pumping) void this.pump();
  }

  /**
   * The hot path of receiving: with nothing queued ahead of it, a data frame goes straight to the
   * partial file, with no event object and no trip through the pump.
   */
  private onDataFrame(piece: Buffer, end: boolean): void {
    if (this.finished) return;
    if (this.pumping || this.eventHead < this.events.length) {
      this.enqueue({ kind: 'data', piece, end });
      return;
    }
    let completion: Promise<void> | undefined;
    try {
      completion = this.onData(piece);
    } catch (err) {
      this.failFrom(err);
      return;
    }
    if (!completion) return;
    // Placing the finished file is async: frames behind it wait in the queue meanwhile.
    this.pumping = true;
    completion.then(
      () => {
        this.pumping = false;
        void this.pump();
      },
      (err: unknown) => {
        this.pumping = false;
        this.failFrom(err);
      },
    );
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (!this.finished && this.eventHead < this.events.length) {
        const ev = this.events[this.eventHead]!;
        this.events[this.eventHead++] = undefined as never;
        if (this.eventHead > 1024 && this.eventHead * 2 > this.events.length) {
          this.events.splice(0, this.eventHead);
          this.eventHead = 0;
        }
        if (ev.kind === 'data') {
          const completion = this.onData(ev.piece);
          if (completion) await completion;
        } else {
          await this.onCommand(ev.id, ev.arg);
        }
        if (this.pausedForQueue && this.events.length - this.eventHead < MAX_QUEUED_EVENTS / 2) {
          this.pausedForQueue = false;
          if (!this.pausedForDisk) this.socket.resume();
        }
      }
    } catch (err) {
      if (err instanceof SessionError) this.failWith(err);
      else this.fail('io', errorText(err));
    } finally {
      this.pumping = false;
    }
    if (this.closeSeen !== undefined) this.onRemoteClose();
  }

  private async onCommand(id: number, argBuf: Buffer): Promise<void> {
    const arg = argText(argBuf);
    if (this.stage === 'transfer') this.batchMsgs++;
    // FTS-1027 challenges are as secret as digests: never in a log, at any level.
    this.log('debug', 'protocol', `recv ${commandName(id)} ${arg.replace(CRAM_IN_TEXT, '$1<challenge>')}`.trimEnd());
    switch (id) {
      case Cmd.M_NUL:
        return this.onNul(arg);
      case Cmd.M_ADR:
        return this.onAdr(arg);
      case Cmd.M_OK:
        return this.onOk(arg);
      case Cmd.M_ERR:
        return this.onRemoteError('error', arg);
      case Cmd.M_BSY:
        return this.onRemoteError('busy', arg);
      case Cmd.M_PWD:
        // The answering side never sends M_PWD; binkd ignores it too.
        this.log('warning', 'protocol', 'hub sent M_PWD; ignored');
        return;
      case Cmd.M_FILE:
      case Cmd.M_EOB:
      case Cmd.M_GOT:
      case Cmd.M_GET:
      case Cmd.M_SKIP:
        if (this.stage !== 'transfer') {
          throw new SessionError('protocol', `hub sent ${commandName(id)} before M_OK`);
        }
        if (id === Cmd.M_FILE) return this.onFile(arg);
        if (id === Cmd.M_EOB) return this.onEob();
        if (id === Cmd.M_GOT) return this.onGot(arg);
        if (id === Cmd.M_GET) return this.onGet(arg);
        return this.onSkip(arg);
      default:
        // FTN-NOTES §1: unknown command ids are ignored, as binkd does.
        this.log('debug', 'protocol', `ignoring unknown command ${id}`);
    }
  }

  private onNul(arg: string): void {
    const { key, value } = parseNul(arg);
    if (key === 'OPT') {
      this.mergeOptions(parseOptions(value));
    } else if (key === 'NR' || key.startsWith('CRAM-')) {
      // Synchronet BinkIT 1.123 echoes options without the `OPT ` prefix (FTN-NOTES §8).
      this.mergeOptions(parseOptions(arg));
    } else if (key) {
      this.remoteInfo[key] = value;
      if (key === 'VER') {
        const m = /binkp\/(\d+)\.(\d+)/i.exec(value);
        this.remote11 = !!m && Number(m[1]) * 100 + Number(m[2]) >= 101;
      }
    }
  }

  private mergeOptions(opts: string[]): void {
    for (const o of opts) this.remoteOptions.add(o);
    const c = cramChallenge(opts);
    if (c) this.challenge = c.challenge;
    // FTS-1028: a hub that sends OPT NR asks us to send in NR mode; binkd does so when asked.
    if (opts.includes('NR')) this.nrSeen = true;
  }

  private async onAdr(arg: string): Promise<void> {
    if (this.stage !== 'greeting') {
      this.log('warning', 'protocol', 'hub sent a second M_ADR; ignored');
      return;
    }
    const { addresses, bad } = parseAddressList(arg);
    if (bad.length) this.log('warning', 'protocol', `hub M_ADR has tokens that are not addresses: ${bad.join(' ')}`);
    this.remoteAkas = addresses;
    const hub = this.opts.hubAddress;
    if (!addresses.some((a) => sameAddress(a, hub))) {
      // FTN-NOTES §2: abort before any password leaves (binkd: "Remote has no needed AKA").
      const shown = addresses.map((a) => formatAddress(a)).join(' ') || '(none)';
      this.sendCmd(Cmd.M_ERR, `No AKA ${formatAddress(hub)} in your M_ADR`);
      throw new SessionError('protocol', `hub presented ${shown}, not ${formatAddress(hub)}; no password sent`);
    }
    this.servedAkas = await this.env.claimAkas(addresses);
    if (this.finished) return;
    if (this.servedAkas.length === 0) {
      this.sendCmd(Cmd.M_BSY, 'All AKAs are busy');
      throw new SessionError('busy', `all AKAs of ${formatAddress(hub)} are busy (another mailer is in session with it)`);
    }
    this.sendPassword();
    this.stage = 'auth';
  }

  private sendPassword(): void {
    const { password, useCram } = this.opts;
    if (password === undefined) {
      this.sendCmd(Cmd.M_PWD, '-');
      return;
    }
    if (this.challenge !== undefined) {
      let response: string;
      try {
        response = cramResponse(password, this.challenge);
      } catch (err) {
        if (err instanceof CramError) {
          this.sendCmd(Cmd.M_ERR, 'Bad CRAM challenge');
          throw new SessionError('protocol', `hub sent a bad CRAM challenge: ${err.message}`);
        }
        throw err;
      }
      this.usedCram = true;
      this.passwordSent = true;
      this.sendCmd(Cmd.M_PWD, response);
      return;
    }
    if (useCram) {
      // Sending the password in the clear is the user's decision, never ours (FTN-NOTES §2).
      this.sendCmd(Cmd.M_ERR, 'CRAM-MD5 authentication required');
      throw new SessionError(
        'auth',
        'hub offered no CRAM-MD5 challenge; refusing to send the password in plain text (set use_cram = no for this hub to allow it)',
      );
    }
    this.log('warning', 'auth', 'hub offered no CRAM-MD5 challenge; sending the password in plain text (use_cram = no)');
    this.passwordSent = true;
    this.sendCmd(Cmd.M_PWD, Buffer.from(password, 'utf8'));
  }

  private async onOk(arg: string): Promise<void> {
    if (this.stage !== 'auth') {
      this.log('warning', 'protocol', `unexpected M_OK ${arg}`);
      return;
    }
    const nonSecure = /non-?secure/i.test(arg);
    this.secure = this.passwordSent && !nonSecure;
    if (this.passwordSent && nonSecure) {
      this.log('warning', 'auth', `hub answered M_OK ${arg} although we sent a password: its inbound treats us as unlisted; our mail goes to its insecure inbound`);
    }
    this.log('info', 'auth', this.secure ? `authenticated (${this.usedCram ? 'CRAM-MD5' : 'plain text'})` : 'non-secure session', {
      cram: this.usedCram,
    });
    this.stage = 'transfer';
    await this.startBatch();
  }

  private onRemoteError(kind: 'error' | 'busy', text: string): never {
    if (kind === 'busy') throw new SessionError('busy', `hub is busy: ${text}`, { remote: text });
    const auth = this.stage === 'auth' && /pass|auth|md5|cram|secure/i.test(text);
    throw new SessionError(auth ? 'auth' : 'protocol', `hub error: ${text}`, { remote: text });
  }

  // ---------------------------------------------------------------------------------------------
  // Batches

  private async startBatch(): Promise<void> {
    this.batches++;
    this.batchMsgs = 0;
    this.localEob = false;
    this.remoteEob = false;
    const files = this.stopAfterBatch ? [] : await this.env.queue(this.servedAkas, this.done);
    if (this.finished) return;
    void this.runSender(files);
  }

  /** FSP-1024 (FTN-NOTES §3): a batch ends when both M_EOBs passed and nothing is in flight. */
  private checkBatchEnd(): void {
    if (this.finished || this.stage !== 'transfer') return;
    if (!this.localEob || !this.remoteEob) return;
    if (this.awaitingAck.size || this.sending || this.senderRunning || this.receiving || this.getsPending.size) return;
    // binkd closes after a batch that carried only the two M_EOBs, and after any batch with a
    // binkp/1.0 peer. It counts every command frame both ways; so do we.
    if (!this.remote11 || this.batchMsgs <= 2 || this.stopAfterBatch) {
      this.succeed();
      return;
    }
    void this.startBatch().catch((err) => this.failFrom(err));
  }

  private async onEob(): Promise<void> {
    this.remoteEob = true;
    if (this.receiving) {
      // binkd keeps what arrived of an interrupted file as a partial for a later resume.
      const r = this.receiving;
      this.receiving = undefined;
      this.log('warning', 'transfer', `hub ended its batch in the middle of ${r.file.name} (${r.partial.received} of ${r.file.size} bytes); partial kept`);
      await r.partial.close();
    }
    this.checkBatchEnd();
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  private async onFile(arg: string): Promise<void> {
    const f = parseFileArgs(arg);
    if (!f) throw new SessionError('protocol', `hub sent a malformed M_FILE: ${arg}`);
    if (this.receiving) {
      const r = this.receiving;
      this.receiving = undefined;
      this.log('warning', 'transfer', `hub started ${f.name} before finishing ${r.file.name}; partial kept`);
      await r.partial.close();
    }
    const file: IncomingFile = { name: f.name, size: f.size, mtime: f.mtime };
    const key = fileKey(file);
    const asked = this.getsPending.get(key);
    if (asked !== undefined) {
      if (f.offset === asked) {
        this.getsPending.delete(key);
        return this.beginReceive(file, f.offset);
      }
      if (f.offset !== -1) {
        // The hub repeats the file from another offset than we asked; start over from our answer.
        this.getsPending.delete(key);
      }
    }
    if (this.stopAfterBatch) {
      this.stats.filesSkipped++;
      this.sendCmd(Cmd.M_SKIP, formatFileRef(file));
      return;
    }
    const offer = await this.env.offer(file, this.secure);
    if (this.finished) return;
    switch (offer.action) {
      case 'have':
        // FTN-NOTES §6: same name, size and time already here: acknowledge without receiving.
        this.log('info', 'transfer', `already have ${file.name} (${offer.path}); acknowledged`, { file: file.name, size: file.size });
        this.sendCmd(Cmd.M_GOT, formatFileRef(file));
        return;
      case 'skip':
        this.stats.filesSkipped++;
        this.log('warning', 'transfer', `skipping ${file.name}: ${offer.reason}`, { file: file.name, size: file.size });
        this.sendCmd(Cmd.M_SKIP, formatFileRef(file));
        return;
      case 'receive':
        return this.acceptOffer(file, f, offer.offset);
    }
  }

  private async acceptOffer(file: IncomingFile, f: FileArgs, offset: number): Promise<void> {
    if (f.offset === -1 || f.offset !== offset) {
      // FTS-1028: -1 asks for our offset. Otherwise we resume a partial (or restart) at `offset`;
      // binkd discards data after an M_GET until its fresh M_FILE, and so do we.
      if (f.offset === -1) this.nrSeen = true;
      if (offset > 0) this.log('info', 'transfer', `resuming ${file.name} from ${offset}`, { file: file.name, offset });
      this.getsPending.set(fileKey(file), offset);
      this.sendCmd(Cmd.M_GET, `${formatFileRef(file)} ${offset}`);
      return;
    }
    return this.beginReceive(file, offset);
  }

  private async beginReceive(file: IncomingFile, offset: number): Promise<void> {
    if (offset > file.size) throw new SessionError('protocol', `hub sent ${file.name} from offset ${offset} past its size ${file.size}`);
    const partial = await this.env.openPartial(file, offset);
    this.log('info', 'transfer', `receiving ${file.name} (${file.size} bytes${offset ? `, from ${offset}` : ''})`, {
      file: file.name,
      size: file.size,
      offset,
    });
    this.receiving = { file, partial };
    if (partial.received >= file.size) await this.completeReceive();
  }

  /** Returns a promise only when the piece completed the file (placing it is async). */
  private onData(piece: Buffer): Promise<void> | undefined {
    const r = this.receiving;
    if (!r) {
      // Data for a file we declined, or sent before the hub saw our M_GET: binkd drops it too.
      return undefined;
    }
    if (piece.length === 0) return undefined;
    if (r.partial.received + piece.length > r.file.size) {
      throw new SessionError('protocol', `hub sent more data than the ${r.file.size} bytes it announced for ${r.file.name}`);
    }
    this.stats.bytesReceived += piece.length;
    if (!r.partial.write(piece)) {
      this.pausedForDisk = true;
      this.socket.pause();
      r.partial.onDrain(() => {
        this.pausedForDisk = false;
        if (!this.pausedForQueue) this.socket.resume();
      });
    }
    // Completion is async (rename into place): the pump waits for it before the next frame.
    return r.partial.received === r.file.size ? this.completeReceive() : undefined;
  }

  private async completeReceive(): Promise<void> {
    const r = this.receiving;
    if (!r) return;
    this.receiving = undefined;
    const path = await this.env.complete(r.file, r.partial, this.secure);
    this.stats.filesReceived++;
    this.receivedPaths.push(path);
    this.log('info', 'transfer', `received ${r.file.name} → ${path}`, { file: r.file.name, size: r.file.size, path });
    this.sendCmd(Cmd.M_GOT, formatFileRef(r.file));
    this.checkBatchEnd();
  }

  // ---------------------------------------------------------------------------------------------
  // Acknowledgements for what we send

  private findSent(ref: FileRef): { file: OutgoingFile; current: boolean } | undefined {
    if (this.sending && sameFile(ref, this.wireRef(this.sending.file))) return { file: this.sending.file, current: true };
    for (const f of this.awaitingAck.values()) if (sameFile(ref, this.wireRef(f))) return { file: f, current: false };
    return undefined;
  }

  private wireRef(f: OutgoingFile): FileRef {
    return { name: f.sendName, size: f.size, mtime: f.mtime };
  }

  private async onGot(arg: string): Promise<void> {
    const ref = parseFileRef(arg);
    if (!ref) throw new SessionError('protocol', `hub sent a malformed M_GOT: ${arg}`);
    const hit = this.findSent(ref);
    if (!hit) {
      this.log('warning', 'protocol', `M_GOT for a file we did not send: ${arg}`);
      return;
    }
    if (hit.current) this.interrupt({ kind: 'got' });
    this.awaitingAck.delete(hit.file.id);
    this.done.add(hit.file.id);
    await this.env.confirmed(hit.file);
    this.stats.filesSent++;
    this.log('info', 'transfer', `sent ${hit.file.sendName} (${hit.file.size} bytes), confirmed`, { file: hit.file.sendName, size: hit.file.size });
    this.senderWake?.();
    this.checkBatchEnd();
  }

  private onSkip(arg: string): void {
    const ref = parseFileRef(arg);
    if (!ref) throw new SessionError('protocol', `hub sent a malformed M_SKIP: ${arg}`);
    const hit = this.findSent(ref);
    if (!hit) {
      this.log('warning', 'protocol', `M_SKIP for a file we did not send: ${arg}`);
      return;
    }
    if (hit.current) this.interrupt({ kind: 'skip' });
    this.awaitingAck.delete(hit.file.id);
    // FTS-1026: M_SKIP = "later, please": the file stays queued, not in this session again.
    this.done.add(hit.file.id);
    this.stats.filesSkipped++;
    this.env.skipped?.(hit.file, 'hub answered M_SKIP');
    this.log('warning', 'transfer', `hub skipped ${hit.file.sendName}; kept for the next session`, { file: hit.file.sendName });
    this.senderWake?.();
    this.checkBatchEnd();
  }

  private onGet(arg: string): void {
    const g = parseFileArgs(arg);
    if (!g) throw new SessionError('protocol', `hub sent a malformed M_GET: ${arg}`);
    const hit = this.findSent(g);
    if (!hit) {
      this.log('warning', 'protocol', `M_GET for a file we are not sending: ${arg}`);
      return;
    }
    if (g.offset < 0 || g.offset > hit.file.size) {
      // binkd answers an M_GET past the end with M_ERR and drops the session; so do we.
      this.sendCmd(Cmd.M_ERR, `Invalid M_GET: offset ${g.offset} after end of file ${hit.file.sendName} size ${hit.file.size}`);
      throw new SessionError('protocol', `hub asked for ${hit.file.sendName} from offset ${g.offset}, past its size ${hit.file.size}`);
    }
    if (hit.current) {
      this.interrupt({ kind: 'get', offset: g.offset });
    } else {
      this.awaitingAck.delete(hit.file.id);
      this.resend.push({ file: hit.file, offset: g.offset });
      this.senderWake?.();
    }
  }

  private interrupt(i: NonNullable<SendState['interrupt']>): void {
    const s = this.sending;
    if (!s) return;
    s.interrupt = i;
    s.waitingGet?.();
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  private async runSender(files: OutgoingFile[]): Promise<void> {
    this.senderRunning = true;
    const namesThisBatch = new Set<string>();
    let i = 0;
    try {
      for (;;) {
        if (this.finished) return;
        let next: { file: OutgoingFile; offset: number } | undefined = this.resend.shift();
        while (!next && i < files.length && !this.stopAfterBatch) {
          const f = files[i++]!;
          if (this.done.has(f.id)) continue;
          // FTN-NOTES §8: binkd drops the session when one name is offered twice in a batch.
          if (namesThisBatch.has(f.sendName)) {
            // It stays queued, and the batch that carried its namesake is followed by another.
            this.log('debug', 'transfer', `${f.sendName} (${f.path}) deferred to the next batch: name already offered`);
            continue;
          }
          namesThisBatch.add(f.sendName);
          next = { file: f, offset: -2 };
        }
        if (next) {
          await this.sendFile(next.file, next.offset);
          continue;
        }
        if (this.awaitingAck.size === 0) break;
        // binkd sends M_EOB only after every file it sent is acknowledged; we do the same.
        await new Promise<void>((resolve) => (this.senderWake = resolve));
        this.senderWake = undefined;
      }
      this.localEob = true;
      this.sendCmd(Cmd.M_EOB);
    } catch (err) {
      this.failFrom(err);
    } finally {
      this.senderRunning = false;
      this.sending = undefined;
    }
    this.checkBatchEnd();
  }

  /** offset -2 = first offer (0, or -1 in NR mode); otherwise resend from that offset after M_GET. */
  private async sendFile(file: OutgoingFile, startOffset: number): Promise<void> {
    let fh: SendSource;
    try {
      fh = syncSource(file.path);
    } catch (err) {
      // FTN-NOTES §4: a file that vanished is skipped with a warning, the session goes on.
      this.log('warning', 'transfer', `cannot open ${file.path}: ${errorText(err)}; skipped`, { file: file.path });
      this.done.add(file.id);
      return;
    }
    const state: SendState = { file };
    this.sending = state;
    try {
      let offset: number;
      if (startOffset === -2) {
        const nr = this.opts.nrMode || this.nrSeen;
        this.sendCmd(Cmd.M_FILE, formatFileArgs(this.wireRef(file), nr ? -1 : 0));
        this.log('info', 'transfer', `sending ${file.sendName} (${file.size} bytes)`, { file: file.sendName, size: file.size, path: file.path });
        if (nr) {
          // FTS-1028: wait for the hub's M_GET with the real offset.
          if (!state.interrupt) await new Promise<void>((resolve) => (state.waitingGet = resolve));
          state.waitingGet = undefined;
          const i = state.interrupt as SendState['interrupt'];
          if (!i || i.kind !== 'get') return;
          state.interrupt = undefined;
          offset = i.offset;
          this.sendCmd(Cmd.M_FILE, formatFileArgs(this.wireRef(file), offset));
        } else {
          offset = 0;
        }
      } else {
        offset = startOffset;
        // FTN-NOTES §3: after M_GET a fresh M_FILE with the offset must precede any data.
        this.sendCmd(Cmd.M_FILE, formatFileArgs(this.wireRef(file), offset));
        this.log('info', 'transfer', `sending ${file.sendName} from ${offset}`, { file: file.sendName, offset });
      }
      for (;;) {
        const outcome = await this.streamData(fh, state, offset);
        if (outcome.kind === 'done') {
          this.awaitingAck.set(file.id, file);
          return;
        }
        if (outcome.kind === 'stop') return;
        offset = outcome.offset;
        this.sendCmd(Cmd.M_FILE, formatFileArgs(this.wireRef(file), offset));
        this.log('info', 'transfer', `sending ${file.sendName} from ${offset}`, { file: file.sendName, offset });
      }
    } finally {
      this.sending = undefined;
      await fh.close().catch(() => undefined);
    }
  }

  private async takeBuffer(): Promise<Buffer> {
    const b = this.freeBuffers.pop();
    if (b) return b;
    if (this.buffersMade < WRITE_BUFFERS) {
      this.buffersMade++;
      return Buffer.allocUnsafe(this.framesPerWrite * (this.frameSize + FRAME_HEADER_SIZE));
    }
    await new Promise<void>((resolve) => this.bufferWaiters.push(resolve));
    return this.takeBuffer();
  }

  private buffersMade = 0;

  private get framesPerWrite(): number {
    return Math.max(1, Math.floor(WRITE_BATCH_BYTES / (this.frameSize + FRAME_HEADER_SIZE)));
  }

  /** Per pooled buffer, the payload views of a write full of whole frames: made once, reused. */
  private readonly slotCache = new WeakMap<Buffer, Buffer[]>();

  private fullSlots(buf: Buffer): Buffer[] {
    let slots = this.slotCache.get(buf);
    if (!slots) {
      slots = this.slotsFor(buf, this.framesPerWrite, this.framesPerWrite * this.frameSize);
      this.slotCache.set(buf, slots);
    }
    return slots;
  }

  /** Views into `buf` for `frames` frames carrying `bytes` in all, each after room for its header. */
  private slotsFor(buf: Buffer, frames: number, bytes: number): Buffer[] {
    const slots: Buffer[] = [];
    for (let k = 0, left = bytes; k < frames; k++) {
      const len = Math.min(this.frameSize, left);
      const at = k * (this.frameSize + FRAME_HEADER_SIZE) + FRAME_HEADER_SIZE;
      slots.push(buf.subarray(at, at + len));
      left -= len;
    }
    return slots;
  }

  /** Hold back this tick's writes and hand them to the kernel in one writev when it ends. */
  private corkTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }

  private corked = false;

  private giveBuffer(b: Buffer): void {
    this.freeBuffers.push(b);
    const w = this.bufferWaiters.shift();
    w?.();
  }

  private waitDrain(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /**
   * Stream `file` from `offset` to its end as data frames: many frames per socket write, read
   * with one readv into slots that leave room for each frame header (no copies).
   */
  private async streamData(
    fh: SendSource,
    state: SendState,
    offset: number,
  ): Promise<{ kind: 'done' } | { kind: 'stop' } | { kind: 'reposition'; offset: number }> {
    const size = state.file.size;
    const frame = this.frameSize;
    let pos = offset;
    if (offset >= size) {
      // FTN-NOTES §1: a 0-byte file still needs one empty data frame. So does a resend from the
      // very end after M_GET: the receiver completes a file on a data frame, so it would never M_GOT.
      const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
      writeDataHeader(b, 0, 0);
      this.socket.write(b);
      return { kind: 'done' };
    }
    while (pos < size) {
      if (this.finished) return { kind: 'stop' };
      const i = state.interrupt;
      if (i) {
        state.interrupt = undefined;
        if (i.kind === 'get') return { kind: 'reposition', offset: i.offset };
        return { kind: 'stop' };
      }
      const buf = await this.takeBuffer();
      const frames = Math.min(this.framesPerWrite, Math.ceil((size - pos) / frame));
      const want = Math.min(frames * frame, size - pos);
      const slots = want === frames * frame && frames === this.framesPerWrite ? this.fullSlots(buf) : this.slotsFor(buf, frames, want);
      let got: number;
      try {
        ({ bytesRead: got } = await fh.readv(slots, pos));
      } catch (err) {
        this.giveBuffer(buf);
        throw new SessionError('io', `reading ${state.file.path}: ${errorText(err)}`);
      }
      if (got !== want) {
        this.giveBuffer(buf);
        throw new SessionError('io', `${state.file.path} shrank while being sent (expected ${size} bytes)`);
      }
      let total = 0;
      let left = got;
      for (let k = 0; k < frames; k++) {
        const len = Math.min(frame, left);
        writeDataHeader(buf, k * (frame + FRAME_HEADER_SIZE), len);
        left -= len;
        total = k * (frame + FRAME_HEADER_SIZE) + FRAME_HEADER_SIZE + len;
      }
      if (this.opts.throttle?.active) await this.opts.throttle.take(got);
      if (this.finished) {
        this.giveBuffer(buf);
        return { kind: 'stop' };
      }
      // A re-position may have arrived while we read; the bytes read are then stale.
      if (state.interrupt) {
        this.giveBuffer(buf);
        continue;
      }
      const ok = this.socket.write(buf.subarray(0, total), () => this.giveBuffer(buf));
      pos += got;
      state.position = pos;
      this.stats.bytesSent += got;
      this.armIdle();
      if (!ok) await this.waitDrain();
    }
    return { kind: 'done' };
  }

  // ---------------------------------------------------------------------------------------------
  // Timers and the end

  private armIdle(): void {
    const t = this.opts.idleTimeout ?? DEFAULT_IDLE_TIMEOUT;
    if (t <= 0 || this.finished) return;
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => this.fail('timeout', `no data from hub for ${Math.round(t / 1000)} s (idle_timeout) during ${this.stage}`), t);
  }

  /** Set once the socket ended, closed or failed: the reason to report if the end was not clean. */
  private closeSeen: string | undefined;

  private onRemoteClose(reason?: string): void {
    if (this.finished) return;
    if (this.closeSeen === undefined || reason !== undefined) {
      this.closeSeen = reason ?? this.closeSeen ?? '';
    }
    // Let the pump finish what already arrived (e.g. a final M_ERR) before judging; it calls
    // back here when it is done.
    if (this.pumping || this.eventHead < this.events.length) return;
    // A binkp/1.0 hub, or a 1.1 hub that counted the batch as empty, closes right after the
    // final M_EOB exchange: that is a clean end when nothing is left in flight.
    if (
      this.stage === 'transfer' &&
      this.localEob &&
      this.remoteEob &&
      !this.awaitingAck.size &&
      !this.receiving &&
      !this.sending &&
      !this.getsPending.size
    ) {
      this.succeed();
      return;
    }
    const where = this.stage === 'transfer' ? 'during transfer' : `during ${this.stage}`;
    this.fail('protocol', this.closeSeen ? `${this.closeSeen} ${where}` : `hub closed the connection ${where}`);
  }

  private failFrom(err: unknown): void {
    if (err instanceof SessionError) this.failWith(err);
    else this.fail('io', errorText(err));
  }

  private fail(kind: FailureKind, message: string): void {
    this.failWith(new SessionError(kind, message));
  }

  private failWith(err: SessionError): void {
    if (this.finished) return;
    this.end(false, err);
  }

  private succeed(): void {
    if (this.finished) return;
    this.end(true);
  }

  private end(ok: boolean, error?: SessionError): void {
    this.finished = true;
    this.stage = 'done';
    clearTimeout(this.idleTimer);
    clearTimeout(this.sessionTimer);
    this.senderWake?.();
    this.sending?.waitingGet?.();
    for (const w of this.bufferWaiters.splice(0)) w();
    const r = this.receiving;
    this.receiving = undefined;
    const closePartial = r ? r.partial.close().catch(() => undefined) : Promise.resolve();
    if (ok) this.socket.end();
    else this.socket.destroy();
    void closePartial.then(() =>
      this.finish({
        ok,
        ...(error ? { error } : {}),
        stats: { ...this.stats },
        startedAt: this.startedAt,
        durationMs: this.now() - this.startedAt,
        secure: this.secure,
        cram: this.usedCram,
        nr: this.opts.nrMode || this.nrSeen,
        binkp11: this.remote11,
        batches: this.batches,
        remoteAkas: this.remoteAkas.map((a) => formatAddress(a)),
        remoteInfo: { ...this.remoteInfo },
        servedAkas: this.servedAkas,
        receivedPaths: [...this.receivedPaths],
      }),
    );
  }
}
