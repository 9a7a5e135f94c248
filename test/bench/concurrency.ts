/**
 * Issue 6, item 4: 64 scripted hubs on loopback, each answering after a 200 ms delay and sending
 * one 1 MB file, `max_connections = 8`. Target: the whole `fnpoll run` (process start to exit)
 * ≤ 1.3 × (64 / 8 × one session's time), where one session's time is the session duration fnpoll
 * logs when the run has a single hub of the same kind (median over rounds).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ScriptedHub, type HubFile } from '../../src/demo/hub.js';
import { BenchNode, type BenchHub } from './node.js';
import { PAYLOAD_MTIME, verifyDelivered, writePayloadFile, type PayloadFile } from './payload.js';
import { expectExit, fmtMs, measure, median, progress, type BenchSettings, type Row } from './lib.js';

const US = '2:5020/99@fidonet';
const ANSWER_DELAY_MS = 200;
const MAX_CONNECTIONS = 8;
const RATIO_TARGET = 1.3;

/** Durations (ms) of the sessions in one run, from the JSON log's per-session result lines. */
async function sessionDurations(logFile: string): Promise<number[]> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"result"')) continue;
    const ev = JSON.parse(line) as { result?: string; duration?: number };
    if (ev.result === 'ok' && typeof ev.duration === 'number') out.push(ev.duration);
  }
  return out;
}

export async function benchConcurrency(settings: BenchSettings, root: string): Promise<Row[]> {
  const full = settings.scale === 'full';
  const count = full ? 64 : 16;
  const fileSize = full ? 1024 * 1024 : 256 * 1024;
  const dir = join(root, 'concurrency');
  await mkdir(join(dir, 'files'), { recursive: true });

  const payload: PayloadFile[] = [];
  const hubFiles: HubFile[] = [];
  for (let i = 0; i < count; i++) {
    const name = `hub${String(i + 1).padStart(2, '0')}.bin`;
    const path = join(dir, 'files', name);
    const sha256 = await writePayloadFile(path, fileSize, 9000 + i);
    payload.push({ name, path, size: fileSize, sha256 });
    hubFiles.push({ name, data: await readFile(path), mtime: PAYLOAD_MTIME });
  }
  const hubs: ScriptedHub[] = [];
  try {
    const sections: BenchHub[] = [];
    for (let i = 0; i < count; i++) {
      const address = `2:5020/${i + 1}@fidonet`;
      const password = `pw${i + 1}`;
      const hub = new ScriptedHub({ addresses: [address], password, answerDelayMs: ANSWER_DELAY_MS });
      hubs.push(hub);
      sections.push({ name: `hub${i + 1}`, address, password, port: await hub.listen() });
    }
    const solo = await BenchNode.create(join(dir, 'solo'), { address: US, hubs: sections.slice(0, 1), poller: { max_connections: MAX_CONNECTIONS } });
    const all = await BenchNode.create(join(dir, 'all'), { address: US, hubs: sections, poller: { max_connections: MAX_CONNECTIONS } });

    /** One `fnpoll run` of `node` against hubs[0..n): fresh state, empty inbound, each hub re-queues its file. */
    const round = async (node: BenchNode, n: number): Promise<{ wallMs: number; sessions: number[] }> => {
      for (let i = 0; i < n; i++) hubs[i]!.addFiles([hubFiles[i]!]);
      await rm(node.stateFile, { force: true });
      await rm(node.logFile, { force: true });
      await rm(node.inbound, { recursive: true, force: true });
      const before = hubs.slice(0, n).map((h) => h.sessions.length);
      const m = await measure(process.execPath, node.args('run'), { timeoutMs: 120_000 });
      expectExit(m, 0, `fnpoll run (${n} scripted hubs)`);
      for (let i = 0; i < n; i++) {
        const s = hubs[i]!.sessions.slice(before[i]!);
        if (s.length !== 1 || s[0]!.result !== 'ok' || !s[0]!.acknowledged.includes(hubFiles[i]!.name)) {
          throw new Error(`concurrency: hub ${i + 1} did not see one OK session that delivered its file: ${JSON.stringify(s.map((x) => [x.result, x.reason]))}`);
        }
      }
      const problems = await verifyDelivered(node.inbound, payload.slice(0, n));
      if (problems.length) throw new Error(`concurrency: ${problems.slice(0, 5).join('; ')}`);
      const sessions = await sessionDurations(node.logFile);
      if (sessions.length !== n) throw new Error(`concurrency: the log has ${sessions.length} OK session lines, expected ${n}`);
      return { wallMs: m.wallMs, sessions };
    };

    const soloSessions: number[] = [];
    const soloWalls: number[] = [];
    const allWalls: number[] = [];
    progress(`concurrency: 1 warm-up + ${settings.rounds} rounds of 1 hub and of ${count} hubs, ${MAX_CONNECTIONS} at a time`);
    for (let r = 0; r <= settings.rounds; r++) {
      const one = await round(solo, 1);
      const many = await round(all, count);
      if (r === 0) continue;
      soloSessions.push(one.sessions[0]!);
      soloWalls.push(one.wallMs);
      allWalls.push(many.wallMs);
      progress(`  round ${r}: one session ${fmtMs(one.sessions[0]!)} (run ${fmtMs(one.wallMs)}); ${count} hubs ${fmtMs(many.wallMs)}`);
    }
    const session = median(soloSessions);
    const ideal = (count / MAX_CONNECTIONS) * session;
    const total = median(allWalls);
    return [
      {
        id: '4',
        what: `${count} scripted hubs (${ANSWER_DELAY_MS} ms delay, ${fileSize / 1024} KB each), ${MAX_CONNECTIONS} at a time`,
        fnpoll: fmtMs(total),
        baseline: `${fmtMs(ideal)} (${count}/${MAX_CONNECTIONS} × ${fmtMs(session)})`,
        ratio: (total / ideal).toFixed(2),
        target: `≤ ${RATIO_TARGET}`,
        met: total / ideal <= RATIO_TARGET,
        note: `one session ${soloSessions.map(fmtMs).join(', ')} (whole single-hub run ${fmtMs(median(soloWalls))}); ${count}-hub runs ${allWalls.map(fmtMs).join(', ')}`,
      },
    ];
  } finally {
    await Promise.all(hubs.map((h) => h.close()));
    await rm(dir, { recursive: true, force: true });
  }
}

