/**
 * fnpoll.ini -> typed Config (./types.ts). The only place that knows the schema: key names,
 * synonyms (libftn's names, so one file serves libftn's fntosser and fnpoll), defaults, ranges.
 *
 * `buildConfig` is pure (apart from resolving a relative `file` against the working directory):
 * it collects every problem and throws one ConfigError listing them all, one line each:
 *   <file>:<line> [<section>] <key>: "<value>" <what is wrong>
 *   <file> [<section>] <key>: missing (required)
 * Unknown keys and sections that look like typos end up in `Config.warnings` instead.
 */
import path from 'node:path';

import { ConfigError, UsageError } from '../errors.js';
import { errnoText } from '../files.js';
import { shownText } from '../binkp/untrusted.js';
import { MAX_CONFIG_BYTES, NotTextFileError, readTextFileStatSync } from '../textfile.js';
import { addressKey, formatAddress, tryParseAddress, type FtnAddress } from '../ftn/address.js';
import { formatExactDuration } from '../format.js';
import { findSection, parseIni, type IniDocument, type IniEntry, type IniSection } from './ini.js';
import type {
  Config, ExtensionConfig, HubConfig, HubReach, IpFamily, LogLevel, LookupSource, NodeConfig, PerformanceConfig, PollerConfig, ProxySpec,
  ReachDefaults, TlsMode,
} from './types.js';
import {
  BOOL_FORMS,
  DURATION_FORMS,
  SIZE_FORMS,
  tryParseBool,
  tryParseCount,
  tryParseDuration,
  tryParseSize,
} from './units.js';


export const DEFAULT_CONFIG_PATH = '/etc/fnpoll/fnpoll.ini';
export const DEFAULT_STATE_FILE = '/var/lib/fnpoll/state.json';
/** FTS-1026 §3: the IANA-registered binkp port. */
export const DEFAULT_BINKP_PORT = 24554;
/** binkps (binkp over TLS from the first byte): the port Synchronet's BinkIT answers on (FTN-NOTES §9). */
export const DEFAULT_BINKPS_PORT = 24553;
/** FTS-1026 §4: the DATA part of a frame is at most 32767 octets. */
export const MAX_FRAME_DATA = 32767;
export const MAX_CONNECTIONS_LIMIT = 256;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Defaults for [poller]; durations in ms, sizes in bytes. */
export const POLLER_DEFAULTS = {
  logLevel: 'info' as LogLevel,
  logFormat: 'json' as const,
  logRotateSize: 10 * 1024 * 1024,
  logMaxFiles: 10,
  maxConnections: 4,
  pollInterval: HOUR,
  connectTimeout: 30 * SECOND,
  idleTimeout: 300 * SECOND,
  sessionTimeout: HOUR,
  runTimeout: 15 * MINUTE,
  retryBase: MINUTE,
  retryMax: 6 * HOUR,
  maxRetries: 0,
  holdTime: DAY,
  shutdownGrace: 30 * SECOND,
  staleFlagAge: 6 * HOUR,
  partialMaxAge: DAY,
  minFree: 0,
  binkdTryFiles: false,
  fsync: true,
  hookTimeout: 60 * SECOND,
  strictPermissions: false,
};

export const NODE_DEFAULTS = {
  system: 'Unknown',
  sysop: 'Unknown',
  location: 'Unknown',
  nodeinfo: '115200,TCP,BINKP',
  /** Received files and partials: the owner writes, the tosser's group reads, others nothing. */
  inboundMode: 0o640,
};

/** Sections with a fixed meaning; every other section is a hub. */
const RESERVED_SECTIONS = ['node', 'poller', 'daemon', 'logging', 'performance'] as const;

const NODE_KEYS = [
  'address', 'aka', 'system', 'name', 'sysop', 'location', 'nodeinfo',
  'outbound', 'inbound', 'inbound_insecure', 'temp_inbound', 'inbound_mode', 'networks', 'nodelist',
];
/** Issue 12: how hubs are reached; in [poller] as defaults, in a hub section for that hub. */
const REACH_KEYS = [
  'lookup', 'dns_root', 'connect_attempt_delay', 'ip_family', 'tls', 'tls_ca', 'tls_insecure', 'proxy', 'bind_address',
];
/** libftn's [daemon] keys that mean nothing to a cron-driven poller. */
const IGNORED_POLLER_KEYS: Readonly<Record<string, string>> = {
  pid_file: 'fnpoll runs from cron and keeps no pid file',
  sleep_interval: 'cron and poll_interval decide when fnpoll runs',
};
const POLLER_KEYS = [
  'state_file', 'lock_file', 'log_file', 'log_level', 'log_format', 'log_rotate_size',
  'log_rotate_interval', 'log_max_files', 'metrics_file', 'max_connections', 'poll_interval',
  'connect_timeout', 'idle_timeout', 'session_timeout', 'run_timeout', 'retry_base', 'retry_max',
  'max_retries', 'hold_time', 'shutdown_grace', 'stale_flag_age', 'partial_max_age', 'minfree',
  'binkd_try_files', 'fsync', 'warn_after', 'crit_after', 'on_success', 'on_failure', 'hook_timeout',
  'strict_permissions', 'dns_server', ...REACH_KEYS,
  ...Object.keys(IGNORED_POLLER_KEYS),
  // issue 14: once per run
  'on_run_end',
];
const LOGGING_KEYS = ['level', 'log_file', 'file'];
// ---- protocol extensions (issue 13): [performance] defaults, each overridable per hub ----------
const EXTENSION_KEYS = ['use_compression', 'use_crc', 'use_crypt', 'use_nd', 'compression_threshold'];
/** Compression and CRC on, CRYPT (weak, but some hubs insist) and ND off; binkd's `zminsize`. */
export const EXTENSION_DEFAULTS: Readonly<ExtensionConfig> = {
  useCompression: true,
  useCrc: true,
  useCrypt: false,
  useNd: false,
  compressionThreshold: 1024,
};

