import { checkConfig } from '../config/check.js';
import { ExitCode } from '../errors.js';
import type { GlobalFlags, Io } from './io.js';
import { loadConfigFor, warnStranded } from './common.js';

/** `fnpoll check`: 0 when valid, 78 with one line per problem. */
export async function commandCheck(flags: GlobalFlags, io: Io): Promise<number> {
  const config = await loadConfigFor(flags, io);
  const { problems, lines } = await checkConfig(config);
  for (const p of problems) io.err(`fnpoll: ${p}\n`);
  if (!flags.quiet) for (const l of lines) io.out(`${l}\n`);
  if (!flags.quiet) for (const o of config.overrides ?? []) io.out(`${o}\n`);
  if (!flags.quiet) await warnStranded(config, io);
  if (problems.length) return ExitCode.CONFIG;
  if (!flags.quiet) io.out(`${config.file}: ok, ${config.hubs.length} hub${config.hubs.length === 1 ? '' : 's'}\n`);
  return ExitCode.OK;
}
