/**
 * A real dockerd (Debian's docker.io 20.10) for one test file: its own data root, exec root,
 * pidfile, config file and API socket under a temp dir, and its own containerd (dockerd 20.10
 * starts and supervises one, with its state and socket under the exec root, as long as no system
 * containerd is listening at /run/containerd/containerd.sock — so we start our own explicitly
 * when one is, see `containerdArgs`). Networking is left to the tests: `--bridge=none`, no
 * iptables, no ip_forward or masquerade changes.
 *
 * `stop()` removes every container through the API (fast: no 10 s stop timeouts), stops dockerd
 * by pid, kills whatever is left that belongs to this instance (its containerd, shims, runc
 * containers — found by their paths under our temp dir, never by name), unmounts everything under
 * the temp dir and removes it.
 */
import { containerdConfigToml } from '../../scripts/lab/containerd-config.js';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, readdirSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { waitFor } from './ports.js';
import { startProcess, OwnedProcess } from './process.js';

export interface TestDockerd {
  /** Path of the daemon's API socket. */
  socket: string;
  /** `unix://<socket>`. */
  host: string;
  dir: string;
  dataRoot: string;
  execRoot: string;
  logFile: string;
  pid: number;
  /** process.env plus DOCKER_HOST for this daemon and a private DOCKER_CONFIG (no ~/.docker). */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export interface StartDockerdOptions {
  /** Run dockerd inside /run/netns/<netns> (via nsenter --net, so cgroup mounts stay visible). */
  netns?: string;
  /** Extra dockerd flags. */
  extraArgs?: string[];
}

const SYSTEM_CONTAINERD_SOCKET = '/run/containerd/containerd.sock';

/** A small raw request to a unix-socket API (the lab's helper); resolves with status and body. */
export { dockerApi as socketRequest } from '../../scripts/lab/dockerd.js';
import { dockerApi as socketRequest } from '../../scripts/lab/dockerd.js';

export async function startDockerd(opts: StartDockerdOptions = {}): Promise<TestDockerd> {
  if (opts.netns !== undefined && !existsSync(`/run/netns/${opts.netns}`)) {
    throw new Error(`network namespace ${opts.netns} does not exist (/run/netns/${opts.netns})`);
  }
  // Short prefix: libnetwork and containerd put unix sockets under these dirs and sun_path is
  // 108 bytes.
  const dir = mkdtempSync('/tmp/dkd-');
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const socket = join(dir, 'docker.sock');
  const configFile = join(dir, 'daemon.json');
  const dockerConfig = join(dir, 'cli-config');
  const logFile = join(dir, 'dockerd.log');
  mkdirSync(dockerConfig);
  // An explicit empty config so /etc/docker/daemon.json (if any) does not leak in.
  writeFileSync(configFile, '{}\n');

  const args = [
    '--config-file', configFile,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', join(dir, 'dockerd.pid'),
    '--host', `unix://${socket}`,
    '--bridge=none',
    '--iptables=false',
    '--ip6tables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    ...containerdArgs(dir),
    ...(opts.extraArgs ?? []),
  ];
  let proc: OwnedProcess;
  if (opts.netns !== undefined) {
    // nsenter execs dockerd in place (no --fork), so the pid we hold is dockerd's.
    proc = startProcess('nsenter', [`--net=/run/netns/${opts.netns}`, 'dockerd', ...args], logFile);
  } else {
    proc = startProcess('dockerd', args, logFile);
  }
  const extraContainerd: OwnedProcess | undefined = startedContainerd.get(dir);

  const cleanupNow = (): void => {
    killLeftovers(dir, execRoot);
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  live.set(dir, { pid: proc.pid, cleanupNow });
  const stop = async (): Promise<void> => {
    await removeAllContainers(socket);
    await proc.stop(15000);
    if (extraContainerd) await extraContainerd.stop(5000);
    cleanupNow();
    live.delete(dir);
  };

  try {
    let exited: number | null | undefined;
    void proc.exited.then((code) => { exited = code; });
    await waitFor('dockerd to answer /_ping', async () => {
      if (exited !== undefined) return `exited with ${exited}`;
      const r = await socketRequest(socket, 'GET', '/_ping', 2000);
      return r.status === 200 && r.body === 'OK';
    }, 60000, 100).then((r) => {
      if (typeof r === 'string') throw new Error(`dockerd ${r}`);
    });
  } catch (err) {
    const log = readTail(logFile);
    await stop().catch(() => undefined);
    throw new Error(`dockerd did not start: ${String(err)}\n${log}`);
  }
  return {
    socket,
    host: `unix://${socket}`,
    dir,
    dataRoot,
    execRoot,
    logFile,
    pid: proc.pid,
    env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dockerConfig, DOCKER_CONTEXT: '' },
    stop,
  };
}

const startedContainerd = new Map<string, OwnedProcess>();

/**
 * Instances not stopped yet. If the test process exits without stopping them (a failed before(),
 * an uncaught error, Ctrl-C), everything is torn down synchronously on 'exit': process.ts kills
 * dockerd's process group, but containerd's shims live in their own sessions and the overlay mounts
 * would stay.
 */
const live = new Map<string, { pid: number; cleanupNow(): void }>();
process.on('exit', () => {
  for (const { pid, cleanupNow } of live.values()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    try { cleanupNow(); } catch { /* best effort at exit */ }
  }
});

/**
 * dockerd 20.10 uses a system containerd if /run/containerd/containerd.sock exists, and two test
 * dockerds sharing one containerd would share its "moby" namespace (each would see and clean up
 * the other's containers). In that case we run a private containerd for this instance.
 */
function containerdArgs(dir: string): string[] {
  if (!existsSync(SYSTEM_CONTAINERD_SOCKET)) return [];
  const root = join(dir, 'containerd-root');
  const state = join(dir, 'containerd-state');
  const address = join(dir, 'containerd.sock');
  const config = join(dir, 'containerd.toml');
  writeFileSync(config, containerdConfigToml({ root, state, address, debugAddress: join(dir, 'containerd-debug.sock') }));
  const proc = startProcess('containerd', ['--config', config], join(dir, 'containerd.log'));
  startedContainerd.set(dir, proc);
  return ['--containerd', address];
}

async function removeAllContainers(socket: string): Promise<void> {
  try {
    const list = await socketRequest(socket, 'GET', '/containers/json?all=1', 5000);
    if (list.status !== 200) return;
    const ids = (JSON.parse(list.body) as { Id: string }[]).map((c) => c.Id);
    await Promise.all(ids.map((id) => socketRequest(socket, 'DELETE', `/containers/${id}?force=1&v=1`, 15000).catch(() => undefined)));
  } catch {
    // The daemon is gone or wedged; killLeftovers deals with what remains.
  }
}

/** Every process whose command line mentions our temp dir (containerd, shims), by pid. */
function killLeftovers(dir: string, execRoot: string): void {
  // Containers first: runc's state for dockerd's managed containerd lives under the exec root.
  const runcRoot = join(execRoot, 'runtime-runc', 'moby');
  if (existsSync(runcRoot)) {
    for (const id of safeReaddir(runcRoot)) {
      spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' });
    }
  }
  for (const pid of safeReaddir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let cmdline: string;
    try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (cmdline.split('\0').some((arg) => arg.startsWith(dir + '/') || arg === dir)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
    }
  }
}

/** Unmounts every mount point at or below `dir`, deepest first. */
function unmountUnder(dir: string): void {
  const points = mountPointsUnder(dir);
  for (const p of points) {
    const r = spawnSync('umount', [p], { stdio: 'ignore' });
    if (r.status !== 0) spawnSync('umount', ['--lazy', p], { stdio: 'ignore' });
  }
}

export function mountPointsUnder(dir: string): string[] {
  let info: string;
  try { info = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return []; }
  const points = info.split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    // mountinfo escapes spaces etc. as \040; our dirs have none.
    .filter((p) => p === dir || p.startsWith(dir + '/'));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function safeReaddir(p: string): string[] {
  try { return readdirSync(p); } catch { return []; }
}

function readTail(file: string): string {
  try { return readFileSync(file, 'utf8').slice(-3000); } catch { return ''; }
}
