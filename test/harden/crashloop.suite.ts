/**
 * Crash loop against the real binkd (issue 11): nothing is lost, duplicated or wedged when fnpoll
 * is killed with SIGKILL at any moment.
 *
 * Each round queues new, uniquely named files both ways (our `^`, `#` and plain flow lines and a
 * netmail packet; the hub's `^` and `#` lines and a netmail packet), 0 bytes to 20 MB. It starts
 * `fnpoll now` and SIGKILLs it at a moment picked for the round: as it connects (its `.csy`
 * appears), in the handshake (its `.bsy` appears, on the hub's M_ADR), mid-file receiving (our
 * partial grows) and sending (binkd's partial grows), in the M_GOT windows (a file appears in our
 * inbound, or in the hub's), while it journals a confirmation, while it saves its state, or after
 * a random delay. The triggers are inotify watches (fs.watch), so the kill lands within
 * microseconds of the event, in the window that follows it. The state file must parse after every
 * kill. Then a clean `fnpoll now` runs at once: no manual cleanup, no waiting for a stale period
 * (a run refused with 75 is counted). After the last round, clean runs until both queues are
 * empty, and the checks:
 * - every file arrived exactly once on each side, byte for byte (sha256), under its own name:
 *   `lost`, `duplicated` (a second copy or a renamed one), `corrupt` (content that matches no
 *   queued file in full: a partial renamed in);
 * - our outbound: `^` files gone, `#` files empty, plain files kept, no flow file left;
 * - `staleFlags`: any `.bsy`/`.csy`, the run lock or its take-over guard left behind;
 * - `tempFiles`: state temp files, journals, flag temp files, partials;
 * - `invalidStates`: a state file that did not parse after a kill.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { BinkdHub } from '../helpers/binkd.js';
import { TestNode, pseudoRandomBytes, sha256, type RunResult } from '../helpers/node.js';
import { prng } from '../helpers/random.js';
import { parseState } from '../../src/poll/state.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const HUB_BSO = '139c0001';
const PASSWORD = 'crash-loop';

export const KILL_MOMENTS = ['connect', 'handshake', 'receiving', 'sending', 'got-in', 'got-out', 'journal', 'state', 'random'] as const;
export type KillMoment = (typeof KILL_MOMENTS)[number];

/** A file queued on one side; `kind` decides what must be left of it on the sender's side. */
interface Queued {
  name: string;
  hash: string;
  size: number;
  kind: 'delete' | 'truncate' | 'keep' | 'netmail';
  /** Where it sits on the sender's side (for delete/truncate/keep). */
  path?: string;
}

