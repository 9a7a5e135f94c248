/**
 * One call to one hub: busy flags, connect, binkp session, BSO bookkeeping, flags released on
 * every path. This is where the pure protocol core meets the outbound and inbound on disk.
 */
import type { Socket } from 'node:net';
import { unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { platform } from 'node:os';
import type { Config, HubConfig } from '../config/types.js';
import { addressKey, formatAddress, type FtnAddress } from '../ftn/address.js';
import { CallerSession, type OutgoingFile, type SessionResult, type SessionEnv } from '../binkp/session.js';
import { runSession, type Timers } from '../binkp/connect.js';
import { openFileSource } from '../bso/source.js';
import { shownText } from '../binkp/untrusted.js';
import { Throttle, TokenBucket } from '../binkp/throttle.js';
import { nodeBase, scanNode, confirmSent, finishFlowFile, type OutboundItem } from '../bso/outbound.js';
import { Inbound } from '../bso/inbound.js';
import { FlagKeeper, flagBusy } from '../bso/flags.js';
import { hubLayout } from './hubfiles.js';
export { hubLayout } from './hubfiles.js';
import { SessionError, errorText, type FailureKind } from '../errors.js';
import type { Logger } from '../ops/logger.js';
import { VERSION } from '../version.js';
import { formatBytes } from './status.js';
import { dial, type Reached } from '../net/dial.js';
import { hostPort, nodelistCacheFile } from '../net/lookup.js';

export interface CallOptions {
  config: Config;
  log: Logger;
  keeper: FlagKeeper;
  /** Shared by all sessions of a run; undefined = no global limit. */
  globalBucket?: TokenBucket | undefined;
  /** Called when the session starts, so a run can abort or drain it (signals, run_timeout). */
  onSession?: (session: CallerSession) => void;
  now?: () => number;
  /** The connection's timers (connect_timeout, idle_timeout, session_timeout); real ones by default. */
  timers?: Timers;
}

export interface CallResult {
  hub: HubConfig;
  /** 'skipped': not attempted (busy flag held elsewhere). */
  status: 'ok' | 'failed' | 'skipped';
  kind?: FailureKind;
  message: string;
  remote?: string | undefined;
  /** Which host answered, and which source named it (issue 12). */
  reached?: Reached | undefined;
  session?: SessionResult;
  startedAt: number;
  durationMs: number;
}

/** `fnpoll/0.1.0/linux`: no spaces, some peers split VER on them (FTN-NOTES §2). */
export function mailerToken(): string {
  return `fnpoll/${VERSION}/${platform()}`;
}

let uniqueCounter = 0;
/**
 * A name for a netmail packet or file request that is unique within this process and, by the
 * clock, across runs: 8 hex digits like binkd's and the tossers' own packet names.
 */
export function uniqueName(ext: string, now = Date.now()): string {
  uniqueCounter = (uniqueCounter + 1) & 0xfff;
  const n = ((Math.floor(now / 1000) << 12) | uniqueCounter) >>> 0;
  return `${n.toString(16).padStart(8, '0')}.${ext}`;
}

/**
 * Poll one hub. Never throws: every failure becomes a CallResult, and every flag this call made is
 * gone when it returns.
 */
export async function callHub(hub: HubConfig, opts: CallOptions): Promise<CallResult> {
  const { config, keeper } = opts;
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const log = opts.log;
  const layout = hubLayout(config, hub);
  const csy = `${nodeBase(layout, hub.address)}.csy`;
  const result = (status: CallResult['status'], message: string, extra: Partial<CallResult> = {}): CallResult => ({
    hub,
    status,
    message,
    startedAt,
    durationMs: now() - startedAt,
    ...extra,
  });

  // FTN-NOTES §5: .csy when deciding to call; never call a node someone else has flagged.
  const bsy = await flagBusy(`${nodeBase(layout, hub.address)}.bsy`, { staleAge: config.poller.staleFlagAge, now });
  if (bsy) {
    return result('skipped', `skipped: ${formatAddress(hub.address)} is in session elsewhere (.bsy held${bsy.pid ? ` by pid ${bsy.pid}` : ''})`, { kind: 'busy' });
  }
  const claim = await keeper.acquire(csy);
  if (!claim.ok) {
    const pid = claim.holder.pid ? ` by pid ${claim.holder.pid}` : '';
    return result('skipped', `skipped: ${formatAddress(hub.address)} is being called elsewhere (.csy held${pid})`, { kind: 'busy' });
  }

  const bsyHeld: string[] = [];
  const queues = new Map<string, { items: OutboundItem[]; flowFiles: string[]; pollRequests: string[]; emptyNetmail: string[] }>();
  const touchedFlows = new Set<string>();
  const sentReqs: string[] = [];
  const byId = new Map<string, OutboundItem>();
  let socket: Socket | undefined;
  let reached: Reached | undefined;
  try {
    log.info(`calling ${formatAddress(hub.address)}${hub.reach.hosts.length ? ` at ${hub.reach.hosts.map((h) => hostPort(h.host, h.port ?? hub.port)).join(', ')}` : ` (lookup: ${hub.reach.lookup.join(', ')})`}`, undefined, 'protocol');
    const dialed = await dial(hub, {
      connectTimeout: config.poller.connectTimeout,
      dnsServers: config.poller.dnsServers,
      nodelistCache: nodelistCacheFile(config),
      timers: opts.timers,
      log: { debug: (m) => log.debug(m, undefined, 'protocol'), info: (m) => log.info(m, undefined, 'protocol'), warn: (m) => log.warn(m, undefined, 'protocol') },
    });
    socket = dialed.socket;
    reached = dialed.reached;
    log.info(`connected to ${reachedText(reached)}`, { host: reached.host, port: reached.port, address: reached.address, source: reached.source, tls: reached.tls }, 'protocol');

    const inbound = new Inbound({
      dirs: { secure: config.node.inbound, insecure: config.node.inboundInsecure, temp: config.node.tempInbound },
      hubKey: addressKey(hub.address),
      minFree: config.poller.minFree,
      partialMaxAge: config.poller.partialMaxAge,
      now,
      // Its warnings quote the names the hub sent.
      warn: (m) => log.warn(shownText(m, 1000), undefined, 'transfer'),
    });

    const env: SessionEnv = {
      claimAkas: async (akas: FtnAddress[]) => {
        const served: FtnAddress[] = [];
        const seen = new Set<string>();
        for (const aka of akas) {
          const key = addressKey(aka);
          if (seen.has(key)) continue;
          seen.add(key);
          const flag = `${nodeBase(layout, aka)}.bsy`;
          const r = await keeper.acquire(flag);
          if (r.ok) {
            bsyHeld.push(flag);
            served.push(aka);
          } else {
            log.warn(`${formatAddress(aka)} is busy (.bsy held${r.holder.pid ? ` by pid ${r.holder.pid}` : ''}); not serving that AKA`, undefined, 'protocol');
          }
        }
        return served;
      },
      queue: async (akas, done) => {
        const files: OutgoingFile[] = [];
        for (const aka of akas) {
          const q = await scanNode(layout, aka, { warn: (m) => log.warn(m, undefined, 'transfer') });
          queues.set(addressKey(aka), q);
          for (const item of q.items) {
            const id = itemId(item);
            if (done.has(id)) continue;
            byId.set(id, item);
            const sendName =
              item.kind === 'netmail' ? uniqueName('pkt', now()) : item.kind === 'req' ? uniqueName('req', now()) : basename(item.path);
            files.push({ id, path: item.path, sendName, size: item.size, mtime: item.mtime });
          }
        }
        return files;
      },
      confirmed: async (file) => {
        const item = byId.get(file.id);
        if (!item) return;
        if (item.kind === 'req') {
          // FTS-5005: a .req is removed only after a successful session.
          sentReqs.push(item.path);
          return;
        }
        await confirmSent(item);
        if (item.flow) touchedFlows.add(item.flow.flowPath);
      },
      openSource: (file) => openFileSource(file.path),
      offer: (file, secure) => inbound.offer(file, secure),
      openPartial: (file, offset) => inbound.open(file, offset),
      complete: (file, partial, secure) => inbound.complete(file, partial, secure),
    };

    const buckets: TokenBucket[] = [];
    if (opts.globalBucket) buckets.push(opts.globalBucket);
    if (hub.bandwidthLimit) buckets.push(new TokenBucket(hub.bandwidthLimit));

    const session = new CallerSession({
      hubAddress: hub.address,
      ourAddresses: hub.ourAddresses,
      password: hub.password,
      useCram: hub.useCram,
      nrMode: hub.nrMode,
      system: config.node.system,
      sysop: config.node.sysop,
      location: config.node.location,
      nodeinfo: config.node.nodeinfo,
      mailer: mailerToken(),
      bufferSize: config.performance.bufferSize,
      idleTimeout: config.poller.idleTimeout,
      sessionTimeout: config.poller.sessionTimeout,
      env,
      now,
      log: (level, category, message, fields) => log.log(level, category, message, fields),
      logEnabled: (level) => log.enabled(level),
    });
    opts.onSession?.(session);
    const s = await runSession(session, socket, {
      throttle: buckets.length ? new Throttle(buckets) : undefined,
      ...(opts.timers ? { timers: opts.timers } : {}),
    });

    // A flow file whose lines are all sent goes; a poll request (an empty one) only after success,
    // or the request would be lost.
    for (const q of queues.values()) {
      for (const f of q.flowFiles) if (s.ok || !q.pollRequests.includes(f)) touchedFlows.add(f);
    }
    if (s.ok) {
      // Only after a clean end: poll requests (empty flow files), sent .req files, and the empty
      // packets binkd would have dropped too (FTN-NOTES §4).
      for (const q of queues.values()) {
        for (const p of q.emptyNetmail) await unlinkQuiet(p);
      }
      for (const p of sentReqs) await unlinkQuiet(p);
    }
    // Lines whose files vanished are marked done, as binkd does, so the flow file can go.
    const tidy = { root: layout.root, warn: (m: string) => log.warn(m, undefined, 'transfer') };
    for (const f of touchedFlows) await finishFlowFile(f, tidy).catch((err) => log.warn(`cannot tidy ${f}: ${errorText(err)}`));

    if (s.ok) return result('ok', summaryLine(s), { session: s, reached });
    const e = s.error!;
    return result('failed', e.message, { kind: e.kind, remote: e.remote, session: s, reached });
  } catch (err) {
    socket?.destroy();
    if (err instanceof SessionError) return result('failed', err.message, { kind: err.kind, remote: err.remote, reached });
    return result('failed', `local error: ${errorText(err)}`, { kind: 'io' });
  } finally {
    for (const f of bsyHeld) await keeper.release(f).catch(() => undefined);
    await keeper.release(csy).catch(() => undefined);
  }
}

function itemId(item: OutboundItem): string {
  return item.flow ? `${item.kind}:${item.flow.flowPath}:${item.flow.lineOffset}` : `${item.kind}:${item.path}`;
}

async function unlinkQuiet(p: string): Promise<void> {
  try {
    await unlink(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** `sent 3 files 12.0 KiB, received 1 file 2.0 KiB, 1.2 s, 10.0 KiB/s`. */
export function summaryLine(s: SessionResult): string {
  const st = s.stats;
  const secs = Math.max(s.durationMs, 1) / 1000;
  const rate = (st.bytesSent + st.bytesReceived) / secs;
  const files = (n: number): string => `${n} file${n === 1 ? '' : 's'}`;
  return `sent ${files(st.filesSent)} ${formatBytes(st.bytesSent)}, received ${files(st.filesReceived)} ${formatBytes(st.bytesReceived)}, ${formatSeconds(secs)}, ${formatBytes(rate)}/s`;
}

/** `hub.example:24553 [192.0.2.1] (nodelist NODELIST.339 line 12, TLS)`. */
export function reachedText(r: Reached): string {
  const extras = [r.source, r.tls ? 'TLS' : '', r.proxy ? `via ${r.proxy}` : ''].filter(Boolean).join(', ');
  return `${hostPort(r.host, r.port)}${r.address && r.address !== r.host ? ` [${r.address}]` : ''} (${extras})`;
}

/** The one line per session that `now` and `run` print and log (the logger adds the hub name). */
export function resultText(r: CallResult): string {
  const who = formatAddress(r.hub.address);
  if (r.status === 'ok') return `${who} ok${r.reached ? ` via ${reachedText(r.reached)}` : ''}: ${r.message}`;
  if (r.status === 'skipped') return `${who} ${r.message}`;
  return `${who} failed (${r.kind ?? 'error'}): ${r.message}`;
}

/** `0.03 s`, `4.2 s`, `95 s`: enough digits to mean something at every scale. */
export function formatSeconds(secs: number): string {
  return `${secs < 1 ? secs.toFixed(2) : secs < 10 ? secs.toFixed(1) : Math.round(secs)} s`;
}
