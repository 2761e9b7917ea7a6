/**
 * The dataplane step: applies a DesiredState to the kernel (nftables, interface settings,
 * routes, tunl0) and, on request, checks that the kernel still holds what was applied and puts
 * back whatever was changed behind our back.
 *
 * Order of a pass: nftables first (an endpoint's policy is in place before its route makes it
 * reachable), then interface settings, routes, tunl0.
 */
import { Netns, LinkInfo } from '../../../src/dataplane/index.js';
import type { Logger } from '../../../src/log.js';
import { DesiredState } from '../calc.js';
import { RulesetRenderer } from '../render/ruleset.js';
import { NftDriver, NftApplyStats } from './nft-driver.js';
import { RouteDriver, RouteSyncStats } from './routes.js';
import { InterfaceDriver } from './interfaces.js';
import { IpipDriver, IpipState } from './ipip.js';
import { LinkTracker } from './links.js';

export interface DataplaneOptions {
  netns?: Netns;
  logger: Logger;
  routeProtocol: number;
  /** Leave routes on an unclaimed new interface alone this long (ms). */
  interfaceGraceMs: number;
  onLinksChanged: () => void;
}

export interface ApplyResult {
  /** Wall time of each step, ms. */
  phases: Record<'links' | 'render' | 'nft' | 'interfaces' | 'routes' | 'ipip', number>;
  nft: NftApplyStats;
  routes: RouteSyncStats;
  interfacesConfigured: number;
  ipip: IpipState;
}

export interface DriftReport {
  nftables: string[];
  routes: number;
  sysctls: number;
}

export class AgentDataplane {
  private readonly renderer = new RulesetRenderer();
  readonly nft: NftDriver;
  readonly routes: RouteDriver;
  private readonly ifaces: InterfaceDriver;
  private readonly ipip: IpipDriver;
  readonly links: LinkTracker;
  private prefix = 'cali';

  constructor(opts: DataplaneOptions) {
    const log = opts.logger;
    this.nft = new NftDriver(opts.netns, log.child({ part: 'nftables' }));
    this.routes = new RouteDriver(opts.netns, opts.routeProtocol, log.child({ part: 'routes' }), opts.interfaceGraceMs);
    this.ifaces = new InterfaceDriver(opts.netns, log.child({ part: 'interfaces' }));
    this.ipip = new IpipDriver(opts.netns, log.child({ part: 'ipip' }));
    this.links = new LinkTracker(opts.netns, () => this.prefix, log.child({ part: 'links' }), opts.onLinksChanged);
  }

  /** Reads the kernel's current routes and interfaces (before the first apply). */
  async start(prefix: string): Promise<void> {
    this.prefix = prefix;
    await this.links.start();
    await this.routes.reload();
  }

  get linkMap(): ReadonlyMap<string, LinkInfo> {
    return this.links.current;
  }

  async apply(d: DesiredState, opts: { refreshLinks?: boolean } = {}): Promise<ApplyResult> {
    if (d.config.interfacePrefix !== this.prefix) {
      this.prefix = d.config.interfacePrefix;
      opts.refreshLinks = true;
    }
    let t = process.hrtime.bigint();
    const lap = () => {
      const now = process.hrtime.bigint();
      const ms = Number(now - t) / 1e6;
      t = now;
      return ms;
    };
    if (opts.refreshLinks) await this.links.refresh();
    const links0 = lap();
    const rs = this.renderer.render(d);
    const render = lap();
    const nft = await this.nft.apply(rs);
    const nftMs = lap();
    const eps = [...d.localEndpoints.values()];
    const links = this.links.current;
    const interfacesConfigured = await this.ifaces.sync(eps, links);
    const ifMs = lap();
    const routes = await this.routes.sync(this.routes.desired(eps, links), (i) => this.links.age(i), (i) => d.localEndpoints.has(i));
    const routesMs = lap();
    const ipip = await this.ipip.sync(d.pools.ipip && d.config.ipipEnabled, d.config.ipipMtu, d.config.ipipTunnelAddr);
    const phases = { links: links0, render, nft: nftMs, interfaces: ifMs, routes: routesMs, ipip: lap() };
    return { phases, nft, routes, interfacesConfigured, ipip };
  }

  /** Compares the kernel with what was applied and repairs differences. */
  async checkAndRepair(d: DesiredState): Promise<DriftReport> {
    await this.links.refresh();
    const nftables = await this.nft.findDrift();
    if (nftables.length) await this.nft.repair();
    const eps = [...d.localEndpoints.values()];
    await this.routes.reload();
    const r = await this.routes.sync(this.routes.desired(eps, this.links.current), (i) => this.links.age(i), (i) => d.localEndpoints.has(i));
    await this.ifaces.sync(eps, this.links.current);
    const sysctls = await this.ifaces.repairDrift();
    await this.ipip.sync(d.pools.ipip && d.config.ipipEnabled, d.config.ipipMtu, d.config.ipipTunnelAddr, true);
    return { nftables, routes: r.added + r.removed, sysctls };
  }

  /** After a failure: forget what we think the kernel holds, so the next apply rebuilds. */
  invalidate(): void {
    this.nft.invalidate();
    this.ifaces.forget();
  }

  async close(): Promise<void> {
    this.links.stop();
    await this.nft.close();
    await this.routes.close();
  }
}
