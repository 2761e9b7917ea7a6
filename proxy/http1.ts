/**
 * Just enough HTTP/1.1 for the fast path (fast-path.ts) to relay bytes unchanged and still know
 * where every message ends: request heads (method, target, raw headers, body framing), the body
 * framing of both directions (Content-Length, chunked), and the end of each of the daemon's
 * answers (HEAD, 1xx, 204, 304, read-until-close). Nothing is ever rewritten.
 *
 * The request side is strict on purpose. A head is accepted only in its plainest form: request
 * line `METHOD /target HTTP/1.1`, CRLF line ends, header names that are tokens, values without
 * control characters, no folded lines, at most one Host, at most one Content-Length of digits
 * only, Transfer-Encoding exactly `chunked` and never together with a Content-Length, no Upgrade,
 * no Expect. Anything else is "unusual" and goes to Node's http server instead (server.ts), so
 * the fast path never reads a message boundary differently from the daemon: a request hidden in
 * another's body would slip past the guard and the hooks. Chunked request bodies are held to the
 * same grammar (RFC 9112 §7.1, CRLF exactly where Go's reader wants it); a body that breaks it
 * ends the connection.
 *
 * The daemon's side is parsed as Go writes it, and leniently where RFC 9112 §6.3 says how.
 */
import { HttpFramingError } from './errors.js';

export type BodyFraming =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' };

export interface RequestHead {
  method: string;
  /** The request target as sent (origin form: starts with "/"). */
  url: string;
  /** [name, value, name, value, ...] as sent, values without the blanks around them. */
  rawHeaders: string[];
  body: BodyFraming;
  /** Offset just past the blank line that ends the head. */
  end: number;
}

/** The head is not complete in this buffer. */
export const INCOMPLETE = 'incomplete';
/** Valid HTTP perhaps, but not the plain form the fast path takes. */
export const UNUSUAL = 'unusual';

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
// Request line, then any number of "\r\n name: value" lines; value characters exclude CR, LF
// and the other controls but HTAB, so a bare CR or LF anywhere fails the match.
const REQUEST_HEAD = /^([A-Z]+) (\/[\x21-\x7e]*) HTTP\/1\.1((?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*)*)$/;
const DIGITS = /^[0-9]{1,15}$/;
const NO_BODY: BodyFraming = { kind: 'none' };

/** Parses the request head starting at `start`, if it is whole in `buf` and plain. */
export function parseRequestHead(buf: Buffer, start: number): RequestHead | typeof INCOMPLETE | typeof UNUSUAL {
  const end = buf.indexOf(HEAD_END, start);
  if (end === -1) return INCOMPLETE;
  const m = REQUEST_HEAD.exec(buf.toString('latin1', start, end));
  if (m === null) return UNUSUAL;
  const rawHeaders: string[] = [];
  let length: string | undefined;
  let chunked = false;
  let hosts = 0;
  const block = m[3]; // "\r\nName: value\r\nName: value..." (already checked line by line)
  for (let at = 2; at < block.length;) {
    const eol = block.indexOf('\r\n', at);
    const next = eol === -1 ? block.length : eol;
    const colon = block.indexOf(':', at);
    const name = block.slice(at, colon);
    const value = trimBlanks(block.slice(colon + 1, next));
    at = next + 2;
    rawHeaders.push(name, value);
    switch (name.toLowerCase()) {
      case 'content-length':
        if (length !== undefined || !DIGITS.test(value)) return UNUSUAL;
        length = value;
        break;
      case 'transfer-encoding':
        if (chunked || value.toLowerCase() !== 'chunked') return UNUSUAL;
        chunked = true;
        break;
      case 'host':
        if (++hosts > 1) return UNUSUAL;
        break;
      case 'connection':
        if (value.split(',').some((token) => trimBlanks(token).toLowerCase() === 'upgrade')) return UNUSUAL;
        break;
      case 'upgrade':
      case 'expect':
        return UNUSUAL;
    }
  }
  let body = NO_BODY;
  if (chunked) {
    if (length !== undefined) return UNUSUAL;
    body = { kind: 'chunked' };
  } else if (length !== undefined && Number(length) > 0) {
    body = { kind: 'length', length: Number(length) };
  }
  return { method: m[1], url: m[2], rawHeaders, body, end: end + HEAD_END.length };
}

