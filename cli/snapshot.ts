/**
 * The entry of calicoctl's V8 start-up snapshot: dist/calicoctl.blob, built by
 * build-snapshot.ts, started by bin/calicoctl (`node <flags> --snapshot-blob <blob> -- <args>`).
 *
 * Why: much of a command's start-up is Node compiling and running modules: the CLI's own
 * (~20 files for `profile show`) and the built-ins they use, which under the launcher's
 * --lite-mode cannot use Node's embedded code cache (V8 rejects a cache made with other flags).
 * Started from a heap that already holds them, `profile show` on an empty store took 61 ms
 * instead of 88 ms (p50 of 40 interleaved runs on the 2-vCPU bench VM; bench/results/cli.md).
 *
 * How: `node --build-snapshot` runs this file with a `require` that knows only built-ins, so it
 * compiles the dist/ files itself (a small CommonJS loader: relative `.js` requires only, which is
 * all the CLI's modules use at their top level). It loads main.js and the modules of the
 * fast-path commands (fast.ts) and of the datastore client, but not node:http2 (a snapshot cannot
 * hold its native state; etcd-h2.ts loads it when it connects) nor commander (it needs
 * node:child_process, which cannot be snapshotted either). At start-up, run() enters these
 * modules in Node's require cache, so that whatever is loaded later goes through Node's own
 * loader and still gets these same instances (one errors.ts, so `instanceof CalicoError` holds).
 *
 * Staleness: the size and mtime of every file loaded are kept in the snapshot. If any differs at
 * start-up (dist/ rebuilt, the blob not), the snapshot's modules are left unused and the CLI is
 * loaded from disk, exactly as without a snapshot. CALICOCTL_STARTUP_TRACE=1 says on stderr which
 * way a command started.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { compileFunction } from 'node:vm';
import { startupSnapshot } from 'node:v8';

// What the snapshot preloads besides main.js: the fast-path commands and the datastore client
// (etcd-h2.ts loads node:http2 only when it connects).
const PRELOAD = [
  './fast.js',
  './commands/resources.js',
  './commands/profile.js',
  './commands/pool.js',
  '../src/datastore/connect.js',
  '../src/datastore/config.js',
  '../src/datastore/prefix.js',
  '../src/datastore/protobuf.js',
  '../src/datastore/etcd-h2.js',
];

interface LoadedModule {
  file: string;
  size: number;
  mtimeMs: number;
  module: { exports: unknown };
}

const loaded = new Map<string, LoadedModule>();
const HERE = realpathSync(__dirname);
const MAIN = resolve(HERE, 'main.js');

/** Loads one dist/ file into the snapshot's heap (while the snapshot is being built). */
function load(file: string): unknown {
  const hit = loaded.get(file);
  if (hit) return hit.module.exports;
  const st = statSync(file);
  const source = readFileSync(file, 'utf8');
  const module = { exports: {} as unknown };
  // Registered before it runs, so that a require cycle gets the partial exports, as in Node.
  loaded.set(file, { file, size: st.size, mtimeMs: st.mtimeMs, module });
  const fn = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file });
  fn.call(module.exports, module.exports, requireFor(file), module, file, dirname(file));
  return module.exports;
}

/**
 * The `require` of a module in the snapshot. While building: relative `.js` files through load(),
 * anything else must be a built-in. At run time: the snapshot's own modules, else Node's loader.
 */
function requireFor(file: string): (id: string) => unknown {
  let nodeRequire: NodeJS.Require | undefined;
  return (id: string) => {
    const relative = id.startsWith('./') || id.startsWith('../');
    if (relative && id.endsWith('.js')) {
      const target = resolve(dirname(file), id);
      const hit = loaded.get(target);
      if (hit) return hit.module.exports;
      if (startupSnapshot.isBuildingSnapshot()) return load(target);
    } else if (startupSnapshot.isBuildingSnapshot()) {
      if (relative) throw new Error(`${file}: the snapshot loader takes only .js files, not ${id}`);
      return require(id);
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    nodeRequire ??= (require('node:module') as typeof import('node:module')).createRequire(file);
    return nodeRequire(id);
  };
}

function trace(line: string): void {
  if (process.env.CALICOCTL_STARTUP_TRACE) process.stderr.write(`calicoctl start-up: ${line}\n`);
}

/** The first file that changed since the snapshot was built, if any. */
function changedFile(): string | undefined {
  for (const m of loaded.values()) {
    let st;
    try {
      st = statSync(m.file);
    } catch {
      return m.file;
    }
    if (st.size !== m.size || st.mtimeMs !== m.mtimeMs) return m.file;
  }
  return undefined;
}

/** Start-up from the snapshot: argv is the command line after `--`. */
function run(argv: string[]): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Module = require('node:module') as typeof import('node:module');
  const nodeRequire = Module.createRequire(MAIN);
  const changed = changedFile();
  if (changed) {
    trace(`snapshot is stale (${changed} changed since it was built): loading dist/ from disk`);
    (nodeRequire(MAIN) as typeof import('./main.js')).main(argv);
    return;
  }
  for (const m of loaded.values()) {
    const cached = new Module(m.file);
    cached.filename = m.file;
    cached.exports = m.module.exports;
    cached.loaded = true;
    nodeRequire.cache[m.file] = cached;
  }
  trace('started from the snapshot');
  (loaded.get(MAIN)!.module.exports as typeof import('./main.js')).main(argv);
}

if (startupSnapshot.isBuildingSnapshot()) {
  load(MAIN);
  for (const id of PRELOAD) load(resolve(HERE, id));
  startupSnapshot.setDeserializeMainFunction(() => run(process.argv.slice(1)));
}
