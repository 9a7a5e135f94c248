import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliveredJournal, recoverAfterKill, replayJournals } from '../../../src/poll/recovery.js';
import { FlagKeeper } from '../../../src/bso/flags.js';
import { markSent, scanNode } from '../../../src/bso/outbound.js';
import { parseAddress } from '../../../src/ftn/address.js';
import { configFromIni } from './fixtures.js';
import { TestNode } from '../../helpers/node.js';
import { emptyState, serializeState } from '../../../src/poll/state.js';
import { emptyHubState } from '../../../src/poll/backoff.js';

let root: string;
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'fnpoll-recovery-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const HUB = parseAddress('2:5020/1');
const noTimer = () => () => undefined;

function recorder() {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => void lines.push(`info: ${m}`), warn: (m: string) => void lines.push(`warn: ${m}`) } };
}

async function fixture() {
  const dir = join(root, `n${++n}`);
  const out = join(dir, 'out');
  const files = join(dir, 'files');
  await mkdir(out, { recursive: true });
  await mkdir(files, { recursive: true });
  const f = async (name: string, text: string) => {
    const p = join(files, name);
    await writeFile(p, text);
    return p;
  };
  const del = await f('del.bin', 'delete me');
  const trunc = await f('trunc.bin', 'truncate me');
  const keep = await f('keep.bin', 'keep me');
  const early = await f('early.bin', 'killed before the mark');
  const replaced = await f('replaced.bin', 'first version');
  const flow = join(out, '139c0001.flo');
  await writeFile(flow, [`^${del}`, `#${trunc}`, keep, `^${early}`, `^${replaced}`].join('\n') + '\n');
  const netmail = join(out, '139c0001.out');
  await writeFile(netmail, Buffer.alloc(100, 7));
  const layout = { root: out, defaultZone: 2 };
  const q = await scanNode(layout, HUB);
  const item = (p: string) => q.items.find((i) => i.path === p)!;
  return { dir, out, flow, netmail, del, trunc, keep, early, replaced, item, stateFile: join(dir, 'state.json') };
}

describe('after a kill between the `~` mark and the delete (issue 11, defect 6)', () => {
  test('the next run deletes or truncates the delivered files, marks what was not marked, and leaves replaced files alone', async () => {
    const fx = await fixture();
    // The killed run: every file confirmed (M_GOT) and journaled; marks written for some; no delete done.
    const journal = new DeliveredJournal(fx.stateFile, 999_999_999);
    for (const p of [fx.del, fx.trunc, fx.keep, fx.replaced]) {
      journal.record(fx.item(p));
      await markSent(fx.item(p));
    }
    journal.record(fx.item(fx.early)); // killed right after the journal line, before its mark
    journal.record(fx.item(fx.netmail));
    // Meanwhile a tosser put a new file under a delivered name (another inode and size).
    await rm(fx.replaced);
    await writeFile(fx.replaced, 'the second version, not yet sent');
    assert.deepEqual((await readdir(fx.dir)).sort(), ['files', 'out', 'state.json.delivered.999999999']);

    const keeper = new FlagKeeper({ staleAge: 0, schedule: noTimer });
    const { lines, log } = recorder();
    await replayJournals(fx.stateFile, keeper, log);

    assert.equal(existsSync(fx.del), false);
    assert.equal((await stat(fx.trunc)).size, 0);
    assert.equal(await readFile(fx.keep, 'utf8'), 'keep me');
    assert.equal(existsSync(fx.early), false);
    assert.equal(await readFile(fx.replaced, 'utf8'), 'the second version, not yet sent');
    assert.equal(existsSync(fx.netmail), false);
    // Every line is `~` now, so the flow file went too; journal and flags are gone.
    assert.equal(existsSync(fx.flow), false);
    assert.deepEqual((await readdir(fx.dir)).sort(), ['files', 'out']);
    assert.deepEqual(await readdir(fx.out), []);
    assert.deepEqual(keeper.held(), []);
    assert.deepEqual(lines.sort(), [
      `info: removed delivered file ${fx.del} (${fx.flow}) left by an interrupted run`,
      `info: removed delivered file ${fx.early} (${fx.flow}) left by an interrupted run`,
      `info: removed delivered netmail packet ${fx.netmail} left by an interrupted run`,
      `info: truncated delivered file ${fx.trunc} (${fx.flow}) left by an interrupted run`,
    ]);
  });

  test('a node busy elsewhere keeps the journal for a later run', async () => {
    const fx = await fixture();
    const journal = new DeliveredJournal(fx.stateFile, 999_999_998);
    journal.record(fx.item(fx.del));
    await markSent(fx.item(fx.del));
    await writeFile(join(fx.out, '139c0001.bsy'), '1\n'); // init: alive
    const keeper = new FlagKeeper({ staleAge: 0, schedule: noTimer });
    await replayJournals(fx.stateFile, keeper, recorder().log);
    assert.ok(existsSync(fx.del), 'changed under someone else\'s .bsy');
    assert.ok(existsSync(`${fx.stateFile}.delivered.999999998`));
    await rm(join(fx.out, '139c0001.bsy'));
    await replayJournals(fx.stateFile, keeper, recorder().log);
    assert.equal(existsSync(fx.del), false);
    assert.equal(existsSync(`${fx.stateFile}.delivered.999999998`), false);
  });

  test('a run that ends normally leaves no journal', async () => {
    const fx = await fixture();
    const journal = new DeliveredJournal(fx.stateFile);
    journal.record(fx.item(fx.del));
    assert.ok(existsSync(journal.file));
    journal.close();
    assert.equal(existsSync(journal.file), false);
  });
});

