import { createRequire } from 'node:module';

/**
 * fnpoll's version, from package.json (one small read; the CLI needs it for --version and VER).
 * require(), not an ES import of node:fs: that import builds fs's whole namespace, streams included.
 */
export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
