/** Throwaway BSO trees for outbound unit tests. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BsoLayout } from '../../src/bso/types.js';

export interface OutboundTree {
  layout: BsoLayout;
  out: string;
  files: string;
}

/**
 * Temp outbound trees under one base directory: `fresh()` gives a new tree (default zone 2) plus
 * a directory for the files flow lines point at; `remove()` deletes them all.
 */
export class OutboundTrees {
  private base: string | undefined;
  private counter = 0;

  constructor(private readonly prefix: string) {}

  async fresh(): Promise<OutboundTree> {
    this.base ??= await mkdtemp(join(tmpdir(), this.prefix));
    const dir = join(this.base, `t${++this.counter}`);
    const out = join(dir, 'out');
    const files = join(dir, 'files');
    await mkdir(out, { recursive: true });
    await mkdir(files, { recursive: true });
    return { layout: { root: out, defaultZone: 2 }, out, files };
  }

  async remove(): Promise<void> {
    if (this.base) await rm(this.base, { recursive: true, force: true });
  }
}

/** Write a file, creating its directory; returns the path. */
export async function put(path: string, content: string | Buffer): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
  return path;
}
