/** Shared test fixtures for test/unit/poll and test/unit/ops (not a test file itself). */
import { join } from 'node:path';
import { EXTENSION_DEFAULTS, REACH_DEFAULTS, buildConfig } from '../../../src/config/load.js';
import { parseIni } from '../../../src/config/ini.js';
import type { Config, HubConfig } from '../../../src/config/types.js';
import type { QueueSummary } from '../../../src/bso/types.js';
import type { SessionStats } from '../../../src/poll/backoff.js';
import { parseAddress } from '../../../src/ftn/address.js';

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;

/** 2026-03-01T12:00:00Z: a fixed "now" for pure tests. */
export const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);

export function makeHub(over: Partial<HubConfig> = {}): HubConfig {
  const name = over.name ?? 'Fido';
  return {
    name,
    key: name.toLowerCase(),
    address: parseAddress('2:5020/1@fidonet'),
    host: 'hub.example.net',
    port: 24554,
    password: 'secret',
    ourAddresses: [parseAddress('2:5020/1234.5@fidonet')],
    pollFrequency: HOUR,
    useCram: true,
    nrMode: true,
    outbound: '/var/spool/ftn/outbound',
    outboundOverride: false,
    retryBase: MINUTE,
    retryMax: 6 * HOUR,
    maxRetries: 0,
    holdTime: 4 * HOUR,
    extensions: { ...EXTENSION_DEFAULTS },
    reach: { ...REACH_DEFAULTS, hosts: [{ host: 'hub.example.net', port: 24554 }] },
    line: 1,
    ...over,
  };
}

export function stats(over: Partial<SessionStats> = {}): SessionStats {
  return {
    startedAt: T0,
    durationMs: 5 * SECOND,
    filesSent: 0,
    filesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    ...over,
  };
}

export function queue(over: Partial<QueueSummary> = {}): QueueSummary {
  return { files: 0, bytes: 0, flavour: undefined, pollRequest: false, ...over };
}

/** Deterministic random source in [0, 1): a 32-bit linear congruential generator. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 4294967296;
  };
}

/**
 * A Config from INI text, as if read from `<dir>/fnpoll.ini`: node 2:5020/1234 with `out`/`in`
 * and `state.json`, then `poller` (more [poller] lines) and `rest` (hub sections).
 */
export function configFromIni(dir: string, poller: string, rest: string): Config {
  const file = join(dir, 'fnpoll.ini');
  const text = `[node]
address = 2:5020/1234
outbound = out
inbound = in
[poller]
state_file = state.json
${poller}
${rest}
`;
  return buildConfig(parseIni(text, file), file);
}
