/**
 * binkd's ND status file (`<node>.stc` beside the node's flow files; binkd protocol.c
 * ND_set_status, ftnq.c): one line `name size time` naming the last file a hub confirmed in ND
 * mode while it may still be waiting, unrenamed, in the hub's temp inbound. The next session
 * offers that file first (with -1 and without data) so the hub can finish placing it. The same
 * file and format as binkd's, so binkd answering the same node reads what fnpoll wrote.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import writeFileAtomic from 'write-file-atomic';
import { formatFileRef, parseFileRef, type FileRef } from '../binkp/commands.js';
import { IoError, errorText } from '../errors.js';

export const ND_STATUS_EXT = 'stc';

/** The status of the node whose BSO base path (no extension) is `base`; undefined when none or unreadable. */
export function readNdStatus(base: string, warn: (msg: string) => void = () => undefined): FileRef | undefined {
  const path = `${base}.${ND_STATUS_EXT}`;
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') warn(`${path}: cannot read ND status: ${errorText(err)}`);
    return undefined;
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  // binkd ftnq.c: a status that starts with a space or does not parse is ignored.
  const ref = /^\s/.test(line) ? undefined : parseFileRef(line);
  if (!ref) warn(`${path}: ignoring an ND status that is not "name size time": ${JSON.stringify(line.slice(0, 80))}`);
  return ref;
}

/** Record `ref` (written atomically: a crash leaves the old status or the new one). */
export async function writeNdStatus(base: string, ref: FileRef): Promise<void> {
  const path = `${base}.${ND_STATUS_EXT}`;
  try {
    await writeFileAtomic(path, formatFileRef(ref));
  } catch (err) {
    throw new IoError(`${path}: cannot write ND status: ${errorText(err)}`, { cause: err });
  }
}

export function clearNdStatus(base: string): void {
  const path = `${base}.${ND_STATUS_EXT}`;
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new IoError(`${path}: cannot remove ND status: ${errorText(err)}`, { cause: err });
  }
}
