import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { ENV_VARIABLES } from '../src/config';
import { configTable } from '../scripts/config-table';

const ROOT = path.resolve(__dirname, '..');

test('README documents every setting exactly as the schema defines it', async () => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  assert.ok(
    readme.includes(configTable()),
    'README configuration table is stale: run `npm run config-table` and paste it',
  );
  for (const { name } of ENV_VARIABLES) assert.ok(readme.includes(`\`${name}\``), `${name} missing from README`);
});

test('.ci/run runs the README test command', async () => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const ci = await readFile(path.join(ROOT, '.ci', 'run'), 'utf8');
  const command = /\*\*run every test\*\* \| `([^`]+)`/.exec(readme)?.[1];
  assert.equal(command, 'npm test');
  assert.match(ci, /^npm test$/m);
});
