/**
 * The INI dialect of fnpoll.ini (shared with libftn's tools). Pure: text in, document out; no
 * schema knowledge here (that is ./load.ts).
 *
 *   [section]              names are case-insensitive; the case as written is kept for display
 *   key = value            keys are case-insensitive
 *   ; comment / # comment  whole-line comments
 *   key = value ; comment  an inline comment needs whitespace before `;` or `#`, so a password
 *                          such as `pa#ss;word` survives
 *   key = "  value ; # "   double quotes keep everything between them verbatim (no escapes)
 *
 * Every section and entry keeps its line number. Problems (malformed lines, duplicates) are
 * collected, one line each, rather than thrown, so that the loader can report them together
 * with schema problems.
 */

export interface IniEntry {
  /** Key as written. */
  name: string;
  /** Lower-cased key. */
  key: string;
  /** Value with surrounding whitespace, inline comment and quotes removed. */
  value: string;
  /** True when the value was written in double quotes. */
  quoted: boolean;
  line: number;
  /** The inline comment cut off an unquoted value (` ; ...`, ` # ...`), with its marker. */
  comment?: string | undefined;
  /** The environment variable that set it (config/env.ts), when it did not come from the file. */
  source?: string | undefined;
}

export interface IniSection {
  /** Name as written (between the brackets, trimmed). */
  name: string;
  /** Lower-cased name. */
  key: string;
  /** Line of the `[name]` header. */
  line: number;
  /** Entries in file order; at most one per key (duplicates are problems). */
  entries: IniEntry[];
}

export interface IniDocument {
  file: string;
  /** Sections in file order; at most one per name (duplicates are problems). */
  sections: IniSection[];
  /** One line per problem: `<file>:<line> [<section>] <key>: <what>`. */
  problems: string[];
}

const KEY_RE = /^[A-Za-z0-9_.-]+$/;
/** An inline comment starts at `;` or `#` that follows whitespace. */
const INLINE_COMMENT_RE = /\s[;#]/;

/** Is what is left on a line (after a header or a closing quote) empty or a comment? */
function isBlankOrComment(rest: string): boolean {
  const t = rest.trim();
  return t === '' || t.startsWith(';') || t.startsWith('#');
}

export function parseIni(text: string, file: string): IniDocument {
  const sections: IniSection[] = [];
  const problems: string[] = [];
  const byKey = new Map<string, IniSection>();
  let current: IniSection | undefined;
  // After a malformed header, keys belong to no section but deserve no second message. Entries
  // of a duplicate section go to a section object that is not kept.
  let discarding = false;

  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith(';') || trimmed.startsWith('#')) return;

    if (trimmed.startsWith('[')) {
      const m = /^\[([^\][]*)\](.*)$/.exec(trimmed);
      const name = m?.[1]!.trim();
      if (!m || !name || !isBlankOrComment(m[2]!)) {
        problems.push(`${file}:${line}: malformed section header ${quoteLine(trimmed)} (expected [name])`);
        // Keep the following keys out of the previous section.
        current = undefined;
        discarding = true;
        return;
      }
      const key = name.toLowerCase();
      const first = byKey.get(key);
      if (first) {
        problems.push(`${file}:${line} [${name}]: duplicate section (first at line ${first.line})`);
        current = { name, key, line, entries: [] };
        discarding = false;
        return;
      }
      current = { name, key, line, entries: [] };
      discarding = false;
      byKey.set(key, current);
      sections.push(current);
      return;
    }

    const eq = trimmed.indexOf('=');
    const name = eq < 0 ? '' : trimmed.slice(0, eq).trim();
    if (eq < 0 || !KEY_RE.test(name)) {
      problems.push(`${file}:${line}: malformed line ${quoteLine(trimmed)} (expected [section] or key = value)`);
      return;
    }
    const value = parseValue(trimmed.slice(eq + 1));
    if ('error' in value) {
      problems.push(`${file}:${line}${current ? ` [${current.name}]` : ''} ${name}: ${value.error}`);
      return;
    }
    if (!current) {
      if (!discarding) problems.push(`${file}:${line} ${name}: outside any [section]`);
      return;
    }
    const key = name.toLowerCase();
    const first = current.entries.find((e) => e.key === key);
    if (first) {
      problems.push(`${file}:${line} [${current.name}] ${name}: duplicate key (first at line ${first.line})`);
      return;
    }
    current.entries.push({ name, key, value: value.value, quoted: value.quoted, line, ...(value.comment === undefined ? {} : { comment: value.comment }) });
  });

  return { file, sections, problems };
}

/** A line for a message: quoted, cut at 60 characters. */
function quoteLine(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

/** The text after `=`: quoted, or unquoted with an optional inline comment. */
function parseValue(rest: string): { value: string; quoted: boolean; comment?: string } | { error: string } {
  const t = rest.trimStart();
  if (t.startsWith('"')) {
    const close = t.indexOf('"', 1);
    // The value is not echoed: it may be a password.
    if (close < 0) return { error: 'unterminated quoted value (no closing ")' };
    if (!isBlankOrComment(t.slice(close + 1))) return { error: 'unexpected text after the closing quote' };
    return { value: t.slice(1, close), quoted: true };
  }
  // Search `rest` rather than `t`: `key = #x` is a comment (whitespace before `#`), `key=#x` a value.
  const m = INLINE_COMMENT_RE.exec(rest);
  const value = (m ? rest.slice(0, m.index) : rest).trim();
  return m ? { value, quoted: false, comment: rest.slice(m.index).trim() } : { value, quoted: false };
}

/** The section named `name` (case-insensitive), if any. */
export function findSection(doc: IniDocument, name: string): IniSection | undefined {
  const key = name.toLowerCase();
  return doc.sections.find((s) => s.key === key);
}

/** The entry for `key` (case-insensitive) in `section`, if any. */
export function findEntry(section: IniSection, key: string): IniEntry | undefined {
  const k = key.toLowerCase();
  return section.entries.find((e) => e.key === k);
}
