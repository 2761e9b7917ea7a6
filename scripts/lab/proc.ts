/**
 * Processes of the lab: commands run to completion (output captured), long-lived daemons started
 * detached with a pid file (they outlive the `lab up` that started them, like services on a VM),
 * and stopping by pid only — after checking that the pid still is the process we started, since
 * pids are recycled between an `up` and a much later `down`.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

export interface RunResult { code: number; stdout: string; stderr: string }

/** Runs a command to completion; never throws for a non-zero exit (the caller decides). */
export function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => { try { c.kill('SIGKILL'); } catch { /* gone */ } }, opts.timeoutMs);
    c.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    c.on('error', (err) => { if (timer) clearTimeout(timer); resolve({ code: 127, stdout, stderr: stderr + err.message }); });
    c.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    c.stdin.on('error', () => { /* exited without reading its input */ });
    c.stdin.end(opts.input ?? '');
  });
}

/** argv that runs `cmd` inside a network namespace (nsenter --net keeps the cgroup mounts visible). */
export function inNetns(netnsPath: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ['nsenter', [`--net=${netnsPath}`, cmd, ...args]];
}

export function runIn(netnsPath: string, cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const [c, a] = inNetns(netnsPath, cmd, args);
  return run(c, a, opts);
}

/**
 * Starts a daemon detached (own session, so it survives us and our terminal), output to `logFile`,
 * and records its pid. Through nsenter (which execs in place) the pid is the daemon's own.
 */
export function startDetached(cmd: string, args: readonly string[], o: { logFile: string; pidFile: string; env?: NodeJS.ProcessEnv }): number {
  const fd = openSync(o.logFile, 'a');
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: o.env ?? process.env });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    child.on('error', () => { /* reported by the caller's readiness check */ });
    child.unref();
    writeFileSync(o.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Alive and not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may itself hold spaces or ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function cmdline(pid: number): string[] {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean); } catch { return []; }
}

/**
 * The pid recorded in `pidFile`, when that process is alive and its command line still mentions
 * `marker` (a path only our instance uses), i.e. it is ours and not a recycled pid.
 */
export function ownedPid(pidFile: string, marker: string): number | undefined {
  let pid: number;
  try { pid = Number(readFileSync(pidFile, 'utf8').trim()); } catch { return undefined; }
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  if (!pidAlive(pid)) return undefined;
  return cmdline(pid).some((a) => a.includes(marker)) ? pid : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopPid(pid: number, graceMs = 10000): Promise<void> {
  if (!pidAlive(pid)) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return;
    await sleep(50);
  }
  try { process.kill(pid, 'SIGKILL'); } catch { return; }
  const hard = Date.now() + 5000;
  while (Date.now() < hard && pidAlive(pid)) await sleep(50);
}

export function allPids(): number[] {
  try { return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => p !== process.pid); } catch { return []; }
}

/** The inode of a network namespace file (/run/netns/x or /proc/<pid>/ns/net). */
export function netnsInode(path: string): number | undefined {
  try { return statSync(path).ino; } catch { return undefined; }
}

export function processNetnsInode(pid: number): number | undefined {
  try {
    const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function processRoot(pid: number): string | undefined {
  try { return readlinkSync(`/proc/${pid}/root`); } catch { return undefined; }
}

export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(stepMs);
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

export function readTail(file: string, chars = 2000): string {
  try { return readFileSync(file, 'utf8').slice(-chars).trim(); } catch { return ''; }
}
