/**
 * Which binkp extensions a session uses: what we offer in our `OPT`, and what follows from both
 * sides' offers once M_OK has arrived. Pure. Each rule follows binkd 1.1a (protocol.c: banner,
 * NUL, PWD, OK, complete_login) or the extension's standard.
 */
import { parseCrc } from './crc.js';
import { SUPPORTED_METHODS, type Method } from './compress.js';

/** What the sysop allows for one hub (config keys use_compression, use_crc, use_crypt, use_nd, nr_mode). */
export interface ExtensionPrefs {
  compression: boolean;
  crc: boolean;
  crypt: boolean;
  nd: boolean;
  nr: boolean;
}

/** What the session knows about the login when it decides. */
export interface LoginFacts {
  /** A real password was configured (not `-`). */
  password: boolean;
  /** The password went as a CRAM-MD5 digest. */
  cram: boolean;
  /** The hub answered M_OK `secure`. */
  secure: boolean;
}

/**
 * Our OPT tokens, in binkd's order (`NDA EXTCMD NR ND CRYPT GZ`), then PLZ and CRC. Only what is
 * implemented and allowed is listed (FTN-NOTES §3). CRYPT is offered only with a password: the
 * greeting goes out before we know whether the hub offers CRAM-MD5, so negotiate() checks that.
 */
export function ourOptions(prefs: ExtensionPrefs, hasPassword: boolean): string[] {
  const opts: string[] = [];
  if (prefs.nd) opts.push('NDA');
  if (prefs.compression) opts.push('EXTCMD');
  // binkd: ND includes NR; its caller says "OPT NR ND" (doc/nd-mode-ru.txt §2).
  if (prefs.nr || prefs.nd) opts.push('NR');
  if (prefs.nd) opts.push('ND');
  if (prefs.crypt && hasPassword) opts.push('CRYPT');
  if (prefs.compression) opts.push(...SUPPORTED_METHODS);
  // FTS-1029 §1: per-frame compression; the same switch as the per-file kind.
  if (prefs.compression) opts.push('PLZ');
  // FTS-1030 §2.2: "indicates that the mailer is able to process the CRC-extended M_FILE".
  if (prefs.crc) opts.push('CRC');
  return opts;
}

/** The extensions in force for the rest of a session. */
export interface Negotiated {
  /** binkd CRYPT: every byte after M_OK goes through ./crypt.ts. */
  crypt: boolean;
  /** Methods we may put in an M_FILE's fifth token (the hub offered EXTCMD and the method). */
  sendMethods: Method[];
  /** We accept GZ in the M_FILEs we receive (we offered it). */
  receiveMethods: Method[];
  /** FTS-1029: both offered PLZ. */
  plz: boolean;
  /** FTS-1030: the hub offered CRC, so our M_FILEs carry the checksum. */
  sendCrc: boolean;
  /** FTS-1030: we offered CRC, so a fifth hex token in the hub's M_FILE is a checksum to verify. */
  verifyCrc: boolean;
  /** binkd WE_ND: we send in ND mode (offer the next file only after M_GOT/M_SKIP of the last). */
  sendNd: boolean;
  /** binkd THEY_ND: the hub sends in ND mode; a received file is placed when the next one starts. */
  receiveNd: boolean;
}

/** Decide from our tokens, the hub's (all its OPT lines merged), and the login. */
export function negotiate(ours: readonly string[], theirs: ReadonlySet<string>, login: LoginFacts): Negotiated {
  const both = (opt: string): boolean => ours.includes(opt) && theirs.has(opt);
  const extcmd = both('EXTCMD');
  // binkd complete_login: CRYPT needs both offers, a secure session and CRAM-MD5; binkd's OK()
  // drops it when the hub says "non-secure".
  const crypt = both('CRYPT') && login.password && login.cram && login.secure;
  // binkd protocol.c: OPT ND from the other side sets WE_ND, our own ND is THEY_ND, and a
  // one-sided result stands only when the answering side also said NDA (OK(): "remote does not
  // support asymmetric ND-mode").
  let sendNd = ours.includes('ND') && theirs.has('ND');
  let receiveNd = ours.includes('ND') && (theirs.has('ND') || theirs.has('NDA'));
  if (sendNd !== receiveNd && !theirs.has('NDA')) sendNd = receiveNd = false;
  return {
    crypt,
    sendMethods: extcmd ? SUPPORTED_METHODS.filter((m) => theirs.has(m) && ours.includes(m)) : [],
    receiveMethods: SUPPORTED_METHODS.filter((m) => ours.includes(m)),
    plz: both('PLZ'),
    sendCrc: ours.includes('CRC') && theirs.has('CRC'),
    verifyCrc: ours.includes('CRC'),
    sendNd,
    receiveNd,
  };
}

/** Short labels of what is in force, for the session's log line, `stats` and the metrics label. */
export function describeNegotiated(n: Negotiated, nr: boolean): string[] {
  const out: string[] = [];
  if (n.sendMethods.length > 0) out.push(...n.sendMethods);
  if (n.plz) out.push('PLZ');
  if (n.crypt) out.push('CRYPT');
  // FTS-1030: in force when both offered it (we verify whatever comes, but it takes both).
  if (n.sendCrc) out.push('CRC');
  if (n.sendNd || n.receiveNd) out.push('ND');
  else if (nr) out.push('NR');
  return out;
}

/** What an M_FILE's tokens after the offset say. */
export interface FileExtras {
  /** GZ or BZ2 named: the data is one compressed stream. */
  method?: Method | undefined;
  /** FTS-1030 checksum of the whole file. */
  crc?: number | undefined;
  /** Tokens we do not know (logged, otherwise ignored as binkd does). */
  unknown: string[];
}

/**
 * Read the extra M_FILE tokens. A hex token is a checksum only when we offered CRC (FTS-1030
 * §2.2); `GZ`/`BZ2` name the method.
 */
export function parseFileExtras(extra: readonly string[], verifyCrc: boolean): FileExtras {
  const out: FileExtras = { unknown: [] };
  for (const token of extra) {
    if (token === 'GZ' || token === 'BZ2') out.method = token;
    else if (verifyCrc && out.crc === undefined && parseCrc(token) !== undefined) out.crc = parseCrc(token);
    else out.unknown.push(token);
  }
  return out;
}

/**
 * The tokens after the offset of an M_FILE we send. FTS-1030 §3: CRC and compression both use
 * the fifth argument and cannot go together, so a compressed file goes without the checksum.
 */
export function formatFileExtras(method: Method | undefined, crcToken: string | undefined): string {
  if (method) return ` ${method}`;
  return crcToken ? ` ${crcToken}` : '';
}

/** `M_GET name size time offset NZ`: the receiver wants the rest uncompressed (binkd GET; FTS-1029 §1). */
export function hasNz(extra: readonly string[]): boolean {
  return extra.includes('NZ');
}
