/**
 * Where a hub's BSO files live and whether its control files forbid a call. Light on purpose: an
 * idle run needs this and nothing of the protocol stack.
 */
import type { Config, HubConfig } from '../config/types.js';
import type { BsoLayout } from '../bso/types.js';
import { basename, dirname, resolve } from 'node:path';
import { formatAddress, type FtnAddress } from '../ftn/address.js';
import { nodeBase, type OutboundDirCache } from '../bso/outbound.js';
// ../bso/flags.js (and node:crypto behind it) is imported where a flag file exists: an idle run
// over a clean outbound never needs it.

/**
 * The BSO tree that holds a hub's mail (FTS-5005 §2). binkd's rule: every domain has one outbound
 * root and one default zone (`domain fsxnet /ftn/fsxnet 21`); that zone's files live in the root
 * itself, every other zone's in `root.zzz`. fnpoll has no key for the default zone, so it is
 * derived, the same way for every hub that shares a root (or two hubs would disagree about where
 * a zone's files are):
 * - `[node] outbound` (also when a hub names it again): the zone of our main address;
 * - another root: the zone of our first address in the domain of the first hub (in file order)
 *   that uses the root, taken from those hubs' `address` keys and then from `[node]`;
 *   without such an address (4D configurations), the zone of that first hub.
 */
export function hubLayout(config: Config, hub: HubConfig): BsoLayout {
  const root = hub.outboundOverride ? hub.outbound : config.node.outbound;
  return { root, defaultZone: defaultZoneOf(config, root, hub) };
}

/** Per config: the resolved [node] outbound, so that a plan over many hubs resolves it once. */
const nodeRoots = new WeakMap<Config, string>();

function defaultZoneOf(config: Config, root: string, hub: HubConfig): number {
  if (root === config.node.outbound) return config.node.address.zone;
  let nodeRoot = nodeRoots.get(config);
  if (nodeRoot === undefined) {
    nodeRoot = resolve(config.node.outbound);
    nodeRoots.set(config, nodeRoot);
  }
  const key = resolve(root);
  if (key === nodeRoot) return config.node.address.zone;
  const sharing = config.hubs.filter((h) => h.outboundOverride && resolve(h.outbound) === key);
  // A hub missing from config.hubs (a config re-read under a running session) still counts.
  if (!sharing.some((h) => h.key === hub.key)) sharing.push(hub);
  const first = sharing[0]!;
  const domain = first.address.domain?.toLowerCase();
  if (domain) {
    const ours = [...sharing.flatMap((h) => h.ourAddresses), ...config.node.addresses];
    const inDomain = ours.find((a) => a.domain?.toLowerCase() === domain);
    if (inDomain) return inDomain.zone;
  }
  return first.address.zone;
}

/** Which of a hub's control files exist (exact lower-case names, as flags.ts opens them). */
export interface ListedControlFiles {
  bsy: boolean;
  csy: boolean;
  hld: boolean;
}

/**
 * A hub's `.bsy`/`.csy`/`.hld` as a listing of its BSO directory shows them: one readdir per
 * directory for all hubs of a plan (shared with the queue summaries through `dirs`), instead of
 * three failed opens per hub. Only a hub with one of them listed needs hubBusy/hubHeld.
 */
export async function listedControlFiles(layout: BsoLayout, address: FtnAddress, dirs: OutboundDirCache): Promise<ListedControlFiles> {
  const base = nodeBase(layout, address);
  const stem = basename(base);
  const found: ListedControlFiles = { bsy: false, csy: false, hld: false };
  for (const e of (await dirs.list(dirname(base))).get(stem) ?? []) {
    if (e.name === `${stem}.bsy`) found.bsy = true;
    else if (e.name === `${stem}.csy`) found.csy = true;
    else if (e.name === `${stem}.hld`) found.hld = true;
  }
  return found;
}

/** Is someone else in session with, or calling, this hub? Returns why, or undefined. */
export async function hubBusy(config: Config, hub: HubConfig, now: number): Promise<string | undefined> {
  const { flagBusy } = await import('../bso/flags.js');
  const base = nodeBase(hubLayout(config, hub), hub.address);
  const opts = { staleAge: config.poller.staleFlagAge, now: () => now };
  for (const ext of ['bsy', 'csy']) {
    const holder = await flagBusy(`${base}.${ext}`, opts);
    if (holder) {
      const pid = holder.pid === undefined ? '' : ` by pid ${holder.pid}`;
      return `${formatAddress(hub.address)} is busy (.${ext} held${pid} for ${Math.round(holder.ageMs / 1000)} s)`;
    }
  }
  return undefined;
}

/** A `.hld` in the future, as unix seconds, or undefined. A past one is removed (FTS-5005). */
export async function hubHeld(
  config: Config,
  hub: HubConfig,
  now: number,
  warn?: (m: string) => void,
  readOnly = false,
): Promise<number | undefined> {
  const { readHold } = await import('../bso/flags.js');
  return readHold(nodeBase(hubLayout(config, hub), hub.address), now, warn, { readOnly });
}

