/**
 * The calling side of a binkp/1.1 session [FTS-1026, FTS-1027, FTS-1028, FSP-1024 as summarised in
 * FTN-NOTES §2-3], as a state machine with no I/O of its own.
 *
 * Inputs are method calls: start(link), command()/data() for decoded frames, drained(),
 * remoteClosed(), timerExpired(), abort()/drain(), and the results of the SessionEnv promises.
 * Outputs go through the SessionLink (frames to write, input to pause, timers to arm, the end)
 * and the SessionEnv (files to open, read, place). src/binkp/connect.ts wires it to a Duplex.
 *
 * Flow: greeting → (hub M_ADR) → M_PWD → (M_OK) → batches of transfer → close. Frames are handled
 * strictly in order: while one waits for the env (an offer, a claim), later frames queue. The
 * sender is a second state machine that streams file data whenever the link can take it.
 */
import { encodeCommand, writeDataHeader, FRAME_HEADER_SIZE, MAX_FRAME_PAYLOAD } from './frame.js';
import {
  Cmd,
  argText,
  commandName,
  cramChallenge,
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
import { shownText } from './untrusted.js';
import { formatAddress, parseAddressList, sameAddress, type FtnAddress } from '../ftn/address.js';
import { SessionError, errorText, type FailureKind } from '../errors.js';

/** binkd waits this long for input before giving up; we take the same idea for idle. */
const DEFAULT_IDLE_TIMEOUT = 300_000;
/** How many bytes of file data go to the link in one write (many frames coalesced). */
const WRITE_BATCH_BYTES = 256 * 1024;
/** Write buffers in flight per session: enough to keep the socket busy while the next is read. */
const WRITE_BUFFERS = 3;
/** A CRAM offer inside an M_NUL, for masking in logs. */
const CRAM_IN_TEXT = /(CRAM-[A-Za-z0-9/]+-)[0-9a-fA-F]+/g;
/** Frames queued behind a pending env call before input is paused. */
const MAX_QUEUED_INPUTS = 512;
/** Data pieces gathered for one write to the partial at most (IOV_MAX is 1024). */
const MAX_GATHERED_PIECES = 512;
/**
 * M_NUL keys kept for the result (FTS-1026 §6.1 and binkd's TRF/PHN/FREQ); anything else a hub
 * says is logged at debug and dropped, so a chattering hub cannot grow our memory.
 */
const KEPT_NUL_KEYS = new Set(['SYS', 'ZYZ', 'LOC', 'NDL', 'TIME', 'VER', 'TRF', 'PHN', 'FREQ']);
/** Characters kept of one M_NUL value. */
const MAX_NUL_VALUE_CHARS = 256;
/** Distinct OPT tokens kept (binkd sends fewer than ten). */
const MAX_REMOTE_OPTIONS = 32;
/** Longest OPT token kept: `CRAM-MD5-` and a 64-byte challenge in hex fit. */
const MAX_OPTION_CHARS = 160;
/** How long our last frames (an M_ERR) may take to leave before the connection is dropped. */
export const ABORT_LINGER_MS = 2_000;
/** The same after a timeout: the process promises to be gone within 1 s of the timeout line. */
export const TIMEOUT_LINGER_MS = 500;
/** Longest M_ERR text we send (a message may quote what the hub sent). */
const MAX_ERR_TEXT_CHARS = 300;
/** `offset` of a first offer: 0, or -1 in NR mode. */
const FIRST_OFFER = -2;

/** What the sender reads a file's data from (env.openSource). */
export interface SendSource {
  /**
   * Fill `buffers` from `position`, returning the bytes read. A number returned at once is the
   * fast path (a synchronous readv from the page cache, as binkd reads); a promise also works.
   */
  readv(buffers: Buffer[], position: number): number | Promise<number>;
  close(): void | Promise<void>;
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
   * Append `chunks` (the data of one socket read, in order) before returning: synchronously, so
   * no more input is read while it runs, which is the backpressure. Throws IoError when the write
   * fails (disk full, ...).
   */
  write(chunks: readonly Buffer[]): void;
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
  /** Open a file to send; throws (or rejects) when it vanished. */
  openSource(file: OutgoingFile): SendSource | Promise<SendSource>;
  /** M_GOT arrived for a file we sent: apply the flow-file directive. */
  confirmed(file: OutgoingFile): Promise<void>;
  /** M_SKIP arrived for a file we sent (it stays queued). */
  skipped?(file: OutgoingFile, reason: string): void;
  offer(file: IncomingFile, secure: boolean): Promise<Offer>;
  openPartial(file: IncomingFile, offset: number): Promise<PartialFile>;
  /**
   * All bytes arrived: place the file and return its final path. The session sends M_GOT only
   * when this resolves, and handles the following frames meanwhile, so several completions may
   * be in flight at once (and may share one fsync).
   */
  complete(file: IncomingFile, partial: PartialFile, secure: boolean): Promise<string>;
}

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';
export type LogCategory = 'protocol' | 'transfer' | 'auth' | 'general';
export type SessionLogger = (level: LogLevel, category: LogCategory, message: string, fields?: Record<string, unknown>) => void;

/** The timers a session asks its link to run. */
export type SessionTimer = 'idle' | 'session';

/** Options both sides settled on at M_OK. */
export interface Established {
  secure: boolean;
  /** The hub's OPT tokens. */
  remoteOptions: readonly string[];
}

/** The session's outputs: what connect.ts (or a test) does on its behalf. */
export interface SessionLink {
  /**
   * Put whole frames on the wire, in order. `release` runs once `bytes` may be reused. false: the
   * wire is full; the sender waits for `drained()` before writing more file data.
   */
  write(bytes: Buffer, release?: () => void): boolean;
  /** Stop delivering frames (too many wait behind an env call), and start again. */
  pauseInput(): void;
  resumeInput(): void;
  /** Arm (or re-arm) a timer; its expiry comes back as `timerExpired()`. */
  setTimer(timer: SessionTimer, ms: number): void;
  clearTimer(timer: SessionTimer): void;
  /**
   * M_OK arrived and was handled before the next frame: every byte after it belongs to the
   * transfer phase. Stream transforms negotiated in the login (binkd's CRYPT) switch on here.
   */
  established?(info: Established): void;
  /**
   * The session is over. Deliver what was written (our M_ERR, or the last M_GOT) and close;
   * `lingerMs` bounds how long that may take before the connection is dropped.
   */
  close(ok: boolean, lingerMs: number): void;
}

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
  /** ms without progress (see `progressed`) that end the session; 0 = never. */
  idleTimeout?: number;
  sessionTimeout?: number;
  env: SessionEnv;
  log?: SessionLogger;
  /** Whether `log` wants this level; debug lines are not even built when it does not. */
  logEnabled?: (level: LogLevel) => boolean;
  /** The clock, ms: for idle accounting and the result's times. */
  now: () => number;
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
  /** The hub's M_NUL lines of known keys, escaped and cut (see KEPT_NUL_KEYS). */
  remoteInfo: Record<string, string>;
  /** AKAs we served (claimed `.bsy`). */
  servedAkas: FtnAddress[];
  receivedPaths: string[];
}

