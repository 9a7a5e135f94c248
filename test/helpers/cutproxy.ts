/**
 * A loopback TCP relay that cuts a binkp session at an exact frame: it forwards both ways until
 * a given command frame passes in a given direction, delivers that frame, drops everything after
 * it both ways, and closes both ends. For proving what a killed session leaves behind (the "M_GOT
 * window" of binkd's ND mode). Plain binkp only (no CRYPT).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FrameDecoder } from '../../src/binkp/frame.js';

export interface CutProxy {
  port: number;
  /** Resolves when the cut happened. */
  readonly cut: Promise<void>;
  close(): Promise<void>;
}

/** `dir`: 'down' = hub to caller, 'up' = caller to hub. */
export async function cutAfterFrame(hubPort: number, dir: 'down' | 'up', commandId: number): Promise<CutProxy> {
  let markCut!: () => void;
  const cut = new Promise<void>((r) => (markCut = r));
  const sockets = new Set<Socket>();
  const server: Server = createServer((caller) => {
    const hub = connect(hubPort, '127.0.0.1');
    sockets.add(caller).add(hub);
    let done = false;
    const [from, to] = dir === 'down' ? [hub, caller] : [caller, hub];
    const [back, backTo] = dir === 'down' ? [caller, hub] : [hub, caller];
    let found = false;
    const decoder = new FrameDecoder({
      command: (id) => {
        if (id === commandId) found = true;
      },
      data: () => undefined,
    });
    from.on('data', (chunk: Buffer) => {
      if (done) return;
      // Byte by byte, to know where the frame ends.
      for (let i = 0; i < chunk.length; i++) {
        decoder.push(chunk.subarray(i, i + 1));
        if (found) {
          done = true;
          to.write(chunk.subarray(0, i + 1));
          setTimeout(() => {
            caller.destroy();
            hub.destroy();
            markCut();
          }, 300);
          return;
        }
      }
      to.write(chunk);
    });
    back.on('data', (chunk: Buffer) => {
      if (!done) backTo.write(chunk);
    });
    for (const s of [caller, hub]) {
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        caller.destroy();
        hub.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const a = server.address();
  return {
    port: a && typeof a === 'object' ? a.port : 0,
    cut,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
