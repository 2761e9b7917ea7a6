/**
 * Path attributes: the in-memory shape, the encoder, and the RFC 7606 validation rules used by
 * the UPDATE decoder. Decoded attribute sets are immutable and shared between every prefix that
 * carries them (the RIB interns them), which is what keeps memory per route low.
 */
import {
  Attr, FLAG_OPTIONAL, FLAG_TRANSITIVE, FLAG_PARTIAL, FLAG_EXTENDED, SegType, AS_TRANS, Origin,
} from './constants.js';
import { ipv4ToString, parseAddress } from './prefix.js';

export interface AsSegment { type: number; asns: number[] }

export interface UnknownAttr { flags: number; type: number; value: Buffer }

export interface PathAttrs {
  origin: number;
  asPath: AsSegment[];
  /** Textual next hop for the family this attribute set is used with ('' when none). */
  nextHop: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { as: number; id: string };
  communities?: number[];
  originatorId?: number;
  clusterList?: number[];
  extCommunities?: Buffer;
  largeCommunities?: Buffer;
  /** Optional transitive attributes we do not know: passed on with the Partial bit set. */
  unknown?: UnknownAttr[];
}

/** RFC 4271 §9.1.2.2 a): AS_SET counts as one, confederation segments do not count. */
export function asPathLength(p: AsSegment[]): number {
  let n = 0;
  for (const s of p) {
    if (s.type === SegType.AsSequence) n += s.asns.length;
    else if (s.type === SegType.AsSet) n += 1;
  }
  return n;
}

export function firstAs(p: AsSegment[]): number | undefined {
  for (const s of p) if (s.type === SegType.AsSequence && s.asns.length) return s.asns[0];
  return undefined;
}

export function asPathContains(p: AsSegment[], asn: number): boolean {
  return p.some((s) => s.asns.includes(asn));
}

export function prependAs(p: AsSegment[], asn: number): AsSegment[] {
  const first = p[0];
  if (first && first.type === SegType.AsSequence && first.asns.length < 255) {
    return [{ type: SegType.AsSequence, asns: [asn, ...first.asns] }, ...p.slice(1)];
  }
  return [{ type: SegType.AsSequence, asns: [asn] }, ...p];
}

export function formatAsPath(p: AsSegment[]): string {
  return p.map((s) => (s.type === SegType.AsSet ? `{${s.asns.join(',')}}` : s.asns.join(' '))).join(' ');
}

/** Parses an AS_PATH value with 2- or 4-octet ASNs. Returns undefined when malformed (RFC 7606 §7.2). */
export function parseAsPath(v: Buffer, width: 2 | 4): AsSegment[] | undefined {
  const out: AsSegment[] = [];
  let off = 0;
  while (off < v.length) {
    if (off + 2 > v.length) return undefined;
    const type = v[off]!;
    const count = v[off + 1]!;
    off += 2;
    if (type < 1 || type > 4 || count === 0) return undefined;
    if (off + count * width > v.length) return undefined;
    const asns = new Array<number>(count);
    for (let i = 0; i < count; i++) asns[i] = width === 4 ? v.readUInt32BE(off + 4 * i) : v.readUInt16BE(off + 2 * i);
    off += count * width;
    out.push({ type, asns });
  }
  return out;
}

/**
 * RFC 6793 §4.2.3: rebuild the real path from a 2-octet AS_PATH and an AS4_PATH. When AS_PATH
 * is shorter than AS4_PATH the AS4_PATH is ignored.
 */
export function mergeAs4Path(asPath: AsSegment[], as4Path: AsSegment[]): AsSegment[] {
  const n2 = asPathLength(asPath);
  const n4 = asPathLength(as4Path);
  if (n2 < n4) return asPath;
  let keep = n2 - n4;
  const lead: AsSegment[] = [];
  for (const s of asPath) {
    if (keep <= 0) break;
    if (s.type === SegType.AsSequence) {
      const take = s.asns.slice(0, keep);
      lead.push({ type: s.type, asns: take });
      keep -= take.length;
    } else if (s.type === SegType.AsSet) {
      lead.push(s);
      keep -= 1;
    } else {
      lead.push(s);
    }
  }
  return [...lead, ...as4Path];
}

function attrHeader(flags: number, type: number, len: number): Buffer {
  if (len > 255) {
    const h = Buffer.alloc(4);
    h[0] = flags | FLAG_EXTENDED;
    h[1] = type;
    h.writeUInt16BE(len, 2);
    return h;
  }
  return Buffer.from([flags & ~FLAG_EXTENDED, type, len]);
}

function attr(flags: number, type: number, value: Buffer): Buffer {
  return Buffer.concat([attrHeader(flags, type, value.length), value]);
}

