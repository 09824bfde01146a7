// The package as a user gets it: `npm pack`, installed into a new project outside the repository, imported from
// plain Node (ESM), and a TypeScript consumer type-checked against the packed declarations.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const packageDir = path.resolve(here, '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

test('the packed tarball installs into a fresh project, imports from Node and type-checks', { timeout: 120_000 }, async (t) => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'pgnotify-pack-'));
  t.after(() => rm(work, { recursive: true, force: true }));

  const { stdout } = await run(npm, ['pack', '--json', '--pack-destination', work], { cwd: packageDir });
  const [packed] = JSON.parse(stdout);
  const files = packed.files.map((f) => f.path).sort();
  assert.deepEqual(files, ['LICENSE', 'README.md', 'package.json', 'src/index.d.ts', 'src/index.js', 'src/react.d.ts',
    'src/react.js'], 'nothing else goes in the tarball');

  const app = path.join(work, 'app');
  await run('mkdir', ['-p', app]);
  await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run(npm, ['install', '--offline', '--no-audit', '--no-fund', path.join(work, packed.filename)], { cwd: app });
  assert.ok((await readdir(path.join(app, 'node_modules/@pgnotify'))).includes('client'));

  const { stdout: imported } = await run(process.execPath, ['--input-type=module', '-e',
    "const m = await import('@pgnotify/client'); const c = new m.PgNotifyClient('ws://x.test/ws/'); " +
    "console.log(typeof m.PgNotifyClient, typeof m.PgNotifyError, c.state, c.url);"], { cwd: app });
  assert.equal(imported.trim(), 'function function closed ws://x.test/ws/');

  // CommonJS: `require` of an ES module works where Node supports it (20.19+, 22.12+).
  if (process.features.require_module) {
    const { stdout: required } = await run(process.execPath, ['-e',
      "console.log(typeof require('@pgnotify/client').PgNotifyClient)"], { cwd: app });
    assert.equal(required.trim(), 'function');
  }

  await writeFile(path.join(app, 'consumer.ts'), [
    "import { PgNotifyClient, type Change } from '@pgnotify/client';",
    "const client = new PgNotifyClient('/ws/changes/', { heartbeatMs: 20_000 });",
    "client.subscribe<{ id: number }>('profiles', (change: Change<{ id: number }>) => change.data?.id);",
    "// @ts-expect-error not an option",
    "new PgNotifyClient('/ws/changes/', { heartbeat: 1 });",
  ].join('\n'));
  await writeFile(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', lib: ['ES2022', 'DOM'], module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: [] },
    files: ['consumer.ts'],
  }));
  const checked = await run(process.execPath, [tsc, '-p', app]).then(() => null, (error) => error);
  assert.equal(checked, null, checked && `tsc failed:\n${checked.stdout}${checked.stderr}`);
});

test('src/index.js stands alone: it imports nothing (apps without a bundler copy just that file)', async () => {
  const { readFile } = await import('node:fs/promises');
  const source = await readFile(path.join(packageDir, 'src/index.js'), 'utf8');
  assert.deepEqual(source.match(/^\s*import\s.*$/gm) ?? [], []);
});
