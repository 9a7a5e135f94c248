/**
 * Fuzzing the parsers that read what fnpoll does not control: the binkp frame decoder and command
 * arguments (from the hub), received file names, FTN addresses, and the INI, config and state
 * files (hand-edited, or damaged). fast-check drives each target with random input and with
 * mutations (flips, inserts, deletes, duplications) of valid samples, and shrinks a failure to a
 * small counterexample.
 *
 * Every target must hold, for every input:
 * - it throws nothing but the project's own typed errors (a TypeError or RangeError from deep
 *   inside is a defect: `throws`);
 * - it returns within HANG_MS (`hangs`; a real endless loop is stopped by the runner's timeout);
 * - its invariants hold, including the declared limits: no command payload over the frame limit,
 *   no file read past MAX_CONFIG_BYTES / MAX_STATE_BYTES, names that stay inside the inbound,
 *   messages of one line (`failures`).
 *
 * `npm run harden` runs 100 000 cases per target; `npm test` runs a few hundred of each
 * (test/unit/harden/fuzz.test.ts). FNPOLL_FUZZ_SEED replays a run; the seed is printed.
 */
import fc from 'fast-check';
import { accessSync, constants as fsConstants, mkdirSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { FrameDecoder, MAX_FRAME_PAYLOAD, encodeCommand, encodeData } from '../../src/binkp/frame.js';
import {
  Cmd,
  argText,
  commandName,
  cramChallenge,
  escapeName,
  formatFileArgs,
  formatFileRef,
  parseFileArgs,
  parseFileRef,
  parseNul,
  parseOptions,
  unescapeName,
} from '../../src/binkp/commands.js';
import { MAX_NAME_BYTES, sanitizeName } from '../../src/bso/inbound.js';
import { parseIni } from '../../src/config/ini.js';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError, FnpollError } from '../../src/errors.js';
import { formatAddress, parseAddressList, tryParseAddress } from '../../src/ftn/address.js';
import { indexText, judge, parseLine } from '../../src/net/nodelist.js';
import { InvalidState, emptyHubState, emptyState, loadState, parseState, serializeState, type State } from '../../src/poll/state.js';
import { MAX_CONFIG_BYTES, MAX_STATE_BYTES, NotTextFileError, readBoundedSync } from '../../src/textfile.js';
import { say, shown, type Figures, type Size } from './lib.js';

const SUITE = 'fuzz';
/** Cases per target. */
export const CASES: Readonly<Record<Size, number>> = { full: 100_000, small: 2_000 };
/** One case taking longer than this is a hang (the inputs are at most a few KB). */
export const HANG_MS = 2_000;
/** Default seed: runs are reproducible unless FNPOLL_FUZZ_SEED says otherwise. */
const DEFAULT_SEED = 20261101;

/** An invariant did not hold. */
class Violation extends Error {
  override name = 'Violation';
}
/** A throw that is not one of the project's typed errors. */
class UntypedThrow extends Error {
  override name = 'UntypedThrow';
}
class Hang extends Error {
  override name = 'Hang';
}

function expect(ok: boolean, what: string): void {
  if (!ok) throw new Violation(what);
}

/** No line break, no raw control character: safe to print as one line. */
const ONE_LINE_RE = /^[^\u0000-\u001f\u007f-\u009f]*$/;

export interface FuzzTarget<T = unknown> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  /** Run the code under test on one input; throw Violation when an invariant does not hold. */
  check(input: T): void | Promise<void>;
  /** The errors this target may throw as an answer to bad input. */
  typed(err: unknown): boolean;
  /** Cap on the cases of a target whose cases are costly (e.g. a file per case). */
  maxCases?: number;
  setup?(): void;
  teardown?(): void;
}

// ---------------------------------------------------------------------------------------------
// Input shapes

