/**
 * One BGP connection (RFC 4271 §8): OpenSent -> OpenConfirm -> Established over one TCP socket,
 * with the hold and keepalive timers, OPEN validation and message dispatch. Which connection
 * survives a collision, reconnects and graceful restart are the Peer's job (peer.ts); a Session
 * only reports what happened.
 *
 * Input is processed under one budget per event-loop turn shared by all sessions (input-pacer.ts),
 * so a peer dumping a million routes, or 500 peers announcing at once, cannot starve our own
 * keepalives. While processing waits for its turn the socket keeps being read into a backlog (up
 * to a high-water mark), and every byte received feeds the hold timer: a peer whose KEEPALIVE sits
 * unprocessed behind its UPDATEs is alive and must not be timed out.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  MsgType, ErrCode, OpenSub, FsmSub, CeaseSub, BGP_VERSION, SAFI_UNICAST, Afi, AFI_IPV4, AFI_IPV6,
} from './codec/constants.js';
import { MessageReader, KEEPALIVE } from './codec/header.js';
import { decodeOpen, encodeOpen, OpenMessage, familiesOf, peerAsOf, GracefulRestartCap } from './codec/open.js';
import { decodeUpdate, DecodedUpdate, AttrParse } from './codec/update.js';
import { encodeNotification, decodeNotification, decodeRouteRefresh, Notification } from './codec/notification.js';
import { BgpProtocolError } from './errors.js';
import { Logger } from '../../src/log.js';
import { ipv4ToString } from './codec/prefix.js';
import { inputPacer } from './input-pacer.js';

export type SessionState = 'OpenSent' | 'OpenConfirm' | 'Established' | 'Closed';

export interface LocalSettings {
  localAs: number;
  routerId: number;
  holdTime: number;
  families: Afi[];
  /** Graceful restart capability to advertise (undefined = none). */
  gracefulRestart?: () => GracefulRestartCap | undefined;
}

export interface PeerExpectations {
  /** The AS we expect in the peer's OPEN. */
  remoteAs: number;
}

export interface Negotiated {
  holdTime: number;
  keepalive: number;
  as4: boolean;
  families: Set<number>;
  routeRefresh: boolean;
  peerGr?: GracefulRestartCap;
  remoteId: number;
  remoteAs: number;
}

export interface CloseInfo {
  reason: string;
  /** NOTIFICATION we sent before closing. */
  sent?: Notification;
  /** NOTIFICATION the peer sent. */
  received?: Notification;
  /** True when the TCP connection just went away (no NOTIFICATION either way). */
  transportOnly: boolean;
}

export interface SessionEvents {
  open: (open: OpenMessage) => void;
  established: () => void;
  update: (u: DecodedUpdate) => void;
  refresh: (afi: Afi, subtype: number) => void;
  closed: (info: CloseInfo) => void;
  drain: () => void;
}

export declare interface Session {
  on<E extends keyof SessionEvents>(event: E, listener: SessionEvents[E]): this;
  once<E extends keyof SessionEvents>(event: E, listener: SessionEvents[E]): this;
  emit<E extends keyof SessionEvents>(event: E, ...args: Parameters<SessionEvents[E]>): boolean;
}

const LARGE_HOLD_MS = 240_000; // RFC 4271 §8: hold timer while waiting for OPEN
const WRITE_HIGH_WATER = 1 << 20;
/** Unprocessed input held while waiting for a turn before the socket is paused. */
const BACKLOG_HIGH_WATER = 256 << 10;

export class Session extends EventEmitter {
  state: SessionState = 'OpenSent';
  negotiated?: Negotiated;
  remoteOpen?: OpenMessage;
  readonly localAddress: string;
  readonly remoteAddress: string;
  private readonly reader = new MessageReader();
  private readonly attrCache = new Map<string, AttrParse>();
  private holdTimer?: NodeJS.Timeout;
  private keepaliveTimer?: NodeJS.Timeout;
  private lastRx = Date.now();
  private holdMs = LARGE_HOLD_MS;
  private processing = false;
  /** Waiting for the pacer: new input goes to the backlog, not the reader. */
  private deferred = false;
  private backlog: Buffer[] = [];
  private backlogBytes = 0;
  private closed = false;
  messagesIn = 0;
  updatesIn = 0;

