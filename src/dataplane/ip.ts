/**
 * `ip` (iproute2) invocations: single commands, JSON queries and batches.
 *
 * Why `ip -batch -` rather than one `ip` per change or a netlink binding: a process spawn from
 * Node costs ~1.5 ms and `ip -n <ns>` ~2.3 ms on the 2-core reference machine, while the
 * netlink work itself is microseconds, so the cost is the number of processes, not the number
 * of changes. A batch applies any number of link/address/route changes for one spawn. The npm
 * `netlink` package would avoid spawns altogether, but it is a native addon (not installed here)
 * and Node has no AF_NETLINK sockets; measured wiring with batches is ~7-10 ms, inside budget.
 */
import { Netns, InNetns, runInNetns, describeNetns } from './netns.js';
import { BatchFailure, IpBatchError } from './errors.js';
import { RunOptions } from './exec.js';

export async function ip(args: readonly string[], opts: InNetns & RunOptions = {}): Promise<string> {
  const r = await runInNetns(opts.netns, 'ip', args, opts);
  return r.stdout;
}

/** `ip -j <args>` parsed. Empty output (e.g. nothing matched) is an empty list. */
export async function ipJson<T = unknown>(args: readonly string[], opts: InNetns = {}): Promise<T[]> {
  const out = await ip(['-j', ...args], opts);
  const t = out.trim();
  if (!t) return [];
  return JSON.parse(t) as T[];
}

export interface BatchOptions extends InNetns {
  /** Run every command even after a failure (`ip -force`), and report all failures. */
  force?: boolean;
}

export interface BatchResult {
  failures: BatchFailure[];
}

/**
 * Runs commands (one per element, without the leading `ip`) as one `ip -batch -`.
 * Without `force` the batch stops at the first failure and an IpBatchError says which line
 * (`linesRun` tells how many commands were applied before it). With `force` all commands run
 * and the failures are returned for the caller to judge (e.g. "route already gone" is fine).
 */
export async function ipBatch(commands: readonly string[], opts: BatchOptions = {}): Promise<BatchResult> {
  if (commands.length === 0) return { failures: [] };
  for (const c of commands) {
    if (/[\n\r]/.test(c)) throw new Error(`ip batch command contains a newline: ${JSON.stringify(c)}`);
  }
  const args = opts.force ? ['-force', '-batch', '-'] : ['-batch', '-'];
  const r = await runInNetns(opts.netns, 'ip', args, { input: commands.join('\n') + '\n', okCodes: [1, 2] });
  if (r.code === 0) return { failures: [] };
  const failures = parseBatchErrors(r.stderr, commands);
  if (failures.length === 0) {
    failures.push({ line: 0, command: '(batch)', message: r.stderr.trim() || `ip exited with ${r.code}` });
  }
  if (!opts.force) {
    const first = failures[0]!;
    throw new IpBatchError(describeNetns(opts.netns), [first], Math.max(0, first.line - 1));
  }
  return { failures };
}

/** ip prints the error text of a command, then `Command failed -:<line>`. */
export function parseBatchErrors(stderr: string, commands: readonly string[]): BatchFailure[] {
  const failures: BatchFailure[] = [];
  let pending: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^Command failed (?:-|\S+):(\d+)$/.exec(line);
    if (m) {
      const n = Number(m[1]);
      failures.push({ line: n, command: commands[n - 1] ?? '?', message: pending.join(' ') || 'failed' });
      pending = [];
    } else {
      pending.push(line);
    }
  }
  return failures;
}

/** True when an ip error text means "the thing is already gone". */
export function isNotFoundMessage(message: string): boolean {
  return /No such process|Cannot find device|No such file or directory|does not exist|not found|No such device/i.test(message);
}

export function isExistsMessage(message: string): boolean {
  return /File exists|already exists/i.test(message);
}

export type { Netns };
