import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, stat, writeFile, readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import {
  appendFlowLine,
  applyFlowAction,
  classifyExtension,
  confirmSent,
  createPollRequest,
  finishFlowFile,
  flowFilePath,
  markSent,
  netmailPath,
  nodeBase,
  OutboundDirCache,
  parseFlowFile,
  scanNode,
  summarizeNode,
  summarizeOutbound,
  zoneDir,
  type OutboundItem,
} from '../../../src/bso/outbound.js';
import type { BsoLayout } from '../../../src/bso/types.js';
import { OutboundTrees, put, type OutboundTree } from '../../helpers/bso.js';
import { parseAddress } from '../../../src/ftn/address.js';
import { IoError } from '../../../src/errors.js';

const A = parseAddress('2:5020/1'); // 139c0001
const P = parseAddress('2:5020/1.45'); // 139c0001.pnt/0000002d

const trees = new OutboundTrees('fnpoll-outbound-');
after(() => trees.remove());
const fresh = (): Promise<OutboundTree> => trees.fresh();

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

function collector(): { warn: (m: string) => void; msgs: string[] } {
  const msgs: string[] = [];
  return { warn: (m) => msgs.push(m), msgs };
}

describe('naming', () => {
  const layout: BsoLayout = { root: '/ftn/out', defaultZone: 2 };

  test('zone directories: default zone is the root, others get 3 lowercase hex digits', () => {
    assert.equal(zoneDir(layout, 2), '/ftn/out');
    assert.equal(zoneDir(layout, 21), '/ftn/out.015');
    assert.equal(zoneDir(layout, 1), '/ftn/out.001');
    assert.equal(zoneDir(layout, 255), '/ftn/out.0ff');
    // FTS-5005 §2: 4 digits above 4095.
    assert.equal(zoneDir(layout, 4096), '/ftn/out.1000');
    assert.equal(zoneDir({ root: '/ftn/out/', defaultZone: 2 }, 3), '/ftn/out.003');
    assert.equal(zoneDir({ root: '/ftn/out/', defaultZone: 2 }, 2), '/ftn/out');
  });

  test('node and point bases', () => {
    assert.equal(nodeBase(layout, A), '/ftn/out/139c0001');
    assert.equal(nodeBase(layout, P), '/ftn/out/139c0001.pnt/0000002d');
    assert.equal(nodeBase(layout, parseAddress('21:32767/32767')), '/ftn/out.015/7fff7fff');
    assert.equal(nodeBase(layout, parseAddress('1:104/36.45')), '/ftn/out.001/00680024.pnt/0000002d');
    assert.equal(nodeBase(layout, parseAddress('2:1/0')), '/ftn/out/00010000');
  });

  test('flavour extensions', () => {
    assert.equal(flowFilePath(layout, A, 'immediate'), '/ftn/out/139c0001.ilo');
    assert.equal(flowFilePath(layout, A, 'crash'), '/ftn/out/139c0001.clo');
    assert.equal(flowFilePath(layout, A, 'direct'), '/ftn/out/139c0001.dlo');
    assert.equal(flowFilePath(layout, A, 'normal'), '/ftn/out/139c0001.flo');
    assert.equal(flowFilePath(layout, A, 'hold'), '/ftn/out/139c0001.hlo');
    assert.equal(netmailPath(layout, A, 'immediate'), '/ftn/out/139c0001.iut');
    assert.equal(netmailPath(layout, A, 'crash'), '/ftn/out/139c0001.cut');
    assert.equal(netmailPath(layout, A, 'direct'), '/ftn/out/139c0001.dut');
    assert.equal(netmailPath(layout, A, 'normal'), '/ftn/out/139c0001.out');
    assert.equal(netmailPath(layout, A, 'hold'), '/ftn/out/139c0001.hut');
  });

  test('extensions classify case-insensitively; control files are not queue items', () => {
    assert.deepEqual(classifyExtension('CLO'), { kind: 'flow', flavour: 'crash' });
    assert.deepEqual(classifyExtension('Out'), { kind: 'netmail', flavour: 'normal' });
    assert.deepEqual(classifyExtension('flo'), { kind: 'flow', flavour: 'normal' });
    assert.deepEqual(classifyExtension('REQ'), { kind: 'req' });
    for (const e of ['bsy', 'csy', 'hld', 'try', 'pnt', 'nut', 'olo', 'pkt', '']) assert.equal(classifyExtension(e), undefined, e);
  });
});

