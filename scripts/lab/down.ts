/**
 * `lab down`: removes everything `up` made, in the order that lets each piece go cleanly — the
 * nodes, then each host's containers and engine, then etcd — and then sweeps for anything left:
 * processes (by pid) that live in the lab's namespaces (daemons, shims, `lab exec` shells), run in
 * a root file system under the lab's dirs (containers), or are container runtime processes naming
 * the lab's dirs on their command line; mounts under the lab's dirs;
 * the namespaces (which take the eth1 pair with them) and the dirs. Every step tolerates "already
 * gone", so a second `down` (or one after a half-failed `up`) is harmless.
 */
import { readFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { LabConfig, HostConfig, hostList } from './config.js';
import { allPids, cmdline, netnsInode, pidAlive, processNetnsInode, processRoot, stopPid } from './proc.js';
import { deleteNamespaces } from './netns.js';
import { stopDockerd } from './dockerd.js';
import { etcdPid } from './etcd.js';
import { nodePid } from './node.js';
import { Progress } from './progress.js';
import { run } from './proc.js';

/** Mount points at or below any of `dirs`, deepest first (from our mount namespace's view). */
export function mountsUnder(dirs: string[]): string[] {
  let info: string;
  try { info = readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return []; }
  const points = info.split('\n').map((l) => l.split(' ')[4]).filter((p): p is string => !!p)
    // mountinfo escapes blanks as \040; none of our paths has any.
    .filter((p) => dirs.some((d) => p === d || p.startsWith(d + '/')));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function ancestors(): Set<number> {
  const out = new Set<number>([process.pid]);
  let pid = process.ppid;
  while (pid > 1 && !out.has(pid)) {
    out.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return out;
}

const RUNTIME_BINARIES = new Set(['containerd', 'containerd-shim', 'containerd-shim-runc-v2', 'runc', 'dockerd', 'docker-proxy', 'etcd']);

/** Pids that belong to the lab: see the file comment. Never us or our parents (`lab exec ... lab down`). */
export function labPids(cfg: LabConfig): number[] {
  const dirs = [cfg.stateRoot, cfg.runRoot];
  const inodes = new Set(hostList(cfg).map((h) => netnsInode(h.netnsPath)).filter((i): i is number => i !== undefined));
  const skip = ancestors();
  return allPids().filter((pid) => {
    if (skip.has(pid)) return false;
    const ino = processNetnsInode(pid);
    if (ino !== undefined && inodes.has(ino)) return true;
    // A runtime process of ours that left the namespace's view (not expected, but never left behind).
    // Only runtime binaries: a user's `tail -f` of a lab log is not the lab's to kill.
    const argv = cmdline(pid);
    const exe = (argv[0] ?? '').split('/').pop() ?? '';
    if (RUNTIME_BINARIES.has(exe) && argv.some((a) => dirs.some((d) => a === d || a.includes(d + '/')))) return true;
    const root = processRoot(pid);
    return root !== undefined && dirs.some((d) => root.startsWith(d + '/'));
  });
}

/** containerd 1.6's shim sockets: /run/containerd/s/<sha256(<containerd address>/<namespace>/<id>)>. */
const SHIM_SOCKET_DIR = '/run/containerd/s';

/** Every container id this host's engine knew (dockerd's records and containerd's task dirs). */
function knownContainerIds(h: HostConfig): string[] {
  const ls = (d: string) => { try { return readdirSync(d); } catch { return []; } };
  return [...new Set([
    ...ls(join(h.dockerDataRoot, 'containers')),
    ...ls(join(h.containerdState, 'io.containerd.runtime.v2.task', 'moby')),
  ])].filter((id) => /^[0-9a-f]{64}$/.test(id));
}

/**
 * A shim that was killed (not stopped) leaves its socket in the machine-wide /run/containerd/s;
 * the name is derived from our containerd's address and the container id, so we can find exactly
 * ours. Called once no shim of ours runs.
 */
export function shimSocketsOf(cfg: LabConfig): string[] {
  return hostList(cfg).flatMap((h) => knownContainerIds(h).map((id) =>
    join(SHIM_SOCKET_DIR, createHash('sha256').update(join(h.containerdSocket, 'moby', id)).digest('hex'))));
}

export async function down(cfg: LabConfig, say: Progress): Promise<void> {
  const hosts = hostList(cfg);
  for (const h of hosts) {
    const pid = nodePid(h);
    if (pid) { await stopPid(pid, 15000); say(`${h.name}: calico node stopped (pid ${pid})`); }
  }
  for (const h of hosts) await stopDockerd(h, say);
  const epid = etcdPid(cfg);
  if (epid) { await stopPid(epid, 10000); say(`etcd stopped (pid ${epid})`); }

  const left = labPids(cfg).filter(pidAlive);
  if (left.length) {
    say(`stopping ${left.length} leftover process(es): ${left.map((p) => `${p} (${(cmdline(p)[0] ?? '?').split('/').pop()})`).join(', ')}`);
    for (const p of left) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    for (const p of left) await stopPid(p, 5000);
  }

  const sockets = shimSocketsOf(cfg).filter((f) => existsSync(f));
  for (const f of sockets) rmSync(f, { force: true });
  if (sockets.length) say(`removed ${sockets.length} socket(s) of killed shims from ${SHIM_SOCKET_DIR}`);

  const mounts = mountsUnder([cfg.stateRoot, cfg.runRoot]);
  for (const m of mounts) {
    const r = await run('umount', [m]);
    if (r.code !== 0) await run('umount', ['--lazy', m]);
  }
  if (mounts.length) say(`unmounted ${mounts.length} mount(s) under ${cfg.stateRoot} and ${cfg.runRoot}`);

  await deleteNamespaces(cfg, say);

  for (const d of [cfg.runRoot, cfg.stateRoot]) {
    if (!existsSync(d)) continue;
    rmSync(d, { recursive: true, force: true });
    say(`removed ${d}`);
  }
}
