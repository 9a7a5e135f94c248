/**
 * `FNPOLL_<SECTION>_<KEY>` environment variables override keys of the config file, for containers
 * and one-off runs (`FNPOLL_POLLER_LOG_LEVEL=debug fnpoll now`). Applied to the parsed document
 * before validation, so an overridden value is checked like any other and a message about it
 * names the variable. Pure: the environment is passed in.
 *
 * The section part matches a section of the file, or one of the fixed sections, by its name in
 * upper case with every character other than A-Z and 0-9 as `_` (`[fsx net]` -> `FSX_NET`); the
 * longest matching name wins, so `[fido]` and `[fido_b]` stay apart. A variable that matches no
 * section is not ours (FNPOLL_CONFIG, the hooks' FNPOLL_HUB, ...) and is left alone.
 */
import type { IniDocument, IniSection } from './ini.js';

export interface EnvOverride {
  variable: string;
  /** Section name as written in the file (or the fixed name). */
  section: string;
  key: string;
  value: string;
}

const PREFIX = 'FNPOLL_';
/** Sections an override may create when the file has none. */
const FIXED_SECTIONS = ['node', 'poller', 'performance'];
/** Shown as `********` by `check`. */
const SECRET_KEYS = new Set(['password', 'binkp_password']);

function envName(section: string): string {
  return section.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** FNPOLL_, then a `_` with something after it: a section part and a key part (both maybe empty). */
function mayOverride(variable: string): boolean {
  if (!variable.startsWith(PREFIX)) return false;
  const sep = variable.indexOf('_', PREFIX.length);
  return sep >= 0 && sep < variable.length - 1;
}

/** Applies the overrides to `doc` (in place) and returns them, in variable-name order. */
export function applyEnvOverrides(doc: IniDocument, env: NodeJS.ProcessEnv): EnvOverride[] {
  // Only FNPOLL_<SECTION>_<KEY> can match: FNPOLL_CONFIG and the like cannot, and most runs have
  // nothing else. Then nothing below is needed (the section names cost ~1 ms with 100 hubs).
  const variables = Object.keys(env).filter(mayOverride);
  if (variables.length === 0) return [];
  const candidates = new Map<string, string>();
  for (const name of FIXED_SECTIONS) candidates.set(envName(name), name);
  for (const s of doc.sections) candidates.set(envName(s.name), s.name);
  const byLength = [...candidates.keys()].sort((a, b) => b.length - a.length);

  const out: EnvOverride[] = [];
  for (const variable of variables.sort()) {
    const value = env[variable];
    if (value === undefined) continue;
    const rest = variable.slice(PREFIX.length);
    const upper = byLength.find((s) => rest.startsWith(`${s}_`) && rest.length > s.length + 1);
    if (upper === undefined) continue;
    const key = rest.slice(upper.length + 1).toLowerCase();
    if (!/^[a-z0-9_]+$/.test(key)) continue;
    const sectionName = candidates.get(upper)!;
    let section = doc.sections.find((s) => s.key === sectionName.toLowerCase());
    if (!section) {
      section = { name: sectionName, key: sectionName.toLowerCase(), line: 0, entries: [] } satisfies IniSection;
      doc.sections.push(section);
    }
    const entry = { name: key, key, value, quoted: true, line: 0, source: variable };
    const at = section.entries.findIndex((e) => e.key === key);
    if (at >= 0) section.entries[at] = { ...entry, line: section.entries[at]!.line };
    else section.entries.push(entry);
    out.push({ variable, section: section.name, key, value });
  }
  return out;
}

/** `[poller] log_level = debug (from $FNPOLL_POLLER_LOG_LEVEL)`; passwords as `********`. */
export function describeOverride(o: EnvOverride): string {
  const shown = SECRET_KEYS.has(o.key) ? '********' : JSON.stringify(o.value);
  return `[${o.section}] ${o.key} = ${shown} (from $${o.variable})`;
}
