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
 *
 * The receive rows (1b, 1b-disk) also run the floor in the same rounds (floorcaller.cts): the
 * least a caller on Node.js can do for the same files. Its ratio to binkd is what Node's own
 * start-up leaves of the target against this hub; the note gives it. On disk it runs a second
 * time with --fsync: fnpoll syncs every received file there (fsync = yes), binkd does not.
 *
 * These rows run plain both ways (fnpoll with use_compression = no; binkd's caller compresses
 * nothing without `zallow` rules, and -r turns its CRYPT off). Two rows measure the extensions
 * (issue 13), both sides doing the same work: 1c sends text packets with GZ (fnpoll's default;
 * binkd's caller with `zallow *.pkt`), 1d sends the big file in CRYPT mode (fnpoll use_crypt =
 * yes; binkd's caller without -r). The hub's log must show it: `gzip mode is on` for every file,
 * `session in CRYPT mode`.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BinkdHub, BINKD } from '../helpers/binkd.js';
import { BenchNode, FLOOR_CALLER } from './node.js';
import { makePayload, makeTextPackets, verifyDelivered, type PayloadFile } from './payload.js';
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
function binkdCallerConfig(dir: string, outbound: string, port: number, extra: string[] = []): string {
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
    ...extra,
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

type Who = 'fnpoll' | 'binkd' | 'floor' | 'floor-fsync';

interface Side {
  name: Who;
  /**
   * Prepare the round (flow files, empty inboxes), run, verify. Returns the wall time and the
   * CPU time the hub's session process used (read after verifying, when binkd has reaped it).
   */
  round(): Promise<{ wallMs: number; hubCpuMs: number }>;
}

type Place = 'main' | 'disk';

const SCENARIO_IDS: Record<Place, readonly string[]> = { main: ['1a', '1b', '1a′', '1a″', '1c', '1d'], disk: ['1a-disk', '1b-disk'] };

function wanted(settings: BenchSettings, place: Place): string[] {
  return SCENARIO_IDS[place].filter((id) => !settings.rows || settings.rows.has(id));
}

/**
 * Rows 1a, 1b, the send split and the extension rows (1c GZ, 1d CRYPT) with files where the bench
 * lives (tmpfs when there is one), then 1a and 1b again with every file on disk (the OS temp dir):
 * sysops' spools are on disks.
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
    const hubFlo = `${hub.outboundFor(US)}.flo`;
    /** One fnpoll node and one binkd caller config per way of working: plain, GZ, CRYPT. */
    const variant = async (name: string, hubExtra: Record<string, string>, binkdExtra: string[], binkdArgs: string[]) => {
      const node = await BenchNode.create(join(dir, `node-${name}`), {
        address: US,
        hubs: [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD, extra: hubExtra }],
      });
      const callerDir = join(dir, `binkd-caller-${name}`);
      // binkd refuses a config whose inbound directories do not exist.
      for (const sub of ['inbound', 'inbound-insecure', 'temp']) await mkdir(join(callerDir, sub), { recursive: true });
      const callerCfg = join(callerDir, 'binkd.conf');
      await writeFile(callerCfg, binkdCallerConfig(callerDir, node.outbound, hub.port, binkdExtra));
      return { node, callerDir, callerCfg, binkdArgs, ourFlo: join(node.outbound, `${HUB_BSO}.flo`) };
    };
    type Variant = Awaited<ReturnType<typeof variant>>;
    const plain = await variant('plain', { use_compression: 'no' }, [], ['-r']);
    const gz = await variant('gz', {}, ['zallow *.pkt'], ['-r']);
    const crypt = await variant('crypt', { use_compression: 'no', use_crypt: 'yes' }, [], []);

    const hubLogSince = async (offset: number): Promise<string> => (await hub.log()).slice(offset);
    const expectOk = (log: string, re: RegExp, who: string): void => {
      if (!re.test(log)) throw new Error(`throughput: ${who} did not log an OK session:\n${log.split('\n').slice(-15).join('\n')}`);
    };
    const hubOk = /done \(from 2:5020\/99@fidonet, OK\b/;
    const callerOk = /done \(to 2:5020\/1@fidonet, OK\b/;

    const runFnpoll = async (v: Variant): Promise<Measured> => {
      await rm(v.node.stateFile, { force: true });
      return measure(process.execPath, v.node.args('run'), { timeoutMs: RUN_TIMEOUT_MS });
    };
    const runBinkd = async (v: Variant): Promise<Measured> => {
      await rm(join(v.callerDir, 'binkd.log'), { force: true });
      const m = await measure(BINKD, [...v.binkdArgs, '-p', '-P', HUB, v.callerCfg], { cwd: v.callerDir, group: true, timeoutMs: RUN_TIMEOUT_MS });
      if (m.pid !== undefined) procs.push(m.pid);
      killGroup(m.pid);
      return m;
    };

    /** `proof`: what the hub's log must show for the round to count (the extension was used). */
    const send = (who: 'fnpoll' | 'binkd', files: readonly PayloadFile[], v: Variant = plain, proof?: (log: string) => string | undefined): Side => ({
      name: who,
      round: async () => {
        const { callerDir, ourFlo } = v;
        await writeFile(ourFlo, flowText(files));
        await emptyDir(hub.inbound);
        await emptyDir(hub.insecureInbound);
        const logAt = (await hub.log()).length;
        const cpuAt = await hub.sessionCpuMs();
        const m = who === 'fnpoll' ? await runFnpoll(v) : await runBinkd(v);
        expectExit(m, 0, `${who} (send)`);
        if (who === 'binkd') expectOk(await readText(join(callerDir, 'binkd.log')), callerOk, 'binkd caller');
        const hubLog = await hubLogSince(logAt);
        expectOk(hubLog, hubOk, `binkd hub (${who} sending)`);
        const missing = proof?.(hubLog);
        if (missing) throw new Error(`throughput: ${who} send: the hub's log does not show ${missing}`);
        const problems = await verifyDelivered(hub.inbound, files);
        if (problems.length) throw new Error(`throughput: ${who} send: ${problems.slice(0, 5).join('; ')}`);
        return { wallMs: m.wallMs, hubCpuMs: (await hub.sessionCpuMs()) - cpuAt };
      },
    });
    const floorInbox = join(dir, 'floor-inbound');
    const runFloor = (fsync: boolean): Promise<Measured> =>
      measure(process.execPath, [FLOOR_CALLER, String(hub.port), US, PASSWORD, floorInbox, ...(fsync ? ['--fsync'] : [])], { timeoutMs: RUN_TIMEOUT_MS });
    const receive = (who: Who, files: readonly PayloadFile[]): Side => ({
      name: who,
      round: async () => {
        const { node, callerDir, ourFlo } = plain;
        await rm(ourFlo, { force: true });
        await writeFile(hubFlo, flowText(files));
        const floor = who === 'floor' || who === 'floor-fsync';
        const inbox = who === 'fnpoll' ? node.inbound : floor ? floorInbox : join(callerDir, 'inbound');
        await emptyDir(inbox);
        await mkdir(who === 'fnpoll' ? node.tempInbound : inbox, { recursive: true });
        const logAt = (await hub.log()).length;
        const cpuAt = await hub.sessionCpuMs();
        const m = who === 'fnpoll' ? await runFnpoll(plain) : floor ? await runFloor(who === 'floor-fsync') : await runBinkd(plain);
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
    const ids = wanted(settings, place);
    // Issue 13: text packets with GZ, the big file in CRYPT mode.
    const textCount = full ? 200 : 20;
    const text = ids.includes('1c') ? await makeTextPackets(join(dir, 'text'), textCount, 100 * 1024) : [];
    const allGz = (files: readonly PayloadFile[]) => (log: string) => {
      const missing = files.find((f) => !log.includes(`gzip mode is on for ${f.name}`));
      return missing ? `"gzip mode is on for ${missing.name}"` : undefined;
    };
    const inCrypt = (log: string) => (log.includes('session in CRYPT mode') ? undefined : '"session in CRYPT mode"');
    const all: { id: string; dir: 'send' | 'receive'; files: readonly PayloadFile[]; what: string; target: number | undefined; v?: Variant; proof?: (log: string) => string | undefined }[] = [
      { id: '1a', dir: 'send', files: payload, what: `send to binkd hub: ${fmtMB(bigSize)} + ${packets} × 8 KB`, target: SEND_TARGET },
      { id: '1b', dir: 'receive', files: payload, what: `receive from binkd hub: ${fmtMB(bigSize)} + ${packets} × 8 KB`, target: RECEIVE_TARGET },
      { id: '1a′', dir: 'send', files: big, what: `send, part: the ${fmtMB(bigSize)} file alone`, target: undefined },
      { id: '1a″', dir: 'send', files: small, what: `send, part: the ${packets} × 8 KB packets alone`, target: undefined },
      { id: '1c', dir: 'send', files: text, what: `send GZ: ${textCount} × 100 KB text packets`, target: undefined, v: gz, proof: allGz(text) },
      { id: '1d', dir: 'send', files: big, what: `send CRYPT: the ${fmtMB(bigSize)} file`, target: undefined, v: crypt, proof: inCrypt },
      { id: '1a-disk', dir: 'send', files: payload, what: `send to binkd hub, files on disk: ${fmtMB(bigSize)} + ${packets} × 8 KB`, target: SEND_TARGET },
      { id: '1b-disk', dir: 'receive', files: payload, what: `receive from binkd hub, files on disk: ${fmtMB(bigSize)} + ${packets} × 8 KB`, target: RECEIVE_TARGET },
    ];
    const scenarios = all.filter((sc) => ids.includes(sc.id));
    const rows: Row[] = [];
    for (const sc of scenarios) {
      const make = (who: Who): Side => (who === 'floor' || who === 'floor-fsync' || sc.dir === 'receive' ? receive(who, sc.files) : send(who, sc.files, sc.v, sc.proof));
      // On disk fnpoll syncs each received file before its M_GOT (fsync = yes, the default) and
      // binkd does not: the floor runs both ways there. On tmpfs fnpoll syncs nothing.
      const floors: Who[] = place === 'disk' ? ['floor', 'floor-fsync'] : ['floor'];
      const callers: Who[] = sc.dir === 'receive' ? ['fnpoll', 'binkd', ...floors] : ['fnpoll', 'binkd'];
      const wall: Record<Who, number[]> = { fnpoll: [], binkd: [], floor: [], 'floor-fsync': [] };
      const hubCpu: Record<Who, number[]> = { fnpoll: [], binkd: [], floor: [], 'floor-fsync': [] };
      progress(`throughput ${sc.id} ${sc.dir}: 1 warm-up + ${settings.rounds} rounds, ${callers.join(', ')} in turn`);
      for (let r = 0; r <= settings.rounds; r++) {
        // Rotate who goes first, so none always runs on a warmer cache.
        const order = callers.map((_, i) => callers[(i + r) % callers.length]!);
        for (const who of order) {
          const t = await make(who).round();
          progress(`  round ${r === 0 ? 'warm-up' : r}: ${who} ${fmtMs(t.wallMs)} (hub session CPU ${fmtMs(t.hubCpuMs)})`);
          if (r === 0) continue;
          wall[who].push(t.wallMs);
          hubCpu[who].push(t.hubCpuMs);
        }
      }
      const fn = wall.fnpoll;
      const bk = wall.binkd;
      const f = median(fn);
      const b = median(bk);
      const bytes = sc.files.reduce((n, x) => n + x.size, 0);
      const hubNote = `hub session CPU (median): ${fmtMs(median(hubCpu.fnpoll))} with fnpoll, ${fmtMs(median(hubCpu.binkd))} with binkd`;
      // A target below the hub's own CPU time for the session cannot be met by any caller.
      const hubCpuFloor = Math.min(median(hubCpu.fnpoll), median(hubCpu.binkd));
      const bound = sc.target !== undefined && hubCpuFloor > sc.target * b ? `; that is more than ${sc.target} × binkd's wall (${fmtMs(sc.target * b)}): no caller can meet the target against this hub` : '';
      const floorNote = floors
        .filter((who) => wall[who].length)
        .map((who) => {
          const fl = median(wall[who]);
          const head =
            who === 'floor'
              ? 'floor (a caller on Node.js that only writes and acknowledges, test/bench/floorcaller.cts)'
              : 'floor with --fsync (each file synced before its M_GOT, as fsync = yes does, by a plain group commit without early syncs)';
          // Only the plain floor bounds every caller on Node.js; the syncing one is a reference.
          const above = who === 'floor' && sc.target !== undefined && fl > sc.target * b ? ', above the target: no caller on Node.js met it against this hub in these rounds' : '';
          return `; ${head} ${wall[who].map(fmtMs).join(', ')}: median ${fmtMs(fl)}, ${(fl / b).toFixed(2)} × binkd${above}`;
        })
        .join('');
      rows.push({
        id: sc.id,
        what: sc.what,
        fnpoll: `${fmtMs(f)} (${fmtRate((bytes * 1000) / f)})`,
        baseline: `${fmtMs(b)} (binkd ${sc.v === crypt ? '' : '-r '}-p -P)`,
        ratio: (f / b).toFixed(2),
        target: sc.target !== undefined ? `≤ ${sc.target.toFixed(1)}` : '-',
        met: sc.target !== undefined ? f / b <= sc.target : undefined,
        note: `fnpoll ${fn.map(fmtMs).join(', ')}; binkd ${bk.map(fmtMs).join(', ')}; ${hubNote}${bound}${floorNote}; frames: fnpoll 32767, binkd 4096 (oblksize default)`,
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
