/**
 * The hostile hub suite: the real CLI (`fnpoll now`) against a hub that lies, floods, trickles,
 * resets and sends names and numbers no honest hub sends (test/helpers/hostilehub.ts). Then, with
 * no cleanup in between, a run against a well-behaved hub (the scripted hub) must work.
 *
 * For every case:
 * - the hostile run ends within the case's time (else `hangs`), with the expected exit code;
 * - nothing is written outside the inbounds (the node's tree is compared before and after), and
 *   nothing queued is deleted unless the hub really acknowledged it;
 * - no stack trace and no raw control character (ESC, CR, BEL, C1…) reaches stdout, stderr or
 *   the log;
 * - the state file parses (`invalidStates`) and records the failure; no .bsy/.csy is left
 *   (`staleFlags`);
 * - the next run against a good hub exits 0, receives the hub's file intact, and delivers what was
 *   queued (`lost`, `corrupt`).
 *
 * `npm run harden` runs every case; `npm test` runs the cases marked `small`
 * (test/unit/harden/hostile.test.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Cmd, escapeName } from '../../src/binkp/commands.js';
import { encodeCommand } from '../../src/binkp/frame.js';
import { ScriptedHub, type HubFile } from '../../src/demo/hub.js';
import type { FailureKind } from '../../src/errors.js';
import { parseState } from '../../src/poll/state.js';
import { HostileHub, defaultGreeting, type HostileConn, type HostileScript } from '../helpers/hostilehub.js';
import { TestNode, pseudoRandomBytes, type RunResult } from '../helpers/node.js';
import { say, shown, type Figures, type Size } from './lib.js';

const SUITE = 'hostile';
const HUB = '2:5020/1@fidonet';
/** The hub's flow file in our outbound (2:5020/1 -> 139c0001). */
const FLOW = '139c0001.flo';
const MTIME = 1_700_000_000;
/** Short timeouts keep the suite fast; each case's own bound is below. */
const POLLER = { connect_timeout: '2s', idle_timeout: '2s', session_timeout: '8s', run_timeout: '30s', shutdown_grace: '1s' };
/** Startup and exit of the CLI on a busy 2-core machine, on top of a case's own bound. */
const PROCESS_SLACK_MS = 8_000;

const ESC_TEXT = '\x1b[2J\x1b]0;owned\x07\x1b[31mred\r\nfake: log line\b\b\x9b1m\x00end';
/** A raw control character that must never reach a terminal or log (\n and \t aside). */
const RAW_CONTROL_RE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const STACK_RE = /\n\s+at .+[:(]\d+:\d+\)?/;

export interface HostileCase {
  name: string;
  /** In the small set that `npm test` runs. */
  small?: boolean;
  script: (c: CaseContext) => HostileScript;
  /** Files queued for the hub before the hostile run: name -> content. */
  queue?: Record<string, Buffer>;
  expect: { status: 'ok' } | { status: 'failed'; kind?: FailureKind };
  /** The hostile run must end within this (plus process start-up). */
  boundMs: number;
  /** The hub acknowledged queued files for real: they may leave the outbound. */
  mayDeliver?: boolean;
  /** Files the good hub offers in the follow-up run (besides its own good.txt). */
  goodFiles?: HubFile[];
  /** Case-specific checks after the hostile run; returns problems. */
  check?: (c: CaseContext) => string[];
}

export interface CaseContext {
  node: TestNode;
  hub?: HostileHub;
  result?: RunResult;
}

function file(name: string, data: Buffer | string, mtime = MTIME): HubFile {
  return { name, data: Buffer.from(data), mtime };
}

/** Offer `files` after login, each in one data frame, then M_EOB. */
function sendFiles(files: HubFile[]): (c: HostileConn) => void {
  return (c) => {
    for (const f of files) {
      c.command(Cmd.M_FILE, `${escapeName(f.name)} ${f.data.length} ${f.mtime} 0`);
      for (let at = 0; at < f.data.length || at === 0; at += 32767) {
        c.data(f.data.subarray(at, at + 32767));
        if (f.data.length === 0) break;
      }
    }
    c.command(Cmd.M_EOB);
  };
}