describe('parseFlowFile', () => {
  test('directives, blank lines and exact byte offsets with LF', () => {
    const text = '^/a\n#/b\n~/c\n/d\n\n   \n-/e\n!/f\n@/g\n';
    const lines = parseFlowFile(Buffer.from(text));
    assert.deepEqual(
      lines.map((l) => [l.offset, l.lineNo, l.sent, l.action, l.path]),
      [
        [0, 1, false, 'delete', '/a'],
        [4, 2, false, 'truncate', '/b'],
        [8, 3, true, 'keep', '/c'],
        [12, 4, false, 'keep', '/d'],
        [20, 7, false, 'delete', '/e'],
        [24, 8, true, 'keep', '/f'],
        [28, 9, false, 'keep', '/g'],
      ],
    );
    for (const l of lines) assert.equal(text[l.offset], l.text[0]);
  });

  test('CRLF lines, a last line without a line end, trailing blanks and ^Z', () => {
    const text = '^/x y.zip  \r\n\r\n#/b\r\n/c\x1a';
    const lines = parseFlowFile(Buffer.from(text));
    assert.deepEqual(
      lines.map((l) => [l.offset, l.text, l.action, l.path]),
      [
        [0, '^/x y.zip  ', 'delete', '/x y.zip'],
        [15, '#/b', 'truncate', '/b'],
        [20, '/c\x1a', 'keep', '/c'],
      ],
    );
  });

  test('offsets count bytes, not characters', () => {
    const lines = parseFlowFile(Buffer.from('^/tmp/été.zip\n#/b\n'));
    assert.equal(lines[1]!.offset, Buffer.byteLength('^/tmp/été.zip\n'));
  });

  test('empty and blank-only files have no lines', () => {
    assert.deepEqual(parseFlowFile(Buffer.alloc(0)), []);
    assert.deepEqual(parseFlowFile(Buffer.from('\n\r\n  \n\t\n')), []);
  });
});

