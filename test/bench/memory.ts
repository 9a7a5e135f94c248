/**
 * Issue 6, item 5 and `bandwidth_limit`:
 * - memory under load: peak RSS of `fnpoll run` while it sends a 2 GB file (sparse: created in no
 *   time, read as zeros) to the streaming sink hub. Target < 100 MB.
 * - bandwidth accuracy, shown by the bench rather than by a timed test: a 10 s transfer under a
 *   4 MB/s global cap shared by two concurrent sessions, and a 10 s transfer under a per-hub cap
 *   of 2 MB/s. The rate is taken at the receiver, first data byte to last. Target: within 5 %.
 * - the same cap on receiving (issue 10): a hub sends 10 s worth at full speed, fnpoll reads at
 *   4 MB/s. The rate is taken from fnpoll's own log, "receiving" to "received".
 */
import { open, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BenchNode } from './node.js';
import { SinkHub } from './sinkhub.js';
import { writePayloadFile, sha256File, PAYLOAD_MTIME } from './payload.js';
import { ScriptedHub } from '../../src/demo/hub.js';
import { expectExit, fmtMB, fmtMs, fmtRate, measure, progress, type BenchSettings, type Row } from './lib.js';

const US = '2:5020/99@fidonet';
const RSS_TARGET = 100 * 1024 * 1024;
const RATE_TOLERANCE = 0.05;
const MiB = 1024 * 1024;

const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');

/** FTS-5005 §2: `%04x%04x` of net/node. */
function bsoStem(net: number, node: number): string {
  return hex(net, 4) + hex(node, 4);
}

async function sparseFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
}

export async function benchMemory(settings: BenchSettings, root: string): Promise<Row[]> {
  const size = settings.scale === 'full' ? 2 * 1024 * MiB : 64 * MiB;
  const dir = join(root, 'memory');
  await mkdir(dir, { recursive: true });
  const sink = new SinkHub('2:5020/1@fidonet', 'zeros');
  const port = await sink.listen();
  try {
    const node = await BenchNode.create(join(dir, 'node'), {
      address: US,
      hubs: [{ name: 'sink', address: '2:5020/1@fidonet', port }],
    });
    const big = join(dir, 'huge.bin');
    await sparseFile(big, size);
    await writeFile(join(node.outbound, `${bsoStem(5020, 1)}.flo`), `${big}\n`);
    progress(`memory: sending a ${fmtMB(size)} sparse file to the sink`);
    const m = await measure(process.execPath, node.args('run'), { rss: true, timeoutMs: 600_000 });
    expectExit(m, 0, 'fnpoll run (2 GB send)');
    const f = sink.files[0];
    if (!f || !f.complete || f.received !== size || !f.zeros) {
      throw new Error(`memory: the sink did not get ${size} zero bytes intact: ${JSON.stringify(f)}`);
    }
    const rate = (size * 1000) / m.wallMs;
    return [
      {
        id: '5',
        what: `peak RSS sending a ${fmtMB(size)} file`,
        fnpoll: m.peakRss === undefined ? 'n/a' : fmtMB(m.peakRss),
        baseline: '-',
        ratio: '-',
        target: `< ${fmtMB(RSS_TARGET)}`,
        met: m.peakRss !== undefined && m.peakRss < RSS_TARGET,
        note: `run took ${fmtMs(m.wallMs)} (${fmtRate(rate)} to the sink, which checks every byte)`,
      },
    ];
  } finally {
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  }
}

interface RateCase {
  id: string;
  what: string;
  /** bytes/s the run must hold to */
  cap: number;
  performance?: Record<string, string | number>;
  hubs: { extra?: Record<string, string | number>; bytes: number }[];
}

