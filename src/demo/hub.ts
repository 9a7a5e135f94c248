/**
 * A scripted answering binkp hub: the answering half of binkp/1.1 [FTS-1026 §6.1.2, §6.2;
 * FTS-1027; FTS-1028; multi-batch per FTN-NOTES §3], modelled on binkd 1.1a's answering side.
 *
 * It serves two masters: `fnpoll demo` (a sysop watches a session against it) and fnpoll's session
 * tests, which use its fault injection (busy, wrong password, resend requests, stalls, dropped
 * connections) and assert on its per-session frame log.
 *
 * The protocol lives in HubSession, which never touches a socket: it is fed bytes and writes
 * through a small transport interface. ScriptedHub is the node:net shell around it.
 *
 * State that a real hub keeps between sessions is kept between sessions here too: files the caller
 * acknowledged leave the hub's outbound, and partially received files are kept so that a re-offer
 * is answered with M_GET at the partial length, as binkd does.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { FrameDecoder, FRAME_HEADER_SIZE, MAX_FRAME_PAYLOAD, encodeCommand, writeDataHeader } from '../binkp/frame.js';
import {
  Cmd,
  argText,
  commandName,
  fileKey,
  formatFileArgs,
  formatFileRef,
  parseFileArgs,
  parseFileRef,
  parseNul,
  parseOptions,
  sameFile,
  type FileRef,
} from '../binkp/commands.js';
import { cramResponse } from '../binkp/cram.js';
import { crc32, formatCrc } from '../binkp/crc.js';
import { sessionKeys, type CryptKeys } from '../binkp/crypt.js';
import { compressWhole, decompressPrefix, DecompressError } from '../binkp/compress.js';
import { PLZ_MAX_PAYLOAD, encodePlzData, inflatePlzFrame } from '../binkp/plz.js';
import { hasNz, parseFileExtras } from '../binkp/options.js';
import { formatAddress, parseAddressList, tryParseAddress } from '../ftn/address.js';

/** binkd's default data frame size (its `oblksize`). */
export const DEFAULT_HUB_FRAME_SIZE = 4096;
/** FTS-1027 §1.3 asks for 8-64 bytes of challenge; binkd sends 16. */
export const HUB_CHALLENGE_BYTES = 16;
/** The mailer token of our VER line. */
export const HUB_MAILER = 'scripted-hub/1.0';

const HUB_SYSNAME = 'fnpoll scripted hub';
const HUB_SYSOP = 'Hub Sysop';
const HUB_LOCATION = 'Loopback';
const HUB_NODEINFO = '115200,TCP,BINKP';

export interface HubFile {
  name: string;
  data: Buffer;
  /** Unix time, seconds. */
  mtime: number;
}

export interface ReceivedFile {
  name: string;
  size: number;
  mtime: number;
  /**
   * The file's last `data.length` bytes: all of it, unless the final transfer started at an offset
   * for which the hub held no partial (the `getOffset` fault), in which case it starts there.
   */
  data: Buffer;
  /** The offset of the M_FILE that carried the final transfer. */
  offsetStart: number;
}

/** One line of a session's log: a command frame, or a run of data frames in one direction. */
export type HubFrame =
  | { dir: 'in' | 'out'; kind: 'command'; id: number; name: string; arg: string }
  | { dir: 'in' | 'out'; kind: 'data'; frames: number; bytes: number };

export interface HubSessionLog {
  /** 1-based, in order of connection. */
  readonly id: number;
  /** Frames both ways, in the order the hub wrote or decoded them; consecutive data frames merged. */
  readonly frames: HubFrame[];
  /** Set when the outcome is known; undefined while the session runs. */
  result: 'ok' | 'failed' | undefined;
  /** Why the session failed (or a note on how it ended). */
  reason: string | undefined;
  /** M_OK "secure" was sent. */
  secure: boolean;
  /** Completed batches (M_EOB pairs). */
  batches: number;
  /** The caller's M_ADR, formatted. */
  callerAddresses: string[];
  /** All OPT tokens the caller sent. */
  callerOptions: string[];
  /** The caller's VER value. */
  callerVersion: string | undefined;
  /** The caller's M_PWD argument. */
  callerPassword: string | undefined;
  /** Files received complete in this session. */
  received: ReceivedFile[];
  /** Names of the hub's files the caller acknowledged (M_GOT) in this session. */
  acknowledged: string[];
  /** Names of the hub's files the caller skipped (M_SKIP) in this session. */
  skipped: string[];
  /** Data payload bytes each way (on the wire: compressed where compressed). */
  bytesIn: number;
  bytesOut: number;
  /** Extensions in force after M_OK: GZ, PLZ, CRC, CRYPT. */
  extensions: string[];
  /** Files the hub refused because their CRC did not match (FTS-1030), by name. */
  crcRejected: string[];
}

/** What a replacement command handler may do. */
export interface HubSessionContext {
  readonly log: HubSessionLog;
  /** Send a command frame. */
  send(id: number, arg?: string): void;
  /** Send one data frame (payload up to 32767 bytes). */
  sendData(payload: Buffer): void;
  /** Run the hub's built-in handling for a command. */
  handle(id: number, arg: string): void;
  /** Flush and close; the session ends with this result. */
  end(result: 'ok' | 'failed', reason?: string): void;
  /** Drop the connection at once. */
  destroy(reason?: string): void;
}

export type HubCommandHandler = (arg: string, ctx: HubSessionContext) => void;

