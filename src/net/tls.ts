/**
 * binkps: binkp inside TLS from the first byte (BinkIT on 24553, ENiGMA½ on 24555; binkd itself
 * has none, so sysops put stunnel in front of it: FTN-NOTES §9). TLS 1.2 or later. The certificate
 * is verified against the system's CAs (or `tls_ca`), unless `tls_fingerprint` pins it: most FTN
 * hubs run a self-signed certificate, and a pin is the honest way to trust one. CRAM-MD5 still
 * runs inside (the session does not know it is wrapped).
 */
import type { Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { TLSSocket } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { SessionError, errorText } from '../errors.js';
import type { Timers } from '../binkp/connect.js';

/**
 * node:tls, loaded when a hub is called over TLS: most sessions are plain binkp, and loading it
 * (with the crypto and stream parts it pulls in) cost every session run ~1 ms before the dial.
 */
function tlsConnect(options: import('node:tls').ConnectionOptions): TLSSocket {
  return (createRequire(import.meta.url)('node:tls') as typeof import('node:tls')).connect(options);
}

export interface TlsOptions {
  /** The name the certificate must carry (the host we looked up; not an IP's reverse name). */
  host: string;
  /** Where, for messages: `host:port`. */
  where: string;
  ca?: string | undefined;
  /** Lower-case hex SHA-256, no colons. */
  fingerprint?: string | undefined;
  insecure: boolean;
}

/** `AB:CD:…` (what openssl and Node print) → `abcd…`. */
export function normalizeFingerprint(text: string): string {
  return text.toLowerCase().replace(/:/g, '');
}

/** `ab:cd:…` for messages, the form `openssl x509 -fingerprint -sha256` prints (lower case). */
function colons(hex: string): string {
  return hex.replace(/(..)(?!$)/g, '$1:');
}

/** The peer did not complete a TLS handshake at all (a plain binkp hub): `tls = yes` may fall back. */
export class NoTlsError extends SessionError {
  override name = 'NoTlsError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('tls', message, options);
  }
}

/**
 * Wrap a connected socket in TLS and wait for the handshake. Rejects with SessionError kind `tls`
 * (verification failed, or no TLS there: code ENOTLS) or `fingerprint` (the pin does not match).
 */
export async function startTls(socket: Socket, opts: TlsOptions, timeoutMs: number, timers: Timers): Promise<TLSSocket> {
  const ca = opts.ca ? await readFile(opts.ca).catch((err) => {
    throw new SessionError('tls', `cannot read tls_ca ${opts.ca}: ${errorText(err)}`, { cause: err });
  }) : undefined;
  const pinned = opts.fingerprint !== undefined;
  const isName = !/^[\d.]+$|:/.test(opts.host);
  return new Promise<TLSSocket>((resolve, reject) => {
    const t = tlsConnect({
      socket,
      minVersion: 'TLSv1.2',
      // `host` is what the certificate is checked against (an IP against its IP SANs); SNI only for names.
      host: opts.host.replace(/\.$/, ''),
      ...(isName ? { servername: opts.host.replace(/\.$/, '') } : {}),
      ...(ca ? { ca } : {}),
      // Judged below, once the certificate is in hand (so a failure can name its fingerprint);
      // nothing is sent on the connection before that.
      rejectUnauthorized: false,
    });
    const cancelTimer = timers.set(timeoutMs, () => fail(new SessionError('timeout', `TLS handshake with ${opts.where} timed out`)));
    const fail = (err: SessionError): void => {
      cancelTimer();
      t.destroy();
      socket.destroy();
      reject(err);
    };
    t.once('secureConnect', () => {
      cancelTimer();
      const cert = t.getPeerCertificate();
      const actual = cert?.fingerprint256 ? normalizeFingerprint(cert.fingerprint256) : '';
      if (pinned) {
        if (actual !== opts.fingerprint) {
          fail(new SessionError('fingerprint', `${opts.where} presented a certificate with SHA-256 ${colons(actual) || '(none)'}, not the pinned tls_fingerprint ${colons(opts.fingerprint!)}: if the hub renewed its certificate, check with its sysop and update tls_fingerprint`));
          return;
        }
      } else if (!t.authorized && !opts.insecure) {
        const why = String(t.authorizationError ?? 'not trusted');
        const fp = actual ? ` (its SHA-256 is ${colons(actual)})` : '';
        fail(new SessionError('tls', `TLS certificate of ${opts.where} failed verification: ${why}${fp}; set tls_ca to the CA that signed it, or pin it with tls_fingerprint`));
        return;
      }
      t.removeAllListeners('error');
      resolve(t);
    });
    t.once('error', (err: NodeJS.ErrnoException) => {
      fail(new NoTlsError(`${opts.where} did not complete a TLS handshake (${errorText(err)}): is it a binkps port? (tls = yes falls back to plain binkp; required never does)`, { cause: err }));
    });
  });
}