  constructor(
    readonly socket: Socket,
    readonly direction: 'in' | 'out',
    private readonly local: LocalSettings,
    private readonly expect: PeerExpectations,
    private readonly log: Logger,
  ) {
    super();
    this.localAddress = normaliseSockAddr(socket.localAddress ?? '');
    this.remoteAddress = normaliseSockAddr(socket.remoteAddress ?? '');
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.finish({ reason: `socket error: ${err.message}`, transportOnly: true }));
    socket.on('close', () => this.finish({ reason: 'connection closed by peer', transportOnly: true }));
    socket.on('drain', () => this.emit('drain'));
  }

  start(): void {
    const gr = this.local.gracefulRestart?.();
    this.send(encodeOpen({
      localAs: this.local.localAs,
      holdTime: this.local.holdTime,
      bgpId: this.local.routerId,
      families: this.local.families.map((afi) => ({ afi, safi: SAFI_UNICAST })),
      gracefulRestart: gr,
    }));
    this.armHold();
  }

  /** Writes raw bytes; returns false when the socket buffer is over its high-water mark. */
  send(buf: Buffer): boolean {
    if (this.closed) return false;
    this.socket.write(buf);
    return this.socket.writableLength < WRITE_HIGH_WATER;
  }

  get writable(): boolean {
    return !this.closed && this.socket.writableLength < WRITE_HIGH_WATER;
  }

  /** Sends a NOTIFICATION and closes. */
  notify(code: number, subcode: number, data: Buffer = Buffer.alloc(0), reason?: string): void {
    if (this.closed) return;
    const n = { code, subcode, data };
    this.socket.write(encodeNotification(code, subcode, data));
    this.finish({ reason: reason ?? `sent NOTIFICATION ${code}/${subcode}`, sent: n, transportOnly: false });
  }

  /** Closes without a NOTIFICATION (graceful restart: the peer keeps our routes). */
  drop(reason: string): void {
    this.finish({ reason, transportOnly: true });
  }

  private finish(info: CloseInfo): void {
    if (this.closed) return;
    this.closed = true;
    this.state = 'Closed';
    clearTimeout(this.holdTimer);
    clearInterval(this.keepaliveTimer);
    // end() lets a queued NOTIFICATION go out before FIN; destroy later in case the peer stalls.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.emit('closed', info);
  }

  private armHold(): void {
    clearTimeout(this.holdTimer);
    if (this.holdMs === 0) return;
    const due = this.lastRx + this.holdMs - Date.now();
    this.holdTimer = setTimeout(() => {
      if (Date.now() - this.lastRx >= this.holdMs) {
        this.log.warn('hold timer expired', { peer: this.remoteAddress });
        this.notify(ErrCode.HoldTimerExpired, 0, Buffer.alloc(0), 'hold timer expired');
      } else {
        this.armHold();
      }
    }, Math.max(due, 10));
  }

  private onData(chunk: Buffer): void {
    this.lastRx = Date.now();
    if (this.deferred || this.processing) {
      // The reader may still hold whole messages: queue the chunk rather than copy them.
      this.backlog.push(chunk);
      this.backlogBytes += chunk.length;
      if (this.backlogBytes > BACKLOG_HIGH_WATER) this.socket.pause();
      return;
    }
    this.reader.push(chunk);
    this.process();
  }

  private readonly resumeProcessing = (): void => {
    this.deferred = false;
    if (!this.closed) this.process();
  };

  private nextMessage(): ReturnType<MessageReader['next']> {
    for (;;) {
      const msg = this.reader.next();
      if (msg || this.backlog.length === 0) return msg;
      const chunk = this.backlog.shift()!;
      this.backlogBytes -= chunk.length;
      this.reader.push(chunk);
      if (this.backlog.length === 0 && this.socket.isPaused()) this.socket.resume();
    }
  }

  private process(): void {
    this.processing = true;
    try {
      while (!this.closed) {
        if (!inputPacer.hasBudget()) {
          if (this.reader.pending > 0 || this.backlog.length > 0) {
            // Yield: timers and the other sessions run, then we continue where we stopped.
            this.deferred = true;
            this.processing = false;
            inputPacer.defer(this.resumeProcessing);
            return;
          }
          break;
        }
        const msg = this.nextMessage();
        if (!msg) break;
        this.messagesIn++;
        this.handle(msg.type, msg.body);
      }
    } catch (err) {
      if (err instanceof BgpProtocolError) {
        this.log.warn('protocol error from peer', { peer: this.remoteAddress, error: err.message, code: err.code, subcode: err.subcode });
        this.notify(err.code, err.subcode, err.data, err.message);
      } else {
        this.log.error('internal error handling a message', { peer: this.remoteAddress, error: err as Error, stack: (err as Error).stack });
        this.notify(ErrCode.Cease, CeaseSub.OutOfResources, Buffer.alloc(0), `internal error: ${(err as Error).message}`);
      }
    }
    this.processing = false;
  }

  private fsmError(): BgpProtocolError {
    const sub = this.state === 'OpenSent' ? FsmSub.UnexpectedInOpenSent : this.state === 'OpenConfirm' ? FsmSub.UnexpectedInOpenConfirm : FsmSub.UnexpectedInEstablished;
    return new BgpProtocolError(ErrCode.Fsm, sub, Buffer.alloc(0), `unexpected message in ${this.state}`);
  }

  private handle(type: MsgType, body: Buffer): void {
    switch (type) {
      case MsgType.Notification: {
        const n = decodeNotification(body);
        this.log.info('NOTIFICATION received', { peer: this.remoteAddress, code: n.code, subcode: n.subcode });
        this.finish({ reason: `received NOTIFICATION ${n.code}/${n.subcode}`, received: n, transportOnly: false });
        return;
      }
      case MsgType.Open:
        if (this.state !== 'OpenSent') throw this.fsmError();
        this.onOpen(body);
        return;
      case MsgType.Keepalive:
        if (this.state === 'OpenSent') throw this.fsmError();
        if (this.state === 'OpenConfirm') this.becomeEstablished();
        this.armHold();
        return;
      case MsgType.Update: {
        if (this.state !== 'Established') throw this.fsmError();
        this.armHoldLazy();
        const u = decodeUpdate(body, { as4: this.negotiated!.as4, ibgp: this.negotiated!.remoteAs === this.local.localAs, families: this.negotiated!.families, cache: this.attrCache });
        this.updatesIn++;
        this.emit('update', u);
        return;
      }
      case MsgType.RouteRefresh: {
        if (this.state !== 'Established') throw this.fsmError();
        const r = decodeRouteRefresh(body);
        if (r.safi === SAFI_UNICAST && this.negotiated!.families.has(r.afi)) this.emit('refresh', r.afi as Afi, r.subtype);
        return;
      }
    }
  }

  /** Re-arming a timer per UPDATE is measurable at a million routes: only when it is near due. */
  private armHoldLazy(): void {
    if (!this.holdTimer) this.armHold();
  }

  private onOpen(body: Buffer): void {
    const open = decodeOpen(body);
    if (open.version !== BGP_VERSION) {
      const d = Buffer.alloc(2);
      d.writeUInt16BE(BGP_VERSION);
      throw new BgpProtocolError(ErrCode.Open, OpenSub.UnsupportedVersion, d, `version ${open.version}`);
    }
    if (open.unsupportedParams.length) {
      throw new BgpProtocolError(ErrCode.Open, OpenSub.UnsupportedOptParam, Buffer.alloc(0), `optional parameter ${open.unsupportedParams[0]}`);
    }
    const remoteAs = peerAsOf(open);
    if (remoteAs !== this.expect.remoteAs) {
      const d = Buffer.alloc(2);
      d.writeUInt16BE(open.myAs);
      throw new BgpProtocolError(ErrCode.Open, OpenSub.BadPeerAs, d, `peer AS ${remoteAs}, expected ${this.expect.remoteAs}`);
    }
    if (open.holdTime === 1 || open.holdTime === 2) {
      throw new BgpProtocolError(ErrCode.Open, OpenSub.UnacceptableHoldTime, Buffer.alloc(0), `hold time ${open.holdTime}`);
    }
    const id = open.bgpId >>> 0;
    const firstOctet = id >>> 24;
    if (id === 0 || firstOctet >= 224 || (remoteAs === this.local.localAs && id === this.local.routerId >>> 0)) {
      const d = Buffer.alloc(4);
      d.writeUInt32BE(id);
      throw new BgpProtocolError(ErrCode.Open, OpenSub.BadBgpId, d, `BGP identifier ${ipv4ToString(id)}`);
    }
    const hold = Math.min(open.holdTime, this.local.holdTime);
    const theirs = new Set(familiesOf(open.caps).filter((f) => f.safi === SAFI_UNICAST).map((f) => f.afi));
    const families = new Set<number>(this.local.families.filter((f) => theirs.has(f)));
    this.negotiated = {
      holdTime: hold,
      keepalive: Math.floor(hold / 3),
      as4: open.caps.fourOctetAs !== undefined,
      families,
      routeRefresh: open.caps.routeRefresh,
      peerGr: open.caps.gracefulRestart,
      remoteId: id,
      remoteAs,
    };
    this.remoteOpen = open;
    this.holdMs = hold * 1000;
    this.state = 'OpenConfirm';
    // The peer may close this connection from the handler (collision resolution).
    this.emit('open', open);
    if (this.closed) return;
    this.send(KEEPALIVE);
    this.startKeepalives();
    this.armHold();
  }

  private startKeepalives(): void {
    clearInterval(this.keepaliveTimer);
    const ka = this.negotiated?.keepalive ?? 0;
    if (ka > 0) this.keepaliveTimer = setInterval(() => this.send(KEEPALIVE), ka * 1000);
  }

  private becomeEstablished(): void {
    this.state = 'Established';
    this.emit('established');
  }
}

/** '::ffff:10.0.0.1' -> '10.0.0.1' (dual-stack listeners report v4 peers that way). */
export function normaliseSockAddr(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export { AFI_IPV4, AFI_IPV6 };
