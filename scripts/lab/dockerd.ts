/**
 * A Docker engine per lab host: containerd and dockerd (Debian's docker.io 20.10), both started
 * inside the host's namespace with `nsenter --net` (not `ip netns exec`, which remounts /sys and
 * hides the cgroup mounts dockerd needs), each with its own data root, exec root, sockets and pid
 * files under the lab's dirs, so the two hosts (and any dockerd of the machine or of a test) never
 * share state.
 *
 * Why our own containerd: dockerd 20.10 attaches to the system's containerd whenever
 * /run/containerd/containerd.sock exists, and two dockerds on one containerd share its "moby"
 * namespace (each would see, and clean up, the other's containers). Starting it ourselves also
 * gives `down` its pid.
 *
 * Networking stays Calico's: --bridge=none, no iptables, no forwarding or masquerade changes.
 */
import { containerdConfigToml } from './containerd-config.js';
import { mkdirSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { HostConfig } from './config.js';
import { inNetns, ownedPid, startDetached, stopPid, waitUntil, readTail, run } from './proc.js';
import { Progress } from './progress.js';
import { CalicoError } from '../../src/errors.js';

/** A raw request on the daemon's own socket (no CLI start-up cost, no proxy in between). */
export function dockerApi(socket: string, method: string, path: string, timeoutMs = 10000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export async function dockerdAnswers(h: HostConfig): Promise<boolean> {
  if (!existsSync(h.dockerSocket)) return false;
  try {
    const r = await dockerApi(h.dockerSocket, 'GET', '/_ping', 2000);
    return r.status === 200 && r.body === 'OK';
  } catch {
    return false;
  }
}

export const dockerdPid = (h: HostConfig) => ownedPid(h.dockerPidFile, h.dockerDataRoot);
export const containerdPid = (h: HostConfig) => ownedPid(h.containerdPidFile, h.containerdConfig);

function writeContainerdConfig(h: HostConfig): void {
  writeFileSync(h.containerdConfig, containerdConfigToml({
    root: h.containerdRoot, state: h.containerdState, address: h.containerdSocket, debugAddress: join(h.containerdState, 'debug.sock'),
  }));
}

async function ensureContainerd(h: HostConfig, say: Progress): Promise<void> {
  const pid = containerdPid(h);
  if (pid && existsSync(h.containerdSocket)) return;
  if (pid) await stopPid(pid);
  writeContainerdConfig(h);
  const [cmd, args] = inNetns(h.netnsPath, 'containerd', ['--config', h.containerdConfig]);
  const logFile = join(h.logDir, 'containerd.log');
  const started = startDetached(cmd, args, { logFile, pidFile: h.containerdPidFile });
  await waitUntil(`containerd on ${h.name} (${logFile})`, () => {
    if (!containerdPid(h)) throw new CalicoError(`containerd on ${h.name} exited: ${readTail(logFile, 800)}`);
    return existsSync(h.containerdSocket);
  }, 30000, 50);
  say(`${h.name}: containerd started (pid ${started})`);
}

export async function ensureDockerd(h: HostConfig, say: Progress): Promise<void> {
  for (const d of [h.stateDir, h.runDir, h.logDir, h.dockerDataRoot, h.dockerExecRoot, h.dockerCliConfig, h.containerdRoot, h.containerdState]) {
    mkdirSync(d, { recursive: true });
  }
  const running = dockerdPid(h);
  if (running && await dockerdAnswers(h)) {
    say(`${h.name}: dockerd already running (pid ${running}, ${h.dockerSocket})`);
    return;
  }
  if (running) await stopPid(running, 15000);
  await ensureContainerd(h, say);
  // An explicit empty config: /etc/docker/daemon.json (if any) is the machine's, not this host's.
  writeFileSync(h.dockerConfigFile, '{}\n');
  const args = [
    '--config-file', h.dockerConfigFile,
    '--data-root', h.dockerDataRoot,
    '--exec-root', h.dockerExecRoot,
    '--pidfile', join(h.runDir, 'dockerd.self.pid'),
    '--host', `unix://${h.dockerSocket}`,
    '--containerd', h.containerdSocket,
    '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false',
  ];
  const [cmd, argv] = inNetns(h.netnsPath, 'dockerd', args);
  const logFile = join(h.logDir, 'dockerd.log');
  const pid = startDetached(cmd, argv, { logFile, pidFile: h.dockerPidFile });
  await waitUntil(`dockerd on ${h.name} to answer (${logFile})`, async () => {
    if (!dockerdPid(h)) throw new CalicoError(`dockerd on ${h.name} exited: ${readTail(logFile, 1500)}`);
    return dockerdAnswers(h);
  }, 60000, 100);
  say(`${h.name}: dockerd started (pid ${pid}, ${h.dockerSocket})`);
}

export async function containerIds(h: HostConfig): Promise<string[]> {
  try {
    const list = await dockerApi(h.dockerSocket, 'GET', '/containers/json?all=1', 5000);
    if (list.status !== 200) return [];
    return (JSON.parse(list.body) as Array<{ Id: string }>).map((c) => c.Id);
  } catch {
    return [];
  }
}

/** Names and states of the host's containers, straight from its dockerd. */
export async function containerSummaries(h: HostConfig): Promise<Array<{ name: string; state: string }>> {
  try {
    const list = await dockerApi(h.dockerSocket, 'GET', '/containers/json?all=1', 5000);
    if (list.status !== 200) return [];
    return (JSON.parse(list.body) as Array<{ Names: string[]; State: string }>)
      .map((c) => ({ name: (c.Names[0] ?? '').replace(/^\//, ''), state: c.State }))
      .sort((a, b) => a.name.localeCompare(b.name));
  } catch {
    return [];
  }
}

/**
 * Stops the engine of a host: every container removed through the API first (so containerd's
 * shims exit and dockerd unmounts their layers), then dockerd and containerd by pid. Whatever is
 * left after that is `down`'s sweep's job.
 */
export async function stopDockerd(h: HostConfig, say: Progress): Promise<void> {
  const pid = dockerdPid(h);
  if (pid && await dockerdAnswers(h)) {
    const ids = await containerIds(h);
    await Promise.all(ids.map((id) => dockerApi(h.dockerSocket, 'DELETE', `/containers/${id}?force=1&v=1`, 20000).catch(() => undefined)));
    if (ids.length) say(`${h.name}: removed ${ids.length} container(s)`);
  }
  if (pid) {
    await stopPid(pid, 20000);
    say(`${h.name}: dockerd stopped (pid ${pid})`);
  }
  // Containers dockerd did not get to: runc's state is under our exec root.
  const runcRoot = join(h.dockerExecRoot, 'runtime-runc', 'moby');
  if (existsSync(runcRoot)) {
    for (const id of readdirSync(runcRoot)) await run('runc', ['--root', runcRoot, 'delete', '--force', id]);
  }
  const cpid = containerdPid(h);
  if (cpid) {
    await stopPid(cpid, 10000);
    say(`${h.name}: containerd stopped (pid ${cpid})`);
  }
}
