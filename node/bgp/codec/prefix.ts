/**
 * Prefixes on the wire (RFC 4271 §4.3 / RFC 4760 §5: a length octet then the minimum number of
 * address octets) and in memory. In memory a prefix is a short run of 32-bit words so that tables
 * can keep millions of them in typed arrays instead of one JS object or string each:
 *   IPv4: [address, length]            (2 words)
 *   IPv6: [w0, w1, w2, w3, length]     (5 words)
 */
import { AFI_IPV4, AFI_IPV6, Afi, ErrCode, UpdateSub } from './constants.js';
import { BgpProtocolError } from '../errors.js';
import { ipv6GroupsToString } from '../../../src/net/ip.js';

export const wordsFor = (afi: Afi): number => (afi === AFI_IPV4 ? 2 : 5);
export const maxLenFor = (afi: Afi): number => (afi === AFI_IPV4 ? 32 : 128);

export type PrefixWords = Uint32Array;

function nlriError(detail: string): BgpProtocolError {
  return new BgpProtocolError(ErrCode.Update, UpdateSub.InvalidNetwork, Buffer.alloc(0), detail);
}

/**
 * Walks the prefixes in buf[start, end). `onPrefix` gets a scratch array that is overwritten for
 * the next prefix: copy it if you keep it. Host bits past the length are cleared, as BIRD does.
 * With `addPath` each prefix is preceded by a 4-octet path identifier (RFC 7911), skipped here.
 * Throws 3/10 when a length is out of range or a prefix runs past `end`.
 */
export function forEachPrefix(
  buf: Buffer, start: number, end: number, afi: Afi, onPrefix: (w: PrefixWords) => void, addPath = false,
): number {
  const width = wordsFor(afi);
  const maxLen = maxLenFor(afi);
  const w = new Uint32Array(width);
  let off = start;
  let count = 0;
  while (off < end) {
    if (addPath) {
      if (off + 4 > end) throw nlriError('truncated path identifier');
      off += 4;
    }
    const len = buf[off++]!;
    if (len > maxLen) throw nlriError(`prefix length ${len} is longer than ${maxLen}`);
    const nbytes = (len + 7) >> 3;
    if (off + nbytes > end) throw nlriError(`prefix /${len} runs past the end of its field`);
    w.fill(0);
    for (let i = 0; i < nbytes; i++) {
      const wi = i >> 2;
      w[wi] = (w[wi]! | (buf[off + i]! << (24 - 8 * (i & 3)))) >>> 0;
    }
    // Clear host bits in the last significant word.
    const lastWord = (len - 1) >> 5;
    if (len > 0 && (len & 31) !== 0) w[lastWord] = (w[lastWord]! & (~0 << (32 - (len & 31)))) >>> 0;
    w[width - 1] = len;
    off += nbytes;
    count++;
    onPrefix(w);
  }
  return count;
}

/** Checks a prefix field without keeping anything; returns the prefix count. */
export function validatePrefixes(buf: Buffer, start: number, end: number, afi: Afi, addPath = false): number {
  return forEachPrefix(buf, start, end, afi, () => undefined, addPath);
}

/** Wire size of one prefix. */
export function encodedPrefixSize(w: PrefixWords): number {
  return 1 + ((w[w.length - 1]! + 7) >> 3);
}

/** Writes one prefix at `off`, returns the offset after it. */
export function encodePrefix(w: PrefixWords, out: Buffer, off: number): number {
  const len = w[w.length - 1]!;
  out[off++] = len;
  const nbytes = (len + 7) >> 3;
  for (let i = 0; i < nbytes; i++) out[off + i] = (w[i >> 2]! >>> (24 - 8 * (i & 3))) & 0xff;
  return off + nbytes;
}

export function prefixToString(w: PrefixWords): string {
  const len = w[w.length - 1]!;
  if (w.length === 2) return ipv4ToString(w[0]!) + LEN[len]!;
  return `${ipv6WordsToString(w)}/${len}`;
}