describe('scanNode', () => {
  test('a missing outbound directory means nothing queued', async () => {
    const { layout } = await fresh();
    const q = await scanNode({ ...layout, root: join(layout.root, 'nope') }, A);
    assert.deepEqual(q.items, []);
    assert.deepEqual(q.flowFiles, []);
    assert.deepEqual(q.summary, { files: 0, bytes: 0, flavour: undefined, pollRequest: false });
    const other = await scanNode(layout, parseAddress('21:1/1'));
    assert.deepEqual(other.items, []);
  });

  test('a zone "directory" that is a file is an IoError naming it', async () => {
    const { layout, out } = await fresh();
    await put(`${out}.015`, 'x');
    await assert.rejects(scanNode(layout, parseAddress('21:1/1')), (err: unknown) => {
      assert.ok(err instanceof IoError);
      assert.match(err.message, /out\.015/);
      return true;
    });
  });

  test('finds upper-case names for nodes and points', async () => {
    const { layout, out, files } = await fresh();
    const f1 = await put(join(files, 'one.zip'), 'one');
    const f2 = await put(join(files, 'two.zip'), 'two!');
    await put(join(out, '139C0001.CLO'), `${f1}\n`);
    await put(join(out, '139C0001.OUT'), Buffer.alloc(100, 1));
    await put(join(out, '139C0001.PNT', '0000002D.FLO'), `${f2}\n`);
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => [i.kind, i.flavour, i.path]),
      [
        ['file', 'crash', f1],
        ['netmail', 'normal', join(out, '139C0001.OUT')],
      ],
    );
    assert.deepEqual(q.flowFiles, [join(out, '139C0001.CLO')]);
    const qp = await scanNode(layout, P);
    assert.deepEqual(
      qp.items.map((i) => [i.kind, i.flavour, i.path, i.size]),
      [['file', 'normal', f2, 4]],
    );
    assert.deepEqual(qp.flowFiles, [join(out, '139C0001.PNT', '0000002D.FLO')]);
  });

  test('ignores other nodes, control files and the node itself when scanning a point', async () => {
    const { layout, out, files } = await fresh();
    const f = await put(join(files, 'f'), 'f');
    await put(join(out, '139c0002.flo'), `${f}\n`);
    await put(join(out, '139c0001.bsy'), '1');
    await put(join(out, '139c0001.csy'), '1');
    await put(join(out, '139c0001.hld'), '99999999999');
    await put(join(out, '139c0001.try'), Buffer.from([1, 0, 0, 0, 0]));
    await put(join(out, '139c0001.pnt', '0000002e.flo'), `${f}\n`);
    assert.deepEqual((await scanNode(layout, A)).items, []);
    assert.deepEqual((await scanNode(layout, P)).items, []);
    await put(join(out, '139c0001.flo'), `${f}\n`);
    assert.deepEqual((await scanNode(layout, P)).items, []);
    assert.equal((await scanNode(layout, A)).items.length, 1);
  });

  test('every directive: what is queued and with which action', async () => {
    const { layout, out, files } = await fresh();
    const names = ['caret', 'hash', 'tilde', 'plain', 'dash', 'bang', 'at'];
    const p = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await put(join(files, n), n)] as const)));
    await put(
      join(out, '139c0001.flo'),
      `^${p.caret}\n#${p.hash}\n~${p.tilde}\n${p.plain}\n-${p.dash}\n!${p.bang}\n@${p.at}\n`,
    );
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => [i.path, i.flow?.action]),
      [
        [p.caret, 'delete'],
        [p.hash, 'truncate'],
        [p.plain, 'keep'],
        [p.dash, 'delete'],
        [p.at, 'keep'],
      ],
    );
    assert.deepEqual(q.pollRequests, []);
    assert.equal(q.summary.flavour, 'normal');
  });

  test('item size and mtime; a zero-byte file is a normal item', async () => {
    const { layout, out, files } = await fresh();
    const z = await put(join(files, 'empty.tic'), '');
    const big = await put(join(files, 'big.zip'), Buffer.alloc(5000, 7));
    await utimes(big, 1_700_000_000, 1_700_000_000.9);
    await put(join(out, '139c0001.flo'), `${z}\n^${big}\n`);
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => [i.path, i.size]),
      [
        [z, 0],
        [big, 5000],
      ],
    );
    assert.equal(q.items[1]!.mtime, 1_700_000_000);
    assert.deepEqual(q.summary, { files: 2, bytes: 5000, flavour: 'normal', pollRequest: false });
  });

  test('relative paths resolve against the outbound root', async () => {
    const { layout, out } = await fresh();
    const f = await put(join(out, 'bundles', 'x.su0'), 'data');
    await put(join(out, '139c0001.flo'), '#bundles/x.su0\n');
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => [i.path, i.flow?.action]),
      [[f, 'truncate']],
    );
  });

  test('missing files and non-files are skipped with a warning naming the flow file and the path', async () => {
    const { layout, out, files } = await fresh();
    const ok = await put(join(files, 'ok'), 'ok');
    const flo = await put(join(out, '139c0001.flo'), `^${join(files, 'gone.zip')}\n${files}\n${ok}\n^\n`);
    const { warn, msgs } = collector();
    const q = await scanNode(layout, A, { warn });
    assert.deepEqual(
      q.items.map((i) => i.path),
      [ok],
    );
    assert.equal(msgs.length, 3, msgs.join('\n'));
    assert.ok(msgs.some((m) => m.includes(`${flo} line 1`) && m.includes(join(files, 'gone.zip')) && /no such file/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => m.includes(flo) && m.includes(`"${files}"`) && /not a regular file/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => m.includes(`${flo} line 4`) && /no file name/.test(m)), msgs.join('\n'));
    for (const m of msgs) assert.ok(!m.includes('\n'), 'one line');
  });

  test('a flow file whose lines all name missing files neither sends nor asks for a call', async () => {
    const { layout, out, files } = await fresh();
    const flo = await put(join(out, '139c0001.clo'), `^${join(files, 'gone')}\n`);
    const q = await scanNode(layout, A);
    assert.deepEqual(q.items, []);
    assert.deepEqual(q.flowFiles, [flo]);
    assert.deepEqual(q.pollRequests, []);
    assert.equal(q.summary.flavour, undefined);
  });

  test('one file listed twice is queued once; every line is recorded; the least destructive directive wins', async () => {
    const { layout, out, files } = await fresh();
    const f = await put(join(files, 'dup.zip'), 'dup');
    const g = await put(join(files, 'other.zip'), 'other');
    const clo = await put(join(out, '139c0001.clo'), `^${f}\n${g}\n`);
    const flo = await put(join(out, '139c0001.flo'), `#${join(files, '.', 'dup.zip')}\n^${f}\n`);
    const { warn, msgs } = collector();
    const q = await scanNode(layout, A, { warn });
    assert.deepEqual(
      q.items.map((i) => [i.path, i.flavour]),
      [
        [f, 'crash'],
        [g, 'crash'],
      ],
    );
    const item = q.items[0]!;
    assert.equal(item.flow!.flowPath, clo);
    assert.equal(item.flow!.lineOffset, 0);
    assert.deepEqual(
      item.flow!.alsoLines!.map((r) => [r.flowPath, r.lineOffset]),
      [
        [flo, 0],
        [flo, Buffer.byteLength(`#${join(files, '.', 'dup.zip')}\n`)],
      ],
    );
    assert.equal(item.flow!.action, 'truncate');
    assert.equal(msgs.length, 2);
    assert.ok(msgs.every((m) => m.includes(f) && m.includes(flo)));
    assert.equal(q.summary.files, 2);

    await confirmSent(item);
    assert.equal(await readFile(clo, 'utf8'), `~${f}\n${g}\n`);
    assert.equal(await readFile(flo, 'utf8'), `~${join(files, '.', 'dup.zip')}\n~${f}\n`);
    assert.equal((await stat(f)).size, 0, 'truncated, not deleted');
    assert.equal(await finishFlowFile(flo), true);
    assert.equal(await finishFlowFile(clo), false);
  });

  test('netmail of 60 bytes or less is reported, not sent', async () => {
    const { layout, out } = await fresh();
    const empty = await put(join(out, '139c0001.cut'), Buffer.alloc(60));
    const real = await put(join(out, '139c0001.out'), Buffer.alloc(61));
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => [i.kind, i.path, i.size]),
      [['netmail', real, 61]],
    );
    assert.deepEqual(q.emptyNetmail, [empty]);
    assert.deepEqual(q.summary, { files: 1, bytes: 61, flavour: 'normal', pollRequest: false });
  });

  test('order: by flavour, netmail before files, flow-file line order, .req last', async () => {
    const { layout, out, files } = await fresh();
    const f = async (n: string) => put(join(files, n), n);
    const [h1, n1, n2, c1, i1] = await Promise.all(['h1', 'n1', 'n2', 'c1', 'i1'].map(f));
    await put(join(out, '139c0001.hlo'), `${h1}\n`);
    await put(join(out, '139c0001.flo'), `${n2}\n${n1}\n`);
    await put(join(out, '139c0001.clo'), `${c1}\n`);
    await put(join(out, '139c0001.ilo'), `${i1}\n`);
    await put(join(out, '139c0001.hut'), Buffer.alloc(100));
    await put(join(out, '139c0001.dut'), Buffer.alloc(100));
    await put(join(out, '139c0001.out'), Buffer.alloc(100));
    await put(join(out, '139c0001.req'), 'FILES\r\n');
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => `${i.kind}:${i.flavour}:${i.path.slice(i.path.lastIndexOf('/') + 1)}`),
      [
        'file:immediate:i1',
        'file:crash:c1',
        'netmail:direct:139c0001.dut',
        'netmail:normal:139c0001.out',
        'file:normal:n2',
        'file:normal:n1',
        'netmail:hold:139c0001.hut',
        'file:hold:h1',
        'req:normal:139c0001.req',
      ],
    );
    assert.deepEqual(
      q.flowFiles.map((p) => p.slice(-3)),
      ['ilo', 'clo', 'flo', 'hlo'],
    );
    assert.equal(q.summary.flavour, 'immediate');
    assert.equal(q.summary.files, 9);
  });

  test('summary flavour: .req alone sets none, hold stays hold, poll requests count', async () => {
    const { layout, out, files } = await fresh();
    const req = await put(join(out, '139c0001.req'), 'FILES\r\n');
    let q = await scanNode(layout, A);
    assert.deepEqual(q.summary, { files: 1, bytes: 7, flavour: undefined, pollRequest: false });
    assert.deepEqual(
      q.items.map((i) => [i.kind, i.flavour, i.path]),
      [['req', 'normal', req]],
    );

    const f = await put(join(files, 'f'), 'f');
    await put(join(out, '139c0001.hlo'), `${f}\n`);
    q = await scanNode(layout, A);
    assert.deepEqual(q.summary, { files: 2, bytes: 8, flavour: 'hold', pollRequest: false });

    const dlo = await put(join(out, '139c0001.dlo'), '\r\n\n');
    q = await scanNode(layout, A);
    assert.deepEqual(q.summary, { files: 2, bytes: 8, flavour: 'direct', pollRequest: true });
    assert.deepEqual(q.pollRequests, [dlo]);
    assert.equal(await summarizeNode(layout, A).then((s) => s.flavour), 'direct');
  });

  test('a fully sent flow file left by a crash is listed but is neither a poll request nor mail', async () => {
    const { layout, out, files } = await fresh();
    const flo = await put(join(out, '139c0001.clo'), `~${join(files, 'x')}\n\n!${join(files, 'y')}\n`);
    const q = await scanNode(layout, A);
    assert.deepEqual(q.flowFiles, [flo]);
    assert.deepEqual(q.pollRequests, []);
    assert.equal(q.summary.flavour, undefined);
    assert.equal(await finishFlowFile(flo), true);
  });

  test('a shared directory cache reads a directory once', async () => {
    const { layout, out, files } = await fresh();
    const f = await put(join(files, 'f'), 'f');
    const dirs = new OutboundDirCache();
    assert.equal((await scanNode(layout, A, { dirs })).items.length, 0);
    await put(join(out, '139c0001.flo'), `${f}\n`);
    assert.equal((await scanNode(layout, A, { dirs })).items.length, 0, 'listing reused');
    assert.equal((await scanNode(layout, A)).items.length, 1, 'fresh listing');
  });
});