/** Regular files directly in a directory, name -> content. */
function filesIn(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) if (e.isFile()) out.set(e.name, readFileSync(join(dir, e.name)));
  return out;
}

/** Contents received in the (insecure: no password) inbound, as a multiset of hex digests. */
function inboundDigests(node: TestNode): string[] {
  return [...filesIn(node.insecureInbound).values()].map(sha).sort();
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function expectReceived(node: TestNode, files: HubFile[]): string[] {
  const have = inboundDigests(node);
  const want = files.map((f) => sha(f.data)).sort();
  return JSON.stringify(have) === JSON.stringify(want) ? [] : [`inbound holds ${have.length} files, not the ${want.length} sent (by content)`];
}

const QUEUED = { 'send.bin': pseudoRandomBytes(200_000, 7) };
/** The file the "reset mid-file, hub to us" case breaks off, and the good hub sends whole. */
const RESUMED = file('resume.bin', pseudoRandomBytes(100_000, 11));

export const CASES: HostileCase[] = [
  {
    name: 'control characters and ESC sequences in every text field',
    small: true,
    script: () => ({
      greeting: [...['SYS', 'ZYZ', 'LOC', 'NDL', 'TIME'].map((k) => `${k} ${ESC_TEXT}`), `VER hostile${ESC_TEXT}/1.0 binkp/1.0`, `OPT ${ESC_TEXT}`, `X-${ESC_TEXT} ${ESC_TEXT}`],
      adr: ` ${HUB} ${ESC_TEXT} 2:5020/1.\x1b[1m`,
      afterLogin: (c) => {
        c.command(Cmd.M_FILE, `${escapeName(`esc${ESC_TEXT}.txt`)} 3 ${MTIME} 0`);
        c.data(Buffer.from('abc'));
        c.command(Cmd.M_NUL, `OPT ${ESC_TEXT}`);
        c.later(200, () => c.command(Cmd.M_ERR, `hub failure ${ESC_TEXT}`));
      },
    }),
    expect: { status: 'failed' },
    boundMs: 5_000,
  },
  {
    name: 'a name of 10 000 characters',
    script: () => ({ afterLogin: sendFiles([file(`${'n'.repeat(10_000)}.txt`, 'long name')]) }),
    expect: { status: 'ok' },
    boundMs: 5_000,
    check: ({ node }) => {
      const names = [...filesIn(node.insecureInbound).keys()];
      return names.length === 1 && Buffer.byteLength(names[0]!) <= 255 && names[0]!.endsWith('.txt') ? [] : [`stored as ${shown(names)}`];
    },
  },
  {
    name: 'names of only dots or spaces',
    script: () => ({ afterLogin: sendFiles(['.', '..', '...', ' ', '   ', '. .'].map((n, i) => file(n, `dots-${i}`))) }),
    expect: { status: 'ok' },
    boundMs: 5_000,
    check: ({ node }) => [
      ...expectReceived(node, ['.', '..', '...', ' ', '   ', '. .'].map((n, i) => file(n, `dots-${i}`))),
      ...[...filesIn(node.insecureInbound).keys()].filter((n) => n.startsWith('.')).map((n) => `hidden or dot name ${shown(n)}`),
    ],
  },
  {
    name: 'names differing only by case',
    script: () => ({ afterLogin: sendFiles(['README.TXT', 'readme.txt', 'ReadMe.Txt'].map((n, i) => file(n, `case${i}`))) }),
    expect: { status: 'ok' },
    boundMs: 5_000,
    check: ({ node }) => expectReceived(node, ['README.TXT', 'readme.txt', 'ReadMe.Txt'].map((n, i) => file(n, `case${i}`))),
  },
  {
    name: 'names colliding after sanitising (x:y, x_y, x*y, x|y of one size and time)',
    small: true,
    script: () => ({ afterLogin: sendFiles(['x:y', 'x_y', 'x*y', 'x|y'].map((n, i) => file(n, `same-size-${i}`))) }),
    expect: { status: 'ok' },
    boundMs: 5_000,
    check: ({ node }) => expectReceived(node, ['x:y', 'x_y', 'x*y', 'x|y'].map((n, i) => file(n, `same-size-${i}`))),
  },
  {
    name: 'a size above 2^53',
    small: true,
    script: () => ({
      afterLogin: (c) => {
        c.command(Cmd.M_FILE, `big.bin 9007199254740993 ${MTIME} 0`);
        c.data(Buffer.from('x'));
      },
    }),
    expect: { status: 'failed', kind: 'protocol' },
    boundMs: 5_000,
    check: ({ node }) => expectReceived(node, []),
  },
  {
    name: 'a negative offset',
    script: () => ({
      afterLogin: (c) => {
        c.command(Cmd.M_FILE, `neg.bin 10 ${MTIME} -5`);
        c.data(Buffer.from('0123456789'));
      },
    }),
    expect: { status: 'failed', kind: 'protocol' },
    boundMs: 5_000,
    check: ({ node }) => expectReceived(node, []),
  },
  {
    name: 'M_GET past the end of our file',
    queue: QUEUED,
    script: () => ({
      onCommand: (c, id, arg) => {
        if (id !== Cmd.M_FILE) return;
        const [name, size, time] = arg.split(' ');
        c.command(Cmd.M_GET, `${name} ${size} ${time} ${Number(size) * 10 + 1}`);
      },
    }),
    expect: { status: 'failed', kind: 'protocol' },
    boundMs: 6_000,
  },
  {
    name: 'M_GOT for files never sent',
    queue: QUEUED,
    script: () => ({
      afterLogin: (c) => {
        c.command(Cmd.M_GOT, `ghost.pkt 10 ${MTIME}`);
        c.command(Cmd.M_GOT, `send.bin 1 ${MTIME}`);
        c.command(Cmd.M_GOT, `..\\x2f..\\x2fetc\\x2fpasswd 0 0`);
        c.command(Cmd.M_EOB);
      },
    }),
    // Ghost M_GOTs are ignored with a warning; our file is never acknowledged, so idle_timeout.
    expect: { status: 'failed', kind: 'timeout' },
    boundMs: 6_000,
  },
  {
    // binkd ignores a data block outside a file ("ignoring data block"), and so do we: the
    // stray bytes must go nowhere, and the file that follows must arrive intact.
    name: 'data before M_FILE',
    small: true,
    script: () => ({
      afterLogin: (c) => {
        c.data(Buffer.from('stray data'));
        c.data(Buffer.alloc(0));
        sendFiles([file('after-stray.txt', 'the real file')])(c);
      },
    }),
    expect: { status: 'ok' },
    boundMs: 5_000,
    check: ({ node }) => expectReceived(node, [file('after-stray.txt', 'the real file')]),
  },
  {
    name: 'trickling one byte a second mid-file',
    script: () => ({
      afterLogin: (c) => {
        c.command(Cmd.M_FILE, `slow.bin 100 ${MTIME} 0`);
        // One data frame of 100 bytes, written a byte a second: progress, but never done.
        c.raw(Buffer.from([0x00, 100]));
        const drip = (): void => {
          c.raw(Buffer.from('x'));
          c.later(1_000, drip);
        };
        drip();
      },
    }),
    expect: { status: 'failed', kind: 'timeout' },
    boundMs: 12_000,
  },
  {
    name: 'trickling the greeting one byte a second',
    script: () => ({
      onConnect: (c) => {
        const bytes = Buffer.concat([...defaultGreeting().map((l) => encodeCommand(Cmd.M_NUL, l)), encodeCommand(Cmd.M_ADR, ` ${HUB}`)]);
        let at = 0;
        const drip = (): void => {
          if (at < bytes.length) c.raw(bytes.subarray(at, ++at));
          c.later(1_000, drip);
        };
        drip();
        return true;
      },
    }),
    expect: { status: 'failed', kind: 'timeout' },
    boundMs: 12_000,
  },
  {
    name: 'an M_NUL flood',
    script: () => ({
      afterLogin: (c) => {
        const burst = Buffer.concat(Array.from({ length: 200 }, (_, i) => encodeCommand(Cmd.M_NUL, `TRF ${'x'.repeat(1000 + i)}`)));
        const flood = (): void => {
          // Write only as fast as the caller reads: the point is its memory, not ours.
          if (c.socket.writableLength < 1 << 20) c.raw(burst);
          c.later(5, flood);
        };
        flood();
      },
    }),
    expect: { status: 'failed', kind: 'timeout' },
    boundMs: 8_000,
  },
  {
    name: 'close during M_EOB',
    small: true,
    queue: { 'eob.bin': pseudoRandomBytes(5_000, 3) },
    mayDeliver: true,
    script: () => {
      let offered = '';
      return {
        onCommand: (c, id, arg) => {
          if (id === Cmd.M_FILE) offered = arg.split(' ').slice(0, 3).join(' ');
          if (id === Cmd.M_EOB) c.end();
        },
        onData: (c) => {
          if (c.dataBytes >= 5_000 && offered) {
            c.command(Cmd.M_GOT, offered);
            offered = '';
          }
        },
      };
    },
    expect: { status: 'failed' },
    boundMs: 6_000,
  },
  {
    name: 'reset mid-file, hub to us',
    small: true,
    script: () => ({
      afterLogin: (c) => {
        const f = RESUMED;
        c.command(Cmd.M_FILE, `${f.name} ${f.data.length} ${f.mtime} 0`);
        c.data(f.data.subarray(0, 30_000));
        c.data(f.data.subarray(30_000, 40_000));
        c.later(100, () => c.reset());
      },
    }),
    expect: { status: 'failed' },
    boundMs: 5_000,
    goodFiles: [RESUMED],
    check: ({ node }) => {
      const parts = [...filesIn(node.tempInbound).entries()].filter(([n]) => n.endsWith('.part'));
      return parts.length === 1 && parts[0]![1].length <= 40_000 ? [] : [`expected one partial of at most 40000 bytes, found ${parts.map(([n, b]) => `${n}:${b.length}`).join(' ') || 'none'}`];
    },
  },
  {
    name: 'reset mid-file, us to hub',
    small: true,
    queue: QUEUED,
    script: () => ({
      onData: (c) => {
        if (c.dataBytes >= 50_000) c.reset();
      },
    }),
    expect: { status: 'failed' },
    boundMs: 5_000,
  },
];


// ---------------------------------------------------------------------------------------------
// Running one case

export interface CaseOutcome {
  name: string;
  /** What did not hold; empty when the case passed. */
  problems: string[];
  hang: boolean;
  staleFlags: number;
  invalidState: boolean;
  lost: number;
  duplicated: number;
  corrupt: number;
  filesChecked: number;
  ms: number;
}

/** Everything under the node's directory except the inbounds, the state and the log: path -> size. */
function treeOutsideInbounds(node: TestNode): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const rel = relative(node.dir, p);
      // The log may rotate (rotating-file-stream keeps `.fnpoll.log.history` beside it).
      if (rel === 'inbound' || rel.startsWith('state.json') || /^\.?fnpoll\.log/.test(rel)) continue;
      if (e.isDirectory()) walk(p);
      else out.set(rel, statSync(p).size);
    }
  };
  walk(node.dir);
  return out;
}