function readExtensions(r: Reader, base: Readonly<ExtensionConfig>): ExtensionConfig {
  return {
    useCompression: r.bool(['use_compression']) ?? base.useCompression,
    useCrc: r.bool(['use_crc']) ?? base.useCrc,
    useCrypt: r.bool(['use_crypt']) ?? base.useCrypt,
    useNd: r.bool(['use_nd']) ?? base.useNd,
    compressionThreshold: r.size(['compression_threshold']) ?? base.compressionThreshold,
  };
}
// ---------------------------------------------------------------------------------------------

const PERFORMANCE_KEYS = ['buffer_size', 'bandwidth_limit', ...EXTENSION_KEYS];
export const HUB_KEYS = [
  'hub_address', 'hub', 'hub_hostname', 'hub_port', 'binkp', 'password', 'binkp_password',
  'address', 'poll_frequency', 'use_cram', 'nr_mode', 'outbound', 'retry_base', 'retry_max',
  'max_retries', 'hold_time', 'bandwidth_limit', 'on_success', 'on_failure',
  ...EXTENSION_KEYS,
  ...REACH_KEYS, 'nodelist', 'tls_fingerprint',
];
/** Keys whose presence makes a section clearly meant as a hub (not a typo of a reserved name). */
const HUB_MARKER_KEYS = ['hub_address', 'hub', 'binkp', 'hub_hostname'];

const LOG_LEVELS: Readonly<Record<string, LogLevel>> = {
  debug: 'debug',
  info: 'info',
  warning: 'warning',
  warn: 'warning',
  error: 'error',
};

/** Stands in for an address that failed to parse; never returned (the build throws). */
const UNSET_ADDRESS: FtnAddress = { zone: 0, net: 0, node: 0, point: 0 };

/** `--config` flag, else `$FNPOLL_CONFIG`, else /etc/fnpoll/fnpoll.ini; made absolute. */
export function resolveConfigPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag || env.FNPOLL_CONFIG || DEFAULT_CONFIG_PATH;
  return path.resolve(chosen);
}

/** Read, parse and validate the file. Every failure is a ConfigError. */
export async function loadConfig(file: string): Promise<Config> {
  const abs = path.resolve(file);
  let read: { text: string; stats: import('node:fs').Stats };
  try {
    read = readTextFileStatSync(abs, MAX_CONFIG_BYTES, 'text config');
  } catch (err) {
    if (err instanceof NotTextFileError) throw new ConfigError(`${abs}: ${err.message}`, { cause: err });
    throw new ConfigError(`${abs}: cannot read config: ${errnoText(err)}`, { cause: err });
  }
  const doc = parseIni(read.text, abs);
  // FNPOLL_<SECTION>_<KEY> wins over the file (issue 14); `check` lists what came from where.
  const { applyEnvOverrides, describeOverride } = await import('./env.js');
  const overrides = applyEnvOverrides(doc, process.env);
  const config = buildConfig(doc, abs);
  if (overrides.length) config.overrides = overrides.map(describeOverride);
  const exposed = passwordExposure(config, read.stats);
  if (exposed && config.poller.strictPermissions) throw new ConfigError(`${exposed} (strict_permissions = yes)`);
  if (exposed) config.warnings.push(exposed);
  return config;
}

/** Who we run as, for judging a config's permissions. */
export interface RunAs {
  uid: number;
  gid: number;
}

/**
 * A config that holds hub passwords must be readable only by those who poll: anyone who reads it
 * can call the hub as us. Returns the warning (or, with strict_permissions, the error), or
 * undefined. Group read is allowed in one case: the file belongs to another user (root) and its
 * group is ours, which is how we are meant to read it (`chown root:ftn; chmod 640`, the README's
 * install); then the group is the readers.
 */
export function passwordExposure(
  config: Config,
  st: { mode: number; uid: number; gid: number },
  reader: RunAs | undefined = currentReader(),
): string | undefined {
  if (!config.hubs.some((h) => h.password !== undefined)) return undefined;
  const groupIsUs = reader !== undefined && st.uid !== reader.uid && st.gid === reader.gid;
  const exposed = st.mode & (groupIsUs ? 0o004 : 0o044);
  if (exposed === 0) return undefined;
  const who = exposed === 0o044 ? 'group and others' : exposed & 0o040 ? 'group' : 'others';
  const octal = (st.mode & 0o777).toString(8).padStart(3, '0');
  const fix = groupIsUs ? 'chmod 640' : 'chmod 600';
  return `${config.file}: holds hub passwords but is readable by ${who} (mode ${octal}); ${fix} ${config.file}`;
}

function currentReader(): RunAs | undefined {
  return typeof process.geteuid === 'function' && typeof process.getegid === 'function'
    ? { uid: process.geteuid(), gid: process.getegid() }
    : undefined;
}

// ---------------------------------------------------------------------------------------------
// Reading sections

interface Slot {
  entry: IniEntry;
  section: IniSection;
}

class Report {
  readonly problems: string[] = [];
  readonly warnings: string[] = [];
  constructor(readonly file: string) {}

