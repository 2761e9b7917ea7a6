/**
 * Shared pieces of the proxy tests: a dockerd + busybox image + proxy stack, and an async docker
 * CLI runner (the proxy runs in the test process, so the CLI must never be run synchronously).
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { startDockerd, TestDockerd } from '../harness/dockerd.js';
import { importBusybox } from '../harness/busybox-image.js';
import { startProxy, RunningProxy } from '../../proxy/server.js';
import type { ProxyOptions } from '../../proxy/options.js';
import { createLogger } from '../../src/log.js';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  cwd?: string;
  /** Extra environment (e.g. DOCKER_BUILDKIT). */
  env?: NodeJS.ProcessEnv;
  /** Safety net only (kills a hung CLI so the test fails instead of hanging). */
  killAfterMs?: number;
  /** Leave stdin open (never EOF) until the command exits. */
  keepStdinOpen?: boolean;
}

/** Runs a command asynchronously and collects its output. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, opts: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...env, ...opts.env }, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.stdin.on('error', () => { /* the command may exit without reading its input */ });
    if (opts.keepStdinOpen) {
      if (opts.input !== undefined) child.stdin.write(opts.input);
    } else {
      child.stdin.end(opts.input);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 120000);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (status) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ status, stdout, stderr });
    });
  });
}

export function docker(env: NodeJS.ProcessEnv, args: string[], opts: RunOptions = {}): Promise<CliResult> {
  return run('docker', args, env, opts);
}

export interface Stack {
  dockerd: TestDockerd;
  proxy: RunningProxy;
  /** Environment for the docker CLI talking to the daemon directly. */
  direct: NodeJS.ProcessEnv;
  /** Environment for the docker CLI talking through the proxy. */
  proxied: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** A dockerd with busybox:latest and a proxy in front of it on a free loopback port. */
export async function startStack(proxyOptions: Omit<ProxyOptions, 'dockerSocket'> = {}): Promise<Stack> {
  const dockerd = await startDockerd();
  let proxy: RunningProxy | undefined;
  try {
    await importBusybox(dockerd.env);
    proxy = await startProxy({
      proxyListen: '127.0.0.1:0',
      logger: createLogger({ level: (process.env.CALICO_LOG_LEVEL as 'debug' | undefined) ?? 'warn' }),
      ...proxyOptions,
      dockerSocket: dockerd.socket,
    });
  } catch (err) {
    await dockerd.stop();
    throw err;
  }
  const p = proxy;
  return {
    dockerd,
    proxy: p,
    direct: dockerd.env,
    proxied: { ...dockerd.env, DOCKER_HOST: p.dockerHost },
    async stop() {
      await p.close();
      await dockerd.stop();
    },
  };
}

/** A unique suffix for names made by one test run. */
export function uniq(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Raw bytes to a TCP or unix endpoint; resolves with everything read until the peer closes. */
export function rawExchange(
  target: { port: number; host?: string } | { path: string }, payload: string | Buffer,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = 'path' in target ? net.connect(target.path) : net.connect(target.port, target.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => { s.end(); resolve(Buffer.concat(chunks)); });
    s.on('error', reject);
    s.write(payload);
  });
}

/** "127.0.0.1:1234" -> 1234. */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** Safety net per test: a hang (the bug class this proxy is about) fails instead of blocking CI. */
export const TEST_TIMEOUT_MS = 180_000;
