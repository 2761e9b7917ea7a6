/**
 * Network namespaces for BGP tests: a LAN (a bridge in its own namespace) with one namespace per
 * node, each joined to the bridge by a veth pair. Every address lives inside these namespaces.
 * Names carry the test process's pid so that concurrent runs never collide; `destroy()` deletes
 * every namespace (and with them their links), and runs on exit even when a test fails.
 */
import { execFileSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const live = new Set<string>();
process.on('exit', () => {
  for (const ns of live) { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ } }
});

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function shAsync(cmd: string, args: string[], timeoutMs = 20000): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 28 });
  return stdout;
}

/** Runs a command inside a namespace and returns stdout. */
export function inNs(ns: string, cmd: string, args: string[]): Promise<string> {
  return shAsync('ip', ['netns', 'exec', ns, cmd, ...args]);
}

export interface LanNode { ns: string; ipv4: string; ipv6: string; ifname: string }

export class Lan {
  readonly nodes = new Map<string, LanNode>();
  readonly bridgeNs: string;
  private readonly all: string[] = [];
  constructor(readonly tag: string, readonly v4Net = '10.99.0', readonly v6Net = 'fd00:99::') {
    this.bridgeNs = this.mkns('lan');
    sh('ip', ['-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', this.bridgeNs, 'link', 'set', 'br0', 'up']);
  }

  private mkns(role: string): string {
    const ns = `bgp${this.tag}${role}${process.pid}`.slice(0, 60);
    sh('ip', ['netns', 'add', ns]);
    live.add(ns);
    this.all.push(ns);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // No IPv6 DAD: addresses are usable at once.
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    return ns;
  }

  /** Adds a node namespace with address .<index> on the LAN. */
  add(name: string, index: number): LanNode {
    const ns = this.mkns(name);
    const host = `v${index}${process.pid}`.slice(0, 15);
    sh('ip', ['link', 'add', host, 'netns', this.bridgeNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    sh('ip', ['-n', this.bridgeNs, 'link', 'set', host, 'master', 'br0', 'up']);
    const ipv4 = `${this.v4Net}.${index}`;
    const ipv6 = `${this.v6Net}${index}`;
    sh('ip', ['-n', ns, 'addr', 'add', `${ipv4}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'addr', 'add', `${ipv6}/64`, 'dev', 'eth0', 'nodad']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    const n = { ns, ipv4, ipv6, ifname: 'eth0' };
    this.nodes.set(name, n);
    return n;
  }

  node(name: string): LanNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  destroy(): void {
    for (const ns of this.all.reverse()) {
      try { sh('ip', ['netns', 'del', ns]); } catch { /* already gone */ }
      live.delete(ns);
    }
  }
}

/** Our `proto bird` routes in a namespace, as { prefix -> route text }. */
export async function kernelRoutes(ns: string, family: '-4' | '-6' = '-4'): Promise<Map<string, string>> {
  const out = await inNs(ns, 'ip', [family, 'route', 'show', 'proto', 'bird']);
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    // Multipath routes continue on indented "nexthop" lines.
    if (t.startsWith('nexthop')) {
      const last = [...m.keys()].pop();
      if (last) m.set(last, `${m.get(last)} ${t}`);
      continue;
    }
    const parts = t.split(/\s+/);
    const prefix = parts[0] === 'blackhole' || parts[0] === 'unreachable' ? parts[1]! : parts[0]!;
    m.set(prefix.includes('/') ? prefix : `${prefix}/${family === '-4' ? 32 : 128}`, t);
  }
  return m;
}
