/**
 * Gathers what planning needs from disk: what is queued for each hub, and which hubs are busy
 * (someone else's `.bsy`/`.csy`) or held (`.hld` in the future). Reads each outbound directory
 * once, for the queues and the control files alike: a hub whose directory lists no flag costs no
 * further file system call, so an idle run over 100 hubs makes a handful of readdirs.
 *
 * Also the read-only view of state and plan for `--dry-run`, `status`, `stats`, `health` and the
 * idle fast path of `run`: one module, since an idle cron run loads exactly this.
 */
import type { Config, HubConfig } from '../config/types.js';
import { errorText } from '../errors.js';
import { emptyState, parseState, readStateText, type State } from './state.js';
import { planRun, type PlanEntry } from './schedule.js';
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


/**
 * Like loadState, but a corrupt file is only reported, never moved aside: these commands touch
 * nothing. The next real run quarantines it.
 */
export async function loadStateReadOnly(path: string, warn: (m: string) => void): Promise<State> {
  let text: string;
  try {
    text = readStateText(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    warn(`state file ${path} is unreadable (${errorText(err)}); showing empty state`);
    return emptyState();
  }
  try {
    return parseState(text);
  } catch (err) {
    warn(`state file ${path} is invalid (${errorText(err)}); showing empty state (the next run moves it aside)`);
    return emptyState();
  }
}

/**
 * The plan as it stands, read-only: for `--dry-run`, `status`, and the idle fast path of `run`
 * (nothing due → no lock, no writes, no protocol code loaded).
 */
export async function planReadOnly(
  config: Config,
  hubs: readonly HubConfig[],
  now: number,
  opts: { force?: boolean | undefined; warn: (m: string) => void },
): Promise<{ state: State; plan: PlanEntry[]; queued: Map<string, QueueSummary> }> {
  const state = await loadStateReadOnly(config.poller.stateFile, opts.warn);
  const inputs = await gatherInputs(config, hubs, now, { force: opts.force, readOnly: true });
  const plan = planRun({ config: { hubs: [...hubs] }, state, queued: inputs.queued, busy: inputs.busy, now, force: opts.force });
  return { state, plan, queued: inputs.queued };
}
