/**
 * The real binkd (Debian's binkd 1.1a) as a hub or as a one-shot caller, for interop tests.
 *
 * Facts this harness relies on (checked against binkd 1.1a's source and by running it):
 * - binkd has no rule against running as root; no extra flag is needed.
 * - `-s` runs the server manager only, in the foreground: detaching is the opt-in `-D`.
 * - The server forks one child per session. We spawn binkd as the leader of a new process group
 *   and signal the whole group, so no session child outlives stop().
 * - `listen 127.0.0.1:<port>` binds the listening socket to loopback only (`bindaddr` is only for
 *   outgoing calls). binkd logs `servmgr listen on 127.0.0.1:<port>` once listen() succeeded, and
 *   `servmgr bind(): ...` when it failed; we wait for one or the other instead of probing the port,
 *   which would leave a spurious failed session in the log.
 * - No CRAM: binkd's `-m` command-line switch ("disable CRAM-MD5 authorization") makes the answering
 *   side omit `OPT CRAM-MD5-...` (protocol.c banner()). The node flags are different: `-md` on a
 *   node *requires* CRAM from that node (plaintext gets M_ERR "You must support MD5"), `-nomd`
 *   makes binkd send that node a plaintext password when binkd calls it.
 * - Everything binkd writes goes inside the temp dir: `log`, `pid-file`, the `domain` outbound
 *   (with its .bsy/.csy), `inbound`, `inbound-nonsecure`, `temp-inbound`. `conlog 0` keeps the
 *   console quiet; `loglevel 6` logs every frame ("send message ...", "rcvd msg ...").
 * - binkd exits 0 even when a call failed: judge by its log ("done (to ..., OK, ...").
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAddress, formatAddress, type FtnAddress } from '../../src/ftn/address.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export const BINKD = 'binkd';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const POLL_MS = 25;
const START_ATTEMPTS = 3;

export interface BinkdNode {
  address: string;
  password?: string;
  /** Node flags, e.g. '-md' (must use CRAM-MD5), '-nr', '-nd'. */
  flags?: string;
  /** host[:port] binkd uses when it calls this node; '-' (none) by default. */
  host?: string;
}

export interface BinkdHubOptions {
  /** The hub's address, e.g. '2:5020/1@fidonet'. */
  address: string;
  /** FTN domain (default: the address's domain, else 'fidonet'). */
  domain?: string;
  nodes: BinkdNode[];
  /** Start binkd with `-m`: it offers no CRAM challenge and accepts only plaintext passwords. */
  noCram?: boolean;
  /** Appended to the generated config; later lines override earlier ones. */
  extraConfig?: string;
}

/** Every process group this module started, for the "nothing left running" check. */
const startedGroups = new Set<number>();

let clockTicks: number | undefined;

/** sysconf(_SC_CLK_TCK), the unit of the times in /proc/<pid>/stat. */
function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (!Number.isInteger(out) || out <= 0) throw new Error(`getconf CLK_TCK: unexpected "${out}"`);
    clockTicks = out;
  }
  return clockTicks;
}

/** A free TCP port on 127.0.0.1 (bind to port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = a && typeof a === 'object' ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Live (non-zombie) members of process group `pgid`, found with `pgrep -g`. */
async function groupMembers(pgid: number): Promise<number[]> {
  const out = await new Promise<string>((resolve) => {
    execFile('pgrep', ['-g', String(pgid)], (_err, stdout) => resolve(String(stdout)));
  });
  const pids: number[] = [];
  for (const line of out.split('\n')) {
    const pid = Number(line.trim());
    if (!line.trim() || !Number.isInteger(pid)) continue;
    // A zombie is dead already; it only waits for its parent to reap it.
    const stat = await readText(`/proc/${pid}/stat`);
    if (stat && / Z /.test(stat.slice(stat.lastIndexOf(')')))) continue;
    if (stat) pids.push(pid);
  }
  return pids;
}

/** PIDs still alive in the process groups of binkds this module started. */
export async function leftoverBinkdProcesses(): Promise<number[]> {
  const pids: number[] = [];
  for (const pgid of startedGroups) pids.push(...(await groupMembers(pgid)));
  return pids;
}

function domainOf(address: string, explicit?: string): string {
  return (explicit ?? parseAddress(address).domain ?? 'fidonet').toLowerCase();
}

function with5d(address: string, domain: string): string {
  const a = parseAddress(address);
  return formatAddress({ ...a, domain: a.domain ?? domain });
}

