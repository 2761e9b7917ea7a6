/**
 * Real BGP daemons from Debian packages (bird2, gobgpd, frr), each started inside a test namespace
 * with its own config, control socket and log under a temp dir, stopped by pid.
 */
import { mkdtempSync, writeFileSync, rmSync, readFileSync, mkdirSync, chownSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startProcess, OwnedProcess } from '../../harness/process.js';
import { waitFor } from '../../harness/ports.js';
import { inNs } from './netns.js';

/** SIGKILL at once (a crash: no NOTIFICATION, no cleanup), then wait for the exit. */
async function crash(p: OwnedProcess | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  try { process.kill(-p.pid, 'SIGKILL'); } catch { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
  await p.exited;
}

export interface Daemon {
  dir: string;
  /** Stops the daemon (SIGTERM, SIGKILL after a grace period). */
  stop(): Promise<void>;
  /** SIGKILL: a crash, no NOTIFICATION sent. */
  kill(): Promise<void>;
  /** Starts it again with the same config (after stop/kill). */
  restart(extraArgs?: string[]): Promise<void>;
  logs(): string;
}

// ---------------------------------------------------------------------------------------------
// BIRD 2

export interface BirdPeer {
  name: string;
  localAddress: string;
  neighbor: string;
  localAs: number;
  remoteAs: number;
  afi: 4 | 6;
  passive?: boolean;
  rrClient?: boolean;
  /** Export the static routes of this family (default true). */
  exportStatic?: boolean;
  /** Export everything (a reflector reflects BGP routes too). */
  exportAll?: boolean;
  holdTime?: number;
}

export interface BirdConfig {
  routerId: string;
  peers: BirdPeer[];
  static4?: string[];
  static6?: string[];
  /** Write learned BGP routes into the kernel. */
  kernel?: boolean;
  rrClusterId?: string;
}

export function birdConfigText(c: BirdConfig): string {
  const lines: string[] = [`router id ${c.routerId};`, 'log stderr all;', 'debug protocols { states, events };', 'protocol device { scan time 1; }', 'protocol direct { ipv4; ipv6; interface "eth0"; }'];
  const kexport = c.kernel ? 'export filter { if source = RTS_BGP then accept; reject; };' : 'export none;';
  lines.push(`protocol kernel k4 { scan time 1; merge paths on; ipv4 { import none; ${kexport} }; }`);
  lines.push(`protocol kernel k6 { scan time 1; merge paths on; ipv6 { import none; ${kexport} }; }`);
  if (c.static4?.length) lines.push(`protocol static s4 { ipv4; ${c.static4.map((r) => `route ${r} blackhole;`).join(' ')} }`);
  if (c.static6?.length) lines.push(`protocol static s6 { ipv6; ${c.static6.map((r) => `route ${r} blackhole;`).join(' ')} }`);
  for (const p of c.peers) {
    const fam = p.afi === 4 ? 'ipv4' : 'ipv6';
    const exp = p.exportAll ? 'export all;' : p.exportStatic === false ? 'export none;' : 'export where source = RTS_STATIC;';
    lines.push(`protocol bgp ${p.name} {
  local ${p.localAddress} as ${p.localAs};
  neighbor ${p.neighbor} as ${p.remoteAs};
  hold time ${p.holdTime ?? 9}; connect delay time 1; connect retry time 2; error wait time 1, 2;
  graceful restart on; graceful restart time 60;
  ${p.passive ? 'passive on;' : ''}
  ${p.rrClient ? 'rr client;' : ''} ${c.rrClusterId && p.rrClient ? `rr cluster id ${c.rrClusterId};` : ''}
  ${fam} { import all; ${exp} ${p.exportAll ? '' : 'next hop self;'} };
}`);
  }
  return lines.join('\n') + '\n';
}

export class Bird implements Daemon {
  readonly dir: string;
  readonly sock: string;
  private proc?: OwnedProcess;
  constructor(readonly ns: string, readonly config: BirdConfig) {
    this.dir = mkdtempSync(join(tmpdir(), 'bgp-bird-'));
    this.sock = join(this.dir, 'bird.ctl');
    writeFileSync(join(this.dir, 'bird.conf'), birdConfigText(config));
  }

  async start(extra: string[] = []): Promise<void> {
    this.proc = startProcess('ip', ['netns', 'exec', this.ns, 'bird', '-f', '-c', join(this.dir, 'bird.conf'), '-s', this.sock, ...extra], join(this.dir, 'bird.log'));
    await waitFor('bird control socket', async () => { await this.cli('show status'); return true; }, 10000, 100);
  }

  restart(extra: string[] = []): Promise<void> { return this.start(extra); }

  cli(cmd: string): Promise<string> {
    return inNs(this.ns, 'birdc', ['-s', this.sock, ...cmd.split(' ')]);
  }

  /** `show protocols` state column of a protocol ("Established", "Active", ...). */
  async bgpState(name: string): Promise<string> {
    const out = await this.cli(`show protocols ${name}`);
    const line = out.split('\n').find((l) => l.startsWith(name));
    return line?.trim().split(/\s+/).slice(5).join(' ') ?? '';
  }

  /** Prefixes BIRD has from a protocol. */
  async routesFrom(proto: string, afi: 4 | 6): Promise<string[]> {
    const out = await this.cli(`show route protocol ${proto} table master${afi}`);
    return out.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter((p) => p && p.includes('/'));
  }

  async routeDetail(prefix: string, afi: 4 | 6): Promise<string> {
    return this.cli(`show route ${prefix} all table master${afi}`);
  }

  async stop(): Promise<void> { await this.proc?.stop(); }
  async kill(): Promise<void> { await crash(this.proc); }
  logs(): string { try { return readFileSync(join(this.dir, 'bird.log'), 'utf8'); } catch { return ''; } }
  cleanup(): void { rmSync(this.dir, { recursive: true, force: true }); }
}

// ---------------------------------------------------------------------------------------------
// GoBGP

export interface GobgpNeighbor { address: string; remoteAs: number; passive?: boolean; afi: 4 | 6; routeReflectorClient?: boolean }

export class Gobgp implements Daemon {
  readonly dir: string;
  private proc?: OwnedProcess;
  constructor(readonly ns: string, readonly cfg: { as: number; routerId: string; neighbors: GobgpNeighbor[]; clusterId?: string }) {
    this.dir = mkdtempSync(join(tmpdir(), 'bgp-gobgp-'));
    const lines = [`[global.config]`, `  as = ${cfg.as}`, `  router-id = "${cfg.routerId}"`, `  port = 179`, ''];
    for (const n of cfg.neighbors) {
      lines.push('[[neighbors]]', '  [neighbors.config]', `    neighbor-address = "${n.address}"`, `    peer-as = ${n.remoteAs}`);
      lines.push('  [neighbors.timers.config]', '    hold-time = 9', '    keepalive-interval = 3', '    connect-retry = 2', '    idle-hold-time-after-reset = 1');
      lines.push('  [neighbors.graceful-restart.config]', '    enabled = true', '    restart-time = 60');
      if (n.passive) lines.push('  [neighbors.transport.config]', '    passive-mode = true');
      if (n.routeReflectorClient) lines.push('  [neighbors.route-reflector.config]', '    route-reflector-client = true', `    route-reflector-cluster-id = "${cfg.clusterId ?? cfg.routerId}"`);
      lines.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', `      afi-safi-name = "${n.afi === 4 ? 'ipv4' : 'ipv6'}-unicast"`);
      lines.push('    [neighbors.afi-safis.mp-graceful-restart.config]', '      enabled = true');
    }
    writeFileSync(join(this.dir, 'gobgpd.toml'), lines.join('\n') + '\n');
  }

  async start(): Promise<void> {
    this.proc = startProcess('ip', ['netns', 'exec', this.ns, 'gobgpd', '-f', join(this.dir, 'gobgpd.toml'), '-t', 'toml', '-l', 'info', '--api-hosts', '127.0.0.1:50051'], join(this.dir, 'gobgpd.log'));
    await waitFor('gobgpd API', async () => { await this.cli(['global']); return true; }, 15000, 200);
  }

  restart(): Promise<void> { return this.start(); }

  cli(args: string[]): Promise<string> {
    return inNs(this.ns, 'gobgp', ['-u', '127.0.0.1', '-p', '50051', ...args]);
  }

  async neighborState(addr: string): Promise<string> {
    const j = JSON.parse(await this.cli(['neighbor', addr, '-j'])) as { state?: { session_state?: number | string } };
    const st = j.state?.session_state;
    // gobgp -j prints the enum number (6 = established) or its name depending on the version.
    return st === 6 || st === 'ESTABLISHED' || st === 'established' ? 'Established' : String(st);
  }

  /** Prefixes in GoBGP's global RIB for a family. */
  async rib(afi: 4 | 6): Promise<Map<string, Array<{ nexthop?: string; attrs: unknown[] }>>> {
    const out = await this.cli(['global', 'rib', '-a', afi === 4 ? 'ipv4' : 'ipv6', '-j']);
    const j = (out.trim() ? JSON.parse(out) : {}) as Record<string, Array<{ nlri: { prefix: string }; attrs: Array<Record<string, unknown>> }>>;
    const m = new Map<string, Array<{ nexthop?: string; attrs: unknown[] }>>();
    for (const [prefix, paths] of Object.entries(j)) {
      m.set(prefix, paths.map((p) => ({ nexthop: (p.attrs.find((a) => a.nexthop !== undefined)?.nexthop as string | undefined) ?? ((p.attrs.find((a) => a.type === 14) as { nexthop?: string } | undefined)?.nexthop), attrs: p.attrs })));
    }
    return m;
  }

  async announce(prefix: string, afi: 4 | 6): Promise<void> {
    await this.cli(['global', 'rib', 'add', prefix, 'origin', 'igp', '-a', afi === 4 ? 'ipv4' : 'ipv6']);
  }

  async withdraw(prefix: string, afi: 4 | 6): Promise<void> {
    await this.cli(['global', 'rib', 'del', prefix, '-a', afi === 4 ? 'ipv4' : 'ipv6']);
  }

  async stop(): Promise<void> { await this.proc?.stop(); }
  async kill(): Promise<void> { await crash(this.proc); }
  logs(): string { try { return readFileSync(join(this.dir, 'gobgpd.log'), 'utf8'); } catch { return ''; } }
  cleanup(): void { rmSync(this.dir, { recursive: true, force: true }); }
}

// ---------------------------------------------------------------------------------------------
// FRR (zebra + bgpd), with -N so that sockets and config live under a per-test path.

export class Frr implements Daemon {
  readonly dir: string;
  readonly name: string;
  private zebra?: OwnedProcess;
  private bgpd?: OwnedProcess;
  readonly runDir: string;
  constructor(readonly ns: string, readonly bgpConf: string) {
    this.name = ns;
    this.dir = mkdtempSync(join(tmpdir(), 'bgp-frr-'));
    this.runDir = `/var/run/frr/${this.name}`;
    const uid = Number(execFileSync('id', ['-u', 'frr'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'frr'], { encoding: 'utf8' }).trim());
    mkdirSync(this.runDir, { recursive: true });
    chownSync(this.runDir, uid, gid);
    chownSync(this.dir, uid, gid);
    writeFileSync(join(this.dir, 'zebra.conf'), 'hostname zebra\n');
    writeFileSync(join(this.dir, 'bgpd.conf'), bgpConf);
    writeFileSync(join(this.dir, 'vtysh.conf'), '');
    for (const f of ['zebra.conf', 'bgpd.conf', 'vtysh.conf']) chownSync(join(this.dir, f), uid, gid);
  }

  async start(): Promise<void> {
    const common = ['-N', this.name, '-F', 'traditional', '--log', 'stdout'];
    this.zebra = startProcess('ip', ['netns', 'exec', this.ns, '/usr/lib/frr/zebra', ...common, '-f', join(this.dir, 'zebra.conf'), '-i', join(this.runDir, 'zebra.pid'), '-z', join(this.runDir, 'zserv.api')], join(this.dir, 'zebra.log'));
    await waitFor('zebra socket', async () => existsSync(join(this.runDir, 'zserv.api')), 10000, 100);
    await this.startBgpd();
  }

  private async startBgpd(): Promise<void> {
    const common = ['-N', this.name, '-F', 'traditional', '--log', 'stdout'];
    this.bgpd = startProcess('ip', ['netns', 'exec', this.ns, '/usr/lib/frr/bgpd', ...common, '-f', join(this.dir, 'bgpd.conf'), '-i', join(this.runDir, 'bgpd.pid'), '-z', join(this.runDir, 'zserv.api')], join(this.dir, 'bgpd.log'));
    await waitFor('bgpd vty', async () => { await this.vtysh('show bgp summary'); return true; }, 10000, 200);
  }

  vtysh(cmd: string): Promise<string> {
    return inNs(this.ns, 'vtysh', ['-N', this.name, '-c', cmd]);
  }

  async neighborState(addr: string): Promise<string> {
    const j = JSON.parse(await this.vtysh(`show bgp neighbors ${addr} json`)) as Record<string, { bgpState?: string }>;
    return j[addr]?.bgpState ?? '';
  }

  async routes(afi: 4 | 6): Promise<Record<string, Array<{ nexthops?: Array<{ ip: string }>; valid?: boolean; bestpath?: boolean; locPrf?: number }>>> {
    const j = JSON.parse(await this.vtysh(`show bgp ${afi === 4 ? 'ipv4' : 'ipv6'} unicast json`)) as { routes?: Record<string, Array<{ nexthops?: Array<{ ip: string }>; valid?: boolean; bestpath?: boolean; locPrf?: number }>> };
    return j.routes ?? {};
  }

  /** bgpd only (zebra keeps running): what a routing daemon restart looks like. */
  async killBgpd(): Promise<void> { await crash(this.bgpd); }
  async restartBgpd(): Promise<void> { await this.startBgpd(); }

  async stop(): Promise<void> { await this.bgpd?.stop(); await this.zebra?.stop(); }
  async kill(): Promise<void> { await crash(this.bgpd); await crash(this.zebra); }
  async restart(): Promise<void> { await this.start(); }
  logs(): string {
    const r = (f: string) => { try { return readFileSync(join(this.dir, f), 'utf8'); } catch { return ''; } };
    return r('zebra.log') + r('bgpd.log');
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.runDir, { recursive: true, force: true });
  }
}
