/**
 * The node's BGP speaker: configuration from etcd (applied live), the listening socket, the peers,
 * the RIB, route origination (affine IPAM blocks + borrowed workload addresses inside IP pools),
 * the export policy and kernel programming.
 *
 *   const speaker = new BgpSpeaker({ kv: connectKV(cfg, 'daemon'), nodeName, logger });
 *   await speaker.start();
 *   formatPeerStatus(speaker.peerStatus());
 *   await speaker.stop({ graceful: true });   // peers keep our routes, the kernel keeps theirs
 *
 * Restart: routes we installed stay in the kernel when we stop gracefully; at start-up we adopt
 * them (RFC 4724 restarting speaker: R and F bits set), and sweep the ones nobody re-announced once
 * every peer has sent End-of-RIB or the restart time has passed.
 */
import net from 'node:net';
import { KV } from '../../src/datastore/kv.js';
import { Logger } from '../../src/log.js';
import { AFI_IPV4, AFI_IPV6, Afi, CeaseSub, SAFI_UNICAST } from './codec/constants.js';
import { PathAttrs, localAttrs, prependAs } from './codec/attrs.js';
import { parsePrefix, prefixToString, PrefixWords, prefixCovers } from './codec/prefix.js';
import { Rib } from './rib.js';
import { KernelFib, dumpOwnedRoutes } from './fib.js';
import { Peer, PeerConfig, PeerContext } from './peer.js';
import { Session, LocalSettings, normaliseSockAddr } from './session.js';
import { ConfigWatcher, DesiredConfig, deriveConfig, LocalRoute } from './config.js';
import { PeerStatusRow, hhmmss } from './status.js';
import { ExportProfile, UpdateGroups } from './update-group.js';
import { GracefulRestartCap } from './codec/open.js';
import { MemoryReducer } from '../../src/native/memory-reducer.js';

export interface BgpSpeakerOptions {
  kv: KV;
  nodeName: string;
  logger: Logger;
  /** Address to listen on (default: all, IPv4 and IPv6). */
  listenAddress?: string;
  /** Listening port, and the default port of peers (default 179). */
  port?: number;
  /** Router id override (dotted quad); default: the node's IPv4 address. */
  routerId?: string;
  /** Hold time we offer (default 240 s, BIRD's). */
  holdTime?: number;
  /** Delay between connection attempts (default 5 s, Calico v3's "connect retry time 5"). */
  connectRetryMs?: number;
  /** Graceful restart time we advertise, and the start-up FIB sweep deadline (default 120 s). */
  gracefulRestartTime?: number;
  /** Program the kernel (default true). Tests of pure protocol behaviour turn it off. */
  kernel?: boolean;
  /** `ip` worker processes for kernel programming (default 2, see fib.ts for the measurements). */
  fibWorkers?: number;
  /** Give freed C-heap memory back to the kernel after bursts of routes (default true). */
  releaseMemory?: boolean;
}

const LOCAL_BLOCK_KEY = 'local:block';
const LOCAL_HOST_KEY = 'local:host';

export class BgpSpeaker {
  readonly rib = new Rib();
  private fib?: KernelFib;
  private readonly peers = new Map<string, Peer>();
  private server?: net.Server;
  private watcher?: ConfigWatcher;
  private cfg?: DesiredConfig;
  private readonly log: Logger;
  private localRoutes = new Map<string, LocalRoute>();
  private restarting = false;
  private sweepTimer?: NodeJS.Timeout;
  private fibPumpScheduled = false;
  private reducer?: MemoryReducer;
  /** Peers with the same export result share one Adj-RIB-Out (update-group.ts). */
  private readonly groups: UpdateGroups;
  private localBlockAttr: number;
  private localHostAttr: number;
  private started = false;
  /** Set by a graceful stop: the kernel keeps exactly what it has. */
  private fibFrozen = false;
  private stopping = false;
  readonly startedAt = Date.now();
  /** Resolves after the first configuration has been applied. */
  ready: Promise<void>;
  private markReady!: () => void;

