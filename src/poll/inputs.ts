/**
 * Gathers what planning needs from disk: what is queued for each hub, and which hubs are busy
 * (someone else's `.bsy`/`.csy`) or held (`.hld` in the future). Reads each outbound directory
 * once, for the queues and the control files alike: a hub whose directory lists no flag costs no
 * further file system call, so an idle run over 100 hubs makes a handful of readdirs.
 */
import type { Config, HubConfig } from '../config/types.js';
import type { QueueSummary } from '../bso/types.js';
import { OutboundDirCache, summarizeOutbound } from '../bso/outbound.js';
import { addressKey } from '../ftn/address.js';
import { hubBusy, hubHeld, hubLayout, listedControlFiles } from './hubfiles.js';
import { formatTime } from './status.js';

export interface PlanInputs {
  queued: Map<string, QueueSummary>;
  /** hub key → why it must not be called (busy flags; `.hld` unless `force`). */
  busy: Map<string, string>;
}

export async function gatherInputs(
  config: Config,
  hubs: readonly HubConfig[],
  now: number,
  opts: { force?: boolean | undefined; readOnly?: boolean | undefined; warn?: (m: string) => void } = {},
): Promise<PlanInputs> {
  // Hubs grouped by BSO tree, so each tree's directories are listed once.
  const layouts = new Map(hubs.map((h) => [h, hubLayout(config, h)] as const));
  const byRoot = new Map<string, HubConfig[]>();
  for (const hub of hubs) {
    const root = layouts.get(hub)!.root;
    const list = byRoot.get(root) ?? [];
    list.push(hub);
    byRoot.set(root, list);
  }
  const dirs = new OutboundDirCache();
  const queued = new Map<string, QueueSummary>();
  for (const group of byRoot.values()) {
    const layout = layouts.get(group[0]!)!;
    const sums = await summarizeOutbound(
      layout,
      group.map((h) => h.address),
      { dirs },
    );
    for (const hub of group) {
      const s = sums.get(addressKey(hub.address));
      if (s) queued.set(hub.key, s);
    }
  }
  const busy = new Map<string, string>();
  for (const hub of hubs) {
    const listed = await listedControlFiles(layouts.get(hub)!, hub.address, dirs);
    const why = listed.bsy || listed.csy ? await hubBusy(config, hub, now) : undefined;
    if (why) {
      busy.set(hub.key, why);
      continue;
    }
    // FTS-5005: a .hld in the future means "do not call" for `run`; `now` may still call.
    if (!opts.force && listed.hld) {
      const until = await hubHeld(config, hub, now, opts.warn, opts.readOnly);
      if (until !== undefined) busy.set(hub.key, `on hold until ${formatTime(until * 1000)} (.hld)`);
    }
  }
  return { queued, busy };
}
