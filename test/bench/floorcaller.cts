/**
 * The floor: the least a binkp caller written for Node.js can do to receive a hub's files
 * [FTS-1026 §5, §6], run by the bench beside fnpoll and `binkd -p -P` on the same work. It reads
 * no config, takes no lock, keeps no state and writes no log; it sends a plain-text password,
 * writes each file under its own name with one synchronous write per data frame, and sends M_GOT
 * as soon as a file is complete. What it takes is Node's own start plus the hub's pace: no caller
 * on Node.js can do the same work in less, so a target below it cannot be met by any of them.
 *
 * With `--fsync` it makes each file durable before its M_GOT, as fnpoll's `fsync = yes` does:
 * files complete while no sync runs start a round (an fdatasync each, all at once, then one fsync
 * of the directory); files completed meanwhile wait for the next round (group commit, no delay
 * window). That is the floor for what durability costs on the disk at hand.
 *
 * It imports nothing but Node's own modules, so that loading it costs what loading any small
 * script costs. Usage: `node floorcaller.cjs <port> <our address> <password> <inbound> [--fsync]`.
 * Exit 0 when the hub ends a complete session, 1 with one line on stderr otherwise.
 */
import { connect } from 'node:net';
import { closeSync, fdatasync, fsync, openSync, writeSync } from 'node:fs';

// As fnpoll's start-up does (src/boot.cts): enough threads for a round of syncs to be in flight
// at once. libuv reads this when the pool first starts, which is after this line.
process.env['UV_THREADPOOL_SIZE'] ??= '32';

const [portText, address, password, inbound, flag] = process.argv.slice(2);
const durable = flag === '--fsync';
if (!portText || !address || !password || !inbound || (flag !== undefined && !durable)) {
  process.stderr.write('usage: floorcaller <port> <our address> <password> <inbound> [--fsync]\n');
  process.exit(2);
}

// FTS-1026 §5.2: frame header, bit 15 set for a command; §5.3: the command ids used here.
const M_NUL = 0;
const M_ADR = 1;
const M_PWD = 2;
const M_FILE = 3;
const M_OK = 4;
const M_EOB = 5;
const M_GOT = 6;
const M_ERR = 7;
const M_BSY = 8;

function command(id: number, text: string): Buffer {
  const arg = Buffer.from(text, 'latin1');
  const frame = Buffer.allocUnsafe(3 + arg.length);
  frame.writeUInt16BE(0x8000 | (arg.length + 1), 0);
  frame[2] = id;
  arg.copy(frame, 3);
  return frame;
}

function fail(text: string): never {
  process.stderr.write(`floorcaller: ${text}\n`);
  process.exit(1);
}

interface Incoming {
  name: string;
  size: number;
  got: Buffer;
  fd: number;
  received: number;
}

const socket = connect(Number(portText), '127.0.0.1');
socket.setNoDelay(true);
// §6.1.1: M_NUL with our version first (binkp/1.1: multiple batches), then M_ADR and M_PWD.
socket.write(Buffer.concat([command(M_NUL, 'VER floorcaller/1 binkp/1.1'), command(M_ADR, address), command(M_PWD, password)]));

let pending: Buffer = Buffer.alloc(0);
let current: Incoming | undefined;
let theirEob = 0;
let ourEob = 0;
let files = 0;
/** Complete files waiting for their round of syncs (--fsync). */
let waiting: Incoming[] = [];
let syncing = false;
const dirFd = durable ? openSync(inbound, 'r') : -1;

function complete(file: Incoming, out: Buffer[]): void {
  files++;
  current = undefined;
  if (durable) {
    waiting.push(file);
    return;
  }
  closeSync(file.fd);
  out.push(file.got);
}

/** One round: every waiting file's fdatasync at once, then the directory's fsync, then the M_GOTs. */
function syncRound(): void {
  if (syncing || waiting.length === 0) return;
  syncing = true;
  const round = waiting;
  waiting = [];
  const each = round.map((f) => new Promise<void>((resolve, reject) => fdatasync(f.fd, (err) => (err ? reject(err) : resolve()))));
  Promise.all(each)
    .then(() => new Promise<void>((resolve, reject) => fsync(dirFd, (err) => (err ? reject(err) : resolve()))))
    .then(
      () => {
        for (const f of round) closeSync(f.fd);
        socket.write(Buffer.concat(round.map((f) => f.got)));
        syncing = false;
        syncRound();
      },
      (err: unknown) => fail(`fsync: ${String(err)}`),
    );
}

socket.on('data', (chunk: Buffer) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  const out: Buffer[] = [];
  let at = 0;
  while (pending.length - at >= 2) {
    const header = pending.readUInt16BE(at);
    const size = header & 0x7fff;
    if (pending.length - at < 2 + size) break;
    const body = pending.subarray(at + 2, at + 2 + size);
    at += 2 + size;
    if (header & 0x8000) {
      const id = body[0];
      const text = body.subarray(1).toString('latin1');
      if (id === M_FILE) {
        // §6.4: "name size time offset"; the bench's hub offers every file from 0.
        const [name = '', sizeText = '', time = ''] = text.split(' ');
        if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) fail(`refusing the file name ${JSON.stringify(name)}`);
        const file: Incoming = { name, size: Number(sizeText), got: command(M_GOT, `${name} ${sizeText} ${time}`), fd: openSync(`${inbound}/${name}`, 'w'), received: 0 };
        current = file;
        if (file.size === 0) complete(file, out);
      } else if (id === M_OK) {
        out.push(command(M_EOB, ''));
        ourEob++;
      } else if (id === M_EOB) {
        // §6.8 (binkp/1.1): a batch ends when both sides sent M_EOB; we answer each of the hub's.
        theirEob++;
        if (theirEob > ourEob) {
          out.push(command(M_EOB, ''));
          ourEob++;
        }
      } else if (id === M_ERR || id === M_BSY) {
        fail(`the hub said ${id === M_ERR ? 'M_ERR' : 'M_BSY'} ${JSON.stringify(text)}`);
      }
    } else if (body.length === 0) {
      // An empty data frame carries nothing (a 0-byte file may be followed by one).
    } else if (current) {
      writeSync(current.fd, body);
      current.received += body.length;
      if (current.received >= current.size) complete(current, out);
    } else {
      fail('data frame outside a file');
    }
  }
  pending = pending.subarray(at);
  if (out.length) socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  syncRound();
});

socket.on('error', (err) => fail(err.message));
socket.on('close', () => {
  if (current || waiting.length || syncing) fail(`the hub closed the session with a file not acknowledged (${files} complete)`);
  process.exit(0);
});
