/**
 * Builds calicoctl's start-up snapshot (see snapshot.ts) for the dist/ this file is in:
 * dist/calicoctl.blob, and dist/calicoctl.blob.node, an empty file carrying the exact mtime of the
 * node binary that built the blob. Why the second file: Node refuses (exit 14) a snapshot made by
 * another binary, so bin/calicoctl starts from the blob only with a `node` of that same mtime, and
 * otherwise without it. The V8 flags are read from bin/calicoctl (its V8_FLAGS line), because Node
 * also refuses a snapshot built with other flags than it runs with.
 *
 * `node dist/cli/build-snapshot.js` builds (npm run build). With --if-stale it builds only when the
 * blob is missing, older than a file of dist/cli or dist/src or than bin/calicoctl, or was made by
 * another node binary (scripts/setup.sh runs it that way). The blob is written under a temporary
 * name and renamed, so a calicoctl starting meanwhile sees the old blob or the new one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DIST = join(__dirname, '..');
const BLOB = join(DIST, 'calicoctl.blob');
const NODE_STAMP = `${BLOB}.node`;
const LAUNCHER = join(DIST, '..', 'bin', 'calicoctl');
const SNAPSHOT_MODULE = join(__dirname, 'snapshot.js');

/**
 * The builder's entry: `node --build-snapshot` gives its entry script only require (built-ins),
 * __filename and __dirname, while snapshot.js, compiled by tsc as a CommonJS module, needs
 * `exports` and `module` too; this runs it with them.
 */
const ENTRY_SOURCE = `'use strict';
const file = ${JSON.stringify(SNAPSHOT_MODULE)};
const module = { exports: {} };
require('node:vm').compileFunction(require('node:fs').readFileSync(file, 'utf8'), ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file })
  .call(module.exports, module.exports, require, module, file, require('node:path').dirname(file));
`;

function launcherV8Flags(): string[] {
  const m = /^V8_FLAGS='([^']*)'$/m.exec(readFileSync(LAUNCHER, 'utf8'));
  if (!m) throw new Error(`${LAUNCHER} has no V8_FLAGS='...' line to build the snapshot with`);
  return m[1]!.split(/\s+/).filter(Boolean);
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.js')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function upToDate(): boolean {
  if (!existsSync(BLOB) || !existsSync(NODE_STAMP)) return false;
  if (statSync(NODE_STAMP).mtimeMs !== statSync(process.execPath).mtimeMs) return false;
  const built = statSync(BLOB).mtimeMs;
  return Math.max(newestMtime(join(DIST, 'cli')), newestMtime(join(DIST, 'src')), statSync(LAUNCHER).mtimeMs) < built;
}

function build(): void {
  const tmp = `${BLOB}.${process.pid}.tmp`;
  const entry = `${BLOB}.${process.pid}.entry.js`;
  writeFileSync(entry, ENTRY_SOURCE);
  // --no-warnings: Node warns that node:vm (snapshot.ts compiles dist/ files with it) is not
  // verified in snapshot builders; it is used there only to compile functions in the main context.
  const r = spawnSync(process.execPath, [...launcherV8Flags(), '--no-warnings', '--snapshot-blob', tmp, '--build-snapshot', entry], { encoding: 'utf8' });
  rmSync(entry, { force: true });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`building the calicoctl snapshot failed (exit ${r.status}):\n${r.stderr}`);
  }
  renameSync(tmp, BLOB);
  // Then the node stamp (so that a calicoctl starting in between sees at worst a stamp that does
  // not match, and starts without the blob), with the exact mtime, to the nanosecond that
  // bin/calicoctl's test compares: touch -r copies it.
  const t = spawnSync('touch', ['-r', process.execPath, NODE_STAMP], { encoding: 'utf8' });
  if (t.status !== 0) throw new Error(`touch -r ${process.execPath} ${NODE_STAMP} failed: ${t.stderr}`);
}

if (require.main === module) {
  try {
    if (process.argv.includes('--if-stale') && upToDate()) process.exit(0);
    build();
    process.stderr.write(`calicoctl: start-up snapshot ${BLOB} built\n`);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
