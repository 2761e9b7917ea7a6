/**
 * A configured BGP neighbour: owns its connections (outgoing and incoming, resolving collisions
 * per RFC 4271 §6.8), reconnects, imports UPDATEs into the RIB, keeps the Adj-RIB-Out, and plays
 * the graceful-restart helper (RFC 4724 §4.2): when a session with graceful restart drops without
 * a NOTIFICATION, the peer's routes stay (stale) in the RIB and the kernel until it comes back and
 * sends End-of-RIB, or its restart time runs out. What it sends is its update group's job
 * (update-group.ts): an established session joins the group of peers with the same export result.
 */
import net from 'node:net';
import { Afi, AFI_IPV4, AFI_IPV6, CeaseSub, ErrCode, SAFI_UNICAST } from './codec/constants.js';
import { forEachPrefix, wordsFor } from './codec/prefix.js';
import { asPathContains, firstAs, PathAttrs } from './codec/attrs.js';
import { DecodedUpdate } from './codec/update.js';
import { encodeRouteRefresh } from './codec/notification.js';
import { Session, LocalSettings, CloseInfo } from './session.js';
import { Rib } from './rib.js';
import type { GroupMember } from './update-group.js';
import { Logger } from '../../src/log.js';
import { notificationName } from './codec/constants.js';

export type PeerType = 'node-to-node mesh' | 'global' | 'node specific';

export interface PeerConfig {
  address: string;
  afi: Afi;
  remoteAs: number;
  localAs: number;
  type: PeerType;
  /** BIRD-style protocol name: Mesh_10_0_0_2, Global_..., Node_... */
  name: string;
  port: number;
  passive: boolean;
  /** We reflect routes to this peer (we are its route reflector). */
  rrClient: boolean;
  /** Local address to bind outgoing connections to (the node's address). */
  sourceAddress?: string;
}

/** What a peer needs from the speaker. */
export interface PeerContext {
  rib: Rib;
  logger: Logger;
  local: () => LocalSettings;
  clusterId: () => number | undefined;
  connectRetryMs: number;
  /** Puts an established session into its update group, which sends it the routes. */
  joinGroup: (peer: Peer, session: Session) => GroupMember;
  onStateChange: (peer: Peer) => void;
  /** Tells the speaker an End-of-RIB arrived (start-up FIB sweep waits for these). */
  onEndOfRib: (peer: Peer, afi: Afi) => void;
}

const PURGE_CHUNK = 20000;

export class Peer {
  state: 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established' = 'Idle';
  since = new Date();
  lastError = '';
  private sessions = new Set<Session>();
  established?: Session;
  private member?: GroupMember;
  readonly sourceId: number;
  private retryTimer?: NodeJS.Timeout;
  private connecting?: net.Socket;
  private stopped = true;
  /** Stopping for a restart: keep every route where it is (RIB and kernel). */
  private keepRoutes = false;
  /** Graceful restart helper state. */
  private staleTimer?: NodeJS.Timeout;
  private staleAfis = new Set<Afi>();
  eorReceived = new Set<Afi>();
  routesReceived = 0;

  constructor(public config: PeerConfig, private readonly ctx: PeerContext) {
    this.sourceId = ctx.rib.addSource({
      kind: 'peer', ibgp: config.remoteAs === config.localAs, rrClient: config.rrClient, routerId: 0,
      addressKey: addressKey(config.address), address: config.address,
    }).id;
  }

  get log(): Logger {
    return this.ctx.logger.child({ peer: this.config.address });
  }

  get ibgp(): boolean {
    return this.config.remoteAs === this.config.localAs;
  }

  private setState(s: Peer['state']): void {
    if (s === this.state) return;
    this.state = s;
    this.since = new Date();
    this.ctx.onStateChange(this);
  }

  private refreshState(): void {
    if (this.established) return this.setState('Established');
    let best: Peer['state'] = this.stopped ? 'Idle' : this.connecting ? 'Connect' : 'Active';
    for (const s of this.sessions) {
      if (s.state === 'OpenConfirm') best = 'OpenConfirm';
      else if (s.state === 'OpenSent' && best !== 'OpenConfirm') best = 'OpenSent';
    }
    this.setState(best);
  }

  start(): void {
    this.stopped = false;
    this.refreshState();
    if (!this.config.passive) this.scheduleConnect(Math.floor(Math.random() * 200));
  }

