/**
 * Real programs the "reaching hubs" interop tests put between fnpoll and its hub, each on a free
 * loopback port and stopped afterwards: dnsmasq (SRV, A, AAAA), stunnel4 (binkps in front of the
 * real binkd), danted (SOCKS5), a small HTTP CONNECT proxy, a node:tls front for the scripted hub,
 * and certificates made with openssl. Every daemon runs in the foreground as the leader of its own
 * process group, and stop() signals the group.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { connect as netConnect, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { promises as dnsPromises } from 'node:dns';
import { freePort } from './binkd.js';

const run = promisify(execFile);
const START_TIMEOUT_MS = 10_000;

export interface Daemon {
  port: number;
  output(): string;
  stop(): Promise<void>;
}

/** Spawn `cmd` in its own process group; `ready` is polled until it resolves true. */
async function startDaemon(cmd: string, args: string[], port: number, ready: (out: string) => Promise<boolean>): Promise<Daemon> {
  const child: ChildProcess = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const gone = new Promise<void>((resolve) => child.on('close', () => ((exited = true), resolve())));
  child.on('error', (err) => (out += `spawn ${cmd}: ${err.message}\n`));
  const stop = async (): Promise<void> => {
    if (exited || child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 3000);
    await gone;
    clearTimeout(t);
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exited) throw new Error(`${cmd} exited during start-up:\n${out}`);
    if (await ready(out)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${cmd} did not become ready within ${START_TIMEOUT_MS} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, output: () => out, stop };
}

/** Does something accept TCP connections on 127.0.0.1:port? */
function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

// ---------------------------------------------------------------------------------------------
// Certificates

export interface Cert {
  key: string;
  cert: string;
  /** SHA-256 fingerprint as Node and openssl print it (`AB:CD:…`). */
  fingerprint: string;
}

/**
 * A CA and a server certificate it signs (SAN: DNS:localhost, IP:127.0.0.1, IP:::1), plus a
 * self-signed one for pinning; all EC P-256, valid two days.
 */
export async function makeCerts(dir: string): Promise<{ ca: Cert; server: Cert; selfSigned: Cert }> {
  const p = (n: string): string => join(dir, n);
  const ossl = (args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await ossl(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=fnpoll test CA']);
  await ossl(['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=localhost']);
  await writeFile(p('san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n');
  await ossl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('san.ext')]);
  await ossl(['req', '-x509', ...ec, '-keyout', p('self.key'), '-out', p('self.pem'), '-days', '2', '-subj', '/CN=hub.example', '-addext', 'subjectAltName=DNS:hub.example']);
  const load = async (name: string): Promise<Cert> => {
    const cert = await readFile(p(`${name}.pem`), 'utf8');
    return { key: p(`${name}.key`), cert: p(`${name}.pem`), fingerprint: new X509Certificate(cert).fingerprint256 };
  };
  return { ca: await load('ca'), server: await load('server'), selfSigned: await load('self') };
}

// ---------------------------------------------------------------------------------------------
// Fronts and proxies in this process

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const a = server.address();
  return a && typeof a === 'object' ? a.port : 0;
}

function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

/** binkps in front of a plain binkp port: node:tls terminates, bytes go on to 127.0.0.1:target. */
export async function tlsFront(target: number, cert: Cert): Promise<{ port: number; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTlsServer({ key: await readFile(cert.key), cert: await readFile(cert.cert), minVersion: 'TLSv1.2' }, (tls) => {
    const plain = netConnect({ host: '127.0.0.1', port: target });
    sockets.add(tls);
    sockets.add(plain);
    tls.pipe(plain).pipe(tls);
    const done = (): void => {
      tls.destroy();
      plain.destroy();
    };
    tls.on('error', done).on('close', done);
    plain.on('error', done).on('close', done);
  });
  server.on('connection', (s: Socket) => sockets.add(s));
  server.on('tlsClientError', () => undefined);
  return { port: await listen(server), stop: closer(server, sockets) };
}

/** An HTTP CONNECT proxy; with `auth` (`user:pass`) it answers 407 to anyone without it. */
export async function httpConnectProxy(auth?: string): Promise<{ port: number; requests: string[]; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  const server = createNetServer((client) => {
    sockets.add(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      client.off('data', onData);
      const text = head.toString('latin1', 0, end);
      requests.push(text.split('\r\n')[0]!);
      const m = /^CONNECT ([^\s]+):(\d+) HTTP\/1\.1/.exec(text);
      const given = /\r\nProxy-Authorization: Basic ([^\r\n]+)/i.exec(text)?.[1];
      if (!m) return void client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      if (auth && (!given || Buffer.from(given, 'base64').toString() !== auth)) {
        return void client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="t"\r\n\r\n');
      }
      const up = netConnect({ host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) });
      sockets.add(up);
      up.once('connect', () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length) up.write(rest);
        client.pipe(up).pipe(client);
      });
      up.once('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
      client.on('close', () => up.destroy());
    };
    client.on('data', onData);
    client.on('error', () => undefined);
  });
  return { port: await listen(server), requests, stop: closer(server, sockets) };
}