type Stage = 'greeting' | 'auth' | 'transfer' | 'done';

/**
 * The sender, per batch:
 * - `off`: no batch, or the session is over;
 * - `listing`: env.queue() runs;
 * - `between`: no file open: send the next one, or M_EOB once every file is acknowledged;
 * - `opening`: env.openSource() runs;
 * - `awaitingGet`: NR mode, M_FILE went out with -1, data waits for the hub's M_GET (FTS-1028);
 * - `streaming`: data frames go out whenever the link and a write buffer allow;
 * - `eobSent`: our M_EOB is out; the batch waits for the hub.
 */
type SenderState =
  | { name: 'off' }
  | { name: 'listing' }
  | { name: 'between' }
  | { name: 'opening'; file: OutgoingFile }
  | { name: 'awaitingGet'; file: OutgoingFile; source: SendSource }
  | Streaming
  | { name: 'eobSent' };

interface Streaming {
  name: 'streaming';
  file: OutgoingFile;
  source: SendSource;
  /** Next file offset to read. */
  pos: number;
  /** An asynchronous read is in flight. */
  reading: boolean;
  /** Bumped on every re-position (M_GET), so a read in flight for the old position is dropped. */
  generation: number;
}

/** The receiver: `ready` for an M_FILE, or `receiving` one into a partial. */
type ReceiverState = { name: 'ready' } | { name: 'receiving'; file: IncomingFile; partial: PartialFile };

interface Batch {
  number: number;
  /** Command frames both ways (binkd counts them to tell an empty batch). */
  msgs: number;
  remoteEob: boolean;
  files: OutgoingFile[];
  /** Index of the next first offer in `files`. */
  next: number;
  /** Names offered in this batch (FTN-NOTES §8: binkd drops a session offered one name twice). */
  names: Set<string>;
}

type Input = { kind: 'cmd'; id: number; arg: Buffer } | { kind: 'data'; piece: Buffer };

/** Everything that decides whether a batch is over. */
export interface BatchView {
  /** Our M_EOB is out. */
  localEob: boolean;
  remoteEob: boolean;
  receiving: boolean;
  /** Files we sent that wait for M_GOT / M_SKIP / M_GET. */
  unacknowledged: number;
  /** M_GETs we sent that wait for the hub's fresh M_FILE. */
  getsPending: number;
  /** Received files being placed; their M_GOT is still to go. */
  completing: number;
  /** Frames not yet handled (queued behind an env call, or being handled). */
  inputPending: boolean;
}

/**
 * FSP-1024 (FTN-NOTES §3): a batch is settled when both M_EOBs passed and nothing is in flight
 * either way. The one rule for "start the next batch", "end the session" and "was the hub's
 * close clean".
 */
export function batchSettled(v: BatchView): boolean {
  return (
    v.localEob && v.remoteEob && !v.receiving && v.unacknowledged === 0 && v.getsPending === 0 && v.completing === 0 && !v.inputPending
  );
}

