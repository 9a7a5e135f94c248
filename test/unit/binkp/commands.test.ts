import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Cmd,
  argText,
  commandName,
  cramChallenge,
  escapeName,
  formatFileArgs,
  formatFileRef,
  parseFileArgs,
  parseFileRef,
  parseNul,
  parseOptions,
  sameFile,
  unescapeName,
} from '../../../src/binkp/commands.js';
import { prng } from '../../helpers/random.js';

// FTS-1026 §5.4: what may appear unescaped in a file name on the wire.
const PLAIN = /^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\]^_`{|}~]$/;

describe('Cmd / commandName', () => {
  test('FTS-1026 §5.5 ids', () => {
    assert.deepEqual(
      [Cmd.M_NUL, Cmd.M_ADR, Cmd.M_PWD, Cmd.M_FILE, Cmd.M_OK, Cmd.M_EOB, Cmd.M_GOT, Cmd.M_ERR, Cmd.M_BSY, Cmd.M_GET, Cmd.M_SKIP],
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
  });

  test('names known ids and numbers unknown ones', () => {
    for (const [name, id] of Object.entries(Cmd)) assert.equal(commandName(id), name);
    assert.equal(commandName(11), 'M_11');
    assert.equal(commandName(127), 'M_127');
  });
});

describe('argText', () => {
  test('drops one trailing NUL (FTS-1026 §4 allows it; binkd sends none)', () => {
    assert.equal(argText(Buffer.from('SYS x\0', 'latin1')), 'SYS x');
    assert.equal(argText(Buffer.from('SYS x', 'latin1')), 'SYS x');
    assert.equal(argText(Buffer.from([0])), '');
    assert.equal(argText(Buffer.alloc(0)), '');
  });

  test('keeps a NUL in the middle and every high byte as one latin1 character', () => {
    assert.equal(argText(Buffer.from([0x61, 0x00, 0x62])), 'a\0b');
    const t = argText(Buffer.from([0x4c, 0xe9, 0xff]));
    assert.equal(t, 'L\u00e9\u00ff');
    assert.deepEqual(Buffer.from(t, 'latin1'), Buffer.from([0x4c, 0xe9, 0xff]));
  });
});

describe('escapeName', () => {
  test('FTS-1026 §5.4 example: "abcd e.0f@" → "abcd\\x20e.0f@"', () => {
    assert.equal(escapeName('abcd e.0f@'), 'abcd\\x20e.0f@');
  });

  test('backslash is always escaped, lowercase hex as binkd sends', () => {
    assert.equal(escapeName('a\\b'), 'a\\x5cb');
    assert.equal(escapeName('\x7f\x01'), '\\x7f\\x01');
  });

  test('alphanumerics and the §5.4 safe characters go plain', () => {
    const safe = '!"#$%&\'()*+,-./:;<=>?@[]^_`{|}~';
    assert.equal(escapeName(`Az09${safe}`), `Az09${safe}`);
  });

  test('non-ASCII names are escaped byte by byte from UTF-8', () => {
    assert.equal(escapeName('ä.txt'), '\\xc3\\xa4.txt');
    assert.equal(escapeName('€'), '\\xe2\\x82\\xac');
    assert.equal(escapeName('𝄞'), '\\xf0\\x9d\\x84\\x9e');
  });

  test('every character below U+0100, alone and among plain ones (the plain-name fast path agrees)', () => {
    const plain = (b: number): boolean => /[0-9A-Za-z]/.test(String.fromCharCode(b)) || '!"#$%&\'()*+,-./:;<=>?@[]^_`{|}~'.includes(String.fromCharCode(b));
    const wire = (ch: string): string =>
      [...Buffer.from(ch, 'utf8')].map((b) => (plain(b) ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    for (let c = 0; c < 0x100; c++) {
      const ch = String.fromCharCode(c);
      assert.equal(escapeName(ch), wire(ch), `U+${c.toString(16)}`);
      assert.equal(escapeName(`00AB.${ch}pkt`), `00AB.${wire(ch)}pkt`, `U+${c.toString(16)} inside`);
    }
  });
});

