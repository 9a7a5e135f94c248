/**
 * The whole outbound, per node and flavour, like binkd's printq: what waits, how much, since when,
 * and which configured hub will carry it. Mail for a node that no hub serves, and zone directories
 * that no hub reads, never leave: they are reported so that the sysop can route them.
 *
 * Reads the BSO trees of every hub (FTS-5005 §2: `root` for the default zone, `root.zzz` for the
 * others, `NNNNnnnn.pnt/` for points); the per-node rules are scanNode's.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { FtnAddress } from '../ftn/address.js';
import { addressKey } from '../ftn/address.js';
import { FLAVOURS, type BsoLayout, type Flavour } from './types.js';
import { classifyExtension, parseZoneExtension, scanNode, OutboundDirCache } from './outbound.js';
import { isErrno } from '../files.js';

export interface QueueHub {
  name: string;
  address: FtnAddress;
  layout: BsoLayout;
}

export interface QueueRow {
  address: FtnAddress;
  flavour: Flavour;
  files: number;
  bytes: number;
  /** Epoch ms of the oldest packet or flow file of this flavour (when it was queued). */
  oldest: number | undefined;
  /** The hub that carries it, or undefined: it will never leave. */
  hub: string | undefined;
  /** Only a poll request (empty flow file) of this flavour, no files. */
  pollOnly: boolean;
}

export interface OutboundReport {
  rows: QueueRow[];
  /** Zone directories with node files that no hub of that root and zone reads. */
  unreadZoneDirs: { dir: string; zone: number; nodes: number }[];
  warnings: string[];
}

const NODE_FILE_RE = /^([0-9a-f]{8})\.([a-z0-9]{3})$/i;
const POINT_DIR_RE = /^([0-9a-f]{8})\.pnt$/i;

function listOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return [];
    throw err;
  }
}

/** Addresses (zone taken from the directory) that have BSO files in `dir` or its point dirs. */
function nodesIn(dir: string, zone: number, domain: string | undefined): FtnAddress[] {
  const out = new Map<string, FtnAddress>();
  const add = (a: FtnAddress): void => void out.set(addressKey(a), a);
  for (const name of listOrEmpty(dir)) {
    const m = NODE_FILE_RE.exec(name);
    if (m && classifyExtension(m[2]!)) {
      add({ zone, net: parseInt(m[1]!.slice(0, 4), 16), node: parseInt(m[1]!.slice(4), 16), point: 0, domain });
      continue;
    }
    const p = POINT_DIR_RE.exec(name);
    if (!p) continue;
    const net = parseInt(p[1]!.slice(0, 4), 16);
    const node = parseInt(p[1]!.slice(4), 16);
    for (const pname of listOrEmpty(join(dir, name))) {
      const pm = NODE_FILE_RE.exec(pname);
      if (pm && classifyExtension(pm[2]!)) add({ zone, net, node, point: parseInt(pm[1]!, 16), domain });
    }
  }
  return [...out.values()];
}

/** The zone directories of a BSO root that exist: the root itself and its `root.zzz` siblings. */
function zoneDirsOf(layout: BsoLayout): { dir: string; zone: number }[] {
  const root = resolve(layout.root);
  const out = [{ dir: root, zone: layout.defaultZone }];
  for (const name of listOrEmpty(dirname(root))) {
    const zone = parseZoneExtension(basename(root), name);
    if (zone !== undefined) out.push({ dir: join(dirname(root), name), zone });
  }
  return out;
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Every node with something queued in the hubs' outbound trees (plus `extraRoots`), per flavour. */
export async function readOutbound(hubs: readonly QueueHub[], extraRoots: readonly BsoLayout[] = []): Promise<OutboundReport> {
  const layouts = new Map<string, BsoLayout>();
  for (const l of [...hubs.map((h) => h.layout), ...extraRoots]) if (!layouts.has(resolve(l.root))) layouts.set(resolve(l.root), l);
  const rows: QueueRow[] = [];
  const unreadZoneDirs: OutboundReport['unreadZoneDirs'] = [];
  const warnings: string[] = [];
  for (const [root, layout] of layouts) {
    const servedHere = hubs.filter((h) => resolve(h.layout.root) === root);
    const domain = servedHere[0]?.address.domain;
    const dirs = new OutboundDirCache();
    for (const { dir, zone } of zoneDirsOf(layout)) {
      const nodes = nodesIn(dir, zone, domain);
      if (nodes.length === 0) continue;
      if (zone !== layout.defaultZone && !servedHere.some((h) => h.address.zone === zone)) {
        unreadZoneDirs.push({ dir, zone, nodes: nodes.length });
      }
      for (const addr of nodes) {
        const q = await scanNode(layout, addr, { dirs, warn: (m) => warnings.push(m) });
        const hub = servedHere.find((h) => h.address.zone === addr.zone && h.address.net === addr.net && h.address.node === addr.node && h.address.point === addr.point);
        const byFlavour = new Map<Flavour, QueueRow>();
        const row = (flavour: Flavour): QueueRow => {
          let r = byFlavour.get(flavour);
          if (!r) byFlavour.set(flavour, (r = { address: addr, flavour, files: 0, bytes: 0, oldest: undefined, hub: hub?.name, pollOnly: true }));
          return r;
        };
        const queuedAt = (r: QueueRow, path: string): void => {
          const t = mtimeOf(path);
          if (t !== undefined && (r.oldest === undefined || t < r.oldest)) r.oldest = t;
        };
        for (const item of q.items) {
          const r = row(item.flavour);
          r.files++;
          r.bytes += item.size;
          r.pollOnly = false;
          queuedAt(r, item.flow?.flowPath ?? item.path);
        }
        for (const flow of q.pollRequests) {
          const ext = flow.slice(flow.lastIndexOf('.') + 1);
          const c = classifyExtension(ext);
          if (c && c.kind === 'flow') queuedAt(row(c.flavour), flow);
        }
        rows.push(...FLAVOURS.flatMap((f) => (byFlavour.has(f) ? [byFlavour.get(f)!] : [])));
      }
    }
  }
  return { rows, unreadZoneDirs, warnings };
}
