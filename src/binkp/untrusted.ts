/**
 * Text that came from the network (a hub's M_ERR, M_NUL, M_ADR, file names) on its way to a
 * terminal or a log. Raw, it could carry ESC sequences, `\r` or backspaces that rewrite the
 * sysop's screen, or a newline that fakes a log line. Pure.
 */

/** Longest network text shown in one message; the rest is cut and marked. */
export const MAX_SHOWN_CHARS = 300;

/** C0 controls, DEL and C1 controls: never shown raw. */
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/g;
const HAS_CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

function hex(ch: string): string {
  return `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/**
 * `text` safe to print or log: every control character (C0, DEL, C1) becomes `\xHH`, and text
 * longer than `max` characters is cut with a note of how much was dropped. Idempotent: escaping
 * twice changes nothing more, so a message built from escaped pieces may be escaped again whole.
 */
export function shownText(text: string, max = MAX_SHOWN_CHARS): string {
  let out = text.length > max ? text.slice(0, max) : text;
  if (HAS_CONTROL_RE.test(out)) out = out.replace(CONTROL_RE, hex);
  return text.length > max ? `${out}… (${text.length - max} more characters)` : out;
}