function encodeAsPath(p: AsSegment[], width: 2 | 4): Buffer {
  const parts: Buffer[] = [];
  for (const s of p) {
    // A segment holds at most 255 ASNs: split longer ones.
    for (let i = 0; i < s.asns.length || (i === 0 && s.asns.length === 0); i += 255) {
      const chunk = s.asns.slice(i, i + 255);
      if (chunk.length === 0) break;
      const b = Buffer.alloc(2 + width * chunk.length);
      b[0] = s.type;
      b[1] = chunk.length;
      chunk.forEach((a, j) => {
        if (width === 4) b.writeUInt32BE(a >>> 0, 2 + 4 * j);
        else b.writeUInt16BE(a > 0xffff ? AS_TRANS : a, 2 + 2 * j);
      });
      parts.push(b);
    }
  }
  return Buffer.concat(parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export interface EncodeOptions {
  /** Both sides advertised 4-octet AS: AS_PATH carries 4-octet ASNs and no AS4_PATH is sent. */
  as4: boolean;
  /** Write a classic NEXT_HOP attribute with this IPv4 address (IPv4 unicast only). */
  classicNextHop?: string;
}

/**
 * Encodes every attribute except MP_REACH/MP_UNREACH (those are built per UPDATE with their NLRI),
 * in type order.
 */
export function encodeAttrs(a: PathAttrs, o: EncodeOptions): Buffer {
  const parts: Buffer[] = [];
  parts.push(attr(FLAG_TRANSITIVE, Attr.Origin, Buffer.from([a.origin])));
  parts.push(attr(FLAG_TRANSITIVE, Attr.AsPath, encodeAsPath(a.asPath, o.as4 ? 4 : 2)));
  if (o.classicNextHop !== undefined) {
    const nh = parseAddress(o.classicNextHop);
    parts.push(attr(FLAG_TRANSITIVE, Attr.NextHop, u32(nh?.words[0] ?? 0)));
  }
  if (a.med !== undefined) parts.push(attr(FLAG_OPTIONAL, Attr.Med, u32(a.med)));
  if (a.localPref !== undefined) parts.push(attr(FLAG_TRANSITIVE, Attr.LocalPref, u32(a.localPref)));
  if (a.atomicAggregate) parts.push(attr(FLAG_TRANSITIVE, Attr.AtomicAggregate, Buffer.alloc(0)));
  if (a.aggregator) {
    const idWord = parseAddress(a.aggregator.id)?.words[0] ?? 0;
    if (o.as4) {
      parts.push(attr(FLAG_OPTIONAL | FLAG_TRANSITIVE, Attr.Aggregator, Buffer.concat([u32(a.aggregator.as), u32(idWord)])));
    } else {
      const b = Buffer.alloc(6);
      b.writeUInt16BE(a.aggregator.as > 0xffff ? AS_TRANS : a.aggregator.as, 0);
      b.writeUInt32BE(idWord, 2);
      parts.push(attr(FLAG_OPTIONAL | FLAG_TRANSITIVE, Attr.Aggregator, b));
    }
  }
  if (a.communities?.length) parts.push(attr(FLAG_OPTIONAL | FLAG_TRANSITIVE, Attr.Communities, Buffer.concat(a.communities.map(u32))));
  if (a.originatorId !== undefined) parts.push(attr(FLAG_OPTIONAL, Attr.OriginatorId, u32(a.originatorId)));
  if (a.clusterList?.length) parts.push(attr(FLAG_OPTIONAL, Attr.ClusterList, Buffer.concat(a.clusterList.map(u32))));
  if (a.extCommunities?.length) parts.push(attr(FLAG_OPTIONAL | FLAG_TRANSITIVE, Attr.ExtCommunities, a.extCommunities));
  if (!o.as4 && a.asPath.some((s) => s.asns.some((x) => x > 0xffff))) {
    // An OLD peer gets 2-octet ASNs (AS_TRANS) plus the real path in AS4_PATH (RFC 6793 §4.2.2).
    parts.push(attr(FLAG_OPTIONAL | FLAG_TRANSITIVE, Attr.As4Path, encodeAsPath(a.asPath.filter((s) => s.type <= 2), 4)));
    if (a.aggregator && a.aggregator.as > 0xffff) {
      parts.push(attr(FLAG_OPTIONAL | FLAG_TRANSITIVE, Attr.As4Aggregator, Buffer.concat([u32(a.aggregator.as), u32(parseAddress(a.aggregator.id)?.words[0] ?? 0)])));
    }
  }
  if (a.largeCommunities?.length) parts.push(attr(FLAG_OPTIONAL | FLAG_TRANSITIVE, Attr.LargeCommunities, a.largeCommunities));
  for (const u of a.unknown ?? []) parts.push(attr(u.flags | FLAG_PARTIAL, u.type, u.value));
  return Buffer.concat(parts);
}

/** The attributes this speaker originates for its own routes. */
export function localAttrs(): PathAttrs {
  return { origin: Origin.Igp, asPath: [], nextHop: '' };
}

export function nextHopV4Valid(v: number): boolean {
  const first = v >>> 24;
  // 0.0.0.0/8, multicast/reserved (224/3) and loopback are never usable next hops.
  return first !== 0 && first < 224 && first !== 127;
}

export { ipv4ToString };
