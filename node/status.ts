/**
 * The node's status: served as JSON on a unix socket in the run dir (`GET /status`), read by
 * `calicoctl status` / `node status` and by `calicoctl node` while it waits for readiness.
 */
import http from 'node:http';
import { rmSync, chmodSync } from 'node:fs';
import type { PeerStatusRow } from './bgp/status.js';
import type { AgentStatus } from './agent/agent.js';

export interface NodeStatus {
  pid: number;
  node: string;
  startedAt: string;
  ready: boolean;
  /** Component readiness, for the progress line of `calicoctl node`. */
  components: { datastore: boolean; agent: boolean; bgp: boolean | 'disabled'; proxy: boolean | 'disabled' };
  ipv4?: string;
  ipv6?: string;
  proxy?: { address: string; dockerHost: string };
  /** The Docker daemon socket the proxy forwards to (calicoctl container uses the same one). */
  dockerSocket?: string;
  agent?: AgentStatus;
  bgp?: PeerStatusRow[];
  errors: string[];
}

export function serveStatus(socketPath: string, status: () => NodeStatus): Promise<http.Server> {
  rmSync(socketPath, { force: true });
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/status') {
      const body = JSON.stringify(status());
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      chmodSync(socketPath, 0o600);
      resolve(server);
    });
  });
}

/** Reads the status of a running node, or undefined when nothing answers on the socket. */
export function readStatus(socketPath: string, timeoutMs = 2000): Promise<NodeStatus | undefined> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path: '/status', method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as NodeStatus); } catch { resolve(undefined); }
      });
    });
    req.on('timeout', () => { req.destroy(); resolve(undefined); });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}