export interface ScriptedHubOptions {
  /** The hub's AKAs for M_ADR, e.g. ['2:5020/1@fidonet']. */
  addresses: string[];
  /** Expected password for the caller; undefined (or "-") = none expected. */
  password?: string;
  /** Offer `OPT CRAM-MD5-<challenge>` as the first M_NUL (default true). */
  cram?: boolean;
  /** Like a binkd node with `-md`: a plaintext password gets M_ERR "You must support MD5". */
  requireCram?: boolean;
  /** Files the hub sends in the first batch. */
  files?: HubFile[];
  /** Files that join the hub's outbound when a first batch ends: sent in batch 2. */
  secondBatch?: HubFile[];
  /** Send files with offset -1 and wait for M_GET [FTS-1028]. The caller's `OPT NR` does the same. */
  nr?: boolean;
  /** Protocol version we announce; '1.0' ends the session after the first batch. Default '1.1'. */
  version?: '1.0' | '1.1';
  /** Data frame payload size, default 4096 like binkd. */
  frameSize?: number;
  /** Wait this long after the connection before reading or sending anything. */
  answerDelayMs?: number;
  /**
   * Send our M_ADR this long after the rest of the greeting, reading meanwhile: lets a test catch a
   * caller that sends M_PWD before it has our M_ADR (the log then shows M_PWD in before M_ADR out).
   */
  adrDelayMs?: number;
  /**
   * OPT tokens sent in an M_NUL just before M_OK, as binkd sends `OPT EXTCMD GZ`. The hub also
   * speaks what it lists here when the caller offered it too: `EXTCMD GZ` (binkd's per-file zlib
   * streams, both ways), `BZ2` (offered only: fnpoll must never take it), `CRC` (FTS-1030: sends
   * checksums, verifies the caller's), `PLZ` (FTS-1029 frames), `CRYPT` (binkd's cipher, with a
   * password and CRAM-MD5).
   */
  loginOptions?: string[];
  /** Send these files with this fifth M_FILE token; `BZ2` data is not real bzip2 (fnpoll refuses it with NZ). */
  sendMethod?: 'GZ' | 'BZ2';
  /**
   * Fault: flip one byte of each named file as it goes out (once per session), after its CRC was
   * taken; `wire: true` flips it in what goes on the wire instead (the compressed stream).
   */
  corruptByte?: { name: string; offset: number; wire?: boolean } | { name: string; offset: number; wire?: boolean }[];
  /** Keep partially received files between sessions and ask for the rest (default true, as binkd). */
  keepPartials?: boolean;
  /** Receive a file again that was already received complete (default false: M_GOT at once, as binkd). */
  receiveDupes?: boolean;
  // Fault injection:
  /** Answer M_BSY <text> right after the greeting. */
  busy?: string;
  /** Answer M_ERR <text> to the caller's M_PWD instead of M_OK. */
  errorAfterPwd?: string;
  /** When the caller offers this file with offset 0, answer M_GET name size time <offset>. */
  getOffset?: { name: string; offset: number };
  /** Answer M_SKIP to these names. */
  skip?: string[];
  /** Stop answering after the greeting, after the caller's M_PWD, or after the caller's M_EOB. */
  stallAfter?: 'greeting' | 'pwd' | 'eob';
  /** Drop the connection after receiving this many data bytes in a session. */
  closeAfterBytes?: number;
  /** Replace the handling of a command id (see HubSessionContext). */
  handlers?: Partial<Record<number, HubCommandHandler>>;
  // Observation and injection:
  /** Called for every frame logged (a data run is passed again as it grows). */
  onFrame?: (log: HubSessionLog, frame: HubFrame) => void;
  /** Called once when a session's connection has closed. */
  onSessionEnd?: (log: HubSessionLog) => void;
  /** Clock for the TIME line, ms since the epoch. */
  now?: () => number;
  /** Source of challenge bytes. */
  random?: (size: number) => Buffer;
}

/** Index of the first frame at or after `from` in direction `dir` with command `name` (and `match`), or -1. */
export function findFrame(
  log: HubSessionLog,
  dir: 'in' | 'out',
  name: string,
  match?: (arg: string) => boolean,
  from = 0,
): number {
  for (let i = from; i < log.frames.length; i++) {
    const f = log.frames[i]!;
    if (f.dir === dir && f.kind === 'command' && f.name === name && (!match || match(f.arg))) return i;
  }
  return -1;
}

/** The command frames of a log as `in M_ADR 2:5020/2` lines: handy in assertion messages. */
export function describeFrames(log: HubSessionLog): string {
  return log.frames
    .map((f) => (f.kind === 'command' ? `${f.dir} ${f.name} ${f.arg}` : `${f.dir} data x${f.frames} (${f.bytes} bytes)`))
    .join('\n');
}

/** The byte sink a HubSession writes to. */
export interface HubTransport {
  /** Returns false when the caller should wait for `drained()` before writing more data. */
  write(bytes: Buffer): boolean;
  end(): void;
  destroy(): void;
}

/** What a hub keeps across sessions; every session of one hub works on the same object. */
export interface HubState {
  /** The hub's files not yet acknowledged by a caller, in sending order. */
  outbound: HubFile[];
  /** secondBatch files not yet released into `outbound`. */
  secondBatch: HubFile[];
  /** Partially received files by fileKey(). */
  partials: Map<string, Buffer>;
  received: ReceivedFile[];
  acknowledged: HubFile[];
}

/** Timer source for a session (adrDelayMs): `set` returns a cancel function. */
export interface HubTimers {
  set(ms: number, fn: () => void): () => void;
}

/** A fresh hub state holding `files` (batch 1) and `secondBatch`. */
export function newHubState(files: HubFile[] = [], secondBatch: HubFile[] = []): HubState {
  return { outbound: [...files], secondBatch: [...secondBatch], partials: new Map(), received: [], acknowledged: [] };
}

/** An empty log for session number `id`. */
export function newSessionLog(id: number): HubSessionLog {
  return {
    id,
    frames: [],
    result: undefined,
    reason: undefined,
    secure: false,
    batches: 0,
    callerAddresses: [],
    callerOptions: [],
    callerVersion: undefined,
    callerPassword: undefined,
    received: [],
    acknowledged: [],
    skipped: [],
    bytesIn: 0,
    bytesOut: 0,
    extensions: [],
    crcRejected: [],
  };
}

function refOf(f: HubFile): FileRef {
  return { name: f.name, size: f.data.length, mtime: f.mtime };
}