// ---------------------------------------------------------------------------------------------
// Debian's daemons

/**
 * dnsmasq on 127.0.0.1, authoritative for `domain` (other names there are NXDOMAIN) and answering
 * only what `records` gives (`--srv-host=…`, `--host-record=…`).
 */
export async function startDnsmasq(domain: string, records: string[]): Promise<Daemon> {
  const port = await freePort();
  const args = [
    '--keep-in-foreground', '--log-facility=-', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--pid-file=', '--log-queries', `--local=/${domain}/`, ...records,
  ];
  const resolver = new dnsPromises.Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  return startDaemon('dnsmasq', args, port, async () => {
    try {
      await resolver.resolve4(`ready.${domain}`);
      return true;
    } catch (err) {
      // An answer, even "no such name", means it is up.
      return ['ENOTFOUND', 'ENODATA', 'NXDOMAIN'].includes((err as NodeJS.ErrnoException).code ?? '');
    }
  });
}

/** stunnel4 accepting TLS on a free port and passing the plain bytes to 127.0.0.1:target. */
export async function startStunnel(dir: string, target: number, cert: Cert): Promise<Daemon> {
  const port = await freePort();
  const conf = join(dir, `stunnel-${port}.conf`);
  await writeFile(
    conf,
    [
      'foreground = yes',
      'pid =',
      'debug = 5',
      '[binkps]',
      `accept = 127.0.0.1:${port}`,
      `connect = 127.0.0.1:${target}`,
      `cert = ${cert.cert}`,
      `key = ${cert.key}`,
      'sslVersionMin = TLSv1.2',
      '',
    ].join('\n'),
  );
  return startDaemon('stunnel4', [conf], port, async (out) => /Configuration successful/.test(out) && tcpOpen(port));
}

/** danted (SOCKS5) on 127.0.0.1; `user` = the system user whose password it checks (RFC 1929). */
export async function startDanted(dir: string, opts: { user?: boolean } = {}): Promise<Daemon> {
  const port = await freePort();
  const conf = join(dir, `danted-${port}.conf`);
  await writeFile(
    conf,
    [
      'logoutput: stderr',
      `internal: 127.0.0.1 port = ${port}`,
      'external: 127.0.0.1',
      'clientmethod: none',
      `socksmethod: ${opts.user ? 'username' : 'none'}`,
      'user.privileged: root',
      'user.unprivileged: nobody',
      'client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }',
      'socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }',
      'socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 }',
      '',
    ].join('\n'),
  );
  return startDaemon('danted', ['-f', conf, '-p', join(dir, `danted-${port}.pid`)], port, () => tcpOpen(port));
}

/** A system user with a password, for danted's username method; removed by the returned function. */
export async function makeSystemUser(name: string, password: string): Promise<() => Promise<void>> {
  await run('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  const chpasswd = spawn('chpasswd', [], { stdio: ['pipe', 'ignore', 'inherit'] });
  chpasswd.stdin!.end(`${name}:${password}\n`);
  await new Promise<void>((resolve, reject) => chpasswd.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`chpasswd exit ${code}`)))));
  return async () => {
    await run('userdel', [name]).catch(() => undefined);
  };
}

// ---------------------------------------------------------------------------------------------
// A network namespace with a black-holed IPv6 route

/**
 * A fresh network namespace: loopback up, and 2001:db8::/32 routed into a veth pair whose far
 * end drops everything (a permanent neighbour entry with a MAC nobody has), so a connect() to
 * 2001:db8::1 gets no answer at all, as on a broken IPv6 path. Nothing leaves the namespace.
 */
export async function blackholeNetns(name: string): Promise<{ name: string; exec: (cmd: string[]) => string[]; remove: () => Promise<void> }> {
  await run('ip', ['netns', 'add', name]);
  const script = [
    'ip link set lo up',
    'ip link add v0 type veth peer name v1',
    'ip link set v0 up',
    'ip link set v1 up',
    'ip -6 addr add 2001:db8:ffff::1/64 dev v0 nodad',
    'ip -6 route add 2001:db8::/32 dev v0',
    'ip -6 neigh add 2001:db8::1 lladdr 02:00:00:00:00:01 dev v0 nud permanent',
  ].join(' && ');
  try {
    await run('ip', ['netns', 'exec', name, 'sh', '-c', script]);
  } catch (err) {
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
    throw err;
  }
  return {
    name,
    exec: (cmd) => ['ip', 'netns', 'exec', name, ...cmd],
    remove: async () => {
      await run('ip', ['netns', 'del', name]).catch(() => undefined);
    },
  };
}

/** A daemon started with `argv` (e.g. through `ip netns exec`), ready when its output matches. */
export function startCommand(argv: string[], ready: RegExp): Promise<Daemon> {
  return startDaemon(argv[0]!, argv.slice(1), 0, async (out) => ready.test(out));
}