export async function benchBandwidth(settings: BenchSettings, root: string): Promise<Row[]> {
  const seconds = settings.scale === 'full' ? 10 : 2;
  const global = 4 * MiB;
  const perHub = 2 * MiB;
  const cases: RateCase[] = [
    {
      id: '6a',
      what: `global bandwidth_limit ${fmtRate(global)}, 2 sessions sharing it, ${seconds} s`,
      cap: global,
      performance: { bandwidth_limit: global },
      hubs: [{ bytes: (global * seconds) / 2 }, { bytes: (global * seconds) / 2 }],
    },
    {
      id: '6b',
      what: `per-hub bandwidth_limit ${fmtRate(perHub)} (global ${fmtRate(global)}), ${seconds} s`,
      cap: perHub,
      performance: { bandwidth_limit: global },
      hubs: [{ bytes: perHub * seconds, extra: { bandwidth_limit: perHub } }],
    },
  ];
  const dir = join(root, 'bandwidth');
  const rows: Row[] = [];
  for (const c of cases.filter((x) => !settings.rows || settings.rows.has(x.id))) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const sinks: SinkHub[] = [];
    try {
      const hubs = [];
      const expected: string[] = [];
      for (let i = 0; i < c.hubs.length; i++) {
        const sink = new SinkHub(`2:5020/${i + 1}@fidonet`, 'sha256');
        sinks.push(sink);
        const port = await sink.listen();
        hubs.push({ name: `sink${i + 1}`, address: `2:5020/${i + 1}@fidonet`, port, ...(c.hubs[i]!.extra ? { extra: c.hubs[i]!.extra } : {}) });
      }
      const node = await BenchNode.create(join(dir, 'node'), {
        address: US,
        hubs,
        poller: { max_connections: 8 },
        ...(c.performance ? { performance: c.performance } : {}),
      });
      for (let i = 0; i < c.hubs.length; i++) {
        const p = join(dir, `rate${i + 1}.bin`);
        expected.push(await writePayloadFile(p, c.hubs[i]!.bytes, 7000 + i));
        await writeFile(join(node.outbound, `${bsoStem(5020, i + 1)}.flo`), `${p}\n`);
      }
      progress(`bandwidth ${c.id}: ${c.what}`);
      const m = await measure(process.execPath, node.args('run'), { timeoutMs: seconds * 10_000 + 60_000 });
      expectExit(m, 0, `fnpoll run (bandwidth ${c.id})`);
      const files = sinks.map((s) => s.files[0]);
      files.forEach((f, i) => {
        if (!f || !f.complete || f.sha256 !== expected[i] || f.mtime !== PAYLOAD_MTIME) {
          throw new Error(`bandwidth ${c.id}: sink ${i + 1} did not get its file intact: ${JSON.stringify(f)}`);
        }
      });
      // From the M_FILE on: the sender waits for the first tokens after it, so counting from the
      // first data byte would leave out one write batch's worth of waiting.
      const first = Math.min(...files.map((f) => f!.offeredAt));
      const last = Math.max(...files.map((f) => f!.lastDataAt!));
      const bytes = files.reduce((n, f) => n + f!.received, 0);
      const rate = (bytes * 1000) / (last - first);
      const err = Math.abs(rate - c.cap) / c.cap;
      rows.push({
        id: c.id,
        what: c.what,
        fnpoll: fmtRate(rate),
        baseline: `${fmtRate(c.cap)} (cap)`,
        ratio: `${rate >= c.cap ? '+' : '-'}${(err * 100).toFixed(1)} %`,
        target: `within ${RATE_TOLERANCE * 100} %`,
        met: err <= RATE_TOLERANCE,
        note: `${fmtMB(bytes)} in ${fmtMs(last - first)} at the receiver (M_FILE to last byte); whole run ${fmtMs(m.wallMs)}`,
      });
    } finally {
      for (const s of sinks) await s.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (!settings.rows || settings.rows.has('6c')) rows.push(await receiveRate(root, global, seconds));
  return rows;
}

/** Row 6c: a hub that sends at full speed, fnpoll reading under the global cap. */
async function receiveRate(root: string, cap: number, seconds: number): Promise<Row> {
  const dir = join(root, 'bandwidth-receive');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const size = cap * seconds;
  const source = join(dir, 'source.bin');
  const expected = await writePayloadFile(source, size, 7100);
  const hub = new ScriptedHub({
    addresses: ['2:5020/1@fidonet'],
    files: [{ name: 'rate-in.bin', data: await readFile(source), mtime: PAYLOAD_MTIME }],
    frameSize: 32767,
  });
  await hub.listen(0, '127.0.0.1');
  try {
    const node = await BenchNode.create(join(dir, 'node'), {
      address: US,
      hubs: [{ name: 'hub', address: '2:5020/1@fidonet', port: hub.port }],
      performance: { bandwidth_limit: cap },
    });
    // The hub has mail for us: a poll request makes it due.
    await writeFile(join(node.outbound, `${bsoStem(5020, 1)}.flo`), '');
    const what = `receiving under bandwidth_limit ${fmtRate(cap)}, ${seconds} s`;
    progress(`bandwidth 6c: ${what}`);
    const m = await measure(process.execPath, node.args('run'), { timeoutMs: seconds * 10_000 + 60_000 });
    expectExit(m, 0, 'fnpoll run (bandwidth 6c)');
    const found = await findFile(node.inbound, 'rate-in.bin');
    if (!found || (await sha256File(found)) !== expected) throw new Error(`bandwidth 6c: rate-in.bin did not arrive intact (${found ?? 'missing'})`);
    const events = (await readFile(node.logFile, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { time: string; message: string });
    const at = (re: RegExp): number => {
      const e = events.find((x) => re.test(x.message));
      if (!e) throw new Error(`bandwidth 6c: no log line matching ${re}`);
      return Date.parse(e.time);
    };
    const ms = at(/^received rate-in\.bin/) - at(/^receiving rate-in\.bin/);
    const rate = (size * 1000) / ms;
    const err = Math.abs(rate - cap) / cap;
    return {
      id: '6c',
      what,
      fnpoll: fmtRate(rate),
      baseline: `${fmtRate(cap)} (cap)`,
      ratio: `${rate >= cap ? '+' : '-'}${(err * 100).toFixed(1)} %`,
      target: `within ${RATE_TOLERANCE * 100} %`,
      met: err <= RATE_TOLERANCE,
      note: `${fmtMB(size)} in ${fmtMs(ms)} by fnpoll's log ("receiving" to "received"); whole run ${fmtMs(m.wallMs)}; the hub sends as fast as TCP lets it`,
    };
  } finally {
    await hub.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** `name` directly in `dir` or one level below (the insecure inbound). */
async function findFile(dir: string, name: string): Promise<string | undefined> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isFile() && e.name === name) return join(dir, name);
    if (e.isDirectory()) {
      const inner = await findFile(join(dir, e.name), name).catch(() => undefined);
      if (inner) return inner;
    }
  }
  return undefined;
}