  /** Applies a changed configuration that does not need a new session (rr client flag). */
  updateConfig(cfg: PeerConfig): void {
    this.config = cfg;
    const src = this.ctx.rib.source(this.sourceId);
    if (src) src.rrClient = cfg.rrClient;
  }

  private scheduleConnect(ms: number): void {
    clearTimeout(this.retryTimer);
    if (this.stopped || this.config.passive) return;
    this.retryTimer = setTimeout(() => this.connect(), ms);
  }

  private connect(): void {
    if (this.stopped || this.established || this.connecting || [...this.sessions].some((s) => s.direction === 'out')) return;
    const sock = net.connect({ host: this.config.address, port: this.config.port, localAddress: this.config.sourceAddress });
    this.connecting = sock;
    this.refreshState();
    const fail = (err: Error) => {
      if (this.connecting !== sock) return;
      this.connecting = undefined;
      sock.destroy();
      this.lastError = `Socket: ${err.message.replace(/^connect /, '')}`;
      this.refreshState();
      this.scheduleConnect(this.retryDelay());
    };
    sock.once('error', fail);
    sock.setTimeout(this.ctx.connectRetryMs * 2, () => fail(new Error('connect timed out')));
    sock.once('connect', () => {
      sock.setTimeout(0);
      sock.removeListener('error', fail);
      this.connecting = undefined;
      if (this.stopped) { sock.destroy(); return; }
      this.attach(sock, 'out');
    });
  }

  private retryDelay(): number {
    return Math.round(this.ctx.connectRetryMs * (0.75 + Math.random() * 0.25));
  }

  /** An incoming TCP connection from this peer's address. */
  accept(sock: net.Socket): void {
    if (this.stopped) { sock.destroy(); return; }
    if (this.established) {
      const gr = this.established.negotiated?.peerGr;
      if (gr) {
        // RFC 4724 §4.2: a new connection while Established means the peer restarted.
        this.log.info('new connection from an established graceful-restart peer: treating the old session as failed');
        this.established.drop('peer reconnected (restart)');
      } else {
        this.attach(sock, 'in').notify(ErrCode.Cease, CeaseSub.Collision, Buffer.alloc(0), 'connection collision with an established session');
        return;
      }
    }
    this.attach(sock, 'in');
  }

  private attach(sock: net.Socket, direction: 'in' | 'out'): Session {
    // One address family per session, as Calico ran bird and bird6: IPv4 routes over IPv4
    // sessions, IPv6 routes over IPv6 sessions.
    const base = this.ctx.local();
    const afi = this.config.afi;
    const local: LocalSettings = {
      ...base,
      families: [afi],
      gracefulRestart: () => { const g = base.gracefulRestart?.(); return g && { ...g, families: g.families.filter((f) => f.afi === afi) }; },
    };
    const s = new Session(sock, direction, local, { remoteAs: this.config.remoteAs }, this.log);
    this.sessions.add(s);
    s.on('open', () => this.onOpen(s));
    s.on('established', () => this.onEstablished(s));
    s.on('update', (u) => this.onUpdate(s, u));
    s.on('refresh', (afi) => this.onRefresh(s, afi));
    s.on('closed', (info) => this.onClosed(s, info));
    s.start();
    this.refreshState();
    return s;
  }

  private onOpen(s: Session): void {
    // Collision (RFC 4271 §6.8): another connection that has also seen an OPEN.
    for (const other of this.sessions) {
      if (other === s || other.state === 'Closed') continue;
      if (other.state === 'Established') {
        s.notify(ErrCode.Cease, CeaseSub.Collision, Buffer.alloc(0), 'collision with an established session');
        return;
      }
      if (other.state !== 'OpenConfirm') continue;
      const localId = this.ctx.local().routerId >>> 0;
      const remoteId = s.negotiated!.remoteId >>> 0;
      // Keep the connection opened by the speaker with the higher BGP identifier.
      const keepDirection = localId > remoteId ? 'out' : 'in';
      const loser = s.direction === keepDirection ? other : s;
      loser.notify(ErrCode.Cease, CeaseSub.Collision, Buffer.alloc(0), 'connection collision');
      if (loser === s) return;
    }
    const src = this.ctx.rib.source(this.sourceId);
    if (src) src.routerId = s.negotiated!.remoteId;
    this.refreshState();
  }

