/**
 * Where a hub's BSO files live and whether its control files forbid a call. Light on purpose: an
 * idle run needs this and nothing of the protocol stack.
 */
import type { Config, HubConfig } from '../config/types.js';
import type { BsoLayout } from '../bso/types.js';
import { formatAddress } from '../ftn/address.js';
import { nodeBase } from '../bso/outbound.js';
import { flagBusy, readHold } from '../bso/flags.js';

/** The BSO tree that holds a hub's mail (FTS-5005 §2; binkd's domain rule: default zone = no extension). */
export function hubLayout(config: Config, hub: HubConfig): BsoLayout {
  return hub.outboundOverride
    ? { root: hub.outbound, defaultZone: hub.address.zone }
    : { root: config.node.outbound, defaultZone: config.node.address.zone };
}

/** Is someone else in session with, or calling, this hub? Returns why, or undefined. */
export async function hubBusy(config: Config, hub: HubConfig, now: number): Promise<string | undefined> {
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
  return readHold(nodeBase(hubLayout(config, hub), hub.address), now, warn, { readOnly });
}

