/**
 * Where a hub's host comes from: the hosts in `hub_hostname`, else the sources of `lookup`
 * (default `config,nodelist,dns`) in order, the first one that knows the hub winning. The answer
 * names its source, so `check`, `status`, the session line and the state can say who said so.
 */
import path from 'node:path';
import type { Config, HubConfig } from '../config/types.js';
import type { FailureKind } from '../errors.js';
import { errorText } from '../errors.js';
import { formatAddress } from '../ftn/address.js';
import { DEFAULT_BINKP_PORT, DEFAULT_BINKPS_PORT } from '../config/load.js';
import { fts5004Name, lookupFts5004, type DnsApi } from './dns.js';
import { lookupNodelist } from './nodelist.js';

export interface Candidate {
  host: string;
  /** undefined = the default port (24554, or 24553 with TLS). */
  port?: number | undefined;
  /** `config`, `nodelist NODELIST.339 line 12`, `dns SRV _binkp._tcp.f1.n5020.z2.binkp.net.`. */
  source: string;
}

export type Resolution =
  | { ok: true; candidates: Candidate[] }
  | { ok: false; kind: FailureKind; message: string };

export interface LookupOptions {
  /** The resolver; only asked when the chain reaches `dns`. */
  dns: () => Promise<DnsApi>;
  /** The nodelist index file (beside the state). */
  nodelistCache?: string | undefined;
  /** Skip DNS (status: no network); a hub that needs it gets `{ ok: true, candidates: [] }`. */
  offline?: boolean;
  warn?: (message: string) => void;
  random?: () => number;
}

export async function lookupHub(hub: HubConfig, opts: LookupOptions): Promise<Resolution> {
  const reach = hub.reach;
  if (reach.hosts.length) return { ok: true, candidates: reach.hosts.map((h) => ({ ...h, source: 'config' })) };

  const failures: { kind: FailureKind; message: string; firm: boolean }[] = [];
  for (const source of reach.lookup) {
    if (source === 'nodelist') {
      if (!reach.nodelist) continue;
      try {
        const a = await lookupNodelist(reach.nodelist, hub.address, { cacheFile: opts.nodelistCache, warn: opts.warn });
        if (a.ok) {
          const where = `nodelist ${path.basename(a.file)} line ${a.entry.line}`;
          return { ok: true, candidates: a.hosts.map((h) => ({ ...h, source: where })) };
        }
        // Down and Hold are the list's word on the node: no other source overrules it.
        if (a.why === 'down' || a.why === 'hold' || a.why === 'unreachable') return { ok: false, kind: 'nodelist', message: a.message };
        failures.push({ kind: 'nodelist', message: a.message, firm: a.why === 'no-ip' });
      } catch (err) {
        failures.push({ kind: 'nodelist', message: `cannot read nodelist ${reach.nodelist}: ${errorText(err)}`, firm: true });
      }
    } else if (source === 'dns') {
      if (opts.offline) return { ok: true, candidates: [] };
      const name = fts5004Name(hub.address, reach.dnsRoot);
      try {
        const found = await lookupFts5004(name, await opts.dns(), reach.ipFamily, opts.random);
        if (found.length) {
          const how = found[0]!.port === undefined ? `dns ${name}` : `dns SRV _binkp._tcp.${name}`;
          return { ok: true, candidates: found.map((c) => ({ ...c, source: how })) };
        }
        failures.push({
          kind: 'dns',
          message: `${name} is not in DNS (no SRV, A or AAAA record): check hub_address and dns_root, or set hub_hostname`,
          firm: true,
        });
      } catch (err) {
        failures.push({ kind: 'dns', message: `DNS lookup of ${name} failed: ${errorText(err)} (check dns_server or /etc/resolv.conf)`, firm: true });
      }
    }
  }
  if (failures.length === 0) {
    return {
      ok: false,
      kind: 'dns',
      message: `no host for ${formatAddress(hub.address)}: set hub_hostname, or nodelist, or add dns to lookup`,
    };
  }
  const main = failures.find((f) => f.firm) ?? failures[failures.length - 1]!;
  return { ok: false, kind: main.kind, message: failures.map((f) => f.message).join('; ') };
}

/** `host:port` with IPv6 in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The nodelist index lives beside the state file: `state.json` → `state.json.nodelist-index`. */
export function nodelistCacheFile(config: Config): string {
  return `${config.poller.stateFile}.nodelist-index`;
}

/**
 * One line for `check` and `status`: `hub.example:24554 (config)`, `a:24554, b:24555 (nodelist
 * NODELIST.339 line 12)`, `dns (asked when called)`, or what is wrong.
 */
export function resolutionText(hub: HubConfig, r: Resolution): string {
  if (!r.ok) return `${r.kind}: ${r.message}`;
  if (r.candidates.length === 0) return `dns ${hub.reach.dnsRoot} (asked when called)`;
  const defaultPort = hub.reach.tls === 'no' ? DEFAULT_BINKP_PORT : DEFAULT_BINKPS_PORT;
  const sources = [...new Set(r.candidates.map((c) => c.source))];
  return `${r.candidates.map((c) => hostPort(c.host, c.port ?? hub.reach.port ?? defaultPort)).join(', ')} (${sources.join('; ')})`;
}
