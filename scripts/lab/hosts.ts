/**
 * Running commands "on" a lab host: inside its network namespace, with its environment (DOCKER_HOST
 * at its Calico proxy, CALICO_NODENAME, ETCD_ENDPOINTS, CALICO_RUN_DIR, its calicoctl on the PATH).
 */
import { spawn } from 'node:child_process';
import { LabConfig, HostConfig, hostEnv } from './config.js';
import { netnsExists } from './netns.js';
import { runIn, RunResult } from './proc.js';
import { CalicoError } from '../../src/errors.js';

function requireHost(h: HostConfig): void {
  if (!netnsExists(h)) {
    throw new CalicoError(`lab host ${h.name} is not up (no namespace ${h.netns})`, { hint: 'start the lab: sudo npm run lab -- up' });
  }
}

/** Runs a command on a host, output captured. */
export function onHost(cfg: LabConfig, h: HostConfig, cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  requireHost(h);
  return runIn(h.netnsPath, cmd, args, { env: hostEnv(cfg, h), ...opts });
}

/** `lab exec <host> -- cmd...`: the command on the host with the terminal attached; resolves with its exit code. */
export function execInteractive(cfg: LabConfig, h: HostConfig, argv: string[]): Promise<number> {
  requireHost(h);
  if (argv.length === 0) argv = [process.env.SHELL || '/bin/sh'];
  return new Promise((resolve) => {
    const c = spawn('nsenter', [`--net=${h.netnsPath}`, '--', ...argv], { env: hostEnv(cfg, h), stdio: 'inherit' });
    // The terminal's Ctrl-C goes to the whole foreground group (the command too); we just wait.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    c.on('error', (err) => { process.stderr.write(`lab exec: ${err.message}\n`); resolve(127); });
    c.on('close', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1));
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('node:os') as typeof import('node:os')).constants.signals[sig];
}
