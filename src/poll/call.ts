/**
 * One call to one hub: busy flags, connect, binkp session, BSO bookkeeping, flags released on
 * every path. This is where the pure protocol core meets the outbound and inbound on disk.
 */
import type { Socket } from 'node:net';
import { readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { platform } from 'node:os';
import type { Config, HubConfig } from '../config/types.js';
import { addressKey, formatAddress, type FtnAddress } from '../ftn/address.js';
import { CallerSession, type OutgoingFile, type SessionResult, type SessionEnv } from '../binkp/session.js';
import { runSession, type Timers } from '../binkp/connect.js';
import { openFileSource } from '../bso/source.js';
import { shownText } from '../binkp/untrusted.js';
import { Throttle, TokenBucket } from '../binkp/throttle.js';
import { EMPTY_PACKET_MAX, nodeBase, scanNode, confirmSent, markSent, applyFlowAction, finishFlowFile, type OutboundItem } from '../bso/outbound.js';
import { GroupSync, type SyncPath } from '../bso/durable.js';
import type { DeliveredJournal } from './recovery.js';
import { Inbound } from '../bso/inbound.js';
import { clearNdStatus, readNdStatus, writeNdStatus } from '../bso/ndstatus.js';
import { FlagKeeper, flagBusy } from '../bso/flags.js';
import { hubLayout } from './hubfiles.js';
export { hubLayout } from './hubfiles.js';
import { SessionError, errorText, type FailureKind } from '../errors.js';
import { unlinkIfPresent } from '../files.js';
import type { Logger } from '../ops/logger.js';
import { VERSION } from '../version.js';
import { formatBytes, formatRate, formatSeconds } from '../format.js';
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
  /** Where confirmed files are recorded before they are changed (see recovery.ts). */
  journal?: DeliveredJournal | undefined;
  /** How a path is made durable (tests watch the order); default fsync. */
  syncPath?: SyncPath | undefined;
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

/**
 * The wire name of a netmail packet (`.?ut` → `.pkt`) or file request (`.req`): 8 hex digits
 * like binkd's and the tossers' own packet names, derived from the file's identity (device, inode,
 * birth time, size, mtime to the nanosecond) and its content. The content counts because the
 * hub's "already have it" test compares only name, size and mtime in seconds: on a filesystem
 * with coarse timestamps, a new packet in a reused inode could otherwise take an old packet's
 * name, and be answered M_GOT unread. It is the same in every session for as long as the
 * file is unchanged, so after a crash in the M_GOT window (the hub has the packet, we never saw
 * its M_GOT) the resend carries the same name, size and time, and the hub recognises it as a file
 * it already has (binkd's inb_test) instead of storing a second copy. `taken` holds the names
 * already used in this session: a clash of two packets' hashes moves on to the next name.
 */
export function stableWireName(st: StableIdentity, ext: string, taken?: Set<string>): string {
  const id = `${st.dev}:${st.ino}:${st.birthtimeNs}:${st.size}:${st.mtimeNs}:${st.contentHash}`;
  let n = createHash('sha256').update(id).digest().readUInt32BE(0);
  for (;;) {
    const name = `${n.toString(16).padStart(8, '0')}.${ext}`;
    if (!taken?.has(name)) {
      taken?.add(name);
      return name;
    }
    n = (n + 1) >>> 0;
  }
}

export interface StableIdentity {
  dev: bigint | number;
  ino: bigint | number;
  birthtimeNs: bigint | number;
  size: bigint | number;
  mtimeNs: bigint | number;
  /** sha256 of the content, hex. */
  contentHash: string;
}

/** The identity stableWireName hashes, read from the file now (netmail packets are small). */
export function fileIdentity(path: string): StableIdentity {
  const st = statSync(path, { bigint: true });
  const contentHash = createHash('sha256').update(readFileSync(path)).digest('hex');
  return { dev: st.dev, ino: st.ino, birthtimeNs: st.birthtimeNs, size: st.size, mtimeNs: st.mtimeNs, contentHash };
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
  /** fsync rounds shared by the inbound and the flow-file marks of this call (config `fsync`). */
  const durable = new GroupSync(config.poller.fsync, opts.syncPath);
  /** Deletes and truncates of confirmed files, each waiting for its `~` mark to be durable. */
  const pendingActions: Promise<void>[] = [];
  let journalFailed = false;
  /** The BSO base (for its `.stc`) of the AKA each queued file goes to. */
  const statusBase = new Map<string, string>();
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

    // One line per problem: a flow line whose file is gone is met by every batch's scan and again
    // when the flow file is tidied (issue 14); the sysop hears of each flow line once.
    const warned = new Set<string>();
    const warnOnce = (m: string): void => {
      const key = /^(.+? line \d+)[: ]/.exec(m)?.[1] ?? m;
      if (warned.has(key)) return;
      warned.add(key);
      log.warn(m, undefined, 'transfer');
    };

    const inbound = new Inbound({
      dirs: { secure: config.node.inbound, insecure: config.node.inboundInsecure, temp: config.node.tempInbound },
      hubKey: addressKey(hub.address),
      minFree: config.poller.minFree,
      partialMaxAge: config.poller.partialMaxAge,
      mode: config.node.inboundMode,
      now,
      // Its warnings quote the names the hub sent.
      warn: (m) => log.warn(shownText(m, 1000), undefined, 'transfer'),
      durable,
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
        const wireNames = new Set<string>();
        for (const aka of akas) {
          // binkd ftnq.c: a node's ND status (.stc) goes first, before any mail.
          const base = nodeBase(layout, aka);
          const status = readNdStatus(base, (m) => log.warn(m, undefined, 'transfer'));
          const statusId = `status:${base}`;
          if (status && !done.has(statusId)) {
            statusBase.set(statusId, base);
            files.push({ id: statusId, path: `${base}.stc`, sendName: status.name, size: status.size, mtime: status.mtime, ndStatus: true });
          }
          const q = await scanNode(layout, aka, { warn: warnOnce });
          queues.set(addressKey(aka), q);
          for (const item of q.items) {
            const id = itemId(item);
            if (done.has(id)) continue;
            byId.set(id, item);
            statusBase.set(id, base);
            let sendName = basename(item.path);
            if (item.kind !== 'file') {
              try {
                sendName = stableWireName(fileIdentity(item.path), item.kind === 'req' ? 'req' : 'pkt', wireNames);
              } catch (err) {
                log.warn(`${item.path}: ${errorText(err)}; not sent`, undefined, 'transfer');
                continue;
              }
            }
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
        try {
          opts.journal?.record(item);
        } catch (err) {
          // The journal only spares litter after a kill; a full disk there must not stop the mail.
          if (!journalFailed) log.warn(`cannot journal deliveries (${errorText(err)}); going on without`, undefined, 'transfer');
          journalFailed = true;
        }
        if (!item.flow) {
          await confirmSent(item);
          return;
        }
        await markSent(item);
        touchedFlows.add(item.flow.flowPath);
        if (item.flow.action === 'keep') return;
        // Power cuts: the `~` mark must be on disk before the file is deleted or truncated, or a
        // resend of a truncated file (or a lost one) follows. That wait runs behind the session,
        // so the next M_GOT is not held up, and marks that come close together share one sync.
        const flowsOf = new Set([item.flow.flowPath, ...(item.flow.alsoLines ?? []).map((l) => l.flowPath)]);
        pendingActions.push(
          Promise.all([...flowsOf].map((f) => durable.sync(f, 'file')))
            .then(() => applyFlowAction(item))
            .catch((err: unknown) => log.warn(`${item.path}: ${errorText(err)}`, undefined, 'transfer')),
        );
      },
      openSource: (file) => openFileSource(file.path),
      setNdStatus: async (file) => {
        const base = statusBase.get(file.id);
        if (base) await writeNdStatus(base, { name: file.sendName, size: file.size, mtime: file.mtime });
      },
      clearNdStatus: async (file) => {
        const base = statusBase.get(file.id);
        if (base) clearNdStatus(base);
      },
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
      extensions: {
        compression: hub.extensions.useCompression,
        crc: hub.extensions.useCrc,
        crypt: hub.extensions.useCrypt,
        nd: hub.extensions.useNd,
        compressionThreshold: hub.extensions.compressionThreshold,
      },
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
    await Promise.all(pendingActions);
    if (durable.stats.requests) {
      const d = durable.stats;
      log.debug(`fsync: ${d.requests} request(s) served by ${d.syncs} sync(s) in ${d.rounds} round(s)${d.inMemory ? `, ${d.inMemory} on a memory filesystem (nothing to sync)` : ''}`, { ...d }, 'transfer');
    }

    // A flow file whose lines are all sent goes; a poll request (an empty one) only after success,
    // or the request would be lost.
    for (const q of queues.values()) {
      for (const f of q.flowFiles) if (s.ok || !q.pollRequests.includes(f)) touchedFlows.add(f);
    }
    if (s.ok) {
      // Only after a clean end: poll requests (empty flow files), sent .req files, and the empty
      // packets binkd would have dropped too (FTN-NOTES §4).
      for (const q of queues.values()) {
        for (const p of q.emptyNetmail) {
          if (await unlinkIfPresent(p, 'empty netmail packet')) {
            log.info(`removed empty netmail packet ${p} (${EMPTY_PACKET_MAX} bytes or less: no message in it; binkd drops these too)`, { file: p }, 'transfer');
          }
        }
      }
      for (const p of sentReqs) await unlinkIfPresent(p, 'sent file request');
    }
    // Lines whose files vanished are marked done, as binkd does, so the flow file can go.
    const tidy = { root: layout.root, warn: warnOnce };
    for (const f of touchedFlows) await finishFlowFile(f, tidy).catch((err) => log.warn(`cannot tidy ${f}: ${errorText(err)}`));

    if (s.ok) return result('ok', summaryLine(s), { session: s, reached });
    const e = s.error!;
    return result('failed', e.message, { kind: e.kind, remote: e.remote, session: s, reached });
  } catch (err) {
    socket?.destroy();
    if (err instanceof SessionError) return result('failed', err.message, { kind: err.kind, remote: err.remote, reached });
    return result('failed', `local error: ${errorText(err)}`, { kind: 'io' });
  } finally {
    // Never leave a confirmed file's delete or truncate behind the flags that guard it.
    await Promise.all(pendingActions);
    for (const f of bsyHeld) await keeper.release(f).catch(() => undefined);
    await keeper.release(csy).catch(() => undefined);
  }
}

function itemId(item: OutboundItem): string {
  return item.flow ? `${item.kind}:${item.flow.flowPath}:${item.flow.lineOffset}` : `${item.kind}:${item.path}`;
}

/** `sent 3 files 12.0 KiB, received 1 file 2.0 KiB, 1.2 s, 10.0 KiB/s`. */
export function summaryLine(s: SessionResult): string {
  const st = s.stats;
  const secs = Math.max(s.durationMs, 1) / 1000;
  const rate = (st.bytesSent + st.bytesReceived) / secs;
  const files = (n: number): string => `${n} file${n === 1 ? '' : 's'}`;
  const ext = s.extensions.length ? `, ${s.extensions.join(' ')}` : '';
  return `sent ${files(st.filesSent)} ${formatBytes(st.bytesSent)}, received ${files(st.filesReceived)} ${formatBytes(st.bytesReceived)}, ${formatSeconds(secs)}, ${formatRate(rate)}${ext}`;
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
