/**
 * Builds the project's small C helpers (native/*.c) with the system's `cc`, when the output is
 * missing or older than its source. The build writes to a temporary name and renames, so
 * processes starting at the same time never load a half-written file. Set-up builds them ahead
 * of time (scripts/setup.sh); this is the same build on first use.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Repository root: this file runs as dist/src/native/build.js. */
export const REPO_ROOT = join(__dirname, '..', '..', '..');

export class NativeBuildError extends Error {}

/** Returns `output`, built from `source` with `cc -O2 [...ccArgs]` if needed; throws NativeBuildError. */
export function buildNative(source: string, output: string, ccArgs: string[] = []): string {
  if (!existsSync(source)) {
    if (existsSync(output)) return output;
    throw new NativeBuildError(`source ${source} not found`);
  }
  if (existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) return output;
  mkdirSync(join(output, '..'), { recursive: true });
  const tmp = `${output}.${process.pid}.tmp`;
  try {
    execFileSync('cc', ['-O2', ...ccArgs, '-o', tmp, source], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    renameSync(tmp, output);
    return output;
  } catch (err) {
    rmSync(tmp, { force: true });
    const e = err as { stderr?: Buffer; message: string };
    throw new NativeBuildError(`cannot build ${output} with cc: ${e.stderr?.toString().trim() || e.message} (install gcc and libc6-dev)`);
  }
}
