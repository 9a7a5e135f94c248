/**
 * `fnpoll demo`: a complete poll on loopback, nothing to set up. A scripted hub (the same one the
 * tests use) answers on 127.0.0.1; a demo node with a netmail packet and a file attach in its BSO
 * outbound calls it with `fnpoll now`, and the result is shown as a sysop would see it.
 */
import { mkdtemp, mkdir, writeFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GlobalFlags, Io } from './io.js';
import { ScriptedHub } from '../demo/hub.js';
import { ExitCode } from '../errors.js';
import { commandRun } from './run.js';

const HUB_ADDRESS = '2:5020/1@fidonet';
const OUR_ADDRESS = '2:5020/9999@fidonet';
const PASSWORD = 'demo-password';

/** A minimal FTS-0001 type 2+ packet header (58 bytes) + one empty message terminator. */
function demoPacket(): Buffer {
  const b = Buffer.alloc(58 + 2 + 64);
  b.writeUInt16LE(9999, 0); // origNode
  b.writeUInt16LE(1, 2); // destNode
  b.writeUInt16LE(2026, 4);
  b.writeUInt16LE(5020, 20); // origNet
  b.writeUInt16LE(5020, 22); // destNet
  b.writeUInt16LE(2, 18); // packet type 2
  b.write('demo netmail from fnpoll', 60, 'latin1');
  return b;
}

export async function commandDemo(flags: GlobalFlags & { keep?: boolean }, io: Io): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'fnpoll-demo-'));
  const outbound = join(dir, 'outbound');
  const inbound = join(dir, 'inbound');
  await mkdir(join(dir, 'files'), { recursive: true });
  await mkdir(outbound, { recursive: true });
  const now = Math.floor(Date.now() / 1000);

  // Our outbound for the hub 2:5020/1: 139c0001 = hex(5020) hex(1) [FTS-5005].
  await writeFile(join(outbound, '139c0001.out'), demoPacket());
  const attach = join(dir, 'files', 'newsletter.txt');
  await writeFile(attach, 'fnpoll demo: a file attach, deleted after the hub confirms it (^ directive).\n'.repeat(200));
  await writeFile(join(outbound, '139c0001.flo'), `^${attach}\n`);

  const hub = new ScriptedHub({
    addresses: [HUB_ADDRESS],
    password: PASSWORD,
    // Like binkd with zlib, plus FTS-1030: the session line shows the extensions in force.
    loginOptions: ['EXTCMD', 'GZ', 'CRC'],
    files: [
      { name: 'welcome.txt', data: Buffer.from('Welcome to the fnpoll demo hub.\n'), mtime: now },
      { name: 'nodelist.z47', data: Buffer.alloc(96 * 1024, 'N'), mtime: now },
    ],
  });
  const port = await hub.listen(0, '127.0.0.1');
  const config = join(dir, 'fnpoll.ini');
  await writeFile(
    config,
    [
      '; written by `fnpoll demo`',
      '[node]',
      `address = ${OUR_ADDRESS}`,
      'system = fnpoll demo node',
      'sysop = Demo Sysop',
      'location = Loopback',
      'outbound = outbound',
      'inbound = inbound',
      '',
      '[poller]',
      'state_file = state.json',
      'log_file = fnpoll.log',
      'log_level = debug',
      '',
      '[demohub]',
      `hub_address = ${HUB_ADDRESS}`,
      `binkp = 127.0.0.1:${port}`,
      `password = ${PASSWORD}`,
      '',
    ].join('\n'),
  );

  io.err(`fnpoll demo: a scripted hub ${HUB_ADDRESS} listens on 127.0.0.1:${port}\n`);
  io.err(`fnpoll demo: our node ${OUR_ADDRESS} has a netmail packet and a file attach queued in ${outbound}\n`);
  io.err(`fnpoll demo: running: fnpoll now -c ${config}\n\n`);
  let code: number;
  try {
    code = await commandRun([], { ...flags, config }, io, true);
  } finally {
    await hub.close();
  }

  io.out('\n');
  io.out(`The hub received: ${hub.received.map((f) => `${f.name} (${f.size} bytes)`).join(', ') || 'nothing'}\n`);
  const got: string[] = [];
  for (const name of (await readdir(inbound).catch(() => [] as string[])).sort()) {
    const st = await stat(join(inbound, name));
    if (st.isFile()) got.push(`${name} (${st.size} bytes)`);
  }
  io.out(`Our inbound (${inbound}) holds: ${got.join(', ') || 'nothing'}\n`);
  const left = await readdir(outbound).catch(() => [] as string[]);
  io.out(`Our outbound now holds: ${left.join(', ') || 'nothing (everything was confirmed and removed)'}\n`);
  if (flags.keep) {
    io.out(`Demo files kept in ${dir} (config ${config}, log ${join(dir, 'fnpoll.log')}).\n`);
  } else {
    await rm(dir, { recursive: true, force: true });
    io.out('Demo directory removed (use --keep to look around).\n');
  }
  return code === ExitCode.OK ? ExitCode.OK : code;
}