/** A valid sample changed by 1-8 byte edits at random places. */
function mutated(samples: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const edit = fc.record({
    at: fc.nat(),
    op: fc.constantFrom('flip', 'set', 'insert', 'delete', 'duplicate', 'cut'),
    byte: fc.integer({ min: 0, max: 255 }),
    length: fc.integer({ min: 1, max: 64 }),
  });
  return fc.tuple(fc.constantFrom(...samples), fc.array(edit, { minLength: 1, maxLength: 8 })).map(([base, edits]) => {
    let b = Buffer.from(base);
    for (const e of edits) {
      const at = b.length === 0 ? 0 : e.at % (b.length + 1);
      switch (e.op) {
        case 'flip':
          if (at < b.length) b[at] = b[at]! ^ (1 << (e.byte & 7));
          break;
        case 'set':
          if (at < b.length) b[at] = e.byte;
          break;
        case 'insert':
          b = Buffer.concat([b.subarray(0, at), Buffer.alloc(1 + (e.length >> 4), e.byte), b.subarray(at)]);
          break;
        case 'delete':
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.length)]);
          break;
        case 'duplicate':
          b = Buffer.concat([b.subarray(0, at + e.length), b.subarray(at)]);
          break;
        case 'cut':
          b = b.subarray(0, at);
          break;
      }
    }
    return b;
  });
}

const randomBytes = (maxLength: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));
/** Any text, as read from a byte stream one byte per character (binkp arguments are latin1). */
const latin1 = (maxLength: number): fc.Arbitrary<string> => randomBytes(maxLength).map((b) => b.toString('latin1'));
/** Any Unicode text without lone surrogates (what a file name in UTF-8 can be). */
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unicode = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', maxLength }).filter((s) => !LONE_SURROGATE_RE.test(s));

// ---------------------------------------------------------------------------------------------
// Targets

const FRAME_SAMPLES: Buffer[] = [
  Buffer.concat([
    encodeCommand(Cmd.M_NUL, 'OPT CRAM-MD5-f0315b074d728d483d6887d0182fc328'),
    encodeCommand(Cmd.M_NUL, 'SYS hub'),
    encodeCommand(Cmd.M_ADR, ' 2:5020/1@fidonet'),
    encodeCommand(Cmd.M_OK, 'secure'),
  ]),
  Buffer.concat([
    encodeCommand(Cmd.M_FILE, 'a.pkt 10 1700000000 0'),
    encodeData(Buffer.from('0123456789')),
    encodeData(Buffer.alloc(0)),
    encodeCommand(Cmd.M_EOB),
    encodeCommand(Cmd.M_GOT, 'b.zip 3 1700000000'),
  ]),
  Buffer.from([0xff, 0xff, 0x00]),
  Buffer.from([0x80, 0x00, 0x7f, 0xff]),
];

type FrameEvent = string;

function decodeAll(chunks: Buffer[]): FrameEvent[] {
  const events: FrameEvent[] = [];
  let dataFrame = 0;
  const decoder = new FrameDecoder({
    command: (id, arg) => {
      // Declared limit: a command payload (id + argument) is at most MAX_FRAME_PAYLOAD bytes.
      expect(arg.length <= MAX_FRAME_PAYLOAD - 1, `command argument of ${arg.length} bytes`);
      events.push(`C${id}:${arg.toString('hex')}`);
    },
    data: (piece, end) => {
      expect(piece.length <= MAX_FRAME_PAYLOAD, `data piece of ${piece.length} bytes`);
      dataFrame += piece.length;
      expect(dataFrame <= MAX_FRAME_PAYLOAD, `data frame of ${dataFrame} bytes`);
      if (end) {
        events.push(`D${dataFrame}`);
        dataFrame = 0;
      }
    },
    emptyCommand: () => events.push('E'),
  });
  for (const c of chunks) decoder.push(c);
  events.push(decoder.idle ? 'idle' : 'partial');
  return events;
}