/** binkd discards partial .pkt files instead of resuming them (protocol.c close_partial). */
function resumable(name: string): boolean {
  return !/\.pkt$/i.test(name);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** binkd's TIME format, in UTC: `Sun, 22 Nov 2026 03:25:17 +0000`. */
export function formatBinkpTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[d.getUTCDay()]}, ${String(d.getUTCDate()).padStart(2, ' ')} ${MONTHS[d.getUTCMonth()]} ` +
    `${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`
  );
}

type Phase = 'new' | 'login' | 'transfer' | 'closing' | 'closed';

interface Incoming {
  ref: FileRef;
  /** GZ: the compressed bytes so far (decoded anew each frame: hub files are small). */
  gz?: Buffer[];
  /** FTS-1030 checksum the caller sent. */
  crc?: number | undefined;
  chunks: Buffer[];
  /** Next file offset expected. */
  pos: number;
  offsetStart: number;
  /** Bytes of `chunks` that came from a kept partial. */
  prefix: number;
}

interface Outgoing {
  file: HubFile;
  pos: number;
  /** NR mode: M_FILE went out with -1, no data until the caller's M_GET. */
  awaitingGet: boolean;
  /** The bytes that go out (the file from its offset, compressed when a method is on) and how far. */
  wire?: { data: Buffer; pos: number };
}

/**
 * One answering session. Driven by start(), feed(), drained() and transportClosed(); writes through the
 * transport. All decisions are synchronous, so a test can drive it without a socket.
 */
export class HubSession {
  private phase: Phase = 'new';
  private stalled = false;
  private readonly decoder: FrameDecoder;
  private challenge: string | undefined;
  private adrSent = false;
  private cancelAdrTimer: (() => void) | undefined;
  private gotAdr = false;
  private gotPwd = false;
  /** The caller's binkp version times 100; binkd assumes 1.0 until VER says otherwise. */
  private callerVersion = 100;
  private callerWantsNr = false;
  // Batch state [FTN-NOTES §3].
  private localEob = false;
  private remoteEob = false;
  private msgsInBatch = 0;
  private queue: HubFile[] = [];
  private readonly offered = new Set<HubFile>();
  private out: Outgoing | undefined;
  /** Sent completely, waiting for M_GOT / M_SKIP / M_GET. */
  private sentPending: HubFile[] = [];
  private incoming: Incoming | undefined;
  /** M_GETs we sent, by fileKey, with the offset asked for. */
  private readonly pendingGets = new Map<string, number>();
  private blocked = false;
  private dataBytesIn = 0;
  // Extensions (in force after M_OK)
  private gz = false;
  private crc = false;
  private plz = false;
  private cryptOut: CryptKeys | undefined;
  private readonly noCompress = new Set<HubFile>();
  private readonly corrupted = new Set<string>();

  constructor(
    private readonly opts: Readonly<ScriptedHubOptions>,
    readonly log: HubSessionLog,
    private readonly shared: HubState,
    private readonly transport: HubTransport,
    private readonly timers: HubTimers,
  ) {
    this.decoder = new FrameDecoder({
      command: (id, arg) => this.onCommand(id, argText(arg)),
      data: (piece, end) => this.onData(piece, end),
    });
  }

  get isClosed(): boolean {
    return this.phase === 'closed';
  }

  /** Send the greeting [FTS-1026 §6.1.2 R0]. */
  start(): void {
    if (this.phase !== 'new') return;
    this.phase = 'login';
    this.guard(() => this.greet());
  }

  /** Bytes from the caller. */
  feed(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.guard(() => this.decoder.push(chunk));
  }

  /** The transport can take more data. */
  drained(): void {
    this.blocked = false;
    this.guard(() => this.pump());
  }

  /** The connection is gone: `error` when it broke, `why` when the hub closed it. */
  transportClosed(error?: Error, why?: string): void {
    if (this.phase === 'closed') return;
    if (this.log.result === undefined) {
      this.log.result = 'failed';
      if (why) this.log.reason = why;
      else if (error) this.log.reason = `connection error: ${error.message}`;
      else if (this.stalled) this.log.reason = 'stalled by script; connection closed by the caller';
      else this.log.reason = `connection closed by the caller (${this.describeState()})`;
    }
    if (this.incoming) this.keepPartial(this.incoming);
    this.incoming = undefined;
    this.cancelAdrTimer?.();
    this.phase = 'closed';
  }

  /** Run a step; a throw (a bug, or a replacement handler's) fails the session instead of the process. */
  private guard(step: () => void): void {
    try {
      step();
    } catch (err) {
      this.destroy(`hub error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private describeState(): string {
    if (this.phase === 'login') return this.gotPwd ? 'after M_PWD' : this.gotAdr ? 'after M_ADR' : 'before M_ADR';
    const parts = [`batch ${this.log.batches + 1}`];
    if (this.localEob) parts.push('our M_EOB sent');
    if (this.remoteEob) parts.push('caller M_EOB received');
    if (this.incoming) parts.push(`receiving ${this.incoming.ref.name} at ${this.incoming.pos}`);
    if (this.sentPending.length > 0) parts.push(`${this.sentPending.length} sent file(s) unacknowledged`);
    return parts.join(', ');
  }

  // ---- output --------------------------------------------------------------------------------

  private record(frame: HubFrame): void {
    this.log.frames.push(frame);
    this.opts.onFrame?.(this.log, frame);
  }

  /** Nothing more goes out once the session decided to close, or when the script stalls it. */
  private get mute(): boolean {
    return this.phase === 'closing' || this.phase === 'closed' || this.stalled;
  }

  /** Every byte out goes through here: binkd's CRYPT enciphers all of it after M_OK. */
  private put(bytes: Buffer): boolean {
    return this.transport.write(this.cryptOut ? this.cryptOut.encrypt(bytes) : bytes);
  }

  private send(id: number, arg = ''): void {
    if (this.mute) return;
    this.put(encodeCommand(id, arg));
    this.msgsInBatch++;
    this.record({ dir: 'out', kind: 'command', id, name: commandName(id), arg });
  }

  private sendData(payload: Buffer): void {
    if (this.mute) return;
    if (payload.length > MAX_FRAME_PAYLOAD) throw new RangeError(`data frame of ${payload.length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
    let frame: Buffer;
    if (this.plz) {
      frame = encodePlzData(payload);
    } else {
      frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
      writeDataHeader(frame, 0, payload.length);
      payload.copy(frame, FRAME_HEADER_SIZE);
    }
    if (!this.put(frame)) this.blocked = true;
    this.log.bytesOut += payload.length;
    this.countData('out', payload.length, true);
  }

  /** Log data frames as runs: consecutive frames in one direction share one entry. */
  private countData(dir: 'in' | 'out', bytes: number, frameEnd: boolean): void {
    const last = this.log.frames[this.log.frames.length - 1];
    let entry = last?.kind === 'data' && last.dir === dir ? last : undefined;
    if (!entry) {
      entry = { dir, kind: 'data', frames: 0, bytes: 0 };
      this.log.frames.push(entry);
    }
    entry.bytes += bytes;
    if (frameEnd) entry.frames++;
    this.opts.onFrame?.(this.log, entry);
  }

  /** Flush what is written, then close. */
  private finish(result: 'ok' | 'failed', reason?: string): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    if (this.log.result === undefined) {
      this.log.result = result;
      this.log.reason = reason;
    }
    this.phase = 'closing';
    this.cancelAdrTimer?.();
    this.transport.end();
  }

  private destroy(reason: string): void {
    if (this.phase === 'closed') return;
    if (this.log.result === undefined) {
      this.log.result = 'failed';
      this.log.reason = reason;
    }
    this.phase = 'closing';
    this.transport.destroy();
  }

  /** FTS-1026 §6.3: sending M_ERR ends the session as failed. */
  private fatal(text: string, reason = text): void {
    this.send(Cmd.M_ERR, text);
    this.finish('failed', reason);
  }

  // ---- session setup [FTS-1026 §6.1.2] --------------------------------------------------------

  private greet(): void {
    const o = this.opts;
    if (o.cram !== false) {
      // FTS-1027 §1.3: the challenge goes in the very first M_NUL, lower-case hex.
      this.challenge = (o.random ?? randomBytes)(HUB_CHALLENGE_BYTES).toString('hex');
      this.send(Cmd.M_NUL, `OPT CRAM-MD5-${this.challenge}`);
    }
    this.send(Cmd.M_NUL, `SYS ${HUB_SYSNAME}`);
    this.send(Cmd.M_NUL, `ZYZ ${HUB_SYSOP}`);
    this.send(Cmd.M_NUL, `LOC ${HUB_LOCATION}`);
    this.send(Cmd.M_NUL, `NDL ${HUB_NODEINFO}`);
    this.send(Cmd.M_NUL, `TIME ${formatBinkpTime((o.now ?? Date.now)())}`);
    this.send(Cmd.M_NUL, `VER ${HUB_MAILER} binkp/${o.version ?? '1.1'}`);
    if (o.adrDelayMs !== undefined && o.adrDelayMs > 0) {
      this.cancelAdrTimer = this.timers.set(o.adrDelayMs, () => this.guard(() => this.sendAdr()));
    } else {
      this.sendAdr();
    }
    if (o.busy !== undefined) {
      this.send(Cmd.M_BSY, o.busy);
      this.finish('failed', `busy: ${o.busy}`);
      return;
    }
    if (o.stallAfter === 'greeting') this.stalled = true;
  }

  private sendAdr(): void {
    if (this.adrSent || this.phase === 'closing' || this.phase === 'closed') return;
    this.adrSent = true;
    this.cancelAdrTimer?.();
    this.cancelAdrTimer = undefined;
    // binkd starts its M_ADR argument with a space; callers must cope (FTN-NOTES §2).
    this.send(Cmd.M_ADR, this.opts.addresses.map((a) => ` ${a}`).join(''));
  }

  private onPassword(pwd: string): void {
    if (this.gotPwd) {
      // binkd drops the session on a second M_PWD.
      this.finish('failed', 'double M_PWD from the caller');
      return;
    }
    this.gotPwd = true;
    this.log.callerPassword = pwd;
    // Answer in order even when our M_ADR was held back by adrDelayMs.
    this.sendAdr();
    if (this.opts.stallAfter === 'pwd') {
      this.stalled = true;
      return;
    }
    // binkd looks up the password by the caller's AKAs: before M_ADR it expects none.
    const configured = this.opts.password;
    const expected = this.gotAdr && configured !== undefined && configured !== '' && configured !== '-' ? configured : undefined;
    const isCram = /^CRAM-/i.test(pwd);
    if (expected !== undefined) {
      if (!isCram && this.opts.requireCram) {
        this.fatal('You must support MD5', 'caller sent a plaintext password; CRAM-MD5 required');
        return;
      }
      let ok: boolean;
      if (isCram && this.challenge !== undefined) {
        // FTS-1027 §1.4: HMAC-MD5 keyed with the password over the challenge bytes.
        ok = pwd.toLowerCase() === cramResponse(expected, this.challenge).toLowerCase();
      } else {
        ok = pwd === expected;
      }
      if (!ok) {
        this.fatal('Bad password', `bad password from the caller (${isCram ? 'CRAM-MD5 digest' : 'plaintext'})`);
        return;
      }
    }
    // With no password configured, binkd accepts anything as a non-secure session.
    if (this.opts.errorAfterPwd !== undefined) {
      this.fatal(this.opts.errorAfterPwd, `M_ERR after M_PWD: ${this.opts.errorAfterPwd}`);
      return;
    }
    const extra = this.opts.loginOptions ?? [];
    if (extra.length > 0) this.send(Cmd.M_NUL, `OPT ${extra.join(' ')}`);
    this.log.secure = expected !== undefined;
    this.send(Cmd.M_OK, this.log.secure ? 'secure' : 'non-secure');
    this.phase = 'transfer';
    this.switchExtensions(expected, isCram);
    this.startBatch();
  }

  /**
   * After M_OK: what both sides offered is on. CRYPT as binkd's answering side (complete_login):
   * input keys from the password, output keys from "-" and the password; input is deciphered
   * from the byte after the caller's M_PWD, output from the byte after our M_OK.
   */
  private switchExtensions(password: string | undefined, cram: boolean): void {
    const ours = this.opts.loginOptions ?? [];
    const both = (o: string): boolean => ours.includes(o) && this.log.callerOptions.includes(o);
    this.gz = both('EXTCMD') && both('GZ');
    this.crc = both('CRC');
    this.plz = both('PLZ');
    const crypt = both('CRYPT') && password !== undefined && cram;
    this.log.extensions = [this.gz ? 'GZ' : '', this.plz ? 'PLZ' : '', crypt ? 'CRYPT' : '', this.crc ? 'CRC' : ''].filter(Boolean);
    if (this.plz) this.decoder.plz = inflatePlzFrame;
    if (crypt) {
      const keys = sessionKeys(password, 'answerer');
      this.decoder.setInputTransform((b) => keys.in.decrypt(b));
      this.cryptOut = keys.out;
    }
  }

  /** The fifth M_FILE token for `file` from `offset`: a method, else a checksum, else none. */
  private fileExtra(file: HubFile, offset: number): string {
    const method = this.opts.sendMethod;
    if (method && offset < file.data.length && !this.noCompress.has(file)) {
      if (method === 'BZ2' || (this.gz && this.log.callerOptions.includes('GZ'))) return ` ${method}`;
    }
    // FTS-1030 §2.2: the caller said OPT CRC, so it can take the checksum.
    if (this.log.callerOptions.includes('CRC') && (this.opts.loginOptions ?? []).includes('CRC')) return ` ${formatCrc(crc32(file.data))}`;
    return '';
  }

  /** The bytes to send for `file` from `offset` under `extra` (compressed, and maybe corrupted). */
  private wireData(file: HubFile, offset: number, extra: string): Buffer {
    let data = file.data.subarray(offset);
    const faults = this.opts.corruptByte === undefined ? [] : [this.opts.corruptByte].flat();
    const fault = faults.find((x) => x.name === file.name && !this.corrupted.has(file.name));
    const flip = (bytes: Buffer, at: number): Buffer => {
      if (!fault || at < 0 || at >= bytes.length) return bytes;
      this.corrupted.add(file.name);
      const copy = Buffer.from(bytes);
      copy[at]! ^= 0xff;
      return copy;
    };
    if (fault && !fault.wire) data = flip(data, fault.offset - offset);
    let wire = data;
    if (extra === ' GZ') wire = compressWhole('GZ', data);
    // Not bzip2: a caller that took it would fail, which is what the test wants to rule out.
    else if (extra === ' BZ2') wire = Buffer.concat([Buffer.from('BZh9'), data]);
    return fault?.wire ? flip(wire, fault.offset) : wire;
  }

  // ---- commands ------------------------------------------------------------------------------

  private onCommand(id: number, arg: string): void {
    this.record({ dir: 'in', kind: 'command', id, name: commandName(id), arg });
    this.msgsInBatch++;
    if (this.phase !== 'login' && this.phase !== 'transfer') return; // binkd purges input once it decided to close
    if (this.stalled) return;
    const handler = this.opts.handlers?.[id];
    if (handler) handler(arg, this.context());
    else this.handle(id, arg);
    this.pump();
  }

  private context(): HubSessionContext {
    return {
      log: this.log,
      send: (id, arg) => this.send(id, arg),
      sendData: (payload) => this.sendData(payload),
      handle: (id, arg) => this.handle(id, arg),
      end: (result, reason) => this.finish(result, reason),
      destroy: (reason) => this.destroy(reason ?? 'destroyed by handler'),
    };
  }

  /** The built-in handling of one command. */
  private handle(id: number, arg: string): void {
    switch (id) {
      case Cmd.M_NUL:
        return this.onNul(arg);
      case Cmd.M_ADR:
        return this.onAdr(arg);
      case Cmd.M_PWD:
        return this.onPassword(arg);
      case Cmd.M_ERR:
      case Cmd.M_BSY:
        // FTS-1026 §6.3: either ends the session.
        return this.finish('failed', `caller sent ${commandName(id)}: ${arg}`);
      case Cmd.M_OK:
        // binkd's answering side drops a session on M_OK from the caller.
        return this.finish('failed', 'unexpected M_OK from the caller');
      case Cmd.M_FILE:
      case Cmd.M_EOB:
      case Cmd.M_GOT:
      case Cmd.M_GET:
      case Cmd.M_SKIP:
        if (this.phase !== 'transfer') {
          // FTS-1026 §6.1.2 Table 2 (R1, R3): another known frame before login is an error.
          // binkd would accept M_FILE here; we refuse, to catch callers that jump the gun.
          return this.fatal(`Unexpected ${commandName(id)} before M_OK`);
        }
        if (id === Cmd.M_FILE) return this.onFile(arg);
        if (id === Cmd.M_EOB) return this.onEob();
        if (id === Cmd.M_GOT) return this.onGot(arg);
        if (id === Cmd.M_GET) return this.onGet(arg);
        return this.onSkip(arg);
      default:
        return; // FTS-1026 §6.1.2: unknown frames are ignored
    }
  }

  private onNul(arg: string): void {
    const { key, value } = parseNul(arg);
    if (key === 'OPT') {
      const opts = parseOptions(value);
      this.log.callerOptions.push(...opts);
      // FTS-1028 §2: a peer that asks for NR gets our files offered with -1.
      if (opts.includes('NR')) this.callerWantsNr = true;
    } else if (key === 'VER') {
      this.log.callerVersion = value;
      const m = /binkp\/(\d+)\.(\d+)/i.exec(value);
      if (m) this.callerVersion = Number(m[1]) * 100 + Number(m[2]);
    }
  }

  private onAdr(arg: string): void {
    const { addresses, bad } = parseAddressList(arg);
    if (addresses.length === 0 || bad.length > 0) {
      this.fatal('Bad address', `bad M_ADR from the caller: "${arg}"`);
      return;
    }
    this.gotAdr = true;
    this.log.callerAddresses.push(...addresses.map((a) => formatAddress(a)));
  }

  // ---- transfer [FTS-1026 §6.2] ---------------------------------------------------------------

  private startBatch(): void {
    this.localEob = false;
    this.remoteEob = false;
    this.msgsInBatch = 0;
    // New mail "arrives" when a first batch is over: binkp/1.1 carries it in the next batch.
    if (this.log.batches >= 1 && this.shared.secondBatch.length > 0) {
      this.shared.outbound.push(...this.shared.secondBatch.splice(0));
    }
    this.queue = this.shared.outbound.filter((f) => !this.offered.has(f));
  }

  private get sendNr(): boolean {
    return this.opts.nr === true || this.callerWantsNr;
  }

  private get frameSize(): number {
    return this.opts.frameSize ?? DEFAULT_HUB_FRAME_SIZE;
  }

  /** Send what can be sent, then see whether the batch or session is over. */
  private pump(): void {
    if (this.phase !== 'transfer' || this.stalled) return;
    while (!this.blocked && this.phase === 'transfer') {
      if (!this.out && this.queue.length > 0) {
        const file = this.queue.shift()!;
        this.offered.add(file);
        const nr = this.sendNr;
        const extra = this.fileExtra(file, 0);
        this.send(Cmd.M_FILE, formatFileArgs(refOf(file), nr ? -1 : 0) + extra);
        this.out = { file, pos: 0, awaitingGet: nr, wire: { data: this.wireData(file, 0, extra), pos: 0 } };
        continue;
      }
      if (this.out && !this.out.awaitingGet) {
        this.sendNextBlock(this.out);
        continue;
      }
      break;
    }
    if (this.phase !== 'transfer') return;
    // binkd sends M_EOB only when it has nothing left to send and every sent file was acknowledged.
    if (!this.localEob && !this.out && this.queue.length === 0 && this.sentPending.length === 0) {
      this.localEob = true;
      this.send(Cmd.M_EOB);
    }
    this.maybeEndBatch();
  }

  private sendNextBlock(out: Outgoing): void {
    const wire = out.wire ?? { data: out.file.data.subarray(out.pos), pos: 0 };
    out.wire = wire;
    const frameSize = this.plz ? Math.min(this.frameSize, PLZ_MAX_PAYLOAD) : this.frameSize;
    const n = Math.min(frameSize, wire.data.length - wire.pos);
    // A 0-byte file (or a resend from its end) still needs one empty data frame (FTN-NOTES §1).
    this.sendData(wire.data.subarray(wire.pos, wire.pos + n));
    wire.pos += n;
    if (wire.pos >= wire.data.length) {
      out.pos = out.file.data.length;
      this.sentPending.push(out.file);
      this.out = undefined;
    }
  }

  private maybeEndBatch(): void {
    if (!(this.localEob && this.remoteEob)) return;
    if (this.out || this.sentPending.length > 0 || this.incoming || this.pendingGets.size > 0) return;
    this.log.batches++;
    const multiBatch = this.callerVersion > 100 && (this.opts.version ?? '1.1') === '1.1';
    // binkd counts the frames of the batch both ways: only the two M_EOBs means nothing happened.
    if (this.msgsInBatch <= 2 || !multiBatch) {
      this.finish('ok');
      return;
    }
    this.startBatch();
    this.pump();
  }

  private onEob(): void {
    this.remoteEob = true;
    if (this.incoming) {
      // binkd: a file still arriving at the caller's M_EOB is interrupted; its partial is kept.
      this.keepPartial(this.incoming);
      this.incoming = undefined;
    }
    if (this.opts.stallAfter === 'eob') this.stalled = true;
  }

  private onFile(arg: string): void {
    const f = parseFileArgs(arg);
    if (!f) {
      this.fatal(`Bad M_FILE arguments: ${arg}`);
      return;
    }
    const ref: FileRef = { name: f.name, size: f.size, mtime: f.mtime };
    const key = fileKey(ref);
    if (this.incoming) {
      // A new M_FILE interrupts the file being received (or restarts it): keep what we have.
      this.keepPartial(this.incoming);
      this.incoming = undefined;
    }
    if (!this.pendingGets.has(key)) {
      if (this.opts.skip?.includes(f.name)) {
        this.send(Cmd.M_SKIP, formatFileRef(ref));
        return;
      }
      if (!this.opts.receiveDupes && this.shared.received.some((r) => sameFile(r, ref))) {
        // binkd: same name, size and time already in the inbound -> M_GOT without receiving.
        this.send(Cmd.M_GOT, formatFileRef(ref));
        return;
      }
    }
    const partial = this.shared.partials.get(key);
    const have = partial?.length ?? 0;
    if (f.offset === -1) {
      // FTS-1028 §2: -1 asks us for the offset.
      this.requestFrom(ref, have);
      return;
    }
    const fault = this.opts.getOffset;
    if (f.offset === 0 && fault && fault.name === f.name && !this.pendingGets.has(key)) {
      this.requestFrom(ref, fault.offset);
      return;
    }
    const expected = this.pendingGets.get(key) ?? have;
    if (f.offset !== expected) {
      // binkd answers an offer at the wrong offset with M_GET at the length it holds.
      this.requestFrom(ref, expected);
      return;
    }
    this.pendingGets.delete(key);
    const prefix = partial && have > 0 && have === f.offset ? partial : undefined;
    this.shared.partials.delete(key);
    const extras = parseFileExtras(f.extra, this.crc);
    this.incoming = {
      ref,
      chunks: prefix ? [prefix] : [],
      pos: f.offset,
      offsetStart: f.offset,
      prefix: prefix?.length ?? 0,
      crc: extras.crc,
    };
    if (extras.method === 'GZ' && this.gz) this.incoming.gz = [];
    else if (extras.method) {
      // A method this hub did not offer: the caller broke the negotiation (fnpoll never does).
      this.fatal(`Can't handle ${extras.method} for ${f.name}`);
      return;
    }
    if (f.offset > f.size) this.fatal(`Offset ${f.offset} beyond the size ${f.size} of ${f.name}`);
  }

  private requestFrom(ref: FileRef, offset: number): void {
    this.pendingGets.set(fileKey(ref), offset);
    this.send(Cmd.M_GET, formatFileArgs(ref, offset));
  }

  private onData(piece: Buffer, end: boolean): void {
    this.log.bytesIn += piece.length;
    this.countData('in', piece.length, end);
    if (this.phase !== 'transfer' || this.stalled) return;
    let take = piece;
    let cut = false;
    const limit = this.opts.closeAfterBytes;
    if (limit !== undefined && this.dataBytesIn + piece.length >= limit) {
      take = piece.subarray(0, Math.max(0, limit - this.dataBytesIn));
      cut = true;
    }
    this.dataBytesIn += take.length;
    const inc = this.incoming;
    if (inc?.gz) {
      // binkd recv_block: the file is complete when the decompressed count reaches its size.
      inc.gz.push(Buffer.from(take));
      let plain: Buffer;
      try {
        plain = decompressPrefix('GZ', Buffer.concat(inc.gz));
      } catch (err) {
        this.destroy(`GZ data for ${inc.ref.name} does not decompress: ${(err as DecompressError).message}`);
        return;
      }
      inc.chunks = [...inc.chunks.slice(0, inc.prefix ? 1 : 0), plain];
      inc.pos = inc.offsetStart + plain.length;
      if (inc.pos > inc.ref.size) {
        this.destroy(`caller sent ${inc.pos - inc.ref.size} bytes past the end of ${inc.ref.name}`);
        return;
      }
      if (inc.pos === inc.ref.size) this.complete(inc);
      return;
    }
    if (inc) {
      // binkd ignores data frames that belong to no file (after M_SKIP, M_GOT or M_GET).
      if (take.length > 0) inc.chunks.push(Buffer.from(take));
      inc.pos += take.length;
      if (inc.pos > inc.ref.size) {
        this.destroy(`caller sent ${inc.pos - inc.ref.size} bytes past the end of ${inc.ref.name}`);
        return;
      }
    }
    if (cut) {
      this.destroy(`closeAfterBytes: dropped the connection after ${this.dataBytesIn} data bytes`);
      return;
    }
    if (inc && end && inc.pos === inc.ref.size) this.complete(inc);
  }

  private complete(inc: Incoming): void {
    this.incoming = undefined;
    const file: ReceivedFile = {
      name: inc.ref.name,
      size: inc.ref.size,
      mtime: inc.ref.mtime,
      data: Buffer.concat(inc.chunks),
      offsetStart: inc.offsetStart,
    };
    if (inc.crc !== undefined && inc.offsetStart === inc.prefix && crc32(file.data) !== inc.crc) {
      // FTS-1030 §2.2: refuse non-destructively; the caller sends it again next session.
      this.log.crcRejected.push(inc.ref.name);
      this.send(Cmd.M_SKIP, formatFileRef(inc.ref));
      return;
    }
    this.shared.received.push(file);
    this.log.received.push(file);
    this.send(Cmd.M_GOT, formatFileRef(inc.ref));
  }

  private keepPartial(inc: Incoming): void {
    if (this.opts.keepPartials === false || !resumable(inc.ref.name)) return;
    // Only data from file offset 0 (a fresh transfer, or one resumed on a kept partial) is a usable prefix.
    if (inc.offsetStart !== inc.prefix && inc.offsetStart !== 0) return;
    const data = Buffer.concat(inc.chunks);
    if (data.length > 0 && data.length < inc.ref.size) this.shared.partials.set(fileKey(inc.ref), data);
  }

  /** The hub's file this M_GOT / M_GET / M_SKIP names: the one in transfer, or one awaiting answer. */
  private findSent(ref: FileRef): { file: HubFile; current: boolean } | undefined {
    if (this.out && sameFile(refOf(this.out.file), ref)) return { file: this.out.file, current: true };
    const file = this.sentPending.find((f) => sameFile(refOf(f), ref));
    return file ? { file, current: false } : undefined;
  }

  private forget(hit: { file: HubFile; current: boolean }): void {
    if (hit.current) this.out = undefined;
    else this.sentPending = this.sentPending.filter((f) => f !== hit.file);
  }

  private onGot(arg: string): void {
    const ref = parseFileRef(arg);
    if (!ref) {
      this.fatal(`Bad M_GOT arguments: ${arg}`);
      return;
    }
    const hit = this.findSent(ref);
    if (!hit) return; // binkd ignores an M_GOT for a file it did not send
    this.forget(hit);
    const i = this.shared.outbound.indexOf(hit.file);
    if (i >= 0) {
      this.shared.outbound.splice(i, 1);
      this.shared.acknowledged.push(hit.file);
    }
    this.log.acknowledged.push(hit.file.name);
  }

  private onSkip(arg: string): void {
    const ref = parseFileRef(arg);
    if (!ref) {
      this.fatal(`Bad M_SKIP arguments: ${arg}`);
      return;
    }
    const hit = this.findSent(ref);
    if (!hit) return;
    // Non-destructive: the file stays in our outbound for a later session.
    this.forget(hit);
    this.log.skipped.push(hit.file.name);
  }

  private onGet(arg: string): void {
    const f = parseFileArgs(arg);
    if (!f) {
      this.fatal(`Bad M_GET arguments: ${arg}`);
      return;
    }
    const hit = this.findSent(f);
    if (!hit) return; // binkd logs "unexpected M_GET" and carries on
    const size = hit.file.data.length;
    if (f.offset < 0 || f.offset > size) {
      // binkd's answer to an offset past the end; it drops the session.
      this.fatal(`Invalid M_GET violates binkp: offset ${f.offset} after end of file, file ${f.name} size ${size}`);
      return;
    }
    if (!hit.current && this.out) {
      // A file was in transfer: offer it again later rather than leave it half sent.
      this.queue.unshift(this.out.file);
    }
    if (!hit.current) this.sentPending = this.sentPending.filter((x) => x !== hit.file);
    // binkd GET: NZ asks for the rest uncompressed (and FTS-1029: no more PLZ).
    if (hasNz(f.extra)) {
      this.noCompress.add(hit.file);
      this.plz = false;
    }
    // binkd discards data after M_GET until a fresh M_FILE (FTN-NOTES §3): send one at the offset.
    const extra = this.fileExtra(hit.file, f.offset);
    this.out = { file: hit.file, pos: f.offset, awaitingGet: false, wire: { data: this.wireData(hit.file, f.offset, extra), pos: 0 } };
    this.send(Cmd.M_FILE, formatFileArgs(refOf(hit.file), f.offset) + extra);
  }
}