/** binkd config words cannot hold whitespace unquoted; our paths never should. */
function checkPath(p: string): string {
  if (/[\s"]/.test(p)) throw new Error(`binkd harness: path "${p}" contains whitespace or quotes`);
  return p;
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** BSO path base (no extension) for `a` under a domain outbound `root` whose default zone is `zone` [FTS-5005]. */
function bsoBase(root: string, zone: number, a: FtnAddress): { dir: string; base: string } {
  const zoneDir = a.zone === zone ? root : `${root}.${hex(a.zone, 3)}`;
  const node = `${hex(a.net, 4)}${hex(a.node, 4)}`;
  if (a.point) {
    const dir = join(zoneDir, `${node}.pnt`);
    return { dir, base: join(dir, hex(a.point, 8)) };
  }
  return { dir: zoneDir, base: join(zoneDir, node) };
}

interface Spawned {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

function spawnBinkd(args: string[], cwd: string): Spawned {
  // detached: binkd leads its own process group, so stop() can signal its session children too.
  const child = spawn(BINKD, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const s: Spawned = { child, stdout: [], stderr: [], exited: undefined as never, exit: undefined };
  if (child.pid !== undefined) startedGroups.add(child.pid);
  child.stdout!.setEncoding('latin1').on('data', (d: string) => s.stdout.push(d));
  child.stderr!.setEncoding('latin1').on('data', (d: string) => s.stderr.push(d));
  s.exited = new Promise((resolve) => {
    child.once('error', (err) => {
      s.stderr.push(`spawn ${BINKD}: ${err.message}\n`);
      s.exit = { code: null, signal: null };
      resolve(s.exit);
    });
    child.once('exit', (code, signal) => {
      s.exit = { code, signal };
      resolve(s.exit);
    });
  });
  return s;
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

async function groupAlive(pgid: number): Promise<boolean> {
  return (await groupMembers(pgid)).length > 0;
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** SIGTERM the group, wait for binkd and its children, SIGKILL whatever is left. */
async function stopGroup(s: Spawned): Promise<void> {
  const pid = s.child.pid;
  if (pid === undefined) return;
  signalGroup(pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const exited = await Promise.race([
    s.exited.then(() => true),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), STOP_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (!exited) signalGroup(pid, 'SIGKILL');
  await s.exited;
  // Session children exit on the same SIGTERM; give them a moment, then make sure.
  for (let waited = 0; (await groupAlive(pid)) && waited < STOP_TIMEOUT_MS; waited += POLL_MS) await delay(POLL_MS);
  if (await groupAlive(pid)) signalGroup(pid, 'SIGKILL');
  for (let waited = 0; (await groupAlive(pid)) && waited < STOP_TIMEOUT_MS; waited += POLL_MS) await delay(POLL_MS);
  if (!(await groupAlive(pid))) startedGroups.delete(pid);
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

interface Layout {
  dir: string;
  outbound: string;
  inbound: string;
  insecureInbound: string;
  tempInbound: string;
  logPath: string;
  configPath: string;
}

async function makeLayout(dir: string): Promise<Layout> {
  checkPath(dir);
  const l: Layout = {
    dir,
    outbound: join(dir, 'outbound'),
    inbound: join(dir, 'inbound'),
    insecureInbound: join(dir, 'inbound-insecure'),
    tempInbound: join(dir, 'temp'),
    logPath: join(dir, 'binkd.log'),
    configPath: join(dir, 'binkd.conf'),
  };
  for (const d of [l.outbound, l.inbound, l.insecureInbound, l.tempInbound]) await mkdir(d, { recursive: true });
  return l;
}

function baseConfig(l: Layout, opts: { address: string; domain: string; sysname: string }): string[] {
  const zone = parseAddress(opts.address).zone;
  return [
    `log ${l.logPath}`,
    'loglevel 6',
    'conlog 0',
    `pid-file ${join(l.dir, 'binkd.pid')}`,
    `domain ${opts.domain} ${l.outbound} ${zone}`,
    `address ${with5d(opts.address, opts.domain)}`,
    `sysname "${opts.sysname}"`,
    'sysop "Interop Test"',
    'location "Loopback"',
    'nodeinfo 115200,TCP,BINKP',
    `inbound ${l.inbound}`,
    `inbound-nonsecure ${l.insecureInbound}`,
    `temp-inbound ${l.tempInbound}`,
    // Fail fast in tests rather than after binkd's 5-minute default.
    'timeout 30s',
    'connect-timeout 10s',
  ];
}

function nodeLine(n: BinkdNode, domain: string): string {
  const parts = ['node', with5d(n.address, domain)];
  if (n.flags) parts.push(n.flags);
  parts.push(n.host ?? '-', n.password ?? '-');
  return parts.join(' ');
}

export class BinkdHub {
  readonly port: number;
  readonly dir: string;
  readonly outbound: string;
  readonly inbound: string;
  readonly insecureInbound: string;
  readonly tempInbound: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly address: string;
  private readonly zone: number;
  private readonly domain: string;
  private stopped = false;

  private constructor(
    layout: Layout,
    port: number,
    address: string,
    domain: string,
    private readonly proc: Spawned,
  ) {
    this.port = port;
    this.dir = layout.dir;
    this.outbound = layout.outbound;
    this.inbound = layout.inbound;
    this.insecureInbound = layout.insecureInbound;
    this.tempInbound = layout.tempInbound;
    this.configPath = layout.configPath;
    this.logPath = layout.logPath;
    this.address = address;
    this.domain = domain;
    this.zone = parseAddress(address).zone;
  }

  /**
   * CPU time (user + system, ms) of the hub's finished session processes so far: binkd forks one
   * per session and reaps it, so Linux adds it to the server's cutime/cstime (proc(5)).
   */
  async sessionCpuMs(): Promise<number> {
    const pid = this.proc.child.pid;
    const stat = pid === undefined ? '' : await readText(`/proc/${pid}/stat`);
    // Fields after the ")" that closes the command name: state is field 3, cutime 16, cstime 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[13]) + Number(fields[14]);
    if (!Number.isFinite(ticks)) throw new Error(`binkd hub: cannot read /proc/${pid}/stat`);
    return (ticks * 1000) / clockTicksPerSecond();
  }

  /** Write a config in a fresh temp dir and run `binkd -s` on a free loopback port. */
  static async start(opts: BinkdHubOptions): Promise<BinkdHub> {
    const domain = domainOf(opts.address, opts.domain);
    const address = with5d(opts.address, domain);
    const dir = await makeTempDir('fnpoll-binkd-hub-');
    let lastError = '';
    try {
      const layout = await makeLayout(dir);
      for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
        const port = await freePort();
        const lines = [
          ...baseConfig(layout, { address, domain, sysname: 'binkd interop hub' }),
          `listen 127.0.0.1:${port}`,
          ...opts.nodes.map((n) => nodeLine(n, domain)),
        ];
        if (opts.extraConfig) lines.push(opts.extraConfig);
        await writeFile(layout.configPath, lines.join('\n') + '\n');
        await writeFile(layout.logPath, '');
        const proc = spawnBinkd([...(opts.noCram ? ['-m'] : []), '-s', layout.configPath], dir);
        const outcome = await waitForStart(layout.logPath, port, proc);
        if (outcome === 'listening') return new BinkdHub(layout, port, address, domain, proc);
        lastError = `${outcome}\n${tail(await readText(layout.logPath))}\n${proc.stderr.join('')}`;
        await stopGroup(proc);
        // The port was taken between freePort() and bind(): try another.
        if (!outcome.startsWith('bind failed')) break;
      }
    } catch (err) {
      await removeTempDir(dir);
      throw err;
    }
    await removeTempDir(dir);
    throw new Error(`binkd hub did not start: ${lastError}`);
  }

  /** binkd's log so far. */
  log(): Promise<string> {
    return readText(this.logPath);
  }

  /** Poll the log until `re` matches; resolves with the whole log text. */
  waitForLog(re: RegExp, timeoutMs = 10_000): Promise<string> {
    return waitForFile(this.logPath, re, timeoutMs, () => this.proc.exit !== undefined);
  }

  /**
   * BSO path base (no extension) in the hub's outbound for files to `address`, e.g.
   * `<dir>/outbound/139c0002`; append `.flo`, `.out`, ... Creates the zone/point directory.
   */
  outboundFor(address: string): string {
    const a = parseAddress(address);
    if (a.domain && a.domain !== this.domain) {
      throw new Error(`binkd harness: ${address} is not in the hub's domain "${this.domain}"`);
    }
    const { dir, base } = bsoBase(this.outbound, this.zone, a);
    mkdirSync(dir, { recursive: true });
    return base;
  }

  /** SIGTERM binkd and its session children, wait, and remove the temp dir (unless FNPOLL_KEEP_TMP=1). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await stopGroup(this.proc);
    await removeTempDir(this.dir);
  }
}

type StartOutcome = 'listening' | `bind failed: ${string}` | `exited: ${string}` | 'timeout';

async function waitForStart(logPath: string, port: number, proc: Spawned): Promise<StartOutcome> {
  const listening = new RegExp(`servmgr listen on 127\\.0\\.0\\.1:${port}\\b`);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const text = await readText(logPath);
    if (listening.test(text)) return 'listening';
    const bind = /servmgr bind\(\): (.*)/.exec(text);
    if (bind) return `bind failed: ${bind[1]}`;
    if (proc.exit) return `exited: code ${proc.exit.code} signal ${proc.exit.signal}`;
    await delay(POLL_MS);
  }
  return 'timeout';
}

async function waitForFile(path: string, re: RegExp, timeoutMs: number, dead: () => boolean): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readText(path);
    if (re.test(text)) return text;
    if (Date.now() >= deadline || dead()) {
      throw new Error(`${path}: no line matching ${re} within ${timeoutMs} ms${dead() ? ' (binkd exited)' : ''}\n${tail(text)}`);
    }
    await delay(POLL_MS);
  }
}

// ---- one-shot caller -----------------------------------------------------------------------------

export interface BinkdCallerFile {
  name: string;
  data: Buffer;
  /** Unix time, seconds (default: now). */
  mtime?: number;
}

export interface BinkdCallerOptions {
  /** The caller's own address, e.g. '2:5020/2@fidonet'. */
  address: string;
  /** The hub to call. */
  hub: { address: string; port: number; host?: string; password?: string; flags?: string };
  domain?: string;
  /** Files to send: written to <dir>/files and listed in a `^` flow file for the hub. */
  files?: BinkdCallerFile[];
  /** Start binkd with `-m` (no CRAM: it then sends the password in plaintext). */
  noCram?: boolean;
  extraConfig?: string;
  /** Kill the caller after this long (default 30 s); the result then has timedOut = true. */
  timeoutMs?: number;
}

export interface BinkdCallerResult {
  /** binkd's log of the call. */
  log: string;
  /** binkd logged `done (to <hub>, OK, ...)`: its exit code says nothing (always 0). */
  ok: boolean;
  timedOut: boolean;
  exitCode: number | null;
  /** Files the caller received, read before its temp dir was removed. */
  received: { name: string; data: Buffer; secure: boolean }[];
  stderr: string;
}

/**
 * Run binkd once with `args` (e.g. `-p -P <hub> <cfg>`) in `cwd` and wait for it, killing its
 * whole process group after `timeoutMs` (default 30 s). binkd's exit code says little: read its log.
 */
export async function runBinkdPoll(args: string[], cwd: string, timeoutMs = 30_000): Promise<{ exitCode: number | null; timedOut: boolean; stderr: string }> {
  const proc = spawnBinkd(args, cwd);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    signalGroup(proc.child.pid, 'SIGKILL');
  }, timeoutMs);
  const exit = await proc.exited;
  clearTimeout(timer);
  // binkd -p waits for its session child; make sure nothing of the group is left.
  await stopGroup(proc);
  return { exitCode: exit.code, timedOut, stderr: proc.stderr.join('') };
}

/** Run `binkd -p -P <hub> cfg` once in a fresh temp dir: call the hub, transfer, quit. */
export async function runBinkdCaller(opts: BinkdCallerOptions): Promise<BinkdCallerResult> {
  const domain = domainOf(opts.address, opts.domain);
  const hubAddress = with5d(opts.hub.address, domain);
  const dir = await makeTempDir('fnpoll-binkd-caller-');
  try {
    const layout = await makeLayout(dir);
    const hubNode: BinkdNode = {
      address: hubAddress,
      host: `${opts.hub.host ?? '127.0.0.1'}:${opts.hub.port}`,
    };
    if (opts.hub.password !== undefined) hubNode.password = opts.hub.password;
    if (opts.hub.flags !== undefined) hubNode.flags = opts.hub.flags;
    const lines = [...baseConfig(layout, { address: opts.address, domain, sysname: 'binkd interop caller' }), nodeLine(hubNode, domain)];
    if (opts.extraConfig) lines.push(opts.extraConfig);
    await writeFile(layout.configPath, lines.join('\n') + '\n');

    if (opts.files && opts.files.length > 0) {
      const filesDir = join(dir, 'files');
      await mkdir(filesDir);
      const flo: string[] = [];
      for (const f of opts.files) {
        if (/[\n\r/]/.test(f.name)) throw new Error(`binkd harness: file name "${f.name}" cannot go in a flow file`);
        const path = join(filesDir, f.name);
        await writeFile(path, f.data);
        const t = f.mtime ?? Math.floor(Date.now() / 1000);
        await utimes(path, t, t);
        flo.push(`^${path}`);
      }
      const { dir: bsoDir, base } = bsoBase(layout.outbound, parseAddress(opts.address).zone, parseAddress(hubAddress));
      await mkdir(bsoDir, { recursive: true });
      await writeFile(`${base}.flo`, flo.join('\n') + '\n');
    }

    const { exitCode, timedOut, stderr } = await runBinkdPoll([...(opts.noCram ? ['-m'] : []), '-p', '-P', hubAddress, layout.configPath], dir, opts.timeoutMs);
    const log = await readText(layout.logPath);
    const received: BinkdCallerResult['received'] = [];
    for (const [d, secure] of [
      [layout.inbound, true],
      [layout.insecureInbound, false],
    ] as const) {
      for (const name of (await readdir(d)).sort()) received.push({ name, data: await readFile(join(d, name)), secure });
    }
    const okRe = new RegExp(`done \\(to ${escapeRe(hubAddress)}, OK\\b`);
    return { log, ok: okRe.test(log), timedOut, exitCode, received, stderr };
  } finally {
    await removeTempDir(dir);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
