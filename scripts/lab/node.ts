/**
 * The Calico node on each lab host, started exactly as a user starts it on a VM:
 * `calicoctl node --ip=172.17.8.10x` run inside the host's namespace with that host's environment
 * (CALICO_NODENAME, ETCD_ENDPOINTS, CALICO_RUN_DIR), its own log dir and its dockerd's socket. The
 * Docker API proxy then listens on 127.0.0.1:2377 inside that namespace.
 */
import { writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { LabConfig, HostConfig, hostEnv, hostList, CALICOCTL } from './config.js';
import { ownedPid, runIn, waitUntil } from './proc.js';
import { Progress } from './progress.js';
import { CalicoError } from '../../src/errors.js';
import { readStatus, NodeStatus } from '../../node/status.js';
import { nodePaths } from '../../node/paths.js';

export const nodePid = (h: HostConfig) => ownedPid(nodePaths(h.calicoRunDir).pidFile, h.calicoRunDir);

export function nodeStatus(h: HostConfig, timeoutMs = 2000): Promise<NodeStatus | undefined> {
  return readStatus(nodePaths(h.calicoRunDir).statusSocket, timeoutMs);
}

/** The `calicoctl node` command line for a host (also what the tests re-run after killing a node). */
export function nodeStartArgs(h: HostConfig): string[] {
  return ['node', `--ip=${h.ip}`, `--log-dir=${h.logDir}`, `--docker-socket=${h.dockerSocket}`];
}

/**
 * The host's `calicoctl`: the project's bin/calicoctl with DOCKER_HOST pointed at this host's
 * dockerd socket. Why: on the lab hosts DOCKER_HOST is the proxy (tcp://localhost:2377), and
 * `calicoctl container ...` only talks to a unix socket, falling back to /var/run/docker.sock —
 * which on this shared filesystem is the machine's dockerd (or nothing), not the host's. A VM has
 * its own /var/run/docker.sock; this wrapper gives each lab host the same.
 */
export function writeCalicoctlWrapper(h: HostConfig): void {
  mkdirSync(h.binDir, { recursive: true });
  const file = join(h.binDir, 'calicoctl');
  writeFileSync(file, [
    '#!/bin/sh',
    `# calicoctl on lab host ${h.name}: container commands reach this host's dockerd (see scripts/lab/node.ts).`,
    `DOCKER_HOST=unix://${h.dockerSocket} exec ${CALICOCTL} "$@"`,
    '',
  ].join('\n'));
  chmodSync(file, 0o755);
}

export async function ensureNode(cfg: LabConfig, h: HostConfig, say: Progress): Promise<void> {
  writeCalicoctlWrapper(h);
  const running = nodePid(h);
  const s = running ? await nodeStatus(h) : undefined;
  if (running && s?.ready) {
    say(`${h.name}: calico node already running (pid ${running}, proxy ${s.proxy?.address ?? 'off'})`);
    return;
  }
  const r = await runIn(h.netnsPath, join(h.binDir, 'calicoctl'), nodeStartArgs(h), { env: hostEnv(cfg, h), timeoutMs: 120000 });
  if (r.code !== 0) {
    throw new CalicoError(`calicoctl node on ${h.name} failed (exit ${r.code}): ${(r.stderr + r.stdout).trim()}`, { hint: `see ${join(h.logDir, 'calico-node.log')}` });
  }
  say(`${h.name}$ calicoctl ${nodeStartArgs(h).join(' ')}  -> node running (pid ${nodePid(h) ?? '?'}), DOCKER_HOST=localhost:2377`);
}

/** Both nodes report their BGP session with the other Established. */
export async function meshEstablished(cfg: LabConfig): Promise<boolean> {
  const hosts = hostList(cfg);
  for (const h of hosts) {
    const s = await nodeStatus(h);
    for (const other of hosts.filter((o) => o !== h)) {
      if (!s?.bgp?.some((p) => p.peerAddress === other.ip && p.state === 'up')) return false;
    }
  }
  return true;
}

export async function waitForMesh(cfg: LabConfig, say: Progress, timeoutMs = 60000): Promise<void> {
  await waitUntil('the BGP session between calico-01 and calico-02 to be Established', () => meshEstablished(cfg), timeoutMs, 200);
  say('BGP mesh calico-01 <-> calico-02 Established');
}
