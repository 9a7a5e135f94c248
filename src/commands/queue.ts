/**
 * `fnpoll queue [--json]`: the whole outbound per node and flavour (like binkd's printq), which
 * hub carries it, and warnings for mail that never leaves. Read-only. Also the one-line count of
 * such mail that `check` and `status` print.
 */
import type { Config } from '../config/types.js';
import { ExitCode } from '../errors.js';
import { formatAddress } from '../ftn/address.js';
import { count, formatBytes, formatDuration } from '../format.js';
import type { OutboundReport } from '../bso/queue.js';
import { loadConfigFor } from './common.js';
import type { GlobalFlags, Io } from './io.js';

/** The outbound of every hub's domain, and [node] outbound even when no hub uses it. */
export async function readConfiguredOutbound(config: Config): Promise<OutboundReport> {
  const { readOutbound } = await import('../bso/queue.js');
  const { hubLayout } = await import('../poll/hubfiles.js');
  const hubs = config.hubs.map((h) => ({ name: h.name, address: h.address, layout: hubLayout(config, h) }));
  return readOutbound(hubs, [{ root: config.node.outbound, defaultZone: config.node.address.zone }]);
}

/** One warning line per node no hub serves and per zone directory no hub reads. */
export function strandedWarnings(report: OutboundReport): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const r of report.rows) {
    const who = formatAddress(r.address);
    if (r.hub !== undefined || r.pollOnly || seen.has(who)) continue;
    seen.add(who);
    const rows = report.rows.filter((x) => formatAddress(x.address) === who);
    const files = rows.reduce((a, x) => a + x.files, 0);
    const bytes = rows.reduce((a, x) => a + x.bytes, 0);
    out.push(`mail for ${who} (${count(files, 'file')}, ${formatBytes(bytes)}) will never leave: no hub is configured for that node (route it to your hub with the tosser, or add the node as a hub)`);
  }
  for (const z of report.unreadZoneDirs) {
    out.push(`${z.dir}: zone ${z.zone} has mail for ${count(z.nodes, 'node')}, but no hub in zone ${z.zone} uses this outbound`);
  }
  return out;
}

/** `3 nodes have mail no hub will carry (5 files, 12 KiB); see fnpoll queue`, or undefined. */
export function strandedSummary(report: OutboundReport): string | undefined {
  const rows = report.rows.filter((r) => r.hub === undefined && !r.pollOnly);
  if (rows.length === 0) return undefined;
  const nodes = new Set(rows.map((r) => formatAddress(r.address))).size;
  const files = rows.reduce((a, r) => a + r.files, 0);
  const bytes = rows.reduce((a, r) => a + r.bytes, 0);
  return `${count(nodes, 'node')} ${nodes === 1 ? 'has' : 'have'} mail that no hub will carry (${count(files, 'file')}, ${formatBytes(bytes)}); see \`fnpoll queue\``;
}

export function formatQueueTable(report: OutboundReport, now: number): string {
  if (report.rows.length === 0) return 'outbound empty\n';
  const header = ['NODE', 'FLAVOUR', 'FILES', 'BYTES', 'OLDEST', 'HUB'];
  const body = report.rows.map((r) => [
    formatAddress(r.address),
    r.flavour,
    r.pollOnly ? 'poll' : String(r.files),
    formatBytes(r.bytes),
    r.oldest === undefined ? '-' : formatDuration(now - r.oldest),
    r.hub ?? (r.pollOnly ? '-' : '- (no hub: never leaves)'),
  ]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((c) => c[i]!.length)));
  const files = report.rows.reduce((a, r) => a + r.files, 0);
  const bytes = report.rows.reduce((a, r) => a + r.bytes, 0);
  const nodes = new Set(report.rows.map((r) => formatAddress(r.address))).size;
  return `${all
    .map((c) => c.map((x, i) => (i === c.length - 1 ? x : i === 2 || i === 3 ? x.padStart(widths[i]!) : x.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n')}\ntotal: ${count(files, 'file')}, ${formatBytes(bytes)} for ${count(nodes, 'node')}\n`;
}

export async function commandQueue(flags: GlobalFlags, io: Io, now: () => number = Date.now): Promise<number> {
  const config = await loadConfigFor(flags, io);
  const report = await readConfiguredOutbound(config);
  if (!flags.quiet) for (const w of report.warnings) io.err(`fnpoll: warning: ${w}\n`);
  if (flags.json) {
    const rows = report.rows.map((r) => ({
      address: formatAddress(r.address),
      flavour: r.flavour,
      files: r.files,
      bytes: r.bytes,
      pollRequest: r.pollOnly,
      oldest: r.oldest === undefined ? null : new Date(r.oldest).toISOString(),
      hub: r.hub ?? null,
    }));
    io.out(`${JSON.stringify({ nodes: rows, unreadZoneDirs: report.unreadZoneDirs }, null, 2)}\n`);
  } else {
    io.out(formatQueueTable(report, now()));
  }
  if (!flags.quiet) for (const w of strandedWarnings(report)) io.err(`fnpoll: warning: ${w}\n`);
  return ExitCode.OK;
}
