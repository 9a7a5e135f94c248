/**
 * One harden suite in a process of its own (started by ./run.ts): `child.js <suite.js> <size>`.
 * Imports the suite, awaits `run(size)`, and sends the figures to the parent over IPC.
 */
import { pathToFileURL } from 'node:url';
import type { Figures, Size, SuiteRun } from './lib.js';

async function main(): Promise<void> {
  const [file, size] = process.argv.slice(2) as [string, Size];
  const suite = (await import(pathToFileURL(file).href)) as { run?: SuiteRun };
  if (typeof suite.run !== 'function') throw new Error(`${file} exports no run(size)`);
  const figures: Figures = await suite.run(size);
  await new Promise<void>((resolve, reject) => process.send!({ figures }, (err: Error | null) => (err ? reject(err) : resolve())));
  process.disconnect();
  // A suite must stop what it started; one that left a handle open is named, and not waited for.
  setTimeout(() => {
    process.stderr.write(`harden: ${file} left handles open after its run (a peer or timer not stopped)\n`);
    process.exit(0);
  }, 10_000).unref();
}

main().catch((err: unknown) => {
  process.stderr.write(`harden: ${process.argv[2]}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