function fileKey(f: FileRef): string {
  return `${f.name}\u0000${f.size}\u0000${f.mtime}`;
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/** Close a source, ignoring errors: nothing more is read from it. */
function closeQuietly(source: SendSource): void {
  try {
    const r = source.close();
    if (isPromise(r)) r.catch(() => undefined);
  } catch {
    // already closed or gone: nothing to keep
  }
}

/** Pooled write buffers, each with room for a whole write of frames. */
class BufferPool {
  private readonly free: Buffer[] = [];
  private made = 0;
  /** Per buffer, the payload views of a write full of whole frames: made once, reused. */
  private readonly slotCache = new WeakMap<Buffer, Buffer[]>();
  readonly framesPerWrite: number;

  constructor(private readonly frameSize: number) {
    this.framesPerWrite = Math.max(1, Math.floor(WRITE_BATCH_BYTES / (frameSize + FRAME_HEADER_SIZE)));
  }

  take(): Buffer | undefined {
    const b = this.free.pop();
    if (b) return b;
    if (this.made >= WRITE_BUFFERS) return undefined;
    this.made++;
    return Buffer.allocUnsafe(this.framesPerWrite * (this.frameSize + FRAME_HEADER_SIZE));
  }

  give(b: Buffer): void {
    this.free.push(b);
  }

  /** Views into `buf` for `frames` frames carrying `bytes` in all, each after room for its header. */
  slots(buf: Buffer, frames: number, bytes: number): Buffer[] {
    const full = frames === this.framesPerWrite && bytes === frames * this.frameSize;
    if (full) {
      const cached = this.slotCache.get(buf);
      if (cached) return cached;
    }
    const slots: Buffer[] = [];
    for (let k = 0, left = bytes; k < frames; k++) {
      const len = Math.min(this.frameSize, left);
      const at = k * (this.frameSize + FRAME_HEADER_SIZE) + FRAME_HEADER_SIZE;
      slots.push(buf.subarray(at, at + len));
      left -= len;
    }
    if (full) this.slotCache.set(buf, slots);
    return slots;
  }
}

/**
 * One call. Construct, then `start(link)`; `result` resolves when it is over (never rejects for
 * protocol reasons).
 */
export class CallerSession {
  private readonly opts: SessionOptions;
  private readonly env: SessionEnv;
  private readonly logFn: SessionLogger;
  private readonly now: () => number;
  private readonly frameSize: number;
  private readonly idleTimeout: number;
  private readonly pool: BufferPool;

  private link!: SessionLink;
  private stage: Stage = 'greeting';
  private ended = false;
  private settle!: (r: SessionResult) => void;
  readonly result: Promise<SessionResult>;
  private readonly startedAt: number;

  // remote facts
  private readonly remoteOptions = new Set<string>();
  private challenge: string | undefined;
  private remoteAkas: FtnAddress[] = [];
  private readonly remoteInfo: Record<string, string> = {};
  private remote11 = false;
  private servedAkas: FtnAddress[] = [];
  private passwordSent = false;
  private usedCram = false;
  private secure = false;
  private nrSeen = false;
  /** We told the hub why we end (M_ERR, or M_BSY): no second M_ERR. */
  private fatalSent = false;

  // transfer
  private sender: SenderState = { name: 'off' };
  private receiver: ReceiverState = { name: 'ready' };
  private batch: Batch = { number: 0, msgs: 0, remoteEob: false, files: [], next: 0, names: new Set() };
  private readonly awaitingAck = new Map<string, OutgoingFile>();
  private readonly resend: { file: OutgoingFile; offset: number }[] = [];
  private readonly done = new Set<string>();
  /** M_GETs we sent that await the hub's fresh M_FILE (binkd's GET_FILE_balance). */
  private readonly getsPending = new Map<string, number>();
  /** Received files being placed by env.complete(). */
  private readonly completing = new Set<Promise<void>>();
  /**
   * Data of the file being received, gathered over one socket read and written with one call at
   * its end (or before the next command): one syscall per read instead of one per 4 KiB frame.
   */
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private stopAfterBatch = false;
  /** The link refused more file data until drained(). */
  private blocked = false;
  private senderStepping = false;
  private senderAgain = false;

  private readonly stats: TransferStats = { filesSent: 0, bytesSent: 0, filesReceived: 0, bytesReceived: 0, filesSkipped: 0 };
  private readonly receivedPaths: string[] = [];

  // input
  private readonly inputs: (Input | undefined)[] = [];
  private inputHead = 0;
  /** A frame's handling waits for the env. */
  private busy = false;
  private inputPaused = false;
  /** Set once the link reported the connection closed: the reason, '' for a plain close. */
  private closeSeen: string | undefined;

  /** Last progress (see `progressed`), for idle_timeout. */
  private lastProgress: number;

  constructor(opts: SessionOptions) {
    this.opts = opts;
    this.env = opts.env;
    this.logFn = opts.log ?? (() => undefined);
    this.now = opts.now;
    this.frameSize = Math.min(MAX_FRAME_PAYLOAD, Math.max(1, opts.bufferSize ?? MAX_FRAME_PAYLOAD));
    this.idleTimeout = opts.idleTimeout ?? DEFAULT_IDLE_TIMEOUT;
    this.pool = new BufferPool(this.frameSize);
    this.startedAt = this.now();
    this.lastProgress = this.startedAt;
    this.result = new Promise<SessionResult>((resolve) => (this.settle = resolve));
  }

  /** Live counters for progress and SIGUSR1 snapshots (names escaped: they came from the wire). */
  get progress(): Readonly<TransferStats> & {
    sendingName?: string;
    sendingOffset?: number;
    sendingSize?: number;
    receivingName?: string;
    receivingOffset?: number;
    receivingSize?: number;
  } {
    const s = this.sender;
    const sending = s.name === 'streaming' || s.name === 'awaitingGet' || s.name === 'opening' ? s.file : undefined;
    const r = this.receiver.name === 'receiving' ? this.receiver : undefined;
    return {
      ...this.stats,
      sendingName: sending && shownText(sending.sendName),
      sendingOffset: s.name === 'streaming' ? s.pos : undefined,
      sendingSize: sending?.size,
      receivingName: r && shownText(r.file.name),
      receivingOffset: r?.partial.received,
      receivingSize: r?.file.size,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  /** Begin: arm the timers and send the greeting. */
  start(link: SessionLink): void {
    this.link = link;
    if (this.idleTimeout > 0) link.setTimer('idle', this.idleTimeout);
    const sessionTimeout = this.opts.sessionTimeout ?? 0;
    if (sessionTimeout > 0) link.setTimer('session', sessionTimeout);
    this.sendGreeting();
  }

  /** A command frame from the hub. */
  command(id: number, arg: Buffer): void {
    if (this.ended) return;
    if (this.busy || this.inputHead < this.inputs.length) this.enqueue({ kind: 'cmd', id, arg });
    else this.handle({ kind: 'cmd', id, arg });
  }

  /**
   * (Part of) a data frame's payload from the hub. The hot path of receiving: with nothing
   * queued ahead of it, the piece goes to the partial file by the end of this read (`endOfRead`).
   * `piece` is valid only until then: the link may reuse its buffer for the next read.
   */
  data(piece: Buffer): void {
    if (this.ended) return;
    if (this.busy || this.inputHead < this.inputs.length) {
      // Copied: the link may reuse its read buffer once this read is handled.
      this.enqueue({ kind: 'data', piece: Buffer.from(piece) });
      return;
    }
    try {
      this.onData(piece);
    } catch (err) {
      this.failFrom(err);
    }
  }

  /** The end of one read from the connection: what was gathered goes to the file now. */
  endOfRead(): void {
    if (this.gatheredBytes === 0 || this.ended) return;
    try {
      this.flushGathered();
    } catch (err) {
      this.failFrom(err);
    }
  }

  /** The hub's bytes did not decode as frames. */
  badFrame(reason: string): void {
    this.fail('protocol', `bad frame from hub: ${reason}`);
  }

  /** The link takes more data again. */
  drained(): void {
    this.blocked = false;
    this.stepSender();
  }

  /** The connection ended, closed or failed (`reason`). Frames already delivered are handled first. */
  remoteClosed(reason?: string): void {
    if (this.ended) return;
    if (this.closeSeen === undefined || reason !== undefined) this.closeSeen = reason ?? this.closeSeen ?? '';
    if (!this.busy && this.inputHead >= this.inputs.length) this.judgeClose();
  }

  timerExpired(timer: SessionTimer): void {
    if (this.ended) return;
    if (timer === 'session') {
      this.fail('timeout', `session took longer than session_timeout (${(this.opts.sessionTimeout ?? 0) / 1000} s)`);
      return;
    }
    const idle = this.now() - this.lastProgress;
    if (idle < this.idleTimeout) {
      this.link.setTimer('idle', this.idleTimeout - idle);
      return;
    }
    const what = this.stage === 'transfer' ? 'no transfer progress' : 'no data from hub';
    this.fail('timeout', `${what} for ${this.idleTimeout / 1000} s (idle_timeout) during ${this.stage}`);
  }

  /** End the session now (signal, run timeout): the hub gets M_ERR `reason`. Partials are kept. */
  abort(reason: string): void {
    this.fail('aborted', reason);
  }

  /**
   * Finish gracefully: offer no new file, let the file in flight finish, skip new incoming files,
   * and end after the current batch.
   */
  drain(): void {
    this.stopAfterBatch = true;
    this.stepSender();
  }

  // ---------------------------------------------------------------------------------------------
  // Outgoing frames and logs

  private log(level: LogLevel, category: LogCategory, message: string, fields?: Record<string, unknown>): void {
    this.logFn(level, category, shownText(message, 1000), fields);
  }

  private get debugging(): boolean {
    return this.opts.logEnabled?.('debug') ?? true;
  }

  private sendCmd(id: number, text: string | Buffer = ''): void {
    if (this.ended) return;
    if (this.stage === 'transfer') this.batch.msgs++;
    if (id === Cmd.M_ERR || id === Cmd.M_BSY) this.fatalSent = true;
    if (this.debugging) {
      const shown = id === Cmd.M_PWD ? '********' : typeof text === 'string' ? text : '<binary>';
      this.log('debug', 'protocol', `send ${commandName(id)} ${shown}`.trimEnd());
    }
    this.link.write(encodeCommand(id, text));
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

  /**
   * Activity that keeps idle_timeout away. Before M_OK every frame counts; after it only what
   * moves files: data either way, and M_FILE/M_GOT/M_GET/M_SKIP/M_EOB. A hub that only chatters
   * M_NUL makes no progress.
   */
  private progressed(): void {
    this.lastProgress = this.now();
  }

  // ---------------------------------------------------------------------------------------------
  // Incoming frames: strictly in order

  private enqueue(ev: Input): void {
    this.inputs.push(ev);
    if (!this.inputPaused && this.inputs.length - this.inputHead > MAX_QUEUED_INPUTS) {
      this.inputPaused = true;
      this.link.pauseInput();
    }
  }

  /** Handle one input; an env call it waits for holds back the ones behind it. */
  private handle(ev: Input): void {
    let pending: void | Promise<void>;
    try {
      pending = ev.kind === 'cmd' ? this.onCommand(ev.id, ev.arg) : this.onData(ev.piece);
    } catch (err) {
      this.failFrom(err);
      return;
    }
    if (!pending) {
      if (ev.kind === 'cmd') this.checkBatchEnd();
      return;
    }
    this.busy = true;
    pending.then(
      () => {
        this.busy = false;
        this.handleQueued();
      },
      (err: unknown) => {
        this.busy = false;
        this.failFrom(err);
      },
    );
  }

  private handleQueued(): void {
    while (!this.ended && !this.busy && this.inputHead < this.inputs.length) {
      const ev = this.inputs[this.inputHead]!;
      this.inputs[this.inputHead++] = undefined;
      if (this.inputHead > 1024 && this.inputHead * 2 > this.inputs.length) {
        this.inputs.splice(0, this.inputHead);
        this.inputHead = 0;
      }
      this.handle(ev);
      if (this.inputPaused && this.inputs.length - this.inputHead < MAX_QUEUED_INPUTS / 2) {
        this.inputPaused = false;
        this.link.resumeInput();
      }
    }
    if (this.ended || this.busy) return;
    try {
      this.flushGathered();
    } catch (err) {
      this.failFrom(err);
      return;
    }
    if (this.closeSeen !== undefined) this.judgeClose();
    else this.checkBatchEnd();
  }

  private onCommand(id: number, argBuf: Buffer): void | Promise<void> {
    // Data before this command is in the file before the command is acted on.
    this.flushGathered();
    const arg = argText(argBuf);
    if (this.stage === 'transfer') this.batch.msgs++;
    else this.progressed();
    // FTS-1027 challenges are as secret as digests: never in a log, at any level.
    if (this.debugging) this.log('debug', 'protocol', `recv ${commandName(id)} ${arg.replace(CRAM_IN_TEXT, '$1<challenge>')}`.trimEnd());
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
        this.progressed();
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
    } else if (KEPT_NUL_KEYS.has(key)) {
      this.remoteInfo[key] = shownText(value, MAX_NUL_VALUE_CHARS);
      if (key === 'VER') {
        const m = /binkp\/(\d+)\.(\d+)/i.exec(value);
        this.remote11 = !!m && Number(m[1]) * 100 + Number(m[2]) >= 101;
      }
    }
  }

  private mergeOptions(opts: string[]): void {
    for (const o of opts) {
      if (this.remoteOptions.size >= MAX_REMOTE_OPTIONS) break;
      if (o.length <= MAX_OPTION_CHARS) this.remoteOptions.add(o);
    }
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
    if (bad.length) this.log('warning', 'protocol', `hub M_ADR has tokens that are not addresses: ${shownText(bad.join(' '))}`);
    this.remoteAkas = addresses;
    const hub = this.opts.hubAddress;
    if (!addresses.some((a) => sameAddress(a, hub))) {
      // FTN-NOTES §2: abort before any password leaves (binkd: "Remote has no needed AKA").
      const shown = addresses.map((a) => formatAddress(a)).join(' ') || '(none)';
      this.sendCmd(Cmd.M_ERR, `No AKA ${formatAddress(hub)} in your M_ADR`);
      throw new SessionError('protocol', `hub presented ${shown}, not ${formatAddress(hub)}; no password sent`);
    }
    this.servedAkas = await this.env.claimAkas(addresses);
    if (this.ended) return;
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

  private onOk(arg: string): void | Promise<void> {
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
    this.progressed();
    // Synchronously, before the next frame is decoded: the link may switch stream transforms here.
    this.link.established?.({ secure: this.secure, remoteOptions: [...this.remoteOptions] });
    return this.startBatch();
  }

  private onRemoteError(kind: 'error' | 'busy', raw: string): never {
    const text = shownText(raw);
    if (kind === 'busy') throw new SessionError('busy', `hub is busy: ${text}`, { remote: text });
    throw new SessionError(remoteErrorKind(this.stage, text), `hub error: ${text}`, { remote: text });
  }

  // ---------------------------------------------------------------------------------------------
  // Batches

  private async startBatch(): Promise<void> {
    this.batch = { number: this.batch.number + 1, msgs: 0, remoteEob: false, files: [], next: 0, names: new Set() };
    this.receiver = { name: 'ready' };
    this.sender = { name: 'listing' };
    const files = this.stopAfterBatch ? [] : await this.env.queue(this.servedAkas, this.done);
    if (this.ended) return;
    this.batch.files = files;
    this.sender = { name: 'between' };
    this.stepSender();
  }

  private batchView(): BatchView {
    return {
      localEob: this.sender.name === 'eobSent',
      remoteEob: this.batch.remoteEob,
      receiving: this.receiver.name === 'receiving',
      unacknowledged: this.awaitingAck.size,
      getsPending: this.getsPending.size,
      completing: this.completing.size,
      inputPending: this.busy || this.inputHead < this.inputs.length,
    };
  }

  /** Both M_EOBs passed and nothing in flight: the next batch, or the end. */
  private checkBatchEnd(): void {
    // The quick test first: this runs after every command.
    if (!this.batch.remoteEob || this.sender.name !== 'eobSent') return;
    if (this.ended || this.stage !== 'transfer' || !batchSettled(this.batchView())) return;
    // binkd closes after a batch that carried only the two M_EOBs, and after any batch with a
    // binkp/1.0 peer. It counts every command frame both ways; so do we.
    if (!this.remote11 || this.batch.msgs <= 2 || this.stopAfterBatch) {
      this.end(true);
      return;
    }
    this.startBatch().catch((err: unknown) => this.failFrom(err));
  }

  /** The connection is gone and every frame that came before is handled: clean, or not? */
  private judgeClose(): void {
    if (this.ended) return;
    // A binkp/1.0 hub, or a 1.1 hub that counted the batch as empty, closes right after the
    // final M_EOB exchange: that is a clean end when nothing is left in flight.
    if (this.stage === 'transfer' && batchSettled(this.batchView())) {
      this.end(true);
      return;
    }
    const where = `during ${this.stage}`;
    const why = this.closeSeen ? `${this.closeSeen} ${where}` : `hub closed the connection ${where}`;
    // Nobody is left to tell: no M_ERR.
    this.end(false, new SessionError('protocol', why));
  }

  private onEob(): void | Promise<void> {
    this.batch.remoteEob = true;
    const r = this.receiver;
    if (r.name === 'receiving') {
      // binkd keeps what arrived of an interrupted file as a partial for a later resume.
      this.receiver = { name: 'ready' };
      this.log('warning', 'transfer', `hub ended its batch in the middle of ${r.file.name} (${r.partial.received} of ${r.file.size} bytes); partial kept`);
      return r.partial.close();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  private async onFile(arg: string): Promise<void> {
    const f = parseFileArgs(arg);
    if (!f) throw new SessionError('protocol', `hub sent a malformed M_FILE: ${arg}`);
    const r = this.receiver;
    if (r.name === 'receiving') {
      this.receiver = { name: 'ready' };
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
    if (this.ended) return;
    switch (offer.action) {
      case 'have':
        // FTN-NOTES §6: same name, size and time already here: acknowledge without receiving.
        this.log('info', 'transfer', `already have ${file.name} (${offer.path}); acknowledged`, { file: shownText(file.name), size: file.size });
        this.sendCmd(Cmd.M_GOT, formatFileRef(file));
        return;
      case 'skip':
        this.stats.filesSkipped++;
        this.log('warning', 'transfer', `skipping ${file.name}: ${offer.reason}`, { file: shownText(file.name), size: file.size });
        this.sendCmd(Cmd.M_SKIP, formatFileRef(file));
        return;
      case 'receive':
        return this.acceptOffer(file, f, offer.offset);
    }
  }

  private acceptOffer(file: IncomingFile, f: FileArgs, offset: number): void | Promise<void> {
    if (f.offset === -1 || f.offset !== offset) {
      // FTS-1028: -1 asks for our offset. Otherwise we resume a partial (or restart) at `offset`;
      // binkd discards data after an M_GET until its fresh M_FILE, and so do we.
      if (f.offset === -1) this.nrSeen = true;
      if (offset > 0) this.log('info', 'transfer', `resuming ${file.name} from ${offset}`, { file: shownText(file.name), offset });
      this.getsPending.set(fileKey(file), offset);
      this.sendCmd(Cmd.M_GET, `${formatFileRef(file)} ${offset}`);
      return;
    }
    return this.beginReceive(file, offset);
  }

  private async beginReceive(file: IncomingFile, offset: number): Promise<void> {
    if (offset > file.size) throw new SessionError('protocol', `hub sent ${file.name} from offset ${offset} past its size ${file.size}`);
    const partial = await this.env.openPartial(file, offset);
    if (this.ended) {
      await partial.close();
      return;
    }
    this.log('info', 'transfer', `receiving ${file.name} (${file.size} bytes${offset ? `, from ${offset}` : ''})`, {
      file: shownText(file.name),
      size: file.size,
      offset,
    });
    this.receiver = { name: 'receiving', file, partial };
    if (partial.received >= file.size) this.completeReceive();
  }

  private onData(piece: Buffer): void {
    const r = this.receiver;
    // Data for a file we declined, or sent before the hub saw our M_GET: binkd drops it too.
    if (r.name !== 'receiving' || piece.length === 0) return;
    const have = r.partial.received + this.gatheredBytes + piece.length;
    if (have > r.file.size) {
      throw new SessionError('protocol', `hub sent more data than the ${r.file.size} bytes it announced for ${r.file.name}`);
    }
    this.stats.bytesReceived += piece.length;
    this.gathered.push(piece);
    this.gatheredBytes += piece.length;
    if (have === r.file.size) {
      this.flushGathered();
      if (this.receiver === r) this.completeReceive();
    } else if (this.gathered.length >= MAX_GATHERED_PIECES) {
      this.flushGathered();
    }
  }

  /** Write what was gathered to the partial. */
  private flushGathered(): void {
    if (this.gatheredBytes === 0) return;
    const chunks = this.gathered;
    this.gathered = [];
    this.gatheredBytes = 0;
    const r = this.receiver;
    if (r.name !== 'receiving') return;
    this.progressed();
    r.partial.write(chunks);
  }

  /** The last byte is in: place the file; its M_GOT goes when that is done. */
  private completeReceive(): void {
    const r = this.receiver;
    if (r.name !== 'receiving') return;
    this.receiver = { name: 'ready' };
    const { file, partial } = r;
    const placed = this.env.complete(file, partial, this.secure).then(
      (path) => {
        this.completing.delete(placed);
        if (this.ended) return;
        this.stats.filesReceived++;
        this.receivedPaths.push(path);
        this.log('info', 'transfer', `received ${file.name} → ${path}`, { file: shownText(file.name), size: file.size, path });
        this.sendCmd(Cmd.M_GOT, formatFileRef(file));
        this.checkBatchEnd();
      },
      (err: unknown) => {
        this.completing.delete(placed);
        this.failFrom(err);
      },
    );
    this.completing.add(placed);
  }

  // ---------------------------------------------------------------------------------------------
  // Acknowledgements for what we send

  /** The file `ref` names: the one being offered or streamed, or one awaiting its M_GOT. */
  private findSent(ref: FileRef): { file: OutgoingFile; current: boolean } | undefined {
    const s = this.sender;
    if ((s.name === 'streaming' || s.name === 'awaitingGet') && sameFile(ref, wireRef(s.file))) return { file: s.file, current: true };
    for (const f of this.awaitingAck.values()) if (sameFile(ref, wireRef(f))) return { file: f, current: false };
    return undefined;
  }

  /** Stop sending the current file (M_GOT or M_SKIP for it). */
  private dropCurrent(): void {
    const s = this.sender;
    if (s.name === 'streaming' || s.name === 'awaitingGet') closeQuietly(s.source);
    this.sender = { name: 'between' };
  }

  private async onGot(arg: string): Promise<void> {
    const ref = parseFileRef(arg);
    if (!ref) throw new SessionError('protocol', `hub sent a malformed M_GOT: ${arg}`);
    const hit = this.findSent(ref);
    if (!hit) {
      this.log('warning', 'protocol', `M_GOT for a file we did not send: ${arg}`);
      return;
    }
    if (hit.current) this.dropCurrent();
    this.awaitingAck.delete(hit.file.id);
    this.done.add(hit.file.id);
    await this.env.confirmed(hit.file);
    this.stats.filesSent++;
    this.log('info', 'transfer', `sent ${hit.file.sendName} (${hit.file.size} bytes), confirmed`, { file: hit.file.sendName, size: hit.file.size });
    this.stepSender();
  }

  private onSkip(arg: string): void {
    const ref = parseFileRef(arg);
    if (!ref) throw new SessionError('protocol', `hub sent a malformed M_SKIP: ${arg}`);
    const hit = this.findSent(ref);
    if (!hit) {
      this.log('warning', 'protocol', `M_SKIP for a file we did not send: ${arg}`);
      return;
    }
    if (hit.current) this.dropCurrent();
    this.awaitingAck.delete(hit.file.id);
    // FTS-1026: M_SKIP = "later, please": the file stays queued, not in this session again.
    this.done.add(hit.file.id);
    this.stats.filesSkipped++;
    this.env.skipped?.(hit.file, 'hub answered M_SKIP');
    this.log('warning', 'transfer', `hub skipped ${hit.file.sendName}; kept for the next session`, { file: hit.file.sendName });
    this.stepSender();
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
    const s = this.sender;
    if (hit.current && (s.name === 'streaming' || s.name === 'awaitingGet')) {
      // FTN-NOTES §3: after M_GET a fresh M_FILE with the offset must precede any data.
      this.sendCmd(Cmd.M_FILE, formatFileArgs(wireRef(s.file), g.offset));
      this.log('info', 'transfer', `sending ${s.file.sendName} from ${g.offset}`, { file: s.file.sendName, offset: g.offset });
      this.startStreaming(s.file, s.source, g.offset, s.name === 'streaming' ? s.generation + 1 : 0);
    } else {
      this.awaitingAck.delete(hit.file.id);
      this.resend.push({ file: hit.file, offset: g.offset });
    }
    this.stepSender();
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  /** Run the sender as far as it can go now. Re-entrant calls fold into the running one. */
  private stepSender(): void {
    if (this.senderStepping) {
      this.senderAgain = true;
      return;
    }
    this.senderStepping = true;
    try {
      do {
        this.senderAgain = false;
        this.senderLoop();
      } while (this.senderAgain && !this.ended);
    } catch (err) {
      this.failFrom(err);
    } finally {
      this.senderStepping = false;
    }
  }

  private senderLoop(): void {
    for (;;) {
      if (this.ended) return;
      const s = this.sender;
      if (s.name === 'streaming') {
        if (!this.streamStep(s)) return;
        continue;
      }
      if (s.name !== 'between') return;
      const next = this.nextToSend();
      if (next) {
        this.openNext(next.file, next.offset);
        continue;
      }
      // binkd sends M_EOB only after every file it sent is acknowledged; we do the same.
      if (this.awaitingAck.size > 0) return;
      this.sender = { name: 'eobSent' };
      this.sendCmd(Cmd.M_EOB);
      this.checkBatchEnd();
      return;
    }
  }

  /** A resend asked for by M_GET, else the next file of the batch not yet offered. */
  private nextToSend(): { file: OutgoingFile; offset: number } | undefined {
    const again = this.resend.shift();
    if (again) return again;
    const b = this.batch;
    while (b.next < b.files.length && !this.stopAfterBatch) {
      const f = b.files[b.next++]!;
      if (this.done.has(f.id)) continue;
      // FTN-NOTES §8: binkd drops the session when one name is offered twice in a batch.
      if (b.names.has(f.sendName)) {
        // It stays queued, and the batch that carried its namesake is followed by another.
        this.log('debug', 'transfer', `${f.sendName} (${f.path}) deferred to the next batch: name already offered`);
        continue;
      }
      b.names.add(f.sendName);
      return { file: f, offset: FIRST_OFFER };
    }
    return undefined;
  }

  private openNext(file: OutgoingFile, offset: number): void {
    const vanished = (err: unknown): void => {
      // FTN-NOTES §4: a file that vanished is skipped with a warning, the session goes on.
      this.log('warning', 'transfer', `cannot open ${file.path}: ${errorText(err)}; skipped`, { file: file.path });
      this.done.add(file.id);
      this.sender = { name: 'between' };
    };
    let opened: SendSource | Promise<SendSource>;
    try {
      opened = this.env.openSource(file);
    } catch (err) {
      vanished(err);
      return;
    }
    if (!isPromise(opened)) {
      this.offerFile(file, opened, offset);
      return;
    }
    const state: SenderState = { name: 'opening', file };
    this.sender = state;
    opened.then(
      (source) => {
        if (this.ended || this.sender !== state) {
          closeQuietly(source);
          return;
        }
        this.offerFile(file, source, offset);
        this.stepSender();
      },
      (err: unknown) => {
        if (this.ended || this.sender !== state) return;
        vanished(err);
        this.stepSender();
      },
    );
  }

  /** offset FIRST_OFFER = first offer (0, or -1 in NR mode); otherwise resend from that offset after M_GET. */
  private offerFile(file: OutgoingFile, source: SendSource, offset: number): void {
    if (offset !== FIRST_OFFER) {
      // FTN-NOTES §3: after M_GET a fresh M_FILE with the offset must precede any data.
      this.sendCmd(Cmd.M_FILE, formatFileArgs(wireRef(file), offset));
      this.log('info', 'transfer', `sending ${file.sendName} from ${offset}`, { file: file.sendName, offset });
      this.startStreaming(file, source, offset, 0);
      return;
    }
    const nr = this.opts.nrMode || this.nrSeen;
    this.sendCmd(Cmd.M_FILE, formatFileArgs(wireRef(file), nr ? -1 : 0));
    this.log('info', 'transfer', `sending ${file.sendName} (${file.size} bytes)`, { file: file.sendName, size: file.size, path: file.path });
    // FTS-1028: in NR mode the data waits for the hub's M_GET with the real offset.
    if (nr) this.sender = { name: 'awaitingGet', file, source };
    else this.startStreaming(file, source, 0, 0);
  }

  private startStreaming(file: OutgoingFile, source: SendSource, pos: number, generation: number): void {
    if (pos >= file.size) {
      // FTN-NOTES §1: a 0-byte file still needs one empty data frame. So does a resend from the
      // very end after M_GET: the receiver completes a file on a data frame, so it would never M_GOT.
      const b = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
      writeDataHeader(b, 0, 0);
      if (!this.link.write(b)) this.blocked = true;
      this.fileStreamed(file, source);
      return;
    }
    this.sender = { name: 'streaming', file, source, pos, reading: false, generation };
  }

  private fileStreamed(file: OutgoingFile, source: SendSource): void {
    closeQuietly(source);
    this.awaitingAck.set(file.id, file);
    this.sender = { name: 'between' };
  }

  /**
   * One write of data frames: read with one readv into slots that leave room for each frame
   * header (no copies). Returns whether the sender may go on at once.
   */
  private streamStep(s: Streaming): boolean {
    if (s.reading || this.blocked) return false;
    const frames = Math.min(this.pool.framesPerWrite, Math.ceil((s.file.size - s.pos) / this.frameSize));
    const want = Math.min(frames * this.frameSize, s.file.size - s.pos);
    // A whole write takes a pooled buffer; a smaller one (a packet, a file's tail) its own, so
    // that a run of small files is not held to the pool's few buffers in flight.
    const pooled = frames === this.pool.framesPerWrite;
    const buf = pooled ? this.pool.take() : Buffer.allocUnsafe(frames * (this.frameSize + FRAME_HEADER_SIZE));
    if (!buf) return false;
    const slots = this.pool.slots(buf, frames, want);
    let got: number | Promise<number>;
    try {
      got = s.source.readv(slots, s.pos);
    } catch (err) {
      if (pooled) this.pool.give(buf);
      throw new SessionError('io', `reading ${s.file.path}: ${errorText(err)}`);
    }
    if (!isPromise(got)) return this.sendRead(s, buf, pooled, frames, want, got);
    s.reading = true;
    const generation = s.generation;
    got.then(
      (n) => {
        s.reading = false;
        // A re-position (M_GET) or an M_GOT may have come while we read: the bytes are stale.
        if (this.ended || this.sender !== s || s.generation !== generation) {
          if (pooled) this.pool.give(buf);
        } else this.sendRead(s, buf, pooled, frames, want, n);
        this.stepSender();
      },
      (err: unknown) => {
        s.reading = false;
        if (pooled) this.pool.give(buf);
        if (this.sender === s) this.fail('io', `reading ${s.file.path}: ${errorText(err)}`);
      },
    );
    return false;
  }

  private sendRead(s: Streaming, buf: Buffer, pooled: boolean, frames: number, want: number, got: number): boolean {
    if (got !== want) {
      if (pooled) this.pool.give(buf);
      throw new SessionError('io', `${s.file.path} shrank while being sent (expected ${s.file.size} bytes)`);
    }
    const frame = this.frameSize;
    let total = 0;
    let left = got;
    for (let k = 0; k < frames; k++) {
      const len = Math.min(frame, left);
      writeDataHeader(buf, k * (frame + FRAME_HEADER_SIZE), len);
      left -= len;
      total = k * (frame + FRAME_HEADER_SIZE) + FRAME_HEADER_SIZE + len;
    }
    if (!this.link.write(buf.subarray(0, total), pooled ? () => this.released(buf) : undefined)) this.blocked = true;
    s.pos += got;
    this.stats.bytesSent += got;
    this.progressed();
    if (s.pos >= s.file.size) this.fileStreamed(s.file, s.source);
    return true;
  }

  private released(buf: Buffer): void {
    this.pool.give(buf);
    if (this.sender.name === 'streaming') this.stepSender();
  }

  // ---------------------------------------------------------------------------------------------
  // The end

  private failFrom(err: unknown): void {
    if (err instanceof SessionError) this.failWith(err);
    else this.fail('io', errorText(err));
  }

  private fail(kind: FailureKind, message: string): void {
    this.failWith(new SessionError(kind, message));
  }

  /**
   * A failure seen here (not the hub's M_ERR/M_BSY, not its close): tell the hub in an M_ERR
   * first, so its log says why and its side keeps the partial.
   */
  private failWith(err: SessionError): void {
    if (this.ended) return;
    if (err.remote === undefined && !this.fatalSent) {
      this.sendCmd(Cmd.M_ERR, err.kind === 'io' ? 'Local I/O error' : shownText(err.message, MAX_ERR_TEXT_CHARS));
    }
    this.end(false, err);
  }

  private end(ok: boolean, error?: SessionError): void {
    if (this.ended) return;
    this.ended = true;
    this.stage = 'done';
    this.link.clearTimer('idle');
    this.link.clearTimer('session');
    const s = this.sender;
    if (s.name === 'streaming' || s.name === 'awaitingGet') closeQuietly(s.source);
    this.sender = { name: 'off' };
    try {
      // What arrived is kept: the partial is resumed from there next time.
      this.flushGathered();
    } catch {
      // the write failed: the partial keeps what it has
    }
    const r = this.receiver;
    this.receiver = { name: 'ready' };
    const closePartial = r.name === 'receiving' ? r.partial.close().catch(() => undefined) : Promise.resolve();
    this.link.close(ok, error?.kind === 'timeout' ? TIMEOUT_LINGER_MS : ABORT_LINGER_MS);
    const shown = error && new SessionError(error.kind, shownText(error.message, 1000), { cause: error.cause, ...(error.remote === undefined ? {} : { remote: error.remote }) });
    void Promise.allSettled([closePartial, ...this.completing]).then(() =>
      this.settle({
        ok,
        ...(shown ? { error: shown } : {}),
        stats: { ...this.stats },
        startedAt: this.startedAt,
        durationMs: this.now() - this.startedAt,
        secure: this.secure,
        cram: this.usedCram,
        nr: this.opts.nrMode || this.nrSeen,
        binkp11: this.remote11,
        batches: this.batch.number,
        remoteAkas: this.remoteAkas.map((a) => formatAddress(a)),
        remoteInfo: { ...this.remoteInfo },
        servedAkas: this.servedAkas,
        receivedPaths: [...this.receivedPaths],
      }),
    );
  }
}

function wireRef(f: OutgoingFile): FileRef {
  return { name: f.sendName, size: f.size, mtime: f.mtime };
}

/**
 * What an M_ERR from the hub means. By the protocol stage, not the hub's wording: after our M_PWD
 * and before M_OK the hub judges our password, whatever words it uses ("Bad password", "Security
 * violation", ...), unless the text clearly says it is busy or out of disk (FTN-NOTES §9).
 */
export function remoteErrorKind(stage: Stage, text: string): FailureKind {
  if (/\bbusy\b|too many|try (again )?later/i.test(text)) return 'busy';
  if (stage !== 'auth') return 'protocol';
  if (/disk full|no space|out of space|internal error/i.test(text)) return 'protocol';
  return 'auth';
}
