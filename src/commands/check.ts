import { checkConfig } from '../config/check.js';
import { ExitCode } from '../errors.js';
import type { GlobalFlags, Io } from './io.js';
import { loadConfigFor, warnStranded } from './common.js';
import type { Config } from '../config/types.js';

/** `fnpoll check`: 0 when valid, 78 with one line per problem. */
export async function commandCheck(flags: GlobalFlags, io: Io): Promise<number> {
  const config = await loadConfigFor(flags, io);
  const { problems, lines } = await checkConfig(config);
  for (const p of problems) io.err(`fnpoll: ${p}\n`);
  if (!flags.quiet) for (const l of lines) io.out(`${l}\n`);
  if (!flags.quiet) for (const o of config.overrides ?? []) io.out(`${o}\n`);
  if (!flags.quiet) await warnStranded(config, io);
  if (!flags.quiet) for (const l of await resolutionLines(config)) io.out(`${l}\n`);
  if (problems.length) return ExitCode.CONFIG;
  if (!flags.quiet) io.out(`${config.file}: ok, ${config.hubs.length} hub${config.hubs.length === 1 ? '' : 's'}\n`);
  return ExitCode.OK;
}

/**
 * Per hub, where it resolves to now and which source said so: the nodelist and DNS are asked
 * (an unreachable hub is news for the sysop, not a configuration error: the exit code stays 0).
 */
async function resolutionLines(config: Config): Promise<string[]> {
  const { lookupHub, resolutionText, nodelistCacheFile } = await import('../net/lookup.js');
  const { systemDns } = await import('../net/dns.js');
  let api: ReturnType<typeof systemDns> | undefined;
  const width = Math.max(0, ...config.hubs.map((h) => h.name.length));
  const out: string[] = [];
  for (const hub of config.hubs) {
    const r = await lookupHub(hub, { dns: () => (api ??= systemDns(config.poller.dnsServers)), nodelistCache: nodelistCacheFile(config) });
    out.push(`${hub.name.padEnd(width)}  resolves to ${resolutionText(hub, r)}`);
  }
  return out;
}