describe('confirmSent and finishFlowFile', () => {
  async function oneItem(content: (f: string) => string, opts: { crlf?: boolean } = {}) {
    const { layout, out, files } = await fresh();
    const f = await put(join(files, 'file.zip'), 'payload');
    const other = await put(join(files, 'other.zip'), 'other');
    let text = `${content(f)}\n${other}\n`;
    if (opts.crlf) text = text.replace(/\n/g, '\r\n');
    const flo = await put(join(out, '139c0001.flo'), text);
    const q = await scanNode(layout, A);
    const item = q.items.find((i) => i.path === f)!;
    assert.ok(item, 'queued');
    return { layout, flo, f, other, item, text };
  }

  for (const [directive, action] of [
    ['^', 'delete'],
    ['-', 'delete'],
    ['#', 'truncate'],
    ['', 'keep'],
    ['@', 'keep'],
  ] as const) {
    test(`"${directive}" marks the line and then ${action}s`, async () => {
      const { flo, f, item, text } = await oneItem((p) => `${directive}${p}`);
      await confirmSent(item);
      // Only the line's first byte changed.
      const after = await readFile(flo, 'utf8');
      assert.equal(after, `~${text.slice(1)}`);
      if (action === 'delete') assert.equal(await exists(f), false);
      if (action === 'truncate') assert.equal((await stat(f)).size, 0);
      if (action === 'keep') assert.equal(await readFile(f, 'utf8'), 'payload');
    });
  }

  test('marks the right byte in a CRLF flow file, and the marked line is skipped next time', async () => {
    const { layout, flo, other, item, text } = await oneItem((p) => `^${p}`, { crlf: true });
    const q0 = await scanNode(layout, A);
    const second = q0.items.find((i) => i.path === other)!;
    await confirmSent(second);
    const expected = text.split('\r\n');
    expected[1] = `~${expected[1]!.slice(1)}`;
    assert.equal(await readFile(flo, 'utf8'), expected.join('\r\n'));
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => i.path),
      [item.path],
    );
  });

  test('netmail is deleted on confirmation; a missing packet is not an error; .req is left for the caller', async () => {
    const { layout, out } = await fresh();
    const pkt = await put(join(out, '139c0001.cut'), Buffer.alloc(200));
    const req = await put(join(out, '139c0001.req'), 'FILES\r\n');
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => i.kind),
      ['netmail', 'req'],
    );
    await confirmSent(q.items[0]!);
    assert.equal(await exists(pkt), false);
    await confirmSent(q.items[0]!);
    await confirmSent(q.items[1]!);
    assert.equal(await exists(req), true);
  });

  test('delete of a file that is already gone is not an error', async () => {
    const { f, item, flo } = await oneItem((p) => `^${p}`);
    await rm(f);
    await confirmSent(item);
    assert.match(await readFile(flo, 'utf8'), /^~/);
  });

  test('confirming twice is harmless', async () => {
    const { item, flo, text } = await oneItem((p) => `#${p}`);
    await confirmSent(item);
    await confirmSent(item);
    assert.equal(await readFile(flo, 'utf8'), `~${text.slice(1)}`);
  });

  test('crash between mark and delete: the file is neither resent nor lost', async () => {
    const { layout, f, other, item, flo } = await oneItem((p) => `^${p}`);
    await markSent(item); // ... and the process dies before applyFlowAction
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => i.path),
      [other],
      'confirmed file not queued again',
    );
    assert.equal(await readFile(f, 'utf8'), 'payload', 'still on disk');
    assert.equal(await finishFlowFile(flo), false, 'other line unsent');
  });

  test('crash before the mark: the file is sent again', async () => {
    const { layout, f, other } = await oneItem((p) => `^${p}`);
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => i.path),
      [f, other],
    );
  });

  test('a line appended during the session keeps the flow file alive', async () => {
    const { layout, files } = await fresh();
    const f = await put(join(files, 'a'), 'a');
    const g = await put(join(files, 'b'), 'b');
    const path = await put(join(layout.root, '139c0001.flo'), `^${f}`); // no line end
    const [item] = (await scanNode(layout, A)).items;
    await appendFlowLine(path, `^${g}`);
    await confirmSent(item!);
    assert.equal(await readFile(path, 'utf8'), `~${f}\n^${g}\n`);
    assert.equal(await finishFlowFile(path), false);
    const q = await scanNode(layout, A);
    assert.deepEqual(
      q.items.map((i) => i.path),
      [g],
    );
    await confirmSent(q.items[0]!);
    assert.equal(await finishFlowFile(path), true);
    assert.equal(await exists(path), false);
  });

  test('a flow file rewritten under us is not marked and the file is not deleted', async () => {
    const { f, other, item, flo } = await oneItem((p) => `^${p}`);
    const rewritten = `^${other}\n^${f}\n`;
    await writeFile(flo, rewritten);
    await assert.rejects(confirmSent(item), (err: unknown) => {
      assert.ok(err instanceof IoError);
      assert.ok(err.message.includes(flo) && err.message.includes('offset 0'), err.message);
      assert.ok(!err.message.includes('\n'));
      return true;
    });
    assert.equal(await readFile(flo, 'utf8'), rewritten);
    assert.equal(await exists(f), true);
  });

  test('a line that grew since the scan is not marked', async () => {
    const { layout, files } = await fresh();
    const f = await put(join(files, 'a'), 'a');
    const path = await put(join(layout.root, '139c0001.flo'), `${f}`);
    const [item] = (await scanNode(layout, A)).items;
    await writeFile(path, `${f}.more\n`);
    await assert.rejects(markSent(item!), IoError);
    assert.equal(await readFile(path, 'utf8'), `${f}.more\n`);
  });

  test('applyFlowAction alone does nothing to kept files and to non-flow items', async () => {
    const { item, f } = await oneItem((p) => `@${p}`);
    await applyFlowAction(item);
    assert.equal(await exists(f), true);
    const netmail: OutboundItem = { kind: 'netmail', flavour: 'crash', path: f, size: 7, mtime: 0 };
    await applyFlowAction(netmail);
    await markSent(netmail);
    assert.equal(await exists(f), true);
  });

  test('finishFlowFile: empty and blank-only files go, unsent lines stay, missing is false', async () => {
    const { out } = await fresh();
    const empty = await put(join(out, '139c0001.dlo'), '');
    const blank = await put(join(out, '139c0001.clo'), '\r\n \n');
    const done = await put(join(out, '139c0001.flo'), '~/a\r\n\r\n!/b\n~');
    const open = await put(join(out, '139c0001.hlo'), '~/a\n#/b\n');
    assert.equal(await finishFlowFile(empty), true);
    assert.equal(await finishFlowFile(blank), true);
    assert.equal(await finishFlowFile(done), true);
    assert.equal(await finishFlowFile(open), false);
    assert.equal(await exists(open), true);
    assert.equal(await finishFlowFile(join(out, 'nope.flo')), false);
    assert.deepEqual(await readdir(out), ['139c0001.hlo']);
  });
});

