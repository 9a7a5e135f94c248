/**
 * One connected stream to a hub, and which host answered and who named it: lookup (config,
 * nodelist, DNS), then each host in order, each address of a host raced by happy eyeballs (or
 * handed to the proxy), then TLS when the hub speaks binkps. The session on top gets a Duplex and
 * never learns how it was reached.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { HubConfig } from '../config/types.js';
import { DEFAULT_BINKP_PORT, DEFAULT_BINKPS_PORT } from '../config/load.js';
import { SessionError, errorText, type FailureKind } from '../errors.js';
import { connectReusingReads, realTimers, type Timers } from '../binkp/connect.js';
import { isNotFound, systemDns, type DnsApi, type IpAddress } from './dns.js';
import { race, RaceError, type Attempt } from './eyeballs.js';
import { hostPort, lookupHub, type Candidate } from './lookup.js';
import { connectViaProxy } from './proxy.js';
import { NoTlsError, startTls } from './tls.js';

/** Which host answered, for the session line, the log and the state. */
export interface Reached {
  host: string;
  port: number;
  /** The IP connected to (absent through a proxy, which resolves the name itself). */
  address?: string | undefined;
  /** `config`, `nodelist NODELIST.339 line 12`, `dns SRV …`. */
  source: string;
  tls: boolean;
  /** The proxy's label (no credentials) when one was used. */
  proxy?: string | undefined;
}

export interface DialLog {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

export interface DialOptions {
  connectTimeout: number;
  dnsServers?: string[] | undefined;
  /** The nodelist index file (beside the state). */
  nodelistCache?: string | undefined;
  log?: DialLog;
  /** The connection's timers (connect_timeout, the attempt delay); real ones by default. */
  timers?: Timers | undefined;
  /** Tests: a resolver instead of the system's, a connect function instead of node:net. */
  dns?: DnsApi;
  connect?: (address: IpAddress, port: number, bindAddress: string | undefined, reuseReads: boolean) => Attempt<Socket>;
}

const quiet: DialLog = { debug: () => undefined, info: () => undefined, warn: () => undefined };

/** Which failure wins when several hosts failed differently: the one that says most about what to fix. */
const KIND_RANK: FailureKind[] = ['fingerprint', 'tls', 'proxy_auth', 'proxy', 'dns', 'timeout', 'refused'];

/**
 * A TCP attempt, cancellable. `reuseReads`: plain binkp, whose reads go into one reused buffer
 * (connect.ts); a socket that TLS will wrap is an ordinary one.
 */
export function tcpAttempt(address: IpAddress, port: number, bindAddress: string | undefined, reuseReads: boolean): Attempt<Socket> {
  const opts = { host: address.address, port, family: address.family, ...(bindAddress ? { localAddress: bindAddress } : {}) };
  const socket = reuseReads ? connectReusingReads(opts) : netConnect(opts);
  const done = new Promise<Socket>((resolve, reject) => {
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      socket.destroy();
      reject(err);
    });
  });
  return { done, cancel: () => socket.destroy() };
}