describe('unescapeName', () => {
  test('\\xHH in either case, and \\XHH', () => {
    assert.equal(unescapeName('abcd\\x20e.0f@'), 'abcd e.0f@');
    assert.equal(unescapeName('a\\x7Cb'), 'a|b');
    assert.equal(unescapeName('a\\X7Cb'), 'a|b');
    assert.equal(unescapeName('a\\x5cb'), 'a\\b');
  });

  test('the old FSP-1011 form \\HH (FTS-1026 §5.2: SHOULD decode "\\20")', () => {
    assert.equal(unescapeName('my\\20file'), 'my file');
    assert.equal(unescapeName('a\\5Cb'), 'a\\b');
  });

  test('a backslash that starts neither form is kept', () => {
    assert.equal(unescapeName('a\\zz'), 'a\\zz');
    assert.equal(unescapeName('end\\'), 'end\\');
    assert.equal(unescapeName('a\\x'), 'a\\x');
    assert.equal(unescapeName('a\\xg1'), 'a\\xg1');
    assert.equal(unescapeName('a\\x2'), 'a\\x2');
    assert.equal(unescapeName('\\'), '\\');
  });

  test('escaped UTF-8 comes back as the character; invalid UTF-8 stays byte-per-character', () => {
    assert.equal(unescapeName('\\xc3\\xa4.txt'), 'ä.txt');
    assert.equal(unescapeName('caf\\xe9'), 'caf\u00e9');
    assert.equal(unescapeName('\\xc3'), '\u00c3');
  });

  test('plain names are unchanged', () => {
    assert.equal(unescapeName('0000fe01.pkt'), '0000fe01.pkt');
    assert.equal(unescapeName(''), '');
  });

  test('round trip over random names; the wire form is printable ASCII without spaces', () => {
    const rand = prng(1026);
    const pool = [...'abcXYZ019._-~!@#$%^&()[]{}|;:\'",<>?/`+=', ' ', '\\', '\t', '\0', '\x7f', 'ä', 'é', 'ß', '€', 'Ж', '日', '𝄞', '\uFFFD'];
    for (let i = 0; i < 2000; i++) {
      let name = '';
      for (let n = Math.floor(rand() * 24); n > 0; n--) name += pool[Math.floor(rand() * pool.length)];
      const wire = escapeName(name);
      assert.equal(unescapeName(wire), name, `name ${JSON.stringify(name)} → ${wire}`);
      assert.ok(!wire.includes(' '), wire);
      for (let j = 0; j < wire.length; j++) {
        if (wire[j] === '\\') {
          assert.match(wire.slice(j, j + 4), /^\\x[0-9a-f]{2}$/, `${wire} at ${j}`);
          j += 3;
        } else {
          assert.match(wire[j]!, PLAIN, `${wire} at ${j}`);
        }
      }
    }
  });
});

describe('parseFileArgs', () => {
  test('name size time offset', () => {
    assert.deepEqual(parseFileArgs('0000fe01.pkt 1234 1700000000 0'), {
      name: '0000fe01.pkt',
      size: 1234,
      mtime: 1700000000,
      offset: 0,
      extra: [],
    });
  });

  test('extra tokens after the offset (binkd GZ/BZ2) are kept, not interpreted', () => {
    assert.deepEqual(parseFileArgs('a.zip 10 20 0 GZ')?.extra, ['GZ']);
    assert.deepEqual(parseFileArgs('a.zip 10 20 5 BZ2 x')?.extra, ['BZ2', 'x']);
    assert.equal(parseFileArgs('a.zip 10 20 5 GZ')?.offset, 5);
  });

  test('offset -1 (FTS-1028 NR mode) is accepted; below -1 is not', () => {
    assert.equal(parseFileArgs('a 10 20 -1')?.offset, -1);
    assert.equal(parseFileArgs('a 10 20 -2'), undefined);
  });

  test('the name is unescaped; repeated spaces are tolerated', () => {
    const f = parseFileArgs('my\\x20file\\x5c.txt  7   8 0');
    assert.equal(f?.name, 'my file\\.txt');
    assert.equal(f?.size, 7);
  });

  test('malformed arguments give undefined', () => {
    for (const bad of [
      '',
      'a',
      'a 1 2',
      'a x 2 0',
      'a 1 y 0',
      'a 1 2 z',
      'a 1.5 2 0',
      'a -5 2 0',
      'a 1e3 2 0',
      'a 99999999999999999999 2 0',
      'a +1 2 0',
    ]) {
      assert.equal(parseFileArgs(bad), undefined, JSON.stringify(bad));
    }
  });

  test('formatFileArgs escapes the name and round-trips', () => {
    const f = { name: 'a b\\c.ä', size: 0, mtime: 1700000000 };
    const wire = formatFileArgs(f, 0);
    assert.equal(wire, 'a\\x20b\\x5cc.\\xc3\\xa4 0 1700000000 0');
    assert.deepEqual(parseFileArgs(wire), { ...f, offset: 0, extra: [] });
    assert.equal(parseFileArgs(formatFileArgs(f, -1))?.offset, -1);
  });
});

