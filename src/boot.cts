/**
 * Start-up. `bin/fnpoll.cjs` runs the command line from the single-file build
 * (`dist/bundle/fnpoll.cjs`, made by `npm run build` from tsc's output), not from the ES modules
 * under `dist/src`. Most cron runs find nothing due and end after ~20 ms of work, so how fast Node
 * gets the code running decides what such a run costs. On Node 20, measured on an idle run with
 * 100 hubs (README "Benchmarks"):
 * - Node's ES module loader, 17 modules, each resolved and read asynchronously: ~98 ms;
 * - one CommonJS file loaded synchronously: ~87 ms;
 * - the same file with V8's code cache (below): ~79 ms; `node -e 0` takes ~61 ms.
 *
 * The bundle is whitespace-minified (esbuild `--minify-whitespace`): tsc keeps the comments, and
 * a run reads the whole file into a string before V8 looks at it. With them it was 567 KB, with a
 * few non-ASCII characters that make V8 build a two-byte string, and took ~9 ms to read; without
 * them 406 KB of ASCII and ~4 ms (an idle run ~9 ms sooner). Names are kept, and `--debug` maps
 * stack traces through the source map.
 *
 * The code cache (`fnpoll.cjs.cache`) holds the bytecode of the functions an idle run compiles.
 * The build writes it after running one idle `fnpoll run` (src/build/train-cache.ts). V8 checks it
 * against the source, its own version and its flags, and ignores it on any mismatch (another Node,
 * `--cpu-prof`, a rebuilt bundle); the code is then compiled as usual. It is only ever read here.
 *
 * The build keeps the lazy parts lazy: a module the CLI loads with `import()` (the protocol stack,
 * the log file, progress bars) is evaluated only when that import runs, and V8 compiles a function
 * only when it is first called.
 *
 * With `--debug` the bundle is loaded through require() with source maps on, so that stack traces
 * name the TypeScript sources (src/…/*.ts:line) instead of the bundle.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as vm from 'node:vm';

/** The single-file build and its code cache (dist/src/boot.cjs → dist/bundle/). */
export const BUNDLE = join(__dirname, '..', 'bundle', 'fnpoll.cjs');
export const CODE_CACHE = `${BUNDLE}.cache`;

/** What the bundle exports (src/cli.ts). */
export interface CliModule {
  main(argv: string[], io?: { out: (t: string) => void; err: (t: string) => void }): Promise<number>;
}

export interface Loaded {
  cli: CliModule;
  /** The compiled bundle, for createCachedData() (the build's training run). */
  script: vm.Script;
  /** undefined: no cache file; true: V8 refused it (the code was compiled from source). */
  cacheRejected: boolean | undefined;
}

/**
 * Compile and evaluate the bundle as a CommonJS module, with the code cache when there is one.
 * `cache: false` ignores the cache file (the build's training run starts from source).
 */
export function loadBundle(opts: { cache?: boolean } = {}): Loaded {
  let source: string;
  try {
    source = readFileSync(BUNDLE, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new Error(`fnpoll: cannot read ${BUNDLE} (${code}); run \`npm run build\``, { cause: err });
  }
  let cachedData: Buffer | undefined;
  if (opts.cache !== false) {
    try {
      cachedData = readFileSync(CODE_CACHE);
    } catch {
      // No cache (a build without the training step): compile from source.
    }
  }
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new vm.Script(wrapper, {
    filename: BUNDLE,
    ...(cachedData ? { cachedData } : {}),
    // The bundle has no import() left (esbuild turns each into a require of its own chunk), but an
    // import() that slips in must still resolve like any other.
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} as CliModule };
  // require() as the bundle sees it from its own path (node_modules, node: builtins).
  const bundleRequire = createRequire(pathToFileURL(BUNDLE));
  (script.runInThisContext() as (...args: unknown[]) => void).call(
    module.exports,
    module.exports,
    bundleRequire,
    module,
    BUNDLE,
    join(BUNDLE, '..'),
  );
  return { cli: module.exports, script, cacheRejected: cachedData ? script.cachedDataRejected === true : undefined };
}

/** bin/fnpoll.cjs: run the command line; the exit code is left in process.exitCode. */
/**
 * libuv's thread pool, unless the environment sets its size: read once, when the pool first
 * starts, which is after this. Its default of 4 runs at most four fdatasyncs of received files at
 * a time (src/bso/durable.ts syncs them in batches of 32); with all of a batch in flight the
 * filesystem writes and commits them together. Measured on ext4, 1000 × 8 KB received with
 * `fsync = yes`: 880 ms with 4 threads, 785 ms with 32, 720 ms without syncing (README
 * "Benchmarks", row 1e). The threads are started when the pool is first used and mostly sleep.
 */
export const THREAD_POOL_SIZE = 32;

export function boot(argv: string[]): void {
  process.env['UV_THREADPOOL_SIZE'] ??= String(THREAD_POOL_SIZE);
  let cli: CliModule;
  if (argv.includes('--debug')) {
    process.setSourceMapsEnabled(true);
    cli = require(BUNDLE) as CliModule;
  } else {
    try {
      cli = loadBundle().cli;
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exitCode = 70;
      return;
    }
  }
  void cli.main(argv);
}