const frameDecoder: FuzzTarget<{ bytes: Buffer; cuts: number[] }> = {
  name: 'frame decoder',
  arbitrary: fc.record({
    bytes: fc.oneof(randomBytes(4096), mutated(FRAME_SAMPLES)),
    cuts: fc.array(fc.nat(), { maxLength: 8 }),
  }),
  check({ bytes, cuts }) {
    const whole = decodeAll([bytes]);
    const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const chunks: Buffer[] = [];
    let from = 0;
    for (const c of [...at, bytes.length]) {
      chunks.push(bytes.subarray(from, c));
      from = c;
    }
    const split = decodeAll(chunks);
    expect(JSON.stringify(whole) === JSON.stringify(split), 'a split of the input decodes differently from the whole');
  },
  typed: () => false,
};

const ARG_SAMPLES = [
  'a.pkt 10 1700000000 0',
  'file\\x20name.zip 123456 1700000000 -1 GZ',
  'b.tic 0 0',
  'x 9007199254740991 -5 0',
  'OPT NR CRAM-MD5-f0315b074d728d483d6887d0182fc328 EXTCMD',
  'SYS  My BBS',
].map((s) => Buffer.from(s, 'latin1'));

const commandParser: FuzzTarget<Buffer> = {
  name: 'command parser',
  arbitrary: fc.oneof(randomBytes(512), mutated(ARG_SAMPLES)),
  check(arg) {
    const text = argText(arg);
    for (let id = 0; id <= 11; id++) commandName(id);
    commandName(arg[0] ?? 0);
    const f = parseFileArgs(text);
    if (f) {
      expect(Number.isSafeInteger(f.size) && f.size >= 0, `M_FILE size ${f.size}`);
      expect(Number.isSafeInteger(f.mtime), `M_FILE time ${f.mtime}`);
      expect(Number.isSafeInteger(f.offset) && f.offset >= -1, `M_FILE offset ${f.offset}`);
      const again = parseFileArgs(formatFileArgs(f, f.offset));
      expect(again !== undefined && again.name === f.name && again.size === f.size && again.mtime === f.mtime && again.offset === f.offset,
        'M_FILE arguments do not survive format + parse');
    }
    const r = parseFileRef(text);
    if (r) {
      expect(Number.isSafeInteger(r.size) && r.size >= 0 && Number.isSafeInteger(r.mtime), `file reference ${r.size} ${r.mtime}`);
      const again = parseFileRef(formatFileRef(r));
      expect(again !== undefined && again.name === r.name, 'file reference name does not survive format + parse');
    }
    const nul = parseNul(text);
    const options = parseOptions(nul.value);
    const cram = cramChallenge(options);
    if (cram) expect(/^[0-9a-fA-F]+$/.test(cram.challenge), `CRAM challenge ${cram.challenge}`);
  },
  typed: () => false,
};

