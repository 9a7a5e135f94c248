/**
 * Command line: parses flags with cac, loads only what the chosen command needs (an idle cron run
 * must start fast), maps every error to one line and an exit code (README "Exit codes").
 */
import { cac, type CAC } from 'cac';
import { ExitCode, FnpollError, UsageError, ConfigError, LockError } from './errors.js';
import type { GlobalFlags, Io } from './commands/io.js';

/** Set once a stream's reader went away: what is still written to it is dropped. */
const closed = { stdout: false, stderr: false };

/**
 * A reader that went away (`fnpoll check | head -1`) is no error of ours: the rest of the output is
 * dropped and the command ends as it would have, without an EPIPE stack trace. The 'error' listener
 * goes on the stream when the stream is first used, by anyone (the logger writes to process.stderr
 * itself), not before: Node makes process.stdout on first use, and on a pipe (cron's) that loads
 * node:net, 3-5 ms that an idle run, which prints nothing, would pay for nothing.
 */
function guardWhenMade(name: 'stdout' | 'stderr'): void {
  const onError = (): void => {
    closed[name] = true;
  };
  const desc = Object.getOwnPropertyDescriptor(process, name);
  const get = desc?.get;
  if (!desc || !get || !desc.configurable) {
    process[name].on('error', onError);
    return;
  }
  Object.defineProperty(process, name, {
    ...desc,
    get() {
      const stream = get.call(process) as NodeJS.WriteStream;
      Object.defineProperty(process, name, desc);
      stream.on('error', onError);
      return stream;
    },
  });
}

let processIoMemo: Io | undefined;
/** Made on first use, so that importing this module does not touch the process's streams. */
function processIo(): Io {
  if (!processIoMemo) {
    guardWhenMade('stdout');
    guardWhenMade('stderr');
    processIoMemo = {
      out: (text) => {
        if (!closed.stdout) process.stdout.write(text);
      },
      err: (text) => {
        if (!closed.stderr) process.stderr.write(text);
      },
    };
  }
  return processIoMemo;
}

const COMMANDS = ['run', 'now', 'status', 'check', 'queue', 'reset', 'poll', 'stats', 'health', 'import', 'demo', 'help'];

function build(io: Io, setExit: (code: number) => void): CAC {
  const cli = cac('fnpoll');
  cli.option('-c, --config <file>', 'Config file (default: $FNPOLL_CONFIG, else /etc/fnpoll/fnpoll.ini)');
  cli.option('--debug', 'Log everything, including binkp frames; show stack traces');
  cli.option('-q, --quiet', 'Print errors only');
  cli.option('--verbose', 'Print what happens, not only errors (also -v after a command)');

  cli
    .command('run [...hubs]', 'Poll the hubs that are due (the cron job; also the default command)')
    .example('fnpoll run --quiet            # from cron, every 5 minutes')
    .option('--dry-run', 'Show what would be polled and why; touch nothing')
    .action(async (hubs: string[], flags: GlobalFlags) => {
      const { commandRun } = await import('./commands/run.js');
      setExit(await commandRun(hubs, flags, io));
    });

  cli
    .command('now [...hubs]', 'Poll hubs immediately (section names or addresses; none = all)')
    .example('fnpoll now fidonet')
    .option('--dry-run', 'Show what would be polled; touch nothing')
    .action(async (hubs: string[], flags: GlobalFlags) => {
      const { commandNow } = await import('./commands/now.js');
      setExit(await commandNow(hubs, flags, io));
    });

  cli
    .command('status [hub]', 'Show each hub (last result, failures, next attempt, queued mail), or one hub in detail')
    .option('--json', 'Machine-readable output')
    .example('fnpoll status fidonet')
    .action(async (hub: string | undefined, flags: GlobalFlags) => {
      const { commandStatus } = await import('./commands/status.js');
      setExit(await commandStatus(flags, io, hub));
    });

  cli.command('check', 'Validate the configuration and print one line per hub').example('fnpoll check -c /etc/fnpoll/fnpoll.ini').action(async (flags: GlobalFlags) => {
    const { commandCheck } = await import('./commands/check.js');
    setExit(await commandCheck(flags, io));
  });

  cli
    .command('queue', 'List the whole outbound per node: flavour, files, bytes, age, and which hub carries it')
    .option('--json', 'Machine-readable output')
    .example('fnpoll queue')
    .action(async (flags: GlobalFlags) => {
      const { commandQueue } = await import('./commands/queue.js');
      setExit(await commandQueue(flags, io));
    });

  cli.command('reset <hub> [...more]', "Clear hubs' backoff and hold, so that the next run calls them at once").example('fnpoll reset fidonet').action(async (hub: string, more: string[], flags: GlobalFlags) => {
    const { commandReset } = await import('./commands/status.js');
    setExit(await commandReset([hub, ...more], flags, io));
  });

  cli
    .command('poll <hub> [...more]', 'Create a poll request (empty .dlo) for hubs without calling')
    .example('fnpoll poll fidonet --flavour crash')
    .option('--flavour <flavour>', 'direct (default), crash, immediate or normal')
    .action(async (hub: string, more: string[], flags: GlobalFlags & { flavour?: string }) => {
      const { commandPoll } = await import('./commands/status.js');
      setExit(await commandPoll([hub, ...more], flags, io));
    });

  cli
    .command('stats [hub]', 'Show totals, success ratio, averages and the last sessions per hub')
    .example('fnpoll stats fidonet')
    .option('--json', 'Machine-readable output')
    .action(async (hub: string | undefined, flags: GlobalFlags) => {
      const { commandStats } = await import('./commands/stats.js');
      setExit(await commandStats(hub, flags, io));
    });

  cli
    .command('health', 'Monitoring-plugin check (Nagios/Icinga): exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN')
    .example('fnpoll health -c /etc/fnpoll/fnpoll.ini   # as a Nagios/Icinga command')
    .action(async (flags: GlobalFlags) => {
      const { commandHealth } = await import('./commands/health.js');
      setExit(await commandHealth(flags, io));
    });

  cli
    .command('import <binkd.cfg>', 'Translate a binkd config into fnpoll.ini (stdout, or -o FILE); says what was dropped')
    .option('-o, --output <file>', 'Write the new file here (mode 640) instead of printing it')
    .option('--force', 'With -o: replace an existing file')
    .example('fnpoll import /etc/binkd/binkd.cfg -o /etc/fnpoll/fnpoll.ini')
    .action(async (binkdCfg: string, flags: GlobalFlags & { output?: string; force?: boolean }) => {
      const { commandImport } = await import('./commands/import.js');
      setExit(await commandImport(binkdCfg, flags, io));
    });

  cli
    .command('demo', 'Poll a scripted demo hub on loopback, with a demo outbound under a temp dir')
    .example('fnpoll demo --keep')
    .option('--keep', 'Keep the demo directory afterwards')
    .action(async (flags: GlobalFlags & { keep?: boolean }) => {
      const { commandDemo } = await import('./commands/demo.js');
      setExit(await commandDemo(flags, io));
    });

  // A command's --help starts with what the command does (cac shows it only in the list).
  cli.help((sections) => {
    const what = cli.matchedCommand?.description;
    if (what) sections.splice(1, 0, { body: what });
    return sections;
  });
  return cli;
}

