/**
 * `fnpoll now`: poll the chosen hubs immediately, at most `max_connections` at once, bypassing
 * schedule and backoff (never busy flags).
 */
import pLimit from 'p-limit';
import type { Config, HubConfig } from '../config/types.js';
import { formatAddress } from '../ftn/address.js';
import { FlagKeeper } from '../bso/flags.js';
import { TokenBucket } from '../binkp/throttle.js';
import { callHub, type CallResult } from './call.js';
import type { CallerSession } from '../binkp/session.js';
import type { Logger } from '../ops/logger.js';
import { randomBytes } from 'node:crypto';

export interface PollHubsOptions {
  config: Config;
  hubs: HubConfig[];
  log: Logger;
  /** Called with each result as its session ends (state saves, hooks). */
  onResult?: (r: CallResult) => Promise<void> | void;
  onSession?: (hub: HubConfig, session: CallerSession) => void;
  /** Return false to start no further sessions (signals, run_timeout). */
  mayStart?: () => boolean;
  keeper?: FlagKeeper;
}

/** The one line per session that `now` and `run` print and log (the logger adds the hub name). */
export function resultText(r: CallResult): string {
  const who = formatAddress(r.hub.address);
  if (r.status === 'ok') return `${who} ok: ${r.message}`;
  if (r.status === 'skipped') return `${who} ${r.message}`;
  return `${who} failed (${r.kind ?? 'error'}): ${r.message}`;
}

export async function pollHubs(opts: PollHubsOptions): Promise<CallResult[]> {
  const { config, log } = opts;
  const keeper =
    opts.keeper ??
    new FlagKeeper({ staleAge: config.poller.staleFlagAge, warn: (m) => log.warn(m, undefined, 'general') });
  const limit = pLimit(config.poller.maxConnections);
  const globalBucket = config.performance.bandwidthLimit > 0 ? new TokenBucket(config.performance.bandwidthLimit) : undefined;
  const results: CallResult[] = [];
  await Promise.all(
    opts.hubs.map((hub) =>
      limit(async () => {
        if (opts.mayStart && !opts.mayStart()) return;
        const hubLog = log.child({ hub: hub.name, sessionId: randomBytes(3).toString('hex') });
        const r = await callHub(hub, {
          config,
          log: hubLog,
          keeper,
          globalBucket,
          onSession: (s) => opts.onSession?.(hub, s),
        });
        results.push(r);
        const line = resultText(r);
        const s = r.session;
        const fields = {
          result: r.status,
          kind: r.kind,
          remote: r.remote,
          duration: r.durationMs,
          filesSent: s?.stats.filesSent,
          bytesSent: s?.stats.bytesSent,
          filesReceived: s?.stats.filesReceived,
          bytesReceived: s?.stats.bytesReceived,
          cram: s?.cram,
          nr: s?.nr,
          binkp11: s?.binkp11,
          secure: s?.secure,
        };
        hubLog.log(r.status === 'failed' ? 'error' : r.status === 'skipped' ? 'warning' : 'info', 'stats', line, fields);
        await opts.onResult?.(r);
      }),
    ),
  );
  await keeper.releaseAll();
  return results;
}