/** What sanitizeName promises: a plain file name that stays inside its directory. */
function checkSafeName(stored: string, from: string): void {
  expect(stored.length > 0, `empty name from ${shown(from)}`);
  expect(Buffer.byteLength(stored, 'utf8') <= MAX_NAME_BYTES, `name of ${Buffer.byteLength(stored)} bytes`);
  expect(!/[\u0000-\u001f\u007f-\u009f/\\:*?"<>|]/.test(stored), `unsafe character in ${shown(stored)}`);
  expect(!stored.startsWith('.'), `hidden or dot name ${shown(stored)}`);
  expect(basename(stored) === stored && join('/inbound', stored).startsWith('/inbound/'), `name leaves the directory: ${shown(stored)}`);
  expect(!LONE_SURROGATE_RE.test(stored), `lone surrogate in ${shown(stored)}`);
}

const nameUnescaping: FuzzTarget<{ wire: string } | { name: string }> = {
  name: 'name unescaping',
  arbitrary: fc.oneof(
    fc.record({ wire: fc.oneof(latin1(300), mutated(ARG_SAMPLES.slice(0, 2)).map((b) => b.toString('latin1'))) }),
    fc.record({ name: unicode(300) }),
  ),
  check(input) {
    if ('wire' in input) {
      const name = unescapeName(input.wire);
      checkSafeName(sanitizeName(name), input.wire);
      return;
    }
    const wire = escapeName(input.name);
    expect(/^[\x21-\x7e]*$/.test(wire), `escaped name has a space or non-ASCII: ${shown(wire)}`);
    expect(unescapeName(wire) === input.name, `escape + unescape changed ${shown(input.name)}`);
    checkSafeName(sanitizeName(input.name), input.name);
  },
  typed: () => false,
};

const ADDRESS_SAMPLES = ['2:5020/1@fidonet', '21:1/100.5@fsxnet', '1:2/3', ' 2:5020/1 2:5020/1.1@FidoNet 21:1/1'].map((s) => Buffer.from(s));

const addressParser: FuzzTarget<string> = {
  name: 'address parser',
  arbitrary: fc.oneof(
    latin1(80),
    mutated(ADDRESS_SAMPLES).map((b) => b.toString('latin1')),
    fc
      .tuple(fc.integer({ min: -5, max: 70000 }), fc.integer({ min: -5, max: 70000 }), fc.integer({ min: -5, max: 70000 }), fc.integer({ min: -5, max: 70000 }), fc.stringMatching(/^[A-Za-z0-9._-]{0,70}$/))
      .map(([z, n, f, p, d]) => `${z}:${n}/${f}.${p}@${d}`),
  ),
  check(text) {
    const a = tryParseAddress(text);
    if (a) {
      expect(a.zone >= 1 && a.zone <= 32767 && a.net >= 1 && a.net <= 32767, `zone/net out of range: ${formatAddress(a)}`);
      expect(a.node >= 0 && a.node <= 32767 && a.point >= 0 && a.point <= 32767, `node/point out of range: ${formatAddress(a)}`);
      const again = tryParseAddress(formatAddress(a));
      expect(again !== undefined && formatAddress(again) === formatAddress(a), `${formatAddress(a)} does not survive format + parse`);
    }
    const list = parseAddressList(text);
    const tokens = text.split(/\s+/).filter((t) => t.length > 0).length;
    expect(list.addresses.length + list.bad.length === tokens, 'M_ADR tokens lost');
  },
  typed: () => false,
};

const CONFIG_SAMPLE = [
  '; fnpoll test config',
  '[node]',
  'address  = 2:5020/9999@fidonet',
  'aka      = 21:1/999@fsxnet',
  'system   = "My BBS ; not a comment"',
  'outbound = /var/spool/ftn/outbound',
  'inbound  = /var/spool/ftn/inbound',
  '',
  '[poller]',
  'state_file = /var/lib/fnpoll/state.json',
  'idle_timeout = 5m',
  'max_connections = 4',
  'minfree = 10M',
  'binkd_try_files = yes',
  '',
  '[fidonet]',
  'hub_address  = 2:5020/1@fidonet',
  'binkp        = [2001:db8::1]:24554',
  'password     = secret # comment',
  'poll_frequency = 1h',
  '',
].join('\n');
const CONFIG_SAMPLES = [Buffer.from(CONFIG_SAMPLE), Buffer.from(CONFIG_SAMPLE.replace(/\n/g, '\r\n')), Buffer.from(`\ufeff${CONFIG_SAMPLE}`)];

const iniParser: FuzzTarget<string> = {
  name: 'INI parser',
  arbitrary: fc.oneof(unicode(600), mutated(CONFIG_SAMPLES).map((b) => b.toString('utf8'))),
  check(text) {
    const doc = parseIni(text, 'fnpoll.ini');
    // As the user sees them: through the ConfigError that reports them.
    for (const p of new ConfigError(doc.problems).problems) expect(ONE_LINE_RE.test(p), `INI problem is not one clean line: ${shown(p)}`);
    for (const s of doc.sections) for (const e of s.entries) expect(e.key === e.key.toLowerCase() && e.line >= 1, `entry ${shown(e.key)}`);
  },
  typed: () => false,
};

let fuzzDir = '';
let fileNo = 0;

const configLoader: FuzzTarget<Buffer> = {
  name: 'config loader',
  arbitrary: fc.oneof({ weight: 4, arbitrary: mutated(CONFIG_SAMPLES) }, { weight: 1, arbitrary: randomBytes(600) }),
  async check(bytes) {
    // A new name per case: truncating a file just written makes ext4 flush it (auto_da_alloc),
    // which cost 2.5 ms a case.
    const file = join(fuzzDir, `c${fileNo++}.ini`);
    writeFileSync(file, bytes);
    try {
      const config = await loadConfig(file);
      expect(config.hubs.length >= 0 && config.node.outbound.length > 0, 'loaded config without an outbound');
      for (const w of config.warnings) expect(ONE_LINE_RE.test(w), `config warning is not one clean line: ${shown(w)}`);
    } catch (err) {
      if (err instanceof ConfigError) {
        for (const p of err.problems) expect(ONE_LINE_RE.test(p), `config problem is not one clean line: ${shown(p)}`);
      }
      throw err;
    } finally {
      rmSync(file, { force: true });
    }
  },
  typed: (err) => err instanceof ConfigError,
};

function sampleState(): State {
  const state = emptyState();
  const h = emptyHubState();
  h.lastAttempt = Date.UTC(2026, 0, 1);
  h.lastSuccess = Date.UTC(2025, 11, 31);
  h.lastResult = { ok: false, kind: 'timeout', message: 'no answer', remote: 'busy' };
  h.consecutiveFailures = 2;
  h.nextAttempt = Date.UTC(2026, 0, 1, 1);
  h.history = [{ startedAt: Date.UTC(2026, 0, 1), durationMs: 1200, ok: false, kind: 'timeout', filesSent: 1, filesReceived: 0, bytesSent: 10, bytesReceived: 0 }];
  state.hubs.fidonet = h;
  state.hubs['other hub'] = emptyHubState();
  return state;
}
const STATE_SAMPLES = [Buffer.from(serializeState(sampleState())), Buffer.from(`\ufeff${serializeState(sampleState())}`)];

const stateLoader: FuzzTarget<Buffer> = {
  name: 'state loader',
  arbitrary: fc.oneof(
    { weight: 4, arbitrary: mutated(STATE_SAMPLES) },
    { weight: 1, arbitrary: fc.json().map((j) => Buffer.from(j)) },
    { weight: 1, arbitrary: randomBytes(600) },
  ),
  async check(bytes) {
    // In memory first (what every read-only command does), then the real load with its quarantine.
    let parsed: State | undefined;
    try {
      parsed = parseState(bytes.toString('utf8').replace(/^\ufeff/, ''));
    } catch (err) {
      if (!(err instanceof InvalidState)) throw err;
      expect(ONE_LINE_RE.test(err.message), `state problem is not one clean line: ${shown(err.message)}`);
    }
    const dir = join(fuzzDir, `s${fileNo++}`);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'state.json');
    writeFileSync(file, bytes);
    const warnings: string[] = [];
    const state = await loadState(file, { now: () => Date.UTC(2026, 0, 2), warn: (m) => warnings.push(m) });
    const left = readdirSync(dir);
    rmSync(dir, { recursive: true, force: true });
    expect(warnings.length <= 1, `${warnings.length} warnings for one file`);
    if (parsed) expect(warnings.length === 0 && serializeState(state) === serializeState(parsed), 'a valid file was not read as parsed');
    else expect(warnings.length === 1 && left.length === 1 && left[0]!.startsWith('state.json.corrupt-'), `invalid file not moved aside (left: ${left.join(' ')})`);
    // Whatever was loaded saves and reloads the same: no invalid state gets into the next run.
    expect(serializeState(parseState(serializeState(state))) === serializeState(state), 'loaded state does not survive save + load');
  },
  typed: (err) => err instanceof FnpollError,
};

/** The size limits of the text loaders, on sparse files: refused before any read, never buffered. */
const loaderLimits: FuzzTarget<{ size: number; limit: 'config' | 'state' }> = {
  name: 'loader size limits',
  maxCases: 3_000,
  arbitrary: fc.record({
    size: fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: MAX_CONFIG_BYTES - 2, max: MAX_CONFIG_BYTES + 2 }), fc.integer({ min: 0, max: 2 ** 40 })),
    limit: fc.constantFrom('config' as const, 'state' as const),
  }),
  check({ size, limit }) {
    const max = limit === 'config' ? MAX_CONFIG_BYTES : MAX_STATE_BYTES;
    const file = join(fuzzDir, `sparse${fileNo++}`);
    writeFileSync(file, '');
    truncateSync(file, size);
    try {
      checkLimit(file, size, max);
    } finally {
      rmSync(file, { force: true });
    }
  },
  typed: () => false,
};

