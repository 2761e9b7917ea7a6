/**
 * `lab down`: removes everything `up` made, in the order that lets each piece go cleanly — the
 * nodes, then each host's containers and engine, then etcd — and then sweeps for anything left:
 * processes (by pid) that live in the lab's namespaces, mention the lab's dirs on their command
 * line (shims), or run in a root file system under them (containers), mounts under the lab's dirs,
 * the namespaces (which take the eth1 pair with them) and the dirs. Every step tolerates "already
 * gone", so a second `down` (or one after a half-failed `up`) is harmless.
 */
import { readFileSync, rmSync, existsSync } from 'node:fs';
import { LabConfig, hostList } from './config.js';
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

/** Pids that belong to the lab: see the file comment. Never us or our parents (`lab exec ... lab down`). */
export function labPids(cfg: LabConfig): number[] {
  const dirs = [cfg.stateRoot, cfg.runRoot];
  const inodes = new Set(hostList(cfg).map((h) => netnsInode(h.netnsPath)).filter((i): i is number => i !== undefined));
  const skip = ancestors();
  return allPids().filter((pid) => {
    if (skip.has(pid)) return false;
    const ino = processNetnsInode(pid);
    if (ino !== undefined && inodes.has(ino)) return true;
    if (cmdline(pid).some((a) => dirs.some((d) => a === d || a.includes(d + '/')))) return true;
    const root = processRoot(pid);
    return root !== undefined && dirs.some((d) => root.startsWith(d + '/'));
  });
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
