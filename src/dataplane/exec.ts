/**
 * Runs a command and collects its output. Every dataplane primitive goes through here so that
 * failures become `CommandFailedError`s with the command line and stderr in them.
 *
 * Commands are never run through a shell with interpolated arguments: argv is passed as is, and
 * the few places that need a shell (sysctl writes in another namespace) pass values as
 * positional parameters.
 */
import { spawn } from 'node:child_process';
import { CommandFailedError } from './errors.js';

export interface RunOptions {
  /** Written to stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string;
  /** Exit codes that count as success besides 0. */
  okCodes?: number[];
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  hint?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const argv = [cmd, ...args];
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) {
      timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, opts.timeoutMs);
    }
    child.once('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new CommandFailedError(argv, null, e.message, opts.hint));
    });
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      const c = code ?? -1;
      if (c === 0 || (opts.okCodes?.includes(c) ?? false)) resolve({ stdout, stderr, code: c });
      else reject(new CommandFailedError(argv, code, stderr || (signal ? `killed by ${signal}` : stdout), opts.hint));
    });
    if (opts.input !== undefined) {
      // A command that exits before reading all of stdin gives EPIPE; its exit code tells the story.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
  });
}