function validateOptions(opts: ScriptedHubOptions): void {
  if (!Array.isArray(opts.addresses) || opts.addresses.length === 0) {
    throw new TypeError('ScriptedHub options.addresses: at least one address is required');
  }
  opts.addresses.forEach((a, i) => {
    if (!tryParseAddress(a)) throw new TypeError(`ScriptedHub options.addresses[${i}]: "${a}" is not an FTN address`);
  });
  const fs = opts.frameSize;
  if (fs !== undefined && (!Number.isInteger(fs) || fs < 1 || fs > MAX_FRAME_PAYLOAD)) {
    throw new RangeError(`ScriptedHub options.frameSize: ${fs} is not an integer in 1-${MAX_FRAME_PAYLOAD}`);
  }
  for (const key of ['answerDelayMs', 'adrDelayMs', 'closeAfterBytes'] as const) {
    const v = opts[key];
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) {
      throw new RangeError(`ScriptedHub options.${key}: ${v} is not a non-negative number`);
    }
  }
  const files = [...(opts.files ?? []), ...(opts.secondBatch ?? [])];
  files.forEach((f) => {
    if (!f.name) throw new TypeError('ScriptedHub options.files: a file has an empty name');
    if (!Number.isSafeInteger(f.mtime) || f.mtime < 0) {
      throw new RangeError(`ScriptedHub options.files: "${f.name}" mtime ${f.mtime} is not a unix time`);
    }
  });
}

