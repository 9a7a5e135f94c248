/**
 * An fnpoll node for the bench: a directory with outbound, inbound, state and a config file, and
 * the command line that runs the real CLI against it. Unlike test/helpers/node.ts it logs at the
 * default level (a benchmark must not pay for debug lines nobody reads).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hubSectionLines, type HubSection } from '../helpers/node.js';

/** Repository root (dist/test/bench → ../../..). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = join(ROOT, 'bin', 'fnpoll.cjs');
/** The floor caller (floorcaller.cts), compiled beside this file as CommonJS: the quickest kind of script for Node to load. */
export const FLOOR_CALLER = join(dirname(fileURLToPath(import.meta.url)), 'floorcaller.cjs');

/** A hub section, as the tests write them. */
export type BenchHub = HubSection;

export interface BenchNodeOptions {
  address: string;
  hubs: readonly BenchHub[];
  poller?: Record<string, string | number>;
  performance?: Record<string, string | number>;
  /** Write a log file (default yes: it is what a cron setup has). */
  logFile?: boolean;
}

export class BenchNode {
  readonly outbound: string;
  readonly inbound: string;
  readonly tempInbound: string;
  readonly configPath: string;
  readonly stateFile: string;
  readonly logFile: string;

  constructor(readonly dir: string) {
    this.outbound = join(dir, 'outbound');
    this.inbound = join(dir, 'inbound');
    this.tempInbound = join(dir, 'inbound', 'tmp');
    this.configPath = join(dir, 'fnpoll.ini');
    this.stateFile = join(dir, 'state.json');
    this.logFile = join(dir, 'fnpoll.log');
  }

  static async create(dir: string, opts: BenchNodeOptions): Promise<BenchNode> {
    const n = new BenchNode(dir);
    await mkdir(n.outbound, { recursive: true });
    await mkdir(n.tempInbound, { recursive: true });
    await writeFile(n.configPath, n.configText(opts));
    return n;
  }

  configText(opts: BenchNodeOptions): string {
    const kv = (o: Record<string, string | number> | undefined): string[] => Object.entries(o ?? {}).map(([k, v]) => `${k} = ${v}`);
    const lines = [
      '[node]',
      `address = ${opts.address}`,
      'system = fnpoll bench node',
      'sysop = Bench Sysop',
      'location = Loopback',
      `outbound = ${this.outbound}`,
      `inbound = ${this.inbound}`,
      '',
      '[poller]',
      `state_file = ${this.stateFile}`,
      // A stalled session fails the scenario in seconds instead of binkd's five minutes.
      ...(opts.poller?.['idle_timeout'] === undefined ? ['idle_timeout = 20s'] : []),
      ...(opts.logFile === false ? [] : [`log_file = ${this.logFile}`]),
      ...kv(opts.poller),
      '',
    ];
    if (opts.performance) lines.push('[performance]', ...kv(opts.performance), '');
    lines.push(...hubSectionLines(opts.hubs));
    return lines.join('\n');
  }

  /** argv for `node bin/fnpoll.cjs <args> -c <config>`. */
  args(...args: string[]): string[] {
    return [BIN, ...args, '-c', this.configPath];
  }
}