describe('createPollRequest and appendFlowLine', () => {
  test('creates an empty direct flow file by default, with its zone and point directories', async () => {
    const { layout, out } = await fresh();
    const p = await createPollRequest(layout, A);
    assert.equal(p, join(out, '139c0001.dlo'));
    assert.equal((await stat(p)).size, 0);
    const pz = await createPollRequest(layout, parseAddress('21:5/6.7'), 'crash');
    assert.equal(pz, `${out}.015/00050006.pnt/00000007.clo`);
    assert.equal((await stat(pz)).size, 0);
    const q = await scanNode(layout, A);
    assert.deepEqual(q.pollRequests, [p]);
    assert.deepEqual(q.summary, { files: 0, bytes: 0, flavour: 'direct', pollRequest: true });
  });

  test('never truncates an existing flow file and finds one in upper case', async () => {
    const { layout, out } = await fresh();
    const upper = await put(join(out, '139C0001.DLO'), '^/x/y\n');
    assert.equal(await createPollRequest(layout, A, 'direct'), upper);
    assert.equal(await readFile(upper, 'utf8'), '^/x/y\n');
    const lower = await put(join(out, '139c0001.ilo'), '/z\n');
    assert.equal(await createPollRequest(layout, A, 'immediate'), lower);
    assert.equal(await readFile(lower, 'utf8'), '/z\n');
    const pntDir = join(out, '139C0001.PNT');
    await mkdir(pntDir);
    assert.equal(await createPollRequest(layout, P, 'normal'), join(pntDir, '0000002d.flo'));
    assert.deepEqual((await readdir(out)).sort(), ['139C0001.DLO', '139C0001.PNT', '139c0001.ilo']);
  });

  test('appendFlowLine appends, adds a missing line end first, and refuses line breaks', async () => {
    const { out } = await fresh();
    const p = join(out, 'sub', '139c0001.flo');
    await appendFlowLine(p, '^/a');
    await appendFlowLine(p, '#/b');
    assert.equal(await readFile(p, 'utf8'), '^/a\n#/b\n');
    await writeFile(p, '/c\r\n/d');
    await appendFlowLine(p, '/e');
    assert.equal(await readFile(p, 'utf8'), '/c\r\n/d\n/e\n');
    await assert.rejects(appendFlowLine(p, '/f\n/g'), TypeError);
  });
});

