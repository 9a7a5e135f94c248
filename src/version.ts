import { createRequire } from 'node:module';

/**
 * fnpoll's version, from package.json (one small read; the CLI needs it for --version and VER,
 * so every run that calls a hub reads it). Read as a file: require() of the JSON went through
 * Node's module resolution, ~2.5 ms on the development VM against ~0.2 ms. node:fs through
 * require(), not an ES import: that import builds fs's whole namespace, streams included.
 */
const { readFileSync } = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
