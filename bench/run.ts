/**
 * `npm run bench`: runs every benchmark (each prints its own ratio table against a baseline
 * measured in the same run, and saves it under bench/results/). Arguments filter by name.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const BENCHES: Array<{ name: string; file: string }> = [
  { name: 'cli', file: 'cli.js' },
  { name: 'ipam', file: 'ipam/assign.js' },
  { name: 'proxy', file: 'proxy/passthrough.js' },
  { name: 'workload', file: 'workload/run.js' },
  { name: 'agent', file: 'agent/program.js' },
  { name: 'bgp', file: 'bgp/ingest.js' },
  { name: 'lab', file: 'lab/propagation.js' },
];

const filters = process.argv.slice(2);
let failed = 0;
for (const b of BENCHES) {
  if (filters.length && !filters.some((f) => b.name.includes(f))) continue;
  const path = join(__dirname, b.file);
  if (!existsSync(path)) { console.log(`\n== ${b.name}: not built yet (${b.file}), skipped`); continue; }
  console.log(`\n== ${b.name}`);
  const r = spawnSync(process.execPath, [path], { stdio: 'inherit' });
  if (r.status !== 0) { failed++; console.log(`== ${b.name}: failed (exit ${r.status})`); }
}
process.exit(failed ? 1 : 0);