function flagsLeft(node: TestNode): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (/\.(bsy|csy)$/i.test(e.name)) found.push(relative(node.dir, join(dir, e.name)));
    }
  };
  walk(node.outbound);
  return found;
}

/** Run `fnpoll now` with a kill timer; `killed` when it had to be stopped. */
async function runNow(node: TestNode, boundMs: number): Promise<{ result: RunResult; killed: boolean; ms: number }> {
  const started = Date.now();
  const { child, done } = node.spawn(['now']);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, boundMs + PROCESS_SLACK_MS);
  const result = await done;
  clearTimeout(timer);
  return { result, killed, ms: Date.now() - started };
}

/** Problems with what a run printed and logged: stack traces, raw control characters. */
function outputProblems(result: RunResult, log: string, what: string): string[] {
  const problems: string[] = [];
  for (const [stream, text] of [['stdout', result.stdout], ['stderr', result.stderr], ['log', log]] as const) {
    if (STACK_RE.test(text)) problems.push(`${what}: stack trace on ${stream}`);
    const m = RAW_CONTROL_RE.exec(text);
    if (m) problems.push(`${what}: raw control character 0x${m[0].charCodeAt(0).toString(16)} on ${stream} near ${shown(text.slice(Math.max(0, m.index - 40), m.index + 20))}`);
  }
  return problems;
}