  constructor(private readonly opts: BgpSpeakerOptions) {
    this.log = opts.logger.child({ component: 'bgp' });
    this.ready = new Promise((r) => (this.markReady = r));
    this.localBlockAttr = this.rib.attrs.intern(LOCAL_BLOCK_KEY, localAttrs, 'blackhole');
    this.localHostAttr = this.rib.attrs.intern(LOCAL_HOST_KEY, localAttrs, 'none');
    // Keep the two local attribute sets alive forever.
    this.rib.attrs.ref(this.localBlockAttr);
    this.rib.attrs.ref(this.localHostAttr);
    this.groups = new UpdateGroups(this.rib, {
      prefixAllowed: (afi, w) => this.prefixAllowed(afi, w),
      attrsFor: (profile, srcId, attrId) => this.exportDecision(profile, srcId, attrId),
    });
    this.rib.attrs.onFree = (id) => this.groups.forgetAttr(id);
    // O(groups) per best-path change, not O(peers): this runs on the input path.
    this.rib.onBestChange((afi, w, src, attr) => this.groups.onBestChange(afi, w, src, attr));
  }

  get port(): number {
    return this.opts.port ?? 179;
  }

  get config(): DesiredConfig | undefined {
    return this.cfg;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.opts.kernel !== false) {
      this.fib = new KernelFib({ logger: this.log, workers: this.opts.fibWorkers });
      this.fib.start();
      this.fib.onCapacity = () => this.pumpFib();
      this.fib.onFailure = (cmd) => {
        try { const p = parsePrefix(cmd.prefix); this.rib.fibFailed(p.afi, p.words); } catch { /* not ours */ }
      };
      const owned = await dumpOwnedRoutes();
      for (const r of owned) {
        try { const p = parsePrefix(r.prefix); this.rib.adoptInstalled(p.afi, p.words, r.spec); } catch { /* skip */ }
      }
      if (owned.length) {
        // We ran before and left our routes in place: act as a restarting speaker.
        this.restarting = true;
        this.log.info('adopted kernel routes from a previous run', { count: owned.length });
        this.sweepTimer = setTimeout(() => this.finishRestart('restart time expired'), this.grTime * 1000);
      }
    }
    this.rib.onFibDirty = () => this.scheduleFibPump();
    if (this.opts.releaseMemory !== false) this.reducer = new MemoryReducer({ logger: this.log });
    await this.listen();
    this.watcher = new ConfigWatcher(this.opts.kv, this.opts.nodeName, this.log, () => this.apply());
    await this.watcher.start();
  }

  private get grTime(): number {
    return this.opts.gracefulRestartTime ?? 120;
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((sock) => this.onConnection(sock));
      const host = this.opts.listenAddress ?? '::';
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (host === '::' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')) {
          server.listen(this.port, '0.0.0.0', () => resolve());
          return;
        }
        reject(err);
      });
      server.listen(this.port, host, () => resolve());
      this.server = server;
    });
  }

  private onConnection(sock: net.Socket): void {
    const addr = normaliseSockAddr(sock.remoteAddress ?? '');
    const peer = this.peers.get(addr);
    if (!peer || this.stopping) {
      this.log.info('rejecting connection from an address that is not a configured peer', { address: addr });
      sock.destroy();
      return;
    }
    peer.accept(sock);
  }

  /** Applies the current etcd snapshot. */
  private apply(): void {
    if (this.stopping || !this.watcher) return;
    const next = deriveConfig(this.watcher.snapshot, { nodeName: this.opts.nodeName, routerId: this.opts.routerId, defaultPort: this.port });
    for (const p of next.problems) this.log.warn('BGP configuration problem', { problem: p });
    const prev = this.cfg;
    this.cfg = next;
    this.rib.setOwnAddresses([next.ipv4, next.ipv6].filter((x): x is string => !!x));
    const identityChanged = prev && (prev.localAs !== next.localAs || prev.routerId !== next.routerId);
    const poolsChanged = !prev || JSON.stringify(prev.pools.map((p) => [p.cidr, p.ipip])) !== JSON.stringify(next.pools.map((p) => [p.cidr, p.ipip]));
    const rrChanged = prev && prev.clusterId !== next.clusterId;
    if (poolsChanged) {
      this.rib.ipip = (afi, w) => next.pools.some((p) => p.ipip && p.afi === afi && prefixCovers(p.words, w));
      if (prev) this.rib.refreshNexthops();
    }

    // Peers
    const wanted = new Map(next.peers.map((p) => [p.address, p]));
    for (const [addr, peer] of this.peers) {
      const want = wanted.get(addr);
      if (!want || identityChanged || sessionKeyChanged(peer.config, want)) {
        this.log.info('removing peer', { peer: addr, reason: !want ? 'deconfigured' : 'configuration changed' });
        this.peers.delete(addr);
        void peer.stop({ graceful: false, subcode: want ? CeaseSub.OtherConfigChange : CeaseSub.PeerDeconfigured }).then(() => peer.purgeAll()).then(() => peer.release());
      } else {
        peer.updateConfig(want);
      }
    }
    for (const [addr, want] of wanted) {
      if (this.peers.has(addr)) continue;
      const peer = new Peer(want, this.peerContext());
      this.peers.set(addr, peer);
      this.log.info('adding peer', { peer: addr, type: want.type, as: want.remoteAs, rrClient: want.rrClient });
      peer.start();
    }

    // Local routes
    const nextLocal = new Map(next.localRoutes.map((r) => [r.prefix, r]));
    for (const [prefix, r] of this.localRoutes) {
      const n = nextLocal.get(prefix);
      if (!n || n.kind !== r.kind) {
        const p = parsePrefix(prefix);
        this.rib.withdraw(0, p.afi, p.words);
      }
    }
    for (const [prefix, r] of nextLocal) {
      const old = this.localRoutes.get(prefix);
      if (old && old.kind === r.kind) continue;
      const p = parsePrefix(prefix);
      this.rib.announce(0, p.afi, p.words, r.kind === 'block' ? this.localBlockAttr : this.localHostAttr);
      this.log.debug('announcing local route', { prefix, kind: r.kind });
    }
    this.localRoutes = nextLocal;

    if ((poolsChanged || rrChanged) && prev) this.groups.reexportAll();
    this.markReady();
  }

  private peerContext(): PeerContext {
    return {
      rib: this.rib,
      logger: this.log,
      local: () => this.localSettings(),
      clusterId: () => this.cfg?.clusterId,
      connectRetryMs: this.opts.connectRetryMs ?? 5000,
      joinGroup: (peer, session) => this.groups.join(this.profileOf(peer, session), session, peer.sourceId),
      onStateChange: () => undefined,
      onEndOfRib: () => this.maybeFinishRestart(),
    };
  }

  private localSettings(): LocalSettings {
    const cfg = this.cfg!;
    return {
      localAs: cfg.localAs,
      routerId: cfg.routerId,
      holdTime: this.opts.holdTime ?? 240,
      families: [AFI_IPV4, AFI_IPV6],
      gracefulRestart: () => this.grCap(),
    };
  }

  private grCap(): GracefulRestartCap {
    return {
      restarting: this.restarting,
      notification: false,
      time: Math.min(this.grTime, 4095),
      // F: we keep our kernel routes across restarts, so forwarding survives.
      families: [AFI_IPV4, AFI_IPV6].map((afi) => ({ afi, safi: SAFI_UNICAST, forwarding: true })),
    };
  }

  private profileOf(peer: Peer, s: Session): ExportProfile {
    const afi = peer.config.afi;
    return { afi, ibgp: peer.ibgp, rrClient: peer.config.rrClient, as4: s.negotiated!.as4, nextHopSelf: this.nextHopSelf(afi, s) };
  }

  private nextHopSelf(afi: Afi, s: Session): string {
    const local = s.localAddress;
    const localIsV6 = local.includes(':');
    if ((afi === AFI_IPV6) === localIsV6) return local;
    return (afi === AFI_IPV4 ? this.cfg?.ipv4 : this.cfg?.ipv6) ?? (afi === AFI_IPV4 ? '0.0.0.0' : '::');
  }

  /**
   * Export policy (Calico's calico_pools filter + BGP rules):
   *  - only prefixes inside an IP pool are announced;
   *  - local routes go to everyone with ORIGIN IGP, next hop self, LOCAL_PREF 100 on iBGP;
   *  - iBGP-learned routes go to iBGP peers only when we reflect (RFC 4456), unchanged next hop,
   *    with ORIGINATOR_ID and our CLUSTER_ID prepended;
   *  - eBGP peers get our AS prepended, next hop self, no LOCAL_PREF/MED/RR attributes.
   */
  private prefixAllowed(afi: Afi, w: PrefixWords): boolean {
    const cfg = this.cfg;
    if (!cfg) return false;
    for (const p of cfg.pools) if (p.afi === afi && prefixCovers(p.words, w)) return true;
    return false;
  }

  /** Per (profile, source, attribute set); the update group caches the result. */
  private exportDecision(profile: ExportProfile, srcId: number, attrId: number): { attrs: PathAttrs; nextHop: string } | undefined {
    const cfg = this.cfg;
    if (!cfg) return undefined;
    const src = this.rib.source(srcId);
    if (!src) return undefined;
    const a = this.rib.attrs.get(attrId);
    const ebgpOut = !profile.ibgp;
    if (src.kind === 'local') {
      return ebgpOut
        ? { attrs: { origin: 0, asPath: prependAs([], cfg.localAs), nextHop: '' }, nextHop: '' }
        : { attrs: { origin: 0, asPath: [], nextHop: '', localPref: 100 }, nextHop: '' };
    }
    if (ebgpOut) {
      const { localPref: _lp, med: _med, originatorId: _o, clusterList: _c, ...rest } = a;
      return { attrs: { ...rest, asPath: prependAs(a.asPath, cfg.localAs), nextHop: '' }, nextHop: '' };
    }
    if (src.ibgp) {
      // iBGP -> iBGP: only as a route reflector.
      if (cfg.clusterId === undefined) return undefined;
      if (!src.rrClient && !profile.rrClient) return undefined;
      return {
        attrs: { ...a, localPref: a.localPref ?? 100, originatorId: a.originatorId ?? src.routerId, clusterList: [cfg.clusterId, ...(a.clusterList ?? [])] },
        nextHop: a.nextHop,
      };
    }
    // eBGP-learned -> iBGP: next hop self, LOCAL_PREF 100.
    return { attrs: { ...a, localPref: a.localPref ?? 100, nextHop: '' }, nextHop: '' };
  }

  private scheduleFibPump(): void {
    if (this.fibPumpScheduled) return;
    this.fibPumpScheduled = true;
    // Route changes are the bursts that leave freed memory behind (see memory-reducer.ts).
    this.reducer?.activity();
    setImmediate(() => { this.fibPumpScheduled = false; this.pumpFib(); });
  }

  private pumpFib(): void {
    if (this.fibFrozen) return;
    const fib = this.fib;
    if (!fib) {
      this.rib.drainFib(Number.MAX_SAFE_INTEGER, () => undefined);
      return;
    }
    let budget = 20000;
    while (budget > 0 && this.rib.fibPending > 0 && fib.hasCapacity) {
      budget -= this.rib.drainFib(2000, (_afi, w, spec) => fib.queue({ prefix: prefixToString(w), spec }));
      fib.flush();
    }
    if (this.rib.fibPending > 0 && fib.hasCapacity) this.scheduleFibPump();
  }

  /** Resolves once the kernel has every change made so far. */
  async fibSettled(): Promise<void> {
    for (;;) {
      this.pumpFib();
      if (this.rib.fibPending === 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.fib?.settled();
  }

  private maybeFinishRestart(): void {
    if (!this.restarting) return;
    for (const p of this.peers.values()) {
      const s = p.established;
      if (!s) return;
      for (const afi of s.negotiated!.families) if (!p.eorReceived.has(afi as Afi)) return;
    }
    this.finishRestart('End-of-RIB from every peer');
  }

  private finishRestart(why: string): void {
    if (!this.restarting) return;
    this.restarting = false;
    clearTimeout(this.sweepTimer);
    this.log.info('graceful restart complete: removing kernel routes nobody re-announced', { why });
    this.rib.sweepFib();
  }

  peerStatus(): PeerStatusRow[] {
    const rows: PeerStatusRow[] = [];
    for (const p of [...this.peers.values()].sort((a, b) => a.config.address.localeCompare(b.config.address))) {
      const st = p.state;
      rows.push({
        ipVersion: p.config.afi === AFI_IPV6 ? 6 : 4,
        peerAddress: p.config.address,
        peerType: p.config.type,
        state: st === 'Established' ? 'up' : st === 'Idle' ? 'down' : 'start',
        since: hhmmss(p.since),
        info: st === 'Established' || !p.lastError ? st : `${st}        ${p.lastError}`,
        name: p.config.name,
        routesReceived: p.routeCount(p.config.afi),
      });
    }
    return rows;
  }

  /** Update groups: key, members, routes in the group's Adj-RIB-Out (for tests and status). */
  updateGroups(): Array<{ key: string; members: number; routes: number }> {
    return this.groups.describe();
  }

  /** Peers by address (for tests and the status socket). */
  peer(address: string): Peer | undefined {
    return this.peers.get(address);
  }

  /** Best routes for a family as { prefix: spec } (for tests and debugging; small tables only). */
  routes(afi: Afi): Array<{ prefix: string; source: string; kernel: string }> {
    const out: Array<{ prefix: string; source: string; kernel: string }> = [];
    this.rib.forEachBest(afi, (w, src, spec) => out.push({ prefix: prefixToString(w), source: this.rib.source(src)?.address ?? '?', kernel: spec }));
    return out.sort((a, b) => a.prefix.localeCompare(b.prefix));
  }

  /** Asks every established peer to resend its routes (route refresh). */
  refreshAll(): void {
    for (const p of this.peers.values()) { p.requestRefresh(AFI_IPV4); p.requestRefresh(AFI_IPV6); }
  }

  /**
   * Stops the speaker. graceful (default): TCP is dropped without NOTIFICATION so graceful-restart
   * peers keep our routes, and our kernel routes stay. Otherwise: Cease/administrative shutdown to
   * every peer and our kernel routes are removed.
   */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const graceful = opts.graceful ?? true;
    clearTimeout(this.sweepTimer);
    this.reducer?.stop();
    if (graceful) {
      // Let what is already queued reach the kernel, then freeze it.
      await this.fibSettled();
      this.fibFrozen = true;
    }
    await this.watcher?.stop();
    this.server?.close();
    await Promise.all([...this.peers.values()].map((p) => p.stop({ graceful })));
    if (!graceful && this.fib) {
      // Remove everything we installed: withdraw all routes and let the FIB catch up.
      await Promise.all([...this.peers.values()].map((p) => p.purgeAll()));
      for (const [prefix] of this.localRoutes) { const p = parsePrefix(prefix); this.rib.withdraw(0, p.afi, p.words); }
      await new Promise((r) => setImmediate(r));
      this.rib.sweepFib();
      await this.fibSettled();
    }
    await this.fib?.stop();
  }
}

function sessionKeyChanged(a: PeerConfig, b: PeerConfig): boolean {
  // The rr-client flag decides which update group the session is in: a new session resends cleanly.
  return a.remoteAs !== b.remoteAs || a.localAs !== b.localAs || a.port !== b.port || a.passive !== b.passive || a.sourceAddress !== b.sourceAddress || a.rrClient !== b.rrClient;
}

export { formatPeerStatus } from './status.js';
export type { PeerStatusRow } from './status.js';
