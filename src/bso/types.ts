/** Shared BSO vocabulary [FTS-5005]. */
import type { FtnAddress } from '../ftn/address.js';

/** Highest first: the order files are sent in, and the order that decides whom to call. */
export const FLAVOURS = ['immediate', 'crash', 'direct', 'normal', 'hold'] as const;
export type Flavour = (typeof FLAVOURS)[number];

/** One domain's outbound tree: `root` holds `defaultZone`, other zones live in `root.zzz`. */
export interface BsoLayout {
  root: string;
  defaultZone: number;
}

/** What is queued for one node, for planning and `status`. */
export interface QueueSummary {
  files: number;
  bytes: number;
  /** Highest flavour present (a `.req` or empty flow file counts by its flavour), or undefined when nothing is queued. */
  flavour: Flavour | undefined;
  /** True when an empty flow file (a poll request) is present. */
  pollRequest: boolean;
}

export interface NodeRef {
  address: FtnAddress;
  layout: BsoLayout;
}
