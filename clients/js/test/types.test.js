// The TypeScript declarations (src/*.d.ts), compiled with tsc against test/types/usage.ts: real usage must type-check,
// and the mistakes marked @ts-expect-error there must be errors.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

test('the declarations type-check real usage and reject mistakes', { timeout: 120_000 }, async () => {
  const result = await promisify(execFile)(process.execPath, [tsc, '-p', path.join(here, 'types/tsconfig.json')])
    .then(() => null, (error) => error);
  assert.equal(result, null, result && `tsc failed:\n${result.stdout}${result.stderr}`);
});