function checkLimit(file: string, size: number, max: number): void {
  {
    // Only what may be read is ever read: a too-large file never reaches a buffer.
    if (size > max) {
      const before = process.memoryUsage().arrayBuffers;
      try {
        readBoundedSync(file, max);
      } catch (err) {
        expect(err instanceof NotTextFileError, `size ${size}: ${String(err)}`);
        expect(process.memoryUsage().arrayBuffers - before < max, `size ${size}: buffered before refusing`);
        return;
      }
      throw new Violation(`a file of ${size} bytes was read with a limit of ${max}`);
    }
    expect(readBoundedSync(file, max).length === size, `size ${size} read short`);
  }
}


// FTS-5000 nodelist lines, with the flags the host comes from (IBN/INA, an IP in the phone field,
// a host in the system name), and the keywords that stop a call.
const NODELIST_SAMPLE = [
  ';A FidoNet Nodelist for Friday, December 4, 2026 -- Day number 338 : 12345',
  'Zone,2,Europe,Somewhere,Sysop_Name,-Unpublished-,300,CM,IBN,INA:zone2.example',
  'Region,50,Russia,Moscow,Some_One,-Unpublished-,300,CM,XA,IBN',
  'Host,5020,Moscow_Net,Moscow,Other_One,7-495-000-0000,300,CM,IBN:host.example:24555',
  ',1,Hub_One,Moscow,A_Sysop,000-000-0000,300,CM,IBN,INA:hub1.example,IBN:[2001:db8::1]:24554',
  'Hub,2,bbs.example,City,B_Sysop,192.0.2.7,300,IBN',
  'Pvt,3,Private,City,C_Sysop,-Unpublished-,300,CM',
  'Down,4,Gone,City,D_Sysop,-Unpublished-,300,IBN:down.example',
  'Hold,5,Away,City,E_Sysop,-Unpublished-,300,IBN:hold.example',
  'Boss,2:5020/1',
  'Point,7,A_Point,City,F_Sysop,-Unpublished-,300,IBN:point.example',
  '\x1a',
].join('\r\n');
const NODELIST_SAMPLES = [Buffer.from(NODELIST_SAMPLE, 'latin1')];