/** Strips spaces and tabs (HTTP's blanks; String.trim also strips NBSP, a legal value byte). */
function trimBlanks(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

const TRAILER_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r$/;
/** Longest chunk extension or trailer line accepted (Go's limit for a chunk line is 4 KiB). */
const MAX_LINE = 4096;
/** More hex digits than this cannot be a chunk size anyone sends (and would lose precision). */
const MAX_SIZE_DIGITS = 12;
const CR = 0x0d;
const LF = 0x0a;

type ChunkState =
  | 'size' | 'ext' | 'size-lf' // chunk-size [;ext] CRLF
  | 'data' | 'data-cr' | 'data-lf' // chunk-data CRLF
  | 'trailer' | 'trailer-line' | 'end-lf' // *(field-line CRLF) CRLF
  | 'done';

/**
 * Follows one message body through the bytes that carry it and tells where it ends. Chunked
 * bodies are checked against the chunked grammar byte by byte (no strings for the usual case);
 * a violation throws HttpFramingError.
 */
export class BodyTracker {
  private readonly isChunked: boolean;
  /** Bytes left in the body (Content-Length) or in the current chunk. */
  private left: number;
  private state: ChunkState;
  private digits = 0;
  private lineLength = 0;
  /** A trailer line read so far (trailers are rare; lines may span reads). */
  private line = '';

  constructor(framing: BodyFraming) {
    this.isChunked = framing.kind === 'chunked';
    this.left = framing.kind === 'length' ? framing.length : 0;
    this.state = this.isChunked ? 'size' : this.left === 0 ? 'done' : 'data';
  }

  get done(): boolean {
    return this.state === 'done';
  }

  /** Consumes body bytes of `buf` from `at`; returns the offset just past the last one. */
  consume(buf: Buffer, at: number): number {
    let i = at;
    while (i < buf.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.left, buf.length - i);
        this.left -= n;
        i += n;
        if (this.left === 0) this.state = this.isChunked ? 'data-cr' : 'done';
      } else if (this.state === 'trailer-line') {
        const lf = buf.indexOf(LF, i);
        const stop = lf === -1 ? buf.length : lf;
        this.line += buf.toString('latin1', i, stop);
        if (this.line.length > MAX_LINE) throw new HttpFramingError(`chunked body trailer line longer than ${MAX_LINE} bytes`);
        if (lf === -1) return buf.length;
        i = lf + 1;
        if (!TRAILER_LINE.test(this.line)) throw new HttpFramingError('malformed trailer line in a chunked body');
        this.line = '';
        this.state = 'trailer';
      } else {
        this.step(buf[i++]);
      }
    }
    return i;
  }

  /** One byte of the chunked framing outside chunk data and trailer lines. */
  private step(b: number): void {
    switch (this.state) {
      case 'size': {
        const v = hexValue(b);
        if (v >= 0) {
          if (++this.digits > MAX_SIZE_DIGITS) throw new HttpFramingError('chunk size too large');
          this.left = this.left * 16 + v;
        } else if (this.digits > 0 && b === 0x3b /* ; */) {
          this.state = 'ext';
          this.lineLength = 0;
        } else if (this.digits > 0 && b === CR) {
          this.state = 'size-lf';
        } else {
          throw new HttpFramingError('malformed chunk size line');
        }
        return;
      }
      case 'ext':
        if (b === CR) this.state = 'size-lf';
        else if ((b < 0x20 && b !== 0x09) || b === 0x7f || ++this.lineLength > MAX_LINE) throw new HttpFramingError('malformed chunk extension');
        return;
      case 'size-lf':
        if (b !== LF) throw new HttpFramingError('chunk size line not ended by CRLF');
        this.digits = 0;
        this.state = this.left === 0 ? 'trailer' : 'data';
        return;
      case 'data-cr':
        if (b !== CR) throw new HttpFramingError('chunk data not followed by CRLF');
        this.state = 'data-lf';
        return;
      case 'data-lf':
        if (b !== LF) throw new HttpFramingError('chunk data not followed by CRLF');
        this.state = 'size';
        return;
      case 'trailer':
        if (b === CR) {
          this.state = 'end-lf';
        } else {
          this.line = String.fromCharCode(b);
          this.state = 'trailer-line';
        }
        return;
      case 'end-lf':
        if (b !== LF) throw new HttpFramingError('chunked body not ended by CRLF');
        this.state = 'done';
        return;
      default:
        throw new Error(`unexpected chunk state ${this.state}`);
    }
  }
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  return -1;
}

/** What the daemon's answer is, as far as framing goes. */
type ResponseFraming = BodyFraming | { kind: 'until-close' } | { kind: 'interim' } | { kind: 'switch' };

const STATUS_LINE = /^HTTP\/1\.[01] ([0-9]{3})(?: [^\r\n]*)?$/;
/** Larger daemon answer heads are refused (Go's server writes small ones). */
const MAX_RESPONSE_HEAD = 1024 * 1024;

/**
 * Follows the daemon's side of one connection: each answer's head and body, matched in order with
 * the requests relayed (`expect`), so the fast path knows when every request has been answered.
 * After a 101 the connection is a byte tunnel and nothing more is parsed.
 */