  private onEstablished(s: Session): void {
    for (const other of this.sessions) if (other !== s && other.state !== 'Closed') other.notify(ErrCode.Cease, CeaseSub.Collision);
    this.established = s;
    clearTimeout(this.retryTimer);
    this.lastError = '';
    this.eorReceived.clear();
    const neg = s.negotiated!;
    this.log.info('session established', { direction: s.direction, holdTime: neg.holdTime, families: [...neg.families], peerGr: !!neg.peerGr });
    // Graceful restart helper: decide what happens to routes kept from the previous session.
    if (this.staleAfis.size) {
      for (const afi of [...this.staleAfis]) {
        const fam = neg.peerGr?.families.find((f) => f.afi === afi && f.safi === SAFI_UNICAST);
        if (!neg.peerGr || !fam || !fam.forwarding || !neg.families.has(afi)) void this.purgeStale(afi, 'peer did not preserve forwarding state');
      }
    }
    this.setState('Established');
    this.member = this.ctx.joinGroup(this, s);
  }

  private onUpdate(s: Session, u: DecodedUpdate): void {
    if (s !== this.established) return;
    const rib = this.ctx.rib;
    const src = this.sourceId;
    if (u.endOfRib !== undefined) {
      this.eorReceived.add(u.endOfRib);
      this.log.info('End-of-RIB received', { afi: u.endOfRib });
      if (this.staleAfis.has(u.endOfRib)) void this.purgeStale(u.endOfRib, 'End-of-RIB');
      this.ctx.onEndOfRib(this, u.endOfRib);
      return;
    }
    if (u.treatAsWithdraw) this.log.warn('treat-as-withdraw', { reason: u.treatAsWithdraw });
    if (u.discarded.length) this.log.debug('attributes discarded', { discarded: u.discarded });
    for (const b of u.withdrawn) forEachPrefix(b.buf, b.start, b.end, b.afi, (w) => rib.withdraw(src, b.afi, w));
    if (!u.attrs || u.announced.length === 0) return;
    const reject = this.importReject(u.attrs);
    for (const b of u.announced) {
      if (reject) {
        forEachPrefix(b.buf, b.start, b.end, b.afi, (w) => rib.withdraw(src, b.afi, w));
        continue;
      }
      const nh = b.nextHop ?? u.attrs.nextHop;
      const attrs = u.attrs;
      const key = `${s.negotiated!.as4 ? 4 : 2}${this.ibgp ? 'i' : 'e'}|${nh}|${u.attrKey}`;
      const attrId = rib.attrs.intern(key, () => (nh === attrs.nextHop ? attrs : Object.freeze({ ...attrs, nextHop: nh })));
      this.routesReceived += b.count;
      forEachPrefix(b.buf, b.start, b.end, b.afi, (w) => rib.announce(src, b.afi, w, attrId));
    }
    if (reject) this.log.debug('routes rejected by import checks', { reason: reject });
  }

  /** Loop and sanity checks on import (BIRD's order); a reason means "treat as withdrawn". */
  private importReject(a: PathAttrs): string | undefined {
    const cfg = this.config;
    if (asPathContains(a.asPath, cfg.localAs) && !this.ibgp) return 'own AS in AS_PATH';
    if (this.ibgp && asPathContains(a.asPath, cfg.localAs)) return 'own AS in AS_PATH';
    if (!this.ibgp && firstAs(a.asPath) !== cfg.remoteAs) return 'first AS differs from neighbour AS';
    const local = this.ctx.local();
    if (a.originatorId !== undefined && a.originatorId >>> 0 === local.routerId >>> 0) return 'ORIGINATOR_ID is our router id';
    const cl = this.ctx.clusterId();
    if (cl !== undefined && a.clusterList?.includes(cl)) return 'our cluster id is in CLUSTER_LIST';
    return undefined;
  }

  private onRefresh(s: Session, afi: Afi): void {
    if (s !== this.established || !this.member) return;
    this.log.info('route refresh requested', { afi });
    this.member.refresh();
  }

  /** Asks the peer to send its routes again (RFC 2918). */
  requestRefresh(afi: Afi): void {
    const s = this.established;
    if (s?.negotiated?.routeRefresh && s.negotiated.families.has(afi)) s.send(encodeRouteRefresh(afi, SAFI_UNICAST));
  }