interface StateCheck {
  invalid: boolean;
  problems: string[];
}

function checkState(node: TestNode, want: HostileCase['expect'], what: string): StateCheck {
  let text: string;
  try {
    text = readFileSync(node.stateFile, 'utf8');
  } catch {
    return { invalid: true, problems: [`${what}: no state file`] };
  }
  let hub;
  try {
    hub = Object.values(parseState(text).hubs)[0];
  } catch (err) {
    return { invalid: true, problems: [`${what}: state does not parse: ${shown(String(err))}`] };
  }
  const last = hub?.lastResult;
  if (!last) return { invalid: false, problems: [`${what}: no result recorded in state`] };
  if (want.status === 'ok' && !last.ok) return { invalid: false, problems: [`${what}: state records a failure (${last.kind}: ${shown(last.message)})`] };
  if (want.status === 'failed') {
    if (last.ok) return { invalid: false, problems: [`${what}: state records success, expected a failure`] };
    if (want.kind && last.kind !== want.kind) return { invalid: false, problems: [`${what}: state records ${last.kind} (${shown(last.message)}), expected ${want.kind}`] };
  }
  return { invalid: false, problems: [] };
}

export async function runCase(c: HostileCase): Promise<CaseOutcome> {
  const started = Date.now();
  const out: CaseOutcome = { name: c.name, problems: [], hang: false, staleFlags: 0, invalidState: false, lost: 0, duplicated: 0, corrupt: 0, filesChecked: 0, ms: 0 };
  const ctx: CaseContext = {} as CaseContext;
  const hostile = new HostileHub(HUB, c.script(ctx));
  const port = await hostile.listen();
  ctx.hub = hostile;
  const node = await TestNode.create({ hubs: [{ name: 'hub', address: HUB, port }], poller: POLLER });
  ctx.node = node;
  let good: ScriptedHub | undefined;
  try {
    const queued = Object.entries(c.queue ?? {});
    const lines: string[] = [];
    for (const [name, data] of queued) lines.push(`^${await node.file(name, data, MTIME)}`);
    if (lines.length) await node.outboundFile(FLOW, `${lines.join('\n')}\n`);
    const before = treeOutsideInbounds(node);

    // The hostile run.
    const h = await runNow(node, c.boundMs);
    ctx.result = h.result;
    await hostile.close();
    if (h.killed) {
      out.hang = true;
      out.problems.push(`did not end within ${c.boundMs + PROCESS_SLACK_MS} ms`);
    }
    const wantCode = c.expect.status === 'ok' ? 0 : 1;
    if (!h.killed && h.result.code !== wantCode) out.problems.push(`exit ${h.result.code}, expected ${wantCode}: ${shown(h.result.stderr)}`);
    out.problems.push(...outputProblems(h.result, await node.log(), 'hostile run'));
    const st = checkState(node, c.expect, 'hostile run');
    out.invalidState ||= st.invalid;
    out.problems.push(...st.problems);
    const flags = flagsLeft(node);
    out.staleFlags += flags.length;
    if (flags.length) out.problems.push(`flags left: ${flags.join(' ')}`);
    const after = treeOutsideInbounds(node);
    for (const [p, size] of after) {
      if (before.get(p) !== size) out.problems.push(`hostile run wrote outside the inbounds: ${shown(p)}`);
    }
    for (const p of before.keys()) {
      if (!after.has(p) && !c.mayDeliver) out.problems.push(`hostile run removed ${shown(p)} without a delivery`);
    }
    out.problems.push(...(c.check?.(ctx) ?? []));

    // A `^` file leaves the outbound only after its M_GOT: gone now = delivered to the hostile hub.
    const deliveredToHostile = new Set(queued.filter(([name]) => !existsSync(join(node.files, name))).map(([name]) => name));

    // The next run, against a good hub, with nothing cleaned up by hand.
    const goodFile = file('good.txt', `good hub after: ${c.name}`);
    const hubFiles = [goodFile, ...(c.goodFiles ?? [])];
    good = new ScriptedHub({ addresses: [HUB], files: hubFiles.map((f) => ({ ...f })) });
    const goodPort = await good.listen();
    await node.writeConfig({ hubs: [{ name: 'hub', address: HUB, port: goodPort }], poller: POLLER });
    const inboundBefore = inboundDigests(node);
    const g = await runNow(node, 15_000);
    if (g.killed) {
      out.hang = true;
      out.problems.push('the run against a good hub did not end');
    }
    if (g.result.code !== 0) out.problems.push(`the run against a good hub exited ${g.result.code}: ${shown(g.result.stderr)}`);
    out.problems.push(...outputProblems(g.result, '', 'good run'));
    const gst = checkState(node, { status: 'ok' }, 'good run');
    out.invalidState ||= gst.invalid;
    out.problems.push(...gst.problems);
    const goodFlags = flagsLeft(node);
    out.staleFlags += goodFlags.length;
    // What the good hub sent: each must now be in the inbound, intact.
    const have = inboundDigests(node);
    for (const f of hubFiles) {
      out.filesChecked++;
      if (!have.includes(sha(f.data)) || (inboundBefore.includes(sha(f.data)) && f !== goodFile)) {
        const sameName = [...filesIn(node.insecureInbound).entries()].some(([n]) => n === f.name);
        if (sameName) out.corrupt++;
        else out.lost++;
        out.problems.push(`${f.name} from the good hub ${sameName ? 'arrived corrupt' : 'did not arrive'}`);
      }
    }
    // What we had queued: delivered to one of the hubs, intact, exactly once over both.
    for (const [name, data] of queued) {
      out.filesChecked++;
      const atGood = good.received.filter((r) => r.name === name);
      const times = atGood.length + (deliveredToHostile.has(name) ? 1 : 0);
      if (times === 0) {
        out.lost++;
        out.problems.push(`queued ${name} never reached a hub`);
      } else if (times > 1) {
        out.duplicated += times - 1;
        out.problems.push(`queued ${name} was delivered ${times} times`);
      } else if (atGood.some((r) => !r.data.equals(data.subarray(data.length - r.data.length)))) {
        out.corrupt++;
        out.problems.push(`queued ${name} arrived corrupt`);
      }
    }
  } finally {
    await hostile.close();
    await good?.close();
    await node.remove();
  }
  out.ms = Date.now() - started;
  return out;
}