export class ResponseTracker {
  /** Methods of the requests whose answers are owed, oldest first (HEAD answers have no body). */
  private readonly methods: string[] = [];
  /** The start of a head split across reads (rare: the daemon writes heads whole). */
  private partialHead: Buffer | undefined;
  private body: BodyTracker | undefined;
  private readUntilClose = false;
  private switched = false;

  /** A request with this method was relayed; its answer is owed. */
  expect(method: string): void {
    this.methods.push(method);
  }

  /** True when every relayed request has been answered in full. */
  get idle(): boolean {
    return this.methods.length === 0 && !this.switched;
  }

  /** Follows `buf`, the next bytes the daemon sent. Throws HttpFramingError on nonsense. */
  feed(buf: Buffer): void {
    let i = 0;
    while (i < buf.length && !this.switched && !this.readUntilClose) {
      if (this.body === undefined) {
        i = this.feedHead(buf, i);
        continue;
      }
      i = this.body.consume(buf, i);
      if (this.body.done) {
        this.body = undefined;
        this.methods.shift();
      }
    }
  }

  /** The daemon closed its side: an answer read until close is complete now. */
  closed(): void {
    if (this.readUntilClose) {
      this.readUntilClose = false;
      this.methods.shift();
    }
  }

  private feedHead(buf: Buffer, at: number): number {
    if (this.methods.length === 0) throw new HttpFramingError('the daemon sent an answer to no request');
    if (this.partialHead === undefined) {
      const end = buf.indexOf(HEAD_END, at);
      if (end === -1) {
        this.keepPartialHead(Buffer.from(buf.subarray(at)));
        return buf.length;
      }
      this.startAnswer(buf.toString('latin1', at, end));
      return end + HEAD_END.length;
    }
    // A partial head is only kept when a read ended inside it, so this read continues it at 0.
    const before = this.partialHead.length;
    const joined = Buffer.concat([this.partialHead, buf]);
    const end = joined.indexOf(HEAD_END, Math.max(0, before - (HEAD_END.length - 1)));
    if (end === -1) {
      this.keepPartialHead(joined);
      return buf.length;
    }
    this.partialHead = undefined;
    this.startAnswer(joined.toString('latin1', 0, end));
    return end + HEAD_END.length - before;
  }

  private keepPartialHead(bytes: Buffer): void {
    if (bytes.length > MAX_RESPONSE_HEAD) throw new HttpFramingError('daemon answer head larger than 1 MiB');
    this.partialHead = bytes;
  }

  private startAnswer(head: string): void {
    const framing = responseFraming(head, this.methods[0]);
    switch (framing.kind) {
      case 'interim': break; // 1xx: the final answer to the same request follows
      case 'switch': this.switched = true; break;
      case 'until-close': this.readUntilClose = true; break;
      case 'none': this.methods.shift(); break;
      default: this.body = new BodyTracker(framing);
    }
  }
}

const TRANSFER_ENCODING = '\r\ntransfer-encoding:';
const CONTENT_LENGTH = '\r\ncontent-length:';

function responseFraming(head: string, method: string): ResponseFraming {
  const eol = head.indexOf('\r\n');
  const m = STATUS_LINE.exec(eol === -1 ? head : head.slice(0, eol));
  if (m === null) throw new HttpFramingError(`malformed status line from the daemon ${JSON.stringify(head.slice(0, 40))}`);
  const status = Number(m[1]);
  if (status === 101) return { kind: 'switch' };
  if (status < 200) return { kind: 'interim' };
  if (method === 'HEAD' || status === 204 || status === 304) return NO_BODY;
  // Header names are case-insensitive and no value holds a CRLF, so "\r\n<name>:" in the
  // lower-cased head finds exactly the header lines of that name.
  const lower = head.toLowerCase();
  const codings = headerValues(lower, TRANSFER_ENCODING);
  // RFC 9112 §6.3: Transfer-Encoding wins; chunked must be the last coding, else read until close.
  if (codings.length > 0) return /(?:^|,)[ \t]*chunked$/.test(codings.join(',')) ? { kind: 'chunked' } : { kind: 'until-close' };
  const lengths = headerValues(lower, CONTENT_LENGTH);
  if (lengths.length === 0) return { kind: 'until-close' };
  if (lengths.some((v) => !DIGITS.test(v) || v !== lengths[0])) throw new HttpFramingError('bad Content-Length from the daemon');
  const length = Number(lengths[0]);
  return length === 0 ? NO_BODY : { kind: 'length', length };
}

/** Values (blanks trimmed) of the header lines starting with `needle` ("\r\nname:") in `head`. */
function headerValues(head: string, needle: string): string[] {
  const out: string[] = [];
  for (let at = head.indexOf(needle); at !== -1; at = head.indexOf(needle, at + needle.length)) {
    const start = at + needle.length;
    const eol = head.indexOf('\r\n', start);
    out.push(trimBlanks(head.slice(start, eol === -1 ? head.length : eol)));
  }
  return out;
}