describe('temp files of killed runs (issue 11, defect 6)', () => {
  test('state and lock-owner temp files, flag temps of dead PIDs, old inbound copies: removed with one info line', async () => {
    const dir = join(root, `t${++n}`);
    await mkdir(join(dir, 'out'), { recursive: true });
    await mkdir(join(dir, 'in'), { recursive: true });
    const config = configFromIni(dir, '', '[fido]\nhub_address = 2:5020/1\nhub_hostname = h.example.net\n');
    const litter = ['state.json.3456789012', 'state.json.lock.info.17', 'out/139c0001.csy.999999999-0a0b0c0d.tmp', 'state.json.lock.takeover.999999999-01234567.stale'];
    const keep = ['state.json', 'state.json.corrupt-20260101T000000Z', 'state.json.lock.info', 'out/139c0001.csy.1-0a0b0c0d.tmp', 'in/.fnpoll-0123456789ab.tmp', 'state.json.1.bak'];
    for (const f of [...litter, ...keep]) await writeFile(join(dir, f), '{}\n');
    const old = new Date(Date.now() - 2 * 3600_000);
    const { utimes } = await import('node:fs/promises');
    await writeFile(join(dir, 'in/.fnpoll-ba9876543210.tmp'), 'x');
    await utimes(join(dir, 'in/.fnpoll-ba9876543210.tmp'), old, old);
    litter.push('in/.fnpoll-ba9876543210.tmp');
    const { lines, log } = recorder();
    await recoverAfterKill(config, new FlagKeeper({ staleAge: 0, schedule: noTimer }), log);
    for (const f of litter) assert.equal(existsSync(join(dir, f)), false, `${f} was left`);
    for (const f of keep) assert.ok(existsSync(join(dir, f)), `${f} was removed`);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0]!, /^info: removed 5 temp file\(s\) left by an interrupted run: /);
  });
});

describe('a cron run with nothing due still tidies after a killed run', () => {
  test('the journal is replayed although no hub is due', async () => {
    const node = await TestNode.create({ address: '2:5020/99@fidonet', hubs: [{ name: 'hub', address: '2:5020/1@fidonet', port: 9 }] });
    try {
      const state = emptyState();
      state.hubs.hub = { ...emptyHubState(), lastAttempt: Date.now(), lastSuccess: Date.now(), lastResult: { ok: true } };
      await writeFile(node.stateFile, serializeState(state));
      const file = await node.file('sent.bin', 'delivered before the kill');
      const flow = await node.outboundFile('139c0001.flo', `^${file}\n`);
      const q = await scanNode({ root: node.outbound, defaultZone: 2 }, HUB);
      const journal = new DeliveredJournal(node.stateFile, 999_999_997);
      journal.record(q.items[0]!);
      await markSent(q.items[0]!);
      // The flow line is `~` now, so nothing is queued and the hub is not due: the idle path.
      const r = await node.run(['run']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(existsSync(file), false, 'the delivered file is still there');
      assert.equal(existsSync(flow), false);
      assert.equal(existsSync(`${node.stateFile}.delivered.999999997`), false);
      assert.match(await node.log(), /removed delivered file .*sent\.bin .*left by an interrupted run/);
    } finally {
      await node.remove();
    }
  });
});
