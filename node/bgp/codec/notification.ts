/** NOTIFICATION (RFC 4271 §4.5), KEEPALIVE and ROUTE-REFRESH (RFC 2918 / RFC 7313) bodies. */
import { MsgType } from './constants.js';
import { frame } from './header.js';

export interface Notification { code: number; subcode: number; data: Buffer }

export function encodeNotification(code: number, subcode: number, data: Buffer = Buffer.alloc(0)): Buffer {
  return frame(MsgType.Notification, [Buffer.from([code, subcode]), data]);
}

export function decodeNotification(body: Buffer): Notification {
  return { code: body[0] ?? 0, subcode: body[1] ?? 0, data: Buffer.from(body.subarray(2)) };
}

export const enum RefreshSubtype { Normal = 0, BeginOfRib = 1, EndOfRib = 2 }

export interface RouteRefresh { afi: number; safi: number; subtype: number }

export function encodeRouteRefresh(afi: number, safi: number, subtype = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(afi, 0);
  b[2] = subtype;
  b[3] = safi;
  return frame(MsgType.RouteRefresh, b);
}

export function decodeRouteRefresh(body: Buffer): RouteRefresh {
  return { afi: body.readUInt16BE(0), subtype: body[2]!, safi: body[3]! };
}