  private onClosed(s: Session, info: CloseInfo): void {
    this.sessions.delete(s);
    const wasEstablished = s === this.established;
    const n = info.sent ?? info.received;
    if (n && !(n.code === ErrCode.Cease && n.subcode === CeaseSub.Collision)) {
      this.lastError = `${info.received ? 'Received' : 'Sent'}: ${notificationName(n.code, n.subcode)}`;
    } else if (wasEstablished) {
      this.lastError = info.reason;
    }
    if (wasEstablished) {
      this.member?.leave();
      this.member = undefined;
    }
    if (wasEstablished && this.keepRoutes) {
      this.established = undefined;
    } else if (wasEstablished) {
      this.established = undefined;
      const neg = s.negotiated!;
      const gr = neg.peerGr;
      // Helper mode only when the peer's TCP went away (no NOTIFICATION) and it advertised GR.
      const helper = !this.stopped && info.transportOnly && gr !== undefined && gr.time > 0;
      this.log.info('session down', { reason: info.reason, gracefulRestart: helper });
      for (const afi of [AFI_IPV4, AFI_IPV6] as Afi[]) {
        if (this.ctx.rib.count(afi, this.sourceId) === 0) continue;
        const fam = gr?.families.find((f) => f.afi === afi && f.safi === SAFI_UNICAST);
        this.ctx.rib.markStale(this.sourceId, afi);
        this.staleAfis.add(afi);
        if (!helper || !fam) void this.purgeStale(afi, 'session down');
      }
      if (helper && this.staleAfis.size) {
        clearTimeout(this.staleTimer);
        this.staleTimer = setTimeout(() => {
          for (const afi of [...this.staleAfis]) void this.purgeStale(afi, 'restart time expired');
        }, gr!.time * 1000);
      }
    }
    this.refreshState();
    if (!this.stopped && !this.established && ![...this.sessions].some((x) => x.direction === 'out')) {
      this.scheduleConnect(wasEstablished ? 1000 : this.retryDelay());
    }
  }

  /** Withdraws the routes still marked stale for a family, a slice at a time. */
  private purgeStale(afi: Afi, why: string): Promise<void> {
    this.staleAfis.delete(afi);
    if (this.staleAfis.size === 0) clearTimeout(this.staleTimer);
    const keys = this.ctx.rib.keysOf(this.sourceId, afi, true);
    const width = wordsFor(afi);
    if (keys.length) this.log.info('removing stale routes', { afi, count: keys.length / width, why });
    let i = 0;
    return new Promise((resolve) => {
      const step = () => {
        const end = Math.min(keys.length, i + PURGE_CHUNK * width);
        for (; i < end; i += width) this.ctx.rib.withdrawIfStale(this.sourceId, afi, keys.subarray(i, i + width));
        if (i < keys.length) setImmediate(step); else resolve();
      };
      step();
    });
  }

  /** Stops the peer. `graceful`: drop TCP without NOTIFICATION so the peer keeps our routes. */
  stop(opts: { graceful: boolean; subcode?: number }): Promise<void> {
    this.stopped = true;
    this.keepRoutes = opts.graceful;
    clearTimeout(this.retryTimer);
    clearTimeout(this.staleTimer);
    this.connecting?.destroy();
    this.connecting = undefined;
    const waits: Array<Promise<void>> = [];
    for (const s of [...this.sessions]) {
      waits.push(new Promise((r) => { if (s.state === 'Closed') r(); else s.once('closed', () => r()); }));
      if (opts.graceful) s.drop('speaker restarting');
      else s.notify(ErrCode.Cease, opts.subcode ?? CeaseSub.AdminShutdown);
    }
    return Promise.all(waits).then(() => undefined);
  }

  /** Removes every route learned from this peer (after stop, when the peer is deconfigured). */
  async purgeAll(): Promise<void> {
    await Promise.all(([AFI_IPV4, AFI_IPV6] as Afi[]).map((afi) => {
      this.ctx.rib.markStale(this.sourceId, afi);
      return this.purgeStale(afi, 'peer removed');
    }));
  }

  /** Frees this peer's route source once it holds no routes (the peer is gone for good). */
  release(): void {
    if (this.routeCount(AFI_IPV4) + this.routeCount(AFI_IPV6) === 0) this.ctx.rib.removeSource(this.sourceId);
  }

  /** Routes currently held from this peer. */
  routeCount(afi: Afi): number {
    return this.ctx.rib.count(afi, this.sourceId);
  }

  get adjOutSize(): number {
    return this.member?.adjOutSize ?? 0;
  }
}

/** Sortable text for an address (the last decision tie-break: lowest peer address). */
export function addressKey(a: string): string {
  if (a.includes(':')) return 'z' + a;
  return a.split('.').map((x) => x.padStart(3, '0')).join('.');
}
