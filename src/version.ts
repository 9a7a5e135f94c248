import { readFileSync } from 'node:fs';

/** fnpoll's version, from package.json (one small read; the CLI needs it for --version and VER). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
