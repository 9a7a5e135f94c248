/**
 * `fnpoll import binkd.cfg [-o fnpoll.ini]`: the equivalent fnpoll.ini on stdout (or into a new
 * file, mode 600), and one line on stderr per binkd setting that has no counterpart.
 */
import { readFileSync } from 'node:fs';
import writeFileAtomic from 'write-file-atomic';
import { ExitCode, IoError, UsageError } from '../errors.js';
import { errnoText, exists } from '../files.js';
import type { GlobalFlags, Io } from './io.js';

export interface ImportFlags extends GlobalFlags {
  output?: string;
  force?: boolean;
}

export async function commandImport(binkdCfg: string, flags: ImportFlags, io: Io): Promise<number> {
  const { importBinkd } = await import('../config/binkd.js');
  const { HUB_KEYS } = await import('../config/load.js');
  const result = importBinkd(binkdCfg, {
    read: (f) => {
      try {
        return readFileSync(f, 'utf8');
      } catch (err) {
        throw new Error(errnoText(err));
      }
    },
    hubKeys: HUB_KEYS,
  });
  if (!flags.quiet) for (const d of result.dropped) io.err(`fnpoll: ${d}\n`);
  if (flags.output === undefined) {
    io.out(result.ini);
    return ExitCode.OK;
  }
  if (!flags.force && (await exists(flags.output))) {
    throw new UsageError(`${flags.output} exists; not overwritten (add --force to replace it)`);
  }
  try {
    // 600: the file holds the hubs' passwords; the sysop may then chown root:<group> and chmod 640 (README "Install").
    await writeFileAtomic(flags.output, result.ini, { mode: 0o600 });
  } catch (err) {
    throw new IoError(`${flags.output}: cannot write: ${errnoText(err)}`, { cause: err });
  }
  if (!flags.quiet) io.err(`fnpoll: wrote ${flags.output}; check it with: fnpoll check -c ${flags.output}\n`);
  return ExitCode.OK;
}
