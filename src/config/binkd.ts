/**
 * `fnpoll import binkd.cfg`: reads a binkd configuration and writes the equivalent fnpoll.ini.
 * Pure apart from `read` (passed in, for `include`): binkd text in, INI text plus one line per
 * thing that has no counterpart out.
 *
 * What carries over (binkd.cfg as documented in Debian's /etc/binkd/binkd.cfg, binkd 1.1):
 *   address, sysname, sysop, location, nodeinfo         -> [node]
 *   domain <name> <outbound> <zone> (and alias-for)     -> [node] outbound, hub `outbound`
 *   inbound, inbound-nonsecure, temp-inbound, minfree   -> [node] / [poller]
 *   try/hold, timeout, connect-timeout, maxclients,
 *   kill-old-partial-files, kill-old-bsy, limit-rate    -> [poller] / [performance]
 *   node lines with a host (the hubs we call):
 *     address, host[:port] (`*` = binkp.net DNS name), password (the outgoing one),
 *     -md, -nr, -nd, -crypt, -bw                        -> one hub section each
 *   include <file>                                      -> read in place
 *   passwords <file>                                    -> the password of node lines without one
 * Node lines without a host are links that call us: fnpoll only calls, so they are dropped.
 */
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { addressKey, formatAddress, type FtnAddress } from '../ftn/address.js';
import { formatTime } from '../format.js';

export interface BinkdImport {
  /** The fnpoll.ini text. */
  ini: string;
  /** One line per binkd setting that was dropped or changed meaning, naming file:line. */
  dropped: string[];
}

export interface ImportOptions {
  /** Reads an `include`d file (and the main one); throws when it cannot. */
  read: (file: string) => string;
  /** Keys the hub sections accept in this fnpoll (config/load.ts HUB_KEYS). */
  hubKeys: readonly string[];
  now?: number;
}

/** binkd's default port (`oport binkp`). */
const BINKP_PORT = 24554;
/** binkd's `root-domain` default, for `*` in a node's host list. */
const ROOT_DOMAIN = 'binkp.net';
/** An `include` nested deeper than this is a loop. */
const MAX_INCLUDE_DEPTH = 16;

interface Line {
  file: string;
  line: number;
  words: string[];
}

interface Domain {
  name: string;
  outbound: string;
  zone: number;
}

/**
 * binkd's tokens: whitespace-separated words, `"..."` quotes a word with spaces, `#` at the start
 * of a word starts a comment, and `\\` stands for one backslash (binkd.cfg writes DOS paths so).
 */
export function binkdWords(text: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length || text[i] === '#') break;
    let word = '';
    let quoted = false;
    while (i < text.length && (quoted || !/\s/.test(text[i]!))) {
      const c = text[i]!;
      if (c === '"') quoted = !quoted;
      else if (c === '\\' && text[i + 1] === '\\') {
        word += '\\';
        i++;
      } else word += c;
      i++;
    }
    words.push(word);
  }
  return words;
}

function readLines(file: string, opts: ImportOptions, depth: number, out: Line[], problems: string[]): void {
  let text: string;
  try {
    text = opts.read(file);
  } catch (err) {
    problems.push(`${file}: cannot read: ${(err as Error).message}`);
    return;
  }
  text.split(/\r?\n/).forEach((raw, i) => {
    const words = binkdWords(raw);
    if (words.length === 0) return;
    if (words[0]!.toLowerCase() === 'include') {
      const target = words[1];
      if (target === undefined) problems.push(`${file}:${i + 1}: include: no file named`);
      else if (depth >= MAX_INCLUDE_DEPTH) problems.push(`${file}:${i + 1}: include ${target}: nested too deep (a loop?)`);
      // binkd opens a relative include from its working directory; the including file's
      // directory is what a sysop means when binkd runs from there (the usual case).
      else readLines(path.resolve(path.dirname(file), target), opts, depth + 1, out, problems);
      return;
    }
    out.push({ file, line: i + 1, words });
  });
}

