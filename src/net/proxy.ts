/**
 * Calling out through a proxy: `proxy = socks5://[user:pass@]host:port` or `http://…` (CONNECT).
 *
 * SOCKS5 goes through the `socks` package (README "Dependencies": RFC 1928/1929 done by a library
 * that many clients rely on, rather than by hand). HTTP CONNECT is one request and one status line,
 * written here. The hub's host name is passed to the proxy, which resolves it: the usual reason
 * for a proxy is that this machine cannot reach (or resolve) the outside by itself.
 */
import { createRequire } from 'node:module';
import { connect as netConnect, type Socket } from 'node:net';
import type { ProxySpec } from '../config/types.js';
import { SessionError, errorText } from '../errors.js';

/** Longest CONNECT response header we read before calling the proxy broken. */
const MAX_HTTP_HEADER = 8192;

export interface ProxyTarget {
  host: string;
  port: number;
  timeoutMs: number;
  bindAddress?: string | undefined;
}

function authFailed(proxy: ProxySpec, detail: string): SessionError {
  return new SessionError('proxy_auth', `proxy ${proxy.label} refused our credentials (${detail}): check the user and password in proxy`);
}

function proxyFailed(proxy: ProxySpec, detail: string, cause?: unknown): SessionError {
  return new SessionError('proxy', `proxy ${proxy.label}: ${detail}`, cause === undefined ? undefined : { cause });
}

/** A connected socket to `target` through `proxy`. */
export function connectViaProxy(proxy: ProxySpec, target: ProxyTarget): Promise<Socket> {
  return proxy.kind === 'socks5' ? viaSocks5(proxy, target) : viaHttp(proxy, target);
}

async function viaSocks5(proxy: ProxySpec, target: ProxyTarget): Promise<Socket> {
  // Kept out of the single-file build (package.json "bundle": --external): it and its address
  // library would double the bundle every idle cron run loads; required here, from node_modules.
  const { SocksClient } = createRequire(import.meta.url)('socks') as typeof import('socks');
  const where = `${target.host}:${target.port}`;
  try {
    const { socket } = await SocksClient.createConnection({
      proxy: {
        host: proxy.host,
        port: proxy.port,
        type: 5,
        ...(proxy.user !== undefined ? { userId: proxy.user, password: proxy.password ?? '' } : {}),
      },
      command: 'connect',
      destination: { host: target.host.replace(/\.$/, ''), port: target.port },
      timeout: target.timeoutMs,
      // socks fills in host and port (the proxy's) itself.
      ...(target.bindAddress ? { socket_options: { localAddress: target.bindAddress, host: proxy.host, port: proxy.port } } : {}),
    });
    return socket;
  } catch (err) {
    const text = errorText(err);
    const code = (err as NodeJS.ErrnoException).code;
    if (/authentication/i.test(text)) throw authFailed(proxy, text);
    if (/ConnectionRefused/.test(text)) throw new SessionError('refused', `connection to ${where} refused (reported by proxy ${proxy.label})`, { cause: err });
    if (/timed out/i.test(text)) throw new SessionError('timeout', `no connection to ${where} through proxy ${proxy.label} within connect_timeout`, { cause: err });
    if (code === 'ECONNREFUSED' || /\bECONNREFUSED\b/.test(text)) throw proxyFailed(proxy, 'refused the connection: is the proxy running, and is proxy right?', err);
    if (/NotAllowed|rejected/i.test(text)) throw proxyFailed(proxy, `refused to connect to ${where} (${text}): check the proxy's rules`, err);
    throw proxyFailed(proxy, `failed to connect to ${where}: ${text}`, err);
  }
}

function viaHttp(proxy: ProxySpec, target: ProxyTarget): Promise<Socket> {
  const host = target.host.replace(/\.$/, '');
  const authority = `${host.includes(':') ? `[${host}]` : host}:${target.port}`;
  return new Promise<Socket>((resolve, reject) => {
    const socket = netConnect({ host: proxy.host, port: proxy.port, ...(target.bindAddress ? { localAddress: target.bindAddress } : {}) });
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new SessionError('timeout', `no connection to ${authority} through proxy ${proxy.label} within connect_timeout`)), target.timeoutMs);
    const fail = (err: SessionError): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('connect', () => {
      const auth =
        proxy.user !== undefined ? `Proxy-Authorization: Basic ${Buffer.from(`${proxy.user}:${proxy.password ?? ''}`).toString('base64')}\r\n` : '';
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') fail(proxyFailed(proxy, 'refused the connection: is the proxy running, and is proxy right?', err));
      else fail(proxyFailed(proxy, errorText(err), err));
    });
    socket.on('close', () => fail(proxyFailed(proxy, 'closed the connection before answering CONNECT')));
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_HTTP_HEADER) fail(proxyFailed(proxy, 'sent an over-long answer to CONNECT'));
        return;
      }
      socket.off('data', onData);
      // Hold the bytes after the header for whoever reads next (the session).
      socket.pause();
      const status = /^HTTP\/1\.[01] (\d{3})([^\r\n]*)/.exec(head.toString('latin1', 0, end));
      const code = status ? Number(status[1]) : 0;
      const reason = status ? `HTTP ${code}${status[2]!.replace(/[^\x20-\x7e]/g, '?')}` : 'not an HTTP answer';
      if (code === 200) {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.removeAllListeners('close');
        const rest = head.subarray(end + 4);
        if (rest.length) socket.unshift(rest);
        resolve(socket);
      } else if (code === 407) fail(authFailed(proxy, reason));
      else if (code === 502 || code === 503 || code === 504) {
        fail(new SessionError('refused', `proxy ${proxy.label} could not reach ${authority} (${reason})`));
      } else fail(proxyFailed(proxy, `refused CONNECT to ${authority} (${reason}): check the proxy's rules`));
    };
    socket.on('data', onData);
  });
}
