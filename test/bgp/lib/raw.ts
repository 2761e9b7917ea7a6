/**
 * A raw BGP client for negative tests: it sends hand-made bytes and reports exactly what the other
 * side answered (OPEN, KEEPALIVE, NOTIFICATION code/subcode, or a closed connection).
 */
import net from 'node:net';
import { MessageReader, KEEPALIVE, frame } from '../../../node/bgp/codec/header.js';
import { encodeOpen, OpenParams } from '../../../node/bgp/codec/open.js';
import { decodeNotification } from '../../../node/bgp/codec/notification.js';
import { MsgType } from '../../../node/bgp/codec/constants.js';

export type RawEvent = { type: 'msg'; msgType: MsgType; body: Buffer } | { type: 'closed' } | { type: 'timeout' };

export class RawBgp {
  private reader = new MessageReader();
  private queue: RawEvent[] = [];
  private waiters: Array<(e: RawEvent) => void> = [];
  private closed = false;
  constructor(readonly sock: net.Socket) {
    // The reader is only a framer here: let it accept anything we might get.
    this.reader.maxLength = 65535;
    sock.on('data', (d) => {
      this.reader.push(d);
      for (;;) {
        let m;
        try { m = this.reader.next(); } catch { break; }
        if (!m) break;
        this.push({ type: 'msg', msgType: m.type, body: Buffer.from(m.body) });
      }
    });
    sock.on('close', () => { this.closed = true; this.push({ type: 'closed' }); });
    sock.on('error', () => undefined);
  }

  static connect(host: string, port: number, localAddress?: string): Promise<RawBgp> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, localAddress });
      s.once('connect', () => resolve(new RawBgp(s)));
      s.once('error', reject);
    });
  }

  private push(e: RawEvent): void {
    const w = this.waiters.shift();
    if (w) w(e); else this.queue.push(e);
  }

  next(timeoutMs = 5000): Promise<RawEvent> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.closed) return Promise.resolve({ type: 'closed' });
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== done); resolve({ type: 'timeout' }); }, timeoutMs);
      const done = (e: RawEvent) => { clearTimeout(t); resolve(e); };
      this.waiters.push(done);
    });
  }

  send(b: Buffer): void {
    if (!this.closed) this.sock.write(b);
  }

  /** OPEN + KEEPALIVE exchange; resolves once the other side's KEEPALIVE arrived. */
  async establish(p: OpenParams): Promise<void> {
    this.send(encodeOpen(p));
    const a = await this.next();
    if (a.type !== 'msg' || a.msgType !== MsgType.Open) throw new Error(`expected OPEN, got ${describe(a)}`);
    this.send(KEEPALIVE);
    const b = await this.next();
    if (b.type !== 'msg' || b.msgType !== MsgType.Keepalive) throw new Error(`expected KEEPALIVE, got ${describe(b)}`);
  }

  /** Reads until a NOTIFICATION or close; returns "code/subcode", "closed" or "timeout". */
  async outcome(timeoutMs = 5000): Promise<string> {
    for (;;) {
      const e = await this.next(timeoutMs);
      if (e.type !== 'msg') return e.type;
      if (e.msgType === MsgType.Notification) {
        const n = decodeNotification(e.body);
        return `${n.code}/${n.subcode}`;
      }
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

export function describe(e: RawEvent): string {
  if (e.type !== 'msg') return e.type;
  if (e.msgType === MsgType.Notification) { const n = decodeNotification(e.body); return `NOTIFICATION ${n.code}/${n.subcode}`; }
  return ({ 1: 'OPEN', 2: 'UPDATE', 3: 'NOTIFICATION', 4: 'KEEPALIVE', 5: 'ROUTE-REFRESH' } as Record<number, string>)[e.msgType] ?? `type ${e.msgType}`;
}

export interface OpenProbe { name: string; myAs: number; holdTime: number; bgpId: number }

/** Sends one OPEN and reports the first answer: "OPEN+KEEPALIVE", "NOTIFICATION c/s" or "closed". */
export async function probeOpen(host: string, port: number, localAddress: string, c: OpenProbe): Promise<string> {
  const r = await RawBgp.connect(host, port, localAddress);
  try {
    r.send(encodeOpen({ localAs: c.myAs, holdTime: c.holdTime, bgpId: c.bgpId, families: [{ afi: 1, safi: 1 }] }));
    const a = await r.next();
    if (a.type === 'msg' && a.msgType === MsgType.Open) {
      const b = await r.next();
      if (b.type === 'msg' && b.msgType === MsgType.Keepalive) return 'OPEN+KEEPALIVE';
      return `OPEN+${describe(b)}`;
    }
    return describe(a);
  } finally {
    r.close();
  }
}

export { frame, KEEPALIVE };
