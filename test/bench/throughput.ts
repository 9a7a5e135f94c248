/**
 * Issue 6, item 1: throughput to and from a real binkd hub on loopback, fnpoll against binkd's
 * own one-shot caller (`binkd -r -p -P <hub> cfg`: -p poll and quit, -P the node to poll, -r no
 * CRYPT) with the same outbound, the same hub and the same payload (1 × 200 MB + 1000 × 8 KB
 * packets). Targets (issue 10): fnpoll's wall time ≤ 0.8 × binkd's sending and ≤ 1.0 × receiving,
 * medians of the rounds, with files on tmpfs (rows 1a, 1b) and on disk (1a-disk, 1b-disk).
 *
 * Each side gets its defaults for block sizes: binkd's oblksize 4096 (the hub's too), fnpoll's
 * buffer_size 32767. Both run as the cron job would: fnpoll `run` (state removed so the hub is
 * due), binkd `-p`. A round counts only when verified: exit status, the hub's log (and binkd
 * caller's) says `done (..., OK`, every file arrived with its hash, nothing extra.
 *
 * Two more rows split the send in its parts (the big file alone, the packets alone), and every
 * row notes the CPU time the hub's own session process used: where that alone exceeds the target
 * (target × binkd's wall), no caller can meet it against this hub, and the note says so.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BinkdHub, BINKD } from '../helpers/binkd.js';
import { BenchNode } from './node.js';
import { makePayload, verifyDelivered, type PayloadFile } from './payload.js';
import { expectExit, fmtMB, fmtMs, fmtRate, measure, median, progress, type BenchSettings, type Measured, type Row } from './lib.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const PASSWORD = 'BenchPw1';
/** FTS-5005 §2: our outbound name for the hub, %04x%04x of net/node. */
const HUB_BSO = '139c0001';
/** Issue 10's targets for fnpoll/binkd wall time: sending, and receiving (the hub paces that). */
const SEND_TARGET = 0.8;
const RECEIVE_TARGET = 1.0;
const RUN_TIMEOUT_MS = 120_000;

/** A binkd caller config that shares fnpoll's outbound (`domain` points at it). */
function binkdCallerConfig(dir: string, outbound: string, port: number): string {
  return [
    `log ${join(dir, 'binkd.log')}`,
    'loglevel 4',
    'conlog 0',
    `pid-file ${join(dir, 'binkd.pid')}`,
    `domain fidonet ${outbound} 2`,
    `address ${US}`,
    'sysname "binkd bench caller"',
    'sysop "Bench Sysop"',
    'location "Loopback"',
    'nodeinfo 115200,TCP,BINKP',
    `inbound ${join(dir, 'inbound')}`,
    `inbound-nonsecure ${join(dir, 'inbound-insecure')}`,
    `temp-inbound ${join(dir, 'temp')}`,
    'timeout 60s',
    `node ${HUB} 127.0.0.1:${port} ${PASSWORD}`,
    '',
  ].join('\n');
}

/** Plain lines (send and keep): the payload survives every round; only the flow file is rewritten. */
function flowText(files: readonly PayloadFile[]): string {
  return `${files.map((f) => f.path).join('\n')}\n`;
}

async function emptyDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: nothing left
  }
}

interface Side {
  name: 'fnpoll' | 'binkd';
  /**
   * Prepare the round (flow files, empty inboxes), run, verify. Returns the wall time and the
   * CPU time the hub's session process used (read after verifying, when binkd has reaped it).
   */
  round(): Promise<{ wallMs: number; hubCpuMs: number }>;
}

type Place = 'main' | 'disk';

const SCENARIO_IDS: Record<Place, readonly string[]> = { main: ['1a', '1b', '1a′', '1a″'], disk: ['1a-disk', '1b-disk'] };

function wanted(settings: BenchSettings, place: Place): string[] {
  return SCENARIO_IDS[place].filter((id) => !settings.rows || settings.rows.has(id));
}

/**
 * Rows 1a, 1b and the send split with files where the bench lives (tmpfs when there is one), then
 * 1a and 1b again with every file on disk (the OS temp dir): sysops' spools are on disks.
 */
export async function benchThroughput(settings: BenchSettings, root: string): Promise<Row[]> {
  const rows: Row[] = [];
  if (wanted(settings, 'main').length) rows.push(...(await throughputOn(settings, join(root, 'throughput'), 'main')));
  if (wanted(settings, 'disk').length) {
    const diskRoot = await mkdtemp(join(settings.diskDir, 'fnpoll-bench-disk-'));
    try {
      rows.push(...(await throughputOn(settings, join(diskRoot, 'throughput'), 'disk')));
    } finally {
      await rm(diskRoot, { recursive: true, force: true });
    }
  }
  return rows;
}