const nodelistParser: FuzzTarget<Buffer> = {
  name: 'nodelist parser',
  arbitrary: fc.oneof(randomBytes(2048), mutated(NODELIST_SAMPLES)),
  check(bytes) {
    const text = bytes.toString('latin1');
    for (const [key, [offset, line]] of indexText(text)) {
      expect(offset >= 0 && offset <= text.length, `index offset ${offset} outside the text`);
      const end = text.indexOf('\n', offset);
      const entry = parseLine(text.slice(offset, end === -1 ? undefined : end), line);
      expect(entry !== undefined, `the index names ${shown(key)} at a line that does not parse`);
      const address = tryParseAddress(key);
      expect(address !== undefined, `index key ${shown(key)} is not an address`);
      const answer = judge(entry!, address!, '/lists/NODELIST.338');
      if (answer.ok) {
        for (const h of answer.hosts) {
          // What dial() is handed: a host without spaces or controls, a port in range.
          expect(h.host.length > 0 && !/[\s\u0000-\u001f\u007f-\u009f]/.test(h.host), `host ${shown(h.host)} from ${shown(key)}`);
          expect(h.port === undefined || (Number.isInteger(h.port) && h.port >= 1 && h.port <= 65535), `port ${h.port} from ${shown(key)}`);
        }
      } else {
        expect(ONE_LINE_RE.test(answer.message), `nodelist message is not one clean line: ${shown(answer.message)}`);
      }
    }
  },
  typed: () => false,
};

