/**
 * OPEN (RFC 4271 §4.2) with capabilities (RFC 5492) and the extended optional-parameter length
 * of RFC 9072. We accept the extended form but only send it when the parameters do not fit in
 * 255 octets, because GoBGP 3.10 answers an extended OPEN with 1/2.
 */
import { Cap, ErrCode, OpenSub, MsgType, AFI_IPV4, AFI_IPV6, SAFI_UNICAST, AS_TRANS } from './constants.js';
import { BgpProtocolError } from '../errors.js';
import { frame } from './header.js';

export interface AfiSafi { afi: number; safi: number }

export interface GracefulRestartCap {
  /** R bit: the sender has restarted; do not wait for its End-of-RIB before sending. */
  restarting: boolean;
  /** N bit (RFC 8538). */
  notification: boolean;
  /** Seconds the peer asks us to keep its routes (0..4095). */
  time: number;
  families: Array<AfiSafi & { forwarding: boolean }>;
}

export interface Capabilities {
  multiprotocol: AfiSafi[];
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  fourOctetAs?: number;
  gracefulRestart?: GracefulRestartCap;
  /** ADD-PATH (RFC 7911) per family: 1 receive, 2 send, 3 both. We never advertise it. */
  addPath: Array<AfiSafi & { mode: number }>;
  extendedMessage: boolean;
  /** Every capability code received, known or not (for logs and tests). */
  codes: number[];
}

export interface OpenMessage {
  version: number;
  myAs: number;
  holdTime: number;
  bgpId: number;
  caps: Capabilities;
  /** Optional parameter types other than 2 (capabilities): RFC 4271 says 2/4. */
  unsupportedParams: number[];
}

export function emptyCaps(): Capabilities {
  return { multiprotocol: [], routeRefresh: false, enhancedRouteRefresh: false, addPath: [], extendedMessage: false, codes: [] };
}

function openError(sub: OpenSub, detail: string, data = Buffer.alloc(0)): BgpProtocolError {
  return new BgpProtocolError(ErrCode.Open, sub, data, detail);
}

/** Decodes an OPEN body (after the header). Throws 2/0 (or 1/2 style errors) when it does not parse. */
export function decodeOpen(body: Buffer): OpenMessage {
  if (body.length < 10) throw openError(OpenSub.Unspecific, 'OPEN too short');
  const version = body[0]!;
  const myAs = body.readUInt16BE(1);
  const holdTime = body.readUInt16BE(3);
  const bgpId = body.readUInt32BE(5);
  let optLen = body[9]!;
  let off = 10;
  let extended = false;
  // RFC 9072: non-ext length 255 and first parameter type 255 means a 2-octet length follows.
  if (optLen === 255 && body.length >= 13 && body[10] === 255) {
    extended = true;
    optLen = body.readUInt16BE(11);
    off = 13;
  }
  if (off + optLen !== body.length) throw openError(OpenSub.Unspecific, `optional parameters length ${optLen} does not match the message`);
  const caps = emptyCaps();
  const unsupportedParams: number[] = [];
  const end = off + optLen;
  while (off < end) {
    const hdr = extended ? 3 : 2;
    if (off + hdr > end) throw openError(OpenSub.Unspecific, 'truncated optional parameter');
    const type = body[off]!;
    const len = extended ? body.readUInt16BE(off + 1) : body[off + 1]!;
    off += hdr;
    if (off + len > end) throw openError(OpenSub.Unspecific, 'optional parameter runs past the end');
    if (type === 2) decodeCapabilities(body, off, off + len, caps);
    else unsupportedParams.push(type);
    off += len;
  }
  return { version, myAs, holdTime, bgpId, caps, unsupportedParams };
}

function decodeCapabilities(buf: Buffer, start: number, end: number, caps: Capabilities): void {
  let off = start;
  while (off < end) {
    if (off + 2 > end) throw openError(OpenSub.Unspecific, 'truncated capability');
    const code = buf[off]!;
    const len = buf[off + 1]!;
    off += 2;
    if (off + len > end) throw openError(OpenSub.Unspecific, `capability ${code} runs past the end`);
    const v = buf.subarray(off, off + len);
    caps.codes.push(code);
    // Known capabilities with a malformed value are ignored like unknown ones (RFC 5492 lets a
    // speaker ignore what it does not understand); resetting over them only hurts interop.
    switch (code) {
      case Cap.Multiprotocol:
        if (len === 4) caps.multiprotocol.push({ afi: v.readUInt16BE(0), safi: v[3]! });
        break;
      case Cap.RouteRefresh:
      case Cap.RouteRefreshCisco:
        caps.routeRefresh = true;
        break;
      case Cap.EnhancedRouteRefresh:
        caps.enhancedRouteRefresh = true;
        break;
      case Cap.FourOctetAs:
        if (len === 4) caps.fourOctetAs = v.readUInt32BE(0);
        break;
      case Cap.ExtendedMessage:
        caps.extendedMessage = true;
        break;
      case Cap.GracefulRestart:
        if (len >= 2 && (len - 2) % 4 === 0) {
          const fl = v.readUInt16BE(0);
          const families: GracefulRestartCap['families'] = [];
          for (let i = 2; i < len; i += 4) families.push({ afi: v.readUInt16BE(i), safi: v[i + 2]!, forwarding: (v[i + 3]! & 0x80) !== 0 });
          caps.gracefulRestart = { restarting: (fl & 0x8000) !== 0, notification: (fl & 0x4000) !== 0, time: fl & 0x0fff, families };
        }
        break;
      case Cap.AddPath:
        for (let i = 0; i + 4 <= len; i += 4) caps.addPath.push({ afi: v.readUInt16BE(i), safi: v[i + 2]!, mode: v[i + 3]! });
        break;
      default:
        break; // RFC 5492: ignore capabilities we do not know.
    }
    off += len;
  }
}

