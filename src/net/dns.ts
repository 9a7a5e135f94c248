/**
 * DNS for hubs: FTS-5004 names (`f1.n5020.z2.binkp.net.`), their SRV records ordered by RFC 2782,
 * and the A/AAAA addresses of a host.
 *
 * With `dns_server` set, every question goes to those servers (node:dns Resolver). Without it,
 * SRV goes to the system's servers (/etc/resolv.conf) and host addresses come from getaddrinfo,
 * so /etc/hosts and nsswitch apply to host names as they do for every other program.
 */
import { createRequire } from 'node:module';
import type { FtnAddress } from '../ftn/address.js';
import type { IpFamily } from '../config/types.js';
import { isHostName, isIPv4Text, isIPv6Text } from '../config/load.js';

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

export interface IpAddress {
  address: string;
  family: 4 | 6;
}

/** What the lookups need from a resolver; tests pass a fake. */
export interface DnsApi {
  resolveSrv(name: string): Promise<SrvRecord[]>;
  /** A and/or AAAA of `host`, per `family` (0 = both). */
  addresses(host: string, family: IpFamily): Promise<IpAddress[]>;
}

/** Error codes that mean "no such name / no such record", as opposed to a failing resolver. */
const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA', 'NXDOMAIN', 'ENONAME']);

export function isNotFound(err: unknown): boolean {
  return NOT_FOUND.has((err as NodeJS.ErrnoException)?.code ?? '');
}

/**
 * FTS-5004 §1: `[p<point>.]f<node>.n<net>.z<zone>.<root>.`, fully qualified with the trailing dot
 * so the resolver's search domains are never appended (binkd omits it: FTN-NOTES §9).
 */
export function fts5004Name(a: FtnAddress, root: string): string {
  const r = root.replace(/^\.+|\.+$/g, '');
  return `${a.point ? `p${a.point}.` : ''}f${a.node}.n${a.net}.z${a.zone}.${r}.`;
}

/**
 * RFC 2782 "Usage rules": lowest priority first; within one priority, a weighted random order
 * (records of weight 0 get a small chance, placed first as the RFC asks). A single `.` target
 * means "no service here": an empty list.
 */
export function orderSrv(records: SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  if (records.length === 1 && (records[0]!.name === '' || records[0]!.name === '.')) return [];
  const byPriority = new Map<number, SrvRecord[]>();
  for (const r of records) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const out: SrvRecord[] = [];
  for (const prio of [...byPriority.keys()].sort((a, b) => a - b)) {
    const left = [...byPriority.get(prio)!].sort((a, b) => a.weight - b.weight);
    while (left.length) {
      const total = left.reduce((s, r) => s + r.weight, 0);
      const pick = random() * (total + 1);
      let run = 0;
      let i = 0;
      for (; i < left.length - 1; i++) {
        run += left[i]!.weight;
        if (run >= pick) break;
      }
      out.push(left.splice(i, 1)[0]!);
    }
  }
  return out;
}

/** A literal IP needs no lookup. */
export function literal(host: string): IpAddress | undefined {
  if (isIPv4Text(host)) return { address: host, family: 4 };
  if (isIPv6Text(host)) return { address: host, family: 6 };
  return undefined;
}

/**
 * node:dns's promises, loaded at the first lookup: a hub given by IP address needs none, and
 * loading it (and making a resolver) cost every session run ~1 ms before the dial.
 */
function dnsPromises(): typeof import('node:dns').promises {
  return (createRequire(import.meta.url)('node:dns') as typeof import('node:dns')).promises;
}

/** The resolver fnpoll uses: `servers` from `dns_server`, or the system's. Made at its first use. */
export async function systemDns(servers?: string[]): Promise<DnsApi> {
  let made: import('node:dns').promises.Resolver | undefined;
  const resolverOf = (): import('node:dns').promises.Resolver => {
    if (made) return made;
    const resolver = new (dnsPromises().Resolver)({ timeout: 5000, tries: 2 });
    // `dns_server` items (`ip`, `ip:port`, `[v6]:port`) are in the form setServers() takes.
    if (servers?.length) resolver.setServers(servers);
    return (made = resolver);
  };
  const byResolver = async (host: string, family: IpFamily): Promise<IpAddress[]> => {
    const ask = async (fam: 4 | 6): Promise<IpAddress[]> => {
      try {
        const list = fam === 4 ? await resolverOf().resolve4(host) : await resolverOf().resolve6(host);
        return list.map((address) => ({ address, family: fam }));
      } catch (err) {
        if (isNotFound(err)) return [];
        throw err;
      }
    };
    const [v6, v4] = await Promise.all([family === 4 ? [] : ask(6), family === 6 ? [] : ask(4)]);
    const all = [...v6, ...v4];
    if (all.length === 0) throw Object.assign(new Error(`${host}: no A or AAAA record`), { code: 'ENOTFOUND' });
    return all;
  };
  const byLookup = async (host: string, family: IpFamily): Promise<IpAddress[]> => {
    const list = await dnsPromises().lookup(host, { all: true, family, verbatim: true });
    return list.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
  };
  return {
    resolveSrv: async (name) => resolverOf().resolveSrv(name),
    addresses: (host, family) => {
      const lit = literal(host);
      if (lit) return Promise.resolve(family === 0 || family === lit.family ? [lit] : []);
      return servers?.length ? byResolver(host, family) : byLookup(host, family);
    },
  };
}

/**
 * FTS-5004 §3: SRV `_binkp._tcp.<name>` first (targets and ports in RFC 2782 order); without
 * one, the name itself on the default port, if it has an A or AAAA record. Resolves `[]` when
 * the name does not exist; a failing resolver rejects.
 */
export async function lookupFts5004(
  name: string,
  api: DnsApi,
  family: IpFamily,
  random?: () => number,
): Promise<{ host: string; port?: number | undefined }[]> {
  let srv: SrvRecord[] = [];
  try {
    srv = await api.resolveSrv(`_binkp._tcp.${name}`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  // A target that is no host name (an answer from outside) is not used, nor shown.
  const usable = srv.filter((r) => r.name === '.' || isHostName(r.name));
  if (usable.length) return orderSrv(usable, random).map((r) => ({ host: r.name, port: r.port }));
  try {
    const addrs = await api.addresses(name, family);
    return addrs.length ? [{ host: name }] : [];
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}
