/**
 * A throwaway fnpoll node for tests: a temp dir with outbound, inbound and a config file, plus a
 * way to run the real CLI (`node bin/fnpoll.cjs`) against it as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, writeFile, readFile, readdir, utimes } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { makeTempDir, removeTempDir } from './tmp.js';

/** Repository root (dist/test/helpers → ../../..). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = join(ROOT, 'bin', 'fnpoll.cjs');

export interface HubSection {
  name: string;
  address: string;
  host?: string;
  port: number;
  password?: string;
  /** Extra `key = value` lines for the section. */
  extra?: Record<string, string | number>;
}

export interface NodeOptions {
  address?: string;
  aka?: string[];
  hubs: HubSection[];
  /** Extra lines for [poller]. */
  poller?: Record<string, string | number>;
  performance?: Record<string, string | number>;
  /** Extra lines for [node]. */
  node?: Record<string, string | number>;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class TestNode {
  readonly dir: string;
  readonly outbound: string;
  readonly inbound: string;
  readonly insecureInbound: string;
  readonly tempInbound: string;
  readonly configPath: string;
  readonly stateFile: string;
  readonly logFile: string;
  readonly files: string;
  private opts: NodeOptions;

  private constructor(dir: string, opts: NodeOptions) {
    this.dir = dir;
    this.opts = opts;
    this.outbound = join(dir, 'outbound');
    this.inbound = join(dir, 'inbound');
    this.insecureInbound = join(dir, 'inbound', 'insecure');
    this.tempInbound = join(dir, 'inbound', 'tmp');
    this.configPath = join(dir, 'fnpoll.ini');
    this.stateFile = join(dir, 'state.json');
    this.logFile = join(dir, 'fnpoll.log');
    this.files = join(dir, 'files');
  }

  static async create(opts: NodeOptions): Promise<TestNode> {
    const dir = await makeTempDir('fnpoll-node-');
    const n = new TestNode(dir, opts);
    await mkdir(n.outbound, { recursive: true });
    await mkdir(n.files, { recursive: true });
    await n.writeConfig(opts);
    return n;
  }

  async writeConfig(opts: NodeOptions = this.opts): Promise<void> {
    this.opts = opts;
    const kv = (o: Record<string, string | number> | undefined): string[] => Object.entries(o ?? {}).map(([k, v]) => `${k} = ${v}`);
    const lines = [
      '[node]',
      `address = ${opts.address ?? '2:5020/99@fidonet'}`,
      ...(opts.aka?.length ? [`aka = ${opts.aka.join(', ')}`] : []),
      'system = fnpoll test node',
      'sysop = Test Sysop',
      'location = Loopback',
      `outbound = ${this.outbound}`,
      `inbound = ${this.inbound}`,
      ...kv(opts.node),
      '',
      '[poller]',
      `state_file = ${this.stateFile}`,
      `log_file = ${this.logFile}`,
      'log_level = debug',
      ...kv(opts.poller),
      '',
    ];
    if (opts.performance) lines.push('[performance]', ...kv(opts.performance), '');
    lines.push(...hubSectionLines(opts.hubs));
    // As a sysop keeps it (it holds passwords): readable by its owner only.
    await writeFile(this.configPath, lines.join('\n'), { mode: 0o600 });
    await chmod(this.configPath, 0o600);
  }

  /** Write a file under files/ and return its path. */
  async file(name: string, data: Buffer | string, mtimeSec?: number): Promise<string> {
    const p = join(this.files, name);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, data);
    if (mtimeSec !== undefined) await utimes(p, mtimeSec, mtimeSec);
    return p;
  }

  /** Write `name` (e.g. `139c0001.flo`) into the outbound (or a zone dir relative to it). */
  async outboundFile(name: string, data: Buffer | string): Promise<string> {
    const p = join(this.outbound, name);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, data);
    return p;
  }

  async listOutbound(sub = ''): Promise<string[]> {
    return (await readdir(join(this.outbound, sub)).catch(() => [] as string[])).sort();
  }

  /** Regular files directly in the secure (or insecure) inbound. */
  async listInbound(insecure = false): Promise<string[]> {
    const dir = insecure ? this.insecureInbound : this.inbound;
    const names = await readdir(dir, { withFileTypes: true }).catch(() => []);
    return names.filter((d) => d.isFile()).map((d) => d.name).sort();
  }

  async state(): Promise<Record<string, unknown>> {
    return JSON.parse(await readFile(this.stateFile, 'utf8')) as Record<string, unknown>;
  }

  async log(): Promise<string> {
    return readFile(this.logFile, 'utf8').catch(() => '');
  }

  /** Start `fnpoll <args> -c <config>` as a child; the caller awaits `done`. */
  spawn(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<RunResult>; stderrText: () => string } {
    const child = spawn(process.execPath, [BIN, ...args, '-c', this.configPath], {
      cwd: this.dir,
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<RunResult>((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    return { child, done, stderrText: () => stderr };
  }

  run(args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
    return this.spawn(args, env).done;
  }

  async remove(): Promise<void> {
    await removeTempDir(this.dir);
  }
}

function kvLines(o: Record<string, string | number> | undefined): string[] {
  return Object.entries(o ?? {}).map(([k, v]) => `${k} = ${v}`);
}

/** The INI lines of hub sections (shared with the benchmarks' node). */
export function hubSectionLines(hubs: readonly HubSection[]): string[] {
  return hubs.flatMap((h) => [
    `[${h.name}]`,
    `hub_address = ${h.address}`,
    `hub_hostname = ${h.host ?? '127.0.0.1'}`,
    `hub_port = ${h.port}`,
    ...(h.password ? [`password = ${h.password}`] : []),
    ...kvLines(h.extra),
    '',
  ]);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function fileHash(path: string): Promise<string> {
  return sha256(await readFile(path));
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function pseudoRandomBytes(size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