export interface CrashLoopOptions {
  rounds: number;
  seed: number;
  /** Rounds that also carry a 20 MB file (each way). */
  bigEvery: number;
  print?: (line: string) => void;
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A size from 0 bytes to 2 MB, mostly small, as mail is. */
function pickSize(rnd: () => number): number {
  const r = rnd();
  if (r < 0.15) return 0;
  if (r < 0.5) return 1 + Math.floor(rnd() * 4_000);
  if (r < 0.8) return 4_000 + Math.floor(rnd() * 200_000);
  return 200_000 + Math.floor(rnd() * 1_800_000);
}

/** A netmail packet (its content only has to be unique and longer than 60 bytes). */
function packet(seed: number): Buffer {
  return pseudoRandomBytes(200 + (seed % 3000), seed);
}

export async function crashLoop(opts: CrashLoopOptions): Promise<Record<string, number>> {
  const print = opts.print ?? ((l: string) => void process.stdout.write(`${l}\n`));
  const rnd = prng(opts.seed);
  const hub = await BinkdHub.start({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
  const node = await TestNode.create({
    address: US,
    hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }],
    // Large enough that no kill round ends in a timeout; small enough to bound a stuck session.
    poller: { idle_timeout: '20s', session_timeout: '2m' },
  });
  const figures = {
    rounds: 0,
    kills: 0,
    notKilled: 0,
    filesChecked: 0,
    lost: 0,
    duplicated: 0,
    corrupt: 0,
    staleFlags: 0,
    tempFiles: 0,
    invalidStates: 0,
    blockedRuns: 0,
    wedged: 0,
    leftInOutbound: 0,
    partialsKept: 0,
  };
  const moments = new Map<KillMoment, number>();
  // Every moment in turn from a random start, so even a few rounds cover different windows.
  const firstMoment = Math.floor(rnd() * KILL_MOMENTS.length);
  const trace = process.env['FNPOLL_CRASH_TRACE'] === '1';
  const toHub: Queued[] = [];
  const toUs: Queued[] = [];
  const problems: string[] = [];
  try {
    await mkdir(node.tempInbound, { recursive: true });
    await mkdir(node.inbound, { recursive: true });
    const hubBase = hub.outboundFor(US);
    const hubFiles = join(hub.dir, 'files');
    await mkdir(hubFiles, { recursive: true });
    let seq = 0;

    for (let round = 1; round <= opts.rounds; round++) {
      figures.rounds++;
      const moment = KILL_MOMENTS[(firstMoment + round - 1) % KILL_MOMENTS.length]!;
      const t0 = Date.now();
      const big = opts.bigEvery > 0 && round % opts.bigEvery === 0;
      // A file big enough to be caught mid-transfer when the round kills there.
      const needLarge = moment === 'receiving' || moment === 'sending';

      // ---- queue ours: ^, #, plain lines and a netmail packet
      const lines: string[] = [];
      const kinds: Queued['kind'][] = ['delete', 'truncate', 'keep', 'delete'];
      for (const kind of kinds) {
        const name = `r${round}-${++seq}-${kind}.bin`;
        const size = big && kind === 'delete' && lines.length === 0 ? 20 << 20 : needLarge && lines.length === 0 ? 3 << 20 : pickSize(rnd);
        const data = pseudoRandomBytes(size, seq * 7919 + round);
        const path = await node.file(name, data);
        toHub.push({ name, hash: sha256(data), size, kind, path });
        lines.push(`${kind === 'delete' ? '^' : kind === 'truncate' ? '#' : ''}${path}`);
      }
      const flo = join(node.outbound, `${HUB_BSO}.flo`);
      await writeFile(flo, `${lines.join('\n')}\n`, { flag: 'a' });
      const ourPkt = join(node.outbound, `${HUB_BSO}.out`);
      if (!(await exists(ourPkt))) {
        const data = packet(round * 31 + 1);
        await writeFile(ourPkt, data);
        toHub.push({ name: '(netmail)', hash: sha256(data), size: data.length, kind: 'netmail' });
      }

      // ---- queue the hub's: ^ and # lines and a netmail packet
      const hubLines: string[] = [];
      for (const kind of ['delete', 'truncate', 'delete'] as const) {
        const name = `h${round}-${++seq}-${kind}.bin`;
        const size = big && hubLines.length === 0 ? 20 << 20 : needLarge && hubLines.length === 0 ? 3 << 20 : pickSize(rnd);
        const data = pseudoRandomBytes(size, seq * 104729 + round);
        const path = join(hubFiles, name);
        await writeFile(path, data);
        const t = Math.floor(Date.now() / 1000) - 60;
        await utimes(path, t, t);
        toUs.push({ name, hash: sha256(data), size, kind, path });
        hubLines.push(`${kind === 'delete' ? '^' : '#'}${path}`);
      }
      // The hub's netmail goes as a packet on a `^` line, as a tosser's bundle would. Not as a
      // `.out`: binkd offers a `.out` under a new name in every session (seen here: one 295-byte
      // packet offered as b28e0a3f.pkt, then as d3e3a941.pkt after a kill), so a kill in its M_GOT
      // window would make binkd itself send a second copy; fnpoll's own `.out` names are stable.
      const pktName = `${(0x40000000 + round * 4099 + seq).toString(16).padStart(8, '0')}.pkt`;
      const pkt = packet(round * 31 + 2);
      await writeFile(join(hubFiles, pktName), pkt);
      toUs.push({ name: pktName, hash: sha256(pkt), size: pkt.length, kind: 'delete', path: join(hubFiles, pktName) });
      hubLines.push(`^${join(hubFiles, pktName)}`);
      await writeFile(`${hubBase}.flo`, `${hubLines.join('\n')}\n`, { flag: 'a' });

      // ---- the killed run
      const killed = await killedRun(node, hub, moment, rnd);
      moments.set(moment, (moments.get(moment) ?? 0) + 1);
      if (killed) {
        figures.kills++;
      } else figures.notKilled++;
      if (!(await stateParses(node))) {
        figures.invalidStates++;
        problems.push(`round ${round} (${moment}): the state file does not parse after the kill`);
      }

      // ---- a clean run, at once
      const t1 = Date.now();
      const clean = await cleanRun(node, figures);
      if (trace) print(`round ${round} ${moment}: killed ${killed} after ${t1 - t0} ms, clean run ${clean.code} after ${Date.now() - t1} ms`);
      if (clean.code !== 0) problems.push(`round ${round} (${moment}): clean run exited ${clean.code}: ${clean.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }

    // ---- drain both queues, then check
    for (let i = 0; i < 5; i++) {
      const ours = (await readdir(node.outbound)).filter((n) => /\.(flo|out|clo|dlo|hlo|ilo|cut|dut|hut|iut)$/i.test(n));
      const theirs = (await readdir(hub.outbound)).filter((n) => n.startsWith(basename(hubBase)) && /\.(flo|out)$/.test(n));
      if (ours.length === 0 && theirs.length === 0) break;
      await cleanRun(node, figures);
    }
    await checkSide('hub', toHub, hub.inbound, figures, problems);
    await checkSide('us', toUs, node.inbound, figures, problems);
    await checkOurOutbound(node, toHub, figures, problems);
    await checkLitter(node, figures, problems);
  } finally {
    await hub.stop();
    if (problems.length === 0) await node.remove();
    else print(`crash loop: kept ${node.dir} for inspection`);
  }
  const by = [...moments].map(([m, n]) => `${m} ${n}`).join(', ');
  print(`crash loop: ${figures.rounds} rounds, ${figures.kills} kills (${by}), ${figures.notKilled} runs ended before their kill`);
  print(
    `crash loop: files checked ${figures.filesChecked}, lost ${figures.lost}, duplicated ${figures.duplicated}, corrupt ${figures.corrupt}, ` +
      `stale flags ${figures.staleFlags}, temp files ${figures.tempFiles}, invalid states ${figures.invalidStates}, ` +
      `runs refused after a kill ${figures.blockedRuns}, wedged ${figures.wedged}, left in outbound ${figures.leftInOutbound} ` +
      `(partials kept for a later resume: ${figures.partialsKept})`,
  );
  for (const p of problems.slice(0, 20)) print(`crash loop: ${p}`);
  return figures;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function stateParses(node: TestNode): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(node.stateFile, 'utf8');
  } catch {
    return true; // none yet (killed before the first save): nothing to parse
  }
  try {
    parseState(text);
    return true;
  } catch {
    return false;
  }
}

/** Start `fnpoll now` and SIGKILL it at `moment`. True when the kill happened before it ended. */
async function killedRun(node: TestNode, hub: BinkdHub, moment: KillMoment, rnd: () => number): Promise<boolean> {
  const proc = node.spawn(['now']);
  let killedIt = false;
  const kill = (): void => {
    if (killedIt || proc.child.exitCode !== null) return;
    killedIt = proc.child.kill('SIGKILL');
  };
  const watchers: FSWatcher[] = [];
  /** Kill on the `nth` event in `dir` whose name matches `re`. */
  const on = (dir: string, re: RegExp, nth = 1): void => {
    let seen = 0;
    try {
      watchers.push(
        watch(dir, (_ev, name) => {
          if (name && re.test(String(name)) && ++seen >= nth) kill();
        }),
      );
    } catch {
      // the directory is not there yet: the random fallback below still kills
    }
  };
  switch (moment) {
    case 'connect':
      on(node.outbound, /\.csy$/);
      break;
    case 'handshake':
      on(node.outbound, /\.bsy$/);
      break;
    case 'receiving':
      on(node.tempInbound, /\.part$/, 2 + Math.floor(rnd() * 6));
      break;
    case 'sending':
      on(hub.tempInbound, /./, 2 + Math.floor(rnd() * 6));
      break;
    case 'got-in':
      on(node.inbound, /^[^.]/, 1 + Math.floor(rnd() * 3));
      break;
    case 'got-out':
      on(hub.inbound, /^[^.]/, 1 + Math.floor(rnd() * 3));
      break;
    case 'journal':
      on(node.dir, /\.delivered\.\d+$/);
      break;
    case 'state':
      on(node.dir, /^state\.json\.\d+$/);
      break;
    case 'random':
      break;
  }
  // Every round also has a random deadline, so a trigger that never fires still kills somewhere.
  const timer = setTimeout(kill, moment === 'random' ? Math.floor(rnd() * 1500) : 3000 + Math.floor(rnd() * 2000));
  const r = await proc.done;
  clearTimeout(timer);
  for (const w of watchers) w.close();
  return killedIt && r.signal === 'SIGKILL';
}

/**
 * `fnpoll now` right after a kill. Exit 75 (lock or flag held) counts as a blocked run: a dead
 * run's lock and flags must be taken over at once. The hub may still be closing the killed
 * session (binkd keeps its .bsy for us until its session child ends) and answer busy: retried.
 */
async function cleanRun(node: TestNode, figures: { blockedRuns: number; wedged: number }): Promise<RunResult> {
  let r: RunResult | undefined;
  for (let attempt = 0; attempt < 8; attempt++) {
    r = await node.run(['now']);
    if (r.code === 0) return r;
    if (r.code === 75) figures.blockedRuns++;
    await delay(300);
  }
  figures.wedged++;
  return r!;
}

/** Every queued file exactly once in `inbound`, under its own name (netmail: any 8-hex .pkt name). */
async function checkSide(
  side: string,
  queued: Queued[],
  inbound: string,
  f: { filesChecked: number; lost: number; duplicated: number; corrupt: number },
  problems: string[],
): Promise<void> {
  const present = new Map<string, string[]>(); // hash → names
  for (const e of await readdir(inbound, { withFileTypes: true })) {
    if (!e.isFile()) continue;
    const h = sha256(await readFile(join(inbound, e.name)));
    present.set(h, [...(present.get(h) ?? []), e.name]);
  }
  const expected = new Map<string, Queued>();
  for (const q of queued) expected.set(q.hash, q);
  for (const q of queued) {
    f.filesChecked++;
    const names = present.get(q.hash) ?? [];
    // Several queued files may share a hash (two empty files): they share the check by name.
    const mine = q.kind === 'netmail' ? names.filter((n) => /^[0-9a-f]{8}\.pkt$/i.test(n)) : names.filter((n) => n === q.name);
    if (mine.length === 0) {
      f.lost++;
      problems.push(`${side}: ${q.name} (${q.size} bytes) never arrived${names.length ? ` (same content as ${names.join(', ')})` : ''}`);
    } else if (q.kind === 'netmail' && mine.length > 1) {
      f.duplicated++;
      problems.push(`${side}: netmail packet arrived ${mine.length} times: ${mine.join(', ')}`);
    }
  }
  for (const [h, names] of present) {
    const q = expected.get(h);
    if (!q) {
      f.corrupt++;
      problems.push(`${side}: ${names.join(', ')} matches no queued file in full (a partial, or corrupt)`);
      continue;
    }
    const wanted = new Set(queued.filter((x) => x.hash === h).map((x) => x.name));
    for (const n of names) {
      const ok = wanted.has(n) || (wanted.has('(netmail)') && /^[0-9a-f]{8}\.pkt$/i.test(n) && names.filter((m) => /\.pkt$/i.test(m)).length === 1);
      if (!ok) {
        f.duplicated++;
        problems.push(`${side}: ${n} is a second or renamed copy of ${[...wanted].join(', ')}`);
      }
    }
  }
}

async function checkOurOutbound(node: TestNode, queued: Queued[], f: { leftInOutbound: number; lost: number }, problems: string[]): Promise<void> {
  const left = await readdir(node.outbound);
  for (const n of left) {
    f.leftInOutbound++;
    problems.push(`our outbound still holds ${n}`);
  }
  for (const q of queued) {
    if (!q.path) continue;
    const st = await stat(q.path).catch(() => undefined);
    if (q.kind === 'delete' && st) {
      f.leftInOutbound++;
      problems.push(`${q.name}: a delivered ^ file is still there`);
    }
    if (q.kind === 'truncate' && st?.size !== 0) {
      f.leftInOutbound++;
      problems.push(`${q.name}: a delivered # file is ${st ? `${st.size} bytes` : 'gone'}`);
    }
    if (q.kind === 'keep' && (!st || sha256(await readFile(q.path)) !== q.hash)) {
      f.lost++;
      problems.push(`${q.name}: a plain-line file was changed or removed`);
    }
  }
}

async function checkLitter(node: TestNode, f: { staleFlags: number; tempFiles: number; partialsKept: number }, problems: string[]): Promise<void> {
  for (const n of await readdir(node.dir)) {
    if (/\.(lock|takeover)$/.test(n) || /\.lock\.info$/.test(n)) {
      f.staleFlags++;
      problems.push(`left behind: ${n}`);
    } else if (/^state\.json\.\d+$/.test(n) || /\.delivered\.\d+$/.test(n) || /\.(tmp|stale)$/.test(n)) {
      f.tempFiles++;
      problems.push(`temp file left behind: ${n}`);
    }
  }
  for (const n of await readdir(node.outbound)) {
    if (/\.(bsy|csy)$/i.test(n)) f.staleFlags++;
    else if (/\.(tmp|stale)$/.test(n)) f.tempFiles++;
  }
  // Partials are kept on purpose (FTS-1026 §5.5) until partial_max_age; a sidecar without its
  // partial is litter.
  const temp = await readdir(node.tempInbound).catch(() => [] as string[]);
  for (const n of temp) {
    if (n.endsWith('.part')) f.partialsKept++;
    else if (!(n.endsWith('.json') && temp.includes(n.replace(/\.json$/, '.part')))) {
      f.tempFiles++;
      problems.push(`temp inbound holds ${n} without its partial`);
    }
  }
}

/** Figures that must be 0 (the others count what was tried: rounds, kills, files checked, partials kept). */
export const mustBeZero = ['lost', 'duplicated', 'corrupt', 'staleFlags', 'tempFiles', 'invalidStates', 'blockedRuns', 'wedged', 'leftInOutbound'] as const;

/** The harden contract: `npm run harden` calls this; `npm test` runs the small size. */
export async function run(size: 'full' | 'small'): Promise<Record<string, number>> {
  return size === 'full'
    ? crashLoop({ rounds: 50, seed: Number(process.env['FNPOLL_CRASH_SEED'] ?? 20261201), bigEvery: 10 })
    : crashLoop({ rounds: KILL_MOMENTS.length, seed: Number(process.env['FNPOLL_CRASH_SEED'] ?? 11), bigEvery: KILL_MOMENTS.length });
}