  where(slot: Slot): string {
    if (slot.entry.source) return `$${slot.entry.source} ([${slot.section.name}] ${slot.entry.name})`;
    return `${this.file}:${slot.entry.line} [${slot.section.name}] ${slot.entry.name}`;
  }
  /** `<file>:<line> [<section>] <key>: "<value>" <what>` */
  bad(slot: Slot, what: string): void {
    this.problems.push(`${this.where(slot)}: "${slot.entry.value}" ${what}`);
  }
  missing(section: string, key: string, why = 'required'): void {
    this.problems.push(`${this.file} [${section}] ${key}: missing (${why})`);
  }
}

/** A range check returns what is wrong, or undefined when the value is fine. */
type Check<T> = (value: T) => string | undefined;

const positive: Check<number> = (ms) => (ms > 0 ? undefined : 'must be longer than 0');
const inRange = (min: number, max: number): Check<number> => (n) =>
  n >= min && n <= max ? undefined : `is out of range (${min}..${max})`;

/**
 * The keys of one section (or of synonymous sections read as one, [poller] + [daemon]). Tracks
 * which keys were asked for, so that the rest can be reported as unknown.
 */
class Reader {
  private readonly slots = new Map<string, Slot>();
  private readonly asked = new Set<string>();

  constructor(
    private readonly report: Report,
    /** Section name for "missing" messages. */
    readonly label: string,
    sections: readonly IniSection[],
    private readonly known: readonly string[],
  ) {
    for (const section of sections) {
      for (const entry of section.entries) {
        const first = this.slots.get(entry.key);
        if (first) {
          report.problems.push(
            `${report.where({ entry, section })}: duplicate key (also in [${first.section.name}] at line ${first.entry.line})`,
          );
        } else {
          this.slots.set(entry.key, { entry, section });
        }
      }
    }
  }

  /** Is any of `names` written in the section (even with an empty value)? */
  has(...names: string[]): boolean {
    return names.some((n) => this.slots.has(n));
  }

  /**
   * The entry for the first of `names` (synonyms) that is present. Two synonyms both present is
   * a problem. An empty value (`key =`) counts as present; `get` treats it as unset.
   */
  raw(...names: string[]): Slot | undefined {
    let found: Slot | undefined;
    for (const name of names) {
      this.asked.add(name);
      const slot = this.slots.get(name);
      if (!slot) continue;
      if (found) {
        this.report.problems.push(
          `${this.report.where(slot)}: duplicate key (same as ${found.entry.name} at line ${found.entry.line})`,
        );
      } else {
        found = slot;
      }
    }
    return found;
  }

  /** Like `raw`, but an empty value means "not set". */
  get(...names: string[]): Slot | undefined {
    const slot = this.raw(...names);
    return slot && slot.entry.value.trim() !== '' ? slot : undefined;
  }

  /** Present and non-empty, or a "missing" / "is empty" problem. */
  required(names: string[], why = 'required'): Slot | undefined {
    const slot = this.raw(...names);
    if (!slot) this.report.missing(this.label, names[0]!, why);
    else if (slot.entry.value.trim() === '') this.report.bad(slot, `is empty (${why})`);
    else return slot;
    return undefined;
  }

  string(names: string[]): string | undefined {
    return this.get(...names)?.entry.value;
  }

  /**
   * Convert with `parse`; on failure report `is not <what>` and return undefined. A failed
   * `check` reports its message and also returns undefined.
   */
  convert<T>(names: string[], parse: (text: string) => T | undefined, what: string, check?: Check<T>): T | undefined {
    const slot = this.get(...names);
    if (!slot) return undefined;
    const value = parse(slot.entry.value);
    if (value === undefined) {
      this.report.bad(slot, `is not ${what}`);
      return undefined;
    }
    const wrong = check?.(value);
    if (wrong) {
      this.report.bad(slot, wrong);
      return undefined;
    }
    return value;
  }

  duration(names: string[], check: Check<number> = positive): number | undefined {
    return this.convert(names, tryParseDuration, `a duration (${DURATION_FORMS})`, check);
  }
  size(names: string[], check?: Check<number>): number | undefined {
    return this.convert(names, tryParseSize, `a size (${SIZE_FORMS})`, check);
  }
  count(names: string[], check?: Check<number>): number | undefined {
    return this.convert(names, tryParseCount, 'a whole number', check);
  }
  bool(names: string[]): boolean | undefined {
    return this.convert(names, tryParseBool, `a boolean (${BOOL_FORMS})`);
  }
  /** A path; relative ones resolve against `baseDir` (the config file's directory). */
  path(names: string[], baseDir: string): string | undefined {
    const value = this.string(names);
    return value === undefined ? undefined : path.resolve(baseDir, value);
  }
  /** Comma-separated addresses; reports each bad one. Empty items are skipped. */
  addresses(names: string[]): FtnAddress[] | undefined {
    const slot = this.get(...names);
    if (!slot) return undefined;
    const out: FtnAddress[] = [];
    for (const item of splitList(slot.entry.value)) {
      const a = tryParseAddress(item);
      if (a) out.push(a);
      else this.report.bad(slot, `contains "${item}", which is not an FTN address`);
    }
    return out;
  }