/** binkd durations: `600`, `10m`, `1d12h` -> seconds; undefined when malformed. */
export function binkdSeconds(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const re = /(\d+)([dhms])/gy;
  let total = 0;
  let at = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * { d: 86400, h: 3600, m: 60, s: 1 }[m[2] as 'd' | 'h' | 'm' | 's'];
    at = re.lastIndex;
  }
  return at === text.length && at > 0 ? total : undefined;
}

/** binkd rates (`limit-rate`, `-bw`): `1024`, `10k`, `1M` -> bytes/s; `%` and `-` are not rates. */
function binkdRate(text: string): number | undefined {
  const m = /^(\d+)([kM]?)$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * (m[2] === 'k' ? 1024 : m[2] === 'M' ? 1024 * 1024 : 1);
}

/** `z:n/f[.p][@domain]`, `n/f[.p]` or `f[.p]`, the missing parts from `base` (binkd's own rule). */
function parsePartialAddress(text: string, base: FtnAddress | undefined): FtnAddress | undefined {
  const m = /^(?:(?:(\d+):)?(\d+)\/)?(\d+)(?:\.(\d+))?(?:@([A-Za-z0-9._-]+))?$/.exec(text);
  if (!m) return undefined;
  const zone = m[1] !== undefined ? Number(m[1]) : base?.zone;
  const net = m[2] !== undefined ? Number(m[2]) : base?.net;
  if (zone === undefined || net === undefined) return undefined;
  return { zone, net, node: Number(m[3]), point: m[4] === undefined ? 0 : Number(m[4]), domain: m[5]?.toLowerCase() };
}

/** binkd's `*` host: `p4.f3.n2.z1.binkp.net` for 1:2/3.4. */
function binkpNetHost(a: FtnAddress, root: string): string {
  return `${a.point ? `p${a.point}.` : ''}f${a.node}.n${a.net}.z${a.zone}.${root}`;
}

