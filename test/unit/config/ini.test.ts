import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { findEntry, findSection, parseIni, type IniDocument } from '../../../src/config/ini.js';

const FILE = 'fnpoll.ini';

function value(doc: IniDocument, section: string, key: string): string | undefined {
  const s = findSection(doc, section);
  return s && findEntry(s, key)?.value;
}

describe('parseIni: structure', () => {
  test('sections, keys, case and line numbers', () => {
    const doc = parseIni('; top comment\n[Node]\nAddress = 2:5020/1\n\n[hub1]\n  Hub_Address=2:5020/2  \n', FILE);
    assert.deepEqual(doc.problems, []);
    assert.deepEqual(
      doc.sections.map((s) => [s.name, s.key, s.line]),
      [
        ['Node', 'node', 2],
        ['hub1', 'hub1', 5],
      ],
    );
    const entry = findEntry(findSection(doc, 'NODE')!, 'ADDRESS')!;
    assert.deepEqual(entry, { name: 'Address', key: 'address', value: '2:5020/1', quoted: false, line: 3 });
    assert.equal(value(doc, 'hub1', 'hub_address'), '2:5020/2');
    assert.equal(doc.file, FILE);
  });

  test('CRLF line ends and a byte-order mark', () => {
    const doc = parseIni('\uFEFF[node]\r\naddress = 2:5020/1\r\nsysop = Jo\r\n', FILE);
    assert.deepEqual(doc.problems, []);
    assert.equal(value(doc, 'node', 'address'), '2:5020/1');
    assert.equal(value(doc, 'node', 'sysop'), 'Jo');
  });

  test('an empty value is kept as empty', () => {
    const doc = parseIni('[a]\nk =\nj=  \n', FILE);
    assert.deepEqual(doc.problems, []);
    assert.equal(value(doc, 'a', 'k'), '');
    assert.equal(value(doc, 'a', 'j'), '');
  });

  test('a value may contain `=`', () => {
    const doc = parseIni('[a]\non_success = run --x=1\n', FILE);
    assert.equal(value(doc, 'a', 'on_success'), 'run --x=1');
  });
});

describe('parseIni: comments and quoting', () => {
  test('whole-line comments with ; and #, also indented', () => {
    const doc = parseIni('# one\n[a]\n; two\n   # three\nk = v\n', FILE);
    assert.deepEqual(doc.problems, []);
    assert.deepEqual(findSection(doc, 'a')!.entries.map((e) => e.key), ['k']);
  });

  test('inline comments need whitespace before ; or #', () => {
    const doc = parseIni(
      '[a]\np1 = secret ; comment\np2 = secret # comment\np3 = pa#ss;word\np4 = a\t; tab comment\np5=#x\np6 = #x\n',
      FILE,
    );
    assert.deepEqual(doc.problems, []);
    assert.equal(value(doc, 'a', 'p1'), 'secret');
    assert.equal(value(doc, 'a', 'p2'), 'secret');
    assert.equal(value(doc, 'a', 'p3'), 'pa#ss;word');
    assert.equal(value(doc, 'a', 'p4'), 'a');
    assert.equal(value(doc, 'a', 'p5'), '#x');
    assert.equal(value(doc, 'a', 'p6'), '');
  });

  test('quoted values are verbatim, and may carry a comment after the quote', () => {
    const doc = parseIni('[a]\np = "  a ; b # c  "\nq = "x" ; note\nr = ""\n', FILE);
    assert.deepEqual(doc.problems, []);
    const p = findEntry(findSection(doc, 'a')!, 'p')!;
    assert.equal(p.value, '  a ; b # c  ');
    assert.equal(p.quoted, true);
    assert.equal(value(doc, 'a', 'q'), 'x');
    assert.equal(value(doc, 'a', 'r'), '');
  });

  test('a section header may carry a comment', () => {
    const doc = parseIni('[hub1] ; the main uplink\nk = v\n', FILE);
    assert.deepEqual(doc.problems, []);
    assert.equal(findSection(doc, 'hub1')!.line, 1);
  });
});

describe('parseIni: problems', () => {
  test('duplicate key, case-insensitively, names the first line', () => {
    const doc = parseIni('[hub1]\npassword = a\nx = 1\nPassword = b\n', FILE);
    assert.deepEqual(doc.problems, ['fnpoll.ini:4 [hub1] Password: duplicate key (first at line 2)']);
    assert.equal(value(doc, 'hub1', 'password'), 'a');
  });

  test('duplicate section, case-insensitively; its keys are dropped', () => {
    const doc = parseIni('[hub1]\nk = 1\n[HUB1]\nk = 2\nk = 3\n', FILE);
    assert.deepEqual(doc.problems, [
      'fnpoll.ini:3 [HUB1]: duplicate section (first at line 1)',
      'fnpoll.ini:5 [HUB1] k: duplicate key (first at line 4)',
    ]);
    assert.equal(doc.sections.length, 1);
    assert.equal(value(doc, 'hub1', 'k'), '1');
  });

  test('malformed lines', () => {
    const doc = parseIni('[a]\njust words\n= novalue\nbad key = 1\n', FILE);
    assert.deepEqual(doc.problems, [
      'fnpoll.ini:2: malformed line "just words" (expected [section] or key = value)',
      'fnpoll.ini:3: malformed line "= novalue" (expected [section] or key = value)',
      'fnpoll.ini:4: malformed line "bad key = 1" (expected [section] or key = value)',
    ]);
  });

  test('a long malformed line is cut in the message', () => {
    const doc = parseIni(`[a]\n${'x'.repeat(100)}\n`, FILE);
    assert.equal(doc.problems.length, 1);
    assert.match(doc.problems[0]!, /^fnpoll\.ini:2: malformed line "x{57}\.\.\." /);
  });

  test('malformed section headers; following keys get no second message', () => {
    const doc = parseIni('[a]\nk = 1\n[broken\nk = 2\n[]\n[b] junk\n', FILE);
    assert.deepEqual(doc.problems, [
      'fnpoll.ini:3: malformed section header "[broken" (expected [name])',
      'fnpoll.ini:5: malformed section header "[]" (expected [name])',
      'fnpoll.ini:6: malformed section header "[b] junk" (expected [name])',
    ]);
    assert.equal(value(doc, 'a', 'k'), '1');
  });

  test('a key before any section', () => {
    const doc = parseIni('address = 2:5020/1\n[node]\n', FILE);
    assert.deepEqual(doc.problems, ['fnpoll.ini:1 address: outside any [section]']);
  });

  test('quote problems do not echo the value (it may be a password)', () => {
    const doc = parseIni('[hub1]\npassword = "secret\nother = "x" y\n', FILE);
    assert.deepEqual(doc.problems, [
      'fnpoll.ini:2 [hub1] password: unterminated quoted value (no closing ")',
      'fnpoll.ini:3 [hub1] other: unexpected text after the closing quote',
    ]);
    assert.ok(!doc.problems.join('\n').includes('secret'));
  });

  test('random input never throws', () => {
    // Deterministic LCG so a failure reproduces.
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const alphabet = '[]=;#" \t\r\nab_-.:\\\uFEFF';
    for (let i = 0; i < 300; i++) {
      let text = '';
      const len = rand(80);
      for (let j = 0; j < len; j++) text += alphabet[rand(alphabet.length)];
      const doc = parseIni(text, FILE);
      for (const p of doc.problems) assert.ok(p.startsWith('fnpoll.ini') && !p.includes('\n'), p);
    }
  });
});