export async function runCases(cases: readonly HostileCase[], report: (line: string) => void = () => undefined): Promise<CaseOutcome[]> {
  const outcomes: CaseOutcome[] = [];
  for (const c of cases) {
    const o = await runCase(c);
    report(`${o.problems.length ? 'FAILED' : 'ok    '} ${(o.ms / 1000).toFixed(1).padStart(5)} s  ${c.name}${o.problems.length ? `: ${o.problems.join('; ')}` : ''}`);
    outcomes.push(o);
  }
  return outcomes;
}

export function smallCases(): HostileCase[] {
  return CASES.filter((c) => c.small);
}

export async function run(size: Size): Promise<Figures> {
  const cases = size === 'full' ? CASES : smallCases();
  say(SUITE, `${cases.length} cases against a hostile hub, each followed by a run against a good hub`);
  const outcomes = await runCases(cases, (line) => say(SUITE, line));
  const count = (f: (o: CaseOutcome) => number | boolean): number => outcomes.reduce((n, o) => n + Number(f(o)), 0);
  return {
    cases: outcomes.length,
    filesChecked: count((o) => o.filesChecked),
    lost: count((o) => o.lost),
    duplicated: count((o) => o.duplicated),
    corrupt: count((o) => o.corrupt),
    staleFlags: count((o) => o.staleFlags),
    invalidStates: count((o) => o.invalidState),
    hangs: count((o) => o.hang),
    failures: count((o) => o.problems.length > 0 && !o.hang),
  };
}