/** A value as the INI reader reads it back verbatim: quoted when it would be cut or trimmed. */
function iniValue(v: string): string {
  return /\s[;#]/.test(v) || v.startsWith('"') || v !== v.trim() || v.startsWith(';') || v.startsWith('#') ? `"${v}"` : v;
}

const DROPPED_KEYWORDS: Readonly<Record<string, string>> = {
  log: 'fnpoll writes its own log ([poller] log_file)',
  loglevel: 'fnpoll has log_level (debug/info/warning/error) and --verbose/--debug',
  conlog: 'fnpoll prints to the terminal only what --quiet/--verbose ask for',
  'pid-file': 'fnpoll runs from cron and keeps no pid file; its run lock is state_file.lock',
  iport: 'fnpoll only calls; it does not listen',
  listen: 'fnpoll only calls; it does not listen',
  maxservers: 'fnpoll only calls; it does not listen',
  'call-delay': 'cron (or the systemd timer) decides when fnpoll runs; poll_frequency how often a hub is called',
  'rescan-delay': 'cron (or the systemd timer) decides when fnpoll runs',
  percents: 'fnpoll shows a progress line on a terminal by itself',
  printq: 'use `fnpoll status`',
  prescan: 'fnpoll always announces the whole batch before sending',
  'send-if-pwd': 'fnpoll calls only configured hubs, with their passwords',
  'hold-skipped': 'fnpoll leaves skipped files in the outbound for the next call',
  'minfree-nonsecure': 'fnpoll has one minfree for both inbounds',
  'kill-dup-partial-files': 'fnpoll keeps one partial per file and resumes it',
  'remove-try-files': 'fnpoll writes .try files only with binkd_try_files = yes and replaces them itself',
  'inbound-user': 'fnpoll does not change the owner of received files',
  exec: 'use on_success / on_run_end hooks (README "Hooks")',
  ftrans: 'fnpoll uses the paths in flow files as they are',
  share: 'no shared AKAs in fnpoll',
  skip: 'fnpoll receives every file the hub offers (minfree still refuses what would fill the disk)',
  'check-pkthdr': 'the tosser checks packet headers',
  defnode: 'fnpoll calls only the hubs in its config',
  'root-domain': 'used only to resolve `*` hosts when the file is imported',
  oblksize: 'fnpoll sends 32767-byte frames ([performance] buffer_size)',
  bindaddr: 'fnpoll lets the system pick the source address',
  proxy: 'no proxy support in fnpoll yet',
  socks: 'no SOCKS support in fnpoll yet',
  tzoff: 'fnpoll takes the time zone from the system',
};

/** binkd.cfg text (and its includes) -> fnpoll.ini text plus what was dropped. */
export function importBinkd(file: string, opts: ImportOptions): BinkdImport {
  const problems: string[] = [];
  const lines: Line[] = [];
  readLines(path.resolve(file), opts, 0, lines, problems);
  if (problems.length) throw new ConfigError(problems);

  const dropped: string[] = [];
  const where = (l: Line): string => `${l.file}:${l.line}`;
  const drop = (l: Line, why: string): void => {
    dropped.push(`${where(l)}: ${l.words[0]}: dropped: ${why}`);
  };

  const domains: Domain[] = [];
  const aliases = new Map<string, string>();
  const ours: FtnAddress[] = [];
  const nodeKeys: [string, string][] = [];
  const poller: [string, string][] = [];
  const performance: [string, string][] = [];
  const nodeLines: Line[] = [];
  let oport = BINKP_PORT;
  let root = ROOT_DOMAIN;
  const passwordFiles: Line[] = [];

  const setNode = (key: string, value: string): void => {
    const at = nodeKeys.findIndex(([k]) => k === key);
    if (at >= 0) nodeKeys[at] = [key, value];
    else nodeKeys.push([key, value]);
  };
  const seconds = (l: Line, key: string, into: [string, string][]): void => {
    const s = binkdSeconds(l.words[1] ?? '');
    if (s === undefined) drop(l, `"${l.words[1] ?? ''}" is not a duration`);
    else into.push([key, `${s}s`]);
  };

  // Two passes: node lines need every domain, address and oport, wherever they stand in the file.
  for (const l of lines) {
    const [kw, ...args] = l.words;
    switch (kw!.toLowerCase()) {
      case 'domain':
        if (args[1]?.toLowerCase() === 'alias-for' && args[2]) aliases.set(args[0]!.toLowerCase(), args[2].toLowerCase());
        else if (args.length >= 3 && /^\d+$/.test(args[2]!)) {
          domains.push({ name: args[0]!.toLowerCase(), outbound: args[1]!, zone: Number(args[2]) });
          if (args[3]) dropped.push(`${where(l)}: domain ${args[0]}: root domain "${args[3]}" dropped: only used for \`*\` hosts`);
        } else drop(l, 'expected `domain <name> <outbound> <zone>` or `domain <name> alias-for <name>`');
        break;
      case 'address':
        for (const a of args) {
          const parsed = parsePartialAddress(a, ours[0]);
          if (parsed) ours.push(parsed);
          else dropped.push(`${where(l)}: address "${a}": dropped: not an FTN address`);
        }
        break;
      case 'oport':
        if (/^\d+$/.test(args[0] ?? '')) oport = Number(args[0]);
        else if (args[0] !== 'binkp') drop(l, `"${args[0] ?? ''}": fnpoll needs a port number`);
        break;
      case 'root-domain':
        if (args[0]) root = args[0];
        break;
      case 'passwords':
        passwordFiles.push(l);
        break;
      default:
        break;
    }
  }
  const domainOf = (a: FtnAddress): Domain | undefined => {
    if (a.domain !== undefined) {
      const name = aliases.get(a.domain) ?? a.domain;
      return domains.find((d) => d.name === name);
    }
    return domains.find((d) => d.zone === a.zone) ?? domains[0];
  };
  const withDomain = (a: FtnAddress): FtnAddress => ({ ...a, domain: domainOf(a)?.name ?? a.domain });
  const filePasswords = readPasswordFiles(passwordFiles, opts, (a) => parsePartialAddress(a, ours[0]), withDomain, dropped);

  for (const l of lines) {
    const [kwRaw, ...args] = l.words;
    const kw = kwRaw!.toLowerCase();
    const one = args.join(' ');
    switch (kw) {
      case 'domain':
      case 'address':
      case 'oport':
      case 'passwords':
        break;
      case 'root-domain':
        drop(l, DROPPED_KEYWORDS['root-domain']!);
        break;
      case 'sysname':
        setNode('system', one);
        break;
      case 'sysop':
        setNode('sysop', one);
        break;
      case 'location':
        setNode('location', one);
        break;
      case 'nodeinfo':
        setNode('nodeinfo', one);
        break;
      case 'inbound':
        setNode('inbound', one);
        break;
      case 'inbound-nonsecure':
        setNode('inbound_insecure', one);
        break;
      case 'temp-inbound':
        setNode('temp_inbound', one);
        break;
      case 'minfree':
        // binkd counts KiB; 0 and 2^32-1 mean no limit.
        if (/^\d+$/.test(args[0] ?? '')) {
          const kib = Number(args[0]);
          if (kib > 0 && kib < 4294967295) poller.push(['minfree', `${kib}k`]);
        } else drop(l, `"${args[0] ?? ''}" is not a number of KiB`);
        break;
      case 'try':
        if (/^\d+$/.test(args[0] ?? '')) poller.push(['max_retries', args[0]!]);
        else drop(l, `"${args[0] ?? ''}" is not a count`);
        break;
      case 'hold':
        seconds(l, 'hold_time', poller);
        break;
      case 'timeout':
        seconds(l, 'idle_timeout', poller);
        break;
      case 'connect-timeout':
        seconds(l, 'connect_timeout', poller);
        break;
      case 'kill-old-partial-files':
        seconds(l, 'partial_max_age', poller);
        break;
      case 'kill-old-bsy':
        seconds(l, 'stale_flag_age', poller);
        break;
      case 'maxclients':
        if (/^[1-9]\d*$/.test(args[0] ?? '')) poller.push(['max_connections', args[0]!]);
        else drop(l, `"${args[0] ?? ''}" is not a count`);
        break;
      case 'limit-rate': {
        const rate = binkdRate(args[0] ?? '');
        if (rate === undefined) drop(l, `"${one}": fnpoll's bandwidth_limit is bytes per second, for all sessions`);
        else performance.push(['bandwidth_limit', String(rate)]);
        break;
      }
      case 'node':
        nodeLines.push(l);
        break;
      default:
        drop(l, DROPPED_KEYWORDS[kw] || 'no counterpart in fnpoll');
    }
  }

  const main = ours[0] ? withDomain(ours[0]) : undefined;
  const mainDomain = main ? domainOf(main) : undefined;
  if (!main) problems.push(`${file}: no \`address\`: fnpoll needs our own address`);
  if (!mainDomain) problems.push(`${file}: no \`domain <name> <outbound> <zone>\`: fnpoll needs the outbound`);
  if (!nodeKeys.some(([k]) => k === 'inbound')) problems.push(`${file}: no \`inbound\`: fnpoll needs the inbound`);
  if (problems.length) throw new ConfigError(problems);

  const hubs = nodeLines.map((l) => importNode(l, { main: main!, withDomain, domainOf, mainDomain: mainDomain!, ours: ours.map(withDomain), oport, root, hubKeys: opts.hubKeys, dropped, filePasswords }));

  const out: string[] = [
    `; fnpoll.ini imported from ${file} by \`fnpoll import\`, ${formatTime(opts.now ?? Date.now())}.`,
    '; binkd -p -P polled every hub on every cron tick. fnpoll calls a hub when mail waits for it,',
    '; and otherwise every poll_frequency (1h by default): see README "Coming from binkd".',
    '',
    '[node]',
    `address = ${formatAddress(main!)}`,
  ];
  const akas = ours.slice(1).map((a) => formatAddress(withDomain(a)));
  if (akas.length) out.push(`aka = ${akas.join(', ')}`);
  out.push(`outbound = ${iniValue(mainDomain!.outbound)}`);
  for (const [k, v] of nodeKeys) out.push(`${k} = ${iniValue(v)}`);
  out.push('', '[poller]', 'state_file = /var/lib/fnpoll/state.json', 'log_file = /var/log/fnpoll/fnpoll.log');
  for (const [k, v] of poller) out.push(`${k} = ${v}`);
  if (performance.length) {
    out.push('', '[performance]');
    for (const [k, v] of performance) out.push(`${k} = ${v}`);
  }
  const names = new Set<string>();
  for (const hub of hubs) {
    if (!hub) continue;
    let name = hub.name;
    for (let n = 2; names.has(name.toLowerCase()); n++) name = `${hub.name}-${n}`;
    names.add(name.toLowerCase());
    out.push('', `[${name}]`, `; ${where(hub.from)}: node ${hub.from.words.slice(1, 2).join(' ')}`, ...hub.lines);
  }
  if (!hubs.some(Boolean)) dropped.push(`${file}: no node line with a host: fnpoll has no hub to call`);
  return { ini: `${out.join('\n')}\n`, dropped };
}

interface NodeContext {
  main: FtnAddress;
  mainDomain: Domain;
  ours: FtnAddress[];
  withDomain: (a: FtnAddress) => FtnAddress;
  domainOf: (a: FtnAddress) => Domain | undefined;
  oport: number;
  root: string;
  hubKeys: readonly string[];
  dropped: string[];
  /** From `passwords` files, by addressKey: used when the node line has none (binkd's rule). */
  filePasswords: Map<string, string>;
}

/** One `node` line -> a hub section, or undefined (with a line in `dropped`) when it is no hub. */
function importNode(l: Line, c: NodeContext): { name: string; lines: string[]; from: Line } | undefined {
  const at = `${l.file}:${l.line}`;
  const args = l.words.slice(1);
  const addrText = args.shift();
  const parsed = addrText === undefined ? undefined : parsePartialAddress(addrText, c.main);
  if (!parsed) {
    c.dropped.push(`${at}: node "${addrText ?? ''}": dropped: not an FTN address`);
    return undefined;
  }
  const address = c.withDomain(parsed);
  const who = `${at}: node ${formatAddress(address)}`;
  const lines: string[] = [`hub_address = ${formatAddress(address)}`];
  const extra: string[] = [];
  const optional = (key: string, value: string, flag: string): void => {
    if (c.hubKeys.includes(key)) extra.push(`${key} = ${value}`);
    else {
      extra.push(`; ${key} = ${value}   ; binkd ${flag}: this fnpoll does not know ${key} yet`);
      c.dropped.push(`${who}: ${flag}: written commented out: this fnpoll has no ${key}`);
    }
  };
  // Flags come first; the rest are positional: hosts, password, flavour, obox, ibox.
  while (args[0]?.startsWith('-') && args[0] !== '-') {
    const flag = args.shift()!;
    switch (flag.toLowerCase()) {
      case '-md':
        extra.push('use_cram = yes');
        break;
      case '-nomd':
        c.dropped.push(`${who}: -nomd: dropped: fnpoll answers a CRAM-MD5 challenge whenever the hub sends one`);
        extra.push('use_cram = no');
        break;
      case '-nr':
        extra.push('nr_mode = yes');
        break;
      case '-nd':
        optional('use_nd', 'yes', '-nd');
        break;
      case '-crypt':
        optional('use_crypt', 'yes', '-crypt');
        break;
      case '-bw': {
        const spec = args.shift() ?? '';
        const rate = binkdRate(spec.split('/')[0]!);
        if (rate === undefined) c.dropped.push(`${who}: -bw ${spec}: dropped: fnpoll's bandwidth_limit is bytes per second`);
        else {
          extra.push(`bandwidth_limit = ${rate}`);
          if (spec.includes('/')) c.dropped.push(`${who}: -bw ${spec}: the receive rate is dropped; fnpoll's limit is one rate for both directions`);
        }
        break;
      }
      case '-pipe':
        c.dropped.push(`${who}: -pipe ${args.shift() ?? ''}: dropped: fnpoll connects over TCP only`);
        break;
      default:
        c.dropped.push(`${who}: ${flag}: dropped: no counterpart in fnpoll`);
    }
  }
  const [hosts, nodePassword, flavour, obox, ibox] = args;
  const password = nodePassword === undefined || nodePassword === '-' ? (c.filePasswords.get(addressKey(address)) ?? nodePassword) : nodePassword;
  if (hosts === undefined || hosts === '-') {
    c.dropped.push(`${who}: dropped: no host, so binkd only answers it; fnpoll only calls hubs`);
    return undefined;
  }
  const list = hosts.split(/[;,]/).filter(Boolean);
  const first = list[0]!;
  if (list.length > 1) c.dropped.push(`${who}: hosts ${list.slice(1).join(';')}: dropped: fnpoll calls one host per hub (${first})`);
  let host: string;
  let port = c.oport;
  if (first === '*') host = binkpNetHost(address, c.root);
  else {
    const m = /^(\[[^\]]+\]|[^:]+|[^\]]*:[^\]]*:[^\]]*)(?::(\d+|binkp))?$/.exec(first);
    host = m?.[1] ?? first;
    if (m?.[2] && m[2] !== 'binkp') port = Number(m[2]);
  }
  lines.push(`binkp = ${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`);
  if (password !== undefined && password !== '-') {
    // `inpwd,pktpwd,outpwd`: binkd sends outpwd when it calls (inpwd when absent).
    const parts = password.split(',');
    const out = parts[2] || parts[0]!;
    if (out.includes('"')) c.dropped.push(`${who}: password: contains a double quote, which fnpoll.ini cannot quote; set it by hand`);
    else lines.push(`password = ${iniValue(out)}`);
    if (parts[1]) c.dropped.push(`${who}: packet password: dropped: packet passwords are the tosser's business`);
  }
  if (flavour !== undefined && flavour !== '-') c.dropped.push(`${who}: flavour ${flavour}: dropped: it applies to the obox, which fnpoll does not have`);
  if (obox !== undefined && obox !== '-') c.dropped.push(`${who}: obox ${obox}: dropped: fnpoll sends from the BSO outbound only`);
  if (ibox !== undefined && ibox !== '-') c.dropped.push(`${who}: ibox ${ibox}: dropped: fnpoll receives into [node] inbound`);

  const domain = c.domainOf(address);
  if (domain && domain !== c.mainDomain) {
    lines.push(`outbound = ${iniValue(domain.outbound)}`);
    const mine = c.ours.filter((a) => a.domain === domain.name);
    if (mine.length) lines.push(`address = ${mine.map((a) => formatAddress(a)).join(', ')}`);
  }
  if (password !== undefined && password !== '-' && !extra.some((e) => e.startsWith('use_cram'))) {
    c.dropped.push(`${who}: no -md: binkd would send the password in plain text to a hub that offers no CRAM-MD5; fnpoll refuses to (use_cram = yes, the default)`);
  }
  lines.push(...extra);
  const name = domain?.name ?? `node-${address.zone}-${address.net}-${address.node}`;
  return { name: address.point ? `${name}-${address.point}` : name, lines, from: l };
}

