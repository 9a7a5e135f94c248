/**
 * Where a hub is, by the nodelist (FTS-5000 format, FTS-5001 flags).
 *
 * A full FidoNet nodelist is ~1 MB and ~30 000 lines, and a run asks it for a few hubs at most.
 * So the file is scanned once per version into an index (address → byte offset and line), kept
 * beside the state file and keyed by the list's path, size and mtime; later runs read the index
 * and then only the lines they need. An idle run never opens any of it: lookups happen when a hub
 * is called (or shown by `check`/`status`).
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { formatAddress, tryParseAddress, type FtnAddress } from '../ftn/address.js';
import type { HostSpec } from '../config/types.js';
import { isHostName, isIPv4Text, isIPv6Text } from '../config/load.js';
import { errorText } from '../errors.js';

/** FTS-5000 §5.2: keywords of the lines a caller cares about (case as written in the list). */
export type NodelistKeyword = '' | 'Zone' | 'Region' | 'Host' | 'Hub' | 'Pvt' | 'Hold' | 'Down' | 'Boss' | 'Point';

export interface NodelistEntry {
  keyword: NodelistKeyword | string;
  /** FTS-5000 field 3: system name (underscores stand for spaces). */
  name: string;
  /** Field 6: phone, `-Unpublished-`, or (by convention) an IP address. */
  phone: string;
  /** Fields 8 and on. */
  flags: string[];
  /** 1-based line in the file. */
  line: number;
}

/** What the nodelist says about one address. */
export type NodelistAnswer =
  | { ok: true; hosts: HostSpec[]; entry: NodelistEntry; file: string }
  | { ok: false; why: 'absent' | 'down' | 'hold' | 'unreachable' | 'no-ip'; message: string; file?: string | undefined };

/** Longest nodelist line we read through the index; FTS-5000 §4 allows 157 characters. */
const MAX_LINE = 1024;
const INDEX_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// Pure: lines and flags

/** 4D key of an address as the index stores it: `2:5020/1`, `2:5020/1.3` for points. */
export function nodeKey(a: FtnAddress): string {
  return `${a.zone}:${a.net}/${a.node}${a.point ? `.${a.point}` : ''}`;
}

/** Split one nodelist line into its fields; undefined for comments, blank and EOF (^Z) lines. */
export function parseLine(text: string, line: number): (NodelistEntry & { number: number }) | undefined {
  const t = text.replace(/[\r\x1a]+$/, '');
  if (t === '' || t.startsWith(';')) return undefined;
  const f = t.split(',');
  const number = fieldNumber(f[1] ?? '');
  if (f.length < 7 || number === undefined) return undefined;
  return {
    keyword: f[0]!,
    number,
    name: f[2] ?? '',
    phone: f[5] ?? '',
    flags: f.slice(7).filter((x) => x !== ''),
    line,
  };
}

/**
 * Scan a whole list: address → [byte offset, line]. Zone, Region and Host lines open a branch
 * (FTS-5000 §5.2); every other keyword is a node of the current net. `Boss,z:n/f` + `Point` lines
 * (FTS-5002 point lists) give points. `text` must be latin1-decoded so offsets are bytes.
 */
export function indexText(text: string): Map<string, [number, number]> {
  const index = new Map<string, [number, number]>();
  let zone = 0;
  let net = 0;
  let boss: string | undefined;
  let offset = 0;
  let line = 0;
  while (offset < text.length) {
    let end = text.indexOf('\n', offset);
    if (end === -1) end = text.length;
    line++;
    const s = text.slice(offset, end);
    const start = offset;
    offset = end + 1;
    if (s === '' || s.charCodeAt(0) === 59 /* ; */) continue;
    const comma = s.indexOf(',');
    if (comma === -1) continue;
    const keyword = s.slice(0, comma).toLowerCase();
    const comma2 = s.indexOf(',', comma + 1);
    const numText = comma2 === -1 ? s.slice(comma + 1) : s.slice(comma + 1, comma2);
    if (keyword === 'boss') {
      // FTS-5002: `Boss,z:n/f`; anything else ends the point section rather than naming one.
      const a = tryParseAddress(numText.trim().replace(/@.*$/, ''));
      boss = a && !a.point ? nodeKey(a) : undefined;
      continue;
    }
    const number = fieldNumber(numText);
    if (number === undefined) continue;
    let key: string;
    if ((keyword === 'zone' || keyword === 'region' || keyword === 'host') && number === 0) continue;
    if (keyword === 'zone') {
      zone = number;
      net = number;
      boss = undefined;
      key = `${zone}:${net}/0`;
    } else if (keyword === 'region' || keyword === 'host') {
      net = number;
      boss = undefined;
      key = `${zone}:${net}/0`;
    } else if (keyword === 'point') {
      // A point outside a Boss section belongs to nobody we could call.
      if (!boss) continue;
      key = `${boss}.${number}`;
    } else {
      key = `${zone}:${net}/${number}`;
    }
    // A line too short to be an entry (parseLine wants 7 fields) still moves the zone or net, but
    // is not indexed: it would shadow a good entry for the same node further down.
    if (zone && !index.has(key) && hasFields(s, 7)) index.set(key, [start, line]);
  }
  return index;
}

