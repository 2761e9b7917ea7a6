/** Where the node keeps its run-time files: pid file, status socket, logs. */
import { join } from 'node:path';

export const DEFAULT_RUN_DIR = '/var/run/calico';
export const DEFAULT_LOG_DIR = '/var/log/calico';

export function runDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.CALICO_RUN_DIR || DEFAULT_RUN_DIR;
}

export const nodePaths = (dir: string) => ({
  pidFile: join(dir, 'calico-node.pid'),
  statusSocket: join(dir, 'calico-node.sock'),
});

export const nodeLogFile = (logDir: string) => join(logDir, 'calico-node.log');