const OCTET: string[] = Array.from({ length: 256 }, (_, i) => String(i));
const LEN: string[] = Array.from({ length: 129 }, (_, i) => `/${i}`);

export function ipv4ToString(a: number): string {
  return OCTET[a >>> 24]! + '.' + OCTET[(a >>> 16) & 255]! + '.' + OCTET[(a >>> 8) & 255]! + '.' + OCTET[a & 255]!;
}

export function ipv6WordsToString(w: ArrayLike<number>): string {
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) groups.push((w[i]! >>> 16) & 0xffff, w[i]! & 0xffff);
  return ipv6GroupsToString(groups);
}

/** '10.0.0.0/24' or '2001:db8::/64' (a bare address is a host prefix) -> words. */
export function parsePrefix(text: string): { afi: Afi; words: PrefixWords } {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const a = parseAddress(addr);
  if (!a) throw new Error(`'${text}' is not a prefix`);
  const maxLen = a.afi === AFI_IPV4 ? 32 : 128;
  const len = slash < 0 ? maxLen : Number(text.slice(slash + 1));
  if (!Number.isInteger(len) || len < 0 || len > maxLen) throw new Error(`'${text}' is not a prefix`);
  const words = new Uint32Array(wordsFor(a.afi));
  words.set(a.words);
  for (let i = 0; i < words.length - 1; i++) {
    const bitsLeft = len - 32 * i;
    if (bitsLeft <= 0) words[i] = 0;
    else if (bitsLeft < 32) words[i] = (words[i]! & (~0 << (32 - bitsLeft))) >>> 0;
  }
  words[words.length - 1] = len;
  return { afi: a.afi, words };
}

/** An address as words (1 for IPv4, 4 for IPv6), or undefined. */
export function parseAddress(text: string): { afi: Afi; words: number[] } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m) {
    const p = m.slice(1).map(Number);
    if (p.some((x) => x > 255)) return undefined;
    return { afi: AFI_IPV4, words: [((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0] };
  }
  if (!text.includes(':')) return undefined;
  const buf = ipv6ToBytes(text);
  if (!buf) return undefined;
  return { afi: AFI_IPV6, words: [buf.readUInt32BE(0), buf.readUInt32BE(4), buf.readUInt32BE(8), buf.readUInt32BE(12)] };
}

export function ipv6ToBytes(text: string): Buffer | undefined {
  let t = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    const a = parseAddress(v4[1]!);
    if (!a) return undefined;
    const n = a.words[0]!;
    t = t.slice(0, -v4[1]!.length) + ((n >>> 16) & 0xffff).toString(16) + ':' + (n & 0xffff).toString(16);
  }
  const parts = t.split('::');
  if (parts.length > 2) return undefined;
  const head = parts[0] ? parts[0].split(':') : [];
  const tail = parts.length === 2 && parts[1] ? parts[1].split(':') : [];
  const fill = parts.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0 || (parts.length === 1 && head.length !== 8)) return undefined;
  const groups = [...head, ...Array(fill).fill('0'), ...tail];
  if (groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i]!)) return undefined;
    out.writeUInt16BE(parseInt(groups[i]!, 16), i * 2);
  }
  return out;
}

export function afiOfPrefixText(text: string): Afi {
  return text.includes(':') ? AFI_IPV6 : AFI_IPV4;
}

/** True when prefix `inner` lies inside prefix `outer` (same family). */
export function prefixCovers(outer: PrefixWords, inner: PrefixWords): boolean {
  if (outer.length !== inner.length) return false;
  const olen = outer[outer.length - 1]!;
  const ilen = inner[inner.length - 1]!;
  if (ilen < olen) return false;
  for (let i = 0; i < outer.length - 1; i++) {
    const bits = olen - 32 * i;
    if (bits <= 0) return true;
    const mask = bits >= 32 ? 0xffffffff : (~0 << (32 - bits)) >>> 0;
    if (((inner[i]! & mask) >>> 0) !== ((outer[i]! & mask) >>> 0)) return false;
  }
  return true;
}

export { AFI_IPV6 };
