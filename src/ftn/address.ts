/**
 * FTN addresses: `zone:net/node[.point][@domain]` [FRL-1002 §2; FTS-5001 for ranges].
 * Pure functions, no I/O.
 */

export interface FtnAddress {
  zone: number;
  net: number;
  node: number;
  point: number;
  /** Lower-cased domain, or undefined for a 4D address. */
  domain?: string | undefined;
}

const ADDRESS_RE = /^(\d{1,5}):(\d{1,5})\/(\d{1,5})(?:\.(\d{1,5}))?(?:@([A-Za-z0-9][A-Za-z0-9._-]{0,63}))?$/;

/** FRL-1002: zone and net 1-32767, node and point 0-32767. */
const MAX_PART = 32767;

/** Parse an address, or return undefined when `text` is not one. */
export function tryParseAddress(text: string): FtnAddress | undefined {
  const m = ADDRESS_RE.exec(text.trim());
  if (!m) return undefined;
  const zone = Number(m[1]);
  const net = Number(m[2]);
  const node = Number(m[3]);
  const point = m[4] === undefined ? 0 : Number(m[4]);
  if (zone < 1 || zone > MAX_PART || net < 1 || net > MAX_PART) return undefined;
  if (node > MAX_PART || point > MAX_PART) return undefined;
  return { zone, net, node, point, domain: m[5]?.toLowerCase() };
}

/** Parse an address or throw a TypeError naming the bad text. */
export function parseAddress(text: string): FtnAddress {
  const a = tryParseAddress(text);
  if (!a) throw new TypeError(`"${text}" is not an FTN address (zone:net/node[.point][@domain])`);
  return a;
}

/** `2:5020/1.2@fidonet`; point omitted when 0, domain omitted when absent or `withDomain` is false. */
export function formatAddress(a: FtnAddress, withDomain = true): string {
  let s = `${a.zone}:${a.net}/${a.node}`;
  if (a.point) s += `.${a.point}`;
  if (withDomain && a.domain) s += `@${a.domain}`;
  return s;
}

/**
 * Same node? Domains compare case-insensitively and only when both sides carry one
 * (a 4D address matches the same 4D address in any domain, as binkd does).
 */
export function sameAddress(a: FtnAddress, b: FtnAddress): boolean {
  if (a.zone !== b.zone || a.net !== b.net || a.node !== b.node || a.point !== b.point) return false;
  return !a.domain || !b.domain || a.domain.toLowerCase() === b.domain.toLowerCase();
}

/** A stable key for maps: 4D, no domain. */
export function addressKey(a: FtnAddress): string {
  return formatAddress(a, false);
}

/**
 * Parse the argument of an M_ADR frame: addresses separated by spaces (binkd's starts with a
 * space). Tokens that are not addresses are returned in `bad`.
 */
export function parseAddressList(text: string): { addresses: FtnAddress[]; bad: string[] } {
  const addresses: FtnAddress[] = [];
  const bad: string[] = [];
  for (const token of text.split(/\s+/)) {
    if (!token) continue;
    const a = tryParseAddress(token);
    if (a) addresses.push(a);
    else bad.push(token);
  }
  return { addresses, bad };
}
