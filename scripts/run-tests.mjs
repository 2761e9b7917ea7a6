#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's built-in runner, one file at a
// time (the tests share the machine's kernel: namespaces, nftables, ports). Extra arguments filter
// by substring of the path: `npm run test:only -- datastore`.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2);
const files = find('dist/test').sort().filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) { console.error('no test files matched'); process.exit(1); }
const args = ['--test', '--test-concurrency=1', `--test-reporter=${process.env.CI ? 'spec' : 'spec'}`, ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
