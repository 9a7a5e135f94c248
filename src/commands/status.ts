import type { GlobalFlags, Io } from './io.js';
import { resolveHubs } from '../config/load.js';
import { ExitCode, UsageError } from '../errors.js';
import { formatAddress } from '../ftn/address.js';
import { loadConfigFor, warnStranded } from './common.js';

/** `fnpoll status [hub] [--json]`: read-only view of state, plan and queues; one hub in detail. */
export async function commandStatus(flags: GlobalFlags, io: Io, selector?: string): Promise<number> {
  const config = await loadConfigFor(flags, io);
  const hubs = selector === undefined ? config.hubs : resolveHubs(config, [selector]);
  const { planReadOnly } = await import('../poll/inputs.js');
  const { statusRows, statusJson, formatStatusTable, formatStatusDetail } = await import('../poll/status.js');
  const now = Date.now();
  const { state, plan, queued } = await planReadOnly(config, hubs, now, { warn: (m) => io.err(`fnpoll: warning: ${m}\n`) });
  // Issue 12: where each hub resolves to, without network (config, nodelist); DNS is asked when called.
  const { lookupHub, resolutionText, nodelistCacheFile } = await import('../net/lookup.js');
  const hosts = new Map<string, string>();
  for (const hub of hubs) {
    const r = await lookupHub(hub, { offline: true, dns: () => Promise.reject(new Error('offline')), nodelistCache: nodelistCacheFile(config) });
    hosts.set(hub.key, resolutionText(hub, r));
  }
  const rows = statusRows(plan, state, queued, now, hosts);
  if (selector !== undefined) {
    const { hubStats, formatRecent } = await import('./stats.js');
    const recent = hubStats(hubs[0]!, state).recent;
    if (flags.json) io.out(`${JSON.stringify({ ...rows[0]!, recent }, null, 2)}\n`);
    else io.out(`${[...formatStatusDetail(rows[0]!, hubs[0]!, now), ...formatRecent(recent)].join('\n')}\n`);
    return ExitCode.OK;
  }
  io.out(flags.json ? `${JSON.stringify(statusJson(rows), null, 2)}\n` : formatStatusTable(rows, now));
  if (!flags.quiet) await warnStranded(config, io);
  return ExitCode.OK;
}

/** `fnpoll reset <hub...>`: clear backoff and hold (and fnpoll's `.hld`), under the run lock. */
export async function commandReset(selectors: string[], flags: GlobalFlags, io: Io): Promise<number> {
  const config = await loadConfigFor(flags, io);
  const hubs = resolveHubs(config, selectors);
  const { acquireRunLock } = await import('../poll/lock.js');
  const { loadState, saveState } = await import('../poll/state.js');
  const { resetHub } = await import('../poll/backoff.js');
  const { removeHold } = await import('../bso/flags.js');
  const { nodeBase } = await import('../bso/outbound.js');
  const { hubLayout } = await import('../poll/call.js');
  const lock = await acquireRunLock(config.poller.lockFile);
  try {
    const state = await loadState(config.poller.stateFile, { now: Date.now, warn: (m) => io.err(`fnpoll: warning: ${m}\n`) });
    for (const hub of hubs) {
      const prev = state.hubs[hub.key];
      if (prev) state.hubs[hub.key] = resetHub(prev);
      if (prev?.heldUntil !== undefined) await removeHold(nodeBase(hubLayout(config, hub), hub.address));
      if (!flags.quiet) io.out(`${hub.name} (${formatAddress(hub.address)}): backoff and hold cleared\n`);
    }
    await saveState(config.poller.stateFile, state, { knownHubs: config.hubs.map((h) => h.key), info: () => undefined });
  } finally {
    await lock.release();
  }
  return ExitCode.OK;
}

const FLAVOURS = ['direct', 'crash', 'immediate', 'normal'] as const;

/** `fnpoll poll <hub...>`: an empty flow file (a poll request, as binkd makes one); no call. */
export async function commandPoll(selectors: string[], flags: GlobalFlags & { flavour?: string }, io: Io): Promise<number> {
  const flavour = (flags.flavour ?? 'direct').toLowerCase();
  if (!(FLAVOURS as readonly string[]).includes(flavour)) {
    throw new UsageError(`--flavour "${flags.flavour}": expected one of ${FLAVOURS.join(', ')}`);
  }
  const config = await loadConfigFor(flags, io);
  const hubs = resolveHubs(config, selectors);
  const { createPollRequest } = await import('../bso/outbound.js');
  const { hubLayout } = await import('../poll/call.js');
  for (const hub of hubs) {
    const path = await createPollRequest(hubLayout(config, hub), hub.address, flavour as (typeof FLAVOURS)[number]);
    if (!flags.quiet) io.out(`${hub.name} (${formatAddress(hub.address)}): poll request ${path}\n`);
  }
  return ExitCode.OK;
}
