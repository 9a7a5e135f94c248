/**
 * The typed configuration every other module works with. Produced by `loadConfig()` in
 * ./load.ts from the INI file; nothing else parses the file. Durations are in milliseconds,
 * sizes in bytes.
 */
import type { FtnAddress } from '../ftn/address.js';

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

export interface NodeConfig {
  /** Our main address (first of `addresses`). */
  address: FtnAddress;
  /** Main address followed by `aka`, in order. */
  addresses: FtnAddress[];
  system: string;
  sysop: string;
  location: string;
  /** NDL line, default `115200,TCP,BINKP`. */
  nodeinfo: string;
  /** BSO root for our main zone (absolute path). */
  outbound: string;
  /** Secure inbound (absolute path). */
  inbound: string;
  /** Default `inbound` + `/insecure`. */
  inboundInsecure: string;
  /** Partials; default `inbound` + `/tmp`. */
  tempInbound: string;
  /** Permission bits of received files and partials (`inbound_mode`, default 0640). */
  inboundMode: number;
  /** When set, only these sections are hubs (lower-cased section names). */
  networks?: string[] | undefined;
  /** Issue 12: nodelist file or glob (absolute), the default for every hub. */
  nodelist?: string | undefined;
}

export interface PollerConfig {
  stateFile: string;
  /** Default `stateFile` + `.lock`. */
  lockFile: string;
  logFile?: string | undefined;
  logLevel: LogLevel;
  logFormat: 'json' | 'text';
  logRotateSize: number;
  /** rotating-file-stream interval string (e.g. `1d`), or undefined for none. */
  logRotateInterval?: string | undefined;
  logMaxFiles: number;
  metricsFile?: string | undefined;
  maxConnections: number;
  pollInterval: number;
  connectTimeout: number;
  idleTimeout: number;
  sessionTimeout: number;
  runTimeout: number;
  retryBase: number;
  retryMax: number;
  /** 0 = never hold. */
  maxRetries: number;
  holdTime: number;
  shutdownGrace: number;
  /** `.bsy`/`.csy` older than this are stale. */
  staleFlagAge: number;
  /** Partials older than this are removed. */
  partialMaxAge: number;
  /** Refuse a file that would leave less than this free (0 = off). */
  minFree: number;
  binkdTryFiles: boolean;
  /**
   * Make received files durable (fsync file and directory) before their M_GOT, and a flow file's
   * `~` mark durable before the sent file is deleted or truncated.
   */
  fsync: boolean;
  /** Defaults 2x / 6x the hub's poll frequency when undefined. */
  warnAfter?: number | undefined;
  critAfter?: number | undefined;
  onSuccess?: string | undefined;
  onFailure?: string | undefined;
  /** Once after a run that made at least one session (issue 14): start the tosser once. */
  onRunEnd?: string | undefined;
  hookTimeout: number;
  /** A config holding passwords that group or others can read is an error, not a warning. */
  strictPermissions: boolean;
  /** Issue 12: how hubs are reached, the defaults every hub section may override. */
  reach: ReachDefaults;
  /** `dns_server`: resolvers to ask (`ip` or `ip:port`); undefined = the system's. */
  dnsServers?: string[] | undefined;
}

export interface PerformanceConfig {
  /** Bytes per data frame, 1..32767. */
  bufferSize: number;
  /** Bytes/s shared by all sessions; 0 = none. */
  bandwidthLimit: number;
  /** Defaults of the protocol extensions for every hub. */
  extensions: ExtensionConfig;
}

// ---- protocol extensions (issue 13) --------------------------------------------------------
/** [performance] use_* keys and compression_threshold; every hub section may override each. */
export interface ExtensionConfig {
  /** binkd's GZ (EXTCMD) and FTS-1029 PLZ. */
  useCompression: boolean;
  /** FTS-1030 CRC in M_FILE. */
  useCrc: boolean;
  /** binkd's CRYPT stream cipher (needs a password and CRAM-MD5). */
  useCrypt: boolean;
  /** binkd's no-dupes mode (ND, NDA; includes NR). */
  useNd: boolean;
  /** Files smaller than this (bytes) are sent plain. */
  compressionThreshold: number;
}
// ---------------------------------------------------------------------------------------------

export interface HubConfig {
  /** Section name as written (case kept for display); `key` is lower-cased. */
  name: string;
  key: string;
  address: FtnAddress;
  host: string;
  port: number;
  /** undefined = no password (sends `-`). */
  password?: string | undefined;
  /** Our AKAs presented to this hub. */
  ourAddresses: FtnAddress[];
  pollFrequency: number;
  useCram: boolean;
  nrMode: boolean;
  /** BSO root for this hub's domain (its default zone is `address.zone`). */
  outbound: string;
  /** True when `outbound` came from the hub section rather than [node]. */
  outboundOverride: boolean;
  retryBase: number;
  retryMax: number;
  maxRetries: number;
  holdTime: number;
  /** Bytes/s for this hub; undefined = the global limit only. */
  bandwidthLimit?: number | undefined;
  onSuccess?: string | undefined;
  onFailure?: string | undefined;
  /** Protocol extensions for this hub: [performance] with this section's overrides. */
  extensions: ExtensionConfig;
  /** Issue 12: where the hub's host comes from and how it is reached. */
  reach: HubReach;
  /** Line of the section header in the file, for messages. */
  line: number;
}

// ---------------------------------------------------------------------------------------------
// Issue 12: reaching hubs (src/net/). Keys readable in [poller] as defaults and per hub.

/** Where a hub's host may come from, tried in the order of `lookup`. */
export type LookupSource = 'config' | 'nodelist' | 'dns';
/** `tls`: plain binkp, binkps falling back to plain when the hub has no TLS, or binkps only. */
export type TlsMode = 'no' | 'yes' | 'required';
/** 0 = any family (both raced), else only IPv4 or only IPv6. */
export type IpFamily = 0 | 4 | 6;

export interface HostSpec {
  host: string;
  /** undefined = the default port (24554, or 24553 with TLS). */
  port?: number | undefined;
}

export interface ProxySpec {
  kind: 'socks5' | 'http';
  host: string;
  port: number;
  user?: string | undefined;
  password?: string | undefined;
  /** `socks5://host:port`, without the credentials, for messages. */
  label: string;
}

export interface ReachDefaults {
  lookup: LookupSource[];
  dnsRoot: string;
  connectAttemptDelay: number;
  ipFamily: IpFamily;
  tls: TlsMode;
  tlsCa?: string | undefined;
  tlsInsecure: boolean;
  proxy?: ProxySpec | undefined;
  bindAddress?: string | undefined;
}

export interface HubReach extends ReachDefaults {
  /** From hub_hostname / binkp, in order; empty when absent or `*` (then `lookup` decides). */
  hosts: HostSpec[];
  /** `hub_port`: the port of every host that names none (config or looked up); else the default. */
  port?: number | undefined;
  /** Nodelist file or glob (absolute), from the hub or [node]. */
  nodelist?: string | undefined;
  /** SHA-256 of the hub's certificate, lower-case hex without colons. */
  tlsFingerprint?: string | undefined;
}

export interface Config {
  /** Absolute path of the file this came from. */
  file: string;
  node: NodeConfig;
  poller: PollerConfig;
  performance: PerformanceConfig;
  hubs: HubConfig[];
  /** Non-fatal findings (unknown keys, ignored keys): one line each, naming file, section, key. */
  warnings: string[];
  /** Keys set by FNPOLL_<SECTION>_<KEY> variables, one line each (config/env.ts). */
  overrides?: string[] | undefined;
}