function debugRequested(argv: string[]): boolean {
  return argv.includes('--debug');
}

/** Runs the CLI; sets process.exitCode rather than exiting mid-flight. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  let code: number = ExitCode.OK;
  const setExit = (c: number): void => {
    code = c;
  };
  try {
    // `run` is the default command: `fnpoll -c x.ini` == `fnpoll run -c x.ini`.
    const firstWord = argv.find((a, i) => !a.startsWith('-') && !(i > 0 && ['-c', '--config'].includes(argv[i - 1]!)));
    const wantsMeta = argv.some((a) => ['-h', '--help', '-v', '--version'].includes(a)) && !firstWord;
    // `-v` alone is --version (as binkd -v); with a command it is --verbose, never ignored.
    const args = (firstWord || wantsMeta ? argv : ['run', ...argv]).map((a) => (a === '-v' && firstWord ? '--verbose' : a));
    if (firstWord && !COMMANDS.includes(firstWord)) {
      throw new UsageError(`unknown command "${firstWord}" (commands: ${COMMANDS.filter((c) => c !== 'help').join(', ')})`);
    }
    const cli = build(io, setExit);
    // The version is read from package.json only when it is shown (--version, --help).
    if (argv.some((a) => ['-h', '--help', '-v', '--version'].includes(a)) || firstWord === 'help') {
      const { VERSION } = await import('./version.js');
      cli.version(VERSION);
    }
    cli.parse(['node', 'fnpoll', ...(firstWord === 'help' ? ['--help'] : args)], { run: false });
    if (cli.matchedCommand) await cli.runMatchedCommand();
  } catch (err) {
    // A cron tick that collides with a long transfer is normal: under --quiet it must not make
    // cron mail the sysop (issue 14). The exit code (75) still tells a script.
    if (err instanceof LockError && argv.some((a) => a === '-q' || a === '--quiet') && !debugRequested(argv)) code = err.exitCode;
    else code = reportError(err, io, debugRequested(argv));
  }
  process.exitCode = code;
  return code;
}

/** One clear line per problem; stack only with --debug. */
export function reportError(err: unknown, io: Io, debug: boolean): number {
  if (err instanceof ConfigError) {
    for (const p of err.problems) io.err(`fnpoll: ${p}\n`);
  } else if (err instanceof FnpollError) {
    io.err(`fnpoll: ${err.message}\n`);
  } else if (err instanceof Error && err.name === 'CACError') {
    io.err(`fnpoll: ${err.message} (see fnpoll --help)\n`);
    if (debug) io.err(`${err.stack}\n`);
    return ExitCode.USAGE;
  } else {
    const msg = err instanceof Error ? err.message : String(err);
    io.err(`fnpoll: internal error: ${msg}${debug ? '' : ' (run with --debug for details)'}\n`);
    if (debug && err instanceof Error) io.err(`${err.stack}\n`);
    return ExitCode.SOFTWARE;
  }
  if (debug && err instanceof Error) io.err(`${err.stack}\n`);
  return err.exitCode;
}
