import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIni } from '../../../src/config/ini.js';
import { buildConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

describe('config diagnostics', () => {
  test('"did you mean" is shown even when there are errors', () => {
    // (A misspelt `binkp` no longer makes an error: a hub without a host is looked up, issue 12.)
    const doc = parseIni(`[node]\naddress = 2:5020/99\noutbound = /o\ninbound = /i\n[fido]\nhub_adress = 2:5020/1\nbinkp = hub.example.net\n`, '/x.ini');
    assert.throws(
      () => buildConfig(doc, '/x.ini'),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => /hub_address: missing/.test(p)) &&
        err.problems.some((p) => /^warning: \/x\.ini:6 \[fido\] hub_adress: unknown key ignored; did you mean `hub_address`\?$/.test(p)),
    );
  });
});

describe('hub warnings', () => {
  const head = `[node]\naddress = 2:5020/99@fidonet\naka = 21:1/999@fsxnet\noutbound = /o\ninbound = /i\n`;

  test('a password cut at " #" or " ;" is a warning with a hint to quote it; the password is not shown', () => {
    const c = buildConfig(parseIni(`${head}[fido]\nhub_address = 2:5020/1\nhub_hostname = h\npassword = abc #def\n`, '/x.ini'), '/x.ini');
    assert.equal(c.hubs[0]!.password, 'abc');
    assert.deepEqual(c.warnings, ['/x.ini:9 [fido] password: the value ends where `#` follows a space; the rest of the line is a comment. If it is part of the password, quote the value: password = "..."']);
    const quoted = buildConfig(parseIni(`${head}[fido]\nhub_address = 2:5020/1\nhub_hostname = h\npassword = "abc ;def"\n`, '/x.ini'), '/x.ini');
    assert.equal(quoted.hubs[0]!.password, 'abc ;def');
    assert.deepEqual(quoted.warnings, []);
  });

  test('a hub whose address key shares no domain with its hub_address', () => {
    const c = buildConfig(parseIni(`${head}[fsx]\nhub_address = 21:1/100@fsxnet\nhub_hostname = h\naddress = 2:5020/99@fidonet\n`, '/x.ini'), '/x.ini');
    assert.deepEqual(c.warnings, ['/x.ini:9 [fsx] address: "2:5020/99@fidonet" has no address in the hub\'s domain @fsxnet (hub_address 21:1/100@fsxnet); the hub will see only AKAs of other networks']);
    const ok = buildConfig(parseIni(`${head}[fsx]\nhub_address = 21:1/100@fsxnet\nhub_hostname = h\naddress = 21:1/999@fsxnet\n`, '/x.ini'), '/x.ini');
    assert.deepEqual(ok.warnings, []);
  });
});

describe('a hub in a network we have no address in', () => {
  test('is a warning on hub_address when the hub has no address key', () => {
    const c = buildConfig(parseIni(`[node]\naddress = 2:5020/99@fidonet\noutbound = /o\ninbound = /i\n[fsx]\nhub_address = 21:1/100@fsxnet\nhub_hostname = h\n`, '/x.ini'), '/x.ini');
    assert.deepEqual(c.warnings, ['/x.ini:6 [fsx] hub_address: none of our addresses ([node] address, aka) is in @fsxnet; the hub will see only AKAs of other networks (add ours in @fsxnet to aka, or an `address` key here)']);
    const ok = buildConfig(parseIni(`[node]\naddress = 2:5020/99@fidonet\naka = 21:1/999@fsxnet\noutbound = /o\ninbound = /i\n[fsx]\nhub_address = 21:1/100@fsxnet\nhub_hostname = h\n`, '/x.ini'), '/x.ini');
    assert.deepEqual(ok.warnings, []);
  });
});
