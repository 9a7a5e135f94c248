/**
 * What the `npm run harden` suites share: the contract of a suite file, the figures that must be
 * 0, and the summary table.
 *
 * A suite is `test/harden/<name>.suite.ts` exporting `run(size)`. It prints its own figures as it
 * goes and returns them; the runner (./run.ts) adds them up. Figure names are camelCase; those in
 * MUST_BE_ZERO fail the run when they are not 0.
 */
import { shownText } from '../../src/binkp/untrusted.js';

export type Size = 'full' | 'small';
export type Figures = Record<string, number>;
export type SuiteRun = (size: Size) => Promise<Figures>;

/** Figures that prove a promise: any other value than 0 is a defect. */
export const MUST_BE_ZERO = [
  'lost',
  'duplicated',
  'corrupt',
  'staleFlags',
  'invalidStates',
  'failures',
  'throws',
  'hangs',
  // The crash-loop and disk/clock suites' own promises (their `mustBeZero` lists).
  'tempFiles',
  'blockedRuns',
  'wedged',
  'leftInOutbound',
  'stackTraces',
  'badExits',
  'neverDue',
  'alwaysDue',
] as const;

/** The table's rows, in this order first; other figures follow in the order the suites gave them. */
const ROW_ORDER = ['cases', 'kills', 'filesChecked', ...MUST_BE_ZERO];

const LABELS: Readonly<Record<string, string>> = {
  cases: 'cases tried',
  kills: 'kills',
  filesChecked: 'files checked',
  lost: 'lost',
  duplicated: 'duplicated',
  corrupt: 'corrupt',
  staleFlags: 'stale flags',
  invalidStates: 'invalid states',
  failures: 'failures',
  throws: 'untyped throws',
  hangs: 'hangs',
};

export function label(key: string): string {
  return LABELS[key] ?? key.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
}

/** The must-be-0 figures that are not, as `label = value`. */
export function violations(figures: Figures): string[] {
  return MUST_BE_ZERO.filter((k) => (figures[k] ?? 0) !== 0).map((k) => `${label(k)} = ${figures[k]}`);
}

/** Add `b` into `a`. */
export function addFigures(a: Figures, b: Figures): Figures {
  for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
  return a;
}

/** One row per figure, one column per suite, and a total; must-be-0 rows marked. */
export function summaryTable(columns: { name: string; figures: Figures }[]): string {
  const keys: string[] = ROW_ORDER.filter((k) => columns.some((c) => k in c.figures) || (MUST_BE_ZERO as readonly string[]).includes(k));
  for (const c of columns) for (const k of Object.keys(c.figures)) if (!keys.includes(k)) keys.push(k);
  const total = columns.reduce((t, c) => addFigures(t, c.figures), {} as Figures);
  const head = ['figure', ...columns.map((c) => c.name), 'total', 'must be 0'];
  const rows = keys.map((k) => [
    label(k),
    ...columns.map((c) => (k in c.figures ? String(c.figures[k]) : '-')),
    String(total[k] ?? 0),
    (MUST_BE_ZERO as readonly string[]).includes(k) ? ((total[k] ?? 0) === 0 ? 'yes: ok' : 'yes: FAILED') : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** A value (counterexample, message) made safe and short for the terminal. */
export function shown(value: unknown, max = 300): string {
  let text: string;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) text = `<${value.length} bytes> ${Buffer.from(value).toString('latin1')}`;
  else if (typeof value === 'string') text = JSON.stringify(value);
  else {
    try {
      text = JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v)) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return shownText(text, max);
}

/** Print one line for a suite (stdout: the figures are the suite's output). */
export function say(suite: string, text: string): void {
  process.stdout.write(`[${suite}] ${text}\n`);
}