/** The number field of a line: digits only, 0..32767 (FRL-1002 ranges), else undefined. */
function fieldNumber(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d{1,5}$/.test(t)) return undefined;
  const n = Number(t);
  return n <= 32767 ? n : undefined;
}

/** Whether `s` has at least `n` comma-separated fields. */
function hasFields(s: string, n: number): boolean {
  for (let at = -1, seen = 1; ; seen++) {
    if (seen >= n) return true;
    at = s.indexOf(',', at + 1);
    if (at === -1) return false;
  }
}

const validPort = (n: number): boolean => n >= 1 && n <= 65535;

/** `host`, `host:port`, `:port`, `port`, `[v6]`, `[v6]:port` of an IBN/INA flag value. */
function flagHost(value: string): HostSpec | undefined {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (v6) return isIPv6Text(v6[1]!) && (!v6[2] || validPort(Number(v6[2]))) ? { host: v6[1]!, port: v6[2] ? Number(v6[2]) : undefined } : undefined;
  if (/^\d+$/.test(value)) return validPort(Number(value)) ? { host: '', port: Number(value) } : undefined;
  const [host, port, ...rest] = value.split(':');
  if (rest.length || (port !== undefined && !(/^\d+$/.test(port) && validPort(Number(port))))) return undefined;
  // The list is text from outside: a "host" that is no host name (control characters, spaces)
  // is ignored rather than looked up or shown.
  if (host !== '' && !isHostName(host!)) return undefined;
  return { host: host!, port: port ? Number(port) : undefined };
}

/** A system name that is a host name (`bbs.example.org`), as some nodes list themselves. */
function nameHost(name: string): string | undefined {
  return /^(?=.*[a-z])[a-z0-9-]+(?:\.[a-z0-9-]+)+$/i.test(name) && /\.[a-z]{2,}$/i.test(name) ? name : undefined;
}

/** An IP in the phone field: `192.0.2.1`, `000-192-0-2-1` (the IP-as-phone convention), `[v6]`. */
function phoneHost(phone: string): string | undefined {
  const p = phone.trim();
  if (isIPv4Text(p)) return p;
  const dashed = /^000-(\d+)-(\d+)-(\d+)-(\d+)$/.exec(p);
  if (dashed && isIPv4Text(dashed.slice(1).join('.'))) return dashed.slice(1).join('.');
  const v6 = /^\[([^\]]+)\]$/.exec(p);
  return v6 && isIPv6Text(v6[1]!) ? v6[1] : undefined;
}

/**
 * Hosts to call, in the order FTS-5001 and FTS-5004 §4 give: each IBN flag's own host, else the
 * INA hosts, else an IP in the phone field, else a host name in the system-name field. Ports come
 * from the IBN flag (default: none, the caller's default). A list with INA but no IBN is called on
 * the default port; one with neither has no way in.
 */
