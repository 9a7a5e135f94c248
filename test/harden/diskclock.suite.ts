/**
 * Disk full and clock jumps (issue 11), against the real binkd.
 *
 * - **Inbound on a small tmpfs.** The hub sends more than fits: the run fails with one line (no
 *   stack trace), the state is saved, nothing is lost: once the filesystem has room, the next run
 *   gets every file, byte for byte.
 * - **ENOSPC during the state save.** The state file sits on a full tmpfs: the run exits 74 with
 *   one line naming the state file, the old state still parses, no temp file is left; once there is
 *   room, the next run saves.
 * - **The clock moved by ±3 days between runs.** fnpoll runs under libfaketime (Debian's
 *   `faketime`), so its clock really jumps while the files keep their real times, as on a machine
 *   whose clock was wrong. In each direction: no hub becomes never-due (it is due again within
 *   its poll interval, or within the longest configured period when it was in backoff) or
 *   always-due (right after a successful poll it is not due).
 *
 * Needs root for mount(8); `npm test` runs as root (CI too). Figures: cases, lost, corrupt,
 * stackTraces, badExits, tempFiles, invalidStates, neverDue, alwaysDue.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readFile, readdir, statfs, symlink, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BinkdHub } from '../helpers/binkd.js';
import { BIN, TestNode, pseudoRandomBytes, sha256, type RunResult } from '../helpers/node.js';
import { parseState } from '../../src/poll/state.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const PASSWORD = 'disk-clock';
const DAY_H = 24;

type Figures = Record<
  'cases' | 'lost' | 'corrupt' | 'stackTraces' | 'badExits' | 'tempFiles' | 'invalidStates' | 'neverDue' | 'alwaysDue',
  number
>;

function mountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
}

function remountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-o', `remount,size=${size}`, dir]);
}

function umount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
}

/** `fnpoll <args>` with the clock shifted by `offset` (faketime syntax: `-72h`, `+3d`, `-71h`). */
function runAt(node: TestNode, offset: string | undefined, args: string[]): Promise<RunResult> {
  const cmd = offset === undefined ? process.execPath : 'faketime';
  const argv = [...(offset === undefined ? [] : ['-f', offset, process.execPath]), BIN, ...args, '-c', node.configPath];
  // NO_FAKE_STAT: file times stay real, as after a real clock jump.
  const child = spawn(cmd, argv, { env: { ...process.env, NO_COLOR: '1', NO_FAKE_STAT: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** Is the hub due at clock offset `offset`? From `run --dry-run`, which plans as a run does (`poll  hub ...`). */
async function dueAt(node: TestNode, offset: string | undefined): Promise<boolean> {
  const r = await runAt(node, offset, ['run', '--dry-run']);
  const m = /^(poll|skip)\s+hub\b/m.exec(r.stdout);
  if (!m) throw new Error(`fnpoll run --dry-run (clock ${offset ?? 'now'}) exited ${r.code}: ${r.stdout}${r.stderr}`);
  return m[1] === 'poll';
}

function hasStack(text: string): boolean {
  return /^\s+at .+\(.+:\d+:\d+\)$/m.test(text) || /^\s+at .+:\d+:\d+$/m.test(text);
}

export async function diskClock(print: (l: string) => void = (l) => void process.stdout.write(`${l}\n`)): Promise<Figures> {
  const f: Figures = { cases: 0, lost: 0, corrupt: 0, stackTraces: 0, badExits: 0, tempFiles: 0, invalidStates: 0, neverDue: 0, alwaysDue: 0 };
  const problems: string[] = [];
  const expect = (ok: boolean, key: keyof Figures, what: string): void => {
    if (ok) return;
    f[key]++;
    problems.push(what);
  };
  const hub = await BinkdHub.start({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
  const mounts: string[] = [];
  const nodes: TestNode[] = [];
  const makeNode = async (over: { node?: Record<string, string>; poller?: Record<string, string> } = {}): Promise<TestNode> => {
    const n = await TestNode.create({
      address: US,
      hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD, extra: { poll_frequency: '1h' } }],
      poller: { retry_max: '6h', hold_time: '1d', ...over.poller },
      ...(over.node ? { node: over.node } : {}),
    });
    nodes.push(n);
    return n;
  };
  try {
    // ---- inbound on a small tmpfs -------------------------------------------------------------
    {
      f.cases++;
      const node = await makeNode();
      const inbound = join(node.dir, 'inbound');
      await mkdir(inbound, { recursive: true });
      mountTmpfs(inbound, '1m');
      mounts.push(inbound);
      const files = [
        { name: 'big.bin', data: pseudoRandomBytes(3 << 20, 5) },
        { name: 'small.bin', data: pseudoRandomBytes(5_000, 6) },
      ];
      const base = hub.outboundFor(US);
      const lines: string[] = [];
      for (const x of files) {
        const p = join(hub.dir, x.name);
        await writeFile(p, x.data);
        lines.push(`^${p}`);
      }
      await writeFile(`${base}.flo`, `${lines.join('\n')}\n`);
      const full = await runAt(node, undefined, ['now']);
      expect(full.code === 1, 'badExits', `inbound full: exit ${full.code}, expected 1\n${full.stderr}`);
      expect(!hasStack(full.stderr), 'stackTraces', `inbound full: a stack trace\n${full.stderr}`);
      expect(/no space left|ENOSPC/i.test(full.stderr), 'badExits', `inbound full: no word of the full disk\n${full.stderr}`);
      expect(await stateOk(node), 'invalidStates', 'inbound full: state does not parse');
      // Room again: the next run gets everything.
      remountTmpfs(inbound, '16m');
      const again = await runAt(node, undefined, ['now']);
      expect(again.code === 0, 'badExits', `inbound with room: exit ${again.code}\n${again.stderr}`);
      for (const x of files) {
        const got = await readFile(join(inbound, x.name)).catch(() => undefined);
        if (!got) expect(false, 'lost', `inbound: ${x.name} lost`);
        else expect(sha256(got) === sha256(x.data), 'corrupt', `inbound: ${x.name} corrupt`);
      }
      const left = (await readdir(join(inbound, 'tmp')).catch(() => [] as string[])).filter((n) => !n.endsWith('.part') && !n.endsWith('.json'));
      expect(left.length === 0, 'tempFiles', `inbound temp: ${left.join(', ')}`);
    }

    // ---- ENOSPC while saving the state ----------------------------------------------------------
    {
      f.cases++;
      const node = await makeNode();
      const first = await runAt(node, undefined, ['now']);
      expect(first.code === 0, 'badExits', `state save: first run exit ${first.code}\n${first.stderr}`);
      // The state file moves to a small tmpfs; the config keeps naming it through a symlink
      // (write-file-atomic writes its temp file beside the symlink's target).
      const stateDir = join(node.dir, 'state');
      await mkdir(stateDir);
      mountTmpfs(stateDir, '64k');
      mounts.push(stateDir);
      const before = await readFile(node.stateFile, 'utf8');
      await writeFile(join(stateDir, 'state.json'), before);
      await rm(node.stateFile);
      await symlink(join(stateDir, 'state.json'), node.stateFile);
      // Fill the filesystem to the last byte.
      const st = await statfs(stateDir);
      await writeFile(join(stateDir, 'filler'), Buffer.alloc(Number(st.bavail) * Number(st.bsize))).catch(() => undefined);
      const fullRun = await runAt(node, undefined, ['now']);
      expect(fullRun.code === 74, 'badExits', `state save on a full disk: exit ${fullRun.code}, expected 74\n${fullRun.stderr}`);
      expect(!hasStack(fullRun.stderr), 'stackTraces', `state save: a stack trace\n${fullRun.stderr}`);
      expect(fullRun.stderr.includes(node.stateFile), 'badExits', `state save: the state file is not named\n${fullRun.stderr}`);
      const after = await readFile(join(stateDir, 'state.json'), 'utf8').catch(() => '');
      expect(after === before && stateParses(after), 'invalidStates', 'state save: the old state was damaged');
      const temps = (await readdir(stateDir)).filter((n) => /^state\.json\.\d+$/.test(n));
      expect(temps.length === 0, 'tempFiles', `state save: temp files left: ${temps.join(', ')}`);
      await rm(join(stateDir, 'filler'));
      const room = await runAt(node, undefined, ['now']);
      expect(room.code === 0, 'badExits', `state save with room: exit ${room.code}\n${room.stderr}`);
      expect(stateParses(await readFile(join(stateDir, 'state.json'), 'utf8').catch(() => '')), 'invalidStates', 'state save: the new state does not parse');
    }

    // ---- the clock moved back 3 days ------------------------------------------------------------
    {
      f.cases++;
      const node = await makeNode();
      const polled = await runAt(node, undefined, ['run']);
      expect(polled.code === 0, 'badExits', `clock: first run exit ${polled.code}\n${polled.stderr}`);
      // Back 3 days: the last success lies in the future.
      expect(!(await dueAt(node, `-${3 * DAY_H}h`)), 'alwaysDue', 'clock -3d: due right after a success');
      const back = await runAt(node, `-${3 * DAY_H}h`, ['run']);
      expect(back.code === 0, 'badExits', `clock -3d: run exit ${back.code}\n${back.stderr}`);
      // One poll interval later (on the wrong clock) it is due again.
      expect(await dueAt(node, `-${3 * DAY_H - 1}h`), 'neverDue', 'clock -3d: not due one poll interval later');
      const later = await runAt(node, `-${3 * DAY_H - 1}h`, ['run']);
      expect(later.code === 0 && (await stateOk(node)), 'badExits', `clock -3d+1h: run exit ${later.code}\n${later.stderr}`);
      expect(!(await dueAt(node, `-${3 * DAY_H - 1}h`)), 'alwaysDue', 'clock -3d+1h: due right after a success');
      // The clock is set right again (3 days forward): due once, then not.
      expect(await dueAt(node, undefined), 'neverDue', 'clock back to now: not due although the last poll is 3 days old');
      await runAt(node, undefined, ['run']);
      expect(!(await dueAt(node, undefined)), 'alwaysDue', 'clock back to now: due right after a success');
    }

    // ---- the clock moved forward 3 days, with a hub in backoff ----------------------------------
    {
      f.cases++;
      const node = await makeNode();
      await runAt(node, undefined, ['run']);
      // 3 days ahead: due (the interval passed), and not again right after.
      expect(await dueAt(node, `+${3 * DAY_H}h`), 'neverDue', 'clock +3d: not due');
      await runAt(node, `+${3 * DAY_H}h`, ['run']);
      expect(!(await dueAt(node, `+${3 * DAY_H}h`)), 'alwaysDue', 'clock +3d: due right after a success');
      // A failure 3 days ahead (hub unreachable) puts it in backoff there.
      await node.writeConfig({
        address: US,
        hubs: [{ name: 'hub', address: HUB, port: 1, password: PASSWORD, extra: { poll_frequency: '1h' } }],
        poller: { retry_max: '6h', hold_time: '1d' },
      });
      const failed = await runAt(node, `+${3 * DAY_H + 2}h`, ['run']);
      expect(failed.code === 1, 'badExits', `clock +3d: failing run exit ${failed.code}\n${failed.stderr}`);
      await node.writeConfig({
        address: US,
        hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD, extra: { poll_frequency: '1h' } }],
        poller: { retry_max: '6h', hold_time: '1d' },
      });
      // Clock set right (3 days back): every time in the state lies ahead. Not due now, but within
      // the longest configured period (hold_time 1d) plus the interval, never later.
      expect(!(await dueAt(node, undefined)), 'alwaysDue', 'clock back from +3d: due at once although polled "3 days from now"');
      // A cron run with nothing due writes the capped times (else each later run would cap again).
      const cron = await runAt(node, undefined, ['run']);
      expect(cron.code === 0, 'badExits', `clock back from +3d: cron run exit ${cron.code}\n${cron.stderr}`);
      expect(await dueAt(node, `+${DAY_H + 2}h`), 'neverDue', 'clock back from +3d: still not due a day and the interval later');
      const caught = await runAt(node, `+${DAY_H + 2}h`, ['run']);
      expect(caught.code === 0, 'badExits', `clock back from +3d: run exit ${caught.code}\n${caught.stderr}`);
      expect(/lies in the future/.test(await node.log()), 'badExits', 'clock back from +3d: no warning about the future times');
      expect(!(await dueAt(node, `+${DAY_H + 2}h`)), 'alwaysDue', 'clock back from +3d: due right after a success');
    }
  } finally {
    for (const m of mounts.reverse()) umount(m);
    await hub.stop();
    if (problems.length === 0) for (const n of nodes) await n.remove();
  }
  print(
    `disk and clock: ${f.cases} cases; lost ${f.lost}, corrupt ${f.corrupt}, stack traces ${f.stackTraces}, bad exits ${f.badExits}, ` +
      `temp files ${f.tempFiles}, invalid states ${f.invalidStates}, never due ${f.neverDue}, always due ${f.alwaysDue}`,
  );
  for (const p of problems) print(`disk and clock: ${p}`);
  return f;
}

function stateParses(text: string): boolean {
  try {
    parseState(text);
    return true;
  } catch {
    return false;
  }
}

async function stateOk(node: TestNode): Promise<boolean> {
  const text = await readFile(node.stateFile, 'utf8').catch(() => undefined);
  return text === undefined || stateParses(text);
}

/** Figures that must be 0 (`cases` counts the situations tried). */
export const mustBeZero = ['lost', 'corrupt', 'stackTraces', 'badExits', 'tempFiles', 'invalidStates', 'neverDue', 'alwaysDue'] as const;

/** The harden contract; both sizes are the same few cases (each is one real situation). */
export async function run(_size: 'full' | 'small'): Promise<Record<string, number>> {
  return diskClock();
}
