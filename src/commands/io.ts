/**
 * What every command receives from the command line: the global flags and where its output goes.
 * Its own module so that the commands do not import their parent (src/cli.ts).
 */

export interface GlobalFlags {
  config?: string;
  debug?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
  dryRun?: boolean;
  '--'?: string[];
}

/** Where the process's output goes; tests replace it. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}
