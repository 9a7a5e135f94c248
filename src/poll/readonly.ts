/** Reading the state without side effects, for `--dry-run`, `status`, `stats` and `health`. */
import { readFile } from 'node:fs/promises';
import { emptyState, parseState, type State } from './state.js';
import { errorText } from '../errors.js';

/**
 * Like loadState, but a corrupt file is only reported, never moved aside: these commands touch
 * nothing. The next real run quarantines it.
 */
export async function loadStateReadOnly(path: string, warn: (m: string) => void): Promise<State> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    warn(`state file ${path} is unreadable (${errorText(err)}); showing empty state`);
    return emptyState();
  }
  try {
    return parseState(text);
  } catch (err) {
    warn(`state file ${path} is invalid (${errorText(err)}); showing empty state (the next run moves it aside)`);
    return emptyState();
  }
}