describe('parseFileRef / formatFileRef / sameFile', () => {
  test('name size time, extra tokens tolerated', () => {
    assert.deepEqual(parseFileRef('a.pkt 10 20'), { name: 'a.pkt', size: 10, mtime: 20 });
    assert.deepEqual(parseFileRef('a.pkt 10 20 0 GZ'), { name: 'a.pkt', size: 10, mtime: 20 });
    assert.equal(parseFileRef('my\\20file 1 2')?.name, 'my file');
  });

  test('malformed arguments give undefined', () => {
    for (const bad of ['', 'a', 'a 10', 'a x 20', 'a 10 y', 'a -1 20', 'a 1.0 2']) {
      assert.equal(parseFileRef(bad), undefined, JSON.stringify(bad));
    }
  });

  test('formatFileRef escapes the name and round-trips', () => {
    const f = { name: 'x y', size: 3, mtime: 4 };
    assert.equal(formatFileRef(f), 'x\\x20y 3 4');
    assert.deepEqual(parseFileRef(formatFileRef(f)), f);
  });

  test('sameFile compares name, size and time', () => {
    const a = { name: 'a', size: 1, mtime: 2 };
    assert.equal(sameFile(a, { ...a }), true);
    assert.equal(sameFile(a, { ...a, name: 'A' }), false);
    assert.equal(sameFile(a, { ...a, size: 2 }), false);
    assert.equal(sameFile(a, { ...a, mtime: 3 }), false);
  });
});

describe('parseNul', () => {
  test('keyword and value', () => {
    assert.deepEqual(parseNul('SYS My BBS'), { key: 'SYS', value: 'My BBS' });
    assert.deepEqual(parseNul('VER binkd/1.1a-115/Linux binkp/1.1'), { key: 'VER', value: 'binkd/1.1a-115/Linux binkp/1.1' });
  });

  test('the keyword is upper-cased; leading blanks are skipped; value keeps inner spacing', () => {
    assert.deepEqual(parseNul('  opt NR  CRYPT'), { key: 'OPT', value: 'NR  CRYPT' });
  });

  test('keyword alone, and empty text', () => {
    assert.deepEqual(parseNul('TIME'), { key: 'TIME', value: '' });
    assert.deepEqual(parseNul(''), { key: '', value: '' });
    assert.deepEqual(parseNul('   '), { key: '', value: '' });
  });
});

describe('parseOptions', () => {
  test('splits on any whitespace and drops empty tokens', () => {
    assert.deepEqual(parseOptions(' NR  ND\tCRAM-MD5-00ff '), ['NR', 'ND', 'CRAM-MD5-00ff']);
    assert.deepEqual(parseOptions(''), []);
  });
});

describe('cramChallenge', () => {
  const FTS1027 = 'f0315b074d728d483d6887d0182fc328';

  test('CRAM-MD5-<hex> among other options (FTS-1027 example)', () => {
    assert.deepEqual(cramChallenge(['xx', 'xx', `CRAM-MD5-${FTS1027}`]), { algorithm: 'MD5', challenge: FTS1027 });
  });

  test('a list of algorithms that includes MD5: CRAM-SHA1/MD5-…', () => {
    assert.deepEqual(cramChallenge([`CRAM-SHA1/MD5-${FTS1027}`]), { algorithm: 'MD5', challenge: FTS1027 });
    assert.deepEqual(cramChallenge([`CRAM-md5-${FTS1027}`]), { algorithm: 'MD5', challenge: FTS1027 });
  });

  test('absent, other algorithms only, or not hex → undefined', () => {
    assert.equal(cramChallenge([]), undefined);
    assert.equal(cramChallenge(['NR', 'ND', 'CRYPT']), undefined);
    assert.equal(cramChallenge([`CRAM-SHA1-${FTS1027}`]), undefined);
    assert.equal(cramChallenge(['CRAM-MD5-xyz']), undefined);
    assert.equal(cramChallenge(['CRAM-MD5-']), undefined);
  });

  test('the first MD5 offer wins over a later one', () => {
    assert.deepEqual(cramChallenge(['CRAM-SHA1-aa', 'CRAM-MD5-0011', 'CRAM-MD5-2233']), { algorithm: 'MD5', challenge: '0011' });
  });
});