async function throughputOn(settings: BenchSettings, dir: string, place: Place): Promise<Row[]> {
  const full = settings.scale === 'full';
  const bigSize = full ? 200 * 1024 * 1024 : 8 * 1024 * 1024;
  const packets = full ? 1000 : 100;
  const packetSize = 8 * 1024;
  progress(`throughput: writing payload (${fmtMB(bigSize)} + ${packets} × 8 KB) in ${dir}`);
  const payload = await makePayload(join(dir, 'payload'), bigSize, packets, packetSize);

  // The hub's directories (made under TMPDIR) go to the same file system as ours.
  const savedTmp = process.env['TMPDIR'];
  process.env['TMPDIR'] = dir;
  let hub: BinkdHub;
  try {
    hub = await BinkdHub.start({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
  } finally {
    if (savedTmp === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = savedTmp;
  }
  const procs: number[] = [];
  try {
    const node = await BenchNode.create(join(dir, 'node'), {
      address: US,
      hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }],
    });
    const callerDir = join(dir, 'binkd-caller');
    // binkd refuses a config whose inbound directories do not exist.
    for (const sub of ['inbound', 'inbound-insecure', 'temp']) await mkdir(join(callerDir, sub), { recursive: true });
    const callerCfg = join(callerDir, 'binkd.conf');
    await writeFile(callerCfg, binkdCallerConfig(callerDir, node.outbound, hub.port));
    const ourFlo = join(node.outbound, `${HUB_BSO}.flo`);
    const hubFlo = `${hub.outboundFor(US)}.flo`;

    const hubLogSince = async (offset: number): Promise<string> => (await hub.log()).slice(offset);
    const expectOk = (log: string, re: RegExp, who: string): void => {
      if (!re.test(log)) throw new Error(`throughput: ${who} did not log an OK session:\n${log.split('\n').slice(-15).join('\n')}`);
    };
    const hubOk = /done \(from 2:5020\/99@fidonet, OK\b/;
    const callerOk = /done \(to 2:5020\/1@fidonet, OK\b/;

    const runFnpoll = async (): Promise<Measured> => {
      await rm(node.stateFile, { force: true });
      return measure(process.execPath, node.args('run'), { timeoutMs: RUN_TIMEOUT_MS });
    };
    const runBinkd = async (): Promise<Measured> => {
      await rm(join(callerDir, 'binkd.log'), { force: true });
      const m = await measure(BINKD, ['-r', '-p', '-P', HUB, callerCfg], { cwd: callerDir, group: true, timeoutMs: RUN_TIMEOUT_MS });
      if (m.pid !== undefined) procs.push(m.pid);
      killGroup(m.pid);
      return m;
    };

    const send = (who: 'fnpoll' | 'binkd', files: readonly PayloadFile[]): Side => ({
      name: who,
      round: async () => {
        await writeFile(ourFlo, flowText(files));
        await emptyDir(hub.inbound);
        await emptyDir(hub.insecureInbound);
        const logAt = (await hub.log()).length;
        const cpuAt = await hub.sessionCpuMs();
        const m = who === 'fnpoll' ? await runFnpoll() : await runBinkd();
        expectExit(m, 0, `${who} (send)`);
        if (who === 'binkd') expectOk(await readText(join(callerDir, 'binkd.log')), callerOk, 'binkd caller');
        expectOk(await hubLogSince(logAt), hubOk, `binkd hub (${who} sending)`);
        const problems = await verifyDelivered(hub.inbound, files);
        if (problems.length) throw new Error(`throughput: ${who} send: ${problems.slice(0, 5).join('; ')}`);
        return { wallMs: m.wallMs, hubCpuMs: (await hub.sessionCpuMs()) - cpuAt };
      },
    });
    const receive = (who: 'fnpoll' | 'binkd', files: readonly PayloadFile[]): Side => ({
      name: who,
      round: async () => {
        await rm(ourFlo, { force: true });
        await writeFile(hubFlo, flowText(files));
        const inbox = who === 'fnpoll' ? node.inbound : join(callerDir, 'inbound');
        await emptyDir(inbox);
        if (who === 'fnpoll') await mkdir(node.tempInbound, { recursive: true });
        const logAt = (await hub.log()).length;
        const cpuAt = await hub.sessionCpuMs();
        const m = who === 'fnpoll' ? await runFnpoll() : await runBinkd();
        expectExit(m, 0, `${who} (receive)`);
        if (who === 'binkd') expectOk(await readText(join(callerDir, 'binkd.log')), callerOk, 'binkd caller');
        expectOk(await hubLogSince(logAt), hubOk, `binkd hub (${who} receiving)`);
        // fnpoll keeps its insecure inbound and temp dir inside the inbound: look at regular files only.
        const problems = await verifyDelivered(inbox, files);
        if (problems.length) throw new Error(`throughput: ${who} receive: ${problems.slice(0, 5).join('; ')}`);
        return { wallMs: m.wallMs, hubCpuMs: (await hub.sessionCpuMs()) - cpuAt };
      },
    });

    // The two targets, then the send split in its parts: where the time goes (README "Benchmarks").
    const big = payload.filter((f) => f.size === bigSize);
    const small = payload.filter((f) => f.size !== bigSize);
    const all = [
      { id: '1a', dir: 'send', files: payload, what: `send to binkd hub: ${fmtMB(bigSize)} + ${packets} × 8 KB`, target: SEND_TARGET },
      { id: '1b', dir: 'receive', files: payload, what: `receive from binkd hub: ${fmtMB(bigSize)} + ${packets} × 8 KB`, target: RECEIVE_TARGET },
      { id: '1a′', dir: 'send', files: big, what: `send, part: the ${fmtMB(bigSize)} file alone`, target: undefined },
      { id: '1a″', dir: 'send', files: small, what: `send, part: the ${packets} × 8 KB packets alone`, target: undefined },
      { id: '1a-disk', dir: 'send', files: payload, what: `send to binkd hub, files on disk: ${fmtMB(bigSize)} + ${packets} × 8 KB`, target: SEND_TARGET },
      { id: '1b-disk', dir: 'receive', files: payload, what: `receive from binkd hub, files on disk: ${fmtMB(bigSize)} + ${packets} × 8 KB`, target: RECEIVE_TARGET },
    ] as const;
    const ids = wanted(settings, place);
    const scenarios = all.filter((sc) => ids.includes(sc.id));
    const rows: Row[] = [];
    for (const sc of scenarios) {
      const make = (who: 'fnpoll' | 'binkd'): Side => (sc.dir === 'send' ? send(who, sc.files) : receive(who, sc.files));
      const fn: number[] = [];
      const bk: number[] = [];
      const hubCpu = { fnpoll: [] as number[], binkd: [] as number[] };
      progress(`throughput ${sc.id} ${sc.dir}: 1 warm-up + ${settings.rounds} rounds, fnpoll and binkd alternating`);
      for (let r = 0; r <= settings.rounds; r++) {
        // Alternate who goes first, so neither always runs on a warmer cache.
        const order = r % 2 ? [make('binkd'), make('fnpoll')] : [make('fnpoll'), make('binkd')];
        for (const side of order) {
          const t = await side.round();
          progress(`  round ${r === 0 ? 'warm-up' : r}: ${side.name} ${fmtMs(t.wallMs)} (hub session CPU ${fmtMs(t.hubCpuMs)})`);
          if (r === 0) continue;
          (side.name === 'fnpoll' ? fn : bk).push(t.wallMs);
          hubCpu[side.name].push(t.hubCpuMs);
        }
      }
      const f = median(fn);
      const b = median(bk);
      const bytes = sc.files.reduce((n, x) => n + x.size, 0);
      const hubNote = `hub session CPU (median): ${fmtMs(median(hubCpu.fnpoll))} with fnpoll, ${fmtMs(median(hubCpu.binkd))} with binkd`;
      // A target below the hub's own CPU time for the session cannot be met by any caller.
      const floor = Math.min(median(hubCpu.fnpoll), median(hubCpu.binkd));
      const bound = sc.target !== undefined && floor > sc.target * b ? `; that is more than ${sc.target} × binkd's wall (${fmtMs(sc.target * b)}): no caller can meet the target against this hub` : '';
      rows.push({
        id: sc.id,
        what: sc.what,
        fnpoll: `${fmtMs(f)} (${fmtRate((bytes * 1000) / f)})`,
        baseline: `${fmtMs(b)} (binkd -r -p -P)`,
        ratio: (f / b).toFixed(2),
        target: sc.target !== undefined ? `≤ ${sc.target.toFixed(1)}` : '-',
        met: sc.target !== undefined ? f / b <= sc.target : undefined,
        note: `fnpoll ${fn.map(fmtMs).join(', ')}; binkd ${bk.map(fmtMs).join(', ')}; ${hubNote}${bound}; frames: fnpoll 32767, binkd 4096 (oblksize default)`,
      });
    }
    return rows;
  } finally {
    for (const pid of procs) killGroup(pid);
    await hub.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function readText(path: string): Promise<string> {
  return readFile(path, 'latin1').catch(() => '');
}
