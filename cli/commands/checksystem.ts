/**
 * `calicoctl checksystem [--fix]`: what the node needs from the host. Prints nothing when all is
 * well (as the original); a line per problem otherwise. `calicoctl node` runs it too, fixing what
 * it can and only warning.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export interface Problem {
  severity: 'error' | 'warning';
  message: string;
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** The host's namespace (CALICO_NETNS) for the per-namespace checks; absent = our own. */
function nsArgs(): string[] {
  const ns = process.env.CALICO_NETNS?.trim();
  return ns ? [`--net=${ns.includes('/') ? ns : `/run/netns/${ns}`}`] : [];
}

function sysctl(path: string): string | undefined {
  if (nsArgs().length) {
    const r = spawnSync('nsenter', [...nsArgs(), 'cat', path], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  }
  try { return readFileSync(path, 'utf8').trim(); } catch { return undefined; }
}

function setSysctl(path: string, value: string): void {
  if (nsArgs().length) {
    spawnSync('nsenter', [...nsArgs(), 'sh', '-c', `echo ${value} > ${path}`], { stdio: 'ignore' });
    return;
  }
  try { writeFileSync(path, value); } catch { /* reported by the caller's re-check */ }
}

export function runChecks(o: { fix: boolean; forNode: boolean; dockerSocket: string }): Problem[] {
  const out: Problem[] = [];
  if (typeof process.getuid === 'function' && process.getuid() !== 0 && !o.forNode) {
    out.push({ severity: 'error', message: 'not running as root: the node needs root (sudo calicoctl ...)' });
  }
  for (const [cmd, pkg] of [['ip', 'iproute2'], ['nft', 'nftables'], ['conntrack', 'conntrack'], ['nsenter', 'util-linux']] as const) {
    if (!has(cmd)) out.push({ severity: cmd === 'conntrack' ? 'warning' : 'error', message: `${cmd} not found: install it (apt-get install ${pkg})` });
  }
  const nftWorks = () => spawnSync(nsArgs().length ? 'nsenter' : 'nft', [...nsArgs(), ...(nsArgs().length ? ['nft'] : []), 'list', 'tables'], { stdio: 'ignore' }).status === 0;
  if (has('nft') && !nftWorks()) {
    if (o.fix) spawnSync('modprobe', ['nf_tables'], { stdio: 'ignore' });
    if (!nftWorks()) {
      out.push({ severity: 'error', message: 'nftables is not usable: load it with `modprobe nf_tables`' });
    }
  }
  for (const [path, what] of [['/proc/sys/net/ipv4/ip_forward', 'IPv4 forwarding'], ['/proc/sys/net/ipv6/conf/all/forwarding', 'IPv6 forwarding']] as const) {
    const v = sysctl(path);
    if (v === undefined) continue;
    if (v !== '1' && o.fix) setSysctl(path, '1');
    if (sysctl(path) !== '1') {
      out.push({ severity: 'error', message: `${what} is off (${path}); ${o.fix ? 'ERROR: Could not enable it' : 'enable it with `sysctl -w ' + path.slice('/proc/sys/'.length).replace(/\//g, '.') + '=1` or run checksystem --fix'}` });
    }
  }
  out.push(...forwardPolicy(o.fix));
  if (!existsSync('/proc/sys/net/ipv4/conf/all/proxy_arp')) out.push({ severity: 'error', message: 'this kernel has no proxy ARP (/proc/sys/net/ipv4/conf/all/proxy_arp)' });
  if (!existsSync(o.dockerSocket)) {
    out.push({ severity: 'warning', message: `no Docker daemon socket at ${o.dockerSocket}: the Docker API proxy will answer once dockerd runs` });
  }
  if (!has('etcd')) out.push({ severity: 'warning', message: 'etcd not found: a local datastore cannot be started (apt-get install etcd-server), set ETCD_ENDPOINTS' });
  return out;
}

export function printProblems(problems: Problem[]): void {
  for (const p of problems) process.stderr.write(`${p.severity === 'error' ? 'ERROR' : 'WARNING'}: ${p.message}\n`);
}

/** iptables in the host's namespace (CALICO_NETNS when set). */
function iptables(args: string[]): { status: number | null; stdout: string } {
  const r = nsArgs().length
    ? spawnSync('nsenter', [...nsArgs(), 'iptables', ...args], { encoding: 'utf8' })
    : spawnSync('iptables', args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '' };
}

/**
 * Docker, when it manages iptables, sets the FORWARD policy to DROP; in nftables a drop in any
 * table wins, so every packet Calico forwards between workloads would be dropped. With --fix (and
 * at node start) workload traffic is accepted in DOCKER-USER (or FORWARD) instead.
 */
function forwardPolicy(fix: boolean): Problem[] {
  if (!has('iptables')) return [];
  const rules = iptables(['-S', 'FORWARD']);
  if (rules.status !== 0 || !/^-P FORWARD DROP$/m.test(rules.stdout)) return [];
  const chain = iptables(['-S', 'DOCKER-USER']).status === 0 ? 'DOCKER-USER' : 'FORWARD';
  const accepted = (dir: '-i' | '-o') => iptables(['-C', chain, dir, 'cali+', '-j', 'ACCEPT']).status === 0;
  if (fix) {
    for (const dir of ['-i', '-o'] as const) if (!accepted(dir)) iptables(['-I', chain, dir, 'cali+', '-j', 'ACCEPT']);
  }
  if (accepted('-i') && accepted('-o')) return [];
  return [{
    severity: 'error',
    message: `the iptables FORWARD policy is DROP (Docker sets it when it manages iptables): traffic between workloads would be dropped; run \`calicoctl checksystem --fix\` (accepts cali+ in ${chain}), or run dockerd with "iptables": false`,
  }];
}