  /** Warnings for every key nobody asked for, with a suggestion for near-misses. */
  finish(): void {
    for (const [key, slot] of this.slots) {
      if (this.asked.has(key)) continue;
      const hint = suggest(key, this.known);
      this.report.warnings.push(
        `${this.report.where(slot)}: unknown key ignored${hint ? `; did you mean \`${hint}\`?` : ''}`,
      );
    }
  }
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Levenshtein distance (insert, delete, substitute), two-row version. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest of `candidates` within edit distance 2, if any. */
function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// The schema

/** Validate a parsed document; throws one ConfigError listing every problem. */
export function buildConfig(doc: IniDocument, file: string): Config {
  const report = new Report(file);
  report.problems.push(...doc.problems);
  const baseDir = path.dirname(path.resolve(file));
  const sections = (...names: string[]): IniSection[] =>
    names.map((n) => findSection(doc, n)).filter((s): s is IniSection => s !== undefined);

  const node = readNode(report, doc, sections('node'), baseDir);
  const poller = readPoller(report, sections('poller', 'daemon'), sections('logging'), baseDir);
  const performance = readPerformance(report, sections('performance'));
  const hubs = readHubs(report, doc, node, poller, performance, baseDir);

  // Warnings quote the file as problems do: one line each (see ConfigError).
  const warnings = report.warnings.map((w) => shownText(w, Infinity));
  // The warnings too: a misspelt key ("did you mean") is often why a required one is missing.
  if (report.problems.length > 0) throw new ConfigError([...report.problems, ...warnings.map((w) => `warning: ${w}`)]);
  return { file: path.resolve(file), node, poller, performance, hubs, warnings };
}

/** `640`, `0640`, `0o640` -> 0o640; permission bits only. */
function parseMode(text: string): number | undefined {
  const m = /^(?:0o?)?([0-7]{3})$/i.exec(text.trim());
  return m ? Number.parseInt(m[1]!, 8) : undefined;
}

function readNode(report: Report, doc: IniDocument, sections: IniSection[], baseDir: string): NodeConfig {
  const r = new Reader(report, 'node', sections, NODE_KEYS);

  let address = UNSET_ADDRESS;
  const addressSlot = r.required(['address']);
  if (addressSlot) {
    const a = tryParseAddress(addressSlot.entry.value);
    if (a) address = a;
    else report.bad(addressSlot, 'is not an FTN address');
  }
  const addresses = [address, ...(r.addresses(['aka']) ?? [])];

  const requiredPath = (key: string): string => {
    const slot = r.required([key]);
    return slot ? path.resolve(baseDir, slot.entry.value) : '';
  };
  const outbound = requiredPath('outbound');
  const inbound = requiredPath('inbound');
  const inboundInsecure = r.path(['inbound_insecure'], baseDir) ?? path.join(inbound, 'insecure');
  const tempInbound = r.path(['temp_inbound'], baseDir) ?? path.join(inbound, 'tmp');

  let networks: string[] | undefined;
  const networksSlot = r.get('networks');
  if (networksSlot) {
    networks = [...new Set(splitList(networksSlot.entry.value).map((n) => n.toLowerCase()))];
    for (const name of networks) {
      if ((RESERVED_SECTIONS as readonly string[]).includes(name)) {
        report.bad(networksSlot, `names [${name}], which is not a hub section`);
      } else if (!findSection(doc, name)) {
        report.bad(networksSlot, `names [${name}], but there is no such section`);
      }
    }
  }

  const result: NodeConfig = {
    address,
    addresses,
    system: r.string(['system', 'name']) ?? NODE_DEFAULTS.system,
    sysop: r.string(['sysop']) ?? NODE_DEFAULTS.sysop,
    location: r.string(['location']) ?? NODE_DEFAULTS.location,
    nodeinfo: r.string(['nodeinfo']) ?? NODE_DEFAULTS.nodeinfo,
    outbound,
    inbound,
    inboundInsecure,
    tempInbound,
    inboundMode:
      r.convert(['inbound_mode'], parseMode, 'a file mode in octal (640, 0600)', (m) =>
        (m & 0o600) === 0o600 ? undefined : 'must let the owner read and write (6xx)',
      ) ?? NODE_DEFAULTS.inboundMode,
    networks,
    nodelist: r.path(['nodelist'], baseDir),
  };
  r.finish();
  return result;
}

function readPoller(report: Report, sections: IniSection[], logging: IniSection[], baseDir: string): PollerConfig {
  const label = sections[0]?.name ?? 'poller';
  const r = new Reader(report, label, sections, POLLER_KEYS);
  // [logging] is libftn's, shared by all its programs; [poller] keys override it for fnpoll.
  const lg = new Reader(report, 'logging', logging, LOGGING_KEYS);
  const D = POLLER_DEFAULTS;

  for (const [key, why] of Object.entries(IGNORED_POLLER_KEYS)) {
    const slot = r.raw(key);
    if (slot) report.warnings.push(`${report.where(slot)}: ignored by fnpoll (${why})`);
  }

  const stateFile = r.path(['state_file'], baseDir) ?? DEFAULT_STATE_FILE;
  const lockFile = r.path(['lock_file'], baseDir) ?? `${stateFile}.lock`;

  const parseLevel = (t: string): LogLevel | undefined => {
    const word = t.trim().toLowerCase();
    return Object.hasOwn(LOG_LEVELS, word) ? LOG_LEVELS[word] : undefined;
  };
  const levelWhat = 'a log level (debug, info, warning, error)';
  const pollerLevel = r.convert(['log_level'], parseLevel, levelWhat);
  const loggingLevel = lg.convert(['level'], parseLevel, levelWhat);
  const pollerLogFile = r.path(['log_file'], baseDir);
  const loggingLogFile = lg.path(['log_file', 'file'], baseDir);

  const logFormat = r.convert(
    ['log_format'],
    (t) => (['json', 'text'] as const).find((f) => f === t.trim().toLowerCase()),
    'a log format (json, text)',
  );
  const logRotateInterval = r.convert(
    ['log_rotate_interval'],
    (t) => (/^\d+[smhd]$/.test(t.trim()) ? t.trim() : undefined),
    'a rotation interval (a whole number with s, m, h or d: 30m, 12h, 1d)',
    (t) => (Number.parseInt(t, 10) > 0 ? undefined : 'must be longer than 0'),
  );

  const retryBase = r.duration(['retry_base']) ?? D.retryBase;
  const retryMax = r.duration(['retry_max']) ?? D.retryMax;
  if (retryMax < retryBase) {
    const slot = r.get('retry_max') ?? r.get('retry_base');
    if (slot) report.bad(slot, `leaves retry_max (${formatExactDuration(retryMax)}) below retry_base (${formatExactDuration(retryBase)})`);
  }
  const warnAfter = r.duration(['warn_after']);
  const critAfter = r.duration(['crit_after']);
  if (warnAfter !== undefined && critAfter !== undefined && critAfter < warnAfter) {
    report.bad(r.get('crit_after')!, `is shorter than warn_after (${formatExactDuration(warnAfter)})`);
  }

  const result: PollerConfig = {
    stateFile,
    lockFile,
    logFile: pollerLogFile ?? loggingLogFile,
    logLevel: pollerLevel ?? loggingLevel ?? D.logLevel,
    logFormat: logFormat ?? D.logFormat,
    logRotateSize: r.size(['log_rotate_size'], inRange(1, Number.MAX_SAFE_INTEGER)) ?? D.logRotateSize,
    logRotateInterval,
    logMaxFiles: r.count(['log_max_files'], inRange(1, 10000)) ?? D.logMaxFiles,
    metricsFile: r.path(['metrics_file'], baseDir),
    maxConnections: r.count(['max_connections'], inRange(1, MAX_CONNECTIONS_LIMIT)) ?? D.maxConnections,
    pollInterval: r.duration(['poll_interval']) ?? D.pollInterval,
    connectTimeout: r.duration(['connect_timeout']) ?? D.connectTimeout,
    idleTimeout: r.duration(['idle_timeout']) ?? D.idleTimeout,
    sessionTimeout: r.duration(['session_timeout']) ?? D.sessionTimeout,
    runTimeout: r.duration(['run_timeout']) ?? D.runTimeout,
    retryBase,
    retryMax,
    maxRetries: r.count(['max_retries']) ?? D.maxRetries,
    holdTime: r.duration(['hold_time']) ?? D.holdTime,
    // 0 = do not wait for sessions to finish after a signal.
    shutdownGrace: r.duration(['shutdown_grace'], () => undefined) ?? D.shutdownGrace,
    staleFlagAge: r.duration(['stale_flag_age']) ?? D.staleFlagAge,
    partialMaxAge: r.duration(['partial_max_age']) ?? D.partialMaxAge,
    minFree: r.size(['minfree']) ?? D.minFree,
    binkdTryFiles: r.bool(['binkd_try_files']) ?? D.binkdTryFiles,
    fsync: r.bool(['fsync']) ?? D.fsync,
    warnAfter,
    critAfter,
    onSuccess: r.string(['on_success']),
    onRunEnd: r.string(['on_run_end']),
    onFailure: r.string(['on_failure']),
    hookTimeout: r.duration(['hook_timeout']) ?? D.hookTimeout,
    strictPermissions: r.bool(['strict_permissions']) ?? D.strictPermissions,
    reach: readReach(report, r, REACH_DEFAULTS, baseDir),
    dnsServers: readDnsServers(report, r),
  };
  r.finish();
  lg.finish();
  return result;
}

function readPerformance(report: Report, sections: IniSection[]): PerformanceConfig {
  const r = new Reader(report, 'performance', sections, PERFORMANCE_KEYS);
  const result: PerformanceConfig = {
    bufferSize: r.size(['buffer_size'], inRange(1, MAX_FRAME_DATA)) ?? MAX_FRAME_DATA,
    bandwidthLimit: r.size(['bandwidth_limit']) ?? 0,
    extensions: readExtensions(r, EXTENSION_DEFAULTS),
  };
  r.finish();
  return result;
}

function readHubs(
  report: Report,
  doc: IniDocument,
  node: NodeConfig,
  poller: PollerConfig,
  performance: PerformanceConfig,
  baseDir: string,
): HubConfig[] {
  const hubs: HubConfig[] = [];
  const byAddress = new Map<string, HubConfig>();
  for (const section of doc.sections) {
    if ((RESERVED_SECTIONS as readonly string[]).includes(section.key)) continue;
    const listed = node.networks?.includes(section.key) ?? false;
    const isMarked = listed || section.entries.some((e) => HUB_MARKER_KEYS.includes(e.key));
    // `[poler]` without hub keys is a typo, not a hub with its hub_address missing.
    const typoOf = isMarked ? undefined : suggest(section.key, RESERVED_SECTIONS);
    if (typoOf) {
      report.warnings.push(`${report.file}:${section.line} [${section.name}]: unknown section ignored; did you mean [${typoOf}]?`);
      continue;
    }
    // `networks` limits the hubs: other sections belong to other programs (libftn's tosser).
    if (node.networks && !listed) continue;

    const hub = readHub(report, section, node, poller, performance, baseDir);
    if (!hub) continue;
    const key = addressKey(hub.address);
    const first = byAddress.get(key);
    if (first) {
      report.problems.push(
        `${report.file}:${hub.line} [${hub.name}] hub_address: "${formatAddress(hub.address)}" duplicate hub: same address as [${first.name}] (line ${first.line})`,
      );
      continue;
    }
    byAddress.set(key, hub);
    hubs.push(hub);
  }
  return hubs;
}

/** One hub section; undefined when it has problems (they are reported). */
function readHub(
  report: Report,
  section: IniSection,
  node: NodeConfig,
  poller: PollerConfig,
  performance: PerformanceConfig,
  baseDir: string,
): HubConfig | undefined {
  const before = report.problems.length;
  const r = new Reader(report, section.name, [section], HUB_KEYS);

  let address = UNSET_ADDRESS;
  const addressSlot = r.required(
    ['hub_address', 'hub'],
    `required: every section other than ${RESERVED_SECTIONS.map((s) => `[${s}]`).join(', ')} is a hub`,
  );
  if (addressSlot) {
    const a = tryParseAddress(addressSlot.entry.value);
    if (a) address = a;
    else report.bad(addressSlot, 'is not an FTN address');
  }

  const reach = readHubReach(report, r, node, poller, baseDir);
  const { host, port } = readHostPort(report, r, reach);

  const password = r.string(['password', 'binkp_password']);
  // issue 14: a password with ` #` or ` ;` in it is silently cut there; say so, without echoing it.
  const pwSlot = r.get('password') ?? r.get('binkp_password');
  if (pwSlot && !pwSlot.entry.quoted && pwSlot.entry.comment !== undefined) {
    report.warnings.push(
      `${report.where(pwSlot)}: the value ends where \`${pwSlot.entry.comment.slice(0, 1)}\` follows a space; the rest of the line is a comment. If it is part of the password, quote the value: ${pwSlot.entry.name} = "..."`,
    );
  }
  const outboundOverride = r.path(['outbound'], baseDir);
  const retryBase = r.duration(['retry_base']) ?? poller.retryBase;
  const retryMax = r.duration(['retry_max']) ?? poller.retryMax;
  if (retryMax < retryBase && (r.has('retry_base') || r.has('retry_max'))) {
    const slot = r.get('retry_max') ?? r.get('retry_base');
    if (slot) report.bad(slot, `leaves retry_max (${formatExactDuration(retryMax)}) below retry_base (${formatExactDuration(retryBase)})`);
  }

  const hub: HubConfig = {
    name: section.name,
    key: section.key,
    address,
    host,
    port,
    // binkd's convention: `-` = no password (M_PWD "-").
    password: password === undefined || password === '-' ? undefined : password,
    ourAddresses: r.addresses(['address']) ?? [...node.addresses],
    pollFrequency: r.duration(['poll_frequency']) ?? poller.pollInterval,
    useCram: r.bool(['use_cram']) ?? true,
    nrMode: r.bool(['nr_mode']) ?? false,
    outbound: outboundOverride ?? node.outbound,
    outboundOverride: outboundOverride !== undefined,
    retryBase,
    retryMax,
    maxRetries: r.count(['max_retries']) ?? poller.maxRetries,
    holdTime: r.duration(['hold_time']) ?? poller.holdTime,
    // Unset = only the global [performance] limit applies (see HubConfig).
    bandwidthLimit: r.size(['bandwidth_limit']),
    onSuccess: r.string(['on_success']) ?? poller.onSuccess,
    onFailure: r.string(['on_failure']) ?? poller.onFailure,
    extensions: readExtensions(r, performance.extensions),
    reach,
    line: section.line,
  };
  if (hub.ourAddresses.length === 0) {
    report.bad(r.get('address')!, 'lists no address');
  }
  // issue 14: AKAs of another network than the hub's make it refuse us or file our mail wrongly.
  const domain = address.domain?.toLowerCase();
  const ourSlot = r.get('address');
  const foreign = domain && hub.ourAddresses.length && hub.ourAddresses.every((a) => a.domain) && !hub.ourAddresses.some((a) => a.domain?.toLowerCase() === domain);
  if (foreign && ourSlot) {
    report.warnings.push(`${report.where(ourSlot)}: "${ourSlot.entry.value}" has no address in the hub's domain @${domain} (hub_address ${formatAddress(address)}); the hub will see only AKAs of other networks`);
  } else if (foreign && addressSlot) {
    report.warnings.push(`${report.where(addressSlot)}: none of our addresses ([node] address, aka) is in @${domain}; the hub will see only AKAs of other networks (add ours in @${domain} to aka, or an \`address\` key here)`);
  }
  r.finish();
  return report.problems.length === before ? hub : undefined;
}

/**
 * `hub_hostname` + `hub_port`, or libftn's `binkp = host[:port]` (`[v6addr]:port` for IPv6; a
 * bare IPv6 address has no port). Either may list several hosts, tried in order
 * (`h1;h2:24555;[2001:db8::1]`), or be `*`: then `lookup` finds the host (nodelist, DNS), as it
 * does when neither is set. `host`/`port` are the first host, for one-line displays.
 */
function readHostPort(report: Report, r: Reader, reach: HubReach): { host: string; port: number } {
  const binkp = r.get('binkp');
  const hostSlot = r.get('hub_hostname');
  const portSlot = r.get('hub_port');
  const defaultPort = reach.tls === 'no' ? DEFAULT_BINKP_PORT : DEFAULT_BINKPS_PORT;
  const portText = portSlot?.entry.value;
  const hubPort = portText === undefined ? undefined : parsePort(portText);
  if (portSlot && hubPort === undefined) report.bad(portSlot, 'is not a port (1..65535)');
  reach.port = hubPort;

  if (binkp && hostSlot) {
    report.bad(binkp, `conflicts with hub_hostname (line ${hostSlot.entry.line}): set one of them`);
    return { host: '', port: defaultPort };
  }
  const slot = binkp ?? hostSlot;
  if (!slot) {
    if (!reach.lookup.some((s) => s !== 'config')) {
      r.required(['hub_hostname'], 'required when lookup is config only, or binkp = host[:port]');
    }
    return { host: '*', port: hubPort ?? defaultPort };
  }
  const text = slot.entry.value.trim();
  if (text === '*') return { host: '*', port: hubPort ?? defaultPort };
  const items = text.split(/\s*[;,]\s*/).filter((t) => t !== '');
  for (const item of items) {
    const parsed = splitHostPort(item);
    if ('error' in parsed) {
      if (items.length > 1) report.bad(slot, `contains "${item}", which is not host[:port]`);
      else report.bad(slot, slot === binkp ? parsed.error : 'is not a host name or IP address');
      continue;
    }
    let port: number | undefined;
    if (parsed.port !== undefined) {
      port = parsePort(parsed.port);
      if (port === undefined) report.bad(slot, `has port "${parsed.port}", which is not a port (1..65535)`);
      else if (portSlot && slot === binkp) report.bad(portSlot, `conflicts with the port in binkp (line ${binkp.entry.line}): set one of them`);
    }
    reach.hosts.push({ host: parsed.host, port: port ?? hubPort });
  }
  const first = reach.hosts[0];
  return { host: first?.host ?? '', port: first?.port ?? defaultPort };
}

// ---------------------------------------------------------------------------------------------
// Issue 12: reaching hubs. [poller] holds the defaults, a hub section overrides them.

export const REACH_DEFAULTS: ReachDefaults = {
  lookup: ['config', 'nodelist', 'dns'],
  // FTS-5004: the root under which every FidoNet node has a name.
  dnsRoot: 'binkp.net',
  // RFC 8305 §5: "Connection Attempt Delay", 250 ms recommended.
  connectAttemptDelay: 250,
  ipFamily: 0,
  tls: 'no',
  tlsCa: undefined,
  tlsInsecure: false,
  proxy: undefined,
  bindAddress: undefined,
};

const LOOKUP_SOURCES: readonly LookupSource[] = ['config', 'nodelist', 'dns'];
const TLS_MODES: readonly TlsMode[] = ['no', 'yes', 'required'];

function readReach(report: Report, r: Reader, d: ReachDefaults, baseDir: string): ReachDefaults {
  const lookup = r.convert(
    ['lookup'],
    (t) => {
      const list = splitList(t.toLowerCase()) as LookupSource[];
      const ok = list.length > 0 && list.every((x) => LOOKUP_SOURCES.includes(x)) && new Set(list).size === list.length;
      return ok ? list : undefined;
    },
    'a list of lookup sources (config, nodelist, dns; each at most once)',
  );
  const dnsRoot = r.convert(['dns_root'], (t) => {
    const root = t.trim().replace(/^\.+|\.+$/g, '');
    return isHostName(root) && !isIPv4Text(root) ? root.toLowerCase() : undefined;
  }, 'a domain name (binkp.net)');
  const tls = r.convert(['tls'], (t) => {
    const word = t.trim().toLowerCase();
    const bool = tryParseBool(word);
    return TLS_MODES.find((m) => m === word) ?? (bool === undefined ? undefined : bool ? 'yes' : 'no');
  }, 'a TLS mode (no, yes, required)');
  const bindAddress = r.convert(['bind_address'], (t) => {
    const a = t.trim().replace(/^\[(.*)\]$/, '$1');
    return isIPv4Text(a) || isIPv6Text(a) ? a : undefined;
  }, 'an IP address');
  return {
    lookup: lookup ?? d.lookup,
    dnsRoot: dnsRoot ?? d.dnsRoot,
    // RFC 8305 §8: at least 10 ms, and no more than 2 s.
    connectAttemptDelay: r.convert(['connect_attempt_delay'], tryParseShortDuration, 'a duration (250ms, 0.5s)', inRange(10, 2000)) ?? d.connectAttemptDelay,
    ipFamily: r.convert(['ip_family'], (t) => ({ '4': 4, '6': 6, any: 0 } as Record<string, IpFamily>)[t.trim().toLowerCase()], 'an IP family (4, 6, any)') ?? d.ipFamily,
    tls: tls ?? d.tls,
    tlsCa: r.path(['tls_ca'], baseDir) ?? d.tlsCa,
    tlsInsecure: r.bool(['tls_insecure']) ?? d.tlsInsecure,
    proxy: r.convert(['proxy'], parseProxy, 'a proxy URL (socks5://[user:pass@]host:port or http://[user:pass@]host:port)') ?? d.proxy,
    bindAddress: bindAddress ?? d.bindAddress,
  };
}

function readHubReach(report: Report, r: Reader, node: NodeConfig, poller: PollerConfig, baseDir: string): HubReach {
  const reach: HubReach = {
    ...readReach(report, r, poller.reach, baseDir),
    hosts: [],
    nodelist: r.path(['nodelist'], baseDir) ?? node.nodelist,
    tlsFingerprint: r.convert(['tls_fingerprint'], (t) => {
      const hex = t.trim().toLowerCase().replace(/^sha256:/, '').replace(/:/g, '');
      return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
    }, 'a SHA-256 fingerprint (64 hex digits, colons allowed)'),
  };
  // A pin or a CA for a hub called in plain binkp protects nothing: say so rather than ignore it.
  const noTls = (reach.tlsFingerprint === undefined ? undefined : r.get('tls_fingerprint')) ?? r.get('tls_ca');
  if (noTls && reach.tls === 'no') report.bad(noTls, 'is set, but tls = no (set tls = required)');
  if (reach.bindAddress && reach.ipFamily !== 0 && (reach.ipFamily === 4) !== isIPv4Text(reach.bindAddress)) {
    report.bad(r.get('bind_address') ?? r.get('ip_family')!, `contradicts ip_family = ${reach.ipFamily}`);
  }
  return reach;
}

/** `dns_server = 127.0.0.1:5353, [::1]:53`: the resolvers for SRV, A and AAAA. */
function readDnsServers(report: Report, r: Reader): string[] | undefined {
  const slot = r.get('dns_server');
  if (!slot) return undefined;
  const out: string[] = [];
  for (const item of splitList(slot.entry.value)) {
    const parsed = splitHostPort(item);
    const ok = !('error' in parsed) && (isIPv4Text(parsed.host) || isIPv6Text(parsed.host)) && (parsed.port === undefined || parsePort(parsed.port) !== undefined);
    if (ok) out.push(item);
    else report.bad(slot, `contains "${item}", which is not ip[:port]`);
  }
  return out;
}

/** `250ms`, or a duration (`0.5s`, `1`). */
function tryParseShortDuration(text: string): number | undefined {
  const ms = /^(\d+)\s*ms$/i.exec(text.trim());
  return ms ? Number(ms[1]) : tryParseDuration(text);
}

/** `socks5://[user:pass@]host:port` or `http://[user:pass@]host:port`. */
export function parseProxy(text: string): ProxySpec | undefined {
  const m = /^(socks5h?|http):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/@]+?)\/?$/i.exec(text.trim());
  if (!m) return undefined;
  const kind = m[1]!.toLowerCase() === 'http' ? 'http' : 'socks5';
  const hp = splitHostPort(m[4]!);
  if ('error' in hp || hp.port === undefined) return undefined;
  const port = parsePort(hp.port);
  if (port === undefined) return undefined;
  const dec = (s: string | undefined): string | undefined => {
    try {
      return s === undefined ? undefined : decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const host = hp.host.includes(':') ? `[${hp.host}]` : hp.host;
  return { kind, host: hp.host, port, user: dec(m[2]), password: dec(m[3]), label: `${kind}://${host}:${port}` };
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address. */
export function splitHostPort(text: string): { host: string; port?: string } | { error: string } {
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    const host = bracketed[1]!;
    if (!isIPv6Text(host)) return { error: `has "[${host}]", which is not an IPv6 address` };
    return bracketed[2] === undefined ? { host } : { host, port: bracketed[2] };
  }
  const colons = text.split(':').length - 1;
  if (colons >= 2) {
    if (isIPv6Text(text)) return { host: text };
    return { error: 'is not host[:port] (write an IPv6 address with a port as [addr]:port)' };
  }
  const [host, port] = text.split(':') as [string, string | undefined];
  if (!isIPv4Text(host) && !isHostName(host)) return { error: 'is not host[:port]' };
  return port === undefined ? { host } : { host, port };
}

function parsePort(text: string): number | undefined {
  const n = tryParseCount(text);
  return n !== undefined && n >= 1 && n <= 65535 ? n : undefined;
}

// Address syntax without node:net: loading it (and the stream machinery behind it) and compiling
// its IPv6 pattern cost an idle cron run several milliseconds. Same forms as net.isIPv4/isIPv6.

const IPV4_OCTET = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const ZONE_ID = /^[0-9a-zA-Z.:-]+$/;

/** Dotted-decimal IPv4, four octets 0-255 without leading zeros (`192.0.2.1`). */
export function isIPv4Text(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => IPV4_OCTET.test(p));
}

/**
 * RFC 4291 §2.2 text form: eight groups of 1-4 hex digits, or fewer with one `::` standing for
 * the missing zero groups; the last two groups may be written as dotted IPv4; an optional
 * `%zone` suffix (RFC 4007 §11).
 */
export function isIPv6Text(text: string): boolean {
  let addr = text;
  const pct = text.indexOf('%');
  if (pct !== -1) {
    if (!ZONE_ID.test(text.slice(pct + 1))) return false;
    addr = text.slice(0, pct);
  }
  const halves = addr.split('::');
  if (halves.length > 2) return false;
  const groups = (half: string): string[] | undefined => (half === '' ? [] : half.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return false;
  const all = [...head, ...tail];
  let count = all.length;
  // A dotted IPv4 may end the address (not the part before a `::`) and counts as two groups.
  const ending = halves.length === 2 ? tail : head;
  const last = ending[ending.length - 1];
  if (last !== undefined && last.includes('.')) {
    if (!isIPv4Text(last)) return false;
    all.pop();
    count++;
  }
  if (!all.every((g) => HEX_GROUP.test(g))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}

/** RFC 1123 host name (underscore tolerated, as resolvers do), or a dotted IPv4 address. */
export function isHostName(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  const label = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
  return text.replace(/\.$/, '').split('.').every((l) => label.test(l));
}

// ---------------------------------------------------------------------------------------------
// Picking hubs

/**
 * Hubs named by `selectors`: a section name (case-insensitive) or a hub address (4D match,
 * domain ignored). No selectors = every hub. Result in selector order, without repeats.
 * An unknown selector is a UsageError that lists the known hub names.
 */
export function resolveHubs(config: Config, selectors: string[]): HubConfig[] {
  if (selectors.length === 0) return [...config.hubs];
  const picked: HubConfig[] = [];
  for (const selector of selectors) {
    const key = selector.trim().toLowerCase();
    const byName = config.hubs.find((h) => h.key === key);
    const a = byName ? undefined : tryParseAddress(selector);
    const hub = byName ?? (a && config.hubs.find((h) => addressKey(h.address) === addressKey(a)));
    if (!hub) {
      const known = config.hubs.map((h) => h.name).join(', ') || 'none';
      throw new UsageError(`unknown hub "${selector}" (known hubs: ${known})`);
    }
    if (!picked.includes(hub)) picked.push(hub);
  }
  return picked;
}
