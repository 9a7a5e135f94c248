/** Shared by the command modules: config loading and directory preparation. */
import type { Config } from '../config/types.js';
import { loadConfig, resolveConfigPath } from '../config/load.js';
import { IoError, errorText } from '../errors.js';
import { makeDirs } from '../dirs.js';
import type { GlobalFlags, Io } from '../cli.js';

export async function loadConfigFor(flags: GlobalFlags, io: Io, opts: { showWarnings?: boolean } = {}): Promise<Config> {
  const config = await loadConfig(resolveConfigPath(flags.config));
  if (opts.showWarnings !== false && !flags.quiet) for (const w of config.warnings) io.err(`fnpoll: warning: ${w}\n`);
  return config;
}

/** The inbound directories must exist before a session can receive. */
export async function prepareDirs(config: Config): Promise<void> {
  const n = config.node;
  for (const [key, dir] of [
    ['inbound', n.inbound],
    ['inbound_insecure', n.inboundInsecure],
    ['temp_inbound', n.tempInbound],
  ] as const) {
    try {
      await makeDirs(dir);
    } catch (err) {
      throw new IoError(`${config.file} [node] ${key}: cannot create "${dir}": ${errorText(err)}`, { cause: err });
    }
  }
}