describe('summarizeOutbound', () => {
  test('several zones, nodes and points, keyed by 4D address', async () => {
    const { layout, out, files } = await fresh();
    const f = await put(join(files, 'f'), '12345');
    const nodes = ['2:5020/1', '2:5020/1.45', '2:5020/2', '21:1/100', '21:1/100.3', '1:1/1', '3:3/3'].map(parseAddress);
    await put(join(out, '139c0001.flo'), `${f}\n`);
    await put(join(out, '139c0001.pnt', '0000002d.hlo'), `${f}\n`);
    await put(join(out, '139C0002.CUT'), Buffer.alloc(100));
    await put(join(`${out}.015`, '00010064.dlo'), '');
    await put(join(`${out}.015`, '00010064.PNT', '00000003.REQ'), 'x');
    await put(join(`${out}.001`, '00010001.ilo'), `${f}\n^${f}\n`);
    const m = await summarizeOutbound(layout, [...nodes, parseAddress('2:5020/1@fidonet')]);
    assert.deepEqual([...m.keys()], ['2:5020/1', '2:5020/1.45', '2:5020/2', '21:1/100', '21:1/100.3', '1:1/1', '3:3/3']);
    assert.deepEqual(m.get('2:5020/1'), { files: 1, bytes: 5, flavour: 'normal', pollRequest: false });
    assert.deepEqual(m.get('2:5020/1.45'), { files: 1, bytes: 5, flavour: 'hold', pollRequest: false });
    assert.deepEqual(m.get('2:5020/2'), { files: 1, bytes: 100, flavour: 'crash', pollRequest: false });
    assert.deepEqual(m.get('21:1/100'), { files: 0, bytes: 0, flavour: 'direct', pollRequest: true });
    assert.deepEqual(m.get('21:1/100.3'), { files: 1, bytes: 1, flavour: undefined, pollRequest: false });
    assert.deepEqual(m.get('1:1/1'), { files: 1, bytes: 5, flavour: 'immediate', pollRequest: false });
    assert.deepEqual(m.get('3:3/3'), { files: 0, bytes: 0, flavour: undefined, pollRequest: false });
  });

  test('passes warnings through', async () => {
    const { layout, out, files } = await fresh();
    await put(join(out, '139c0001.flo'), `${join(files, 'missing')}\n`);
    const { warn, msgs } = collector();
    await summarizeOutbound(layout, [A], { warn });
    assert.equal(msgs.length, 1);
    assert.match(msgs[0]!, /missing.*no such file/);
  });
});
