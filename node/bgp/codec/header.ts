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
  /** A small buffer holding one message that straddled two chunks (copied, at most 4 KB). */
  private joined: Buffer | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  maxLength = MAX_MESSAGE_LENGTH;

  /**
   * Adds a chunk. A message split across chunks is completed by copying only the bytes it needs
   * into a small buffer; the big chunk itself is never copied (concatenating 64 KB socket chunks
   * per read measurably fragmented the C heap during route dumps).
   */
  push(chunk: Buffer): void {
    const restLen = (this.joined ? this.joined.length : 0) + (this.buf.length - this.off);
    if (restLen === 0) {
      this.joined = undefined;
      this.buf = chunk;
      this.off = 0;
      return;
    }
    const rest = this.joined ? Buffer.concat([this.joined, this.buf.subarray(this.off)]) : this.buf.subarray(this.off);
    let need: number;
    if (rest.length >= HEADER_LENGTH) {
      need = rest.readUInt16BE(16) - rest.length;
    } else {
      const hdr = Buffer.concat([rest, chunk.subarray(0, HEADER_LENGTH - rest.length)]);
      need = hdr.length >= HEADER_LENGTH ? hdr.readUInt16BE(16) - rest.length : chunk.length;
    }
    // A bad length is reported by checkHeader in next(); take at least the header's worth.
    need = Math.max(Math.min(need, chunk.length), Math.min(chunk.length, Math.max(0, HEADER_LENGTH - rest.length)));
    this.joined = Buffer.concat([rest, chunk.subarray(0, need)]);
    this.buf = chunk;
    this.off = need;
  }

  /** Bytes buffered but not yet returned as a message. */
  get pending(): number {
    return (this.joined?.length ?? 0) + this.buf.length - this.off;
  }

  /** The next whole message, or undefined when more bytes are needed. Throws on a bad header. */
  next(): RawMessage | undefined {
    if (this.joined) {
      const j = this.joined;
      if (j.length < HEADER_LENGTH) return this.buf.length > this.off ? this.merge() : undefined;
      const len = checkHeader(j, 0, this.maxLength);
      if (j.length < len) return this.buf.length > this.off ? this.merge() : undefined;
      // With a valid header, push() copied exactly the message; anything beyond belongs to buf.
      this.joined = j.length > len ? j.subarray(len) : undefined;
      return { type: j[18] as MsgType, body: j.subarray(HEADER_LENGTH, len) };
    }
    if (this.buf.length - this.off < HEADER_LENGTH) return undefined;
    const len = checkHeader(this.buf, this.off, this.maxLength);
    if (this.buf.length - this.off < len) return undefined;
    const type = this.buf[this.off + 18] as MsgType;
    const body = this.buf.subarray(this.off + HEADER_LENGTH, this.off + len);
    this.off += len;
    return { type, body };
  }

  /** Rare path (a header split so that one copy was not enough): fold the rest in and retry. */
  private merge(): RawMessage | undefined {
    this.joined = Buffer.concat([this.joined!, this.buf.subarray(this.off)]);
    this.buf = Buffer.alloc(0);
    this.off = 0;
    return this.next();
  }
}