export interface OpenParams {
  localAs: number;
  holdTime: number;
  bgpId: number;
  families: AfiSafi[];
  routeRefresh?: boolean;
  gracefulRestart?: GracefulRestartCap;
  /** Extra raw capabilities (tests use this to send unknown codes). */
  extraCaps?: Array<{ code: number; value: Buffer }>;
}

export function encodeCapabilities(p: OpenParams): Buffer[] {
  const caps: Buffer[] = [];
  const cap = (code: number, value: Buffer) => Buffer.concat([Buffer.from([code, value.length]), value]);
  for (const f of p.families) {
    const v = Buffer.alloc(4);
    v.writeUInt16BE(f.afi, 0);
    v[3] = f.safi;
    caps.push(cap(Cap.Multiprotocol, v));
  }
  if (p.routeRefresh !== false) {
    caps.push(cap(Cap.RouteRefresh, Buffer.alloc(0)));
    caps.push(cap(Cap.EnhancedRouteRefresh, Buffer.alloc(0)));
  }
  const as4 = Buffer.alloc(4);
  as4.writeUInt32BE(p.localAs >>> 0);
  caps.push(cap(Cap.FourOctetAs, as4));
  if (p.gracefulRestart) {
    const g = p.gracefulRestart;
    const v = Buffer.alloc(2 + 4 * g.families.length);
    v.writeUInt16BE((g.restarting ? 0x8000 : 0) | (g.notification ? 0x4000 : 0) | (g.time & 0x0fff), 0);
    g.families.forEach((f, i) => {
      v.writeUInt16BE(f.afi, 2 + 4 * i);
      v[4 + 4 * i] = f.safi;
      v[5 + 4 * i] = f.forwarding ? 0x80 : 0;
    });
    caps.push(cap(Cap.GracefulRestart, v));
  }
  for (const e of p.extraCaps ?? []) caps.push(cap(e.code, e.value));
  return caps;
}

export function encodeOpen(p: OpenParams): Buffer {
  const caps = encodeCapabilities(p);
  // One capability per parameter, like BIRD: every peer we test accepts it, and it keeps each
  // parameter far below 255 octets.
  const params = caps.map((c) => Buffer.concat([Buffer.from([2, c.length]), c]));
  const paramLen = params.reduce((n, b) => n + b.length, 0);
  const fixed = Buffer.alloc(10);
  fixed[0] = 4;
  fixed.writeUInt16BE(p.localAs > 0xffff ? AS_TRANS : p.localAs, 1);
  fixed.writeUInt16BE(p.holdTime, 3);
  fixed.writeUInt32BE(p.bgpId >>> 0, 5);
  if (paramLen <= 255) {
    fixed[9] = paramLen;
    return frame(MsgType.Open, [fixed, ...params]);
  }
  // RFC 9072 extended form: needed only with very many capabilities.
  fixed[9] = 255;
  const ext = Buffer.alloc(3);
  ext[0] = 255;
  const extParams = caps.map((c) => { const h = Buffer.alloc(3); h[0] = 2; h.writeUInt16BE(c.length, 1); return Buffer.concat([h, c]); });
  ext.writeUInt16BE(extParams.reduce((n, b) => n + b.length, 0), 1);
  return frame(MsgType.Open, [fixed, ext, ...extParams]);
}

/** The families a peer supports: RFC 4760 says a speaker with no MP capability does IPv4 unicast. */
export function familiesOf(caps: Capabilities): AfiSafi[] {
  if (caps.multiprotocol.length === 0 && !caps.codes.includes(Cap.Multiprotocol)) return [{ afi: AFI_IPV4, safi: SAFI_UNICAST }];
  return caps.multiprotocol;
}

export function peerAsOf(open: OpenMessage): number {
  return open.caps.fourOctetAs ?? open.myAs;
}

export { AFI_IPV6 };