/** A node:net server that answers every connection with a HubSession. */
export class ScriptedHub {
  /** Files callers sent us, complete ones, over all sessions. */
  readonly received: ReceivedFile[];
  /** One log per connection, in order. */
  readonly sessions: HubSessionLog[] = [];
  /** The hub's files that a caller acknowledged, over all sessions. */
  readonly acknowledged: HubFile[];
  private opts: ScriptedHubOptions;
  private readonly shared: HubState;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly ended = new Set<number>();
  private waiters: { n: number; resolve: () => void }[] = [];
  private closing = false;

  constructor(opts: ScriptedHubOptions) {
    validateOptions(opts);
    this.opts = { ...opts };
    this.shared = newHubState(opts.files, opts.secondBatch);
    this.received = this.shared.received;
    this.acknowledged = this.shared.acknowledged;
  }

  /** Change options for sessions that start from now on (files are not re-queued). */
  configure(patch: Partial<Omit<ScriptedHubOptions, 'files' | 'secondBatch'>>): void {
    const next = { ...this.opts, ...patch };
    validateOptions(next);
    this.opts = next;
  }

  /** Queue more files for callers (they go out in the next batch that starts). */
  addFiles(files: HubFile[]): void {
    this.shared.outbound.push(...files);
  }

  /** The hub's files no caller has acknowledged yet. */
  get outbound(): readonly HubFile[] {
    return this.shared.outbound;
  }

