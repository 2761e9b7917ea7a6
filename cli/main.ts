/**
 * calicoctl's entry point (bin/calicoctl). The read-only listings that scripts run in loops take
 * the fast path (fast.ts: a strict parser, no commander); every other command line, including
 * --help and every usage error, goes through the commander tree in program.ts. Both end in the
 * same handlers and the same error reporting and exit codes (0 success, 1 failure, 2 usage).
 */
import type { CommanderError } from 'commander';
import { closeKv, setGlobals } from './context.js';
import { parseFast } from './fast.js';

export async function main(argv: string[]): Promise<void> {
  restoreExtraCaCerts();
  exitQuietlyOnClosedPipe();
  let code = 0;
  try {
    code = await dispatch(argv);
  } finally {
    closeKv();
  }
  // A command may have set a failing exit code without throwing (checksystem reports and exits 1).
  process.exitCode = code || process.exitCode || 0;
}

/**
 * `calicoctl ... | head -1`: once the reader has gone, writes fail with EPIPE. A C tool would die
 * of SIGPIPE silently (Node ignores that signal); do the same rather than print a stack trace.
 */
function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode || 0);
      throw err;
    });
  }
}

/**
 * bin/calicoctl hands NODE_EXTRA_CA_CERTS over as CALICOCTL_NODE_EXTRA_CA_CERTS, so that Node
 * does not parse those certificates at start-up; put back, processes that the CLI starts (tar,
 * ip, nsenter ...) see the environment as it was given. The etcd client adds the
 * certificates itself (src/datastore/etcd-h2.ts).
 */
function restoreExtraCaCerts(): void {
  const deferred = process.env.CALICOCTL_NODE_EXTRA_CA_CERTS;
  if (deferred === undefined) return;
  process.env.NODE_EXTRA_CA_CERTS = deferred;
  delete process.env.CALICOCTL_NODE_EXTRA_CA_CERTS;
}

/** Runs the command line; resolves to the exit code for a failure (0 when it succeeded). */
async function dispatch(argv: string[]): Promise<number> {
  const fast = parseFast(argv);
  if (fast) {
    try {
      setGlobals(fast.globals);
      await fast.run();
      return 0;
    } catch (err) {
      return reportError(err, fast.globals.logLevel === 'debug');
    }
  }
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { buildProgram } = require('./program.js') as typeof import('./program.js');
  const { CommanderError: CommanderErrorClass } = require('commander') as { CommanderError: typeof CommanderError };
  /* eslint-enable @typescript-eslint/no-require-imports */
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderErrorClass) {
      // Help and version are not errors; everything else commander reports is a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return 0;
      return 2;
    }
    return reportError(err, program.opts<{ logLevel?: string }>().logLevel === 'debug');
  }
}

function reportError(err: unknown, debug: boolean): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { CalicoError } = require('../src/errors.js') as typeof import('../src/errors.js');
  if (err instanceof CalicoError) {
    process.stderr.write(`${err.message}\n`);
    if (err.hint) process.stderr.write(`${err.hint}\n`);
    if (debug) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  process.stderr.write(`Unexpected error executing command: ${err instanceof Error ? err.message : String(err)}\n`);
  if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return 1;
}

// Run as a script (bin/calicoctl without a start-up snapshot): `node dist/cli/main.js ARGS`.
if (require.main === module) {
  if (process.env.CALICOCTL_STARTUP_TRACE) process.stderr.write('calicoctl start-up: no snapshot, loading dist/ from disk\n');
  void main(process.argv.slice(2));
}
