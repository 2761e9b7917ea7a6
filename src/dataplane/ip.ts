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
import { Netns, InNetns, runInNetns, describeNetns, commandInNetns } from './netns.js';
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

/**
 * A long-lived `ip -force -batch -` for callers that send many small batches (the node agent's
 * routes): ~0.3 ms per batch instead of a ~2.5 ms process spawn. After each batch a
 * `link show dev lo` is sent; its output marks the end of the batch. stderr is merged into
 * stdout (by the shell) so that error lines arrive in order, before that mark. Failures are
 * reported like `ipBatch(..., { force: true })`, with line numbers relative to the batch.
 */
export class IpSession {
  private child?: import('node:child_process').ChildProcess;
  private buf = '';
  private linesSent = 0;
  private waiter?: { resolve: (out: string) => void; reject: (e: Error) => void };
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: InNetns = {}) {}

  batch(commands: readonly string[]): Promise<BatchResult> {
    for (const c of commands) {
      if (/[\n\r]/.test(c)) return Promise.reject(new Error(`ip batch command contains a newline: ${JSON.stringify(c)}`));
    }
    if (commands.length === 0) return Promise.resolve({ failures: [] });
    const p = this.queue.then(() => this.runWithRetry(commands));
    this.queue = p.catch(() => undefined);
    return p;
  }

  private spawnChild() {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { spawn } = require('node:child_process') as typeof import('node:child_process');
    const [cmd, args] = commandInNetns(this.opts.netns, 'sh', ['-c', 'exec ip -force -batch - 2>&1']);
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      this.buf += d;
      const m = /(^|\n)1: lo: [^\n]*\n[^\n]*link\/loopback[^\n]*\n/.exec(this.buf);
      if (m && this.waiter) {
        const body = this.buf.slice(0, m.index + (m[1] ? 1 : 0));
        this.buf = this.buf.slice(m.index + m[0].length);
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(body);
      }
    });
    child.stdin!.on('error', () => undefined);
    child.once('error', () => undefined);
    child.once('exit', (code) => {
      // An old process we replaced on purpose: its end concerns nobody.
      if (this.child !== child) return;
      this.child = undefined;
      const w = this.waiter;
      this.waiter = undefined;
      w?.reject(new Error(`ip -batch session exited (${code}) ${this.buf.slice(-300)}`));
      this.buf = '';
    });
    this.linesSent = 0;
    this.buf = '';
    return child;
  }

  /**
   * ip caches interface name -> index for its lifetime, so an interface deleted and re-created
   * under the same name (a re-wired workload) looks missing to a long-lived ip. Commands that
   * failed that way are run again once in a fresh process.
   */
  private async runWithRetry(commands: readonly string[]): Promise<BatchResult> {
    const r = await this.run(commands);
    const stale = r.failures.filter((f) => /No such device|Cannot find device/i.test(f.message));
    if (!stale.length) return r;
    this.restart();
    const again = await this.run(stale.map((f) => f.command));
    const map = stale.map((f) => f.line);
    const remaining = r.failures.filter((f) => !stale.includes(f));
    for (const f of again.failures) remaining.push({ ...f, line: map[f.line - 1] ?? f.line });
    return { failures: remaining.sort((a, b) => a.line - b.line) };
  }

  private restart(): void {
    const c = this.child;
    this.child = undefined;
    c?.stdin?.end();
  }

  private run(commands: readonly string[]): Promise<BatchResult> {
    const child = (this.child ??= this.spawnChild());
    const first = this.linesSent + 1;
    this.linesSent += commands.length + 1;
    return new Promise<BatchResult>((resolve, reject) => {
      this.waiter = {
        resolve: (out) => {
          const failures = parseBatchErrors(out, []).map((f) => ({ ...f, line: f.line - first + 1, command: commands[f.line - first] ?? '?' }));
          resolve({ failures });
        },
        reject,
      };
      child.stdin!.write(commands.join('\n') + '\nlink show dev lo\n');
    });
  }

  async close(): Promise<void> {
    await this.queue;
    const c = this.child;
    this.child = undefined;
    if (!c) return;
    c.stdin?.end();
    if (c.exitCode === null && c.signalCode === null) await new Promise((r) => c.once('exit', r));
  }
}
