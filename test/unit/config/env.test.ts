import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEnvOverrides, describeOverride } from '../../../src/config/env.js';
import { parseIni } from '../../../src/config/ini.js';
import { buildConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

const INI = `[node]
address = 2:5020/99
outbound = /spool/out
inbound = /spool/in
[fido]
hub_address = 2:5020/1
hub_hostname = hub.example.net
password = from-file
[fido_b]
hub_address = 2:5020/2
hub_hostname = b.example.net
[fsx net]
hub_address = 21:1/100@fsxnet
hub_hostname = fsx.example.net
`;

describe('FNPOLL_<SECTION>_<KEY>', () => {
  test('overrides a key of the file, adds a missing one, creates a fixed section', () => {
    const doc = parseIni(INI, '/etc/fnpoll/fnpoll.ini');
    const o = applyEnvOverrides(doc, {
      FNPOLL_FIDO_PASSWORD: 'from env ; not a comment',
      FNPOLL_FIDO_B_POLL_FREQUENCY: '5m',
      FNPOLL_FSX_NET_HUB_PORT: '24556',
      FNPOLL_POLLER_LOG_LEVEL: 'debug',
      FNPOLL_CONFIG: '/etc/other.ini',
      FNPOLL_HUB: 'fido',
      PATH: '/bin',
    });
    assert.deepEqual(
      o.map(describeOverride),
      [
        '[fido_b] poll_frequency = "5m" (from $FNPOLL_FIDO_B_POLL_FREQUENCY)',
        '[fido] password = ******** (from $FNPOLL_FIDO_PASSWORD)',
        '[fsx net] hub_port = "24556" (from $FNPOLL_FSX_NET_HUB_PORT)',
        '[poller] log_level = "debug" (from $FNPOLL_POLLER_LOG_LEVEL)',
      ],
    );
    const c = buildConfig(doc, '/etc/fnpoll/fnpoll.ini');
    const hub = (k: string) => c.hubs.find((h) => h.key === k)!;
    assert.equal(hub('fido').password, 'from env ; not a comment', 'taken verbatim');
    assert.equal(hub('fido').pollFrequency, 3_600_000, '[fido] is not [fido_b]');
    assert.equal(hub('fido_b').pollFrequency, 300_000);
    assert.equal(hub('fsx net').port, 24556);
    assert.equal(c.poller.logLevel, 'debug');
  });

  test('a bad value names the variable', () => {
    const doc = parseIni(INI, '/etc/fnpoll/fnpoll.ini');
    applyEnvOverrides(doc, { FNPOLL_FIDO_HUB_PORT: 'x' });
    assert.throws(() => buildConfig(doc, '/etc/fnpoll/fnpoll.ini'), (err: unknown) => err instanceof ConfigError && /^\$FNPOLL_FIDO_HUB_PORT \(\[fido\] hub_port\): "x" /.test(err.problems[0]!));
  });
});
