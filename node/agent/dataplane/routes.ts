/**
 * Host routes to local workloads (`<ip>/32 dev caliX proto <ours>`), reconciled by difference:
 * we keep what we believe the kernel holds, program only changes, and re-read the kernel on a
 * resync or drift check. Only routes of our protocol number are ever touched.
 *
 * A route of ours on an interface no endpoint claims is removed, unless the interface appeared
 * less than `graceMs` ago: the wiring (proxy, calicoctl) adds the route before it writes the
 * endpoint, and we must not race it (Felix has the same 10 s grace).
 *
 * When an address stops being routed to a workload its conntrack entries are deleted, in the
 * background (a conntrack scan is linear; Felix moved it off the critical path for that reason).
 */
import { Netns, HostRoute, routeKey, routeReplaceCommand, routeDeleteCommand, isNotFoundMessage, IpSession, listRoutes, flushConntrackFor, LinkInfo } from '../../../src/dataplane/index.js';
import type { Logger } from '../../../src/log.js';
import { errorMessage } from '../../../src/errors.js';
import { LocalEndpointView } from '../calc.js';

export interface RouteSyncStats {
  added: number;
  removed: number;
  failed: number;
}

export class RouteDriver {
  /** What we believe the kernel has (our protocol only). */
  private programmed = new Map<string, HostRoute>();
  private conntrackQueue: Promise<void> = Promise.resolve();
  /** A long-lived `ip -batch` (see IpSession): one route change costs ~0.3 ms instead of a spawn. */
  private readonly ip: IpSession;
  private pendingConntrack = 0;

  constructor(
    private readonly netns: Netns | undefined,
    private readonly protocol: number,
    private readonly log: Logger,
    private readonly graceMs: number,
  ) {
    this.ip = new IpSession({ netns });
  }

  desired(endpoints: Iterable<LocalEndpointView>, links: ReadonlyMap<string, LinkInfo>): Map<string, HostRoute> {
    const want = new Map<string, HostRoute>();
    for (const ep of endpoints) {
      if (!ep.active || !links.has(ep.iface)) continue;
      for (const dst of [...ep.nets4, ...ep.nets6]) {
        const r = { dst, dev: ep.iface };
        want.set(routeKey(r), r);
      }
    }
    return want;
  }

  /** Re-reads the kernel's routes of our protocol. */
  async reload(): Promise<Map<string, HostRoute>> {
    const rows = await listRoutes({ netns: this.netns, protocol: this.protocol });
    this.programmed = new Map(rows.map((r) => [routeKey(r), { dst: r.dst, dev: r.dev }]));
    return this.programmed;
  }

  async sync(want: Map<string, HostRoute>, linkAge: (iface: string) => number, claimed: (iface: string) => boolean): Promise<RouteSyncStats> {
    const replace: HostRoute[] = [];
    const del: HostRoute[] = [];
    for (const [k, r] of want) if (!this.programmed.has(k)) replace.push(r);
    for (const [k, r] of this.programmed) {
      if (want.has(k)) continue;
      if (!claimed(r.dev) && linkAge(r.dev) < this.graceMs) continue;
      del.push(r);
    }
    if (!replace.length && !del.length) return { added: 0, removed: 0, failed: 0 };
    const cmds = [...del.map((r) => routeDeleteCommand(r, this.protocol)), ...replace.map((r) => routeReplaceCommand(r, this.protocol))];
    const failures = (await this.ip.batch(cmds)).failures.filter((f) => !(f.line <= del.length && isNotFoundMessage(f.message)));
    const failedLines = new Set(failures.map((f) => f.line));
    for (const f of failures) this.log.warn('route change failed', { command: f.command, error: f.message });
    del.forEach((r, i) => { if (!failedLines.has(i + 1)) this.programmed.delete(routeKey(r)); });
    replace.forEach((r, i) => { if (!failedLines.has(del.length + i + 1)) this.programmed.set(routeKey(r), r); });
    // Addresses no longer routed anywhere: their flows must not outlive the workload.
    const stillRouted = new Set([...want.values()].map((r) => r.dst));
    for (const r of del) if (!stillRouted.has(r.dst)) this.flushConntrack(r.dst);
    return { added: replace.length, removed: del.length, failed: failures.length };
  }

  /** Queues a conntrack cleanup (serialised, off the apply path). */
  flushConntrack(cidr: string): void {
    if (!/\/(32|128)$/.test(cidr)) return;
    this.pendingConntrack++;
    this.conntrackQueue = this.conntrackQueue.then(async () => {
      try {
        const n = await flushConntrackFor(cidr, { netns: this.netns });
        if (n) this.log.info('deleted conntrack entries of a removed workload address', { address: cidr, entries: n });
      } catch (err) {
        this.log.warn('conntrack cleanup failed', { address: cidr, error: errorMessage(err) });
      } finally {
        this.pendingConntrack--;
      }
    });
  }

  async close(): Promise<void> {
    await this.ip.close();
    await this.drainConntrack();
  }

  /** Resolves when queued conntrack cleanups are done. */
  async drainConntrack(): Promise<void> {
    while (this.pendingConntrack > 0) await this.conntrackQueue;
  }
}
