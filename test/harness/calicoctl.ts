/** Runs the real calicoctl (bin/calicoctl) as a child process against a test etcd. */
import { join } from 'node:path';
import { runCollect, RunResult } from './process.js';

export const CALICOCTL = join(__dirname, '..', '..', '..', 'bin', 'calicoctl');

export type { RunResult };

/** Runs calicoctl (by default the launcher itself, bin/calicoctl, as a user runs it: the start-up snapshot when fresh, its V8 flags). */
export function calicoctl(env: NodeJS.ProcessEnv, args: string[], input?: string, launcher = CALICOCTL): Promise<RunResult> {
  return runCollect(launcher, args, { env: { ...env, CALICO_LOG_LEVEL: 'warn' }, input });
}

/** A calicoctl bound to one environment; `ok` asserts exit 0 and returns stdout. */
export function boundCalicoctl(env: NodeJS.ProcessEnv) {
  const run = (args: string[], input?: string) => calicoctl(env, args, input);
  const ok = async (args: string[], input?: string): Promise<string> => {
    const r = await run(args, input);
    if (r.code !== 0) throw new Error(`calicoctl ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };
  return { run, ok };
}