function connectError(err: unknown, where: string, timeoutMs: number): SessionError {
  if (err instanceof SessionError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return new SessionError('refused', `connection to ${where} refused`, { cause: err });
  if (code === 'ETIMEDOUT' || code === 'ECONNTIMEOUT') {
    return new SessionError('timeout', `no connection to ${where} within connect_timeout (${timeoutMs / 1000} s)`, { cause: err });
  }
  return new SessionError('refused', `cannot connect to ${where}: ${errorText(err)}`, { cause: err });
}

/** Connect to one host:port: through the proxy, or by racing its addresses. */
async function connectHost(
  hub: HubConfig,
  host: string,
  port: number,
  tls: boolean,
  dns: () => Promise<DnsApi>,
  opts: DialOptions,
): Promise<{ socket: Socket; address?: string }> {
  const reach = hub.reach;
  const where = hostPort(host, port);
  const log = opts.log ?? quiet;
  if (reach.proxy) {
    log.debug(`connecting to ${where} through proxy ${reach.proxy.label}`);
    const socket = await connectViaProxy(reach.proxy, { host, port, timeoutMs: opts.connectTimeout, bindAddress: reach.bindAddress });
    return { socket };
  }
  // bind_address fixes the family: an IPv4 source cannot reach an IPv6 destination.
  const bindFamily = reach.bindAddress ? (reach.bindAddress.includes(':') ? 6 : 4) : 0;
  const family = reach.ipFamily || bindFamily;
  let addresses: IpAddress[];
  try {
    addresses = await (await dns()).addresses(host, family);
  } catch (err) {
    if (isNotFound(err)) throw new SessionError('dns', `cannot resolve ${host}: no such host name (check hub_hostname, or the nodelist entry)`, { cause: err });
    throw new SessionError('dns', `cannot resolve ${host}: ${errorText(err)} (check dns_server or /etc/resolv.conf)`, { cause: err });
  }
  if (addresses.length === 0) {
    throw new SessionError('dns', `${host} has no IPv${family} address (ip_family = ${family}${reach.bindAddress ? `, bind_address = ${reach.bindAddress}` : ''})`);
  }
  const attempt = opts.connect ?? tcpAttempt;
  const timers = opts.timers ?? realTimers;
  const r = race<Socket>({
    addresses,
    delay: reach.connectAttemptDelay,
    timers,
    connect: (a) => attempt(a, port, reach.bindAddress, !tls),
    onAttempt: (a) => log.debug(`connecting to ${hostPort(a.address, port)}${a.address === host ? '' : ` (${host})`}`),
  });
  const cancelTimeout = timers.set(opts.connectTimeout, () =>
    r.abort(new SessionError('timeout', `no connection to ${where} within connect_timeout (${opts.connectTimeout / 1000} s)`)),
  );
  try {
    const { value, address } = await r.result;
    return { socket: value, address: address.address };
  } catch (err) {
    if (err instanceof RaceError) {
      const one = err.errors.length === 1;
      const errs = err.errors.map((e) => connectError(e.error, one ? where : hostPort(e.address.address, port), opts.connectTimeout));
      if (errs.length === 1) throw errs[0]!;
      const kind = errs.every((e) => e.kind === 'refused') ? 'refused' : errs.find((e) => e.kind !== 'refused')!.kind;
      throw new SessionError(kind, `cannot connect to ${where}: ${errs.map((e) => e.message).join('; ')}`);
    }
    throw err;
  } finally {
    cancelTimeout();
  }
}

/**
 * Connect to the hub: the first host that answers (and, with TLS, completes a verified handshake)
 * wins. Rejects with a SessionError whose kind says what to fix (README "Reaching hubs").
 */
export async function dial(hub: HubConfig, opts: DialOptions): Promise<{ socket: Socket; reached: Reached }> {
  const reach = hub.reach;
  const log = opts.log ?? quiet;
  let api: Promise<DnsApi> | undefined;
  const dns = (): Promise<DnsApi> => (api ??= opts.dns ? Promise.resolve(opts.dns) : systemDns(opts.dnsServers));

  const found = await lookupHub(hub, { dns, nodelistCache: opts.nodelistCache, warn: (m) => log.warn(m) });
  if (!found.ok) throw new SessionError(found.kind, found.message);
  if (reach.tls !== 'no' && reach.tlsInsecure && !reach.tlsFingerprint) {
    log.warn(`tls_insecure = yes: the hub's certificate is not checked; anyone on the path can read this session and take the password`);
  }

  if (found.candidates.length === 0) throw new SessionError('dns', `no host for the hub: set hub_hostname`);
  const failures: SessionError[] = [];
  for (const c of found.candidates) {
    const port = c.port ?? reach.port;
    const tries: { tls: boolean; port: number }[] =
      reach.tls === 'no'
        ? [{ tls: false, port: port ?? DEFAULT_BINKP_PORT }]
        : reach.tls === 'required'
          ? [{ tls: true, port: port ?? DEFAULT_BINKPS_PORT }]
          : [
              { tls: true, port: port ?? DEFAULT_BINKPS_PORT },
              { tls: false, port: port ?? DEFAULT_BINKP_PORT },
            ];
    for (const t of tries) {
      try {
        const socket = await connectOnce(hub, c, t, dns, opts);
        return { socket: socket.socket, reached: { host: c.host, port: t.port, address: socket.address, source: c.source, tls: t.tls, proxy: reach.proxy?.label } };
      } catch (err) {
        const e = err instanceof SessionError ? err : connectError(err, hostPort(c.host, t.port), opts.connectTimeout);
        const noTls = t.tls && (e instanceof NoTlsError || e.kind === 'refused');
        if (noTls && reach.tls === 'yes') {
          log.warn(`${e.message}; tls = yes: trying plain binkp`);
          continue;
        }
        failures.push(e);
        log.debug(`${hostPort(c.host, t.port)} (${c.source}): ${e.message}`);
        break;
      }
    }
  }
  if (failures.length === 1) throw failures[0]!;
  const kind = failures.every((f) => f.kind === 'refused')
    ? 'refused'
    : KIND_RANK.find((k) => failures.some((f) => f.kind === k)) ?? failures[0]!.kind;
  const what = kind === 'refused' ? 'every host refused' : `no host answered`;
  throw new SessionError(kind, `${what}: ${failures.map((f) => f.message).join('; ')}`);
}

async function connectOnce(
  hub: HubConfig,
  c: Candidate,
  t: { tls: boolean; port: number },
  dns: () => Promise<DnsApi>,
  opts: DialOptions,
): Promise<{ socket: Socket; address?: string | undefined }> {
  const reach = hub.reach;
  const { socket, address } = await connectHost(hub, c.host, t.port, t.tls, dns, opts);
  if (!t.tls) return { socket, address };
  const tlsSocket = await startTls(
    socket,
    { host: c.host, where: hostPort(c.host, t.port), ca: reach.tlsCa, fingerprint: reach.tlsFingerprint, insecure: reach.tlsInsecure },
    opts.connectTimeout,
    opts.timers ?? realTimers,
  );
  tlsSocket.setNoDelay(true);
  return { socket: tlsSocket, address };
}
