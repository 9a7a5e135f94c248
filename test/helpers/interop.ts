/**
 * Shared by the interop tests: resources that are cleaned up after the file's tests, test data
 * with known hashes, and polling for a condition instead of sleeping.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BinkdHub, type BinkdHubOptions } from './binkd.js';
import { TestNode, fileHash, pseudoRandomBytes, sha256, type NodeOptions, type RunResult } from './node.js';
import { makeTempDir, removeTempDir } from './tmp.js';

/** What a test file starts, stopped and removed in reverse order by `run()` (call it in after()). */
export class Cleanups {
  private readonly list: (() => Promise<void>)[] = [];

  push(fn: () => Promise<void>): void {
    this.list.push(fn);
  }

  async run(): Promise<void> {
    for (const c of this.list.splice(0).reverse()) await c().catch(() => undefined);
  }

  /** A binkd hub on a free loopback port, stopped afterwards. */
  startHub = async (opts: BinkdHubOptions): Promise<BinkdHub> => {
    const hub = await BinkdHub.start(opts);
    this.push(() => hub.stop());
    return hub;
  };

  /** A temp fnpoll node, removed afterwards. */
  makeNode = async (opts: NodeOptions): Promise<TestNode> => {
    const node = await TestNode.create(opts);
    this.push(() => node.remove());
    return node;
  };

  tempDir = async (prefix: string): Promise<string> => {
    const dir = await makeTempDir(prefix);
    this.push(() => removeTempDir(dir));
    return dir;
  };
}

export interface DataFile {
  path: string;
  data: Buffer;
  hash: string;
  name: string;
}

/** A file with pseudo-random content (reproducible from `seed`) and mtime `mtime`. */
export async function dataFile(dir: string, name: string, size: number, seed: number, mtime: number): Promise<DataFile> {
  await mkdir(dir, { recursive: true });
  const data = pseudoRandomBytes(size, seed);
  const path = join(dir, name);
  await writeFile(path, data);
  await utimes(path, mtime, mtime);
  return { path, data, hash: sha256(data), name };
}

/** name → sha256 of every regular file in `dir`. */
export async function hashes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isFile()) out.set(e.name, await fileHash(join(dir, e.name)));
  }
  return out;
}

export function assertExit(r: RunResult, code: number): void {
  assert.equal(r.code, code, `fnpoll exited ${r.code} (signal ${r.signal}), expected ${code}\nstderr:\n${r.stderr}`);
}

/** Sessions binkd accepted, by its log. */
export function sessions(log: string): number {
  return log.match(/incoming from 127\.0\.0\.1/g)?.length ?? 0;
}

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export const delay = (ms: number): Promise<void> => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `check` until it returns a value; fail with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(25);
  }
}
