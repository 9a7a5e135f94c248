import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { ConfigError, ExitCode, UsageError } from '../../../src/errors.js';
import { parseIni } from '../../../src/config/ini.js';
import {
  EXTENSION_DEFAULTS,
  REACH_DEFAULTS,
  buildConfig,
  editDistance,
  loadConfig,
  resolveConfigPath,
  resolveHubs,
} from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';

const FILE = '/etc/fnpoll/fnpoll.ini';
const NODE = `[node]
address = 2:5020/1234
outbound = /var/spool/ftn/out
inbound = /var/spool/ftn/in
`;
const HUB = `[hub1]
hub_address = 2:5020/1
hub_hostname = hub.example
`;

function build(text: string, file = FILE): Config {
  return buildConfig(parseIni(text, file), file);
}

/** The problem lines of the ConfigError that `text` must cause. */
function problems(text: string): string[] {
  try {
    build(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

const addr = (zone: number, net: number, node: number, point = 0, domain?: string) => ({ zone, net, node, point, domain });

describe('[node]', () => {
  test('minimal file: required keys and every default', () => {
    const c = build(NODE);
    assert.equal(c.file, FILE);
    assert.deepEqual(c.node, {
      address: addr(2, 5020, 1234),
      addresses: [addr(2, 5020, 1234)],
      system: 'Unknown',
      sysop: 'Unknown',
      location: 'Unknown',
      nodeinfo: '115200,TCP,BINKP',
      outbound: '/var/spool/ftn/out',
      inbound: '/var/spool/ftn/in',
      inboundInsecure: '/var/spool/ftn/in/insecure',
      tempInbound: '/var/spool/ftn/in/tmp',
      inboundMode: 0o640,
      networks: undefined,
      nodelist: undefined,
    });
    assert.deepEqual(c.poller, {
      stateFile: '/var/lib/fnpoll/state.json',
      lockFile: '/var/lib/fnpoll/state.json.lock',
      logFile: undefined,
      logLevel: 'info',
      logFormat: 'json',
      logRotateSize: 10 * 1024 * 1024,
      logRotateInterval: undefined,
      logMaxFiles: 10,
      metricsFile: undefined,
      maxConnections: 4,
      pollInterval: 3_600_000,
      connectTimeout: 30_000,
      idleTimeout: 300_000,
      sessionTimeout: 3_600_000,
      runTimeout: 900_000,
      retryBase: 60_000,
      retryMax: 6 * 3_600_000,
      maxRetries: 0,
      holdTime: 86_400_000,
      shutdownGrace: 30_000,
      staleFlagAge: 6 * 3_600_000,
      partialMaxAge: 86_400_000,
      minFree: 0,
      binkdTryFiles: false,
      fsync: true,
      warnAfter: undefined,
      critAfter: undefined,
      onSuccess: undefined,
      onFailure: undefined,
      onRunEnd: undefined,
      hookTimeout: 60_000,
      strictPermissions: false,
      reach: REACH_DEFAULTS,
      dnsServers: undefined,
    });
    assert.deepEqual(c.performance, { bufferSize: 32767, bandwidthLimit: 0, extensions: EXTENSION_DEFAULTS });
    assert.deepEqual(c.hubs, []);
    assert.deepEqual(c.warnings, []);
  });

  test('every key, the `name` synonym, akas in order, relative paths against the file directory', () => {
    const c = build(
      `[NODE]
Address = 2:5020/1234@fidonet
aka = 2:5020/1234.5, 21:1/100@fsxnet,
name = "My BBS"
sysop = Jo Sysop
location = Moscow, Russia
nodeinfo = 33600,IBN,CM
outbound = out
inbound = ../in
inbound_insecure = /srv/unsafe
temp_inbound = tmp/partial
inbound_mode = 0600
`,
      '/home/fido/etc/fnpoll.ini',
    );
    assert.deepEqual(c.node.address, addr(2, 5020, 1234, 0, 'fidonet'));
    assert.deepEqual(c.node.addresses, [
      addr(2, 5020, 1234, 0, 'fidonet'),
      addr(2, 5020, 1234, 5),
      addr(21, 1, 100, 0, 'fsxnet'),
    ]);
    assert.equal(c.node.system, 'My BBS');
    assert.equal(c.node.sysop, 'Jo Sysop');
    assert.equal(c.node.location, 'Moscow, Russia');
    assert.equal(c.node.nodeinfo, '33600,IBN,CM');
    assert.equal(c.node.outbound, '/home/fido/etc/out');
    assert.equal(c.node.inbound, '/home/fido/in');
    assert.equal(c.node.inboundInsecure, '/srv/unsafe');
    assert.equal(c.node.tempInbound, '/home/fido/etc/tmp/partial');
    assert.equal(c.node.inboundMode, 0o600);
    assert.equal(c.file, '/home/fido/etc/fnpoll.ini');
  });

  test('`system` is the main name; `name` and `system` together are a duplicate', () => {
    assert.equal(build(`${NODE}system = Sys\n`).node.system, 'Sys');
    assert.deepEqual(problems(`${NODE}system = A\nname = B\n`), [
      `${FILE}:6 [node] name: duplicate key (same as system at line 5)`,
    ]);
  });

  test('bad address and aka', () => {
    assert.deepEqual(problems(NODE.replace('2:5020/1234', '2:5020/x')), [
      `${FILE}:2 [node] address: "2:5020/x" is not an FTN address`,
    ]);
    assert.deepEqual(problems(`${NODE}aka = 2:5020/1234.1, 99999:1/1\n`), [
      `${FILE}:5 [node] aka: "2:5020/1234.1, 99999:1/1" contains "99999:1/1", which is not an FTN address`,
    ]);
  });

  test('missing [node] section: every required key is reported', () => {
    assert.deepEqual(problems(''), [
      `${FILE} [node] address: missing (required)`,
      `${FILE} [node] outbound: missing (required)`,
      `${FILE} [node] inbound: missing (required)`,
    ]);
  });

  test('an empty required value', () => {
    assert.deepEqual(problems(NODE.replace('outbound = /var/spool/ftn/out', 'outbound =')), [
      `${FILE}:3 [node] outbound: "" is empty (required)`,
    ]);
  });
});

describe('networks', () => {
  const text = `${NODE}networks = FidoNet, fsx
[fidonet]
hub_address = 2:5020/1
binkp = f.example
[fsx]
hub = 21:1/1
binkp = x.example
[tosser]
packer = zip
[fidoNET-old]
hub_address = 2:5020/1
`;

  test('only listed sections are hubs; others are ignored without a word', () => {
    const c = build(text);
    assert.deepEqual(c.node.networks, ['fidonet', 'fsx']);
    assert.deepEqual(c.hubs.map((h) => h.key), ['fidonet', 'fsx']);
    assert.deepEqual(c.warnings, []);
  });

  test('a listed section must exist and must not be reserved', () => {
    assert.deepEqual(problems(`${NODE}networks = fidonet, poller\n`), [
      `${FILE}:5 [node] networks: "fidonet, poller" names [fidonet], but there is no such section`,
      `${FILE}:5 [node] networks: "fidonet, poller" names [poller], which is not a hub section`,
    ]);
  });
});

describe('[poller], [daemon], [logging], [performance]', () => {
  test('every key with units', () => {
    const c = build(`${NODE}[poller]
state_file = state/fnpoll.json
lock_file = /run/fnpoll.lock
log_file = /var/log/fnpoll.log
log_level = DEBUG
log_format = text
log_rotate_size = 1M
log_rotate_interval = 12h
log_max_files = 3
metrics_file = /var/lib/node_exporter/fnpoll.prom
max_connections = 256
poll_interval = 30m
connect_timeout = 10
idle_timeout = 2m
session_timeout = 2h
run_timeout = 1h
retry_base = 30s
retry_max = 1d
max_retries = 5
hold_time = 12h
shutdown_grace = 0
stale_flag_age = 3h
partial_max_age = 2d
minfree = 100M
binkd_try_files = yes
fsync = no
warn_after = 2h
crit_after = 6h
on_success = /usr/bin/toss --quiet
on_run_end = /usr/bin/toss --once
on_failure = "logger -t fnpoll failed ; really"
hook_timeout = 5m
strict_permissions = yes
[performance]
buffer_size = 4k
bandwidth_limit = 64K
`);
    assert.deepEqual(c.poller, {
      stateFile: '/etc/fnpoll/state/fnpoll.json',
      lockFile: '/run/fnpoll.lock',
      logFile: '/var/log/fnpoll.log',
      logLevel: 'debug',
      logFormat: 'text',
      logRotateSize: 1_048_576,
      logRotateInterval: '12h',
      logMaxFiles: 3,
      metricsFile: '/var/lib/node_exporter/fnpoll.prom',
      maxConnections: 256,
      pollInterval: 1_800_000,
      connectTimeout: 10_000,
      idleTimeout: 120_000,
      sessionTimeout: 7_200_000,
      runTimeout: 3_600_000,
      retryBase: 30_000,
      retryMax: 86_400_000,
      maxRetries: 5,
      holdTime: 43_200_000,
      shutdownGrace: 0,
      staleFlagAge: 10_800_000,
      partialMaxAge: 172_800_000,
      minFree: 104_857_600,
      binkdTryFiles: true,
      fsync: false,
      warnAfter: 7_200_000,
      critAfter: 21_600_000,
      onSuccess: '/usr/bin/toss --quiet',
      onFailure: 'logger -t fnpoll failed ; really',
      onRunEnd: '/usr/bin/toss --once',
      hookTimeout: 300_000,
      strictPermissions: true,
      reach: REACH_DEFAULTS,
      dnsServers: undefined,
    });
    assert.deepEqual(c.performance, { bufferSize: 4096, bandwidthLimit: 65_536, extensions: EXTENSION_DEFAULTS });
    assert.deepEqual(c.warnings, []);
  });

  test('lock_file defaults to state_file + .lock', () => {
    const c = build(`${NODE}[poller]\nstate_file = /srv/st.json\n`);
    assert.equal(c.poller.lockFile, '/srv/st.json.lock');
  });

  test('[daemon] is a synonym; pid_file and sleep_interval are ignored with a warning', () => {
    const c = build(`${NODE}[daemon]\nlog_level = warn\npid_file = /run/x.pid\nsleep_interval = 60\n`);
    assert.equal(c.poller.logLevel, 'warning');
    assert.deepEqual(c.warnings, [
      `${FILE}:7 [daemon] pid_file: ignored by fnpoll (fnpoll runs from cron and keeps no pid file)`,
      `${FILE}:8 [daemon] sleep_interval: ignored by fnpoll (cron and poll_interval decide when fnpoll runs)`,
    ]);
  });

  test('[poller] and [daemon] may both be present, but not with the same key', () => {
    const c = build(`${NODE}[poller]\nmax_connections = 2\n[daemon]\nlog_level = error\n`);
    assert.equal(c.poller.maxConnections, 2);
    assert.equal(c.poller.logLevel, 'error');
    assert.deepEqual(problems(`${NODE}[poller]\nlog_level = info\n[daemon]\nlog_level = error\n`), [
      `${FILE}:8 [daemon] log_level: duplicate key (also in [poller] at line 6)`,
    ]);
  });

  test('[logging] level, log_file and file are synonyms; [poller] keys win', () => {
    const a = build(`${NODE}[logging]\nlevel = debug\nfile = logs/fn.log\n`);
    assert.equal(a.poller.logLevel, 'debug');
    assert.equal(a.poller.logFile, '/etc/fnpoll/logs/fn.log');
    const b = build(`${NODE}[logging]\nlevel = debug\nlog_file = /a.log\n[poller]\nlog_level = error\nlog_file = /b.log\n`);
    assert.equal(b.poller.logLevel, 'error');
    assert.equal(b.poller.logFile, '/b.log');
    assert.deepEqual(problems(`${NODE}[logging]\nlog_file = /a\nfile = /b\n`), [
      `${FILE}:7 [logging] file: duplicate key (same as log_file at line 6)`,
    ]);
  });

  test('value errors, one line each, all collected', () => {
    const p = problems(`${NODE}[poller]
log_level = verbose
log_format = xml
log_rotate_size = big
log_rotate_interval = 1w
log_max_files = 0
max_connections = 257
poll_interval = 0
connect_timeout = soon
max_retries = -1
binkd_try_files = sometimes
minfree = 1T
shutdown_grace = -1
[logging]
level = loud
[performance]
buffer_size = 32768
bandwidth_limit = fast
`);
    assert.deepEqual(p, [
      `${FILE}:6 [poller] log_level: "verbose" is not a log level (debug, info, warning, error)`,
      `${FILE}:19 [logging] level: "loud" is not a log level (debug, info, warning, error)`,
      `${FILE}:7 [poller] log_format: "xml" is not a log format (json, text)`,
      `${FILE}:9 [poller] log_rotate_interval: "1w" is not a rotation interval (a whole number with s, m, h or d: 30m, 12h, 1d)`,
      `${FILE}:8 [poller] log_rotate_size: "big" is not a size (bytes, or a number with k, M or G (64k, 10M, 1G))`,
      `${FILE}:10 [poller] log_max_files: "0" is out of range (1..10000)`,
      `${FILE}:11 [poller] max_connections: "257" is out of range (1..256)`,
      `${FILE}:12 [poller] poll_interval: "0" must be longer than 0`,
      `${FILE}:13 [poller] connect_timeout: "soon" is not a duration (seconds, or a number with s, m, h or d (30s, 5m, 2h, 1d))`,
      `${FILE}:14 [poller] max_retries: "-1" is not a whole number`,
      `${FILE}:17 [poller] shutdown_grace: "-1" is not a duration (seconds, or a number with s, m, h or d (30s, 5m, 2h, 1d))`,
      `${FILE}:16 [poller] minfree: "1T" is not a size (bytes, or a number with k, M or G (64k, 10M, 1G))`,
      `${FILE}:15 [poller] binkd_try_files: "sometimes" is not a boolean (yes/no, true/false, on/off or 1/0)`,
      `${FILE}:21 [performance] buffer_size: "32768" is out of range (1..32767)`,
      `${FILE}:22 [performance] bandwidth_limit: "fast" is not a size (bytes, or a number with k, M or G (64k, 10M, 1G))`,
    ]);
  });

  test('max_connections 0, buffer_size 0 and log_rotate_interval 0d are out of range', () => {
    assert.deepEqual(problems(`${NODE}[poller]\nmax_connections = 0\nlog_rotate_interval = 0d\n[performance]\nbuffer_size = 0\n`), [
      `${FILE}:7 [poller] log_rotate_interval: "0d" must be longer than 0`,
      `${FILE}:6 [poller] max_connections: "0" is out of range (1..256)`,
      `${FILE}:9 [performance] buffer_size: "0" is out of range (1..32767)`,
    ]);
  });

  test('retry_max below retry_base, crit_after below warn_after', () => {
    assert.deepEqual(problems(`${NODE}[poller]\nretry_base = 2h\nretry_max = 1h\nwarn_after = 6h\ncrit_after = 2h\n`), [
      `${FILE}:7 [poller] retry_max: "1h" leaves retry_max (1h) below retry_base (2h)`,
      `${FILE}:9 [poller] crit_after: "2h" is shorter than warn_after (6h)`,
    ]);
    // Against the default retry_max (6h).
    assert.deepEqual(problems(`${NODE}[poller]\nretry_base = 7h\n`), [
      `${FILE}:6 [poller] retry_base: "7h" leaves retry_max (6h) below retry_base (7h)`,
    ]);
  });
});

describe('hubs', () => {
  test('a full hub section', () => {
    const c = build(`${NODE}aka = 2:5020/1234.1
[poller]
on_failure = /bin/false
[FidoNet]
hub_address = 2:5020/1@fidonet
hub_hostname = hub.example.org
hub_port = 24555
password = "se cr;et"
address = 2:5020/1234.1
poll_frequency = 15m
use_cram = no
nr_mode = yes
outbound = /var/spool/ftn/fido-out
retry_base = 2m
retry_max = 2h
max_retries = 10
hold_time = 3h
bandwidth_limit = 8k
on_success = /usr/bin/toss
`);
    assert.deepEqual(c.hubs, [
      {
        name: 'FidoNet',
        key: 'fidonet',
        address: addr(2, 5020, 1, 0, 'fidonet'),
        host: 'hub.example.org',
        port: 24555,
        password: 'se cr;et',
        ourAddresses: [addr(2, 5020, 1234, 1)],
        pollFrequency: 900_000,
        useCram: false,
        nrMode: true,
        outbound: '/var/spool/ftn/fido-out',
        outboundOverride: true,
        retryBase: 120_000,
        retryMax: 7_200_000,
        maxRetries: 10,
        holdTime: 10_800_000,
        bandwidthLimit: 8192,
        onSuccess: '/usr/bin/toss',
        onFailure: '/bin/false',
        extensions: EXTENSION_DEFAULTS,
        reach: { ...REACH_DEFAULTS, hosts: [{ host: 'hub.example.org', port: 24555 }], port: 24555, nodelist: undefined, tlsFingerprint: undefined },
        line: 8,
      },
    ]);
  });

  test('defaults come from [node], [poller] and the protocol', () => {
    const c = build(`${NODE}aka = 2:5020/1234.1\n[poller]\npoll_interval = 2h\nretry_base = 5m\nmax_retries = 3\non_success = /bin/true\n${HUB}`);
    const h = c.hubs[0]!;
    assert.equal(h.port, 24554);
    assert.equal(h.password, undefined);
    assert.deepEqual(h.ourAddresses, c.node.addresses);
    assert.equal(h.pollFrequency, 7_200_000);
    assert.equal(h.useCram, true);
    assert.equal(h.nrMode, false);
    assert.equal(h.outbound, '/var/spool/ftn/out');
    assert.equal(h.outboundOverride, false);
    assert.equal(h.retryBase, 300_000);
    assert.equal(h.retryMax, 6 * 3_600_000);
    assert.equal(h.maxRetries, 3);
    assert.equal(h.holdTime, 86_400_000);
    assert.equal(h.bandwidthLimit, undefined);
    assert.equal(h.onSuccess, '/bin/true');
    assert.equal(h.onFailure, undefined);
    assert.equal(h.line, 11);
  });

  test('libftn synonyms: hub, binkp = host:port, binkp_password', () => {
    const c = build(`${NODE}[fsx]\nhub = 21:1/100@fsxnet\nbinkp = bbs.example:24556\nbinkp_password = pw\n`);
    const h = c.hubs[0]!;
    assert.deepEqual(h.address, addr(21, 1, 100, 0, 'fsxnet'));
    assert.equal(h.host, 'bbs.example');
    assert.equal(h.port, 24556);
    assert.equal(h.password, 'pw');
  });

  test('binkp without a port takes hub_port, else 24554', () => {
    assert.equal(build(`${NODE}[h]\nhub = 1:2/3\nbinkp = a.example\nhub_port = 2000\n`).hubs[0]!.port, 2000);
    assert.equal(build(`${NODE}[h]\nhub = 1:2/3\nbinkp = 10.0.0.1\n`).hubs[0]!.port, 24554);
  });

  test('password `-`, empty or absent means no password', () => {
    for (const line of ['password = -', 'password =', 'binkp_password = "-"', '']) {
      assert.equal(build(`${NODE}${HUB}${line}\n`).hubs[0]!.password, undefined, line);
    }
  });

  test('IPv6 forms', () => {
    const hostPort = (lines: string): [string, number] => {
      const h = build(`${NODE}[h]\nhub = 1:2/3\n${lines}\n`).hubs[0]!;
      return [h.host, h.port];
    };
    assert.deepEqual(hostPort('binkp = [2001:db8::1]:24555'), ['2001:db8::1', 24555]);
    assert.deepEqual(hostPort('binkp = [2001:db8::1]'), ['2001:db8::1', 24554]);
    assert.deepEqual(hostPort('binkp = 2001:db8::1'), ['2001:db8::1', 24554]);
    assert.deepEqual(hostPort('hub_hostname = 2001:db8::1\nhub_port = 99'), ['2001:db8::1', 99]);
    assert.deepEqual(hostPort('hub_hostname = [::1]'), ['::1', 24554]);
  });

  test('host and port errors', () => {
    const hub = (lines: string) => problems(`${NODE}[h]\nhub = 1:2/3\n${lines}\n`);
    assert.deepEqual(hub('lookup = config'), [`${FILE} [h] hub_hostname: missing (required when lookup is config only, or binkp = host[:port])`]);
    assert.deepEqual(hub('hub_hostname = a.example\nhub_port = 0'), [`${FILE}:8 [h] hub_port: "0" is not a port (1..65535)`]);
    assert.deepEqual(hub('hub_hostname = a.example\nhub_port = 70000'), [`${FILE}:8 [h] hub_port: "70000" is not a port (1..65535)`]);
    assert.deepEqual(hub('binkp = a.example:99999'), [
      `${FILE}:7 [h] binkp: "a.example:99999" has port "99999", which is not a port (1..65535)`,
    ]);
    assert.deepEqual(hub('binkp = a.example\nhub_hostname = b.example'), [
      `${FILE}:7 [h] binkp: "a.example" conflicts with hub_hostname (line 8): set one of them`,
    ]);
    assert.deepEqual(hub('binkp = a.example:1\nhub_port = 2'), [
      `${FILE}:8 [h] hub_port: "2" conflicts with the port in binkp (line 7): set one of them`,
    ]);
    assert.deepEqual(hub('hub_hostname = a.example;b example'), [`${FILE}:7 [h] hub_hostname: "a.example;b example" contains "b example", which is not host[:port]`]);
    assert.deepEqual(hub('hub_hostname = bad host'), [`${FILE}:7 [h] hub_hostname: "bad host" is not a host name or IP address`]);
    assert.deepEqual(hub('binkp = bad_host!:1'), [`${FILE}:7 [h] binkp: "bad_host!:1" is not host[:port]`]);
    assert.deepEqual(hub('binkp = [not-v6]:1'), [`${FILE}:7 [h] binkp: "[not-v6]:1" has "[not-v6]", which is not an IPv6 address`]);
    assert.deepEqual(hub('binkp = 2001:db8::zz'), [
      `${FILE}:7 [h] binkp: "2001:db8::zz" is not host[:port] (write an IPv6 address with a port as [addr]:port)`,
    ]);
  });

  test('hub address errors', () => {
    assert.deepEqual(problems(`${NODE}[uplink]\nbinkp = a.example\n`), [
      `${FILE} [uplink] hub_address: missing (required: every section other than [node], [poller], [daemon], [logging], [performance] is a hub)`,
    ]);
    assert.deepEqual(problems(`${NODE}[uplink]\nhub_address = 2:5020\nbinkp = a.example\n`), [
      `${FILE}:6 [uplink] hub_address: "2:5020" is not an FTN address`,
    ]);
    assert.deepEqual(problems(`${NODE}[uplink]\nhub_address = 2:5020/1\nhub = 2:5020/1\nbinkp = a.example\n`), [
      `${FILE}:7 [uplink] hub: duplicate key (same as hub_address at line 6)`,
    ]);
    assert.deepEqual(problems(`${NODE}${HUB}address = 2:5020/1234, 2:x\n`), [
      `${FILE}:8 [hub1] address: "2:5020/1234, 2:x" contains "2:x", which is not an FTN address`,
    ]);
    assert.deepEqual(problems(`${NODE}${HUB}address = ,\n`), [`${FILE}:8 [hub1] address: "," lists no address`]);
  });

  test('per-hub value errors', () => {
    assert.deepEqual(
      problems(`${NODE}${HUB}poll_frequency = often\nuse_cram = maybe\nretry_base = 12h\nbandwidth_limit = -5\nmax_retries = x\n`),
      [
        `${FILE}:10 [hub1] retry_base: "12h" leaves retry_max (6h) below retry_base (12h)`,
        `${FILE}:8 [hub1] poll_frequency: "often" is not a duration (seconds, or a number with s, m, h or d (30s, 5m, 2h, 1d))`,
        `${FILE}:9 [hub1] use_cram: "maybe" is not a boolean (yes/no, true/false, on/off or 1/0)`,
        `${FILE}:12 [hub1] max_retries: "x" is not a whole number`,
        `${FILE}:11 [hub1] bandwidth_limit: "-5" is not a size (bytes, or a number with k, M or G (64k, 10M, 1G))`,
      ],
    );
  });

  test('duplicate hubs: same 4D address (domains ignored), or same section name', () => {
    assert.deepEqual(problems(`${NODE}${HUB}[hub2]\nhub_address = 2:5020/1@fidonet\nbinkp = b.example\n`), [
      `${FILE}:8 [hub2] hub_address: "2:5020/1@fidonet" duplicate hub: same address as [hub1] (line 5)`,
    ]);
    assert.deepEqual(problems(`${NODE}${HUB}[HUB1]\nhub_address = 2:5020/2\nbinkp = b.example\n`), [
      `${FILE}:8 [HUB1]: duplicate section (first at line 5)`,
    ]);
  });

  test('different points of one node are different hubs', () => {
    const c = build(`${NODE}${HUB}[boss]\nhub_address = 2:5020/1.1\nbinkp = b.example\n`);
    assert.deepEqual(c.hubs.map((h) => h.name), ['hub1', 'boss']);
  });
});

describe('warnings', () => {
  test('unknown keys, with a suggestion for near-misses', () => {
    const c = build(`${NODE}sysopp = x\ncolour = blue\n${HUB}pasword = pw\n[performance]\nbuffersize = 10\n`);
    assert.deepEqual(c.warnings, [
      `${FILE}:5 [node] sysopp: unknown key ignored; did you mean \`sysop\`?`,
      `${FILE}:6 [node] colour: unknown key ignored`,
      `${FILE}:12 [performance] buffersize: unknown key ignored; did you mean \`buffer_size\`?`,
      `${FILE}:10 [hub1] pasword: unknown key ignored; did you mean \`password\`?`,
    ]);
    assert.equal(c.hubs[0]!.password, undefined);
  });

  test('suggestions include synonyms', () => {
    const c = build(`${NODE}${HUB}binkp_pasword = x\n`);
    assert.deepEqual(c.warnings, [`${FILE}:8 [hub1] binkp_pasword: unknown key ignored; did you mean \`binkp_password\`?`]);
  });

  test('a section that looks like a typo of a reserved one is ignored with a warning', () => {
    const c = build(`${NODE}[poler]\nlog_level = debug\n[Perfomance]\nbuffer_size = 1\n`);
    assert.equal(c.poller.logLevel, 'info');
    assert.deepEqual(c.hubs, []);
    assert.deepEqual(c.warnings, [
      `${FILE}:5 [poler]: unknown section ignored; did you mean [poller]?`,
      `${FILE}:7 [Perfomance]: unknown section ignored; did you mean [performance]?`,
    ]);
  });

  test('a typo-like name with hub keys is a hub', () => {
    const c = build(`${NODE}[nodes]\nhub = 1:2/3\nbinkp = a.example\n`);
    assert.deepEqual(c.hubs.map((h) => h.name), ['nodes']);
    assert.deepEqual(c.warnings, []);
  });

  test('warnings do not stop a build; problems carry exit code 78', () => {
    try {
      build(`${NODE}whatever = 1\n[h]\n`);
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.exitCode, ExitCode.CONFIG);
      assert.equal(err.code, 'ECONFIG');
      assert.equal(err.message, err.problems.join('\n'));
    }
  });

  test('editDistance', () => {
    assert.equal(editDistance('password', 'password'), 0);
    assert.equal(editDistance('pasword', 'password'), 1);
    assert.equal(editDistance('pasword', 'passwrd'), 2);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('kitten', 'sitting'), 3);
  });
});

describe('parser problems come first, then schema problems, in one error', () => {
  test('all collected', () => {
    const p = problems(`[node]\naddress = 2:5020/1234\naddress = 2:5020/1\ngarbage\n`);
    assert.deepEqual(p, [
      `${FILE}:3 [node] address: duplicate key (first at line 2)`,
      `${FILE}:4: malformed line "garbage" (expected [section] or key = value)`,
      `${FILE} [node] outbound: missing (required)`,
      `${FILE} [node] inbound: missing (required)`,
    ]);
  });
});

describe('loadConfig', () => {
  test('the libftn-shaped fixture: relative paths resolve against its directory', async () => {
    const fixture = fileURLToPath(new URL('../../../../test/fixtures/config/shared-libftn.ini', import.meta.url));
    const dir = path.dirname(fixture);
    const c = await loadConfig(fixture);
    assert.equal(c.file, fixture);
    assert.equal(c.node.system, 'Example BBS');
    assert.equal(c.node.outbound, path.join(dir, 'spool/outbound'));
    assert.equal(c.node.inbound, path.join(dir, 'spool/inbound'));
    assert.equal(c.poller.logLevel, 'debug');
    assert.equal(c.poller.logFile, path.join(dir, 'log/fnpoll.log'));
    assert.deepEqual(c.hubs.map((h) => `${h.name} ${h.host}:${h.port}`), ['fidonet hub.example.org:24554', 'fsxNet 2001:db8::7:24555']);
    assert.equal(c.hubs[0]!.password, 's3cr#t ;x');
    assert.equal(c.hubs[1]!.outbound, path.join(dir, 'spool/fsxnet'));
    // It holds passwords: unless the checkout made it private, that is warned about too.
    const exposed = (statSync(fixture).mode & 0o044) !== 0;
    assert.deepEqual(c.warnings, [
      `${fixture}:13 [daemon] pid_file: ignored by fnpoll (fnpoll runs from cron and keeps no pid file)`,
      ...(exposed ? [c.warnings[1]!] : []),
    ]);
    if (exposed) assert.match(c.warnings[1]!, /holds hub passwords but is readable by/);
  });

  test('a relative path is made absolute; problems name it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fnpoll-config-'));
    try {
      const file = path.join(dir, 'fnpoll.ini');
      await writeFile(file, '[node]\naddress = 1:2/x\n');
      const rel = path.relative(process.cwd(), file);
      await assert.rejects(loadConfig(rel), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.problems[0], `${file}:2 [node] address: "1:2/x" is not an FTN address`);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a missing file is a ConfigError naming it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fnpoll-config-'));
    try {
      const file = path.join(dir, 'absent.ini');
      await assert.rejects(loadConfig(file), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.problems, [`${file}: cannot read config: no such file or directory (ENOENT)`]);
        return true;
      });
      await assert.rejects(loadConfig(dir), { name: 'ConfigError', message: `${dir}: is a directory, not a regular file` });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('resolveConfigPath', () => {
  test('flag, else $FNPOLL_CONFIG, else the default; made absolute', () => {
    assert.equal(resolveConfigPath('/a/b.ini', { FNPOLL_CONFIG: '/c.ini' }), '/a/b.ini');
    assert.equal(resolveConfigPath(undefined, { FNPOLL_CONFIG: '/c.ini' }), '/c.ini');
    assert.equal(resolveConfigPath(undefined, {}), '/etc/fnpoll/fnpoll.ini');
    assert.equal(resolveConfigPath('', { FNPOLL_CONFIG: '' }), '/etc/fnpoll/fnpoll.ini');
    assert.equal(resolveConfigPath('x.ini', {}), path.resolve('x.ini'));
  });
});

describe('resolveHubs', () => {
  const config = build(`${NODE}[FidoNet]\nhub = 2:5020/1@fidonet\nbinkp = a.example\n[fsx]\nhub = 21:1/100\nbinkp = b.example\n`);

  test('by section name (any case) or by 4D address; order of the selectors, no repeats', () => {
    assert.deepEqual(resolveHubs(config, ['FSX', 'fidonet']).map((h) => h.name), ['fsx', 'FidoNet']);
    assert.deepEqual(resolveHubs(config, ['2:5020/1']).map((h) => h.name), ['FidoNet']);
    assert.deepEqual(resolveHubs(config, ['21:1/100@fsxnet', 'fsx']).map((h) => h.name), ['fsx']);
  });

  test('no selectors = every hub', () => {
    assert.deepEqual(resolveHubs(config, []).map((h) => h.name), ['FidoNet', 'fsx']);
  });

  test('an unknown selector is a UsageError listing the known hubs', () => {
    assert.throws(() => resolveHubs(config, ['fidonet', 'agoranet']), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.equal(err.message, 'unknown hub "agoranet" (known hubs: FidoNet, fsx)');
      assert.equal(err.exitCode, ExitCode.USAGE);
      return true;
    });
    assert.throws(() => resolveHubs(config, ['2:5020/2']), { message: /^unknown hub "2:5020\/2"/ });
    assert.throws(() => resolveHubs(build(NODE), ['x']), { message: 'unknown hub "x" (known hubs: none)' });
  });
});

// ---- protocol extensions (issue 13) --------------------------------------------------------
describe('protocol extension keys', () => {
  test('defaults: compression and CRC on, CRYPT and ND off, threshold 1024', () => {
    const c = build(`${NODE}${HUB}`);
    assert.deepEqual(c.performance.extensions, {
      useCompression: true,
      useCrc: true,
      useCrypt: false,
      useNd: false,
      compressionThreshold: 1024,
    });
    assert.deepEqual(c.hubs[0]!.extensions, c.performance.extensions);
  });

  test('[performance] sets them for every hub; a hub section overrides each one', () => {
    const c = build(`${NODE}[performance]
use_compression = no
use_crc = off
use_crypt = yes
use_nd = 1
compression_threshold = 4k
${HUB}use_crypt = no
compression_threshold = 100
[hub2]
hub_address = 2:5020/2
hub_hostname = hub2.example
use_compression = yes
`);
    assert.deepEqual(c.performance.extensions, {
      useCompression: false,
      useCrc: false,
      useCrypt: true,
      useNd: true,
      compressionThreshold: 4096,
    });
    assert.deepEqual(c.hubs[0]!.extensions, { ...c.performance.extensions, useCrypt: false, compressionThreshold: 100 });
    assert.deepEqual(c.hubs[1]!.extensions, { ...c.performance.extensions, useCompression: true });
    assert.deepEqual(c.warnings, []);
  });

  test('a bad value names file, line, section, key and value', () => {
    assert.deepEqual(problems(`${NODE}[performance]\nuse_crypt = perhaps\n${HUB}compression_threshold = lots\n`), [
      `${FILE}:6 [performance] use_crypt: "perhaps" is not a boolean (yes/no, true/false, on/off or 1/0)`,
      `${FILE}:10 [hub1] compression_threshold: "lots" is not a size (bytes, or a number with k, M or G (64k, 10M, 1G))`,
    ]);
  });
});

describe('reaching hubs (issue 12)', () => {
  test('[poller] defaults, per-hub overrides, several hosts, TLS port', () => {
    const c = build(`${NODE}nodelist = lists/NODELIST.*
[poller]
lookup = nodelist, dns
dns_root = .example.org.
dns_server = 127.0.0.1:5353, [::1]:53
connect_attempt_delay = 100ms
proxy = socks5://u:p%40ss@127.0.0.1:1080
tls_ca = ca.pem
[a]
hub = 2:5020/1
hub_hostname = h1.example;h2.example:24555;[2001:db8::1]
tls = required
tls_fingerprint = AB:${'cd:'.repeat(30)}EF
ip_family = 6
bind_address = ::1
proxy = http://proxy.example:3128
[b]
hub = 2:5020/2
nodelist = /lists/other.txt
tls = yes
`);
    const [a, b] = c.hubs;
    assert.deepEqual(c.poller.dnsServers, ['127.0.0.1:5353', '[::1]:53']);
    assert.equal(c.poller.reach.dnsRoot, 'example.org');
    assert.equal(c.node.nodelist, '/etc/fnpoll/lists/NODELIST.*');
    assert.deepEqual(a!.reach.hosts, [{ host: 'h1.example', port: undefined }, { host: 'h2.example', port: 24555 }, { host: '2001:db8::1', port: undefined }]);
    assert.equal(a!.port, 24553, 'the first host, on the binkps port');
    assert.equal(a!.reach.tlsFingerprint, `ab${'cd'.repeat(30)}ef`);
    assert.equal(a!.reach.tlsCa, '/etc/fnpoll/ca.pem');
    assert.deepEqual(a!.reach.proxy, { kind: 'http', host: 'proxy.example', port: 3128, user: undefined, password: undefined, label: 'http://proxy.example:3128' });
    assert.equal(a!.reach.ipFamily, 6);
    assert.equal(a!.reach.connectAttemptDelay, 100);
    assert.deepEqual(b!.reach.hosts, []);
    assert.equal(b!.host, '*');
    assert.deepEqual(b!.reach.lookup, ['nodelist', 'dns']);
    assert.equal(b!.reach.nodelist, '/lists/other.txt');
    assert.deepEqual(b!.reach.proxy, { kind: 'socks5', host: '127.0.0.1', port: 1080, user: 'u', password: 'p@ss', label: 'socks5://127.0.0.1:1080' });
    assert.deepEqual(c.warnings, []);
  });

  test('bad values name the key and the value', () => {
    const hub = (lines: string) => problems(`${NODE}[h]\nhub = 1:2/3\nhub_hostname = h.example\n${lines}\n`);
    assert.deepEqual(hub('lookup = config, ldap'), [`${FILE}:8 [h] lookup: "config, ldap" is not a list of lookup sources (config, nodelist, dns; each at most once)`]);
    assert.deepEqual(hub('tls = maybe'), [`${FILE}:8 [h] tls: "maybe" is not a TLS mode (no, yes, required)`]);
    assert.deepEqual(hub('tls_fingerprint = abc'), [`${FILE}:8 [h] tls_fingerprint: "abc" is not a SHA-256 fingerprint (64 hex digits, colons allowed)`]);
    assert.deepEqual(hub('ip_family = 5'), [`${FILE}:8 [h] ip_family: "5" is not an IP family (4, 6, any)`]);
    assert.deepEqual(hub('connect_attempt_delay = 5s'), [`${FILE}:8 [h] connect_attempt_delay: "5s" is out of range (10..2000)`]);
    assert.deepEqual(hub('proxy = ftp://x:1'), [
      `${FILE}:8 [h] proxy: "ftp://x:1" is not a proxy URL (socks5://[user:pass@]host:port or http://[user:pass@]host:port)`,
    ]);
    assert.deepEqual(hub('bind_address = 10.0.0.1\nip_family = 6'), [`${FILE}:8 [h] bind_address: "10.0.0.1" contradicts ip_family = 6`]);
    assert.deepEqual(hub('tls = no\ntls_fingerprint = ' + 'a'.repeat(64)), [`${FILE}:9 [h] tls_fingerprint: "${'a'.repeat(64)}" is set, but tls = no (set tls = required)`]);
    assert.deepEqual(hub('tls_ca = /x.pem'), [`${FILE}:8 [h] tls_ca: "/x.pem" is set, but tls = no (set tls = required)`]);
    assert.deepEqual(problems(`${NODE}[poller]\ndns_server = resolver.example\n`), [`${FILE}:6 [poller] dns_server: "resolver.example" contains "resolver.example", which is not ip[:port]`]);
  });
});