  /** Partially received files kept for resumption, by name. */
  partialLength(name: string): number | undefined {
    for (const [key, data] of this.shared.partials) if (key.split('\u0000')[0] === name) return data.length;
    return undefined;
  }

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  listen(port = 0, host = '127.0.0.1'): Promise<number> {
    if (this.server) return Promise.reject(new Error(`ScriptedHub is already listening on port ${this.port}`));
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(this.port);
      });
    });
  }

  /** Stop listening, drop open connections, and wait until everything is closed. */
  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const server = this.server;
    for (const s of this.sockets) s.destroy();
    if (server) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Resolves when the n-th session (1-based) has ended. */
  waitSessions(n: number): Promise<void> {
    if (this.ended.has(n)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const opts = { ...this.opts };
    const log = newSessionLog(this.sessions.length + 1);
    this.sessions.push(log);
    const timers: HubTimers = {
      set: (ms, fn) => {
        const t = setTimeout(() => {
          this.timers.delete(t);
          fn();
        }, ms);
        this.timers.add(t);
        return () => {
          clearTimeout(t);
          this.timers.delete(t);
        };
      },
    };
    const session = new HubSession(
      opts,
      log,
      this.shared,
      {
        write: (bytes) => (socket.destroyed || !socket.writable ? true : socket.write(bytes)),
        end: () => socket.end(),
        destroy: () => socket.destroy(),
      },
      timers,
    );
    let error: Error | undefined;
    socket.on('data', (chunk: Buffer) => session.feed(chunk));
    socket.on('drain', () => session.drained());
    socket.on('error', (err) => {
      error = err;
    });
    socket.on('close', () => {
      this.sockets.delete(socket);
      session.transportClosed(error, this.closing ? 'hub closed' : undefined);
      this.ended.add(log.id);
      opts.onSessionEnd?.(log);
      const ready = this.waiters.filter((w) => this.ended.has(w.n));
      this.waiters = this.waiters.filter((w) => !this.ended.has(w.n));
      for (const w of ready) w.resolve();
    });
    const delay = opts.answerDelayMs ?? 0;
    if (delay > 0) {
      socket.pause();
      timers.set(delay, () => {
        socket.resume();
        session.start();
      });
    } else {
      session.start();
    }
  }
}
