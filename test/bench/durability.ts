/**
 * Issue 11, defect 5: what `fsync = yes` costs on a real disk. The 1000-packet receive of row 1b
 * (1000 × 8 KB from the binkd hub), with fnpoll's inbound on a disk filesystem rather than tmpfs
 * (where fsync is free), fsync = yes against fsync = no, alternating. Target: ≤ 10 % slower.
 *
 * The inbound lives under FNPOLL_BENCH_DISK_DIR (settings.diskDir); the row names the filesystem
 * type it found there, so a run on tmpfs cannot pass for a disk measurement.
 *
 * The same rounds run the floor caller (floorcaller.cts) with and without `--fsync`, into an inbound
 * on the same disk: what making these files durable costs a caller that does nothing else, with
 * the plainest group commit. The note gives its ratio beside fnpoll's.
 */
import { mkdir, mkdtemp, rename, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BinkdHub } from '../helpers/binkd.js';
import { BenchNode, FLOOR_CALLER } from './node.js';
import { makePayload, verifyDelivered } from './payload.js';
import { expectExit, fmtMs, measure, median, progress, type BenchSettings, type Row } from './lib.js';

const HUB = '2:5020/1@fidonet';
const US = '2:5020/99@fidonet';
const PASSWORD = 'BenchPw1';
const TARGET = 1.1;
/**
 * Rounds at least (full scale): a round is about a second, and on a disk whose file creations
 * slow down as the rounds delete and create thousands of files (ext4 skips recently freed inodes)
 * single rounds of either kind swing by ±20 %; three medians could not tell 10 % apart.
 */
const MIN_ROUNDS = 7;

/** statfs f_type magic numbers of the filesystems one meets. */
const FS_TYPES: Record<number, string> = { 0x01021994: 'tmpfs', 0xef53: 'ext4', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs', 0x2fc12fc1: 'zfs' };

export async function benchDurability(settings: BenchSettings, root: string): Promise<Row[]> {
  const packets = settings.scale === 'full' ? 1000 : 100;
  const diskRoot = settings.diskDir;
  const fsType = FS_TYPES[Number((await statfs(diskRoot)).type)] ?? `type 0x${Number((await statfs(diskRoot)).type).toString(16)}`;
  const payload = (await makePayload(join(root, 'durability-payload'), 0, packets, 8 * 1024)).filter((f) => f.size > 0);
  const dir = await mkdtemp(join(diskRoot, 'fnpoll-bench-fsync-'));
  const hub = await BinkdHub.start({ address: HUB, nodes: [{ address: US, password: PASSWORD }] });
  try {
    const hubs = [{ name: 'hub', address: HUB, port: hub.port, password: PASSWORD }];
    const nodes = {
      yes: await BenchNode.create(join(dir, 'yes'), { address: US, hubs, poller: { fsync: 'yes' } }),
      no: await BenchNode.create(join(dir, 'no'), { address: US, hubs, poller: { fsync: 'no' } }),
    };
    const hubFlo = `${hub.outboundFor(US)}.flo`;
    const kinds = ['yes', 'no', 'floor-yes', 'floor-no'] as const;
    type Kind = (typeof kinds)[number];
    const times: Record<Kind, number[]> = { yes: [], no: [], 'floor-yes': [], 'floor-no': [] };
    const rounds = settings.scale === 'full' ? Math.max(settings.rounds, MIN_ROUNDS) : settings.rounds;
    progress(`durability: ${packets} × 8 KB into an inbound on ${fsType} (${diskRoot}), fsync yes/no and the floor's, in turn, 1 warm-up + ${rounds} rounds`);
    for (let r = 0; r <= rounds; r++) {
      for (const which of kinds.map((_, i) => kinds[(i + r) % kinds.length]!)) {
        const floor = which.startsWith('floor');
        const inbound = floor ? join(dir, which) : nodes[which as 'yes' | 'no'].inbound;
        await writeFile(hubFlo, `${payload.map((f) => f.path).join('\n')}\n`);
        // Moved aside, not deleted: ext4 slows the creation of new files while many inodes were
        // freed within the last seconds, which made both kinds of rounds swing by ±30 % and hid
        // what the syncs cost. Everything is deleted at the end.
        await rename(inbound, join(dir, `old-${which}-${r}`)).catch(() => undefined);
        let m;
        if (floor) {
          await mkdir(inbound, { recursive: true });
          const args = [FLOOR_CALLER, String(hub.port), US, PASSWORD, inbound, ...(which === 'floor-yes' ? ['--fsync'] : [])];
          m = await measure(process.execPath, args, { timeoutMs: 120_000 });
        } else {
          const node = nodes[which as 'yes' | 'no'];
          await mkdir(node.tempInbound, { recursive: true });
          await rm(node.stateFile, { force: true });
          m = await measure(process.execPath, node.args('run'), { timeoutMs: 120_000 });
        }
        expectExit(m, 0, floor ? `the floor caller (${which})` : `fnpoll (fsync = ${which})`);
        const problems = await verifyDelivered(inbound, payload);
        if (problems.length) throw new Error(`durability: ${which}: ${problems.slice(0, 5).join('; ')}`);
        progress(`  round ${r === 0 ? 'warm-up' : r}: ${floor ? which : `fsync ${which}`} ${fmtMs(m.wallMs)}`);
        if (r > 0) times[which].push(m.wallMs);
      }
    }
    const yes = median(times.yes);
    const no = median(times.no);
    const floorYes = median(times['floor-yes']);
    const floorNo = median(times['floor-no']);
    return [
      {
        id: '1e',
        what: `receive ${packets} × 8 KB into an inbound on disk (${fsType}): fsync = yes vs no`,
        fnpoll: `${fmtMs(yes)} (fsync = yes)`,
        baseline: `${fmtMs(no)} (fsync = no)`,
        ratio: (yes / no).toFixed(2),
        target: `≤ ${TARGET.toFixed(2)}`,
        met: yes / no <= TARGET,
        note:
          `fsync yes ${times.yes.map(fmtMs).join(', ')}; no ${times.no.map(fmtMs).join(', ')}; ` +
          `floor (floorcaller.cts) with --fsync ${times['floor-yes'].map(fmtMs).join(', ')}, without ${times['floor-no'].map(fmtMs).join(', ')}: ` +
          `${fmtMs(floorYes)} vs ${fmtMs(floorNo)}, ratio ${(floorYes / floorNo).toFixed(2)}; inbound under ${diskRoot}`,
      },
    ];
  } finally {
    await hub.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
