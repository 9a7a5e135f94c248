import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildConfig, HUB_KEYS } from '../../../src/config/load.js';
import { parseIni } from '../../../src/config/ini.js';
import { ROOT } from '../../helpers/node.js';

const file = join(ROOT, 'fnpoll.ini.example');
const text = readFileSync(file, 'utf8');

test('fnpoll.ini.example loads without a problem or a warning', () => {
  const c = buildConfig(parseIni(text, file), file);
  assert.deepEqual(c.warnings, []);
  assert.deepEqual(c.hubs.map((h) => h.name), ['fidonet', 'fsxnet']);
});

test('its commented-out keys are real keys too', () => {
  // Uncomment every `;key = value` line and load again: a key that fnpoll does not know, or a
  // value it refuses, would show up here.
  const all = text.replace(/^;(?=[a-z_]+\s*=)/gm, '');
  const c = buildConfig(parseIni(all, file), file);
  assert.deepEqual(c.warnings, []);
  assert.equal(c.poller.onRunEnd, '[ "$FNPOLL_FILES_RECEIVED" -gt 0 ] && /usr/local/bin/toss');
  assert.ok(HUB_KEYS.includes('use_cram'));
});
