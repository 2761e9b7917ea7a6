/**
 * Child processes owned by a test: started detached in their own process group, stopped by pid
 * (never by name), and always stopped when the test process exits, even after a failure.
 */
import { spawn, ChildProcess, SpawnOptions } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

const owned = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, signal); } catch { try { child.kill(signal); } catch { /* gone */ } }
}

process.on('exit', () => { for (const c of owned) killGroup(c, 'SIGKILL'); });
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { for (const c of owned) killGroup(c, 'SIGKILL'); process.exit(130); });
}

export interface OwnedProcess {
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

export function startProcess(cmd: string, args: string[], logFile: string, opts: SpawnOptions = {}): OwnedProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`failed to start ${cmd}`);
  owned.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => { owned.delete(child); resolve(code); });
    child.once('error', () => { owned.delete(child); resolve(null); });
  });
  return {
    child,
    pid: child.pid,
    logFile,
    exited,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, 'SIGTERM');
      const t = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end and collects its output (for short commands; long-running ones are
 * startProcess's). `input` is written to its stdin, which is closed either way.
 */
export function runCollect(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    c.stdin!.on('error', () => { /* the command exited without reading its input */ });
    c.stdin!.end(opts.input ?? '');
  });
}
