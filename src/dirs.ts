/**
 * `mkdir -p` in bounded steps. Node's own `mkdir(dir, { recursive: true })` loops without end
 * when a parent exists but refuses children with ENOENT, as /proc and /sys do: it climbs to the
 * parent, finds it there (EEXIST), goes back down, gets ENOENT again, and so on at full CPU
 * (seen with `inbound = /proc/fnpoll/in`: a run spun for 15 minutes before the lock was taken,
 * so `run_timeout` never applied). Here each missing component is created once, top down, with
 * a plain mkdir; the first refusal is the answer.
 */
import * as fss from 'node:fs';
import * as path from 'node:path';
import { fsp } from './files.js';

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** `dir` and its missing ancestors, nearest existing ancestor excluded, outermost first. */
function missingChain(dir: string, exists: (p: string) => boolean): string[] {
  const chain: string[] = [];
  for (let p = path.resolve(dir); !exists(p); p = path.dirname(p)) {
    chain.unshift(p);
    if (path.dirname(p) === p) break;
  }
  return chain;
}

function mkdirOne(p: string, mode: number | undefined): void {
  try {
    fss.mkdirSync(p, mode === undefined ? undefined : { mode });
  } catch (err) {
    // Made by someone else meanwhile: fine if it is a directory (or a symlink to one).
    if (errCode(err) === 'EEXIST' && fss.statSync(p, { throwIfNoEntry: false })?.isDirectory()) return;
    throw err;
  }
}

/**
 * Create `dir` and any missing parents; a no-op when it exists. Throws the errno error of the
 * first component that cannot be created (ENOENT under /proc, EACCES, ENOTDIR, EROFS…), after at
 * most one mkdir per missing component.
 */
export function makeDirsSync(dir: string, mode?: number): void {
  const exists = (p: string): boolean => fss.statSync(p, { throwIfNoEntry: false }) !== undefined;
  const chain = missingChain(dir, exists);
  // There already, but not a directory: let mkdir say so (EEXIST), as `mkdir -p` does.
  if (chain.length === 0 && !fss.statSync(dir).isDirectory()) fss.mkdirSync(dir);
  for (const p of chain) mkdirOne(p, mode);
}

/** makeDirsSync for async callers. A handful of mkdir calls: not worth the thread pool. */
export async function makeDirs(dir: string, mode?: number): Promise<void> {
  makeDirsSync(dir, mode);
}

/** Does `dir` (or its nearest existing ancestor) live on a filesystem where nothing can be created? */
export async function pseudoFilesystem(dir: string): Promise<string | undefined> {
  let p = path.resolve(dir);
  for (;;) {
    try {
      const st = await fsp().statfs(p);
      return PSEUDO_FS[st.type];
    } catch (err) {
      const code = errCode(err);
      if ((code === 'ENOENT' || code === 'ENOTDIR') && path.dirname(p) !== p) {
        p = path.dirname(p);
        continue;
      }
      return undefined;
    }
  }
}

/** statfs(2) f_type magic numbers (linux/magic.h) of kernel filesystems that hold no user files. */
const PSEUDO_FS: Readonly<Record<number, string>> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0x27e0eb: 'cgroup',
  0x63677270: 'cgroup2',
  0x73636673: 'securityfs',
  0x6165676c: 'pstorefs',
  0xcafe4a11: 'bpf',
};