/**
 * binkd's `passwords` file (t-mail/qico format): `[password] <address> <inpwd>[,[<pktpwd>][,<outpwd>]]`
 * per line. Returns the password field by node, for node lines that give none.
 */
function readPasswordFiles(
  lines: Line[],
  opts: ImportOptions,
  parse: (text: string) => FtnAddress | undefined,
  withDomain: (a: FtnAddress) => FtnAddress,
  dropped: string[],
): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of lines) {
    const file = l.words[1] === undefined ? undefined : path.resolve(path.dirname(l.file), l.words[1]);
    if (file === undefined) continue;
    let text: string;
    try {
      text = opts.read(file);
    } catch (err) {
      dropped.push(`${l.file}:${l.line}: passwords ${file}: dropped: cannot read it: ${(err as Error).message}`);
      continue;
    }
    text.split(/\r?\n/).forEach((raw, i) => {
      const words = binkdWords(raw);
      if (words[0]?.toLowerCase() === 'password') words.shift();
      if (words.length === 0) return;
      const a = parse(words[0]!);
      if (!a || words[1] === undefined) {
        dropped.push(`${file}:${i + 1}: dropped: expected \`<address> <password>\``);
        return;
      }
      out.set(addressKey(withDomain(a)), words[1]);
    });
  }
  return out;
}
