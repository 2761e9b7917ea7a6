/**
 * Message framing (RFC 4271 §4.1): a 16-octet all-ones marker, a 2-octet length (19..4096) and a
 * type. `MessageReader` turns a TCP byte stream into whole messages and raises the header errors
 * with the codes RFC 4271 §6.1 asks for (1/1 marker, 1/2 length with the bad length as data, 1/3
 * type with the bad type as data).
 */
import {
  HEADER_LENGTH, MAX_MESSAGE_LENGTH, MIN_OPEN_LENGTH, MIN_UPDATE_LENGTH, MIN_NOTIFICATION_LENGTH,
  ROUTE_REFRESH_LENGTH, MsgType, ErrCode, HeaderSub, RouteRefreshSub,
} from './constants.js';
import { BgpProtocolError } from '../errors.js';

export interface RawMessage {
  type: MsgType;
  /** The body after the 19-octet header (a view into the reader's buffer: consume before the next push). */
  body: Buffer;
}

const MARKER = Buffer.alloc(16, 0xff);

export function frame(type: MsgType, body: Buffer | Buffer[]): Buffer {
  const parts = Array.isArray(body) ? body : [body];
  const len = HEADER_LENGTH + parts.reduce((n, b) => n + b.length, 0);
  const out = Buffer.allocUnsafe(len);
  MARKER.copy(out, 0);
  out.writeUInt16BE(len, 16);
  out[18] = type;
  let off = HEADER_LENGTH;
  for (const p of parts) { p.copy(out, off); off += p.length; }
  return out;
}

/** Writes a header into `out` at `off` for a message of total length `len`. */
export function writeHeader(out: Buffer, off: number, type: MsgType, len: number): void {
  MARKER.copy(out, off);
  out.writeUInt16BE(len, off + 16);
  out[off + 18] = type;
}

export const KEEPALIVE: Buffer = frame(MsgType.Keepalive, Buffer.alloc(0));

function lengthError(len: number): BgpProtocolError {
  const data = Buffer.alloc(2);
  data.writeUInt16BE(len & 0xffff);
  return new BgpProtocolError(ErrCode.Header, HeaderSub.BadLength, data, `message length ${len}`);
}

/** Checks a header at buf[off]; returns the message length. */
export function checkHeader(buf: Buffer, off: number, maxLength = MAX_MESSAGE_LENGTH): number {
  for (let i = 0; i < 16; i++) {
    if (buf[off + i] !== 0xff) throw new BgpProtocolError(ErrCode.Header, HeaderSub.NotSynchronized, Buffer.alloc(0), 'marker is not all ones');
  }
  const len = buf.readUInt16BE(off + 16);
  const type = buf[off + 18]!;
  if (len < HEADER_LENGTH || len > maxLength) throw lengthError(len);
  switch (type) {
    case MsgType.Open: if (len < MIN_OPEN_LENGTH) throw lengthError(len); break;
    case MsgType.Update: if (len < MIN_UPDATE_LENGTH) throw lengthError(len); break;
    case MsgType.Notification: if (len < MIN_NOTIFICATION_LENGTH) throw lengthError(len); break;
    case MsgType.Keepalive: if (len !== HEADER_LENGTH) throw lengthError(len); break;
    case MsgType.RouteRefresh:
      // RFC 7313 §5: a ROUTE-REFRESH of the wrong length is its own error code.
      if (len !== ROUTE_REFRESH_LENGTH) {
        const data = Buffer.from(buf.subarray(off, off + Math.min(len, buf.length - off)));
        throw new BgpProtocolError(ErrCode.RouteRefresh, RouteRefreshSub.InvalidLength, data, `ROUTE-REFRESH length ${len}`);
      }
      break;
    default:
      throw new BgpProtocolError(ErrCode.Header, HeaderSub.BadType, Buffer.from([type]), `unknown message type ${type}`);
  }
  return len;
}

export class MessageReader {
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  maxLength = MAX_MESSAGE_LENGTH;

  push(chunk: Buffer): void {
    if (this.off >= this.buf.length) {
      this.buf = chunk;
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.off), chunk]);
    }
    this.off = 0;
  }

  /** Bytes buffered but not yet returned as a message. */
  get pending(): number {
    return this.buf.length - this.off;
  }

  /** The next whole message, or undefined when more bytes are needed. Throws on a bad header. */
  next(): RawMessage | undefined {
    if (this.buf.length - this.off < HEADER_LENGTH) return undefined;
    const len = checkHeader(this.buf, this.off, this.maxLength);
    if (this.buf.length - this.off < len) return undefined;
    const type = this.buf[this.off + 18] as MsgType;
    const body = this.buf.subarray(this.off + HEADER_LENGTH, this.off + len);
    this.off += len;
    return { type, body };
  }
}