export function hostsOf(entry: NodelistEntry): HostSpec[] {
  const ibn: HostSpec[] = [];
  const ina: string[] = [];
  for (const flag of entry.flags) {
    const colon = flag.indexOf(':');
    const name = (colon === -1 ? flag : flag.slice(0, colon)).toUpperCase();
    const value = colon === -1 ? '' : flag.slice(colon + 1);
    if (name === 'IBN') {
      const h = value === '' ? { host: '' } : flagHost(value);
      if (h) ibn.push(h);
    } else if (name === 'INA' && value !== '') {
      const h = flagHost(value);
      if (h?.host) ina.push(h.host);
    }
  }
  if (ibn.length === 0 && ina.length === 0) return [];
  const fallback = ina.length ? ina : [phoneHost(entry.phone) ?? nameHost(entry.name)].filter((h): h is string => !!h);
  const out: HostSpec[] = [];
  const seen = new Set<string>();
  const add = (host: string, port: number | undefined): void => {
    const key = `${host}|${port}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ host, port });
    }
  };
  for (const f of ibn.length ? ibn : [{ host: '', port: undefined }]) {
    if (f.host) add(f.host, f.port);
    else for (const h of fallback) add(h, f.port);
  }
  return out;
}

/** Down/Hold/Pvt rules (FTS-5000 §5.2) applied to an entry; the hosts when it may be called. */
export function judge(entry: NodelistEntry, address: FtnAddress, file: string): NodelistAnswer {
  const where = `${path.basename(file)} line ${entry.line}`;
  const who = formatAddress(address);
  const kw = entry.keyword.toLowerCase();
  if (kw === 'down') {
    return { ok: false, why: 'down', file, message: `${who} is listed as Down in ${where} (not operational): not called; remove the hub or set hub_hostname if you know better` };
  }
  if (kw === 'hold') {
    return { ok: false, why: 'hold', file, message: `${who} is listed as Hold in ${where} (cannot be contacted for now): not called until the nodelist drops Hold, or set hub_hostname` };
  }
  const hosts = hostsOf(entry);
  if (hosts.length === 0) {
    if (kw === 'pvt') {
      return { ok: false, why: 'unreachable', file, message: `${who} is a Pvt node without an IP flag in ${where}: unreachable; set hub_hostname` };
    }
    return { ok: false, why: 'no-ip', file, message: `${who} has no IBN or INA flag in ${where}: set hub_hostname, or lookup = dns` };
  }
  return { ok: true, hosts, entry, file };
}

// ---------------------------------------------------------------------------------------------
// Files: picking the newest list, the cached index

/**
 * `NODELIST.*` → the newest match: by its day-number extension (`.339`; a year wraps, so `.002`
 * after `.360` is newer when they are more than half a year apart), then by mtime. A name without
 * glob characters is used as it is.
 */
export async function pickNodelist(spec: string): Promise<string | undefined> {
  const base = path.basename(spec);
  if (!/[*?]/.test(base)) return spec;
  const dir = path.dirname(spec);
  const re = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => re.test(n));
  const found: { file: string; day: number; mtime: number }[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) continue;
    const ext = /\.(\d{3})$/.exec(name);
    found.push({ file, day: ext ? Number(ext[1]) : -1, mtime: st.mtimeMs });
  }
  if (found.length === 0) return undefined;
  const days = found.map((f) => f.day).filter((d) => d >= 0);
  const wraps = days.length > 1 && Math.max(...days) - Math.min(...days) > 183;
  const rank = (d: number): number => (d < 0 ? -1 : wraps && d < 183 ? d + 366 : d);
  found.sort((a, b) => rank(b.day) - rank(a.day) || b.mtime - a.mtime);
  return found[0]!.file;
}

export interface NodelistOptions {
  /** Where indexes live (beside the state file): `<cacheFile>-<hash of the list's path>`; undefined = none. */
  cacheFile?: string | undefined;
  warn?: (message: string) => void;
}

/**
 * The index file: a header naming the list, its size and mtime, then one `<address> <offset>
 * <line>` per node. A lookup is one string search in it, without parsing the rest: reading and
 * searching ~700 KB costs about a millisecond, where JSON.parse of 30 000 entries would cost more
 * than scanning the list itself.
 */
const INDEX_MAGIC = `fnpoll nodelist index ${INDEX_VERSION}`;

type Finder = (key: string) => [number, number] | undefined;

/** The index of `file`, from the cache when its size and mtime still match, else by a scan. */
async function indexOf(file: string, opts: NodelistOptions): Promise<Finder> {
  const st = await stat(file);
  const header = `${INDEX_MAGIC}\t${st.size}\t${st.mtimeMs}\t${file}\n`;
  const cachePath = opts.cacheFile ? `${opts.cacheFile}-${createHash('sha1').update(file).digest('hex').slice(0, 8)}` : undefined;
  if (cachePath) {
    const text = await readFile(cachePath, 'latin1').catch(() => '');
    if (text.startsWith(header)) {
      return (key) => {
        const at = text.indexOf(`\n${key} `, header.length - 1);
        if (at === -1) return undefined;
        const [offset, line] = text.slice(at + key.length + 2, text.indexOf('\n', at + 1)).split(' ').map(Number);
        return Number.isSafeInteger(offset) && Number.isSafeInteger(line) ? [offset!, line!] : undefined;
      };
    }
  }
  const index = indexText(await readFile(file, 'latin1'));
  if (cachePath) {
    const lines = [header.slice(0, -1)];
    for (const [key, [offset, line]] of index) lines.push(`${key} ${offset} ${line}`);
    try {
      const { default: writeFileAtomic } = await import('write-file-atomic');
      await writeFileAtomic(cachePath, `${lines.join('\n')}\n`, { encoding: 'latin1' });
    } catch (err) {
      opts.warn?.(`cannot write the nodelist index ${cachePath}: ${errorText(err)}`);
    }
  }
  return (key) => index.get(key);
}

/** Read one line at a byte offset (the index says where). */
async function readLineAt(file: string, offset: number): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_LINE);
    const { bytesRead } = await fh.read(buf, 0, MAX_LINE, offset);
    const text = buf.toString('latin1', 0, bytesRead);
    const nl = text.indexOf('\n');
    return nl === -1 ? text : text.slice(0, nl);
  } finally {
    await fh.close();
  }
}

/** What the nodelist `spec` (a file or glob) says about `address`. Throws on an unreadable file. */
export async function lookupNodelist(spec: string, address: FtnAddress, opts: NodelistOptions = {}): Promise<NodelistAnswer> {
  const file = await pickNodelist(spec);
  if (!file) return { ok: false, why: 'absent', message: `no nodelist matches ${spec}` };
  const find = await indexOf(file, opts);
  const at = find(nodeKey({ ...address, point: address.point ?? 0 }));
  if (!at) return { ok: false, why: 'absent', file, message: `${formatAddress(address)} is not in ${path.basename(file)}` };
  const entry = parseLine(await readLineAt(file, at[0]), at[1]);
  if (!entry) return { ok: false, why: 'absent', file, message: `${formatAddress(address)}: line ${at[1]} of ${path.basename(file)} changed; run again` };
  return judge(entry, address, file);
}