/** Every target, in the order they run. */
export const TARGETS: FuzzTarget<never>[] = [
  frameDecoder,
  commandParser,
  nameUnescaping,
  addressParser,
  iniParser,
  configLoader,
  stateLoader,
  loaderLimits,
  nodelistParser,
] as FuzzTarget<never>[];

// ---------------------------------------------------------------------------------------------
// Running

export interface TargetResult {
  name: string;
  cases: number;
  failures: number;
  throws: number;
  hangs: number;
  /** The shrunk counterexample and what happened, when a case failed. */
  problem?: string;
  ms: number;
}

export async function fuzzTarget(target: FuzzTarget<never>, cases: number, seed: number): Promise<TargetResult> {
  const started = performance.now();
  const guarded = async (input: never): Promise<void> => {
    const t0 = performance.now();
    try {
      await target.check(input);
    } catch (err) {
      if (err instanceof Violation || target.typed(err)) {
        if (err instanceof Violation) throw err;
      } else {
        throw new UntypedThrow(`${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      }
    }
    const ms = performance.now() - t0;
    if (ms > HANG_MS) throw new Hang(`one case took ${Math.round(ms)} ms`);
  };
  target.setup?.();
  let details: fc.RunDetails<[never]>;
  try {
    details = await fc.check(fc.asyncProperty(target.arbitrary, guarded), { numRuns: Math.min(cases, target.maxCases ?? cases), seed });
  } finally {
    target.teardown?.();
  }
  const result: TargetResult = { name: target.name, cases: details.numRuns, failures: 0, throws: 0, hangs: 0, ms: performance.now() - started };
  if (details.failed) {
    const err = details.errorInstance;
    if (err instanceof UntypedThrow) result.throws = 1;
    else if (err instanceof Hang) result.hangs = 1;
    else result.failures = 1;
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    result.problem = `${shown(what, 400)} on input ${shown(details.counterexample?.[0], 400)} (seed ${seed}, path ${details.counterexamplePath ?? '-'})`;
  }
  return result;
}

/** A RAM disk when there is one: the loaders are fuzzed for their parsing, not for the disk's speed. */
function scratchRoot(): string {
  try {
    accessSync('/dev/shm', fsConstants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

export function fuzzSeed(): number {
  const env = process.env['FNPOLL_FUZZ_SEED'];
  return env && /^-?\d+$/.test(env) ? Number(env) : DEFAULT_SEED;
}

/** Run every target with `cases` cases each; one line per target. */
export async function fuzzAll(cases: number, seed = fuzzSeed(), report: (line: string) => void = () => undefined): Promise<TargetResult[]> {
  fuzzDir = mkdtempSync(join(scratchRoot(), 'fnpoll-fuzz-'));
  try {
    const results: TargetResult[] = [];
    for (const t of TARGETS) {
      const r = await fuzzTarget(t, cases, seed);
      report(`${r.name.padEnd(20)} ${String(r.cases).padStart(7)} cases  ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.problem ? `FAILED: ${r.problem}` : 'ok'}`);
      results.push(r);
    }
    return results;
  } finally {
    rmSync(fuzzDir, { recursive: true, force: true });
  }
}

export async function run(size: Size): Promise<Figures> {
  const seed = fuzzSeed();
  say(SUITE, `${TARGETS.length} targets, up to ${CASES[size]} cases each, seed ${seed} (FNPOLL_FUZZ_SEED replays)`);
  const results = await fuzzAll(CASES[size], seed, (line) => say(SUITE, line));
  const sum = (k: 'cases' | 'failures' | 'throws' | 'hangs'): number => results.reduce((n, r) => n + r[k], 0);
  return { cases: sum('cases'), targets: results.length, failures: sum('failures'), throws: sum('throws'), hangs: sum('hangs') };
}
