/**
 * The core of `fnpoll check`: what a valid Config cannot tell by itself, because it depends on
 * the machine. Directories must exist or be creatable, and the temp inbound must share a
 * filesystem with the inbounds. Nothing is created or changed; the file system is reached only
 * through `CheckIo`, so tests can stand in for a read-only or multi-filesystem machine.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import path from 'node:path';

import { pseudoFilesystem } from '../dirs.js';
import { errCode, errnoText } from '../files.js';
import { formatAddress } from '../ftn/address.js';
import type { Config, HubConfig } from './types.js';
import { formatExactDuration } from '../format.js';

export interface CheckIo {
  stat(p: string): Promise<{ isDirectory(): boolean; dev: number }>;
  /** Rejects when `p` is not accessible with `mode` (fs.constants bits). */
  access(p: string, mode: number): Promise<void>;
  /** The kind of kernel filesystem (`proc`, `sysfs`…) `p` lives on, where nothing can be created. */
  pseudoFilesystem?(p: string): Promise<string | undefined>;
}

export const nodeCheckIo: CheckIo = { stat, access, pseudoFilesystem };

/** We create files in these directories, and rename within them. */
const DIR_ACCESS = constants.W_OK | constants.X_OK;

interface Target {
  /** `[section] key` the path came from. */
  label: string;
  dir: string;
}

type Probe =
  /** `found` is `dir` itself or its nearest existing ancestor. */
  | { found: string; isDirectory: boolean; dev: number; writable: string | undefined; pseudo?: string | undefined }
  | { found: string; error: string };

export async function checkConfig(
  config: Config,
  io: CheckIo = nodeCheckIo,
): Promise<{ problems: string[]; lines: string[] }> {
  const problems: string[] = [];
  const { node, poller } = config;
  const targets: Target[] = [
    { label: '[node] outbound', dir: node.outbound },
    { label: '[node] inbound', dir: node.inbound },
    { label: '[node] inbound_insecure', dir: node.inboundInsecure },
    { label: '[node] temp_inbound', dir: node.tempInbound },
    { label: '[poller] state_file', dir: path.dirname(poller.stateFile) },
    { label: '[poller] lock_file', dir: path.dirname(poller.lockFile) },
  ];
  if (poller.logFile) targets.push({ label: '[poller] log_file', dir: path.dirname(poller.logFile) });
  if (poller.metricsFile) targets.push({ label: '[poller] metrics_file', dir: path.dirname(poller.metricsFile) });
  for (const hub of config.hubs) {
    if (hub.outboundOverride) targets.push({ label: `[${hub.name}] outbound`, dir: hub.outbound });
  }

  // One probe, and at most one message, per directory.
  const probes = new Map<string, Probe>();
  // An ancestor that cannot be examined is named once, not once per directory below it.
  const failedAncestors = new Set<string>();
  for (const { label, dir } of targets) {
    if (probes.has(dir)) continue;
    const probe = await probeDir(io, dir);
    probes.set(dir, probe);
    if ('error' in probe || probe.pseudo) {
      if (failedAncestors.has(probe.found)) continue;
      failedAncestors.add(probe.found);
    }
    const wrong = describe(dir, probe);
    if (wrong) problems.push(`${config.file} ${label}: "${dir}" ${wrong}`);
  }

  // The final step of a receive is a rename from the temp inbound into an inbound; across
  // filesystems rename() fails (EXDEV) and a copy would not be atomic.
  const temp = probes.get(node.tempInbound);
  for (const [key, dir] of [['inbound', node.inbound], ['inbound_insecure', node.inboundInsecure]] as const) {
    const other = probes.get(dir);
    if (temp && other && !('error' in temp) && !('error' in other) && temp.dev !== other.dev) {
      problems.push(
        `${config.file} [node] temp_inbound: "${node.tempInbound}" is on another filesystem than ${key} "${dir}" (the final rename would not be atomic)`,
      );
    }
  }

  return { problems, lines: hubLines(config.hubs) };
}

async function probeDir(io: CheckIo, dir: string): Promise<Probe> {
  let current = dir;
  for (;;) {
    try {
      const st = await io.stat(current);
      let writable: string | undefined;
      if (st.isDirectory()) {
        try {
          await io.access(current, DIR_ACCESS);
        } catch (err) {
          writable = errnoText(err);
        }
      }
      // Root may write to /proc by access(2), yet mkdir there fails: name the filesystem instead.
      const pseudo = st.isDirectory() ? await io.pseudoFilesystem?.(current) : undefined;
      return { found: current, isDirectory: st.isDirectory(), dev: st.dev, writable, pseudo };
    } catch (err) {
      const code = errCode(err);
      const parent = path.dirname(current);
      // ENOTDIR: a component is a file; keep climbing to find it and say so.
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== current) {
        current = parent;
        continue;
      }
      return { found: current, error: errnoText(err) };
    }
  }
}

/** What is wrong with `dir`, or undefined when it exists or can be created. */
function describe(dir: string, probe: Probe): string | undefined {
  if ('error' in probe) {
    return probe.found === dir
      ? `cannot be checked: ${probe.error}`
      : `cannot be checked: "${probe.found}": ${probe.error}`;
  }
  if (probe.found === dir) {
    if (!probe.isDirectory) return 'is not a directory';
    if (probe.pseudo) return `is on the kernel's ${probe.pseudo} filesystem, which holds no files`;
    if (probe.writable) return `is not writable: ${probe.writable}`;
    return undefined;
  }
  if (!probe.isDirectory) return `does not exist and cannot be created: "${probe.found}" is not a directory`;
  if (probe.pseudo) return `does not exist and cannot be created: "${probe.found}" is the kernel's ${probe.pseudo} filesystem`;
  if (probe.writable) return `does not exist and cannot be created: "${probe.found}" is not writable: ${probe.writable}`;
  return undefined;
}

/**
 * One summary line per hub, columns aligned:
 *   hub1  2:5020/1@fidonet  binkp host.example:24554  cram=yes nr=no  poll every 1h  password set  outbound /x
 * The password itself is never shown.
 */
export function hubLines(hubs: readonly HubConfig[]): string[] {
  const nameWidth = Math.max(0, ...hubs.map((h) => h.name.length));
  const addrWidth = Math.max(0, ...hubs.map((h) => formatAddress(h.address).length));
  return hubs.map((h) => {
    const where = h.reach.hosts.length
      ? h.reach.hosts.map((x) => `${isIPv6(x.host) ? `[${x.host}]` : x.host}:${x.port ?? h.port}`).join(';')
      : `lookup ${h.reach.lookup.join(',')}`;
    return [
      h.name.padEnd(nameWidth),
      formatAddress(h.address).padEnd(addrWidth),
      `${h.reach.tls === 'no' ? 'binkp' : h.reach.tls === 'yes' ? 'binkps (or binkp)' : 'binkps'} ${where}${h.reach.proxy ? ` via ${h.reach.proxy.label}` : ''}`,
      `cram=${h.useCram ? 'yes' : 'no'} nr=${h.nrMode ? 'yes' : 'no'}`,
      `poll every ${formatExactDuration(h.pollFrequency)}`,
      h.password === undefined ? 'no password' : 'password set',
      `outbound ${h.outbound}`,
    ].join('  ');
  });
}
