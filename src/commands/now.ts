import type { GlobalFlags, Io } from '../cli.js';
import { resolveHubs } from '../config/load.js';
import { ExitCode } from '../errors.js';
import { formatAddress } from '../ftn/address.js';
import { createLogger } from '../ops/setup.js';
import { loadConfigFor, prepareDirs } from './common.js';

/** `fnpoll now [hub...]`: 0 all sessions ok, 1 any failed. */
export async function commandNow(selectors: string[], flags: GlobalFlags, io: Io): Promise<number> {
  const config = await loadConfigFor(flags, io);
  const hubs = resolveHubs(config, selectors);
  if (flags.dryRun) {
    const { commandDryRun } = await import('./run.js');
    return commandDryRun(config, hubs, true, flags, io);
  }
  await prepareDirs(config);
  const log = await createLogger(config, flags, true);
  try {
    const { pollHubs } = await import('../poll/now.js');
    if (hubs.length === 0) {
      log.warn(`no hubs configured in ${config.file}`);
      return ExitCode.OK;
    }
    log.debug(`polling ${hubs.map((h) => `${h.name} (${formatAddress(h.address)})`).join(', ')}`);
    const results = await pollHubs({ config, hubs, log });
    return results.some((r) => r.status === 'failed') ? ExitCode.FAILED : ExitCode.OK;
  } finally {
    await log.close();
  }
}
